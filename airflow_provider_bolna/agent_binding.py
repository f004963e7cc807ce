"""Typed shapes of Bolna's agent-binding API (``agent-binding.openapi.yaml``): import them from
:mod:`airflow_provider_bolna.models`.

The calls that make a provisioned SIP trunk take and place calls with a voice agent:
``PATCH /v2/agent/{agent_id}`` (outbound: the agent's telephony provider), ``POST
/inbound/setup`` and ``POST /inbound/unlink`` (inbound: which agent answers a number), and the
account endpoints ``GET /user/me`` and ``GET /phone-numbers/all``.

Ids are opaque: the published schema, the responses and the trunk guide disagree on their format
(dashed UUIDs, 32 hex characters, ULIDs), so no id is checked beyond "a non-blank string", and
none is stripped or re-cased. Requests refuse unknown fields, so ``allow_multiple`` and
``ivr_config`` (documented for Plivo numbers only) can never be sent for a SIP-trunk number.
Responses are tolerant like every response shape (extra fields kept, every field optional).

Imports neither Airflow nor httpx.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_bolna.dag_input import json_object
from airflow_provider_bolna.exceptions import BolnaValidationError
from airflow_provider_bolna.responses import _AgentMapped, _Response

__all__ = [
    "SIP_TRUNK_PROVIDER",
    "AccountPhoneNumber",
    "AgentConfigPatch",
    "AgentTelephonyUpdate",
    "AgentUpdateResponse",
    "InboundAgentResponse",
    "InboundSetupRequest",
    "InboundUnlinkRequest",
    "InboundUnlinkResponse",
    "User",
    "UserConcurrency",
    "parse_agent_ids",
    "parse_number_agents",
]

#: The telephony provider of an agent that places calls through a legacy SIP trunk.
SIP_TRUNK_PROVIDER = "sip-trunk"


def _opaque_id(value: Any) -> Any:
    """An id as given: a string with something in it (never trimmed, never format-checked)."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must be a non-blank string")
    return value


class _BindingRequest(BaseModel):
    """Base of the agent-binding requests: unknown fields refused, inputs never echoed."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    def to_request_body(self) -> dict[str, Any]:
        """The JSON body (unset optional fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


OpaqueId = Annotated[str, Field(min_length=1)]


class AgentConfigPatch(_BindingRequest):
    """``agent_config`` of the agent PATCH: only the telephony provider.

    :param telephony_provider: documented values ``twilio``, ``plivo``, ``exotel``, ``vobiz``,
        ``sip-trunk``, ``default``; the newer ``/trunk`` family's ``trunk`` is not yet in the
        enum, so the value is kept open (a non-blank string without spaces).
    """

    telephony_provider: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S+$")]


class AgentTelephonyUpdate(_BindingRequest):
    """Body of ``PATCH /v2/agent/{agent_id}``: ``{"agent_config": {"telephony_provider": P}}``
    and nothing else (the document says a trunk-binding client must send nothing more)."""

    agent_config: AgentConfigPatch

    @classmethod
    def for_provider(cls, provider: str) -> AgentTelephonyUpdate:
        """The update that sets the agent's telephony provider to ``provider``."""
        return cls(agent_config=AgentConfigPatch(telephony_provider=provider))


class InboundSetupRequest(_BindingRequest):
    """Body of ``POST /inbound/setup``: the agent that answers the number's inbound calls.

    :param agent_id: the agent's id (opaque).
    :param phone_number_id: the number's ``id`` from add-number / list-numbers (opaque).
    """

    agent_id: OpaqueId
    phone_number_id: OpaqueId

    _ids = field_validator("agent_id", "phone_number_id", mode="before")(_opaque_id)


class InboundUnlinkRequest(_BindingRequest):
    """Body of ``POST /inbound/unlink``.

    :param phone_number_id: the number's ``id`` (opaque).
    :param agent_id: optional: Bolna's own scripts send it and the API tolerates it.
    """

    phone_number_id: OpaqueId
    agent_id: OpaqueId | None = None

    _ids = field_validator("agent_id", "phone_number_id", mode="before")(_opaque_id)


class UserConcurrency(_Response):
    """The account's call concurrency."""

    max: int | None = None
    current: int | None = None


class User(_Response):
    """``GET /user/me``: the account behind the API key.

    ``wallet`` is the raw value (Bolna's CLI reads it as scaled x100: 9930.01 = $99.30).
    """

    id: str | None = None
    name: str | None = None
    email: str | None = None
    wallet: float | None = None
    concurrency: UserConcurrency | None = None


class AgentUpdateResponse(_Response):
    """200 of the agent PATCH: ``{"message": "success", "state": "updated"}``."""

    message: str | None = None
    state: str | None = None


class InboundAgentResponse(_Response):
    """200 of ``/inbound/setup``, in either documented shape.

    The published schema's InboundAgentResponse ``{"url", "phone_number", "id"}``, or the trunk
    guide's ``{"message": "SIP trunk number successfully mapped to agent"}``: every field is
    optional, so both read (and so does a mix).
    """

    url: str | None = None
    phone_number: str | None = None
    id: str | None = None
    message: str | None = None

    @property
    def agent_id(self) -> str | None:
        """The agent named in ``url``'s query (``None`` when the answer has no such url)."""
        if not self.url:
            return None
        found = parse_qs(urlsplit(self.url).query).get("agent_id")
        return found[0] if found else None


class InboundUnlinkResponse(InboundAgentResponse):
    """200 of ``/inbound/unlink``: InboundUnlinkAgentResponse (``url`` is ``null``) or a message."""


class AccountPhoneNumber(_AgentMapped):
    """A number of ``GET /phone-numbers/all`` (``agent_id``: see :attr:`agent_known`).

    Whether SIP-trunk numbers appear there is unverified (the documented
    ``telephony_provider`` values are twilio, plivo and vonage); the other documented fields
    (``price``, ``renewal_at``, ...) are kept as extras.
    """

    rented: bool | None = None


# ---------------------------------------------------------------------- user input


def parse_number_agents(value: Any, field_name: str) -> dict[str, str]:
    """A ``{phone number: agent id}`` mapping as a DAG gives it (a mapping, or its JSON text after
    templating; empty for ``None``), or :class:`BolnaValidationError` naming the field.

    :param value: the mapping.
    :param field_name: the argument's name, for the error.
    """
    if value is None or value == "":
        return {}
    value = json_object(
        value,
        field_name,
        not_json="a string must be a JSON object of number to agent id",
        expected="a mapping of phone number to agent id",
    )
    agents: dict[str, str] = {}
    for number, agent in value.items():
        if not isinstance(agent, str) or not agent.strip() or not str(number).strip():
            raise BolnaValidationError(
                f"{field_name}: the agent of number {str(number)[:40]!r} must be a non-blank string"
            )
        agents[str(number)] = agent
    return agents


def parse_agent_ids(value: Any, field_name: str) -> list[str]:
    """Agent ids as a DAG gives them (a list, one id, or a JSON list after templating), each once
    in the order given, or :class:`BolnaValidationError` naming the field.

    :param value: the ids.
    :param field_name: the argument's name, for the error.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            value = [value]
        else:
            try:
                value = json.loads(value)
            except ValueError:
                raise BolnaValidationError(
                    f"{field_name}: a string must be one agent id or a JSON list of them"
                ) from None
    if not isinstance(value, (list, tuple)):
        raise BolnaValidationError(f"{field_name}: must be a list of agent ids, not {type(value).__name__}")
    ids: list[str] = []
    for i, agent in enumerate(value):
        if not isinstance(agent, str) or not agent.strip():
            raise BolnaValidationError(f"{field_name}.{i}: must be a non-blank string")
        if agent not in ids:
            ids.append(agent)
    return ids
