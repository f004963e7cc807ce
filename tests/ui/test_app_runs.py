"""The page against real runs: the repository's bulk DAG run with ``airflow dags test`` (real DAG
runs, task instances and the plan's XComs in the metadata DB) against the sandbox; the page reads
them in-process, as the API server does.

One test, in steps (the runs are the slow part): provision → delete within the budget → a dry
run that plans a delete → a run over the budget (withheld).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_bolna.provisioning.seed import (
    create_customers_table,
    generate_customers,
    insert_customers,
)
from tests.ui.conftest import READ_PLAN, Auth, sqlite_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARD = "https://dashboard.bolna-ui-runs.example"
#: the repository's DAGs (dags/), run with ``airflow dags test``
BULK, SIGNUP = "bolna_bulk_provision", "bolna_customer_signup"


@pytest.fixture
def customers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """20 customers (2 invalid: 6 and 16) in SQLite as ``bolna_customers`` — the repo DAG's connection."""
    path = tmp_path / "customers.db"
    conn = sqlite3.connect(path)
    create_customers_table(conn)
    insert_customers(conn, generate_customers(20, invalid=2, seed=7), placeholder="?")
    conn.close()
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_CUSTOMERS", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


@pytest.fixture
def ui(auth: Auth, customers: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from airflow_provider_bolna.ui.app import create_app
    from airflow_provider_bolna.ui.config import UIDeployment

    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_DEFAULT",
        sandbox.airflow_conn_json(requests_per_minute=0, dashboard_url=DASHBOARD),
    )
    deployment = UIDeployment(
        dag_id=BULK, signup_dag_id=SIGNUP, scope="bolna", state_conn_id="bolna_customers"
    )
    auth.grants.grant("ops", BULK, READ_PLAN)
    auth.grants.grant("ops", SIGNUP, READ_PLAN)
    with TestClient(create_app(lambda: [deployment]), headers=auth.headers("ops")) as http:
        yield http


def _sql(path: Path, sql: str) -> list[tuple[Any, ...]]:
    return sqlite_rows(path, sql)


def _bulk(airflow_cli: Any, settings: dict[str, Any], **conf: Any) -> Any:
    return airflow_cli.dags_test(
        BULK,
        conf={"batch_size": 10, **conf},
        check=False,
        env={"AIRFLOW_VAR_BOLNA_PROVISIONING": json.dumps(settings)},
    )


def _latest_run_id() -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return str(
            session.query(DagRun.run_id).filter(DagRun.dag_id == BULK).order_by(DagRun.id.desc()).first()[0]
        )


def _deletions(ui: Any) -> dict[str, str]:
    page = ui.get("/deployments/bolna/deletions")
    assert page.status_code == 200, page.text
    rows = re.findall(r'<tr data-testid="deletion-(\d+)">(.*?)</tr>', page.text, re.DOTALL)
    return {key: re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip() for key, html in rows}


def test_runs_failures_and_the_plans_deletions(ui: Any, customers: Path, airflow_cli: Any) -> None:
    settings = {"deprovision": True, "max_delete_fraction": 0.5}

    # 1. first run: 18 created, 2 invalid rows failed
    assert _bulk(airflow_cli, settings).returncode == 0
    first_run = _latest_run_id()
    page = ui.get("/deployments/bolna")
    assert page.status_code == 200
    total = {
        s: int(n) for s, n in re.findall(r'data-testid="total-(\w+)">\s*<div class="n">(\d+)', page.text)
    }
    recorded = dict(
        _sql(
            customers,
            "SELECT status, COUNT(*) FROM bolna_provisioning_state WHERE scope = 'bolna' GROUP BY status",
        )
    )
    assert (
        total["provisioned"] == recorded["provisioned"] == 18 and total["failed"] == recorded["failed"] == 2
    )
    run_href = f"/dags/{BULK}/runs/{quote(first_run, safe='')}"
    assert re.search(rf'data-testid="last-run-{BULK}">.*?href="{re.escape(run_href)}"', page.text, re.DOTALL)
    failed = dict(
        _sql(
            customers,
            "SELECT customer_id, error_fields FROM bolna_provisioning_state WHERE status = 'failed'",
        )
    )
    assert sorted(failed) == ["16", "6"]
    for key, fields in failed.items():
        row = re.search(rf'<tr data-testid="failed-{key}">(.*?)</tr>', page.text, re.DOTALL)
        assert row, page.text
        for field in fields.split(","):
            assert f'<span class="field">{field}</span>' in row.group(1)
        assert f'href="{run_href}"' in row.group(1)  # the run that recorded the failure, linked
    customer = ui.get("/deployments/bolna/customer", params={"id": "3"})
    trunk_id = _sql(customers, "SELECT trunk_id FROM bolna_provisioning_state WHERE customer_id = '3'")[0][0]
    assert f'href="{DASHBOARD}/sip-trunks/{trunk_id}"' in customer.text
    assert f'href="{run_href}"' in customer.text and "created" in customer.text

    # 2. two customers churn, one leaves the query: the run deletes all three (within the budget)
    _sql(customers, "UPDATE customers SET status = 'churned' WHERE customer_id IN (3, 4)")
    _sql(customers, "DELETE FROM customers WHERE customer_id = 5")
    assert _bulk(airflow_cli, settings).returncode == 0
    rows = _deletions(ui)
    assert set(rows) == {"3", "4", "5"}
    assert rows["3"].startswith("3 churned deprovisioned done") and rows["5"].startswith(
        "5 gone from the query deprovisioned done"
    )

    # 3. a dry run plans the next delete: shown as pending, with the next run's limit
    _sql(customers, "UPDATE customers SET status = 'churned' WHERE customer_id = 10")
    assert _bulk(airflow_cli, settings, dry_run=True).returncode == 0
    dry_run = _latest_run_id()
    rows = _deletions(ui)
    assert set(rows) == {"10"} and "provisioned pending" in rows["10"]
    page = ui.get("/deployments/bolna/deletions")
    assert f'/runs/{quote(dry_run, safe="")}"' in page.text
    live = _sql(
        customers,
        "SELECT COUNT(*) FROM bolna_provisioning_state WHERE status <> 'deprovisioned' "
        "AND trunk_id IS NOT NULL",
    )[0][0]
    assert re.search(
        rf"With {live} trunk\(s\) recorded now, the next run may delete at most\s*<strong>{live // 2}"
        r"</strong>",
        page.text,
    ), page.text

    # 4. over the budget: withheld, nothing deleted, the counts and the way out are shown
    _sql(customers, "UPDATE customers SET status = 'churned' WHERE customer_id IN (11, 12)")
    withheld = _bulk(airflow_cli, {**settings, "max_deletes": 1})
    assert withheld.returncode != 0  # summarize fails the run on withheld deletes
    page = ui.get("/deployments/bolna/deletions")
    assert 'data-testid="withheld"' in page.text and "confirm_deletes=3" in page.text
    assert "planned\n<strong>3</strong>" in page.text or re.search(r"planned\s*<strong>3</strong>", page.text)
    overview = ui.get("/deployments/bolna")
    assert "Withheld" in overview.text
    assert (
        _sql(customers, "SELECT status FROM bolna_provisioning_state WHERE customer_id IN ('10', '11', '12')")
        == [("provisioned",)] * 3
    )
