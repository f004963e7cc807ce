"""The agent-binding endpoints (``agent-binding.openapi.yaml``) and the account endpoint.

``GET /user/me``, ``PATCH /v2/agent/{agent_id}`` (telephony provider), ``POST /inbound/setup``,
``POST /inbound/unlink`` and ``GET /phone-numbers/all``. Both documented 200 bodies of setup /
unlink are served, chosen by the ``inbound_setup_response`` knob: ``message`` (the trunk
guide's ``{"message": ...}``) or ``agent`` (the published InboundAgentResponse).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .asgi import RawJson
from .config import SandboxConfig
from .errors import ApiError
from .handlers import ApiRequest, Reply
from .shapes import USER_ID
from .store import Store
from .validation import validate_agent_patch, validate_inbound_setup, validate_inbound_unlink

USER: dict[str, Any] = {
    "id": USER_ID,
    "name": "Sandbox User",
    "email": "sandbox@example.com",
    "wallet": 9930.01,
    "concurrency": {"max": 10, "current": 0},
}
"""The account behind the key (``GET /user/me``)."""
SETUP_MESSAGE = "SIP trunk number successfully mapped to agent"
UNLINK_MESSAGE = "SIP trunk number successfully unlinked from agent"
#: 404 message for an unknown number, per response style: the two documented wordings
MISSING_NUMBER = {
    "message": "SIP trunk phone number not found in database",
    "agent": "Phone number doesn't exist.",
}
INBOUND_URL = "https://api.bolna.ai/inbound_call?agent_id={agent_id}&user_id={user_id}"


def learn_number(req: ApiRequest, number: dict[str, Any]) -> None:
    """Note the mapped number's trunk and digits for the write attempt's record."""
    req.learned.update(
        trunk_id=number["trunk_id"],
        phone_number=number["phone_number"],
        digits=number["phone_number"].lstrip("+"),
    )


class AgentBindingApi:
    """Handlers for the agent-binding endpoints; errors are raised as ApiError."""

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self.store = store
        self.config = config

    def user_me(self, _: ApiRequest) -> Reply:
        if not self.config.user_me_available:
            raise ApiError(404, "Not found")  # what an unknown route answers
        return 200, USER

    def update_agent(self, req: ApiRequest) -> Reply:
        agent_id = req.params["agent_id"]
        self.store.agents.require(agent_id)  # 404 before looking at the body
        self.store.agents.set_provider(agent_id, validate_agent_patch(req.json()))
        return 200, {"message": "success", "state": "updated"}

    def inbound_setup(self, req: ApiRequest) -> Reply:
        agent_id, number_id = validate_inbound_setup(req.json())
        style = self.config.inbound_setup_response
        number = self.store.agents.map_number(number_id, agent_id, MISSING_NUMBER[style])
        learn_number(req, number)
        if style == "agent":
            url = INBOUND_URL.format(agent_id=quote(agent_id, safe=""), user_id=USER_ID)
            return 200, {"url": url, "phone_number": number["phone_number"], "id": number_id}
        return 200, {"message": SETUP_MESSAGE}

    def inbound_unlink(self, req: ApiRequest) -> Reply:
        number_id = validate_inbound_unlink(req.json())
        style = self.config.inbound_setup_response
        number = self.store.agents.unmap_number(number_id, MISSING_NUMBER[style])
        learn_number(req, number)
        if style == "agent":
            return 200, {"url": None, "phone_number": number["phone_number"], "id": number_id}
        return 200, {"message": UNLINK_MESSAGE}

    def phone_numbers_all(self, _: ApiRequest) -> Reply:
        return 200, RawJson(self.store.agents.account_numbers(self.config.phone_numbers_all_includes_sip))
