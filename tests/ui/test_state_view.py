"""The page's state queries: keyset pages that neither skip nor repeat, one scope only, indexed,
bounded, read-only — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.state import StateRecord, StateStore
from airflow_provider_bolna.ui.state_view import (
    Binding,
    StateUnavailable,
    StateView,
    describe_db_error,
    parse_bindings,
)
from tests.ui.conftest import sqlite_rows

STATUSES = ("provisioned", "failed", "pending", "deprovisioned")


@dataclass
class Table:
    """A state table on one database, as connection ``conn_id``."""

    conn_id: str
    table: str
    sql: Any  # run SQL on the database (``?`` placeholders), return rows

    def fill(self, scope: str, count: int, start: int = 1, statuses: tuple[str, ...] = STATUSES) -> None:
        records = []
        for i in range(start, start + count):
            status = statuses[i % len(statuses)]
            failed = status == "failed"
            records.append(
                StateRecord(
                    f"c{i:04d}",
                    f"cust-c{i:04d}",
                    status,
                    "failed" if failed else "created",  # type: ignore[arg-type]
                    trunk_id=f"T{i}",
                    last_error=f"customer c{i:04d}: transport: bad" if failed else None,
                    error_fields=("transport",) if failed else (),
                )
            )
        with StateStore(self.conn_id, self.table, scope=scope, run_id=f"run-{scope}") as store:
            store.ensure_table()
            store.upsert(records)

    def view(self, scope: str = "bolna", timeout: float = 10.0) -> StateView:
        return StateView(self.conn_id, self.table, scope, statement_timeout=timeout)


@pytest.fixture
def sqlite_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Table:
    path = tmp_path / "state.db"
    monkeypatch.setenv("AIRFLOW_CONN_UI_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(path)}))

    return Table("ui_sqlite", "bolna_provisioning_state", partial(sqlite_rows, path))


@pytest.fixture
def pg_table(postgres_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Table]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"bolna_ui_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(postgres_uri, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("AIRFLOW_CONN_UI_PG", postgres_uri)

    def sql(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = admin.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []

    try:
        yield Table("ui_pg", f"{schema}.bolna_provisioning_state", sql)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def table(request: pytest.FixtureRequest) -> Table:
    return request.getfixturevalue("sqlite_table" if request.param == "sqlite" else "pg_table")


def test_keyset_pages_cover_every_customer_once_in_key_order(table: Table) -> None:
    table.fill("bolna", 125)
    table.fill("other", 40, start=1)  # same keys, another deployment: never shown here
    seen: list[str] = []
    sizes = []
    with table.view() as view:
        after = None
        while True:
            page = view.page(after=after, limit=50)
            seen += [r.customer_id for r in page.rows]
            sizes.append(len(page.rows))
            if page.next_after is None:
                break
            after = page.next_after
    assert sizes == [50, 50, 25]
    assert seen == [f"c{i:04d}" for i in range(1, 126)]


def test_a_status_is_paged_through_completely_and_alone(table: Table) -> None:
    table.fill("bolna", 125)
    table.fill("other", 125)
    failed: list[str] = []
    with table.view() as view:
        page = view.page(status="failed", limit=7)
        failed += [r.customer_id for r in page.rows]
        while page.next_after:
            page = view.page(status="failed", after=page.next_after, limit=7)
            failed += [r.customer_id for r in page.rows]
        assert all(r.status == "failed" for r in view.page(status="failed", limit=100).rows)
        totals = view.totals()
    expected = [f"c{i:04d}" for i in range(1, 126) if STATUSES[i % 4] == "failed"]
    assert failed == expected
    assert totals == {s: sum(1 for i in range(1, 126) if STATUSES[i % 4] == s) for s in STATUSES}


def test_failed_rows_carry_the_fields_at_fault_and_the_run(table: Table) -> None:
    table.fill("bolna", 4)
    with table.view() as view:
        row = view.customer("c0001")
    assert row is not None
    assert (row.status, row.error_fields, row.run_id) == ("failed", ("transport",), "run-bolna")
    assert row.last_error == "customer c0001: transport: bad"
    assert row.trunk_id == "T1" and row.updated_at is not None and row.updated_at.tzinfo is not None
    assert row.bindings == ()  # nothing bound yet (the column is NULL)


def test_one_customer_and_many_are_read_from_this_scope_only(table: Table) -> None:
    table.fill("bolna", 3)
    table.fill("other", 1200)
    with table.view() as view:
        assert view.customer("c0002") is not None
        assert view.customer("c0999") is None  # another scope's customer
        found = view.customers([f"c{i:04d}" for i in range(1, 1201)])  # three IN lists
    assert sorted(found) == ["c0001", "c0002", "c0003"]
    with table.view("other") as view:
        assert len(view.customers([f"c{i:04d}" for i in range(1, 1201)])) == 1200


def test_a_search_without_exact_match_starts_the_list_at_the_key(table: Table) -> None:
    table.fill("bolna", 20)
    with table.view() as view:
        page = view.page(start="c0010x", limit=3)
        exact = view.page(start="c0010", limit=3)
    assert [r.customer_id for r in page.rows] == ["c0011", "c0012", "c0013"]
    assert [r.customer_id for r in exact.rows] == ["c0010", "c0011", "c0012"]


def test_request_values_are_bound_never_spliced(table: Table) -> None:
    table.fill("bolna", 3)
    nasty = "c0001' OR '1'='1"
    with table.view() as view:
        assert view.customer(nasty) is None
        # compared as text (it sorts between c0001 and c0002); spliced, OR '1'='1' would return c0001 too
        assert [r.customer_id for r in view.page(after=nasty, limit=50).rows] == ["c0002", "c0003"]
        assert view.customers([nasty, "c0002"]).keys() == {"c0002"}
    assert len(table.sql(f"SELECT * FROM {table.table}")) == 3


def test_the_connection_refuses_writes(table: Table) -> None:
    table.fill("bolna", 1)
    with table.view() as view:
        view.totals()
        with pytest.raises(Exception, match="(?i)read.?only"):
            view.store.upsert([StateRecord("x", "cust-x", "provisioned", "created")])
    assert [r[0] for r in table.sql(f"SELECT customer_id FROM {table.table}")] == ["c0001"]


def test_no_table_yet_and_the_first_layout_say_so(table: Table) -> None:
    with table.view() as view, pytest.raises(StateUnavailable, match="no state table yet"):
        view.totals()
    table.sql(
        f"CREATE TABLE {table.table} (customer_id VARCHAR(255) PRIMARY KEY, trunk_name VARCHAR(255), "
        "trunk_id VARCHAR(255), spec_hash VARCHAR(64), secret_hash VARCHAR(64), status VARCHAR(32), "
        "action VARCHAR(32), last_error TEXT, created_at TIMESTAMP, updated_at TIMESTAMP)"
    )
    with table.view() as view, pytest.raises(StateUnavailable, match="first layout"):
        view.totals()
    assert table.sql(f"SELECT COUNT(*) FROM {table.table}") == [(0,)]  # nothing migrated by the page


def test_a_layout_without_the_later_columns_reads_them_as_empty(table: Table) -> None:
    table.sql(
        f"CREATE TABLE {table.table} (scope VARCHAR(64), customer_id VARCHAR(255), trunk_name VARCHAR(255), "
        "trunk_id VARCHAR(255), status VARCHAR(32), action VARCHAR(32), last_error TEXT, "
        "created_at TIMESTAMP, updated_at TIMESTAMP, PRIMARY KEY (scope, customer_id))"
    )
    table.sql(
        f"INSERT INTO {table.table} VALUES ('bolna', 'k1', 'cust-k1', 'T', 'failed', 'failed', 'why', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with table.view() as view:
        row = view.customer("k1")
    assert row is not None and row.error_fields == () and row.run_id is None and row.verified_at is None


def test_a_bindings_column_is_shown_when_the_table_has_one(table: Table) -> None:
    table.fill("bolna", 2)
    table.sql(
        f"UPDATE {table.table} SET bindings = ? WHERE customer_id = 'c0001'",
        (
            json.dumps(
                {
                    "911234567890": {"number": "+911234567890", "id": "n1", "agent": "agent-7"},
                    "911234567891": {"number": "+911234567891", "id": "n2", "agent": None},
                }
            ),
        ),
    )
    with table.view() as view:
        one, two = view.customer("c0001"), view.customer("c0002")
    assert one is not None and one.bindings == (Binding("+911234567890", "agent-7"), Binding("+911234567891"))
    assert two is not None and two.bindings == ()


@pytest.mark.parametrize(
    ("raw", "bindings", "text"),
    [
        ('{"+91 1": "a1"}', (Binding("+91 1", "a1"),), None),
        ('{"+91 1": {"agent_id": "a1", "status": "bound"}}', (Binding("+91 1", "a1"),), None),
        (
            '[{"phone_number": "+1", "agent_id": "a"}, {"number": "+2"}]',
            (Binding("+1", "a"), Binding("+2")),
            None,
        ),
        ('["+1", "+2"]', (Binding("+1"), Binding("+2")), None),
        ("+1 555, +1 556", (Binding("+1 555"), Binding("+1 556")), None),
        ({"+1": "a"}, (Binding("+1", "a"),), None),  # a JSON column read as a dict (PostgreSQL jsonb)
        ("<script>x</script>", None, "<script>x</script>"),  # shown as text (escaped by the page)
        ('[{"agent": "a"}]', None, '[{"agent": "a"}]'),
        (None, (), None),
    ],
)
def test_bindings_forms(raw: Any, bindings: tuple[Binding, ...] | None, text: str | None) -> None:
    got, got_text, truncated = parse_bindings(raw)
    assert (got, got_text, truncated) == (bindings, text, False)


def test_many_bindings_are_cut() -> None:
    got, _, truncated = parse_bindings(json.dumps({f"+{i}": f"a{i}" for i in range(500)}))
    assert got is not None and len(got) == 200 and truncated


def test_every_page_query_uses_an_index_on_sqlite(sqlite_table: Table) -> None:
    """``EXPLAIN QUERY PLAN`` of each statement the page runs: a search, never a full scan."""
    sqlite_table.fill("bolna", 50)
    with sqlite_table.view() as view:
        statements: list[tuple[str, tuple[Any, ...]]] = []
        original = view.store.query

        def record(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
            statements.append((sql, tuple(params)))
            return original(sql, params)

        view.store.query = record  # type: ignore[method-assign]
        view.totals()
        view.recorded_trunks()
        view.customer("c0001")
        view.customers(["c0001", "c0002"])
        view.page(limit=10)
        view.page(after="c0010", limit=10)
        view.page(status="failed", after="c0010", limit=10)
        view.page(status="failed", start="c0010", limit=10)
    page_queries = [
        (s, p)
        for s, p in statements
        if s.lstrip().upper().startswith("SELECT") and "sqlite_master" not in s and "1 = 0" not in s
    ]
    assert len(page_queries) == 8
    for sql, params in page_queries:
        plan = " | ".join(str(r[-1]) for r in sqlite_table.sql(f"EXPLAIN QUERY PLAN {sql}", params))
        # an index search, no full scan, and no sort of what it found (the index gives the order)
        assert plan.startswith("SEARCH") and "INDEX" in plan, (sql, plan)
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, (sql, plan)
    status_page = next(s for s, _ in page_queries if "status = ?" in s and "customer_id > ?" in s)
    plan = " | ".join(
        str(r[-1])
        for r in sqlite_table.sql(f"EXPLAIN QUERY PLAN {status_page}", ("bolna", "failed", "c0010", 11))
    )
    assert "scope_status_key" in plan, plan  # the index the page added for this query


def test_a_slow_statement_is_cut_at_the_timeout_and_reported_as_such(table: Table) -> None:
    table.fill("bolna", 1)
    slow = (
        "SELECT pg_sleep(2)"
        if "." in table.table
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) SELECT COUNT(*) FROM n"
    )
    with table.view(timeout=0.2) as view:
        view.totals()
        with pytest.raises(Exception) as err:
            view.store.query(slow)
    assert "0.2 s statement timeout" in describe_db_error(err.value, 0.2)


def test_other_database_errors_show_their_kind_only() -> None:
    error = RuntimeError(
        'connection to server at "db.internal" (10.0.0.5) failed: password authentication '
        'failed for user "bolna"'
    )
    text = describe_db_error(error)
    assert "RuntimeError" in text and "db.internal" not in text and "bolna" not in text


def test_the_engines_own_bindings_show_numbers_and_agents() -> None:
    from airflow_provider_bolna.ui.state_view import parse_bindings

    raw = (
        '{"14155550100": {"number": "+14155550100", "id": "n1", "agent": "a9e1"}, '
        '"14155550101": {"number": "14155550101", "id": null, "agent": null}}'
    )
    bindings, text, truncated = parse_bindings(raw)
    assert text is None and not truncated
    assert [(b.number, b.agent) for b in bindings] == [("+14155550100", "a9e1"), ("14155550101", None)]
