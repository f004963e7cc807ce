"""The built wheel, installed (not editable) into a fresh virtualenv, runs the README's
three-line DAG file with ``airflow dags test`` against the sandbox.

Proves what a new user gets: the README's install command works as written, the wheel holds
the factories, the sandbox and ``py.typed`` and not the tests, and the quick-start DAG file —
copied verbatim from the README — provisions customers.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.sandbox.seed import create_customers_table, generate_customers, insert_customers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _readme_block(marker: str) -> str:
    """The fenced code block right after ``<!-- marker ... -->`` in the README."""
    match = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\s*```\w*\n(.*?)```", README, re.DOTALL)
    assert match, f"README has no block marked {marker!r}"
    return match.group(1)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("work") / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)], cwd=REPO)
    (built,) = out.glob("airflow_provider_bolna-*.whl")
    return built


def test_the_wheel_holds_what_a_user_needs_and_not_the_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "airflow_provider_bolna/py.typed",
        "airflow_provider_bolna/dags/__init__.py",
        "airflow_provider_bolna/dags/bulk.py",
        "airflow_provider_bolna/sandbox/app.py",
        "airflow_provider_bolna/get_provider_info.py",
        "airflow_provider_bolna/ui/plugin.py",
        "airflow_provider_bolna/ui/templates/base.html",
        "airflow_provider_bolna/ui/static/bolna.css",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "bench/", "dags/", "scripts/"))]
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


def test_readme_install_and_quickstart_dag_from_the_wheel(wheel: Path, tmp_path: Path, sandbox: Any) -> None:
    # the README's install command, verbatim, from a directory holding dist/<the wheel>
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / wheel.name).write_bytes(wheel.read_bytes())
    install = next(line for line in README.splitlines() if line.startswith("pip install dist/"))
    command = install.split("#")[0].split()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    _run(
        [str(venv / "bin" / command[0]), *command[1:], "--quiet", "--disable-pip-version-check"],
        cwd=tmp_path,
        timeout=1500,
    )
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import airflow_provider_bolna as p; print(p.__file__)"],
        cwd=tmp_path,
    )
    assert str(venv) in where and str(REPO) not in where  # the wheel, not this checkout

    # the README's quick-start DAG file, verbatim
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "crm_bolna.py").write_text(_readme_block("quickstart-dag"))
    crm = tmp_path / "crm.db"
    conn = sqlite3.connect(crm)
    create_customers_table(conn, "bolna_customers")
    insert_customers(conn, generate_customers(20, seed=7), "bolna_customers")
    conn.close()
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW_CONN_CRM_DB": json.dumps({"conn_type": "sqlite", "host": str(crm)}),
            "AIRFLOW_CONN_BOLNA_DEFAULT": sandbox.airflow_conn_json(requests_per_minute=0),
        }
    )
    _run([str(venv / "bin" / "airflow"), "db", "migrate"], cwd=tmp_path, env=env)
    output = _run([str(venv / "bin" / "airflow"), "dags", "test", "crm_bolna"], cwd=tmp_path, env=env)
    assert "state=success" in output, output[-4000:]
    assert sandbox.admin.counters()["writes"]["create_trunk"] == 20
