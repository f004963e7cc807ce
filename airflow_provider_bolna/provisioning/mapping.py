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
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_bolna.models import FieldError, SpecError, TrunkSpec, parse_trunk_spec
from airflow_provider_bolna.provisioning.settings import (
    DEFAULT_NAME_TEMPLATE,
    NameTemplate,
    check_trunk_name,
)
from airflow_provider_bolna.secrets.refs import PasswordRefPolicy, SecretRefError, SecretResolver

__all__ = [
    "CONTRACT_COLUMNS",
    "DEFAULT_NAME_TEMPLATE",
    "MappedCustomer",
    "RowMapper",
    "customer_key",
    "render_trunk_name",
    "validate_name_template",
]

CustomerStatus = Literal["active", "churned"]

#: Boolean columns copied to the spec under the same name.
BOOL_COLUMNS: tuple[str, ...] = (
    "inbound_enabled",
    "outbound_leading_plus_enabled",
    "direct_media",
    "rtp_symmetric",
    "force_rport",
    "media_encryption_optimistic",
)
#: Text columns copied to the spec as they are (``NULL`` = default).
TEXT_COLUMNS: tuple[str, ...] = (
    "provider",
    "description",
    "auth_type",
    "auth_username",
    "allow",
    "disallow",
    "media_encryption",
)
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
#: Bolna documents agent ids as UUIDs but shows other forms: opaque, bounded, no whitespace.
_AGENT_ID = re.compile(r"^[^\s/]{1,128}$")

_TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "f", "0", "no", "n", "off"})
_SPLIT = re.compile(r"[,;\s]+")
_GATEWAY_SPLIT = re.compile(r"[;,\s]+")
_GATEWAY_V6 = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?(?::(?P<priority>[^:]*))?$")
_BRACKETED_V6_START = re.compile(r"^\[[0-9A-Fa-f:.%]+\]")
_TRANSPORTS = {"udp": "transport-udp", "tcp": "transport-tcp", "tls": "transport-tls"}
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
    """The trunk name of a customer (not checked; see :func:`~.settings.check_trunk_name`)."""
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


class _ColumnError(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field_error = FieldError(field=field, message=message)
        super().__init__(str(self.field_error))


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
        self._resolver = SecretResolver(get_connection=get_connection, get_variable=get_variable,
                                        mask=self.secrets.append, policy=self.password_refs)

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
            err = SpecError([FieldError(field="customer_id", message=f"longer than {MAX_KEY_LENGTH} characters")],
                            context)
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

    def _spec(self, data: dict[str, Any], name: str, context: str) -> tuple[TrunkSpec, dict[str, str], tuple[str, ...]]:
        spec: dict[str, Any] = {"name": name}
        errors: list[FieldError] = []
        for column, convert in self._converter_list:
            value = data.get(column)
            if value is None or (isinstance(value, str) and not value.strip() and column != "description"):
                continue
            try:
                convert(spec, value)
            except _ColumnError as exc:
                errors.append(exc.field_error)
        number_agents: dict[int, str] = spec.pop(_NUMBER_AGENTS, {})
        default_agent = spec.pop("inbound_agent_id", None)
        outbound: tuple[str, ...] = tuple(spec.pop("outbound_agent_ids", ()))
        try:
            result = parse_trunk_spec(spec, context)
        except SpecError as exc:
            # report the model's errors too, except those about columns already rejected above
            rejected = {e.field.split(".")[0] for e in errors}
            errors += [f for f in map(_contract_field, exc.errors) if f.field.split(".")[0] not in rejected]
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
    def _converter_list(self) -> list[tuple[str, Callable[[dict[str, Any], Any], None]]]:
        """Column → setter, built once per mapper (not per row)."""
        out: list[tuple[str, Callable[[dict[str, Any], Any], None]]] = []
        for column in TEXT_COLUMNS:
            out.append((column, _text_setter(column)))
        for column in BOOL_COLUMNS:
            out.append((column, _bool_setter(column)))
        out += [
            ("auth_password", self._set_password),
            ("gateways", _set_gateways),
            ("ip_identifiers", _set_ip_identifiers),
            ("numbers", _set_numbers),
            ("e164_check_enabled", _set_e164),
            ("transport", _set_transport),
            ("qualify_frequency", _set_qualify),
            ("inbound_agent_id", _set_inbound_agent),
            ("outbound_agent_ids", _set_outbound_agents),
        ]
        return out

    def _set_password(self, spec: dict[str, Any], value: Any) -> None:
        ref = _maybe_json(value, "auth_password") if isinstance(value, str) and value.lstrip().startswith("{") else value
        if isinstance(ref, Mapping):
            try:
                resolved = self._resolver.resolve_spec({"auth_password": dict(ref)})
            except SecretRefError as exc:
                raise _ColumnError("auth_password", exc.message) from None
            spec["auth_password"] = resolved["auth_password"]
            return
        if not isinstance(value, str):
            raise _ColumnError("auth_password", "must be text or a reference {'conn': ...} / {'variable': ...}")
        self.secrets.append(value)
        spec["auth_password"] = value


# ---------------------------------------------------------------------- column converters


def _contract_field(error: FieldError) -> FieldError:
    """Name spec fields as contract columns (``phone_numbers.1.phone_number`` → ``numbers.1``,
    ``ip_identifiers.0.ip_address`` → ``ip_identifiers.0``)."""
    name = error.field
    if name.startswith("phone_numbers"):
        parts = name.split(".")
        parts[0] = "numbers"
        if len(parts) >= 3 and parts[2] == "phone_number":
            parts = parts[:2]
        name = ".".join(parts)
    elif name.startswith("ip_identifiers.") and name.endswith(".ip_address"):
        name = name[: -len(".ip_address")]
    return FieldError(field=name, message=error.message) if name != error.field else error


def _maybe_json(value: Any, column: str) -> Any:
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode()
        except UnicodeDecodeError:
            raise _ColumnError(column, "is binary data that is not UTF-8 text") from None
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            raise _ColumnError(column, "looks like JSON but does not parse") from None
    return value


def _split(value: Any, column: str) -> list[Any]:
    value = _maybe_json(value, column)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, str):
        raise _ColumnError(column, "must be a list (text separated by ',' ';' or spaces, or a JSON array)")
    return [item for item in _SPLIT.split(value.strip()) if item]


def _text_setter(column: str) -> Callable[[dict[str, Any], Any], None]:
    def setter(spec: dict[str, Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _ColumnError(column, "must be text")
        spec[column] = value if isinstance(value, str) else str(value)

    return setter


def parse_bool(value: Any, column: str) -> bool:
    """A boolean from ``true/false``, ``1/0``, ``yes/no``, ``t/f``, ``on/off`` or a real bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise _ColumnError(column, "must be a boolean (true/false, 1/0, yes/no)")


def _bool_setter(column: str) -> Callable[[dict[str, Any], Any], None]:
    def setter(spec: dict[str, Any], value: Any) -> None:
        spec[column] = parse_bool(value, column)

    return setter


def _set_e164(spec: dict[str, Any], value: Any) -> None:
    """Apply ``e164_check_enabled`` to every number (numbers are converted before this)."""
    flag = parse_bool(value, "e164_check_enabled")
    for number in spec.get("phone_numbers", []):
        number["e164_check_enabled"] = flag


def _set_transport(spec: dict[str, Any], value: Any) -> None:
    if not isinstance(value, str):
        raise _ColumnError("transport", "must be udp, tcp or tls")
    low = value.strip().lower()
    spec["transport"] = _TRANSPORTS.get(low, low)


def _set_qualify(spec: dict[str, Any], value: Any) -> None:
    if isinstance(value, bool):
        raise _ColumnError("qualify_frequency", "must be a whole number of seconds")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise _ColumnError("qualify_frequency", "must be a whole number of seconds")
    spec["qualify_frequency"] = value


#: where number converters leave per-number agents for :meth:`RowMapper._spec`
_NUMBER_AGENTS = "__number_agents__"


def _agent_id(value: Any, column: str) -> str:
    if not isinstance(value, str) or not _AGENT_ID.match(value.strip()):
        raise _ColumnError(column, "must be a Bolna agent id (1-128 characters, no spaces or '/')")
    text = value.strip()
    if text in (".", ".."):
        raise _ColumnError(column, "must be a Bolna agent id, not '.' or '..'")
    return text


def _set_numbers(spec: dict[str, Any], value: Any) -> None:
    numbers = []
    agents: dict[int, str] = {}
    for i, item in enumerate(_split(value, "numbers")):
        if isinstance(item, Mapping):
            if item.get("agent_id") is not None:
                agents[i] = _agent_id(item["agent_id"], f"numbers.{i}.agent_id")
            item = item.get("phone_number")
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise _ColumnError(f"numbers.{i}", "must be a phone number")
        numbers.append({"phone_number": str(item).strip()})
    spec["phone_numbers"] = numbers
    spec[_NUMBER_AGENTS] = agents


def _set_inbound_agent(spec: dict[str, Any], value: Any) -> None:
    spec["inbound_agent_id"] = _agent_id(value, "inbound_agent_id")


def _set_outbound_agents(spec: dict[str, Any], value: Any) -> None:
    agents = [_agent_id(item, f"outbound_agent_ids.{i}") for i, item in enumerate(_split(value, "outbound_agent_ids"))]
    spec["outbound_agent_ids"] = tuple(dict.fromkeys(agents))


def _set_ip_identifiers(spec: dict[str, Any], value: Any) -> None:
    items = []
    for i, item in enumerate(_split(value, "ip_identifiers")):
        if isinstance(item, Mapping):
            item = item.get("ip_address")
        if not isinstance(item, str) or not item.strip():
            raise _ColumnError(f"ip_identifiers.{i}", "must be an IP address or CIDR range")
        items.append({"ip_address": item.strip()})
    spec["ip_identifiers"] = items


def _set_gateways(spec: dict[str, Any], value: Any) -> None:
    if isinstance(value, str) and _BRACKETED_V6_START.match(value.strip()):
        parsed: Any = value  # "[2001:db8::1]:5060" is a bracketed IPv6 host, not JSON
    else:
        parsed = _maybe_json(value, "gateways")
    if isinstance(parsed, Mapping):
        parsed = [parsed]
    if isinstance(parsed, str):
        items: list[Any] = [p for p in _GATEWAY_SPLIT.split(parsed.strip()) if p]
        ordered = True
    elif isinstance(parsed, (list, tuple)):
        items, ordered = list(parsed), False
    else:
        raise _ColumnError("gateways", "must be a JSON array or text host[:port[:priority]] separated by ';'")
    gateways = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            gateways.append(dict(item))
        elif isinstance(item, str):
            gateways.append(_parse_gateway_text(item, i, default_priority=(i + 1) if ordered else None))
        else:
            raise _ColumnError(f"gateways.{i}", "must be an object or a 'host:port' string")
    spec["gateways"] = gateways


def _parse_gateway_text(text: str, index: int, default_priority: int | None) -> dict[str, Any]:
    text = text.strip()
    match = _GATEWAY_V6.match(text)
    if match:
        host, port, priority = match.group("host"), match.group("port"), match.group("priority")
    else:
        parts = text.split(":")
        if len(parts) > 3:
            raise _ColumnError(f"gateways.{index}", "must be host[:port[:priority]] (bracket IPv6 hosts: [::1]:5060)")
        host = parts[0]
        port = parts[1] if len(parts) > 1 else None
        priority = parts[2] if len(parts) > 2 else None
    gateway: dict[str, Any] = {"gateway_address": host}
    for key, raw in (("port", port), ("priority", priority)):
        if raw is None or raw == "":
            continue
        if not raw.strip().isdigit():
            raise _ColumnError(f"gateways.{index}.{key}", "must be a whole number")
        gateway[key] = int(raw)
    if "priority" not in gateway and default_priority is not None:
        gateway["priority"] = default_priority
    return gateway
