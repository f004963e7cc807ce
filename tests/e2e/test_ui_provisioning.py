"""The provisioning page (the provider's plugin) in the real API server and headless Chromium.

Runs after the suite's runs (and after ``test_ui.py``): customer :data:`FAILING` is given a gateway
port out of range in the customer database and a second bulk run records its failure (a run's
conf cannot make a row fail; the customer data can). Then: the nav entry, the totals against the
state table, the failed customer with its field, the search, the "Bolna trunk" link, and an
unauthenticated request refused. Screenshots: ``bolna-*.png``.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import ui
from tests.e2e.conftest import CUSTOMER_COUNT, DASHBOARD_URL, RUN_TIMEOUT
from tests.e2e.stack import AirflowREST, AirflowStack, RunResult, watch_runs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

#: The customer whose row is broken before the second bulk run.
FAILING = 7
#: A customer the search looks up.
SEARCHED = 5
PAGE = "/bolna/deployments/bolna"


def _state(customers_db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(customers_db)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


@pytest.fixture(scope="module")
def second_bulk_run(
    finished_runs: dict[str, RunResult], rest: AirflowREST, airflow: AirflowStack, customers_db: Path
) -> RunResult:
    """Break customer :data:`FAILING`'s gateway, run the bulk DAG again (failures do not fail it)."""
    _state(
        customers_db,
        "UPDATE customers SET gateways = 'sip.example.net:70000' WHERE customer_id = ?",
        (FAILING,),
    )
    run_id = rest.trigger("bolna_bulk_provision", conf={"batch_size": 10, "concurrency": 4})["dag_run_id"]
    result = watch_runs(rest, {"bolna_bulk_provision": run_id}, timeout=RUN_TIMEOUT, stack=airflow)
    run = result["bolna_bulk_provision"]
    assert run.run["state"] == "success", run.summary()
    return run


def test_unauthenticated_requests_are_refused(page: Any, airflow: AirflowStack, screenshots: Path) -> None:
    for path in ("/bolna/", PAGE, f"{PAGE}/customer?id={SEARCHED}", f"{PAGE}/deletions"):
        response = httpx.get(f"{airflow.url}{path}", timeout=30, trust_env=False)
        assert response.status_code == 401, (path, response.status_code)
        assert "cust-" not in response.text
        forged = httpx.get(
            f"{airflow.url}{path}", headers={"Authorization": "Bearer not.a.jwt"}, timeout=30, trust_env=False
        )
        assert forged.status_code == 403, (path, forged.status_code)
    answer = page.goto(PAGE)  # a signed-out browser
    assert answer is not None and answer.status == 401
    page.get_by_test_id("sign-in").wait_for()
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bolna-page-unauthenticated.png"))


def test_the_nav_entry_opens_the_page(
    admin_page: Any, finished_runs: dict[str, RunResult], screenshots: Path
) -> None:
    page = admin_page
    page.goto("/")
    page.get_by_role("button", name="Browse").click()
    entry = page.locator('a[aria-label="Bolna provisioning"]')
    entry.wait_for()
    assert entry.get_attribute("href") == "/bolna/"
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bolna-nav-entry.png"))
    with page.context.expect_page() as opened:
        entry.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.endswith("/bolna/")
    tab.get_by_test_id("deployment-bolna").wait_for()
    tab.screenshot(path=str(screenshots / "bolna-index.png"), full_page=True)
    tab.close()


def test_totals_match_the_state_table_and_the_failure_shows_its_field(
    admin_page: Any, second_bulk_run: RunResult, customers_db: Path, screenshots: Path
) -> None:
    page = admin_page
    answer = page.goto(PAGE)
    assert answer is not None and answer.status == 200
    expected = dict(
        _state(
            customers_db,
            "SELECT status, COUNT(*) FROM bolna_provisioning_state WHERE scope = 'bolna' GROUP BY status",
        )
    )
    shown = {
        s: int(page.get_by_test_id(f"total-{s}").locator(".n").inner_text())
        for s in ("provisioned", "failed", "pending", "deprovisioned")
    }
    assert shown == {s: expected.get(s, 0) for s in shown}
    assert shown["failed"] == 1 and shown["provisioned"] >= CUSTOMER_COUNT - 2  # bulk: all but 7 (and 24)
    row = page.get_by_test_id(f"failed-{FAILING}")
    assert row.locator(".field").all_inner_texts() == ["gateways.0.port"]
    assert f"customer {FAILING}: gateways.0.port" in row.inner_text()
    run_link = row.get_by_test_id("run-link")
    assert run_link.get_attribute("href") == ui.run_path("bolna_bulk_provision", second_bulk_run.run_id)
    last = page.get_by_test_id("last-run-bolna_bulk_provision").get_by_test_id("run-link")
    assert last.inner_text() == second_bulk_run.run_id
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bolna-deployment.png"), full_page=True)

    row.get_by_role("link", name=str(FAILING), exact=True).click()
    page.get_by_test_id("error-fields").wait_for()
    assert page.get_by_test_id("error-fields").inner_text() == "gateways.0.port"
    assert "less than or equal to 65535" in page.get_by_test_id("last-error").inner_text()
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bolna-customer-failed.png"), full_page=True)


def test_search_finds_a_customer_and_links_its_trunk_on_the_dashboard(
    admin_page: Any, second_bulk_run: RunResult, customers_db: Path, e2e_sandbox: Any, screenshots: Path
) -> None:
    page = admin_page
    page.goto(PAGE)
    page.get_by_label("Customer id").fill(str(SEARCHED))
    page.get_by_role("button", name="Find").click()
    page.get_by_test_id("customer-id").wait_for()
    assert page.get_by_test_id("customer-id").inner_text() == str(SEARCHED)
    ((trunk_id, run_id, action),) = _state(
        customers_db,
        "SELECT trunk_id, run_id, action FROM bolna_provisioning_state "
        "WHERE scope = 'bolna' AND customer_id = ?",
        (str(SEARCHED),),
    )
    with e2e_sandbox.client() as client:
        trunk = client.get(f"/sip-trunks/trunks/{trunk_id}").json()
    assert trunk["name"] == f"cust-{SEARCHED}"
    link = page.get_by_test_id("trunk-link")
    assert link.inner_text() == "Bolna trunk"
    assert link.get_attribute("href") == f"{DASHBOARD_URL}/sip-trunks/{trunk_id}"
    assert link.get_attribute("target") == "_blank"
    assert page.get_by_test_id("last-action").inner_text() == action
    assert page.get_by_test_id("last-run").get_by_test_id("run-link").get_attribute("href") == ui.run_path(
        "bolna_bulk_provision", run_id
    )
    ui.settle(page)
    ui.annotate(page, f"'Bolna trunk' -> {link.get_attribute('href')}")
    page.screenshot(path=str(screenshots / "bolna-customer.png"), full_page=True)


def test_pending_deletions_say_what_the_last_plan_would_delete(
    admin_page: Any, second_bulk_run: RunResult, screenshots: Path
) -> None:
    page = admin_page
    page.goto(f"{PAGE}/deletions")
    # the repository's deployment does not deprovision: its plans delete nothing
    page.get_by_test_id("deletes-off").wait_for()
    assert re.search(re.escape(second_bulk_run.run_id), page.get_by_test_id("deletes-off").inner_text())
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bolna-deletions.png"), full_page=True)
