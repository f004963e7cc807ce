"""Ambiguous number adds recover fast, over real HTTP against the sandbox.

A new number stays invisible to reads for ``number_visibility_delay_s`` (10 s here, as Bolna
was seen doing). After an add whose answer was lost, the hook used to wait that whole window
before trying again; now it looks once, sends the add again, and takes the 409 "already on
this trunk" as its own number. Each scenario adds several numbers: waiting the window even
once per number would take far longer than the bound asserted.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import SecretStr

from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings

pytestmark = pytest.mark.integration

VISIBILITY = 10.0
NUMBERS = [f"+9180000{i:05d}" for i in range(6)]
TRUNK = {
    "name": "recovery",
    "provider": "twilio",
    "auth_type": "ip-based",
    "gateways": [{"gateway_address": "gw.pstn.example.net"}],
    "ip_identifiers": [{"ip_address": "203.0.113.0/28"}],
}


def _hook(server: Any) -> BolnaHook:
    return BolnaHook(
        settings=BolnaSettings(
            api_key=SecretStr(server.api_key),
            base_url=server.url,
            requests_per_minute=0,
            max_retries=10,
            retry_base_delay=0.01,
            retry_max_delay=0.05,
            number_visibility_timeout=VISIBILITY,
        )
    )


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"drop_after_commit_rate": 1.0}, id="every-add-lands-then-its-answer-is-lost"),
        pytest.param({"fail_rate": 0.5}, id="half-the-requests-fail-with-5xx"),
    ],
)
def test_ambiguous_number_adds_recover_without_waiting_for_visibility(
    bolna_sandbox_factory: Any, faults: dict[str, float]
) -> None:
    server = bolna_sandbox_factory(number_visibility_delay_s=VISIBILITY, seed=2026)
    hook = _hook(server)
    trunk = hook.create_trunk(TRUNK)
    server.admin.config(**faults)
    started = time.monotonic()
    results = [hook.ensure_number(trunk.id, number) for number in NUMBERS]
    elapsed = time.monotonic() - started
    server.admin.config(drop_after_commit_rate=0.0, fail_rate=0.0)
    audit = server.admin.audit()
    assert [r.action for r in results] == ["created"] * len(NUMBERS)
    assert audit["numbers"] == len(NUMBERS) and audit["numbers_on_multiple_active_trunks"] == []
    assert server.admin.counters()["writes"]["add_number"] == len(NUMBERS), "each number committed once"
    assert elapsed < VISIBILITY / 2, (
        f"{len(NUMBERS)} adds took {elapsed:.1f}s: the visibility window was waited"
    )
    hook.close()


def test_a_caller_that_needs_the_id_waits_for_it(bolna_sandbox_factory: Any) -> None:
    server = bolna_sandbox_factory(number_visibility_delay_s=1.0, seed=2026)
    hook = _hook(server)
    trunk = hook.create_trunk(TRUNK)
    server.admin.config(drop_after_commit_rate=1.0)
    result = hook.ensure_number(trunk.id, NUMBERS[0], wait_for_id=True)
    server.admin.config(drop_after_commit_rate=0.0)
    assert result.action == "created" and result.number is not None
    assert [n.id for n in hook.list_numbers(trunk.id)] == [result.number.id]
    hook.close()
