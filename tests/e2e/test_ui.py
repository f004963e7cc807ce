"""The Airflow UI in headless Chromium: login, the bulk DAG's grid, a task instance's extra link
and log. Screenshots go to ``tests/e2e/output/screenshots/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import ui
from tests.e2e.conftest import DASHBOARD_URL, SIGNUP_CUSTOMER
from tests.e2e.stack import AirflowREST, RunResult

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_login(page: Any, screenshots: Path) -> None:
    ui.login(page, screenshot=screenshots / "login.png")
    page.get_by_test_id("nav-dags-link").click()
    page.get_by_role("link", name="bolna_bulk_provision").wait_for()
    ui.settle(page)
    page.screenshot(path=str(screenshots / "dags-list.png"))


def test_wrong_password_is_refused(page: Any) -> None:
    page.goto("/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong-password")
    with page.expect_response(lambda r: "/auth/token" in r.url and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    page.wait_for_timeout(500)
    assert "/auth/login" in page.url


@pytest.fixture
def logged_in(admin_page: Any, finished_runs: dict[str, RunResult]) -> Any:
    """A signed-in page, once every DAG run has finished."""
    return admin_page


def test_bulk_grid_is_green(logged_in: Any, finished_runs: dict[str, RunResult], screenshots: Path) -> None:
    page, result = logged_in, finished_runs["bolna_bulk_provision"]
    # the run's own page and badge: the DAG's "Latest Run" may be a later run (the trust-boundary
    # test's refused trigger fails on purpose)
    page.goto(ui.run_path(result.dag_id, result.run_id))
    badges = page.get_by_test_id("state-badge")  # the run's, and each task instance's
    badges.filter(has_text="Success").first.wait_for()
    ui.settle(page, 1000)
    assert badges.count() >= 2 and badges.filter(has_text="Success").count() == badges.count(), [
        badges.nth(i).inner_text() for i in range(badges.count())
    ]
    ui.grid_cell(page, result.run_id, "summarize").wait_for()
    ui.settle(page, 1000)
    page.screenshot(path=str(screenshots / "bulk-grid.png"))
    states = {
        task: ui.grid_task_state(page, result.run_id, task)
        for task in ("plan_batches", "provision_batch", "deprovision_gone", "summarize")
    }
    assert states == dict.fromkeys(states, "Success"), states


def test_bulk_task_log_shows_batch_progress(
    logged_in: Any, finished_runs: dict[str, RunResult], screenshots: Path
) -> None:
    page, result = logged_in, finished_runs["bolna_bulk_provision"]
    page.goto(ui.ti_path(result.dag_id, result.run_id, "provision_batch", map_index=0))
    done = page.get_by_text(re.compile(r"Batch \{'index': 0.*\} done in [\d.]+s: created 10"))
    done.wait_for()
    # new customers: created without a look-up of the account (0 looked up)
    assert page.get_by_text(re.compile(r"10 customers, 0 looked up; plan: create 10")).is_visible()
    page.get_by_text("Success", exact=True).first.wait_for()
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bulk-task-log.png"))
    # the mapped task's list shows every batch, named by its key range (map_index_template)
    page.goto(ui.ti_path(result.dag_id, result.run_id, "provision_batch") + "/mapped")
    page.get_by_role("link", name="1..10").first.wait_for()
    ui.settle(page)
    page.screenshot(path=str(screenshots / "bulk-mapped-batches.png"))


def _link_task(result: RunResult, rest: AirflowREST) -> tuple[str, int, str]:
    for ti in result.task_instances:
        link = rest.extra_links(result.dag_id, result.run_id, ti["task_id"], ti["map_index"]).get(
            "Bolna trunk"
        )
        if link:
            return ti["task_id"], ti["map_index"], link
    pytest.fail(f"no task of {result.dag_id} has a 'Bolna trunk' link")


def test_signup_task_instance_extra_link(
    logged_in: Any,
    finished_runs: dict[str, RunResult],
    rest: AirflowREST,
    e2e_sandbox: Any,
    screenshots: Path,
) -> None:
    page, result = logged_in, finished_runs["bolna_customer_signup"]
    task_id, map_index, link = _link_task(result, rest)
    with e2e_sandbox.client() as client:
        trunk = next(
            t for t in client.get("/sip-trunks/trunks").json() if t["name"] == f"cust-{SIGNUP_CUSTOMER}"
        )
    expected = f"{DASHBOARD_URL}/sip-trunks/{trunk['id']}"
    assert link == expected
    page.goto(ui.ti_path(result.dag_id, result.run_id, task_id, map_index, tab="details"))
    button = page.get_by_role("link", name="Bolna trunk")
    button.wait_for()
    assert button.get_attribute("href") == expected
    assert button.get_attribute("target") == "_blank"  # external link: new tab
    page.get_by_text("Extra Links").wait_for()
    ui.settle(page)
    ui.annotate(page, f"{task_id}[{map_index}] link 'Bolna trunk' -> {button.get_attribute('href')}")
    page.screenshot(path=str(screenshots / "signup-task-extra-link.png"))


def test_example_create_trunk_extra_link(
    logged_in: Any, finished_runs: dict[str, RunResult], screenshots: Path
) -> None:
    page, result = logged_in, finished_runs["example_bolna_sip_trunk"]
    page.goto(ui.ti_path(result.dag_id, result.run_id, "create_trunk", tab="details"))
    button = page.get_by_role("link", name="Bolna trunk")
    button.wait_for()
    assert re.fullmatch(
        rf"{re.escape(DASHBOARD_URL)}/sip-trunks/[0-9A-Z]+", button.get_attribute("href") or ""
    )
    ui.settle(page)
    ui.annotate(page, f"create_trunk link 'Bolna trunk' -> {button.get_attribute('href')}")
    page.screenshot(path=str(screenshots / "example-create-trunk-extra-link.png"))


def test_signup_sensor_log_shows_the_triggerer_at_work(
    logged_in: Any, finished_runs: dict[str, RunResult], screenshots: Path
) -> None:
    """The deferred sensor's log in the UI: the worker defers, the trigger runs in the triggerer
    (its own log lines, merged in by the API server), then the worker resumes."""
    page, result = logged_in, finished_runs["bolna_customer_signup"]
    page.goto(ui.ti_path(result.dag_id, result.run_id, "wait_until_ready", map_index=0))
    page.get_by_text(re.compile(r"Deferring; deadline in \d+s")).first.wait_for()
    page.get_by_text(
        re.compile(r"trigger bolna_customer_signup/.*/wait_until_ready/0/1 \(ID \d+\) starting")
    ).wait_for()
    page.get_by_text("Trigger fired event").first.wait_for()
    ui.settle(page)
    page.screenshot(path=str(screenshots / "signup-sensor-deferred-log.png"))
