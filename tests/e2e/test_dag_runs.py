"""DAG runs triggered through the REST API, run by the scheduler, LocalExecutor and triggerer.

All four runs (:data:`~tests.e2e.conftest.RUNS`) are triggered together as soon as Airflow is up
and polled through ``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}`` until they finish.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

from tests.e2e.conftest import BULK_PARAMS, CUSTOMER_COUNT, DASHBOARD_URL, SIGNUP_CUSTOMER
from tests.e2e.stack import AirflowREST, RunResult

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

LINK_NAME = "Bolna trunk"


def trunks_by_name(sandbox: Any) -> dict[str, dict[str, Any]]:
    with sandbox.client() as client:
        response = client.get("/sip-trunks/trunks")
        response.raise_for_status()
        return {t["name"]: t for t in response.json()}


def assert_succeeded(result: RunResult, rest: AirflowREST) -> None:
    retried = [
        f"{t['task_id']}[{t['map_index']}] try {t['try_number']}"
        for t in result.task_instances
        if t["try_number"] > 1
    ]
    if retried:  # allowed (tasks have retries), but worth a look in the task logs
        warnings.warn(f"{result.dag_id}: tasks needed retries: {retried}", stacklevel=2)
    if result.run["state"] != "success":
        failed = [t for t in result.task_instances if t["state"] not in ("success", "skipped")]
        logs = "\n".join(
            f"--- {t['task_id']}[{t['map_index']}] try {t['try_number']}\n"
            + rest.log_text(
                rest.task_log(
                    result.dag_id, result.run_id, t["task_id"], max(t["try_number"], 1), t["map_index"]
                )
            )[-3000:]
            for t in failed[:3]
        )
        pytest.fail(
            f"{result.dag_id} run {result.run_id} is {result.run['state']}:\n{result.summary()}\n{logs}"
        )


def final_log(rest: AirflowREST, result: RunResult, task_id: str, map_index: int = -1) -> str:
    """The log of the task instance's last try, as ``logger | event`` lines."""
    ti = result.ti(task_id, map_index)
    return rest.log_text(
        rest.task_log(result.dag_id, result.run_id, task_id, max(ti["try_number"], 1), map_index)
    )


def assert_deferred_in_triggerer(
    rest: AirflowREST, result: RunResult, task_id: str, map_index: int = -1, trigger_logger: str | None = None
) -> str:
    """The task deferred, and its trigger ran in the triggerer process.

    Evidence, all from the API server: the worker's "Pausing task as DEFERRED", a trigger log
    file (``attempt=1.log.trigger.<triggerer job id>.log``, written only by the triggerer)
    among the log's sources, the triggerer's "Trigger fired event", and — when given — a record
    from the trigger class's own logger.
    """
    ti = result.ti(task_id, map_index)
    records = rest.task_log(result.dag_id, result.run_id, task_id, ti["try_number"], map_index)
    text = rest.log_text(records)
    events = [str(r.get("event")) for r in records]
    sources = [e for e in events if "/" in e and ".log" in e]
    assert any(e.startswith("Pausing task as DEFERRED") for e in events), text
    assert any(re.search(r"\.log\.trigger\.\d+\.log$", s) for s in sources), sources
    assert "Trigger fired event" in events, text
    if trigger_logger:
        assert any(r.get("logger") == trigger_logger for r in records), text
    return text


# ---------------------------------------------------------------------- the stack's own smoke DAG
def test_smoke_dag_runs_on_local_executor_and_triggerer(
    finished_runs: dict[str, RunResult], rest: AirflowREST
) -> None:
    result = finished_runs["bolna_e2e_smoke"]
    assert_succeeded(result, rest)
    hello = final_log(rest, result, "hello")
    assert "e2e smoke says hello, conf={'from': 'e2e'}" in hello
    assert_deferred_in_triggerer(rest, result, "wait_deferred")


# ---------------------------------------------------------------------- bolna_customer_signup
def test_customer_signup_provisions_the_customer(
    finished_runs: dict[str, RunResult], rest: AirflowREST, e2e_sandbox: Any
) -> None:
    result = finished_runs["bolna_customer_signup"]
    assert_succeeded(result, rest)
    assert result.run["conf"] == {"customer_id": SIGNUP_CUSTOMER}
    assert result.run["run_type"] == "manual"
    trunk = trunks_by_name(e2e_sandbox)[f"cust-{SIGNUP_CUSTOMER}"]
    assert trunk["phone_numbers"], trunk
    log = final_log(rest, result, "provision")
    # created here, or by the overlapping bulk run a moment before (then found recorded)
    assert re.search(
        r"Sign-up: \{'created': 1|Sign-up: \{'created': 0, 'adopted': 0, 'updated': 0, "
        r"'unchanged': 1",
        log,
    ), log


def test_customer_signup_sensor_deferred_to_the_triggerer(
    finished_runs: dict[str, RunResult], rest: AirflowREST
) -> None:
    result = finished_runs["bolna_customer_signup"]
    assert_succeeded(result, rest)
    assert_deferred_in_triggerer(
        rest,
        result,
        "wait_until_ready",
        map_index=0,
        trigger_logger="airflow_provider_bolna.triggers.sip_trunk.SIPTrunkTrigger",
    )
    # the sensor's try count stayed 1: deferral is not a retry
    assert result.ti("wait_until_ready", 0)["try_number"] == 1


def test_customer_signup_extra_link(
    finished_runs: dict[str, RunResult], rest: AirflowREST, e2e_sandbox: Any
) -> None:
    """The "Bolna trunk" link of the task that knows the trunk points at the dashboard URL of
    the connection (extra ``dashboard_url``) + ``/sip-trunks/<trunk id>``."""
    result = finished_runs["bolna_customer_signup"]
    trunk_id = trunks_by_name(e2e_sandbox)[f"cust-{SIGNUP_CUSTOMER}"]["id"]
    expected = f"{DASHBOARD_URL}/sip-trunks/{trunk_id}"
    links = {
        (t["task_id"], t["map_index"]): rest.extra_links(
            "bolna_customer_signup", result.run_id, t["task_id"], t["map_index"]
        )
        for t in result.task_instances
    }
    with_link = {key: value[LINK_NAME] for key, value in links.items() if value.get(LINK_NAME)}
    assert with_link, f"no task of the sign-up run has a {LINK_NAME!r} link: {links}"
    assert set(with_link.values()) == {expected}, with_link


# ---------------------------------------------------------------------- bolna_bulk_provision
def test_bulk_provision_with_params(
    finished_runs: dict[str, RunResult], rest: AirflowREST, e2e_sandbox: Any
) -> None:
    result = finished_runs["bolna_bulk_provision"]
    assert_succeeded(result, rest)
    assert result.run["conf"] == BULK_PARAMS
    batches = sorted(t["map_index"] for t in result.task_instances if t["task_id"] == "provision_batch")
    expected_batches = -(-CUSTOMER_COUNT // BULK_PARAMS["batch_size"])
    assert batches == list(range(expected_batches)), result.summary()
    names = set(trunks_by_name(e2e_sandbox))
    missing = {f"cust-{i}" for i in range(1, CUSTOMER_COUNT + 1)} - names
    assert not missing, f"customers without a trunk: {sorted(missing)}"
    audit = e2e_sandbox.admin.audit()
    assert audit["duplicate_trunk_names"] == [] and audit["numbers_on_multiple_active_trunks"] == [], audit


def test_bulk_provision_logs_batch_progress(finished_runs: dict[str, RunResult], rest: AirflowREST) -> None:
    result = finished_runs["bolna_bulk_provision"]
    assert_succeeded(result, rest)
    first = final_log(rest, result, "provision_batch", 0)
    assert re.search(r"Batch \{'index': 0, 'first': 1, 'last': 10, 'count': 10\}: 10 customers", first), first
    assert re.search(r"Batch \{'index': 0.*\} done in [\d.]+s: created 10", first), first
    summary = final_log(rest, result, "summarize")
    # the sign-up run provisions its customer at the same time: one of the two creates it, the
    # other finds it recorded (one writer per customer), so the bulk run created N - 1 or N
    assert re.search(rf"created\s+({CUSTOMER_COUNT - 1}|{CUSTOMER_COUNT})\b", summary), summary
    assert re.search(r"failed\s+0\b", summary), summary


# ---------------------------------------------------------------------- example_bolna_sip_trunk
def test_example_dag_full_life_cycle(
    finished_runs: dict[str, RunResult], rest: AirflowREST, e2e_sandbox: Any
) -> None:
    result = finished_runs["example_bolna_sip_trunk"]
    assert_succeeded(result, rest)
    assert result.ti("delete_trunk")["state"] == "success"
    assert "example-e2e-trunk" not in trunks_by_name(e2e_sandbox)  # cleaned up
    assert_deferred_in_triggerer(
        rest,
        result,
        "wait_for_trunk",
        trigger_logger="airflow_provider_bolna.triggers.sip_trunk.SIPTrunkTrigger",
    )
    link = rest.extra_links("example_bolna_sip_trunk", result.run_id, "create_trunk")[LINK_NAME]
    assert link and link.startswith(f"{DASHBOARD_URL}/sip-trunks/"), link
