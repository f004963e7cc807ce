"""Typed shapes and rules of Bolna's ``/sip-trunks`` API, and of its agent-binding calls
(:mod:`~airflow_provider_bolna.agent_binding`): import them all from here.

Requests (this module) validate themselves before anything is sent (each rule's message names
the field); responses (:mod:`~airflow_provider_bolna.responses`) tolerate extra and missing
fields, because the live API adds fields over time; both share the trunk settings, their
defaults and their canonical form (:mod:`~airflow_provider_bolna.trunk_settings`).

Secrets: ``auth_password`` is a :class:`pydantic.SecretStr`. It shows as ``'**********'`` in
``repr``, ``str``, ``model_dump()`` and JSON dumps; only :meth:`TrunkSpec.to_request_body` and
:meth:`SIPTrunkUpdateRequest.to_request_body` reveal it, to build the HTTP body. Validation
errors never echo input values (``hide_input_in_errors``), so a rejected payload cannot leak
a password into a log line or an exception.

This module imports neither Airflow nor httpx: the sandbox, the provisioning engine and the
benchmarks use it without an Airflow runtime.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from airflow_provider_bolna import agent_binding
from airflow_provider_bolna.agent_binding import (  # noqa: F401 - re-exported: import every shape from here
    SIP_TRUNK_PROVIDER,
    AccountPhoneNumber,
    AgentConfigPatch,
    AgentTelephonyUpdate,
    AgentUpdateResponse,
    InboundAgentResponse,
    InboundSetupRequest,
    InboundUnlinkRequest,
    InboundUnlinkResponse,
    User,
    UserConcurrency,
    parse_agent_ids,
    parse_number_agents,
)
from airflow_provider_bolna.responses import (
    ErrorBody,
    GatewayInfo,
    IPIdentifierInfo,
    MessageResponse,
    PhoneNumber,
    SIPTrunk,
)
from airflow_provider_bolna.spec_errors import FieldError, SpecError
from airflow_provider_bolna.trunk_settings import (
    IMMUTABLE_FIELDS,
    TRUNK_DEFAULTS,
    UPDATABLE_FIELDS,
    AuthType,
    MediaEncryption,
    Transport,
    canonical,
    coerce_media_encryption,
    number_key,
    plain,
)

__all__ = [  # noqa: PLE0604 - the agent-binding shapes are re-exported by name
    "IMMUTABLE_FIELDS",
    "TRUNK_DEFAULTS",
    "UPDATABLE_FIELDS",
    "AuthType",
    "ErrorBody",
    "FieldError",
    "Gateway",
    "GatewayInfo",
    "IPIdentifier",
    "IPIdentifierInfo",
    "MediaEncryption",
    "MessageResponse",
    "PhoneNumber",
    "PhoneNumberRequest",
    "SIPTrunk",
    "SIPTrunkCreateRequest",
    "SIPTrunkUpdateRequest",
    "SpecError",
    "Transport",
    "TrunkSpec",
    "number_key",
    "parse_trunk_spec",
    *agent_binding.__all__,
]

E164_PATTERN = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Legacy trunks store numbers verbatim, with or without "+"; we still refuse what cannot be a DID.
DID_PATTERN = re.compile(r"^\+?[0-9]{3,15}$")
CODEC_TOKEN = re.compile(r"^!?[a-z0-9][a-z0-9_.\-]*$")


class _Request(BaseModel):
    """Base of request shapes: strict about unknown fields, never echoes input in errors."""

    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        str_strip_whitespace=True,
        use_enum_values=False,
        validate_assignment=True,
    )


def _check_codecs(value: str | None) -> str | None:
    if value is None:
        return value
    tokens = [t.strip() for t in value.split(",")]
    if not value.strip() or any(not t for t in tokens):
        raise ValueError("must be a comma-separated list of codec names with no empty entries")
    bad = [i for i, t in enumerate(tokens, 1) if not CODEC_TOKEN.match(t)]
    if bad:
        # positions, not the names: an error message never echoes input
        where = ", ".join(str(i) for i in bad[:3])
        raise ValueError(f"invalid codec name at position {where}; use lower-case names such as ulaw,alaw")
    return ",".join(tokens)


class _TrunkRequest(_Request):
    """Base of the create and update bodies: the rules of the settings both send (what
    ``media_encryption: null`` means differs: the default in a spec, "unchanged" in an update)."""

    @field_validator("auth_password", mode="before", check_fields=False)
    @classmethod
    def _password_verbatim(cls, v: Any) -> Any:
        """Wrap a password before validation so ``str_strip_whitespace`` cannot trim it."""
        return SecretStr(v) if isinstance(v, str) else v

    @field_validator("allow", "disallow", check_fields=False)
    @classmethod
    def _codecs(cls, v: str | None) -> str | None:
        return _check_codecs(v)


Port = Annotated[int, Field(ge=1, le=65535, strict=False)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


class Gateway(_Request):
    """A carrier SIP host Bolna sends calls to.

    :param gateway_address: hostname or IP of the carrier gateway.
    :param port: SIP port, 1–65535 (5060 for UDP/TCP, 5061 for TLS).
    :param priority: lower is preferred; others are failover.
    """

    gateway_address: NonEmptyStr
    port: Port = 5060
    priority: Annotated[int, Field(ge=0)] = 1

    @field_validator("gateway_address")
    @classmethod
    def _no_spaces(cls, v: str) -> str:
        if any(c.isspace() for c in v) or "/" in v:
            raise ValueError("must be a hostname or IP address without spaces, scheme or path")
        return v


class IPIdentifier(_Request):
    """An address or CIDR range the carrier sends from (ip-based auth)."""

    ip_address: NonEmptyStr

    @field_validator("ip_address")
    @classmethod
    def _valid_ip(cls, v: str) -> str:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError("must be an IPv4/IPv6 address or CIDR range, e.g. 203.0.113.0/28") from None
        return v


class PhoneNumberRequest(_Request):
    """A DID to register on a trunk.

    :param phone_number: digits with or without a leading ``+``; stored verbatim by Bolna.
    :param name: optional label.
    :param e164_check_enabled: when true, the number must be strict E.164 (``+`` and 7–15 digits).
    """

    phone_number: NonEmptyStr
    name: str | None = None
    e164_check_enabled: bool = False

    @field_validator("phone_number", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    @model_validator(mode="after")
    def _check_number(self) -> PhoneNumberRequest:
        if self.e164_check_enabled and not E164_PATTERN.match(self.phone_number):
            raise ValueError(
                "phone_number: must be E.164 ('+' then 7 to 15 digits) when e164_check_enabled is true"
            )
        if not DID_PATTERN.match(self.phone_number):
            raise ValueError("phone_number: must be 3 to 15 digits, optionally after a leading '+'")
        return self

    @property
    def key(self) -> str:
        """The idempotency key of a number: its digits without ``+``."""
        return number_key(self.phone_number)


def _number_entry(value: Any) -> Any:
    """``"+14155550100"`` is shorthand for ``{"phone_number": "+14155550100"}``; a bad shorthand
    is named by its position (``phone_numbers.0``), since it has no ``phone_number`` inside."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        number = str(value).strip()
        if not DID_PATTERN.match(number):
            raise ValueError("must be 3 to 15 digits, optionally after a leading '+'")
        return {"phone_number": number}
    return value


class TrunkSpec(_TrunkRequest):
    """What a SIP trunk should be: the create request, with Bolna's documented defaults.

    Build it from a dict with :func:`parse_trunk_spec` (or ``TrunkSpec.model_validate``) to get
    a :class:`SpecError` naming each bad field. Compare it with an actual :class:`SIPTrunk`
    using :meth:`drift`.
    """

    name: NonEmptyStr
    provider: NonEmptyStr
    description: str | None = None
    auth_type: AuthType
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    gateways: Annotated[list[Gateway], Field(min_length=1)]
    ip_identifiers: list[IPIdentifier] = Field(default_factory=list)
    allow: str = TRUNK_DEFAULTS["allow"]
    disallow: str = TRUNK_DEFAULTS["disallow"]
    transport: Transport = TRUNK_DEFAULTS["transport"]
    direct_media: bool = TRUNK_DEFAULTS["direct_media"]
    rtp_symmetric: bool = TRUNK_DEFAULTS["rtp_symmetric"]
    force_rport: bool = TRUNK_DEFAULTS["force_rport"]
    media_encryption: MediaEncryption = TRUNK_DEFAULTS["media_encryption"]
    media_encryption_optimistic: bool = TRUNK_DEFAULTS["media_encryption_optimistic"]
    qualify_frequency: Annotated[int, Field(ge=0)] = TRUNK_DEFAULTS["qualify_frequency"]
    inbound_enabled: bool = TRUNK_DEFAULTS["inbound_enabled"]
    outbound_leading_plus_enabled: bool = TRUNK_DEFAULTS["outbound_leading_plus_enabled"]
    phone_numbers: list[Annotated[PhoneNumberRequest, BeforeValidator(_number_entry)]] = Field(
        default_factory=list
    )

    @field_validator("media_encryption", mode="before")
    @classmethod
    def _media_encryption(cls, v: Any) -> Any:
        return coerce_media_encryption(v)

    @field_validator("phone_numbers", mode="before")
    @classmethod
    def _one_number_shorthand(cls, v: Any) -> Any:
        """One number alone stands for a list of it."""
        return [v] if isinstance(v, (str, int)) and not isinstance(v, bool) else v

    @field_validator("gateways", mode="before")
    @classmethod
    def _gateways_present(cls, v: Any) -> Any:
        if v is None or v == []:
            raise ValueError("at least one gateway is required")
        return v

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrunkSpec:
        if self.auth_type is AuthType.USERPASS:
            if not self.auth_username:
                raise ValueError("auth_username: required when auth_type is 'userpass'")
            if self.auth_password is None or not self.auth_password.get_secret_value().strip():
                raise ValueError("auth_password: required when auth_type is 'userpass'")
        if self.auth_type is AuthType.IP_BASED and not self.ip_identifiers:
            raise ValueError(
                "ip_identifiers: at least one IP address or CIDR is required when auth_type is 'ip-based'"
            )
        if self.media_encryption is MediaEncryption.SDES and self.transport is not Transport.TLS:
            raise ValueError("media_encryption: 'sdes' requires transport 'transport-tls'")
        seen: set[str] = set()
        for position, number in enumerate(self.phone_numbers):
            if number.key in seen:
                raise ValueError(f"phone_numbers: entry {position} repeats an earlier number")
            seen.add(number.key)
        return self

    def to_request_body(self) -> dict[str, Any]:
        """The JSON body of ``POST /sip-trunks/trunks``, with the password revealed.

        Every documented default is sent explicitly, as Bolna's own MCP client does, so the
        trunk does not depend on server-side defaults.
        """
        body = self.model_dump(mode="json", exclude_none=True, exclude={"auth_password"})
        if self.auth_password is not None:
            body["auth_password"] = self.auth_password.get_secret_value()
        if not body.get("phone_numbers"):
            body.pop("phone_numbers", None)
        return body

    def comparable(self) -> dict[str, Any]:
        """The updatable fields in canonical form (no password), for drift detection."""
        return canonical(self.model_dump(mode="json", include=set(UPDATABLE_FIELDS) - {"auth_password"}))

    def fingerprint(self, secret_key: bytes | None = None) -> str:
        """A stable hash of the whole spec for the state table.

        The password enters only as an HMAC keyed with ``secret_key`` (e.g. derived from the
        API key), so the hash changes when a password is rotated but cannot be used to guess it.
        Without a key the password is left out.

        :param secret_key: key for the password's HMAC; ``None`` leaves the password out.
        """
        data = self.model_dump(mode="json", exclude={"auth_password"})
        data["gateways"] = sorted(
            data["gateways"], key=lambda g: (g["priority"], g["gateway_address"], g["port"])
        )
        data["ip_identifiers"] = sorted(i["ip_address"] for i in data["ip_identifiers"])
        data["phone_numbers"] = sorted(data["phone_numbers"], key=lambda n: number_key(n["phone_number"]))
        password_hash = self.password_hash(secret_key) if secret_key is not None else None
        if password_hash is not None:
            data["auth_password_hmac"] = password_hash
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def password_hash(self, key: bytes) -> str | None:
        """HMAC-SHA256 (hex) of the password keyed with ``key``, or ``None`` without a password.

        Tells a rotated password from the stored one without keeping it (the state table, the
        fingerprint); the key keeps the hash from being a way to guess the password.

        :param key: the HMAC key.
        """
        if self.auth_password is None:
            return None
        return hmac.new(key, self.auth_password.get_secret_value().encode(), hashlib.sha256).hexdigest()

    def drift(self, actual: SIPTrunk) -> SIPTrunkUpdateRequest | None:
        """The PATCH that makes ``actual`` match this spec, or ``None`` when nothing differs.

        Only differing fields are sent. ``gateways`` and ``ip_identifiers`` are sent whole
        (the API replaces them) when they differ as sets. ``media_encryption`` is always sent
        together with ``transport``, as the API requires. The password cannot be compared
        (the API never returns it): rotate it with an explicit update.

        :raises SpecError: when an immutable field (``provider``, ``auth_type``) differs.
        """
        immutable = [
            FieldError(
                field=f,
                message=f"cannot be changed by update (is {getattr(actual, f)!r}, spec wants {plain(getattr(self, f))!r}); delete and recreate the trunk",
            )
            for f in IMMUTABLE_FIELDS
            if getattr(actual, f) is not None and plain(getattr(actual, f)) != plain(getattr(self, f))
        ]
        if immutable:
            raise SpecError(immutable, context=f"trunk {self.name!r}")
        want = self.comparable()
        have = actual.comparable()
        changed = {k for k, v in want.items() if have.get(k) != v}
        if "media_encryption" in changed or ("transport" in changed and want["media_encryption"] == "sdes"):
            changed |= {"transport", "media_encryption"}
        if not changed:
            return None
        return SIPTrunkUpdateRequest.model_validate(self.model_dump(include=changed))


#: The create request *is* a trunk spec; the alias keeps the API's own name available.
SIPTrunkCreateRequest = TrunkSpec


def parse_trunk_spec(data: dict[str, Any] | TrunkSpec, context: str | None = None) -> TrunkSpec:
    """Validate ``data`` as a :class:`TrunkSpec`.

    :param data: a dict (e.g. from a DB row or templated operator argument) or a spec.
    :param context: prefix for error messages, e.g. ``"customer 42"``.
    :raises SpecError: naming every bad field, without the values.
    """
    if isinstance(data, TrunkSpec):
        return data
    try:
        return TrunkSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError.from_validation_error(exc, context) from None


class SIPTrunkUpdateRequest(_TrunkRequest):
    """Body of ``PATCH /sip-trunks/trunks/{id}``: only the fields that are set are sent."""

    name: NonEmptyStr | None = None
    description: str | None = None
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    gateways: list[Gateway] | None = None
    ip_identifiers: list[IPIdentifier] | None = None
    allow: str | None = None
    disallow: str | None = None
    transport: Transport | None = None
    direct_media: bool | None = None
    rtp_symmetric: bool | None = None
    force_rport: bool | None = None
    media_encryption: MediaEncryption | None = None
    media_encryption_optimistic: bool | None = None
    qualify_frequency: Annotated[int, Field(ge=0)] | None = None
    inbound_enabled: bool | None = None
    outbound_leading_plus_enabled: bool | None = None
    is_active: bool | None = None

    @field_validator("media_encryption", mode="before")
    @classmethod
    def _media_encryption(cls, v: Any) -> Any:
        return v if v is None else coerce_media_encryption(v)

    @model_validator(mode="before")
    @classmethod
    def _refuse_immutable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for f in IMMUTABLE_FIELDS:
                if f in data:
                    raise ValueError(f"{f}: cannot be changed after the trunk is created")
        return data

    @model_validator(mode="after")
    def _rules(self) -> SIPTrunkUpdateRequest:
        if not self.model_fields_set:
            raise ValueError("an update needs at least one field")
        if self.media_encryption is MediaEncryption.SDES and self.transport is not Transport.TLS:
            raise ValueError(
                "transport: must be sent as 'transport-tls' in the same update that sets media_encryption 'sdes'"
            )
        if self.gateways is not None and not self.gateways:
            raise ValueError("gateways: an update cannot remove every gateway")
        return self

    @property
    def fields(self) -> list[str]:
        """The names of the fields this update changes, sorted."""
        return sorted(self.model_fields_set)

    def to_request_body(self) -> dict[str, Any]:
        """The JSON body, with only the fields that were set and the password revealed.

        Set list fields are sent whole, defaults of their entries included (the API replaces
        ``gateways`` / ``ip_identifiers`` wholesale, so nothing is left to server defaults).
        """
        dumped = self.model_dump(mode="json", exclude={"auth_password"})
        body = {k: v for k, v in dumped.items() if k in self.model_fields_set}
        if "auth_password" in self.model_fields_set and self.auth_password is not None:
            body["auth_password"] = self.auth_password.get_secret_value()
        return body
