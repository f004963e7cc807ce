"""Fixtures of the end-to-end suite: a real Airflow 3.3 on loopback, the Bolna sandbox, a browser.

Package-scoped — started once for ``tests/e2e`` and torn down (every process group killed)
as soon as its last test is done, so a full ``pytest`` run does not carry Airflow along:

* ``e2e_output``   — ``tests/e2e/output/`` (or ``$BOLNA_E2E_OUTPUT``), emptied at start:
  ``logs/`` (one file per service, the sandbox, ``db migrate``), ``screenshots/``, the SQLite
  files, ``airflow_home/`` (task logs under ``airflow_home/logs``);
* ``e2e_sandbox``  — :class:`~airflow_provider_bolna.sandbox.testing.SandboxServer`;
* ``customers_db`` — a SQLite customers DB seeded by ``scripts/seed_customers.py``;
* ``airflow``      — :class:`~tests.e2e.stack.AirflowStack`: api-server, scheduler
  (LocalExecutor), dag-processor, triggerer; PostgreSQL metadata DB ``airflow_e2e_<pid>``
  created on ``$BOLNA_TEST_POSTGRES_URI``'s server and dropped at the end;
* ``rest``         — :class:`~tests.e2e.stack.AirflowREST` logged in with a JWT;
* ``browser``      — headless Debian Chromium driven by Playwright; per test, ``page`` (signed
  out) or ``admin_page`` (signed in once through the login form, cookies reused);
* ``triggered_runs`` / ``finished_runs`` — the four DAG runs of :data:`RUNS`, triggered through
  the REST API as soon as Airflow is up (while the other tests go on), then awaited.

Every test module here is marked ``e2e`` (``make e2e`` = ``pytest -m e2e``) with a 600 s timeout
(the first test also pays for starting everything).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import harness
from tests.e2e.harness import DASHBOARD_URL, E2E_DIR, REPO  # noqa: F401 - re-exported for tests
from tests.e2e.stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    AirflowREST,
    AirflowStack,
    PostgresDatabase,
    RunResult,
    watch_runs,
)

CHROMIUM = os.environ.get("BOLNA_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Customers seeded in the SQLite customers DB.
CUSTOMER_COUNT = int(os.environ.get("BOLNA_E2E_CUSTOMERS", "24"))
#: Wall-clock time of the expensive steps, printed at the end of the session.
TIMINGS: dict[str, float] = {}


def _require(reason: str) -> None:
    """Skip — or fail when ``BOLNA_REQUIRE_E2E=1`` (CI's e2e job must not skip silently)."""
    if os.environ.get("BOLNA_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason} (BOLNA_REQUIRE_E2E=1)")
    pytest.skip(reason)


def _postgres_server() -> str:
    """``$BOLNA_TEST_POSTGRES_URI``, or skip (fail with ``BOLNA_REQUIRE_POSTGRES=1``)."""
    server = os.environ.get("BOLNA_TEST_POSTGRES_URI")
    if not server:
        if os.environ.get("BOLNA_REQUIRE_POSTGRES") == "1":
            pytest.fail("BOLNA_TEST_POSTGRES_URI is not set but BOLNA_REQUIRE_POSTGRES=1")
        _require("no PostgreSQL: `eval $(make -s postgres)` exports BOLNA_TEST_POSTGRES_URI")
    return str(server)


# ---------------------------------------------------------------------- folders
@pytest.fixture(scope="package")
def e2e_output() -> Path:
    """The output folder of this run (emptied first): logs, screenshots, data files.

    Not touched when the suite cannot run (no PostgreSQL): the last run's output stays.
    """
    _postgres_server()
    out = Path(os.environ.get("BOLNA_E2E_OUTPUT", E2E_DIR / "output")).resolve()
    if out.exists():
        shutil.rmtree(out)
    for sub in ("logs", "screenshots"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="package")
def screenshots(e2e_output: Path) -> Path:
    return e2e_output / "screenshots"


# ---------------------------------------------------------------------- external pieces
@pytest.fixture(scope="package")
def e2e_postgres() -> Iterator[PostgresDatabase]:
    """An empty PostgreSQL database for Airflow's metadata, dropped at the end."""
    server = _postgres_server()
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _require("psycopg2 missing (pip install '.[test]')")
    database = PostgresDatabase(server, f"airflow_e2e_{os.getpid()}")
    try:
        database.create()
    except Exception as error:  # noqa: BLE001 - anything here means "no usable server"
        _require(f"cannot create a database on {server}: {error}")
    yield database
    try:
        database.drop()
    except Exception as error:  # noqa: BLE001 - teardown must not hide the test result
        print(f"e2e: could not drop {database.name}: {error}", file=sys.stderr)


@pytest.fixture(scope="package")
def e2e_sandbox(e2e_output: Path) -> Iterator[Any]:
    """The Bolna sandbox on a free loopback port (SQLite file + log in the output folder)."""
    try:
        server = harness.new_sandbox(e2e_output)
    except ImportError as error:
        _require(f"sandbox not available: {error}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def customers_db(e2e_output: Path) -> Path:
    """SQLite customers DB seeded with ``scripts/seed_customers.py --db PATH --count N``."""
    return harness.seed_customers(
        e2e_output / "customers.db", CUSTOMER_COUNT, e2e_output / "logs" / "seed-customers.log"
    )


# ---------------------------------------------------------------------- Airflow
@pytest.fixture(scope="package")
def airflow(
    e2e_output: Path, e2e_postgres: PostgresDatabase, e2e_sandbox: Any, customers_db: Path
) -> Iterator[AirflowStack]:
    """Airflow's four services on loopback; stopped (process groups killed) at the end."""
    stack = harness.new_stack(e2e_output, e2e_postgres.uri, harness.airflow_env(e2e_sandbox, customers_db))
    started = time.monotonic()
    try:
        stack.migrate()
        migrated = time.monotonic()
        stack.start()
        TIMINGS["airflow db migrate"] = migrated - started
        TIMINGS["services healthy"] = time.monotonic() - migrated
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def rest(airflow: AirflowStack) -> Iterator[AirflowREST]:
    """REST client of the stack (JWT from ``POST /auth/token``); the ``bolna_api`` pool exists."""
    client = AirflowREST(airflow.url, ADMIN_USER, ADMIN_PASSWORD)
    harness.ensure_pool(client)
    client.set_variable(SETTINGS_VARIABLE, json.dumps(BULK_SETTINGS))
    yield client
    client.close()


# ---------------------------------------------------------------------- DAG runs
#: The sign-up customer: the last seeded one, left out of the bulk run's query so the two DAGs,
#: running at the same time, never work on the same customer.
SIGNUP_CUSTOMER = CUSTOMER_COUNT
#: Params of the bulk run (what a trigger may set): small batches, so there are several mapped
#: tasks with batch progress.
BULK_PARAMS: dict[str, Any] = {
    "batch_size": 10,
    "concurrency": 4,
    "fail_on_error": True,
}
#: Deployment settings an admin puts in the ``bolna_provisioning`` Variable (not the run's conf).
#: Both DAGs read it; the sign-up customer is in the bulk run's range too, on purpose: the two
#: runs overlap on it, and one writer per customer (leases) leaves exactly one trunk.
BULK_SETTINGS: dict[str, Any] = {"parallel_batches": 2}
SETTINGS_VARIABLE = "bolna_provisioning"


#: Every run the suite triggers (all at once, right after the stack is up): dag_id -> conf.
RUNS: dict[str, dict[str, Any]] = {
    "bolna_e2e_smoke": {"from": "e2e"},
    "bolna_customer_signup": {"customer_id": SIGNUP_CUSTOMER},
    "bolna_bulk_provision": BULK_PARAMS,
    "example_bolna_sip_trunk": {"trunk_name": "example-e2e-trunk"},
}
RUN_TIMEOUT = float(os.environ.get("BOLNA_E2E_RUN_TIMEOUT", "300"))


@pytest.fixture(scope="package")
def triggered_runs(rest: AirflowREST) -> dict[str, str]:
    """Unpause and trigger every DAG of :data:`RUNS` through the REST API: ``{dag_id: run_id}``."""
    runs: dict[str, str] = {}
    for dag_id in RUNS:
        rest.wait_for_dag(dag_id, timeout=120)
    started = time.monotonic()
    for dag_id, conf in RUNS.items():
        rest.unpause(dag_id)
        runs[dag_id] = rest.trigger(dag_id, conf=conf)["dag_run_id"]
    TIMINGS["_runs_triggered_at"] = started
    return runs


@pytest.fixture(scope="package")
def finished_runs(
    rest: AirflowREST, airflow: AirflowStack, triggered_runs: dict[str, str]
) -> dict[str, RunResult]:
    """Every triggered run, finished (polled through the REST API, :data:`RUN_TIMEOUT` at most)."""
    results = watch_runs(rest, triggered_runs, timeout=RUN_TIMEOUT, stack=airflow)
    TIMINGS["all runs finished (after trigger)"] = time.monotonic() - TIMINGS.pop("_runs_triggered_at")
    for dag_id, result in results.items():
        start, end = result.run.get("start_date"), result.run.get("end_date")
        if start and end:
            TIMINGS[f"run {dag_id} ({result.run['state']})"] = (
                datetime.fromisoformat(end) - datetime.fromisoformat(start)
            ).total_seconds()
    return results


@pytest.fixture(scope="package", autouse=True)
def _kick_off_runs(request: pytest.FixtureRequest) -> None:
    """Trigger the runs as soon as the stack is up when any selected test will need them,
    so they run while the other tests (REST, connection form...) go on."""
    if any("finished_runs" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("triggered_runs")


# ---------------------------------------------------------------------- browser
@pytest.fixture(scope="package")
def browser(e2e_output: Path) -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (``bash scripts/e2e-setup.sh`` installs both)."""
    if not Path(CHROMIUM).exists():
        _require(f"{CHROMIUM} missing: run `bash scripts/e2e-setup.sh`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("playwright missing: run `bash scripts/e2e-setup.sh`")
    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh temporary profile (its own --user-data-dir)
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _new_page(browser: Any, airflow: AirflowStack, storage_state: str | None = None) -> Any:
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, base_url=airflow.url, storage_state=storage_state
    )
    context.set_default_timeout(30_000)
    return context.new_page()


def _close_page(page: Any, request: pytest.FixtureRequest, screenshots: Path) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(screenshots / f"FAILED-{request.node.name}.png"), full_page=True)
    page.context.close()


@pytest.fixture(scope="package")
def auth_state(browser: Any, airflow: AirflowStack, e2e_output: Path) -> str:
    """Sign in once through the login form; later pages reuse the session's cookies."""
    from tests.e2e import ui

    page = _new_page(browser, airflow)
    try:
        ui.login(page)
        path = e2e_output / "browser-auth-state.json"
        page.context.storage_state(path=str(path))
        return str(path)
    finally:
        page.context.close()


@pytest.fixture
def page(
    browser: Any, airflow: AirflowStack, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[Any]:
    """A fresh, signed-out browser page (1440x900) on the Airflow UI; screenshot saved on failure."""
    page = _new_page(browser, airflow)
    yield page
    _close_page(page, request, screenshots)


@pytest.fixture
def admin_page(
    browser: Any, airflow: AirflowStack, auth_state: str, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[Any]:
    """A fresh browser page already signed in as the admin; screenshot saved on failure."""
    page = _new_page(browser, airflow, storage_state=auth_state)
    yield page
    _close_page(page, request, screenshots)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Expose each phase's report as ``item.rep_<phase>`` (the ``page`` fixture reads it)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the e2e timings and where the logs and screenshots are."""
    if not TIMINGS:
        return
    terminalreporter.section("bolna e2e")
    for name, seconds in TIMINGS.items():
        if name.startswith("_"):
            continue
        terminalreporter.write_line(f"{name:<40} {seconds:6.1f} s")
    out = Path(os.environ.get("BOLNA_E2E_OUTPUT", E2E_DIR / "output")).resolve()
    terminalreporter.write_line(f"service logs: {out / 'logs'}   screenshots: {out / 'screenshots'}")
