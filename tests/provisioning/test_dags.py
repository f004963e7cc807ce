"""The DAGs: import and parse time, the params form, and real ``airflow dags test`` runs.

``airflow dags test`` runs every task in one process and ignores pools, so the runs below need
no ``bolna_api`` pool; a scheduler does (``airflow pools set bolna_api 4 "Bolna API"``).
The REST trigger of ``bolna_customer_signup`` is exercised by ``dags test -c`` here (same
params validation, same run); the api-server path belongs to the e2e suite.
"""

from __future__ import annotations

import runpy
import time
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_cli import scannable
from tests.provisioning.conftest import CustomerDB, writes

DAGS = Path(__file__).resolve().parents[2] / "dags"
BULK = DAGS / "bolna_bulk_provision.py"
SIGNUP = DAGS / "bolna_customer_signup.py"


def _summary_from(output: str) -> dict[str, Any]:
    """The ``summarize`` task's return value, from the ``dags test`` output."""
    marker = "Done. Returned value was: {'counts'"
    line = next(line for line in output.splitlines()[::-1] if marker in line)
    text = line.split("Returned value was: ", 1)[1].rsplit(" [airflow", 1)[0]
    import ast

    return ast.literal_eval(text)


def test_dag_files_import_cleanly() -> None:
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert {k: v for k, v in bag.import_errors.items() if "bolna_" in k} == {}
    bulk = bag.dags.get("bolna_bulk_provision")
    signup = bag.dags.get("bolna_customer_signup")
    assert bulk is not None and signup is not None
    assert set(bulk.task_ids) == {"plan_batches", "provision_batch", "deprovision_gone", "summarize"}
    assert bulk.get_task("provision_batch").pool == "bolna_api"
    assert set(signup.task_ids) == {"resolve_customers", "provision", "wait_until_ready"}
    # every wait is bounded: each task has an execution_timeout, each run a dagrun_timeout
    for dag in (bulk, signup):
        assert all(t.execution_timeout is not None for t in dag.tasks), dag.dag_id
    assert bulk.dagrun_timeout is not None


def test_bulk_dag_parses_fast() -> None:
    runpy.run_path(str(BULK))  # warm Airflow's own imports
    started = time.perf_counter()
    runpy.run_path(str(BULK))
    assert time.perf_counter() - started < 0.3


def _dag(path: Path, dag_id: str) -> Any:
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(path))
    return bag.dags[dag_id]


def test_bulk_dag_params_form_holds_run_options_only() -> None:
    """What the trigger form offers is what a trigger may set: nothing that chooses what is read,
    where, or what may be deleted."""
    dag = _dag(BULK, "bolna_bulk_provision")
    params = dag.params
    defaults = {k: params[k] for k in params}
    assert defaults == {
        "dry_run": False,
        "drift_check": False,
        "fail_on_error": False,
        "batch_size": 500,
        "concurrency": None,
        "look_before_create": False,
    }
    schema = params.get_param("batch_size").schema
    assert schema["type"] == "integer" and schema["minimum"] == 10 and schema["maximum"] == 20000
    schedule = (
        dag.schedule if hasattr(dag, "schedule") else dag.schedule_interval
    )  # Airflow 2: schedule_interval
    assert str(schedule) == "@hourly" or "hour" in str(dag.timetable.summary).lower()
    assert dag.catchup is False and dag.max_active_runs == 1


def test_signup_dag_is_asset_scheduled_and_validates_customer_id() -> None:
    try:
        from airflow.sdk.definitions.param import ParamsDict
    except ImportError:  # Airflow 2
        from airflow.models.param import ParamsDict

    dag = _dag(SIGNUP, "bolna_customer_signup")
    # Airflow 2 schedules on datasets (compat's Asset is a Dataset there)
    condition = getattr(dag.timetable, "asset_condition", None) or dag.timetable.dataset_condition
    assert "bolna://customers/signup" in str(condition)
    assert set(dag.params) == {"customer_id"}
    params = ParamsDict(dict(dag.params.items()))
    params.update({"customer_id": 42})
    params.validate()
    with pytest.raises(Exception, match="customer_id"):
        params.update({"customer_id": {"nested": True}})
    with pytest.raises(Exception, match="customer_id"):
        params.update({"customer_id": "x" * 129})


@pytest.mark.integration
@pytest.mark.slow
def test_bulk_dag_with_airflow_dags_test_sqlite(
    sqlite_db: CustomerDB, bolna_api: Any, airflow_cli: Any
) -> None:
    sqlite_db.seed(300, invalid=3, seed=31)
    first = airflow_cli.dags_test("bolna_bulk_provision", conf={"batch_size": 100, "concurrency": 16})
    run = _summary_from(first.stdout)
    assert run["counts"]["created"] == 297 and run["counts"]["failed"] == 3 and run["batches"] == 3
    assert writes(bolna_api)["create_trunk"] == 297 and writes(bolna_api)["add_number"] == 0
    assert len([f for f in run["failed"] if "customer " in f["reason"]]) == 3
    assert "Bolna provisioning summary" in first.stdout

    before = bolna_api.admin.counters()["total_requests"]
    second = airflow_cli.dags_test("bolna_bulk_provision", conf={"batch_size": 100})
    assert _summary_from(second.stdout)["counts"]["unchanged"] == 297
    assert bolna_api.admin.counters()["total_requests"] == before  # zero requests, zero writes
    for secret in [
        r[0] for r in sqlite_db.execute("SELECT auth_password FROM {t} WHERE auth_password IS NOT NULL")
    ]:
        assert secret not in scannable(first.stdout) and secret not in scannable(second.stdout)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.postgres
def test_bulk_dag_with_postgres_customer_db(pg_db: CustomerDB, bolna_api: Any, airflow_cli: Any) -> None:
    """The deployment's settings come from the admins' Variable, not from the run's conf."""
    import json

    pg_db.seed(200, invalid=2, seed=41)
    variable = {
        "AIRFLOW_VAR_BOLNA_PROVISIONING": json.dumps(
            {
                "customers_conn_id": pg_db.conn_id,
                "query": pg_db.query,
                "state_table": pg_db.state_table,
                "deprovision": True,
            }
        )
    }
    conf = {"batch_size": 100}
    first = airflow_cli.dags_test("bolna_bulk_provision", conf=conf, env=variable)
    assert _summary_from(first.stdout)["counts"]["created"] == 198
    pg_db.execute("DELETE FROM {t} WHERE customer_id <= 3")
    second = airflow_cli.dags_test("bolna_bulk_provision", conf=conf, env=variable)
    run = _summary_from(second.stdout)
    assert run["counts"]["deprovisioned"] == 3 and run["counts"]["unchanged"] == 195
    assert writes(bolna_api)["delete_trunk"] == 3
    assert sorted(c for c, s in pg_db.state().items() if s[0] == "deprovisioned") == ["1", "2", "3"]


@pytest.mark.integration
@pytest.mark.slow
def test_signup_dag_provisions_one_customer(sqlite_db: CustomerDB, bolna_api: Any, airflow_cli: Any) -> None:
    sqlite_db.seed(5, seed=51)
    result = airflow_cli.dags_test("bolna_customer_signup", conf={"customer_id": 4})
    assert "DagRun Finished" in result.stdout and "state=success" in result.stdout
    assert writes(bolna_api)["create_trunk"] == 1
    status, action, trunk_id, *_ = sqlite_db.state()["4"]
    assert (status, action) == ("provisioned", "created")
    with bolna_api.client() as http:
        trunk = http.get(f"/sip-trunks/trunks/{trunk_id}").json()
    expected = sqlite_db.execute("SELECT numbers FROM {t} WHERE customer_id = 4")[0][0]
    assert trunk["name"] == "cust-4" and trunk["is_active"]
    assert sorted(n["phone_number"] for n in trunk["phone_numbers"]) == sorted(
        n.strip() for n in expected.split(",")
    )
