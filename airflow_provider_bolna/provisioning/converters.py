"""Column converters: one contract column's value → the spec fields it sets.

Each converter reads one column of a customer row (text, JSON text, a JSON column, a number)
and sets the :class:`~airflow_provider_bolna.models.TrunkSpec` fields it stands for, or raises
:class:`ColumnError` naming the column (never echoing the value). The contract itself, and
the mapper that runs these converters over a row, are in :mod:`.mapping`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_bolna.models import FieldError

__all__ = [
    "BOOL_COLUMNS",
    "NUMBER_AGENTS",
    "TEXT_COLUMNS",
    "ColumnError",
    "Setter",
    "column_converters",
    "contract_field",
    "maybe_json",
    "parse_bool",
]

#: sets the spec fields of one column's (non-empty) value
Setter = Callable[[dict[str, Any], Any], None]

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
#: Bolna documents agent ids as UUIDs but shows other forms: opaque, bounded, no whitespace.
_AGENT_ID = re.compile(r"^[^\s/]{1,128}$")

_TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "f", "0", "no", "n", "off"})
_SPLIT = re.compile(r"[,;\s]+")
_GATEWAY_SPLIT = re.compile(r"[;,\s]+")
_GATEWAY_V6 = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?(?::(?P<priority>[^:]*))?$")
_BRACKETED_V6_START = re.compile(r"^\[[0-9A-Fa-f:.%]+\]")
_TRANSPORTS = {"udp": "transport-udp", "tcp": "transport-tcp", "tls": "transport-tls"}


class ColumnError(Exception):
    """One column's value breaks a rule (the message names the column, never the value)."""

    def __init__(self, field: str, message: str) -> None:
        self.field_error = FieldError(field=field, message=message)
        super().__init__(str(self.field_error))


def column_converters(set_password: Setter) -> list[tuple[str, Setter]]:
    """Column → setter, in the order they run (numbers before ``e164_check_enabled``).

    :param set_password: the ``auth_password`` setter (the mapper's: it resolves references
        and collects the secret).
    """
    out: list[tuple[str, Setter]] = []
    for column in TEXT_COLUMNS:
        out.append((column, _text_setter(column)))
    for column in BOOL_COLUMNS:
        out.append((column, _bool_setter(column)))
    out += [
        ("auth_password", set_password),
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


def contract_field(error: FieldError) -> FieldError:
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


def maybe_json(value: Any, column: str) -> Any:
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode()
        except UnicodeDecodeError:
            raise ColumnError(column, "is binary data that is not UTF-8 text") from None
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            raise ColumnError(column, "looks like JSON but does not parse") from None
    return value


def _split(value: Any, column: str) -> list[Any]:
    value = maybe_json(value, column)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, str):
        raise ColumnError(column, "must be a list (text separated by ',' ';' or spaces, or a JSON array)")
    return [item for item in _SPLIT.split(value.strip()) if item]


def _text_setter(column: str) -> Callable[[dict[str, Any], Any], None]:
    def setter(spec: dict[str, Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ColumnError(column, "must be text")
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
    raise ColumnError(column, "must be a boolean (true/false, 1/0, yes/no)")


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
        raise ColumnError("transport", "must be udp, tcp or tls")
    low = value.strip().lower()
    spec["transport"] = _TRANSPORTS.get(low, low)


def _set_qualify(spec: dict[str, Any], value: Any) -> None:
    if isinstance(value, bool):
        raise ColumnError("qualify_frequency", "must be a whole number of seconds")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise ColumnError("qualify_frequency", "must be a whole number of seconds")
    spec["qualify_frequency"] = value


#: where number converters leave per-number agents for :meth:`~.mapping.RowMapper._spec`
NUMBER_AGENTS = "__number_agents__"


def _agent_id(value: Any, column: str) -> str:
    if not isinstance(value, str) or not _AGENT_ID.match(value.strip()):
        raise ColumnError(column, "must be a Bolna agent id (1-128 characters, no spaces or '/')")
    text = value.strip()
    if text in (".", ".."):
        raise ColumnError(column, "must be a Bolna agent id, not '.' or '..'")
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
            raise ColumnError(f"numbers.{i}", "must be a phone number")
        numbers.append({"phone_number": str(item).strip()})
    spec["phone_numbers"] = numbers
    spec[NUMBER_AGENTS] = agents


def _set_inbound_agent(spec: dict[str, Any], value: Any) -> None:
    spec["inbound_agent_id"] = _agent_id(value, "inbound_agent_id")


def _set_outbound_agents(spec: dict[str, Any], value: Any) -> None:
    agents = [
        _agent_id(item, f"outbound_agent_ids.{i}")
        for i, item in enumerate(_split(value, "outbound_agent_ids"))
    ]
    spec["outbound_agent_ids"] = tuple(dict.fromkeys(agents))


def _set_ip_identifiers(spec: dict[str, Any], value: Any) -> None:
    items = []
    for i, item in enumerate(_split(value, "ip_identifiers")):
        if isinstance(item, Mapping):
            item = item.get("ip_address")
        if not isinstance(item, str) or not item.strip():
            raise ColumnError(f"ip_identifiers.{i}", "must be an IP address or CIDR range")
        items.append({"ip_address": item.strip()})
    spec["ip_identifiers"] = items


def _set_gateways(spec: dict[str, Any], value: Any) -> None:
    if isinstance(value, str) and _BRACKETED_V6_START.match(value.strip()):
        parsed: Any = value  # "[2001:db8::1]:5060" is a bracketed IPv6 host, not JSON
    else:
        parsed = maybe_json(value, "gateways")
    if isinstance(parsed, Mapping):
        parsed = [parsed]
    if isinstance(parsed, str):
        items: list[Any] = [p for p in _GATEWAY_SPLIT.split(parsed.strip()) if p]
        ordered = True
    elif isinstance(parsed, (list, tuple)):
        items, ordered = list(parsed), False
    else:
        raise ColumnError("gateways", "must be a JSON array or text host[:port[:priority]] separated by ';'")
    gateways = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            gateways.append(dict(item))
        elif isinstance(item, str):
            gateways.append(_parse_gateway_text(item, i, default_priority=(i + 1) if ordered else None))
        else:
            raise ColumnError(f"gateways.{i}", "must be an object or a 'host:port' string")
    spec["gateways"] = gateways


def _parse_gateway_text(text: str, index: int, default_priority: int | None) -> dict[str, Any]:
    text = text.strip()
    match = _GATEWAY_V6.match(text)
    if match:
        host, port, priority = match.group("host"), match.group("port"), match.group("priority")
    else:
        parts = text.split(":")
        if len(parts) > 3:
            raise ColumnError(
                f"gateways.{index}", "must be host[:port[:priority]] (bracket IPv6 hosts: [::1]:5060)"
            )
        host = parts[0]
        port = parts[1] if len(parts) > 1 else None
        priority = parts[2] if len(parts) > 2 else None
    gateway: dict[str, Any] = {"gateway_address": host}
    for key, raw in (("port", port), ("priority", priority)):
        if raw is None or raw == "":
            continue
        if not raw.strip().isdigit():
            raise ColumnError(f"gateways.{index}.{key}", "must be a whole number")
        gateway[key] = int(raw)
    if "priority" not in gateway and default_priority is not None:
        gateway["priority"] = default_priority
    return gateway
