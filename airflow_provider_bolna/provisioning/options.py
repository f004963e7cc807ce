"""What a run does: the engine's options and what a trigger may choose for one run.

* :class:`ProvisionOptions` — how the engine provisions: a deployment's settings merged with
  one run's options (the engine's own API takes them directly);
* :class:`RunOptions` — what whoever may *trigger* a run may choose (:data:`RUN_OPTION_KEYS`),
  parsed from a run's conf, every other key refused;
* :class:`SettingsError` — settings or options that break a rule, every message naming its key.

The DAG author's side, :class:`~airflow_provider_bolna.provisioning.settings.Deployment`, sits
above and merges the two. Nothing here imports Airflow.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_provider_bolna.provisioning.names import (
    DEFAULT_NAME_TEMPLATE,
    DEFAULT_STATE_TABLE,
    SCOPE_NAME,
    NameTemplate,
)
from airflow_provider_bolna.secrets.refs import PasswordRefPolicy

__all__ = ["RUN_OPTION_KEYS", "ProvisionOptions", "RunOptions", "SettingsError"]


class SettingsError(ValueError):
    """Deployment settings or run options that break a rule; every message names its key.

    :param errors: ``(key, why)`` pairs, keys dotted (``password_refs.conn_prefixes.0``).
    :param source: where the settings came from (``DAG argument``, ``variable 'x'``, ``conf``).
    """

    def __init__(self, errors: list[tuple[str, str]], source: str = "") -> None:
        self.errors = errors
        self.source = source
        detail = "; ".join(f"{key}: {why}" if key else why for key, why in errors)
        super().__init__(f"invalid {source}: {detail}" if source else detail)

    @property
    def keys(self) -> list[str]:
        """The rejected keys, in order."""
        return [key for key, _ in self.errors]

    @classmethod
    def from_validation_error(cls, exc: ValidationError, source: str = "", prefix: str = "") -> SettingsError:
        """Field-named messages without the rejected values (values may be secrets or huge)."""
        errors = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "is not a setting here"
            errors.append((f"{prefix}{loc}" if prefix and loc else (loc or prefix.rstrip(".")), msg))
        return cls(errors, source)


# ---------------------------------------------------------------------- engine options


@dataclass
class ProvisionOptions:
    """How the engine provisions: a deployment's settings merged with one run's options.

    The engine's own API (tests, scripts, ``python -m airflow_provider_bolna.provisioning``)
    takes these directly; the DAGs build them with :meth:`Deployment.options`, so that a trigger
    can only set what :class:`RunOptions` allows.

    :param scope: the deployment whose state rows (and trunks) the run owns.
    :param name_template: trunk name from the customer key: literal text and ``{customer_id}``.
    :param dry_run: plan (and print the plan) without writing anything.
    :param deprovision: delete the trunks of churned customers and of customers gone from the
        source, within the deletion budget.
    :param drift_check: compare with the API even when the spec hash is unchanged.
    :param look_before_create: list the account before creating trunks for customers the state
        table has never seen (one list call per batch, O(account size) each). Off by default: a
        name already taken is found when the API refuses it, and then adopted.
    :param remove_extra_numbers: remove numbers on a trunk that the customer row does not list.
    :param concurrency: customers in flight at once in a batch; ``None``: sized from the budget's
        rate and the measured latency (Little's law), from 10 ms to 2 s of latency without tuning.
    :param deactivate_first: deactivate a trunk before deleting it.
    :param requests_per_minute: the request budget instead of the connection's (``None``: the
        connection's; ``0``: no client-side limit); shared by every batch through the state DB,
        divided by ``parallel_batches`` only where there is no state DB.
    :param parallel_batches: how many batches run at once (the pool size).
    :param page_size: rows per keyset query.
    :param max_failed_rows: failed rows listed in a batch summary (the count is always exact).
    :param state_table: the state table (``schema.table`` allowed).
    :param max_deletes: most trunks one run may delete.
    :param max_delete_fraction: most trunks one run may delete, as a fraction of the scope's
        recorded trunks (at least one).
    :param confirm_deletes: confirms a run whose planned deletes exceed the budget; must equal
        the planned count.
    :param password_refs: which password references rows may use.
    :param verify_interval: check every recorded trunk on Bolna this often (``None`` = never).
    :param adopt_existing: adopt a trunk holding a customer's name that no scope recorded.
    :param lock_wait_seconds: how long to wait for a customer another run is writing.
    :param statement_timeout_seconds: bound on each database statement.
    :param run_id: recorded on every state row written (the Airflow run id).
    :param max_deprovision: deprecated name of ``max_deletes`` (``0`` no longer means "no limit").
    """

    scope: str = "default"
    name_template: str = DEFAULT_NAME_TEMPLATE
    dry_run: bool = False
    deprovision: bool = False
    drift_check: bool = False
    look_before_create: bool = False
    remove_extra_numbers: bool = True
    concurrency: int | None = None
    deactivate_first: bool = True
    requests_per_minute: float | None = None
    parallel_batches: int = 1
    page_size: int = 500
    max_failed_rows: int = 20
    state_table: str = DEFAULT_STATE_TABLE
    max_deletes: int = 100
    max_delete_fraction: float = 0.10
    confirm_deletes: int | None = None
    password_refs: PasswordRefPolicy = field(default_factory=PasswordRefPolicy)
    verify_interval: timedelta | None = timedelta(days=1)
    adopt_existing: bool = True
    lock_wait_seconds: float = 60.0
    statement_timeout_seconds: float = 300.0
    run_id: str | None = None
    max_deprovision: int | None = None

    def __post_init__(self) -> None:
        if self.max_deprovision is not None:
            warnings.warn(
                "max_deprovision is now max_deletes (0 means none, not unlimited)",
                DeprecationWarning,
                stacklevel=3,
            )
            self.max_deletes, self.max_deprovision = self.max_deprovision, None
        NameTemplate(self.name_template)
        if not SCOPE_NAME.match(self.scope):
            raise ValueError("scope: must be 1-64 characters: letters, digits and _ . : -")
        for name in ("parallel_batches", "page_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be >= 1 (or None: sized from latency)")
        if self.requests_per_minute is not None and self.requests_per_minute < 0:
            raise ValueError("requests_per_minute must be >= 0 (0 = no client-side limit)")
        if self.max_deletes < 0:
            raise ValueError("max_deletes must be >= 0")
        if not 0.0 <= self.max_delete_fraction <= 1.0:
            raise ValueError("max_delete_fraction must be between 0 and 1")
        if isinstance(self.password_refs, Mapping):
            self.password_refs = PasswordRefPolicy.model_validate(self.password_refs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProvisionOptions:
        """Build from a dict, ignoring keys that are not options."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        data = asdict(self)
        data["password_refs"] = self.password_refs.model_dump(mode="json")
        data["verify_interval"] = (
            None if self.verify_interval is None else self.verify_interval.total_seconds()
        )
        return data

    def delete_limit(self, recorded: int) -> int:
        """Most trunks one run may delete when the scope has ``recorded`` trunks."""
        by_fraction = max(1, math.floor(self.max_delete_fraction * recorded + 1e-9))
        return min(self.max_deletes, by_fraction)


# ---------------------------------------------------------------------- run options

#: What a run's conf (or the params form) may set.
RUN_OPTION_KEYS: tuple[str, ...] = (
    "dry_run",
    "drift_check",
    "fail_on_error",
    "batch_size",
    "concurrency",
    "look_before_create",
    "deprovision",
    "confirm_deletes",
)


class RunOptions(BaseModel):
    """What a trigger may choose for one run; nothing here can leak or destroy.

    :param dry_run: plan (and print the plan) only; write nothing.
    :param drift_check: compare with Bolna even for customers whose spec hash is unchanged.
    :param fail_on_error: fail the run when any customer failed.
    :param batch_size: customers per mapped task, within the deployment's bound.
    :param concurrency: customers in flight per batch, within the deployment's bound;
        ``None`` = the deployment's default.
    :param look_before_create: list the account before creating trunks for customers never
        provisioned here.
    :param deprovision: ``False`` turns deletes off for this run; ``True`` only keeps what the
        deployment allows (it cannot turn deletes on); ``None`` = the deployment's setting.
    :param confirm_deletes: confirms a run that plans more deletes than the deployment's budget;
        must equal the planned count. Honoured only where the deployment allows confirmation
        from a run (``Deployment.confirm_deletes_in_conf``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dry_run: bool = False
    drift_check: bool = False
    fail_on_error: bool = False
    batch_size: int = Field(500, ge=10, le=20000)
    concurrency: int | None = Field(None, ge=1, le=256)
    look_before_create: bool = False
    deprovision: bool | None = None
    confirm_deletes: int | None = Field(None, ge=0)

    @classmethod
    def from_conf(
        cls, conf: Mapping[str, Any] | None, *, defaults: RunOptions | None = None, source: str = "run conf"
    ) -> RunOptions:
        """Run options from a trigger's conf (or params), refusing every other key.

        :param conf: the run's conf; keys outside :data:`RUN_OPTION_KEYS` are refused.
        :param defaults: the deployment's defaults (used for keys that are absent or ``None``).
        :raises SettingsError: an unknown key or a bad value (named, never echoed).
        """
        data = dict(conf or {})
        unknown = sorted(str(k) for k in data if k not in RUN_OPTION_KEYS)
        if unknown:
            raise SettingsError(
                [
                    (
                        k,
                        (
                            "cannot be set when triggering a run (deployment settings are the DAG author's; "
                            f"a run may set only {', '.join(RUN_OPTION_KEYS)})"
                        ),
                    )
                    for k in unknown
                ],
                source,
            )
        base = (defaults or cls()).model_dump()
        base.update({k: v for k, v in data.items() if v is not None})
        try:
            return cls.model_validate(base)
        except ValidationError as exc:
            raise SettingsError.from_validation_error(exc, source) from None
