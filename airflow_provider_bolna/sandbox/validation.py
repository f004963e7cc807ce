"""Every server-side rule of the sandbox, in one place.

Each rule failure raises :class:`~.errors.ApiError` 400 whose message starts with the field it
is about (``"gateways[0].port: must be an integer between 1 and 65535"``). Rules come from the
OpenAPI spec (types, enums, ranges, the if/then cross-field rules) plus the choices documented
in ``docs/sandbox.md`` where the spec is silent:

* unknown fields (top level and inside gateways / ip identifiers / numbers) are rejected;
* booleans must be JSON booleans, integers JSON integers (``5060.0`` is accepted as 5060);
* ``media_encryption`` must be the *string* ``"no"`` or ``"sdes"``; JSON ``false`` is refused;
* cross-field rules are checked on the *resulting* trunk, so a PATCH may set
  ``media_encryption: sdes`` alone when the stored transport is already TLS, and a PATCH that
  would leave a trunk invalid (e.g. ``gateways: []``, or UDP under SDES) is refused;
* the deprecated ``ice_support`` (trunk) and guide-only ``is_active`` (number) are accepted,
  type-checked and ignored;
* agent binding (``agent-binding.openapi.yaml``): the agent PATCH accepts nothing but
  ``agent_config.telephony_provider`` (what a trunk-binding client must send), one of the
  documented providers or ``trunk``; ``allow_multiple: true`` (Plivo only) is refused on
  ``/inbound/setup``; ``agent_id`` on ``/inbound/unlink`` is tolerated and ignored.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ApiError, bad_request

Checker = Callable[[str, Any], Any]
"""Validate one value: ``(field_path, raw) -> normalised value`` or raise ApiError 400."""

MAX_INT32 = 2**31 - 1
AUTH_TYPES = ("userpass", "ip-based")
TRANSPORTS = ("transport-udp", "transport-tcp", "transport-tls")
MEDIA_ENCRYPTIONS = ("no", "sdes")
_CODECS = re.compile(r"[a-z0-9_.-]+(?:,[a-z0-9_.-]+)*", re.ASCII)
_DIGITS = re.compile(r"\+?[0-9]{1,32}", re.ASCII)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)
_OPAQUE_ID = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
#: the documented enum of PATCH /v2/agent (twilio ... default) plus the newer family's ``trunk``
TELEPHONY_PROVIDERS = ("twilio", "plivo", "exotel", "vobiz", "sip-trunk", "default", "trunk")


# --------------------------------------------------------------------------- value checkers
def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request(field, "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(field, "must be valid unicode text") from None
    return value


def any_string(field: str, value: Any) -> str:
    """Any JSON string (may be empty)."""
    return _text(field, value)


def non_empty_string(field: str, value: Any) -> str:
    """A JSON string with at least one non-blank character; stored verbatim."""
    text = _text(field, value)
    if not text.strip():
        raise bad_request(field, "must be a non-empty string")
    return text


def nullable_string(field: str, value: Any) -> str | None:
    """A JSON string or ``null``."""
    return None if value is None else _text(field, value)


def boolean(field: str, value: Any) -> bool:
    """A JSON boolean (``"true"``, ``1`` ... are refused)."""
    if not isinstance(value, bool):
        raise bad_request(field, "must be a JSON boolean (true or false)")
    return value


def integer(low: int, high: int) -> Checker:
    """An integer in ``[low, high]``; an integral float such as ``5060.0`` counts."""

    def check(field: str, value: Any) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad_request(field, f"must be an integer between {low} and {high}")
        return value

    return check


def one_of(*allowed: str) -> Checker:
    """One of the given strings (JSON ``false`` is not ``"no"``)."""
    listed = ", ".join(f"'{a}'" for a in allowed)

    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise bad_request(field, f"must be one of {listed}")
        return value

    return check


def codec_list(field: str, value: Any) -> str:
    """Comma-separated lowercase Asterisk codec names, no blanks or empty tokens."""
    if not isinstance(value, str) or not _CODECS.fullmatch(value):
        raise bad_request(
            field, "must be comma-separated lowercase codec names (e.g. 'ulaw,alaw'), no spaces"
        )
    return value


def opaque_id(field: str, value: Any) -> str:
    """An id chosen by the caller: 1-200 characters, no whitespace or control characters."""
    if not isinstance(value, str) or not _OPAQUE_ID.fullmatch(value):
        raise bad_request(field, "must be 1-200 characters without whitespace or control characters")
    return value


def ip_or_cidr(field: str, value: Any) -> str:
    """An IPv4/IPv6 address or CIDR range (host bits allowed); stored as sent."""
    text = _text(field, value)
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise bad_request(field, "must be an IPv4/IPv6 address or CIDR range") from None
    return text


def obj(
    spec: Mapping[str, Checker], *, required: tuple[str, ...] = (), defaults: Mapping[str, Any] | None = None
) -> Checker:
    """A JSON object with exactly the keys of ``spec`` (unknown keys are refused)."""

    def check(field: str, value: Any) -> dict[str, Any]:
        return _check_object(field, value, spec, required, defaults or {})

    return check


def list_of(item: Checker) -> Checker:
    """A JSON array whose items all pass ``item``."""

    def check(field: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise bad_request(field, "must be an array")
        return [item(f"{field}[{i}]", v) for i, v in enumerate(value)]

    return check


def _check_object(
    field: str,
    value: Any,
    spec: Mapping[str, Checker],
    required: tuple[str, ...],
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    prefix = f"{field}." if field else ""
    if not isinstance(value, dict):
        raise bad_request(field or "body", "must be a JSON object")
    for key in value:
        if key not in spec:
            raise bad_request(f"{prefix}{key}", "unknown field")
    for key in required:
        if key not in value:
            raise bad_request(f"{prefix}{key}", "is required")
    out = dict(defaults)
    for key, checker in spec.items():  # spec order keeps error messages deterministic
        if key in value:
            out[key] = checker(f"{prefix}{key}", value[key])
    return out


# --------------------------------------------------------------------------- shapes
GATEWAY = obj(
    {
        "gateway_address": non_empty_string,
        "port": integer(1, 65535),
        "priority": integer(0, MAX_INT32),
    },
    required=("gateway_address",),
    defaults={"port": 5060, "priority": 1},
)
IP_IDENTIFIER = obj({"ip_address": ip_or_cidr}, required=("ip_address",))
NUMBER_FIELDS: dict[str, Checker] = {
    "phone_number": any_string,
    "name": any_string,
    "e164_check_enabled": boolean,
    "is_active": boolean,  # guide-only field: accepted, ignored
}

#: trunk fields settable on create and (except where noted) on update, in spec order
_COMMON_FIELDS: dict[str, Checker] = {
    "name": non_empty_string,
    "description": nullable_string,
    "auth_username": any_string,
    "auth_password": any_string,
    "gateways": list_of(GATEWAY),
    "ip_identifiers": list_of(IP_IDENTIFIER),
    "allow": codec_list,
    "disallow": codec_list,
    "transport": one_of(*TRANSPORTS),
    "direct_media": boolean,
    "rtp_symmetric": boolean,
    "force_rport": boolean,
    "ice_support": boolean,  # deprecated: accepted, ignored
    "media_encryption": one_of(*MEDIA_ENCRYPTIONS),
    "media_encryption_optimistic": boolean,
    "qualify_frequency": integer(0, MAX_INT32),
    "inbound_enabled": boolean,
    "outbound_leading_plus_enabled": boolean,
}
CREATE_FIELDS: dict[str, Checker] = {
    "provider": non_empty_string,
    "auth_type": one_of(*AUTH_TYPES),
    **_COMMON_FIELDS,
    "phone_numbers": list_of(lambda field, value: validate_number(value, field)),
}
UPDATE_FIELDS: dict[str, Checker] = {**_COMMON_FIELDS, "is_active": boolean}
IMMUTABLE_FIELDS = ("provider", "auth_type")
IGNORED_FIELDS = ("ice_support",)
CREATE_REQUIRED = ("name", "provider", "auth_type", "gateways")

#: defaults the server fills in on create (documented in the API reference)
TRUNK_DEFAULTS: dict[str, Any] = {
    "description": None,
    "auth_username": None,
    "auth_password": None,
    "ip_identifiers": [],
    "allow": "ulaw,alaw",
    "disallow": "all",
    "transport": "transport-udp",
    "direct_media": False,
    "rtp_symmetric": True,
    "force_rport": True,
    "media_encryption": "no",
    "media_encryption_optimistic": False,
    "qualify_frequency": 60,
    "inbound_enabled": False,
    "outbound_leading_plus_enabled": True,
    "is_active": True,
}


# --------------------------------------------------------------------------- rules
def check_trunk_rules(trunk: Mapping[str, Any]) -> None:
    """Cross-field rules on a complete trunk (after defaults / after merging a PATCH).

    ``trunk["auth_password"]`` only needs to be truthy when a password is (or will be) set.
    """
    if trunk["auth_type"] == "userpass":
        if not (trunk.get("auth_username") or "").strip():
            raise bad_request("auth_username", "required when auth_type is 'userpass'")
        if not trunk.get("auth_password"):
            raise bad_request("auth_password", "required when auth_type is 'userpass'")
    if trunk["auth_type"] == "ip-based" and not trunk.get("ip_identifiers"):
        raise bad_request("ip_identifiers", "at least one entry is required when auth_type is 'ip-based'")
    if not trunk.get("gateways"):
        raise bad_request("gateways", "at least one gateway is required")
    if trunk["media_encryption"] == "sdes" and trunk["transport"] != "transport-tls":
        raise bad_request("media_encryption", "'sdes' requires transport 'transport-tls'")


def validate_number(value: Any, field: str = "") -> dict[str, Any]:
    """Validate one add-number body (or one inline ``phone_numbers`` item).

    Returns ``{"phone_number", "digits", "name"}``; ``digits`` (the number without a leading
    ``+``) is the duplicate key.
    """
    number = _check_object(field, value, NUMBER_FIELDS, ("phone_number",), {})
    where = f"{field}.phone_number" if field else "phone_number"
    raw = number["phone_number"]
    if not raw:
        raise bad_request(where, "must not be empty")
    if not _DIGITS.fullmatch(raw):
        raise bad_request(where, "must be digits with an optional leading '+' (at most 32 digits)")
    if number.get("e164_check_enabled") and not _E164.fullmatch(raw):
        raise bad_request(
            where, "must be E.164 ('+', country code, 7-15 digits in total) when e164_check_enabled is true"
        )
    return {"phone_number": raw, "digits": raw.lstrip("+"), "name": number.get("name")}


def validate_create(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate a create-trunk body; return the complete trunk (defaults filled) and numbers."""
    given = _check_object("", body, CREATE_FIELDS, CREATE_REQUIRED, {})
    numbers = given.pop("phone_numbers", [])
    trunk = {**TRUNK_DEFAULTS, **given}
    for key in IGNORED_FIELDS:
        trunk.pop(key, None)
    check_trunk_rules(trunk)
    return trunk, numbers


def validate_update(body: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a PATCH body against the ``current`` trunk; return only the changed fields.

    ``current`` holds at least the fields :func:`check_trunk_rules` reads.
    """
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    if not body:
        raise bad_request("body", "must contain at least one field to update")
    for key in IMMUTABLE_FIELDS:
        if key in body:
            raise bad_request(key, "cannot be changed after the trunk is created")
    changes = _check_object("", body, UPDATE_FIELDS, (), {})
    for key in IGNORED_FIELDS:
        changes.pop(key, None)
    check_trunk_rules({**current, **changes})
    return changes


AGENT_PATCH = obj(
    {
        "agent_config": obj(
            {"telephony_provider": one_of(*TELEPHONY_PROVIDERS)}, required=("telephony_provider",)
        )
    },
    required=("agent_config",),
)
INBOUND_SETUP = obj(
    {"agent_id": non_empty_string, "phone_number_id": non_empty_string, "allow_multiple": boolean},
    required=("agent_id", "phone_number_id"),
)
INBOUND_UNLINK = obj(
    {"phone_number_id": non_empty_string, "agent_id": any_string}, required=("phone_number_id",)
)
#: ``POST /__sandbox__/agents`` item
AGENT_SPEC = obj({"id": opaque_id, "name": non_empty_string, "telephony_provider": nullable_string})


def validate_agent_patch(body: Any) -> str:
    """A ``PATCH /v2/agent/{agent_id}`` body; returns the telephony provider."""
    return str(AGENT_PATCH("", body)["agent_config"]["telephony_provider"])


def validate_inbound_setup(body: Any) -> tuple[str, str]:
    """A ``POST /inbound/setup`` body; returns ``(agent_id, phone_number_id)``."""
    setup = INBOUND_SETUP("", body)
    if setup.get("allow_multiple"):
        raise bad_request("allow_multiple", "documented for Plivo numbers only, not for SIP-trunk numbers")
    return setup["agent_id"], setup["phone_number_id"]


def validate_inbound_unlink(body: Any) -> str:
    """A ``POST /inbound/unlink`` body; returns the phone number id."""
    return str(INBOUND_UNLINK("", body)["phone_number_id"])


def parse_is_active(raw: str | None) -> bool | None:
    """The ``is_active`` query filter: ``true`` / ``false`` (any case) or absent."""
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ApiError(400, "is_active: must be 'true' or 'false'")
