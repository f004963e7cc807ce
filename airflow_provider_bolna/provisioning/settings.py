"""Who decides what: deployment settings (the DAG author's) and run options (a trigger's).

The trust boundary of bulk provisioning, in one place:

* :class:`Deployment` — everything that decides *what is read, where, and what may be written
  or deleted*: the customer query and connections, the state table, the trunk name template,
  the deletion limits, the password-reference policy, the ownership scope. Only the DAG author
  sets it: arguments of the DAG factory (:mod:`airflow_provider_bolna.dags`), optionally
  overlaid by one JSON Airflow Variable that only admins can edit. Validated when the DAG file
  is parsed (no I/O) and again at the start of each run, every error naming its key.
* :class:`RunOptions` — what whoever may *trigger* a run may choose: only what cannot leak a
  secret or destroy anything (``dry_run``, ``drift_check``, ``fail_on_error``, ``batch_size``
  and ``concurrency`` within the deployment's bounds, ``look_before_create``, and
  ``deprovision`` only to narrow what the deployment allows). Anything else in a run's conf is
  refused before a single request is sent.

:meth:`Deployment.options` merges the two into the engine's
:class:`~airflow_provider_bolna.provisioning.engine.ProvisionOptions`.

Homes: :class:`Deployment` here; :class:`RunOptions`, :class:`ProvisionOptions` and
:class:`SettingsError` in :mod:`.options`; the trunk name template and the identifier checks in
:mod:`.names`. Their names are re-exported here (the old import path).

Nothing here imports Airflow: the DAG factories validate settings at parse time for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.provisioning.names import (
    DEFAULT_NAME_TEMPLATE,
    DEFAULT_STATE_TABLE,
    MAX_CUSTOMER_ID_LENGTH,
    MAX_TRUNK_NAME_LENGTH,
    TABLE_NAME,
    NameTemplate,
    check_conn_id,
    check_scope,
    check_table_name,
    check_trunk_name,
)
from airflow_provider_bolna.provisioning.options import (
    RUN_OPTION_KEYS,
    ProvisionOptions,
    RunOptions,
    SettingsError,
)
from airflow_provider_bolna.secrets.refs import PasswordRefPolicy

__all__ = [
    "DEFAULT_NAME_TEMPLATE",
    "DEFAULT_STATE_TABLE",
    "MAX_CUSTOMER_ID_LENGTH",
    "MAX_TRUNK_NAME_LENGTH",
    "RUN_OPTION_KEYS",
    "TABLE_NAME",
    "Deployment",
    "NameTemplate",
    "PasswordRefPolicy",
    "ProvisionOptions",
    "RunOptions",
    "SettingsError",
    "check_conn_id",
    "check_scope",
    "check_table_name",
    "check_trunk_name",
]

DEFAULT_CUSTOMERS_CONN_ID = "bolna_customers"
DEFAULT_QUERY = "SELECT * FROM customers"
#: the engine's options a deployment sets as they are (:meth:`Deployment.options`)
_DEPLOYMENT_OPTIONS = (
    "scope",
    "name_template",
    "remove_extra_numbers",
    "deactivate_first",
    "requests_per_minute",
    "parallel_batches",
    "state_table",
    "max_deletes",
    "max_delete_fraction",
    "password_refs",
    "verify_interval",
    "adopt_existing",
    "lock_wait_seconds",
    "statement_timeout_seconds",
)
#: the engine's options a run sets as they are
_RUN_OPTIONS = ("dry_run", "drift_check", "look_before_create")


# ---------------------------------------------------------------------- deployment


class Deployment(BaseModel):
    """One deployment of bulk provisioning: the DAG author's settings.

    :param scope: the ownership scope recorded on every state row; plans, sweeps and deletes
        touch only trunks recorded by the same scope. Share it between the bulk and sign-up DAGs
        of one customer base.
    :param customers_conn_id: the customer database (any common-sql connection).
    :param query: the customer query (column contract in ``docs/provisioning.md``); may use
        Jinja, rendered with the task's context minus anything a trigger supplies.
    :param state_conn_id: where the state table lives (default: the customer database).
    :param state_table: the state table (``schema.table`` allowed).
    :param bolna_conn_id: the Bolna connection.
    :param name_template: trunk name from the customer key: literal text and ``{customer_id}``.
    :param deprovision: whether deletes are allowed at all (churned customers, customers gone
        from the query).
    :param max_deletes: most trunks one run may delete.
    :param max_delete_fraction: most trunks one run may delete, as a fraction of the trunks the
        scope has recorded (at least one is always allowed).
    :param confirm_deletes_in_conf: let a run's ``confirm_deletes`` confirm an over-budget run
        (off: only this deployment's settings, e.g. its Variable, can).
    :param confirm_deletes: confirms the next over-budget run(s) whose planned deletes equal it
        (typically set for one run in the deployment's Variable).
    :param adopt_existing: adopt a trunk that already holds a customer's name and that no scope
        has recorded (a first run on a populated account); off: such a customer fails.
    :param password_refs: which password references rows and params may use (off by default).
    :param verify_interval: how often every recorded trunk is checked on Bolna (one list call per
        batch), so a trunk deleted in the dashboard comes back; ``0`` = every run, ``None`` =
        never (a large account that checks with ``drift_check`` runs instead).
    :param requests_per_minute: the request budget (default: the Bolna connection's), shared by
        every batch and sign-up run of the deployment through the state DB.
    :param parallel_batches: batches running at once (the pool's size).
    :param max_concurrency: upper bound of a run's ``concurrency``.
    :param default_concurrency: customers in flight per batch when a run does not say (``None``:
        sized from the budget's rate and the measured latency).
    :param max_batch_size: upper bound of a run's ``batch_size``.
    :param lock_wait_seconds: how long a batch waits for a customer another run is provisioning.
    :param statement_timeout_seconds: bound on every database statement.
    :param remove_extra_numbers: remove numbers a trunk holds that the row does not list.
    :param deactivate_first: deactivate a trunk before deleting it.
    :param defaults: run options used when a run does not set them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    scope: str
    customers_conn_id: str = DEFAULT_CUSTOMERS_CONN_ID
    query: str = DEFAULT_QUERY
    state_conn_id: str | None = None
    state_table: str = DEFAULT_STATE_TABLE
    bolna_conn_id: str = DEFAULT_CONN_ID
    name_template: str = DEFAULT_NAME_TEMPLATE
    deprovision: bool = False
    max_deletes: int = Field(100, ge=0)
    max_delete_fraction: float = Field(0.10, ge=0.0, le=1.0)
    confirm_deletes_in_conf: bool = False
    confirm_deletes: int | None = Field(None, ge=0)
    adopt_existing: bool = True
    password_refs: PasswordRefPolicy = PasswordRefPolicy()
    verify_interval: timedelta | None = timedelta(days=1)
    requests_per_minute: float | None = Field(None, ge=0)
    parallel_batches: int = Field(4, ge=1, le=256)
    max_concurrency: int = Field(64, ge=1, le=256)
    default_concurrency: int | None = Field(None, ge=1, le=256)
    max_batch_size: int = Field(20000, ge=10, le=100000)
    lock_wait_seconds: float = Field(60.0, ge=0, le=3600)
    statement_timeout_seconds: float = Field(300.0, gt=0, le=86400)
    remove_extra_numbers: bool = True
    deactivate_first: bool = True
    defaults: RunOptions = RunOptions()

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        return check_scope(value)

    @field_validator("customers_conn_id", "bolna_conn_id", "state_conn_id")
    @classmethod
    def _conn_id(cls, value: str | None) -> str | None:
        return None if value is None else check_conn_id(value)

    @field_validator("state_table")
    @classmethod
    def _table(cls, value: str) -> str:
        return check_table_name(value)

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        NameTemplate(value)
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a SELECT returning customer_id and the contract's columns")
        return value

    @field_validator("verify_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return timedelta(hours=float(value))  # numbers are hours (JSON Variables have no timedelta)
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.defaults.batch_size > self.max_batch_size:
            raise ValueError(f"defaults.batch_size: must be at most max_batch_size ({self.max_batch_size})")
        if self.defaults.concurrency is not None and self.defaults.concurrency > self.max_concurrency:
            raise ValueError(
                f"defaults.concurrency: must be at most max_concurrency ({self.max_concurrency})"
            )
        if self.verify_interval is not None and self.verify_interval < timedelta(0):
            raise ValueError("verify_interval: must not be negative")
        return self

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, settings: Mapping[str, Any], source: str = "deployment settings") -> Deployment:
        """Validate ``settings``; errors name every bad key.

        :raises SettingsError: a bad or unknown key.
        """
        try:
            return cls.model_validate(dict(settings))
        except ValidationError as exc:
            raise SettingsError.from_validation_error(exc, source) from None

    def overlaid(self, variable: Mapping[str, Any] | None, name: str) -> Deployment:
        """These settings with the keys of a deployment Variable (JSON object) on top.

        The Variable is an admin's: it may change any setting except ``scope`` (which names the
        rows this deployment owns and must stay the DAG file's).

        :param variable: the Variable's parsed value (``None``: nothing to overlay).
        :param name: the Variable's key, for error messages.
        :raises SettingsError: not an object, ``scope`` in it, or a bad key.
        """
        if variable is None:
            return self
        source = f"deployment variable {name!r}"
        if not isinstance(variable, Mapping):
            raise SettingsError([("", "must be a JSON object of deployment settings")], source)
        if "scope" in variable:
            raise SettingsError(
                [("scope", "is fixed by the DAG file (it names the rows this deployment owns)")], source
            )
        merged = self.model_dump()
        merged.update(dict(variable))
        return Deployment.build(merged, source)

    # ------------------------------------------------------------------ derived

    @property
    def template(self) -> NameTemplate:
        """The parsed name template."""
        return NameTemplate(self.name_template)

    @property
    def state_conn(self) -> str:
        """The connection holding the state table."""
        return self.state_conn_id or self.customers_conn_id

    def run_options(self, conf: Mapping[str, Any] | None, source: str = "run conf") -> RunOptions:
        """A run's options from its conf, checked against this deployment's bounds.

        :raises SettingsError: an unknown key, a bad value, or a value over a bound.
        """
        options = RunOptions.from_conf(conf, defaults=self.defaults, source=source)
        errors = []
        if options.batch_size > self.max_batch_size:
            errors.append(
                ("batch_size", f"must be at most {self.max_batch_size} (the deployment's max_batch_size)")
            )
        if options.concurrency is not None and options.concurrency > self.max_concurrency:
            errors.append(
                ("concurrency", f"must be at most {self.max_concurrency} (the deployment's max_concurrency)")
            )
        if options.deprovision and not self.deprovision:
            errors.append(
                ("deprovision", "this deployment does not allow deletes; a run can only turn them off")
            )
        if options.confirm_deletes is not None and not self.confirm_deletes_in_conf:
            errors.append(
                (
                    "confirm_deletes",
                    (
                        "this deployment takes no confirmation from a run (set confirm_deletes "
                        "in its settings Variable, or allow confirm_deletes_in_conf)"
                    ),
                )
            )
        if errors:
            raise SettingsError(errors, source)
        return options

    def options(self, run: RunOptions, *, run_id: str | None = None) -> ProvisionOptions:
        """The engine's options for one run: this deployment, narrowed by ``run``.

        :param run: the run's options (already checked by :meth:`run_options`).
        :param run_id: the Airflow run, recorded on every state row written.
        """
        confirm = (
            run.confirm_deletes
            if (self.confirm_deletes_in_conf and run.confirm_deletes is not None)
            else self.confirm_deletes
        )
        return ProvisionOptions(
            **{name: getattr(self, name) for name in _DEPLOYMENT_OPTIONS},
            **{name: getattr(run, name) for name in _RUN_OPTIONS},
            deprovision=self.deprovision and run.deprovision is not False,
            concurrency=run.concurrency or self.default_concurrency,
            confirm_deletes=confirm,
            run_id=run_id,
        )
