"""Crash safety at chosen points, not by timing luck: the run dies at an exact step, the rerun
must finish the job with each trunk created exactly once — by looking up what the dead run may
have created, not by leaning on the API's refusal of a duplicate name.

The worker (:mod:`tests.provisioning.crash_worker`) provisions one batch customer by customer
and ends its process (``os._exit``, no clean-up) either right after the API created the
``AT``-th trunk and before that result is recorded (``after-post``), or right after the
``AT``-th result is committed (``after-record``). The rerun runs in-process.

The figures come from the sandbox's counters: create *attempts* (every ``POST
/sip-trunks/trunks``, refused or not) and creates that succeeded. A rerun that re-POSTed a
name it had already created would be refused by today's sandbox (unique names) and the trunk
adopted, which hides the mistake from a trunk count; so the attempts are what is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.provisioning import ProvisionOptions, provision_batch
from tests.provisioning import crash_worker
from tests.provisioning.conftest import CustomerDB, accept_duplicate_names, create_attempts, writes

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CUSTOMERS = 6
AT = 3


def crash(db: CustomerDB, db_path: Path, point: str, at: int) -> subprocess.CompletedProcess[str]:
    """Run the worker until it dies at ``point`` of create ``at``."""
    cmd = [
        sys.executable,
        "-m",
        "tests.provisioning.crash_worker",
        "--point",
        point,
        "--at",
        str(at),
        "--customers-conn",
        db.conn_id,
        "--query",
        db.query,
        "--sqlite-path",
        str(db_path),
        "--state-table",
        db.state_table,
    ]
    return subprocess.run(
        cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.parametrize("point", crash_worker.POINTS)
def test_a_run_killed_at_a_chosen_point_is_finished_by_the_rerun_without_a_second_post(
    sqlite_db: CustomerDB, bolna_api: Any, tmp_path: Path, point: str
) -> None:
    db, server = sqlite_db, bolna_api
    accept_duplicate_names(server)  # a second POST would be a second trunk, not a refusal
    db.seed(CUSTOMERS, seed=31)
    db_path = tmp_path / "customers.db"

    dead = crash(db, db_path, point, AT)
    assert dead.returncode == crash_worker.CRASHED, (
        f"the crash point was not reached:\n{dead.stdout}\n{dead.stderr[-3000:]}"
    )
    created = writes(server)["create_trunk"]
    assert created == AT and create_attempts(server) == AT
    state = db.state()
    recorded = sorted(k for k, row in state.items() if row[0] == "provisioned")
    if point == "after-post":
        assert len(recorded) == AT - 1  # the AT-th trunk exists, its result was lost with the process
    else:
        assert len(recorded) == AT
    marks = {k: row[0] for k, row in state.items() if row[0] != "provisioned"}

    server.admin.reset_counters()
    summary = provision_batch(
        db.conn_id,
        db.query,
        {"first": None, "last": None},
        options=ProvisionOptions(state_table=db.state_table, concurrency=1),
    )
    counts = summary.counts
    never_sent = CUSTOMERS - AT
    # exactly the names never sent are POSTed; the lost one is found by one look-up, not a 409
    assert create_attempts(server) == never_sent, server.admin.counters()["requests"]
    assert server.admin.counters()["duplicate_names_attempted"] == 0
    assert summary.requests.get("GET", 0) == 1
    if point == "after-post":
        assert (counts["adopted"], counts["unchanged"], counts["created"]) == (1, AT - 1, never_sent)
    else:
        assert (counts["adopted"], counts["unchanged"], counts["created"]) == (0, AT, never_sent)
    assert counts["failed"] == 0
    # what the dead run was about to create, or created without a record, it had marked first
    assert marks == dict.fromkeys(marks, "pending") and len(marks) == CUSTOMERS - len(recorded)
    audit = server.admin.audit()
    assert audit["trunks"] == CUSTOMERS and audit["duplicate_trunk_names"] == []
    state = db.state()
    assert {row[0] for row in state.values()} == {"provisioned"} and len(state) == CUSTOMERS
    assert writes(server)["create_trunk"] == never_sent
