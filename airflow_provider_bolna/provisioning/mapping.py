"""The column contract: one customer row → one :class:`~airflow_provider_bolna.models.TrunkSpec`.

The customer query may return any columns; these are read (names are case-insensitive, a
``NULL`` or missing optional column takes Bolna's default, other columns are ignored):

=============================== =========== ==========================================================
column                          required    format
=============================== =========== ==========================================================
``customer_id``                 yes         integer or text, unique: the keyset key and the trunk
                                            name's source (``cust-{customer_id}``)
``status``                      no          ``active`` (default) or ``churned``
``provider``                    yes         carrier label, e.g. ``twilio`` (fixed once created)
``auth_type``                   yes         ``userpass`` or ``ip-based`` (fixed once created)
``auth_username``               userpass    text
``auth_password``               userpass    the password, or a reference resolved at run time:
                                            ``{"conn": "<conn_id>"}`` / ``{"variable": "<key>"}``
                                            (JSON text or a JSON column)
``gateways``                    yes         JSON array of ``{"gateway_address", "port",
                                            "priority"}`` objects or ``"host:port"`` strings, or
                                            text ``host[:port[:priority]]`` separated by ``;`` ``,``
                                            or spaces (text order = priority 1, 2, ...)
``ip_identifiers``              ip-based    IPs / CIDRs separated by ``,`` ``;`` or spaces (or JSON)
``numbers``                     no          phone numbers separated by ``,`` ``;`` or spaces, or a JSON
                                            array whose entries may be ``{"phone_number", "agent_id"}``
                                            (that number's inbound agent)
``inbound_agent_id``            no          the Bolna agent that answers the customer's numbers
                                            (numbers with their own ``agent_id`` excepted)
``outbound_agent_ids``          no          agents that call out through the trunk (their telephony
                                            provider is switched to ``sip-trunk``): a list
``description``                 no          text
``allow`` / ``disallow``        no          codec lists, e.g. ``ulaw,alaw`` / ``all``
``transport``                   no          ``udp`` / ``tcp`` / ``tls`` (or ``transport-udp``...)
``media_encryption``            no          ``no`` or ``sdes`` (``sdes`` needs ``tls``)
``qualify_frequency``           no          integer seconds, ``0`` disables OPTIONS pings
``inbound_enabled``,            no          booleans: ``true/false``, ``1/0``, ``yes/no``, ``t/f``,
``outbound_leading_plus_enabled``,          ``on/off``
``direct_media``,
``rtp_symmetric``,
``force_rport``,
``media_encryption_optimistic``,
``e164_check_enabled``                      (``e164_check_enabled`` applies to every number)
=============================== =========== ==========================================================

A row that breaks a rule becomes a :class:`MappedCustomer` with an ``error`` naming the
customer and the field (``customer 42: gateways.0.port: ...``), never an exception, and never
with the rejected value in it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_bolna.models import FieldError, SpecError, TrunkSpec, parse_trunk_spec
from airflow_provider_bolna.provisioning.converters import (
    BOOL_COLUMNS,
    NUMBER_AGENTS,
    TEXT_COLUMNS,
    ColumnError,
    Setter,
    column_converters,
    contract_field,
    maybe_json,
    parse_bool,
)
from airflow_provider_bolna.provisioning.names import DEFAULT_NAME_TEMPLATE, NameTemplate, check_trunk_name
from airflow_provider_bolna.secrets.refs import PasswordRefPolicy, SecretRefError, SecretResolver

__all__ = [
    "CONTRACT_COLUMNS",
    "DEFAULT_NAME_TEMPLATE",
    "MappedCustomer",
    "RowMapper",
    "customer_key",
    "parse_bool",
    "render_trunk_name",
    "validate_name_template",
]

CustomerStatus = Literal["active", "churned"]

#: Every column the contract reads.
CONTRACT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "status",
    *TEXT_COLUMNS,
    "auth_password",
    "gateways",
    "ip_identifiers",
    "numbers",
    "transport",
    "qualify_frequency",
    *BOOL_COLUMNS,
    "e164_check_enabled",
    "inbound_agent_id",
    "outbound_agent_ids",
)
_STATUSES: dict[str, CustomerStatus] = {"active": "active", "churned": "churned"}
#: the state table's key column is VARCHAR(255)
MAX_KEY_LENGTH = 255


def customer_key(customer_id: Any) -> str:
    """The text form of a customer key, as stored in the state table."""
    if isinstance(customer_id, float) and customer_id.is_integer():
        customer_id = int(customer_id)
    return str(customer_id)


def validate_name_template(template: str) -> str:
    """Check that ``template`` is literal text and ``{customer_id}``, nothing else.

    :param template: e.g. ``"cust-{customer_id}"``.
    :raises ValueError: a format spec, conversion, attribute/index access, another
        placeholder, no ``{customer_id}``, or characters a trunk name may not hold.
    """
    try:
        NameTemplate(template)
    except ValueError as exc:
        raise ValueError(f"name_template: {exc}") from None
    return template


def render_trunk_name(template: str, customer_id: Any) -> str:
    """The trunk name of a customer (not checked; see :func:`~.names.check_trunk_name`)."""
    return NameTemplate(template).render(customer_key(customer_id))


def shown_key(key: str, limit: int = 64) -> str:
    """A customer key fit for a message: tenant data, so cut to ``limit`` characters."""
    return key if len(key) <= limit else key[: limit - 1] + "…"


@dataclass(frozen=True)
class MappedCustomer:
    """One customer row after mapping.

    :param customer_id: the key as read from the database (int or str).
    :param trunk_name: the derived trunk name (idempotency key).
    :param status: ``active`` or ``churned``.
    :param spec: the validated spec (``None`` for churned or invalid rows).
    :param error: ``customer <id>: <field>: <why>`` for an invalid row (no values, no secrets).
    :param fields: the rejected fields, in order.
    :param agents: inbound agent per number (number key → agent id), numbers without one absent.
    :param outbound_agents: agents whose calls go out through this trunk.
    """

    customer_id: Any
    trunk_name: str
    status: CustomerStatus
    spec: TrunkSpec | None = field(default=None, repr=False)
    error: str | None = None
    fields: tuple[str, ...] = ()
    agents: dict[str, str] = field(default_factory=dict)
    outbound_agents: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The customer key as text (state-table key)."""
        return customer_key(self.customer_id)

    @property
    def valid(self) -> bool:
        """True when the row mapped without error."""
        return self.error is None


class RowMapper:
    """Turn customer rows into specs, resolving allowed password references, collecting secrets.

    :param name_template: trunk name template: literal text and ``{customer_id}``.
    :param password_refs: which references a row's ``auth_password`` may use (off by default:
        rows are tenant data, and a reference would let a tenant choose which secret to send).
    :param get_connection: connection getter for references (default: Airflow's).
    :param get_variable: variable getter for references (default: Airflow's).

    Every password seen (plain or resolved) is appended to :attr:`secrets`, so the caller can
    register them with the log masker in one go (:mod:`airflow_provider_bolna.secrets.masker`)
    and then clear the list.
    """

    def __init__(
        self,
        name_template: str = DEFAULT_NAME_TEMPLATE,
        *,
        password_refs: PasswordRefPolicy | None = None,
        get_connection: Callable[[str], Any] | None = None,
        get_variable: Callable[[str], Any] | None = None,
    ) -> None:
        validate_name_template(name_template)
        self.template = NameTemplate(name_template)
        self.name_template = name_template
        self.password_refs = password_refs or PasswordRefPolicy()
        self.secrets: list[str] = []
        self._resolver = SecretResolver(
            get_connection=get_connection,
            get_variable=get_variable,
            mask=self.secrets.append,
            policy=self.password_refs,
        )

    # ------------------------------------------------------------------ public

    def map_row(self, row: Mapping[str, Any]) -> MappedCustomer:
        """Map one row; never raises for bad data (the error is in the result).

        :param row: column name → value (names compared case-insensitively).
        :raises KeyError: the row has no ``customer_id`` column (a query error, not a data error).
        """
        data = {str(k).lower(): v for k, v in row.items()}
        if "customer_id" not in data:
            raise KeyError("the customer query must return a customer_id column")
        customer_id = data["customer_id"]
        key = customer_key(customer_id)
        context = f"customer {shown_key(key)}"
        if len(key) > MAX_KEY_LENGTH:
            err = SpecError(
                [FieldError(field="customer_id", message=f"longer than {MAX_KEY_LENGTH} characters")], context
            )
            return MappedCustomer(customer_id, "", "active", error=str(err), fields=("customer_id",))
        name = self.template.render(key)
        bad_name = check_trunk_name(name)
        if bad_name is not None:
            err = SpecError([FieldError(field="customer_id", message=bad_name)], context)
            return MappedCustomer(customer_id, name[:255], "active", error=str(err), fields=("customer_id",))
        status_raw = data.get("status")
        status = _STATUSES.get(str(status_raw).strip().lower()) if status_raw is not None else "active"
        if status is None:
            err = SpecError([FieldError(field="status", message="must be 'active' or 'churned'")], context)
            return MappedCustomer(customer_id, name, "active", error=str(err), fields=("status",))
        if status == "churned":
            return MappedCustomer(customer_id, name, "churned")
        try:
            spec, agents, outbound = self._spec(data, name, context)
        except SpecError as exc:
            return MappedCustomer(customer_id, name, status, error=str(exc), fields=tuple(exc.fields))
        return MappedCustomer(customer_id, name, status, spec=spec, agents=agents, outbound_agents=outbound)

    # ------------------------------------------------------------------ internals

    def _spec(
        self, data: dict[str, Any], name: str, context: str
    ) -> tuple[TrunkSpec, dict[str, str], tuple[str, ...]]:
        spec: dict[str, Any] = {"name": name}
        errors: list[FieldError] = []
        for column, convert in self._converter_list:
            value = data.get(column)
            if value is None or (isinstance(value, str) and not value.strip() and column != "description"):
                continue
            try:
                convert(spec, value)
            except ColumnError as exc:
                errors.append(exc.field_error)
        number_agents: dict[int, str] = spec.pop(NUMBER_AGENTS, {})
        default_agent = spec.pop("inbound_agent_id", None)
        outbound: tuple[str, ...] = tuple(spec.pop("outbound_agent_ids", ()))
        try:
            result = parse_trunk_spec(spec, context)
        except SpecError as exc:
            # report the model's errors too, except those about columns already rejected above
            rejected = {e.field.split(".")[0] for e in errors}
            errors += [f for f in map(contract_field, exc.errors) if f.field.split(".")[0] not in rejected]
            raise SpecError(errors, context) from None
        if errors:
            raise SpecError(errors, context)
        agents = {}
        for position, number in enumerate(result.phone_numbers):
            agent = number_agents.get(position, default_agent)
            if agent is not None:
                agents[number.key] = agent
        return result, agents, outbound

    @functools.cached_property
    def _converter_list(self) -> list[tuple[str, Setter]]:
        """Column → setter, built once per mapper (not per row)."""
        return column_converters(self._set_password)

    def _set_password(self, spec: dict[str, Any], value: Any) -> None:
        ref = (
            maybe_json(value, "auth_password")
            if isinstance(value, str) and value.lstrip().startswith("{")
            else value
        )
        if isinstance(ref, Mapping):
            try:
                resolved = self._resolver.resolve_spec({"auth_password": dict(ref)})
            except SecretRefError as exc:
                raise ColumnError("auth_password", exc.message) from None
            spec["auth_password"] = resolved["auth_password"]
            return
        if not isinstance(value, str):
            raise ColumnError(
                "auth_password", "must be text or a reference {'conn': ...} / {'variable': ...}"
            )
        self.secrets.append(value)
        spec["auth_password"] = value
