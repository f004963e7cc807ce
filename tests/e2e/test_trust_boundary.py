"""Trust boundary over the real path: the REST API's ``POST /dags/{id}/dagRuns``, a real
scheduler and worker. A trigger's conf cannot choose the query (nor read a secret through Jinja)
and a sign-up conf cannot hold anything but ``customer_id``; both runs fail before a single
request reaches Bolna, and the API key is in no task log.

Runs after the suite's legitimate runs have finished (so that the sandbox's request counter
measures the attacks alone).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import RUN_TIMEOUT
from tests.e2e.stack import AirflowREST, RunResult, watch_runs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ATTACK = {"dry_run": True, "query": "SELECT '{{ conn.bolna_default.password | reverse }}' AS customer_id"}


def test_rest_triggers_cannot_choose_sql_or_reach_a_secret(
    finished_runs: dict[str, RunResult], rest: AirflowREST, e2e_sandbox: Any
) -> None:
    before = e2e_sandbox.admin.counters()["total_requests"]
    runs = {
        "bolna_bulk_provision": rest.trigger("bolna_bulk_provision", conf=ATTACK)["dag_run_id"],
        "bolna_customer_signup": rest.trigger(
            "bolna_customer_signup", conf={"customer_id": 1, "query": "SELECT * FROM customers"}
        )["dag_run_id"],
    }
    results = watch_runs(rest, runs, timeout=RUN_TIMEOUT)
    bulk, signup = results["bolna_bulk_provision"], results["bolna_customer_signup"]
    assert bulk.run["state"] == "failed" and bulk.ti("plan_batches")["state"] == "failed", bulk.summary()
    assert signup.run["state"] == "failed" and signup.ti("resolve_customers")["state"] == "failed"
    plan_log = json.dumps(
        rest.task_log(
            "bolna_bulk_provision", bulk.run_id, "plan_batches", max(bulk.ti("plan_batches")["try_number"], 1)
        )
    )
    assert "query: cannot be set when triggering a run" in plan_log, plan_log[-2000:]
    signup_log = json.dumps(
        rest.task_log(
            "bolna_customer_signup",
            signup.run_id,
            "resolve_customers",
            max(signup.ti("resolve_customers")["try_number"], 1),
        )
    )
    assert "may hold only customer_id" in signup_log, signup_log[-2000:]
    key = e2e_sandbox.api_key
    for text in (plan_log, signup_log):
        assert key not in text and key[::-1] not in text
    assert e2e_sandbox.admin.counters()["total_requests"] == before  # not one request reached Bolna
