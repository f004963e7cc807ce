"""Which deployments the provisioning page shows: the admin's ``[bolna] ui_deployments`` option.

A JSON list, one object per deployment (env ``AIRFLOW__BOLNA__UI_DEPLOYMENTS``)::

    [{"dag_id": "bolna_bulk_provision", "signup_dag_id": "bolna_customer_signup",
      "scope": "bolna", "state_conn_id": "bolna_customers",
      "state_table": "bolna_provisioning_state", "bolna_conn_id": "bolna_default"}]

It is an Airflow configuration option — set by whoever deploys Airflow, read by the API server —
not a Variable or a DAG argument: it names the connection and table the API server reads, and
the DAGs whose permissions guard each deployment. Validated on use; every error names its key
(``ui_deployments.0.state_table: ...``) and never echoes a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.provisioning.settings import (
    DEFAULT_STATE_TABLE,
    SettingsError,
    check_conn_id,
    check_scope,
    check_table_name,
)

__all__ = ["CONFIG_KEY", "CONFIG_SECTION", "UIDeployment", "parse_ui_deployments", "ui_deployments"]

CONFIG_SECTION = "bolna"
CONFIG_KEY = "ui_deployments"
_SOURCE = f"[{CONFIG_SECTION}] {CONFIG_KEY}"
#: Airflow's DAG id rule (``airflow.utils.helpers.KEY_REGEX``), at most 250 characters.
_DAG_ID = re.compile(r"^[\w.-]{1,250}$")


def _check_dag_id(value: str) -> str:
    if not _DAG_ID.match(value):
        raise ValueError("must be a DAG id (letters, digits, _ . -; at most 250 characters)")
    return value


DagId = Annotated[str, AfterValidator(_check_dag_id)]
ConnId = Annotated[str, AfterValidator(check_conn_id)]


class UIDeployment(BaseModel):
    """One deployment as the provisioning page sees it.

    :param dag_id: the bulk provisioning DAG: its runs are the deployment's runs, its plan is the
        pending deletions, and reading it is what a user needs to see the deployment.
    :param scope: the deployment's ownership scope (the state rows it owns); unique in the list.
    :param state_conn_id: the connection holding the state table.
    :param state_table: the state table (``schema.table`` allowed).
    :param bolna_conn_id: the Bolna connection (its ``dashboard_url`` extra builds the trunk links).
    :param signup_dag_id: the sign-up DAG of the same scope, if any: a user must be allowed to read
        it too, and its runs are linked like the bulk DAG's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dag_id: DagId
    scope: Annotated[str, AfterValidator(check_scope)]
    state_conn_id: ConnId
    state_table: Annotated[str, AfterValidator(check_table_name)] = DEFAULT_STATE_TABLE
    bolna_conn_id: ConnId = DEFAULT_CONN_ID
    signup_dag_id: DagId | None = None

    @property
    def dag_ids(self) -> tuple[str, ...]:
        """The DAGs a user must be allowed to read to see this deployment."""
        return (self.dag_id, self.signup_dag_id) if self.signup_dag_id else (self.dag_id,)


_LIST = TypeAdapter(list[UIDeployment])


def parse_ui_deployments(raw: str | Sequence[Any] | None) -> list[UIDeployment]:
    """Validate the option's value (JSON text, or already a list); empty or unset = no deployment.

    :raises SettingsError: not a JSON list of objects, a bad or unknown key, or a scope listed twice.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            where = f"line {getattr(exc, 'lineno', '?')}, column {getattr(exc, 'colno', '?')}"
            raise SettingsError([("", f"is not valid JSON ({where})")], _SOURCE) from None
    if not isinstance(raw, list):
        raise SettingsError([("", "must be a JSON list of deployment objects")], _SOURCE)
    try:
        deployments = _LIST.validate_python(raw)
    except ValidationError as exc:
        raise SettingsError.from_validation_error(exc, _SOURCE, prefix=f"{CONFIG_KEY}.") from None
    seen: dict[str, int] = {}
    for index, deployment in enumerate(deployments):
        if deployment.scope in seen:
            why = f"is the scope of entry {seen[deployment.scope]} too (each scope once)"
            raise SettingsError([(f"{CONFIG_KEY}.{index}.scope", why)], _SOURCE)
        seen[deployment.scope] = index
    return deployments


def ui_deployments() -> list[UIDeployment]:
    """The deployments of this Airflow's configuration (``[bolna] ui_deployments``).

    :raises SettingsError: the option is set but invalid.
    """
    from airflow.providers.common.compat.sdk import conf

    return parse_ui_deployments(conf.get(CONFIG_SECTION, CONFIG_KEY, fallback=""))
