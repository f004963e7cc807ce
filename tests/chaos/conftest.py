"""Fixtures and the end-of-session report of the chaos suite (``pytest -m chaos tests/chaos``).

* ``scenario`` — this test's record in the :data:`~tests.chaos.ledger.LEDGER` (faults,
  customers provisioned / refused / not attempted, lost, duplicates, secret hits, generated and
  fixed cases; what a test does not set stays unmeasured), outcome filled in here;
* ``scanner`` — a :class:`~tests.chaos.chaoslib.SecretScanner` that already looks for every SIP
  password of the suite; its hits are added to the scenario;
* ``start_sandbox`` — ``start_sandbox(api_key, **knobs)``: a private sandbox (stopped after
  the test);
* ``customers`` — an empty SQLite customer DB registered as connection ``bolna_customers``.

At the end of the session the table of figures is printed, and — when every chaos module ran
(no ``-k`` / file selection) — written to ``tests/chaos/RESULTS.md``. ``BOLNA_CHAOS_RESULTS``
overrides the path (``-`` disables writing).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.chaoslib import Customers, SecretScanner
from tests.chaos.ledger import LEDGER, Scenario

HERE = Path(__file__).resolve().parent
_SESSION = {"chaos_items": 0, "deselected": 0, "files": set(), "started": time.monotonic()}


# ---------------------------------------------------------------------- fixtures


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"chaos_rep_{report.when}", report)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """This test's figures (name = the test's name; tests may rename it)."""
    record = LEDGER.open(request.node.name.removeprefix("test_"), request.node.nodeid)
    yield record
    record.seconds = time.monotonic() - record.started
    rep = getattr(request.node, "chaos_rep_call", None)
    if rep is None:
        record.outcome = "error"
    elif rep.skipped:
        record.outcome = "xfail" if hasattr(rep, "wasxfail") else "skipped"
    elif rep.failed:
        record.outcome = "failed"
    else:
        record.outcome = "xpass" if hasattr(rep, "wasxfail") else "passed"


@pytest.fixture
def scanner(scenario: Scenario) -> Iterator[SecretScanner]:
    """Looks for every SIP password of the suite; add API keys with ``scanner.add``."""
    scan = SecretScanner()
    scan.add_password_markers()
    yield scan
    scenario.secret_hits += len(scan.hits)
    scenario.secret_places += scan.places
    scenario.secret_bytes += scan.bytes


@pytest.fixture
def start_sandbox(bolna_sandbox_factory: Callable[..., Any]) -> Callable[..., Any]:
    """``start_sandbox(api_key, **knobs)`` → a started private sandbox (stopped after the test)."""

    def start(api_key: str, **knobs: Any) -> Any:
        # no unique names (or numbers) by default: "duplicate trunks" measures the client, not
        # the API's rule (a scenario may turn the rule back on by passing the knob)
        return bolna_sandbox_factory(
            api_key=api_key, **{"unique_names": False, "unique_numbers": False, **knobs}
        )

    return start


@pytest.fixture
def customers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Customers:
    """An empty SQLite customer DB as connection ``bolna_customers``."""
    db = Customers(tmp_path / "customers.db")
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_CUSTOMERS", db.airflow_conn())
    return db


# ---------------------------------------------------------------------- the session report


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        path = Path(str(item.fspath)).resolve()
        if path.parent == HERE:
            _SESSION["chaos_items"] += 1
            _SESSION["files"].add(path.name)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _SESSION["deselected"] += sum(1 for i in items if Path(str(i.fspath)).resolve().parent == HERE)


def _full_run() -> bool:
    expected = {p.name for p in HERE.glob("test_*.py")}
    return bool(expected) and _SESSION["files"] == expected and _SESSION["deselected"] == 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Print the figures of the run; write ``RESULTS.md`` after a full run of the suite."""
    if not LEDGER.scenarios:
        return
    wall = time.monotonic() - _SESSION["started"]
    table = LEDGER.render_text()
    target = os.environ.get("BOLNA_CHAOS_RESULTS")
    path = (
        None if target == "-" else Path(target) if target else (HERE / "RESULTS.md" if _full_run() else None)
    )
    if path is not None:
        command = "pytest " + " ".join(session.config.invocation_params.args)
        path.write_text(LEDGER.render_markdown(command, wall, int(exitstatus), complete=_full_run()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    where = f"written to {path}" if path else "RESULTS.md not written: not a full run of tests/chaos"
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "Bolna chaos suite: figures of this run")
        reporter.write_line(table)
        reporter.write_line(f"({where}; {wall:.0f} s)")
    else:  # pragma: no cover
        print(table)
