"""The customer database goes away mid-run: a private PostgreSQL cluster (initdb in a temp dir, a
free port — never the shared server) holds the customers and the state table; it is stopped
(``pg_ctl stop -m fast``) while batches are being applied, then started again.

Promise: the run fails clearly (non-zero exit, a database error as its last word, in bounded
time, no secret in its output), no state row claims a trunk that does not exist, and the next
run converges (the trunks created but never recorded are adopted, not created again).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.mapping import RowMapper
from airflow_provider_bolna.sandbox.seed import (
    create_customers_table,
    generate_customers,
    insert_customers,
)
from tests.chaos.chaoslib import (
    SecretScanner,
    ThrowawayPostgres,
    bolna_conn,
    engine_command,
    last_json,
    new_api_key,
    read_state,
    sip_password,
    truthful_state,
    unrecorded_trunks,
    verify,
    wait_until,
)
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.integration, pytest.mark.postgres]

COUNT = 800
DB_ERROR_WORDS = (
    "OperationalError",
    "state writer failed",
    "connection",
    "terminating",
    "server closed",
    "Connection refused",
    "could not connect",
)


@pytest.fixture
def own_postgres() -> Any:
    """A throw-away PostgreSQL cluster, destroyed after the test."""
    try:
        pg = ThrowawayPostgres()
    except FileNotFoundError as exc:
        if os.environ.get("BOLNA_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.mark.timeout(900)
def test_customer_db_outage_mid_run(
    own_postgres: ThrowawayPostgres,
    start_sandbox: Any,
    scanner: SecretScanner,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import psycopg

    pg = own_postgres
    scenario.name = "customer DB (PostgreSQL) down mid-run"
    key = new_api_key("dbdown")
    scanner.add("api key", key)
    server = start_sandbox(key, latency_ms=20, jitter_ms=10, seed=5)
    rows = []
    for row in generate_customers(COUNT, 0, 17):
        if row["auth_password"]:
            row["auth_password"] = sip_password(row["customer_id"])
        rows.append(row)
    with psycopg.connect(pg.uri) as conn:
        create_customers_table(conn, "customers")
        insert_customers(conn, rows, "customers", placeholder="%s")
    mapper = RowMapper()
    expected = {str(r["customer_id"]): {n.key for n in mapper.map_row(r).spec.phone_numbers} for r in rows}
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_CUSTOMERS", pg.uri)
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, key))
    scenario.customers = COUNT
    cmd = engine_command("bolna_customers", batch_size=200, concurrency=8)

    log_path = tmp_path / "outage.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: proc.poll() is not None or server.admin.counters()["writes"]["create_trunk"] >= 300,
            300,
            0.02,
            "300 creates",
        )
        assert proc.poll() is None, f"the run ended before the outage:\n{log_path.read_text()[-3000:]}"
        stopped = time.monotonic()
        pg.stop("fast")
        scenario.faults["db_outage"] += 1
        proc.wait(timeout=180)
        failed_after = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
            pytest.fail("the engine hung after the database went away")
    output = log_path.read_text(errors="replace")
    scanner.text("outage run output", output)
    assert proc.returncode not in (0, None), "the run claims success although its database went away"
    tail = [line for line in output.strip().splitlines() if line.strip()][-1]
    assert any(word in output[-3000:] for word in DB_ERROR_WORDS), output[-3000:]
    created_then = server.admin.counters()["writes"]["create_trunk"]
    scenario.note(
        f"database stopped after {created_then} creates; the run failed {failed_after:.1f} s later "
        f"(exit {proc.returncode}): {tail[:160]!r}"
    )

    pg.start()
    state = read_state(lambda: psycopg.connect(pg.uri))
    assert truthful_state(server, state) == [], "a state row claims a trunk that does not exist"
    statuses = [row["status"] for row in state.values()]
    scenario.unrecorded = len(unrecorded_trunks(server, state))
    scenario.note(
        f"{len(state)} state rows survived, all truthful ({statuses.count('provisioned')} provisioned, "
        f"{statuses.count('pending')} pending, {statuses.count('failed')} failed); "
        f"{scenario.unrecorded} trunks created but not recorded"
    )

    rerun = subprocess.run(
        cmd, env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False
    )
    summary = last_json(rerun.stdout)
    assert rerun.returncode == 0 and summary, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    scenario.runs = 2
    state = read_state(lambda: psycopg.connect(pg.uri))
    verdict = verify(server, expected, state)
    counters = server.admin.counters()
    scenario.requests = counters["total_requests"]
    scenario.duplicate_posts = counters["duplicate_names_attempted"]
    scenario.converged(verdict)
    assert verdict.ok, verdict.explain()
    assert counters["writes"]["create_trunk"] == COUNT, "no trunk was created twice"
    assert summary["counts"]["adopted"] == scenario.unrecorded, (
        "the next run adopts exactly what was not recorded"
    )
    scenario.note(f"next run: {summary['counts']}")
    scanner.text("next run output", rerun.stdout + rerun.stderr)
    scanner.rows("state table", state.values())
    assert not scanner.hits, scanner.summary()
