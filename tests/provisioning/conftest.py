"""Fixtures of the provisioning suite: customer databases (SQLite, PostgreSQL) and the sandbox.

* ``sqlite_db`` — a SQLite customer DB file registered as connection ``bolna_customers``.
* ``pg_db`` — a private schema in ``$BOLNA_TEST_POSTGRES_URI`` registered as connection
  ``bolna_pg_customers``; the schema (customers + state table) is dropped after the test.
* ``bolna_api`` — the session sandbox (reset), as ``bolna_default`` with no client-side rate
  limit, so that the engine runs at the sandbox's speed.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.sandbox.seed import (
    create_customers_table,
    generate_customers,
    insert_customers,
)


@dataclass
class CustomerDB:
    """A customer database the tests can seed and change with plain SQL.

    :param conn_id: the Airflow connection id (set as ``AIRFLOW_CONN_*``).
    :param table: customer table (maybe schema-qualified).
    :param state_table: state table name to pass to the engine.
    :param placeholder: ``?`` or ``%s``.
    """

    conn_id: str
    table: str
    state_table: str
    placeholder: str
    connect: Any

    @property
    def query(self) -> str:
        """The customer query the engine reads."""
        return f"SELECT * FROM {self.table}"

    def seed(self, count: int, invalid: int = 0, seed: int = 0, start_id: int = 1, agents: int = 0) -> int:
        """Create the table if needed and insert generated customers (bound to ``agents`` agents)."""
        conn = self.connect()
        try:
            create_customers_table(conn, self.table)
            return insert_customers(
                conn,
                generate_customers(count, invalid, seed, start_id, agents=agents),
                self.table,
                placeholder=self.placeholder,
            )
        finally:
            conn.close()

    def execute(
        self, sql: str, params: tuple[Any, ...] | list[tuple[Any, ...]] = ()
    ) -> list[tuple[Any, ...]]:
        """Run SQL (``{t}`` = customer table, ``{s}`` = state table, ``?`` placeholders) and commit."""
        sql = sql.format(t=self.table, s=self.state_table).replace("?", self.placeholder)
        conn = self.connect()
        try:
            cur = conn.cursor()
            if isinstance(params, list):
                cur.executemany(sql, params)
                rows: list[tuple[Any, ...]] = []
            else:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def state(self) -> dict[str, tuple[Any, ...]]:
        """customer_id → (status, action, trunk_id, spec_hash, last_error)."""
        rows = self.execute("SELECT customer_id, status, action, trunk_id, spec_hash, last_error FROM {s}")
        return {r[0]: r[1:] for r in rows}


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CustomerDB:
    """An empty SQLite customer DB as connection ``bolna_customers``."""
    path = tmp_path / "customers.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").close()
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_CUSTOMERS", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return CustomerDB(
        "bolna_customers", "customers", "bolna_provisioning_state", "?", lambda: sqlite3.connect(path)
    )


@pytest.fixture
def pg_db(postgres_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CustomerDB]:
    """A private PostgreSQL schema as connection ``bolna_pg_customers`` (dropped afterwards)."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"bolna_prov_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(postgres_uri, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_PG_CUSTOMERS", postgres_uri)
    try:
        yield CustomerDB(
            "bolna_pg_customers",
            f"{schema}.customers",
            f"{schema}.bolna_provisioning_state",
            "%s",
            lambda: psycopg.connect(postgres_uri),
        )
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def customer_db(request: pytest.FixtureRequest) -> CustomerDB:
    """Each test runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


@pytest.fixture
def bolna_api(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The reset session sandbox as ``bolna_default``, no client-side rate limit."""
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", sandbox.airflow_conn_json(requests_per_minute=0))
    return sandbox


def writes(server: Any) -> dict[str, int]:
    """The sandbox's write counters."""
    return dict(server.admin.counters()["writes"])


def total_requests(server: Any) -> int:
    """Every /sip-trunks request the sandbox answered."""
    return int(server.admin.counters()["total_requests"])


def create_attempts(server: Any) -> int:
    """Every ``POST /sip-trunks/trunks`` the sandbox answered, whatever the status (a create the
    API refused as a duplicate name counts: it is a second POST of that name)."""
    return sum(server.admin.counters()["requests"].get("POST /sip-trunks/trunks", {}).values())


def accept_duplicate_names(server: Any) -> None:
    """Make ``server`` accept a second trunk of the same name (and a number on two trunks).

    Only then does a duplicate create show as a duplicate trunk: with the API's unique-name rule
    on, it shows as a refused attempt. The ``sandbox`` fixture restores the default for the next
    test.
    """
    server.admin.config(unique_names=False, unique_numbers=False)
