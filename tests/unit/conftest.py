"""Fixtures of the unit suite: a hook on a respx-mocked API, sync/async runner, sleep recorder.

Every hook here talks to ``https://api.test`` through :mod:`respx`; nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from airflow_provider_bolna.hooks.bolna import BolnaHook
from tests.unit.helpers import BASE_URL, Runner, make_hook


@pytest.fixture(scope="session", autouse=True)
def _shared_ssl_context() -> Iterator[None]:
    """Build httpx's default SSL context once: every hook test makes fresh clients, and
    loading the CA bundle for each (~0.1 s on a busy machine) dominated the suite's time.
    respx answers every request, so the context is never used for a real handshake."""
    import httpx._transports.default as transports

    real = getattr(transports, "create_ssl_context", None)
    if real is None:  # httpx internals moved: just run slower
        yield
        return
    shared = real()

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        return (
            shared
            if (verify is True and cert is None)
            else real(verify=verify, cert=cert, trust_env=trust_env)
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transports, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture
def hook() -> Iterator[BolnaHook]:
    """A hook on the mocked API with the default test settings."""
    h = make_hook()
    yield h
    h.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The mocked Bolna API. A request no route matches fails the call (respx raises)."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Run one hook method in both flavours, so each test body covers the sync and async twin."""
    return Runner(request.param)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every non-zero sleep (``time.sleep`` and ``asyncio.sleep``), still sleeping for real."""
    recorded: list[float] = []
    real_sleep, real_asleep = time.sleep, asyncio.sleep

    def fake_sleep(seconds: float) -> None:
        if seconds > 0:
            recorded.append(seconds)
        real_sleep(seconds)

    async def fake_asleep(seconds: float, result: Any = None) -> Any:
        if seconds > 0:
            recorded.append(seconds)
        return await real_asleep(seconds, result)

    monkeypatch.setattr(time, "sleep", fake_sleep)
    monkeypatch.setattr(asyncio, "sleep", fake_asleep)
    return recorded
