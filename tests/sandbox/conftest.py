"""Fixtures of the sandbox suite: an authenticated client and request-body builders.

The sandbox fixtures themselves (``bolna_sandbox``, ``bolna_sandbox_clean``,
``bolna_sandbox_factory``) come from the project's pytest plugin; ``sandbox`` (an alias of
``bolna_sandbox_clean``) from ``tests/conftest.py``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_bolna.sandbox.testing import SandboxServer

TRUNKS = "/sip-trunks/trunks"
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BodyFactory = Callable[..., dict[str, Any]]

#: the two request examples of the seed page (create-sip-trunk.md), verbatim
SEED_USERPASS: dict[str, Any] = {
    "name": "Zadarma Production",
    "provider": "zadarma",
    "description": "Main trunk for outbound sales",
    "auth_type": "userpass",
    "auth_username": "<your-sip-username>",
    "auth_password": "<your-sip-password>",
    "gateways": [{"gateway_address": "sip.zadarma.com", "port": 5060, "priority": 1}],
    "allow": "ulaw,alaw",
    "disallow": "all",
    "inbound_enabled": True,
    "outbound_leading_plus_enabled": True,
}
SEED_IP_BASED: dict[str, Any] = {
    "name": "Plivo Elastic Trunk",
    "provider": "plivo",
    "auth_type": "ip-based",
    "gateways": [{"gateway_address": "21467306465797919.zt.plivo.com", "port": 5060, "priority": 1}],
    "ip_identifiers": [{"ip_address": "15.207.90.192/31"}, {"ip_address": "204.89.151.128/27"}],
    "inbound_enabled": True,
}


def assert_error(response: httpx.Response, status: int, field: str) -> None:
    """A documented ``{error, message}`` body whose message names ``field``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == status
    assert field in body["message"], body


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on the (reset) session sandbox, bearer key set."""
    with sandbox.client() as client:
        yield client


@pytest.fixture
def private_sandbox(bolna_sandbox_factory: Any) -> SandboxServer:
    """A server of its own: one token of capacity cannot be shared with stray requests (a
    process another test left behind may still be talking to the session server)."""
    server: SandboxServer = bolna_sandbox_factory()
    return server


@pytest.fixture
def private_api(private_sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on :func:`private_sandbox`."""
    with private_sandbox.client() as client:
        yield client


@pytest.fixture
def trunk_body() -> BodyFactory:
    """``trunk_body(name=..., **overrides)``: a valid userpass create body; ``None`` drops a key."""
    counter = iter(range(1_000_000))

    def build(**overrides: Any) -> dict[str, Any]:
        body = copy.deepcopy(SEED_USERPASS)
        body["name"] = f"trunk-{next(counter)}"
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    return build


@pytest.fixture
def make_trunk(api: httpx.Client, trunk_body: BodyFactory) -> Callable[..., dict[str, Any]]:
    """Create a trunk through the API (asserting 201) and return its JSON."""

    def create(**overrides: Any) -> dict[str, Any]:
        response = api.post(TRUNKS, json=trunk_body(**overrides))
        assert response.status_code == 201, response.text
        return response.json()

    return create
