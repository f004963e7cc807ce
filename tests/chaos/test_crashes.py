"""Crashes: the worker SIGKILLed at random points of apply (several seeds), and the sandbox
crashed and restarted mid-run (its state kept in its SQLite file).

The engine runs as ``python -m airflow_provider_bolna.provisioning`` (one process = one worker)
while the sandbox also fails 5 % of requests and loses 5 % of committed responses. After the
crash, one more run must converge: every customer exactly one trunk with exactly its numbers,
the state table complete and truthful, nothing duplicated.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.chaoslib import (
    Customers,
    SandboxTally,
    SecretScanner,
    bolna_conn,
    engine_command,
    last_json,
    new_api_key,
    truthful_state,
    unrecorded_trunks,
    verify,
    wait_until,
)
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.integration]

SEEDS = [int(s) for s in os.environ.get("BOLNA_CHAOS_KILL_SEEDS", "11,23,37").split(",") if s.strip()]
KILL_COUNT = 300
RESTART_COUNT = 600


def _run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env=dict(os.environ), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.timeout(600)
def test_sigkill_worker_at_a_random_point(
    seed: int,
    customers: Customers,
    start_sandbox: Any,
    scanner: SecretScanner,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    scenario.name = f"SIGKILL worker mid-apply (seed {seed})"
    rng = random.Random(seed)
    key = new_api_key(f"kill{seed}")
    scanner.add("api key", key)
    server = start_sandbox(
        key, latency_ms=25, jitter_ms=20, fail_rate=0.05, drop_after_commit_rate=0.05, seed=seed
    )
    customers.seed(KILL_COUNT, seed=seed)
    expected = customers.expected()
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, key))
    scenario.customers = KILL_COUNT
    cmd = engine_command(customers.conn_id, batch_size=100, concurrency=8)

    # the kill point: after `kill_at` committed creates (0 = while the first batch is planned), plus a jitter
    kill_at = rng.randrange(0, KILL_COUNT * 9 // 10)
    log_path = tmp_path / "killed.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    try:

        def reached() -> bool:
            assert proc.poll() is None, (
                f"the engine ended before the kill point:\n{log_path.read_text()[-3000:]}"
            )
            counters = server.admin.counters()
            return counters["total_requests"] > 0 and counters["writes"]["create_trunk"] >= kill_at

        wait_until(reached, timeout=300, interval=0.01, what=f"{kill_at} creates")
        time.sleep(rng.uniform(0, 0.08))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    scenario.faults["sigkill_worker"] += 1
    time.sleep(0.5)  # requests already on the wire land (or not) on the server
    created_at_kill = server.admin.counters()["writes"]["create_trunk"]
    recorded = customers.state()
    assert truthful_state(server, recorded) == [], "a state row claims a trunk that does not exist"
    statuses = [row["status"] for row in recorded.values()]
    scenario.unrecorded = len(unrecorded_trunks(server, recorded))
    scenario.note(
        f"killed after {created_at_kill} committed creates; state rows: {statuses.count('provisioned')} "
        f"provisioned, {statuses.count('pending')} pending, {statuses.count('failed')} failed; "
        f"{scenario.unrecorded} trunks created but not recorded"
    )

    rerun = _run(cmd)
    summary = last_json(rerun.stdout)
    assert rerun.returncode == 0 and summary, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    scenario.runs = 2
    counters = server.admin.counters()
    scenario.add_faults(counters["faults"])
    scenario.requests = counters["total_requests"]
    scenario.duplicate_posts = counters["duplicate_names_attempted"]
    state = customers.state()
    verdict = verify(server, expected, state)
    scenario.converged(verdict)
    assert verdict.ok, verdict.explain()
    assert counters["writes"]["create_trunk"] == KILL_COUNT, "every trunk committed exactly once"
    assert summary["counts"]["adopted"] == scenario.unrecorded, (
        "the rerun adopts exactly what was not recorded"
    )
    actions = [row["action"] for row in state.values()]
    scenario.note(
        f"rerun: {summary['counts']}; state actions: created {actions.count('created')}, "
        f"adopted {actions.count('adopted')}"
    )
    for text, place in (
        (log_path.read_text(errors="replace"), "killed run output"),
        (rerun.stdout + rerun.stderr, "rerun output"),
    ):
        scanner.text(place, text)
    scanner.rows("state table", state.values())
    assert not scanner.hits, scanner.summary()


@pytest.mark.timeout(900)
def test_sandbox_crash_and_restart_mid_run(
    customers: Customers,
    start_sandbox: Any,
    scanner: SecretScanner,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """SIGKILL the sandbox, start it again (same port, same SQLite file), later restart it
    gracefully: the run retries through it, or fails with its rows marked; the next run completes."""
    scenario.name = "sandbox crash + restart mid-run"
    key = new_api_key("restart")
    scanner.add("api key", key)
    server = start_sandbox(key, latency_ms=10, fail_rate=0.05, drop_after_commit_rate=0.05, seed=3)
    tally = SandboxTally(server)
    customers.seed(RESTART_COUNT, seed=9)
    expected = customers.expected()
    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, key, max_retries=8, max_retry_seconds=30)
    )
    scenario.customers = RESTART_COUNT
    cmd = engine_command(customers.conn_id, batch_size=200, concurrency=8)
    log_path = tmp_path / "first.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    try:
        creates = lambda: server.admin.counters()["writes"]["create_trunk"]
        wait_until(lambda: proc.poll() is not None or creates() >= 120, 300, 0.02, "120 creates")
        if proc.poll() is None:
            tally.bank()
            server.kill()  # crash: in-flight requests cut, SQLite file as it is
            scenario.faults["sandbox_crash"] += 1
            time.sleep(1.0)
            server.start()
            wait_until(lambda: proc.poll() is not None or creates() >= 120, 300, 0.02, "120 more creates")
        if proc.poll() is None:
            tally.bank()
            server.restart()  # graceful stop + start, same port and file
            scenario.faults["sandbox_restart"] += 1
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    first_output = log_path.read_text(errors="replace")
    first = last_json(first_output)
    assert proc.returncode in (0, 1), f"the run crashed (exit {proc.returncode}):\n{first_output[-4000:]}"
    assert first is not None, first_output[-4000:]
    state = customers.state()
    assert truthful_state(server, state) == [], "a state row claims a trunk that does not exist"
    unmarked = [k for k in expected if k not in state]
    assert not unmarked, f"{len(unmarked)} customers have no state row after the first run"
    failed = [r for r in state.values() if r["status"] == "failed"]
    scenario.note(
        f"first run: exit {proc.returncode}, {first['counts']}; failed rows {len(failed)}"
        + (f", e.g. {failed[0]['last_error'][:140]!r}" if failed else "")
    )

    rerun = _run(cmd)
    summary = last_json(rerun.stdout)
    assert rerun.returncode == 0 and summary, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    scenario.runs = 2
    tally.bank()
    scenario.add_faults(tally.faults)
    scenario.requests = tally.requests
    scenario.duplicate_posts = tally.duplicate_names
    state = customers.state()
    verdict = verify(server, expected, state)
    scenario.converged(verdict)
    assert verdict.ok, verdict.explain()
    # (the write counters die with a crashed sandbox: exactly-once is read from its tables above)
    assert server.admin.audit()["trunks"] == RESTART_COUNT
    scenario.note(f"second run: {summary['counts']}")
    scanner.text("first run output", first_output)
    scanner.text("second run output", rerun.stdout + rerun.stderr)
    scanner.rows("state table", state.values())
    assert not scanner.hits, scanner.summary()
