"""Constants, payload builders and small helpers shared by the unit tests.

Payloads follow ``shared/bolna-api/sip-trunks.openapi.yaml``; the two trunk specs are the
request examples of the "Create SIP Trunk" docs page (``shared/seed/create-sip-trunk.md``)
with the placeholder credentials replaced by known test secrets.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import respx
from pydantic import SecretStr

from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings

BASE_URL = "https://api.test"
TRUNKS_PATH = "/sip-trunks/trunks"
TRUNK_ID = "01HQXYZ123ABC456DEF"
NUMBER_ID = "01HQNUMBER111222333"

#: Known secrets: no test output, log line or exception may ever contain them.
API_KEY = "bk-test-7f3a9c2e51d4a8b6"
SIP_PASSWORD = "sip-Secr3t-Pa55-0x9d"

#: The userpass request example of the docs page.
USERPASS_SPEC: dict[str, Any] = {
    "name": "Zadarma Production",
    "provider": "zadarma",
    "description": "Main trunk for outbound sales",
    "auth_type": "userpass",
    "auth_username": "zadarma-user",
    "auth_password": SIP_PASSWORD,
    "gateways": [{"gateway_address": "sip.zadarma.com", "port": 5060, "priority": 1}],
    "allow": "ulaw,alaw",
    "disallow": "all",
    "inbound_enabled": True,
    "outbound_leading_plus_enabled": True,
}

#: The ip-based request example of the docs page.
IP_SPEC: dict[str, Any] = {
    "name": "Plivo Elastic Trunk",
    "provider": "plivo",
    "auth_type": "ip-based",
    "gateways": [{"gateway_address": "21467306465797919.zt.plivo.com", "port": 5060, "priority": 1}],
    "ip_identifiers": [{"ip_address": "15.207.90.192/31"}, {"ip_address": "204.89.151.128/27"}],
    "inbound_enabled": True,
}

#: Bolna's documented server-side defaults of the optional create fields.
DOCUMENTED_DEFAULTS: dict[str, Any] = {
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
}


def spec(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of a spec dict (``USERPASS_SPEC`` by default) with ``changes`` applied."""
    data = copy.deepcopy(base if base is not None else USERPASS_SPEC)
    data.update(changes)
    return data


def trunk_json(
    source: dict[str, Any] | None = None, *, trunk_id: str = TRUNK_ID, **changes: Any
) -> dict[str, Any]:
    """The API's trunk object for a spec dict: server ids, no password, full settings."""
    src = spec(source)
    src.pop("auth_password", None)
    numbers = src.pop("phone_numbers", [])
    body: dict[str, Any] = {**DOCUMENTED_DEFAULTS, **src}
    body.update(
        {
            "id": trunk_id,
            "gateways": [
                {"id": f"gw-{i}", "port": 5060, "priority": 1, **g, "created_at": "2026-05-09T10:00:00Z"}
                for i, g in enumerate(src["gateways"])
            ],
            "ip_identifiers": src.get("ip_identifiers", []),
            "phone_numbers": [number_json(n["phone_number"], trunk_id=trunk_id) for n in numbers],
            "is_active": True,
            "created_at": "2026-05-09T10:00:00Z",
            "updated_at": "2026-05-09T10:00:00Z",
        }
    )
    body.update(changes)
    return body


def number_json(
    phone_number: str, *, number_id: str | None = None, trunk_id: str = TRUNK_ID, **changes: Any
) -> dict[str, Any]:
    """The API's phone-number object."""
    body = {
        "id": number_id or f"num-{phone_number.lstrip('+')}",
        "phone_number": phone_number,
        "user_id": "user_abc123",
        "byot_trunk_id": trunk_id,
        "telephony_provider": "sip-trunk",
        "deleted": False,
        "created_at": "2025-01-15T10:05:00Z",
        "updated_at": "2025-01-15T10:05:00Z",
    }
    body.update(changes)
    return body


def make_hook(**overrides: Any) -> BolnaHook:
    """A hook on ``BASE_URL`` with tiny delays and no rate limit (``overrides`` win)."""
    values: dict[str, Any] = {
        "api_key": SecretStr(API_KEY),
        "base_url": BASE_URL,
        "retry_base_delay": 0.001,
        "number_visibility_timeout": 0.05,
        "requests_per_minute": 0,
        "agent_requests_per_minute": 0,
        "late_commit_grace": 0.0,  # tests of the grace itself set it
    }
    values.update(overrides)
    return BolnaHook(settings=BolnaSettings(**values))


class Runner:
    """Calls a hook method the sync way (``name``) or its async twin (``"a" + name``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    def __call__(self, hook: BolnaHook, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(hook, name)(*args, **kwargs)

        async def go() -> Any:
            try:
                return await getattr(hook, f"a{name}")(*args, **kwargs)
            finally:
                await hook.aclose()

        return asyncio.run(go())


def calls_of(router: respx.MockRouter) -> list[tuple[str, str]]:
    """``(METHOD, path)`` of every request the mocked API received, in order."""
    return [(c.request.method, c.request.url.path) for c in router.calls]
