"""The connection's Test button through Airflow's own path, on every supported version:
``airflow connections test`` reads the ``bolna`` connection, builds the hook from its type
(provider discovery) and calls ``test_connection()`` against the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ENABLED = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}


def test_airflow_connections_test_succeeds_with_the_key(airflow_cli: Any, sandbox: Any) -> None:
    proc = airflow_cli.run(
        "connections",
        "test",
        "bolna_default",
        env={**ENABLED, "AIRFLOW_CONN_BOLNA_DEFAULT": sandbox.airflow_conn_json()},
    )
    assert "Connection success!" in proc.stdout, proc.stdout[-3000:]
    assert sandbox.api_key not in proc.stdout


def test_airflow_connections_test_fails_with_a_wrong_key_without_echoing_it(
    airflow_cli: Any, sandbox: Any
) -> None:
    wrong = "Wrong-Key-For-The-Test-Button-93c1"
    conn = {**json.loads(sandbox.airflow_conn_json()), "password": wrong}
    proc = airflow_cli.run(
        "connections",
        "test",
        "bolna_default",
        env={**ENABLED, "AIRFLOW_CONN_BOLNA_DEFAULT": json.dumps(conn)},
        check=False,
    )
    assert "Connection failed!" in proc.stdout, proc.stdout[-3000:]  # (Airflow 2's CLI still exits 0)
    assert "403" in proc.stdout  # the hook's message: the key was refused
    assert wrong not in proc.stdout
