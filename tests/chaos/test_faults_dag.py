"""2,000 customers through ``airflow dags test bolna_bulk_provision`` while the API misbehaves.

The sandbox fails 10 % of requests with a 5xx before acting, loses the response of 5 % of the
committed writes (half 502, half a connection cut mid-body), delays 1 % of requests by 3 s
(the connection's timeout is 1 s), and a background thread switches its rate limit on in
short bursts (600/min), alternately with and without ``Retry-After``. The faults stay on for
both runs.

Promise checked after at most two runs, on the sandbox's own tables: every customer has
exactly one trunk with exactly its numbers, no trunk name twice, no number on two trunks, no
stray trunk; the state table has one ``provisioned`` row per customer pointing at that trunk.
Then the secret scan: the API key and every SIP password, in the output of both runs, every
task log file, every row of every table of the Airflow metadata DB (XCom and rendered fields
included), the state table and the dry-run plan: zero hits.
"""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.engine import ProvisionOptions, provision_batch
from tests.chaos.chaoslib import Bursts, Customers, SecretScanner, bolna_conn, new_api_key, verify
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.integration]

COUNT = int(os.environ.get("BOLNA_CHAOS_CUSTOMERS", "2000"))
KNOBS = {
    "fail_rate": 0.10,
    "drop_after_commit_rate": 0.05,
    "latency_spike_rate": 0.01,
    "latency_spike_ms": 3000,
    "seed": 7,
}
CONF = {"batch_size": 500, "concurrency": 8}
#: deployment settings: the admins' Variable (a run's conf may not set them)
SETTINGS = {"parallel_batches": 1, "requests_per_minute": 6000}


def _count(db: Path, sql: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def summary_from(output: str) -> dict[str, Any] | None:
    """The ``summarize`` task's return value, from the ``dags test`` output."""
    marker = "Returned value was: {'counts'"
    for line in reversed(output.splitlines()):
        if marker in line:
            text = line.split("Returned value was: ", 1)[1].rsplit(" [airflow", 1)[0]
            try:
                return ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                return None
    return None


@pytest.mark.timeout(1500)
def test_faults_2000_customers_two_dag_runs(
    customers: Customers,
    start_sandbox: Any,
    scanner: SecretScanner,
    scenario: Scenario,
    airflow_cli: Any,
    airflow_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.name = f"faults: {COUNT} customers, 2 DAG runs (dags test)"
    key = new_api_key("faults")
    scanner.add("api key", key)
    server = start_sandbox(key, **KNOBS)
    customers.seed(COUNT, seed=5)
    expected = customers.expected()
    assert len(expected) == COUNT
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, key))
    scenario.customers = COUNT

    # the plan of a dry run (same faults): printable, secret-free
    dry = provision_batch(
        customers.conn_id,
        customers.query,
        {"first": None, "last": None},
        options=ProvisionOptions(dry_run=True, requests_per_minute=0),
    )
    assert dry.dry_run and dry.counts["create"] == COUNT and dry.plan
    scanner.text("dry-run plan", dry.plan)
    scanner.text("dry-run summary", repr(dry.to_xcom()))

    outputs, summaries = [], []
    with Bursts(server, period=8.0, length=1.5, rate=600) as bursts:
        for run in (1, 2):
            started = time.monotonic()
            result = airflow_cli.dags_test(
                "bolna_bulk_provision",
                conf=CONF,
                check=False,
                timeout=1200,
                env={"AIRFLOW_VAR_BOLNA_PROVISIONING": json.dumps(SETTINGS)},
            )
            outputs.append(result.stdout)
            summary = summary_from(result.stdout)
            summaries.append(summary)
            counts = (summary or {}).get("counts", {})
            scenario.note(
                f"run {run}: {time.monotonic() - started:.0f} s, "
                + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                + (
                    f"; first failures: {[f['reason'][:120] for f in summary['failed'][:3]]}"
                    if summary and summary.get("failed")
                    else ""
                )
            )
            assert summary is not None, f"run {run} produced no summary:\n{result.stdout[-5000:]}"
    scenario.runs = 2
    scenario.faults["rate_limit_bursts"] = bursts.with_retry_after + bursts.without_retry_after
    scenario.note(
        f"429 bursts (600/min, 1.5 s every 8 s): {bursts.with_retry_after} with Retry-After, "
        f"{bursts.without_retry_after} without"
    )
    assert bursts.with_retry_after and bursts.without_retry_after

    counters = server.admin.counters()
    scenario.add_faults(counters["faults"])
    scenario.requests = counters["total_requests"]
    scenario.duplicate_posts = counters["duplicate_names_attempted"]

    state = customers.state()
    verdict = verify(server, expected, state)
    scenario.converged(verdict)
    assert counters["faults"]["fail_before"] > 0 and counters["faults"]["rate_limited"] > 0
    assert counters["faults"]["drop_after_commit_502"] + counters["faults"]["drop_after_commit_conn"] > 0
    assert counters["faults"]["latency_spikes"] > 0
    assert verdict.ok, verdict.explain()
    assert counters["writes"]["create_trunk"] == COUNT, "one committed create per customer"
    assert len(state) == COUNT and summaries[1]["failed_total"] == 0

    # secrets: outputs, task logs, every table of the metadata DB, the state table
    for run, output in enumerate(outputs, 1):
        scanner.text(f"dags test output, run {run}", output)
    scanner.tree(airflow_home / "logs", "task logs")
    per_table = scanner.sqlite(airflow_home / "airflow.db", "metadata DB")
    assert "xcom" in per_table and "rendered_task_instance_fields" in per_table
    xcoms = _count(
        airflow_home / "airflow.db", "SELECT COUNT(*) FROM xcom WHERE dag_id = 'bolna_bulk_provision'"
    )
    rendered = _count(
        airflow_home / "airflow.db",
        "SELECT COUNT(*) FROM rendered_task_instance_fields WHERE dag_id = 'bolna_bulk_provision'",
    )
    assert xcoms >= 2 * 4 and rendered >= 4, (xcoms, rendered)  # the scan saw this run's rows
    scenario.note(
        f"scanned {len(per_table)} metadata tables ({xcoms} XCom rows, {rendered} rendered-field rows "
        "of this DAG); `dags test` writes task logs to its output, which is scanned"
    )
    scanner.rows("state table", state.values())
    assert not scanner.hits, scanner.summary()
