"""``bolna_bulk_provision`` on CeleryExecutor against an account limited to R = 1,000 requests/min.

Two Celery workers of two slots each (separate processes), pool ``bolna_api`` of four, 3,000
customers in PostgreSQL, batches of 500 (six batches, four at a time). The sandbox counts every
request per second, so the rate is measured where the account sees it:

* **one clean run**: every customer provisioned, one create each; no 429; no 60-second window
  above R; and at least 95 % of R over the active window (first to last request);
* **a worker lost mid-run** (SIGKILL of the worker and every process it started, about a third
  in), the run finishing on the other worker (Airflow's retries), then a rerun: exactly one
  trunk per customer, no 429, no window above R.

The 95 % figure needs one budget shared by every batch; with a fixed slice per batch
(``requests_per_minute / parallel_batches``) the tail batches leave most of it unused.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pytest

from airflow_provider_bolna.sandbox.rates import RateFigures
from tests.e2e.stack import AirflowREST, RunResult, watch_runs
from tests.e2e_celery.conftest import CUSTOMERS, FIGURES, LATENCY_MS, RATE, database_sql, drop_provider_tables
from tests.e2e_celery.stack import CeleryStack, alive

pytestmark = [pytest.mark.e2e_celery, pytest.mark.timeout(2400)]

DAG_ID = "bolna_bulk_provision"
RUN_TIMEOUT = 1200.0


@dataclass
class Scenario:
    """What one scenario did and measured."""

    runs: list[RunResult]
    rate: RateFigures
    counters: dict[str, Any]
    audit: dict[str, Any]
    trunk_names: list[str]
    state: dict[str, int]
    wall_s: float
    extra: dict[str, Any]

    def figures(self) -> dict[str, Any]:
        return {
            "customers": CUSTOMERS,
            "latency_ms": LATENCY_MS,
            **asdict(self.rate),
            "wall_s": round(self.wall_s, 1),
            "runs": [f"{r.run_id}: {r.run['state']}" for r in self.runs],
            "creates": self.counters["writes"]["create_trunk"],
            "trunks": self.counters["trunks"],
            "duplicate_names_attempted": self.counters["duplicate_names_attempted"],
            "state": self.state,
            **self.extra,
        }


#: What the runs' conf sets: only what any trigger may (the default query, state table and
#: parallel_batches = 4 = the pool's size are the deployment's).
CONF = {"batch_size": 500, "fail_on_error": True}
STATE_TABLE = "bolna_provisioning_state"


def start_run(rest: AirflowREST, run_id: str) -> str:
    return str(rest.trigger(DAG_ID, conf=CONF, run_id=run_id)["dag_run_id"])


def finish(rest: AirflowREST, stack: CeleryStack, run_id: str) -> RunResult:
    return watch_runs(rest, {DAG_ID: run_id}, timeout=RUN_TIMEOUT, stack=stack)[DAG_ID]


def measure(sandbox: Any, db: Any, runs: list[RunResult], started: float, extra: dict[str, Any]) -> Scenario:
    """Read the sandbox's counters (before listing the trunks, which is a request too) and the state."""
    counters = sandbox.admin.counters()
    audit = sandbox.admin.audit()
    with httpx.Client(
        base_url=sandbox.url, headers=sandbox.auth_headers, trust_env=False, timeout=60
    ) as client:
        response = client.get("/sip-trunks/trunks")
        response.raise_for_status()
        names = [t["name"] for t in response.json()]
    state = dict(database_sql(db, f"SELECT status, COUNT(*) FROM {STATE_TABLE} GROUP BY status"))
    return Scenario(
        runs,
        RateFigures.from_timeline(counters["per_second"], RATE),
        counters,
        audit,
        names,
        state,
        time.monotonic() - started,
        extra,
    )


def record(name: str, scenario: Scenario, output: Any) -> None:
    figures = scenario.figures()
    (output / f"timeline-{name.replace(' ', '-')}.json").write_text(json.dumps(figures.pop("per_second")))
    FIGURES[name] = figures
    (output / "figures.json").write_text(json.dumps(FIGURES, indent=1, default=str))
    print(f"\n{name}: {json.dumps(figures, default=str)}")


def expected_names() -> list[str]:
    return sorted(f"cust-{i}" for i in range(1, CUSTOMERS + 1))


# ---------------------------------------------------------------------- one clean run


@pytest.fixture(scope="module")
def clean_run(
    celery_rest: AirflowREST, celery_stack: CeleryStack, rate_sandbox: Any, celery_db: Any, celery_output: Any
) -> Scenario:
    rate_sandbox.admin.reset()
    drop_provider_tables(celery_db)
    started = time.monotonic()
    run = finish(celery_rest, celery_stack, start_run(celery_rest, "celery_clean"))
    scenario = measure(rate_sandbox, celery_db, [run], started, {})
    record("clean run", scenario, celery_output)
    return scenario


def test_clean_run_provisions_every_customer_once(clean_run: Scenario) -> None:
    assert clean_run.runs[0].run["state"] == "success", clean_run.runs[0].summary()
    assert sorted(clean_run.trunk_names) == expected_names()
    assert clean_run.counters["writes"]["create_trunk"] == CUSTOMERS
    assert clean_run.audit["duplicate_trunk_names"] == []
    assert clean_run.state == {"provisioned": CUSTOMERS}


def test_clean_run_never_exceeds_the_budget(clean_run: Scenario) -> None:
    assert clean_run.rate.throttled == 0 and clean_run.counters["faults"]["rate_limited"] == 0
    assert clean_run.rate.busiest_window <= RATE, clean_run.rate


def test_clean_run_uses_95_percent_of_the_budget(clean_run: Scenario) -> None:
    """Fails while each batch gets a fixed slice of R: the two tail batches run at half of R."""
    assert clean_run.rate.share_of_rate >= 0.95, clean_run.rate


# ---------------------------------------------------------------------- a worker lost mid-run


@pytest.fixture(scope="module")
def killed_run(
    clean_run: Scenario,
    celery_rest: AirflowREST,
    celery_stack: CeleryStack,
    rate_sandbox: Any,
    celery_db: Any,
    celery_output: Any,
) -> Scenario:
    rate_sandbox.admin.reset()
    drop_provider_tables(celery_db)
    started, started_wall = time.monotonic(), time.time()
    run_id = start_run(celery_rest, "celery_killed")
    deadline = time.monotonic() + RUN_TIMEOUT
    while rate_sandbox.admin.counters()["writes"]["create_trunk"] < CUSTOMERS // 3:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(1)
    creates_at_kill = rate_sandbox.admin.counters()["writes"]["create_trunk"]
    killed_at, pids = celery_stack.kill_worker(1)
    time.sleep(1)
    survivors = [pid for pid in pids if alive(pid)]
    first = finish(celery_rest, celery_stack, run_id)
    rerun = finish(celery_rest, celery_stack, start_run(celery_rest, "celery_killed_rerun"))
    tries = {f"{t['task_id']}[{t['map_index']}]": t["try_number"] for t in first.task_instances}
    scenario = measure(
        rate_sandbox,
        celery_db,
        [first, rerun],
        started,
        {
            "creates_at_kill": creates_at_kill,
            "killed_pids": len(pids),
            "survivors": survivors,
            "tries": tries,
            "killed_after_s": round(killed_at - started_wall, 1),
        },
    )
    record("worker killed", scenario, celery_output)
    return scenario


def test_killed_worker_took_its_tasks_down(killed_run: Scenario) -> None:
    """The kill hit running batches: every process of the worker is gone and some batch ran again."""
    assert killed_run.extra["survivors"] == []
    assert killed_run.extra["killed_pids"] > 1
    assert max(killed_run.extra["tries"].values()) >= 2, killed_run.extra["tries"]


def test_killed_worker_and_rerun_leave_exactly_one_trunk_per_customer(killed_run: Scenario) -> None:
    assert killed_run.runs[1].run["state"] == "success", killed_run.runs[1].summary()
    assert sorted(killed_run.trunk_names) == expected_names()
    assert killed_run.audit["duplicate_trunk_names"] == []
    assert killed_run.state == {"provisioned": CUSTOMERS}


def test_killed_worker_run_never_exceeds_the_budget(killed_run: Scenario) -> None:
    assert killed_run.rate.throttled == 0, killed_run.rate
    assert killed_run.rate.busiest_window <= RATE, killed_run.rate
