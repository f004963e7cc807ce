"""SIGKILL the engine's process mid-apply, rerun it: every customer provisioned exactly once.

The engine runs as ``python -m airflow_provider_bolna.provisioning`` in a subprocess; the
sandbox answers with 50 ms latency so that the kill lands while requests are in flight and
results are still being recorded. The rerun adopts what the dead run created but did not
record (one list call per batch shows it), creates the rest, and never POSTs a name twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.provisioning.conftest import CustomerDB, writes

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow]

COUNT = 1000


def engine_command() -> list[str]:
    return [
        sys.executable,
        "-m",
        "airflow_provider_bolna.provisioning",
        "--customers-conn",
        "bolna_customers",
        "--batch-size",
        "250",
        "--concurrency",
        "8",
        "--json",
    ]


def settled_creates(server: Any, quiet: float = 1.0, limit: float = 30.0) -> int:
    """The server's create count once it has not moved for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    last, since = writes(server)["create_trunk"], time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        now = writes(server)["create_trunk"]
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_sigkill_mid_apply_then_rerun(sqlite_db: CustomerDB, bolna_api: Any, tmp_path: Path) -> None:
    sqlite_db.seed(COUNT, seed=21)
    bolna_api.admin.config(latency_ms=50)
    log_path = tmp_path / "killed-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(engine_command(), env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while writes(bolna_api)["create_trunk"] < 150:
            assert proc.poll() is None, f"the engine exited early:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no progress:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    created_at_kill = settled_creates(bolna_api)  # requests already on the wire still land
    state_at_kill = [s[0] for s in sqlite_db.state().values()]
    recorded_at_kill = state_at_kill.count("provisioned")
    assert 150 <= created_at_kill < COUNT, "the kill must land mid-apply"
    assert recorded_at_kill <= created_at_kill
    # every create sent but not recorded left a pending row (written before the POST), which
    # is what sends the rerun to look those names up instead of POSTing them again
    assert state_at_kill.count("pending") >= created_at_kill - recorded_at_kill
    assert set(state_at_kill) <= {"provisioned", "pending"}

    rerun = subprocess.run(
        engine_command(), env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]

    counters = bolna_api.admin.counters()
    assert counters["writes"]["create_trunk"] == COUNT, "each customer's trunk was POSTed exactly once"
    assert counters["writes"]["add_number"] == 0 and counters["duplicate_names_attempted"] == 0
    audit = bolna_api.admin.audit()
    assert audit["trunks"] == COUNT and audit["duplicate_trunk_names"] == []
    assert audit["numbers_on_multiple_active_trunks"] == [] and audit["active_numbers_without_trunk"] == 0
    state = sqlite_db.state()
    assert len(state) == COUNT and {s[0] for s in state.values()} == {"provisioned"}
    actions = [s[1] for s in state.values()]
    assert actions.count("created") + actions.count("adopted") == COUNT
    # whatever the dead run created without recording it was adopted, not created again
    assert actions.count("adopted") == created_at_kill - recorded_at_kill
