"""Fixtures for operator/sensor/trigger/link tests: a respx-backed connection and a fake context."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

API = "https://bolna.test"
API_KEY = "unit-test-key-5b7c1e"
CONN_ID = "bolna_unit"
DASHBOARD = "https://dash.bolna.test"

TRUNK_ID = "01TRUNKAAAAAAAAAAAAAAAAAAA"


def trunk_json(
    trunk_id: str = TRUNK_ID, name: str = "acme", numbers: list[str] | None = None, **over: Any
) -> dict[str, Any]:
    """A trunk as the API returns it."""
    body = {
        "id": trunk_id,
        "name": name,
        "provider": "acme-carrier",
        "auth_type": "userpass",
        "auth_username": "acme-user",
        "gateways": [{"gateway_address": "sip.acme.test", "port": 5060, "priority": 1}],
        "ip_identifiers": [],
        "phone_numbers": [number_json(n, i) for i, n in enumerate(numbers or [])],
        "allow": "ulaw,alaw",
        "disallow": "all",
        "transport": "transport-udp",
        "media_encryption": "no",
        "qualify_frequency": 60,
        "is_active": True,
    }
    body.update(over)
    return body


def number_json(number: str, i: int = 0, trunk_id: str = TRUNK_ID) -> dict[str, Any]:
    """A phone number as the API returns it."""
    return {"id": f"01NUM{i:021d}", "phone_number": number, "byot_trunk_id": trunk_id, "deleted": False}


def spec(name: str = "acme", **over: Any) -> dict[str, Any]:
    """A valid userpass trunk spec."""
    body = {
        "name": name,
        "provider": "acme-carrier",
        "auth_type": "userpass",
        "auth_username": "acme-user",
        "auth_password": "Unit-S1P-pass-77",
        "gateways": [{"gateway_address": "sip.acme.test"}],
    }
    body.update(over)
    return body


@dataclass
class FakeTI:
    """Records XCom pushes like a RuntimeTaskInstance."""

    xcoms: dict[str, Any] = field(default_factory=dict)
    try_number: int = 1

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-serialisable
        self.xcoms[key] = value


@pytest.fixture
def bolna_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``bolna_unit`` → https://bolna.test (fast retries, no rate budget)."""
    conn = {
        "conn_type": "bolna",
        "host": API,
        "password": API_KEY,
        "extra": {
            "max_retries": 2,
            "retry_base_delay": 0.001,
            "retry_max_delay": 0.01,
            "requests_per_minute": 0,
            "number_visibility_timeout": 0.2,
            "dashboard_url": DASHBOARD,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return CONN_ID


@pytest.fixture
def ti() -> FakeTI:
    return FakeTI()


@pytest.fixture
def context(ti: FakeTI) -> dict[str, Any]:
    """A minimal task context (``ti`` records XComs; ``params`` empty)."""
    return {"ti": ti, "params": {}}


def run_trigger(trigger: Any) -> list[Any]:
    """Run a trigger to completion and return its events."""

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def run_deferrable(op: Any, context: dict[str, Any]) -> Any:
    """Execute ``op``; if it defers, rebuild its trigger from ``serialize()``, run it, resume.

    Like a real triggerer: the trigger is re-created from its serialised kwargs.
    """
    from airflow.providers.common.compat.module_loading import import_string
    from airflow.providers.common.compat.sdk import TaskDeferred

    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        trigger = import_string(classpath)(**json.loads(json.dumps(kwargs)))
        (event,) = run_trigger(trigger)
        return op.resume_execution(
            deferred.method_name, {**(deferred.kwargs or {}), "event": event.payload}, context
        )
