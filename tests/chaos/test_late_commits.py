"""Writes that land after the client gave up: 5 % of the POSTs are held 3 s by a proxy in front
of the sandbox (client timeout 1 s) and then delivered anyway.

The sandbox's own latency spikes cannot show this: it reads the body after the delay, so a
request whose client timed out is dropped. Real APIs behind a load balancer usually commit it.
Looking at once would find nothing, the hook would write again, and the first request would
land later: a duplicate trunk wherever the API accepts duplicate names — as this sandbox does
here. The hook waits the connection's ``late_commit_grace`` after a timed-out write before it
looks (2.5 s here, so that a 3 s hold lands first): the run converges with no duplicate, on the
client's behaviour alone. A hold longer than timeout + grace can still duplicate; only an API
that refuses a taken name closes that gap (docs/provisioning.md).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.engine import (
    ProvisionOptions,
    plan_batches,
    provision_batch,
    summarize,
)
from tests.chaos.chaoslib import Customers, LateProxy, SecretScanner, bolna_conn, new_api_key, verify
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

COUNT = 400


@pytest.mark.timeout(600)
def test_late_commits_never_duplicate(
    customers: Customers,
    start_sandbox: Any,
    scanner: SecretScanner,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.name = "late commits (3 s, after a 1 s client timeout)"
    key = new_api_key("late")
    scanner.add("api key", key)
    server = start_sandbox(key, latency_ms=5, seed=4)
    customers.seed(COUNT, seed=4)
    expected = customers.expected()
    scenario.customers = COUNT
    summaries = []
    with LateProxy(("127.0.0.1", server.port), late_rate=0.05, late_s=3.0, seed=4) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(proxy.url, key, late_commit_grace=2.5))
        options = ProvisionOptions(concurrency=8, requests_per_minute=0)
        for _ in range(2):
            batches = plan_batches(customers.conn_id, customers.query, batch_size=200)
            summaries.append(
                summarize(
                    [provision_batch(customers.conn_id, customers.query, b, options=options) for b in batches]
                )
            )
        time.sleep(3.5)  # the last held requests land
        late, after_left = sum(proxy.late.values()), proxy.late_after_client_left
    scenario.runs = 2
    scenario.faults["late_commits"] += late
    counters = server.admin.counters()
    scenario.requests = counters["total_requests"]
    state = customers.state()
    verdict = verify(server, expected, state)
    scenario.converged(verdict)
    scenario.duplicate_posts = counters["duplicate_names_attempted"]
    assert late > 0 and after_left > 0, "no request was delivered after its client gave up"
    assert verdict.ok, verdict.explain()
    assert counters["writes"]["create_trunk"] == COUNT
    assert summaries[1]["failed_total"] == 0
    ever = server.trunks_by_name(include_deleted=True)
    scenario.note(
        f"{late} POSTs held 3 s ({after_left} delivered after the client had given up); run 1 "
        f"{summaries[0]['counts']['created']} created / {summaries[0]['failed_total']} failed; on an API "
        f"without unique names, {sum(n - 1 for n in ever.values())} trunk name(s) created twice: the hook "
        "let each timed-out POST land (late_commit_grace 2.5 s) before looking"
    )
    assert set(ever.values()) == {1}
    scanner.rows("state table", state.values())
    scanner.text("summaries", repr(summaries))
    assert not scanner.hits, scanner.summary()
