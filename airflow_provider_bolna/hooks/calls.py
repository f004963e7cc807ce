"""What each Bolna endpoint sends and how its answer is read: one :class:`_Call` builder per
endpoint, used by :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook` (sync and async alike).

Inputs are validated here, before anything is sent; ids become single percent-encoded path
segments. Lists are read item by item (:class:`~airflow_provider_bolna.hooks.reading.JsonItems`)
and only the trunks asked for are validated and kept.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from airflow_provider_bolna.exceptions import BolnaValidationError
from airflow_provider_bolna.hooks.base import AGENT_BUDGET, _Call
from airflow_provider_bolna.hooks.reading import JsonItems, WholeJson
from airflow_provider_bolna.models import (
    AccountPhoneNumber,
    AgentTelephonyUpdate,
    AgentUpdateResponse,
    InboundAgentResponse,
    InboundSetupRequest,
    InboundUnlinkRequest,
    InboundUnlinkResponse,
    MessageResponse,
    PhoneNumber,
    PhoneNumberRequest,
    SIPTrunk,
    SIPTrunkUpdateRequest,
    SpecError,
    TrunkSpec,
    User,
    parse_trunk_spec,
)

T = TypeVar("T", bound=BaseModel)

TRUNKS = "/sip-trunks/trunks"
#: The account behind the key: the cheap key check of ``test_connection``.
USER_ME = "/user/me"
AGENTS = "/v2/agent"
INBOUND_SETUP = "/inbound/setup"
INBOUND_UNLINK = "/inbound/unlink"
ACCOUNT_NUMBERS = "/phone-numbers/all"


def create_trunk(spec: TrunkSpec) -> _Call:
    secrets = (spec.auth_password.get_secret_value(),) if spec.auth_password else ()
    return _Call(
        "POST", TRUNKS, partial(WholeJson, _parse_trunk), json=spec.to_request_body(), secrets=secrets
    )


def list_trunks(
    is_active: bool | None = None, names: Collection[str] | None = None, ids: Collection[str] | None = None
) -> _Call:
    """``GET`` the trunks, keeping those named in ``names`` or with an id in ``ids`` (all when
    both are ``None``), oldest first."""
    wanted_names = None if names is None else frozenset(names)
    wanted_ids = None if ids is None else frozenset(ids)
    everything = wanted_names is None and wanted_ids is None

    def keep(item: Any) -> SIPTrunk | None:
        if not everything and not (
            isinstance(item, dict)
            and (
                (wanted_names is not None and item.get("name") in wanted_names)
                or (wanted_ids is not None and item.get("id") in wanted_ids)
            )
        ):
            return None  # dropped before validation: a large account's listing stays cheap
        return SIPTrunk.model_validate(item)

    return _Call("GET", TRUNKS, partial(JsonItems, keep, _oldest_first), params=_active_param(is_active))


def count_trunks(is_active: bool | None = None) -> _Call:
    """``GET`` the trunks and count them (nothing is validated or kept)."""
    return _Call("GET", TRUNKS, partial(JsonItems, lambda item: True, len), params=_active_param(is_active))


def get_user() -> _Call:
    return _Call("GET", USER_ME, partial(WholeJson, User.model_validate))


def get_trunk(trunk_id: str) -> _Call:
    return _Call("GET", trunk_path(trunk_id), partial(WholeJson, _parse_trunk))


def update_trunk(trunk_id: str, update: SIPTrunkUpdateRequest) -> _Call:
    secrets = (update.auth_password.get_secret_value(),) if update.auth_password else ()
    return _Call(
        "PATCH",
        trunk_path(trunk_id),
        partial(WholeJson, _parse_trunk),
        json=update.to_request_body(),
        secrets=secrets,
    )


def delete_trunk(trunk_id: str) -> _Call:
    return _Call("DELETE", trunk_path(trunk_id), partial(WholeJson, _parse_message))


def add_number(trunk_id: str, number: PhoneNumberRequest) -> _Call:
    body = number.model_dump(mode="json", exclude_none=True)
    return _Call(
        "POST", f"{trunk_path(trunk_id)}/numbers", partial(WholeJson, PhoneNumber.model_validate), json=body
    )


def list_numbers(trunk_id: str) -> _Call:
    return _Call("GET", f"{trunk_path(trunk_id)}/numbers", partial(JsonItems, _parse_live_number))


def remove_number(trunk_id: str, phone_number_id: str) -> _Call:
    number = segment(phone_number_id, "phone_number_id")
    return _Call("DELETE", f"{trunk_path(trunk_id)}/numbers/{number}", partial(WholeJson, _parse_message))


# ---------------------------------------------------------------------- agent binding
# setup, unlink and the agent PATCH set state (a second send leaves the same state): safe to
# resend after an ambiguous failure, so they are retried like GETs (``replaces``).


def update_agent(agent_id: str, update: AgentTelephonyUpdate) -> _Call:
    """``PATCH /v2/agent/{agent_id}``, from the agent endpoint's own rate budget."""
    return _Call(
        "PATCH",
        f"{AGENTS}/{segment(agent_id, 'agent_id')}",
        partial(WholeJson, _parse_agent_update),
        json=update.to_request_body(),
        budget=AGENT_BUDGET,
    )


def setup_inbound(request: InboundSetupRequest) -> _Call:
    """``POST /inbound/setup``: replaces the number's mapping, so safe to resend."""
    return _Call(
        "POST",
        INBOUND_SETUP,
        partial(WholeJson, _parse_inbound),
        json=request.to_request_body(),
        replaces=True,
    )


def unlink_inbound(request: InboundUnlinkRequest) -> _Call:
    """``POST /inbound/unlink``: clears the number's mapping, so safe to resend."""
    return _Call(
        "POST",
        INBOUND_UNLINK,
        partial(WholeJson, _parse_unlink),
        json=request.to_request_body(),
        replaces=True,
    )


def list_account_numbers() -> _Call:
    return _Call("GET", ACCOUNT_NUMBERS, partial(JsonItems, AccountPhoneNumber.model_validate))


# ---------------------------------------------------------------------- inputs


def segment(value: Any, field: str) -> str:
    """One percent-encoded path segment for an id.

    ``.`` and ``..`` survive percent-encoding and are then removed by URL normalisation:
    ``remove_number(trunk, "..")`` would send ``DELETE /sip-trunks/trunks/{trunk}`` — delete the
    trunk. No API id looks like that, so they are refused before anything is sent.
    """
    if value is None or not str(value).strip():
        raise BolnaValidationError(f"{field}: must be a non-empty string")
    text = str(value)
    if text.strip() in (".", ".."):
        raise BolnaValidationError(f"{field}: must be an id, not a path segment such as '.' or '..'")
    return quote(text, safe="")


def trunk_path(trunk_id: str) -> str:
    return f"{TRUNKS}/{segment(trunk_id, 'trunk_id')}"


def as_spec(spec: TrunkSpec | dict[str, Any]) -> TrunkSpec:
    try:
        return parse_trunk_spec(spec)
    except SpecError as exc:
        raise BolnaValidationError(f"invalid trunk spec: {exc}") from None


def as_update(update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunkUpdateRequest:
    if isinstance(update, SIPTrunkUpdateRequest):
        return update
    try:
        return SIPTrunkUpdateRequest.model_validate(update)
    except ValidationError as exc:
        raise BolnaValidationError(f"invalid trunk update: {SpecError.from_validation_error(exc)}") from None


def as_number(number: PhoneNumberRequest | dict[str, Any] | str) -> PhoneNumberRequest:
    if isinstance(number, PhoneNumberRequest):
        return number
    try:
        return PhoneNumberRequest.model_validate(
            {"phone_number": number} if isinstance(number, (str, int)) else number
        )
    except ValidationError as exc:
        raise BolnaValidationError(f"invalid phone number: {SpecError.from_validation_error(exc)}") from None


def as_binding(model: type[T], **fields: Any) -> T:
    """An agent-binding request built from ``fields``; a bad field raises
    :class:`BolnaValidationError` naming it (never its value), before anything is sent."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise BolnaValidationError(
            f"invalid {model.__name__}: {SpecError.from_validation_error(exc)}"
        ) from None


def as_provider(provider: str) -> AgentTelephonyUpdate:
    """The agent PATCH that sets the telephony provider (refused before sending when blank)."""
    return as_binding(AgentTelephonyUpdate, agent_config={"telephony_provider": provider})


def opaque_id(value: Any, field: str) -> str:
    """An id as given (ids are opaque: no format is checked), or :class:`BolnaValidationError`
    naming ``field`` when it is not a non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise BolnaValidationError(f"{field}: must be a non-blank string")
    return value


def find_number(numbers: Iterable[PhoneNumber], key: str) -> PhoneNumber | None:
    """The live number with digits ``key`` among ``numbers``, or ``None``."""
    return next((n for n in numbers if not n.deleted and n.key == key), None)


# ---------------------------------------------------------------------- parsers


def _active_param(is_active: bool | None) -> dict[str, str] | None:
    return None if is_active is None else {"is_active": "true" if is_active else "false"}


def _parse_trunk(data: Any) -> SIPTrunk:
    return SIPTrunk.model_validate(data)


def _oldest_first(trunks: list[SIPTrunk]) -> list[SIPTrunk]:
    return sorted(trunks, key=lambda t: (t.created_at is None, t.created_at or 0, t.id))


def _parse_live_number(item: Any) -> PhoneNumber | None:
    number = PhoneNumber.model_validate(item)
    return None if number.deleted else number


def _parse_agent_update(data: Any) -> AgentUpdateResponse:
    return AgentUpdateResponse.model_validate(data or {})


def _parse_inbound(data: Any) -> InboundAgentResponse:
    return InboundAgentResponse.model_validate(data or {})


def _parse_unlink(data: Any) -> InboundUnlinkResponse:
    return InboundUnlinkResponse.model_validate(data or {})


def _parse_message(data: Any) -> str:
    return MessageResponse.model_validate(data or {}).message
