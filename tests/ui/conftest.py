"""Fixtures of the provisioning page's tests: a real Airflow auth manager, real JWTs, a state table.

* ``auth`` — :class:`GrantsAuthManager` (Airflow's ``SimpleAuthManager`` whose DAG rights are
  granted per user and per DAG by the test) installed as the API server's auth manager; tokens
  are real JWTs it signs (and verifies, revocation list included, against the migrated metadata DB).
* ``state`` — a SQLite state table (connection ``ui_state``) filled through the engine's own
  :class:`StateStore`; rows of another scope share it.
* ``client`` — FastAPI's ``TestClient`` on the page's app, configured with :data:`DEPLOYMENTS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault(
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "bolna-ui-tests-jwt-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef",
)

from airflow_provider_bolna.provisioning.state import StateRecord, StateStore
from airflow_provider_bolna.ui.config import UIDeployment

DASHBOARD = "https://dashboard.bolna-ui-test.example"
#: DAG ids of the test deployments: no other test runs them (the metadata DB is the session's)
BULK, SIGNUP, OTHER = "ui_bulk", "ui_signup", "ui_other_bulk"
DEPLOYMENTS = [
    UIDeployment(
        dag_id=BULK, signup_dag_id=SIGNUP, scope="bolna", state_conn_id="ui_state", bolna_conn_id="ui_bolna"
    ),
    UIDeployment(dag_id=OTHER, scope="other", state_conn_id="ui_state", bolna_conn_id="ui_bolna"),
]
#: Every DAG right a reader of a deployment needs, and the plan's (XCom).
READ = (None, "RUN")
READ_PLAN = (None, "RUN", "XCOM")


@dataclass
class Grants:
    """Who may read what: ``user → dag_id → access entities`` (``None`` = the DAG itself)."""

    rights: dict[str, dict[str, set[str | None]]] = field(default_factory=dict)

    def grant(self, user: str, dag_id: str, entities: tuple[str | None, ...] = READ) -> None:
        self.rights.setdefault(user, {}).setdefault(dag_id, set()).update(entities)


def _auth_manager_class() -> type:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class GrantsAuthManager(SimpleAuthManager):
        """SimpleAuthManager whose GET rights on DAGs are the test's grants (nothing else is allowed)."""

        grants = Grants()

        def is_authorized_dag(
            self, *, method: str, user: Any, access_entity: Any = None, details: Any = None
        ) -> bool:
            entity = None if access_entity is None else access_entity.name
            dag_rights = self.grants.rights.get(user.get_id(), {}).get(details.id if details else None, set())
            return method == "GET" and entity in dag_rights

    return GrantsAuthManager


@dataclass
class Auth:
    """The installed auth manager: grant rights, sign tokens."""

    manager: Any
    grants: Grants

    def token(self, user: str) -> str:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        return str(self.manager.generate_jwt(SimpleAuthManagerUser(username=user, role="viewer")))

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


@pytest.fixture
def auth(airflow_cli: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Auth]:
    """A :class:`GrantsAuthManager` as the API server's auth manager (metadata DB migrated)."""
    from airflow.api_fastapi import app as api_app

    manager = _auth_manager_class()()
    manager.grants = Grants()
    monkeypatch.setattr(api_app._AuthManagerState, "instance", manager)
    yield Auth(manager, manager.grants)


@dataclass
class StateTable:
    """The SQLite state table behind connection ``ui_state``."""

    path: Path

    def store(self, scope: str, run_id: str | None = None) -> StateStore:
        return StateStore("ui_state", scope=scope, run_id=run_id)

    def write(self, scope: str, records: list[StateRecord], run_id: str | None = None) -> None:
        with self.store(scope, run_id) as store:
            store.ensure_table()
            store.upsert(records)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return sqlite_rows(self.path, sql, params)


def sqlite_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a SQLite file, commit, return its rows."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateTable:
    """An empty SQLite file as connection ``ui_state``; the Bolna connection ``ui_bolna`` names the
    dashboard (its API key must never show)."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("AIRFLOW_CONN_UI_STATE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_UI_BOLNA",
        json.dumps(
            {
                "conn_type": "bolna",
                "host": "https://api.bolna-ui-test.example",
                "password": "ui-secret-api-key-123",
                "extra": {"dashboard_url": DASHBOARD + "/"},
            }
        ),
    )
    return StateTable(path)


@pytest.fixture
def client(auth: Auth, state: StateTable) -> Iterator[Any]:
    """The page's app (deployments :data:`DEPLOYMENTS`) under FastAPI's ``TestClient``."""
    from fastapi.testclient import TestClient

    from airflow_provider_bolna.ui.app import create_app

    with TestClient(create_app(lambda: list(DEPLOYMENTS))) as http:
        yield http
