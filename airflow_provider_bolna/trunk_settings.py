"""The settings of a SIP trunk as Bolna names them, shared by requests and responses.

The enums, which settings PATCH may change, Bolna's documented defaults (one table: a
:class:`~airflow_provider_bolna.models.TrunkSpec` sends them, a
:class:`~airflow_provider_bolna.responses.SIPTrunk` read without them takes them), and the
canonical form drift detection compares. Import them from :mod:`airflow_provider_bolna.models`.

Imports neither Airflow nor httpx.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import Any

__all__ = [
    "IMMUTABLE_FIELDS",
    "TRUNK_DEFAULTS",
    "UPDATABLE_FIELDS",
    "AuthType",
    "MediaEncryption",
    "Transport",
    "canonical",
    "coerce_media_encryption",
    "number_key",
    "plain",
]

#: Fields the API lets you change with PATCH (``provider`` and ``auth_type`` are fixed at creation).
UPDATABLE_FIELDS: tuple[str, ...] = (
    "description",
    "auth_username",
    "auth_password",
    "gateways",
    "ip_identifiers",
    "allow",
    "disallow",
    "transport",
    "direct_media",
    "rtp_symmetric",
    "force_rport",
    "media_encryption",
    "media_encryption_optimistic",
    "qualify_frequency",
    "inbound_enabled",
    "outbound_leading_plus_enabled",
)
IMMUTABLE_FIELDS: tuple[str, ...] = ("provider", "auth_type")


class AuthType(str, Enum):
    """How Bolna authenticates against the carrier."""

    USERPASS = "userpass"
    IP_BASED = "ip-based"


class Transport(str, Enum):
    """SIP signalling transport (Asterisk PJSIP names)."""

    UDP = "transport-udp"
    TCP = "transport-tcp"
    TLS = "transport-tls"


class MediaEncryption(str, Enum):
    """RTP encryption. The "off" value is the *string* ``"no"``, not a boolean."""

    NO = "no"
    SDES = "sdes"


#: Bolna's documented defaults of the optional trunk settings, the one table both sides use: a
#: :class:`TrunkSpec` sends them explicitly, and a :class:`SIPTrunk` read without them takes them,
#: so drift detection compares effective settings (one list: the two cannot disagree).
TRUNK_DEFAULTS: dict[str, Any] = {
    "allow": "ulaw,alaw",
    "disallow": "all",
    "transport": Transport.UDP,
    "direct_media": False,
    "rtp_symmetric": True,
    "force_rport": True,
    "media_encryption": MediaEncryption.NO,
    "media_encryption_optimistic": False,
    "qualify_frequency": 60,
    "inbound_enabled": False,
    "outbound_leading_plus_enabled": True,
}


def coerce_media_encryption(value: Any) -> Any:
    """Accept YAML's ``no`` → ``False`` confusion: ``False``/``"false"``/``"off"``/``None`` mean ``"no"``."""
    if value is None or value is False:
        return MediaEncryption.NO
    if isinstance(value, str) and value.strip().lower() in {"no", "false", "off", "none", ""}:
        return MediaEncryption.NO
    if isinstance(value, str):
        return value.strip().lower()
    return value


def number_key(phone_number: str) -> str:
    """Digits of a phone number without the leading ``+`` (how Bolna matches numbers)."""
    return phone_number.strip().lstrip("+")


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def canonical(data: dict[str, Any]) -> dict[str, Any]:
    """Order-insensitive form of list fields, so that reordering alone is not drift."""
    out = dict(data)
    for codecs in ("allow", "disallow"):
        if isinstance(out.get(codecs), str):
            out[codecs] = ",".join(t.strip() for t in out[codecs].split(","))
    if out.get("gateways") is not None:
        out["gateways"] = sorted(
            (
                {"gateway_address": g["gateway_address"], "port": g["port"], "priority": g["priority"]}
                for g in out["gateways"]
            ),
            key=lambda g: (g["priority"], g["gateway_address"], g["port"]),
        )
    if out.get("ip_identifiers") is not None:
        out["ip_identifiers"] = sorted(
            ({"ip_address": _canonical_ip(i["ip_address"])} for i in out["ip_identifiers"]),
            key=lambda i: i["ip_address"],
        )
    return out


def _canonical_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value
