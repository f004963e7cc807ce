"""``dags/example_bolna_sip_trunk.py``: parses, runs with ``airflow dags test`` against the
sandbox, is idempotent across runs, and leaks neither the API key nor a SIP password into
XComs, rendered templates or task logs.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.version_compat import AIRFLOW_V_3_0_PLUS
from tests.airflow_cli import scannable

DAG_ID = "example_bolna_sip_trunk"
API_KEY = "sk-LEAKCHECK-api-7d41c9e2"
CONN_PASSWORD = "C0nnRef-S1P-Zq81xW"
PLAIN_PASSWORD = "Pl41nParam-S1P-Mv36t"


# ---------------------------------------------------------------------- helpers


def run_ids(airflow_home: Path) -> set[str]:
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        return {r[0] for r in db.execute("SELECT run_id FROM dag_run WHERE dag_id = ?", (DAG_ID,))}


def xcoms(airflow_home: Path, run_id: str) -> dict[tuple[str, int, str], Any]:
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = ? AND run_id = ?",
            (DAG_ID, run_id),
        )
        # JSON text on Airflow 3, JSON bytes (BLOB) on Airflow 2
        return {(t, m, k): json.loads(v) if isinstance(v, (str, bytes)) else v for t, m, k, v in rows}


def stored_text(airflow_home: Path, run_ids_: set[str]) -> dict[str, str]:
    """Everything Airflow stored for these runs that a user can read back: XComs, rendered
    templates, task log files."""
    out: dict[str, str] = {}
    marks = ",".join("?" * len(run_ids_))
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        for table, column in (("xcom", "value"), ("rendered_task_instance_fields", "rendered_fields")):
            rows = db.execute(
                f"SELECT task_id, map_index, {column} FROM {table} WHERE dag_id = ? AND run_id IN ({marks})",
                (DAG_ID, *run_ids_),
            ).fetchall()
            assert rows, f"no {table} rows for the runs"
            out[table] = "\n".join(
                f"{t}[{m}]: {v if isinstance(v, str) else bytes(v).decode(errors='replace')}"
                for t, m, v in rows
            )
    logs = airflow_home / "logs"
    if logs.exists():
        for path in logs.rglob("*"):
            if path.is_file():
                out[f"log:{path.relative_to(logs)}"] = path.read_text(errors="replace")
    return out


def assert_no_secrets(texts: dict[str, str], secrets: list[str]) -> None:
    leaks = [(where, secret) for where, text in texts.items() for secret in secrets if secret in text]
    assert not leaks, f"secrets found in: {[w for w, _ in leaks]}"


def password_matches(sandbox_db: str, trunk_id: str, password: str) -> bool:
    """The sandbox stores a salted SHA-256 of the password it received: check it."""
    with sqlite3.connect(f"file:{sandbox_db}?mode=ro", uri=True) as db:
        (stored,) = db.execute("SELECT auth_password_hash FROM trunks WHERE id = ?", (trunk_id,)).fetchone()
    _, salt, digest = stored.split("$")
    return hashlib.sha256(bytes.fromhex(salt) + password.encode()).hexdigest() == digest


@pytest.fixture
def leakcheck_sandbox(bolna_sandbox_factory: Any) -> Any:
    """A sandbox with a distinctive API key, new numbers invisible for 10 s (so the sensor defers,
    even when a loaded machine takes seconds between adding the numbers and the first poke)."""
    return bolna_sandbox_factory(api_key=API_KEY, number_visibility_delay_s=10)


def env_for(server: Any) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_BOLNA_DEFAULT": server.airflow_conn_json(),
        "AIRFLOW_CONN_BOLNA_EXAMPLE_CARRIER": json.dumps(
            {"conn_type": "generic", "login": "acme-user", "password": CONN_PASSWORD}
        ),
    }


# ---------------------------------------------------------------------- tests


def test_example_dag_parses(repo_root: Path) -> None:
    import inspect

    from airflow.models import DagBag

    kwargs = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
    bag = DagBag(dag_folder=str(repo_root / "dags" / "example_bolna_sip_trunk.py"), **kwargs)
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    assert [t.task_id for t in dag.topological_sort()] == [
        "create_trunk",
        "add_numbers",
        "wait_for_trunk",
        "update_trunk",
        "cleanup_gate",
        "delete_trunk",
    ]
    from airflow.providers.common.compat.sdk import MappedOperator

    assert isinstance(dag.get_task("add_numbers"), MappedOperator)  # Airflow 2's has no `is_mapped`
    assert dag.get_task("wait_for_trunk").deferrable is True
    assert dag.get_task("create_trunk").trunk["auth_password"] == {"param": "sip_password"}


@pytest.mark.slow
@pytest.mark.integration
def test_dags_test_twice_creates_once_and_leaks_nothing(
    airflow_cli: Any, airflow_home: Path, leakcheck_sandbox: Any
) -> None:
    server = leakcheck_sandbox
    name = f"example-{uuid.uuid4().hex[:8]}"
    before = run_ids(airflow_home)

    first = airflow_cli.dags_test(DAG_ID, conf={"trunk_name": name, "cleanup": False}, env=env_for(server))
    assert (
        "running trigger in line" in first.stdout
    )  # the sensor deferred (on 2.x "Pausing..." is in the task log only)
    w1 = server.admin.counters()["writes"]
    assert w1 == {
        "create_trunk": 1,
        "update_trunk": 1,
        "delete_trunk": 0,
        "add_number": 2,
        "remove_number": 0,
    }
    (run1,) = run_ids(airflow_home) - before
    trunk_id = xcoms(airflow_home, run1)[("create_trunk", -1, "trunk_id")]
    assert password_matches(server.db_path, trunk_id, CONN_PASSWORD), (
        "the connection's password reached Bolna"
    )

    second = airflow_cli.dags_test(
        DAG_ID, conf={"trunk_name": name}, env=env_for(server)
    )  # cleanup defaults to True
    counters = server.admin.counters()
    (run2,) = run_ids(airflow_home) - before - {run1}
    # the second run created nothing: same trunk adopted, numbers already there
    assert counters["writes"]["create_trunk"] == 1 and counters["writes"]["add_number"] == 2
    # ...patched again (idempotent PATCH) and deleted at the end (PATCH is_active=false + DELETE)
    assert counters["writes"]["update_trunk"] == 3 and counters["writes"]["delete_trunk"] == 1
    assert counters["trunks"] == 0
    assert counters["requests"]["POST /sip-trunks/trunks"] == {"201": 1}

    x1, x2 = xcoms(airflow_home, run1), xcoms(airflow_home, run2)
    assert x1[("create_trunk", -1, "return_value")]["action"] == "created"
    assert x2[("create_trunk", -1, "return_value")] == {
        "trunk_id": trunk_id,
        "name": name,
        "action": "adopted",
        "numbers_added": [],
        "patched_fields": [],
        "numbers": ["+918035000001", "+918035000002", "+918035000101", "+918035000102"],
    }
    # mapped over numbers: one task instance per number, created then unchanged
    assert [x1[("add_numbers", i, "return_value")]["numbers"][0]["action"] for i in (0, 1)] == [
        "created",
        "created",
    ]
    assert [x2[("add_numbers", i, "return_value")]["numbers"][0]["action"] for i in (0, 1)] == [
        "unchanged",
        "unchanged",
    ]
    assert x2[("delete_trunk", -1, "return_value")] == {"trunk_id": trunk_id, "deleted": True}
    assert ("delete_trunk", -1, "return_value") not in x1, "cleanup=false skipped the delete"
    # the extra link for create / sensor (deferred in run 1) / update: computed and stored by the
    # worker on Airflow 3; asked of the link by the webserver when the page is shown on Airflow 2
    url = f"https://platform.bolna.ai/sip-trunks/{trunk_id}"
    for task in ("create_trunk", "wait_for_trunk", "update_trunk"):
        if AIRFLOW_V_3_0_PLUS:
            assert x1[(task, -1, "_link_BolnaSIPTrunkLink")] == url
        else:
            from airflow.providers.common.compat.sdk import TaskInstanceKey

            from airflow_provider_bolna.links import BolnaSIPTrunkLink

            key = TaskInstanceKey(DAG_ID, task, run1, try_number=1, map_index=-1)
            assert BolnaSIPTrunkLink().get_link(None, ti_key=key) == url

    texts = stored_text(airflow_home, {run1, run2})
    texts["stdout:run1"], texts["stdout:run2"] = (
        scannable(first.stdout),
        scannable(second.stdout),
    )  # task logs
    assert f"SIP trunk {name} ({trunk_id}): created" in first.stdout, "the scan covers the task logs"
    # the rendered template holds the reference only (its value redacted by key name)
    assert '"auth_password": {"param": "***"}' in texts["rendered_task_instance_fields"]
    assert_no_secrets(texts, [API_KEY, CONN_PASSWORD])


@pytest.mark.slow
@pytest.mark.integration
def test_dags_test_with_plain_password_param_leaks_nothing(
    airflow_cli: Any, airflow_home: Path, leakcheck_sandbox: Any
) -> None:
    server = leakcheck_sandbox
    server.admin.config(number_visibility_delay_s=0)
    name = f"example-plain-{uuid.uuid4().hex[:8]}"
    before = run_ids(airflow_home)
    proc = airflow_cli.dags_test(
        DAG_ID,
        conf={"trunk_name": name, "sip_password": PLAIN_PASSWORD, "cleanup": False},
        env=env_for(server),
    )
    (run,) = run_ids(airflow_home) - before
    trunk_id = xcoms(airflow_home, run)[("create_trunk", -1, "trunk_id")]
    assert password_matches(server.db_path, trunk_id, PLAIN_PASSWORD)
    texts = stored_text(airflow_home, {run})
    texts["stdout"] = scannable(proc.stdout)
    assert_no_secrets(texts, [API_KEY, PLAIN_PASSWORD, CONN_PASSWORD])
