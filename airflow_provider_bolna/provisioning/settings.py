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

Nothing here imports Airflow: the DAG factories validate settings at parse time for free.
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.secrets.refs import PasswordRefPolicy

__all__ = [
    "DEFAULT_NAME_TEMPLATE",
    "DEFAULT_STATE_TABLE",
    "MAX_CUSTOMER_ID_LENGTH",
    "MAX_TRUNK_NAME_LENGTH",
    "RUN_OPTION_KEYS",
    "Deployment",
    "NameTemplate",
    "PasswordRefPolicy",
    "ProvisionOptions",
    "RunOptions",
    "SettingsError",
    "TABLE_NAME",
    "check_conn_id",
    "check_scope",
    "check_table_name",
    "check_trunk_name",
]

DEFAULT_STATE_TABLE = "bolna_provisioning_state"
DEFAULT_NAME_TEMPLATE = "cust-{customer_id}"
DEFAULT_CUSTOMERS_CONN_ID = "bolna_customers"
DEFAULT_QUERY = "SELECT * FROM customers"
#: the longest customer id a sign-up trigger may send
MAX_CUSTOMER_ID_LENGTH = 128

#: Bolna documents no rule for legacy trunk names; the newer /trunk family caps them at 100.
MAX_TRUNK_NAME_LENGTH = 100
#: Characters a trunk name may hold: what Bolna's own examples use, nothing a URL, a shell or
#: a dashboard would treat specially.
_NAME_CHARS = re.compile(r"^[A-Za-z0-9 ._:@+\-]*$")
_SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


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


# ---------------------------------------------------------------------- trunk names


class NameTemplate:
    """A trunk name template: literal text and ``{customer_id}``, nothing else.

    No format specs (``{customer_id:>9}``), conversions (``!r``), attribute or index access,
    and no other placeholder: the name is the idempotency key, derived from the customer key
    alone, and a template must not be able to build huge or surprising names.

    :param template: e.g. ``"cust-{customer_id}"``.
    :raises ValueError: anything else (the message says what).
    """

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise ValueError("must be text such as 'cust-{customer_id}'")
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc})") from None
        literals: list[str] = []
        fields = 0
        for literal, name, spec, conversion in parts:
            literals.append(literal)
            if name is None:
                continue
            if name != "customer_id":
                raise ValueError("may contain only the placeholder {customer_id} (no other name, no attribute "
                                 "or index access)")
            if spec or conversion:
                raise ValueError("{customer_id} takes no format spec or conversion")
            fields += 1
        if fields == 0:
            raise ValueError("must contain {customer_id}")
        literal_text = "".join(literals)
        if not _NAME_CHARS.match(literal_text):
            raise ValueError("literal text may hold letters, digits, spaces and . _ : @ + - only")
        if len(literal_text) + fields > MAX_TRUNK_NAME_LENGTH:
            raise ValueError(f"leaves no room for the customer key within {MAX_TRUNK_NAME_LENGTH} characters")
        self.template = template
        self._parts = [(literal, name is not None) for literal, name, _, _ in parts]

    def render(self, key: str) -> str:
        """The trunk name of the customer whose key (as text) is ``key``; not checked."""
        return "".join(literal + (key if has_field else "") for literal, has_field in self._parts)

    def __repr__(self) -> str:
        return f"NameTemplate({self.template!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NameTemplate) and other.template == self.template

    def __hash__(self) -> int:
        return hash(self.template)


def check_scope(value: str) -> str:
    """``value`` if it can be a deployment's scope. :raises ValueError: why not."""
    if not _SCOPE.match(value):
        raise ValueError("must be 1-64 characters: letters, digits and _ . : - (starting with a letter or digit)")
    return value


def check_conn_id(value: str) -> str:
    """``value`` if it can be an Airflow connection id. :raises ValueError: why not."""
    if not _CONN_ID.match(value):
        raise ValueError("must be an Airflow connection id (letters, digits, _ . -)")
    return value


def check_table_name(value: str) -> str:
    """``value`` if it is a plain, optionally schema-qualified table name (it is put in SQL).

    :raises ValueError: why not.
    """
    if not TABLE_NAME.match(value):
        raise ValueError("must be a plain table name, optionally schema-qualified (schema.table)")
    return value


def check_trunk_name(name: str) -> str | None:
    """Why ``name`` cannot be a trunk name, or ``None`` when it can."""
    if not name or name != name.strip():
        return "a trunk name must not be empty or start or end with a space"
    if len(name) > MAX_TRUNK_NAME_LENGTH:
        return f"the trunk name would be {len(name)} characters long (at most {MAX_TRUNK_NAME_LENGTH})"
    if not _NAME_CHARS.match(name):
        return "the trunk name would hold characters other than letters, digits, spaces and . _ : @ + -"
    return None


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
            warnings.warn("max_deprovision is now max_deletes (0 means none, not unlimited)",
                          DeprecationWarning, stacklevel=3)
            self.max_deletes, self.max_deprovision = self.max_deprovision, None
        NameTemplate(self.name_template)
        if not _SCOPE.match(self.scope):
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
        data["verify_interval"] = None if self.verify_interval is None else self.verify_interval.total_seconds()
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
    def from_conf(cls, conf: Mapping[str, Any] | None, *, defaults: RunOptions | None = None,
                  source: str = "run conf") -> RunOptions:
        """Run options from a trigger's conf (or params), refusing every other key.

        :param conf: the run's conf; keys outside :data:`RUN_OPTION_KEYS` are refused.
        :param defaults: the deployment's defaults (used for keys that are absent or ``None``).
        :raises SettingsError: an unknown key or a bad value (named, never echoed).
        """
        data = dict(conf or {})
        unknown = sorted(str(k) for k in data if k not in RUN_OPTION_KEYS)
        if unknown:
            raise SettingsError(
                [(k, "cannot be set when triggering a run (deployment settings are the DAG author's; "
                     f"a run may set only {', '.join(RUN_OPTION_KEYS)})") for k in unknown],
                source,
            )
        base = (defaults or cls()).model_dump()
        base.update({k: v for k, v in data.items() if v is not None})
        try:
            return cls.model_validate(base)
        except ValidationError as exc:
            raise SettingsError.from_validation_error(exc, source) from None


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
        batch), so a trunk deleted in the dashboard comes back; ``0`` = every run.
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
    verify_interval: timedelta = timedelta(days=1)
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
            raise ValueError(f"defaults.concurrency: must be at most max_concurrency ({self.max_concurrency})")
        if self.verify_interval < timedelta(0):
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
            raise SettingsError([("scope", "is fixed by the DAG file (it names the rows this deployment owns)")],
                                source)
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
            errors.append(("batch_size", f"must be at most {self.max_batch_size} (the deployment's max_batch_size)"))
        if options.concurrency is not None and options.concurrency > self.max_concurrency:
            errors.append(("concurrency", f"must be at most {self.max_concurrency} (the deployment's max_concurrency)"))
        if options.deprovision and not self.deprovision:
            errors.append(("deprovision", "this deployment does not allow deletes; a run can only turn them off"))
        if options.confirm_deletes is not None and not self.confirm_deletes_in_conf:
            errors.append(("confirm_deletes", "this deployment takes no confirmation from a run (set confirm_deletes "
                                              "in its settings Variable, or allow confirm_deletes_in_conf)"))
        if errors:
            raise SettingsError(errors, source)
        return options

    def options(self, run: RunOptions, *, run_id: str | None = None) -> ProvisionOptions:
        """The engine's options for one run: this deployment, narrowed by ``run``.

        :param run: the run's options (already checked by :meth:`run_options`).
        :param run_id: the Airflow run, recorded on every state row written.
        """
        confirm = run.confirm_deletes if (self.confirm_deletes_in_conf and run.confirm_deletes is not None) \
            else self.confirm_deletes
        return ProvisionOptions(
            scope=self.scope, name_template=self.name_template, dry_run=run.dry_run,
            deprovision=self.deprovision and run.deprovision is not False, drift_check=run.drift_check,
            look_before_create=run.look_before_create, remove_extra_numbers=self.remove_extra_numbers,
            concurrency=run.concurrency or self.default_concurrency, deactivate_first=self.deactivate_first,
            requests_per_minute=self.requests_per_minute, parallel_batches=self.parallel_batches,
            state_table=self.state_table, max_deletes=self.max_deletes,
            max_delete_fraction=self.max_delete_fraction, confirm_deletes=confirm,
            password_refs=self.password_refs,
            verify_interval=self.verify_interval, adopt_existing=self.adopt_existing,
            lock_wait_seconds=self.lock_wait_seconds, statement_timeout_seconds=self.statement_timeout_seconds,
            run_id=run_id,
        )
