"""What Bolna's ``/sip-trunks`` API returns: tolerant shapes (extra fields allowed, ``null``
meaning the documented default), so the live API adding a field never breaks a read. The
agent-binding API's answers are in :mod:`~airflow_provider_bolna.agent_binding`.

Import them from :mod:`airflow_provider_bolna.models`. Imports neither Airflow nor httpx.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airflow_provider_bolna.trunk_settings import (
    TRUNK_DEFAULTS,
    UPDATABLE_FIELDS,
    AuthType,
    MediaEncryption,
    Transport,
    canonical,
    coerce_media_encryption,
    number_key,
)

__all__ = ["ErrorBody", "GatewayInfo", "IPIdentifierInfo", "MessageResponse", "PhoneNumber", "SIPTrunk"]


class _Response(BaseModel):
    """Base of response shapes: tolerant of fields the live API adds, and of ``null``.

    A ``null`` for a field that has a non-null default means "use the default" (the API's
    documented defaults), so one nullable column cannot make a whole trunk unreadable.
    """

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            k: v
            for k, v in data.items()
            if not (
                v is None
                and k in fields
                and not fields[k].is_required()
                and fields[k].get_default(call_default_factory=True) is not None
            )
        }


class GatewayInfo(_Response):
    """A gateway as returned by the API (may carry a server ``id``)."""

    gateway_address: str
    port: int = 5060
    priority: int = 1
    id: str | None = None
    created_at: datetime | None = None


class IPIdentifierInfo(_Response):
    """An IP identifier as returned by the API."""

    ip_address: str


class _AgentMapped(_Response):
    """A phone number as some listing returns it, maybe with its inbound agent.

    ``agent_id`` is documented by the trunk guide (string or ``null``) but missing from the
    published schema of the trunk's number list: absent means *unknown*, not *no agent*.
    """

    id: str
    phone_number: str
    telephony_provider: str | None = None
    agent_id: str | None = None

    @property
    def key(self) -> str:
        """Digits without ``+``: how numbers are matched."""
        return number_key(self.phone_number)

    @property
    def agent_known(self) -> bool:
        """Whether the response carried ``agent_id`` at all (then ``None`` means "no agent")."""
        return "agent_id" in self.model_fields_set


class PhoneNumber(_AgentMapped):
    """A DID registered on a trunk, as returned by the API (``agent_id``: see
    :attr:`agent_known`)."""

    name: str | None = None
    byot_trunk_id: str | None = None
    deleted: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SIPTrunk(_Response):
    """A SIP trunk as returned by create / get / list / update.

    Fields the API omits take Bolna's documented defaults, so that comparing with a
    :class:`TrunkSpec` is a comparison of effective settings.
    """

    id: str
    name: str | None = None
    provider: str | None = None
    description: str | None = None
    auth_type: AuthType | None = None
    auth_username: str | None = None
    gateways: list[GatewayInfo] = Field(default_factory=list)
    ip_identifiers: list[IPIdentifierInfo] = Field(default_factory=list)
    phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    allow: str = TRUNK_DEFAULTS["allow"]
    disallow: str = TRUNK_DEFAULTS["disallow"]
    transport: Transport = TRUNK_DEFAULTS["transport"]
    direct_media: bool = TRUNK_DEFAULTS["direct_media"]
    rtp_symmetric: bool = TRUNK_DEFAULTS["rtp_symmetric"]
    force_rport: bool = TRUNK_DEFAULTS["force_rport"]
    media_encryption: MediaEncryption = TRUNK_DEFAULTS["media_encryption"]
    media_encryption_optimistic: bool = TRUNK_DEFAULTS["media_encryption_optimistic"]
    qualify_frequency: int = TRUNK_DEFAULTS["qualify_frequency"]
    inbound_enabled: bool = TRUNK_DEFAULTS["inbound_enabled"]
    outbound_leading_plus_enabled: bool = TRUNK_DEFAULTS["outbound_leading_plus_enabled"]
    is_active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("media_encryption", mode="before")
    @classmethod
    def _media_encryption(cls, v: Any) -> Any:
        return coerce_media_encryption(v)

    @property
    def active_numbers(self) -> list[PhoneNumber]:
        """Numbers on the trunk that are not soft-deleted."""
        return [n for n in self.phone_numbers if not n.deleted]

    def comparable(self) -> dict[str, Any]:
        """The updatable fields in canonical form, for drift detection against a spec."""
        data = self.model_dump(mode="json", include=set(UPDATABLE_FIELDS))
        data["gateways"] = [
            {"gateway_address": g["gateway_address"], "port": g["port"], "priority": g["priority"]}
            for g in data.get("gateways", [])
        ]
        data["ip_identifiers"] = [{"ip_address": i["ip_address"]} for i in data.get("ip_identifiers", [])]
        return canonical(data)


class ErrorBody(_Response):
    """Any error body Bolna sends: documented ``{error, message}`` or FastAPI's ``{detail}``."""

    error: int | str | None = None
    message: str | None = None
    detail: str | list[Any] | dict[str, Any] | None = None

    def text(self) -> str:
        """Human-readable text, in the order Bolna's own clients use: message, detail, error.

        List-shaped ``detail`` items contribute only their location and message, never the
        ``input`` that FastAPI echoes (it could hold a password).
        """
        if self.message:
            return self.message
        if isinstance(self.detail, str) and self.detail:
            return self.detail
        if isinstance(self.detail, list):
            parts = []
            for item in self.detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    msg = str(item.get("msg", "invalid"))
                    parts.append(f"{loc}: {msg}" if loc else msg)
                else:
                    parts.append(str(item)[:200])
            if parts:
                return "; ".join(parts)
        if isinstance(self.detail, dict) and self.detail.get("message"):
            return str(self.detail["message"])
        if self.error is not None:
            return str(self.error)
        return ""


class MessageResponse(_Response):
    """``{message}`` bodies of the delete endpoints."""

    message: str = ""
