"""The hook's idempotent ``ensure_trunk`` against a faulty sandbox, over real HTTP.

20 % of requests fail before acting and 10 % of writes commit and then lose their response
(half a 502 after commit, half a broken connection). Every trunk must still exist exactly once.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

NAMES = 500


def _spec(i: int) -> dict:
    return {
        "name": f"fault-{i:04d}",
        "provider": "twilio",
        "auth_type": "ip-based",
        "gateways": [{"gateway_address": f"gw{i}.pstn.example.net"}],
        "ip_identifiers": [{"ip_address": "203.0.113.0/28"}],
        "phone_numbers": [{"phone_number": f"+1415{i:07d}"}],
    }


def test_ensure_trunk_creates_each_trunk_exactly_once_under_faults(bolna_sandbox_factory):
    # the API would accept a duplicate name or number: only the hook's looking prevents one
    server = bolna_sandbox_factory(
        fail_rate=0.2, drop_after_commit_rate=0.1, seed=20261126, unique_names=False, unique_numbers=False
    )
    hook = BolnaHook(
        settings=BolnaSettings(
            api_key=SecretStr(server.api_key),
            base_url=server.url,
            requests_per_minute=0,
            max_retries=10,
            retry_base_delay=0.01,
            retry_max_delay=0.2,
            number_visibility_timeout=2.0,
        )
    )

    async def run_all() -> list[str]:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> str:
            async with gate:
                return (await hook.aensure_trunk(_spec(i))).action

        try:
            return await asyncio.gather(*(one(i) for i in range(NAMES)))
        finally:
            await hook.aclose()

    actions = asyncio.run(run_all())

    audit = server.admin.audit()
    counters = server.admin.counters()
    assert audit["trunks"] == NAMES
    assert audit["duplicate_trunk_names"] == []
    assert audit["numbers"] == NAMES and audit["numbers_on_multiple_active_trunks"] == []
    assert counters["writes"]["create_trunk"] == NAMES  # no second trunk ever committed
    assert set(server.trunks_by_name(include_deleted=True).values()) == {1}
    # the faults really happened, in both flavours
    faults = counters["faults"]
    print(
        f"\nfaults injected: {faults}; writes: {counters['writes']}; requests: {counters['total_requests']}"
    )
    assert faults["fail_before"] > 50
    assert faults["drop_after_commit_502"] > 5 and faults["drop_after_commit_conn"] > 5
    # ambiguous creates were resolved by looking, not by a blind second POST: the trunk count
    # above holds even for a client that re-POSTs (the sandbox refuses a taken name), the number
    # of POSTs refused as a duplicate name does not
    assert counters["duplicate_names_attempted"] == 0
    assert set(actions) <= {"created", "adopted"}
    assert actions.count("created") == NAMES
