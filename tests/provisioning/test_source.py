"""Keyset reading of the customer query (SQLite and PostgreSQL) and batch planning."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.engine import plan_batches
from airflow_provider_bolna.provisioning.source import CustomerSource, clean_query
from tests.provisioning.conftest import CustomerDB


class RecordingSource(CustomerSource):
    """Counts the queries and the largest page held in memory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queries: list[tuple[str, tuple[Any, ...]]] = []
        self.largest = 0

    def _fetch(self, sql: str, params: Any) -> list[dict[str, Any]]:
        self.queries.append((sql, tuple(params)))
        rows = super()._fetch(sql, params)
        self.largest = max(self.largest, len(rows))
        return rows


def test_keyset_pages_cover_everything_once_with_bounded_pages(customer_db: CustomerDB) -> None:
    customer_db.seed(1050)
    with RecordingSource(customer_db.conn_id, customer_db.query) as source:
        seen = [r["customer_id"] for page in source.iter_pages(100) for r in page]
    assert seen == list(range(1, 1051))
    assert source.largest == 100 and len(source.queries) == 11
    sql, params = source.queries[3]
    assert "LIMIT" in sql and "> " in sql and params == (300, 100)  # keyset, bound values
    assert "300" not in sql


def test_inclusive_key_range(customer_db: CustomerDB) -> None:
    customer_db.seed(50)
    with CustomerSource(customer_db.conn_id, customer_db.query) as source:
        keys = [r["customer_id"] for page in source.iter_pages(7, first=10, last=24) for r in page]
        assert keys == list(range(10, 25))
        assert [k for page in source.iter_keys(10, last=5) for k in page] == [1, 2, 3, 4, 5]
        assert [r["customer_id"] for r in source.rows_for_keys([3, 999, 1])] == [1, 3]
        assert source.key_sample() == 1


def test_user_query_with_where_order_and_percent_signs(customer_db: CustomerDB) -> None:
    customer_db.seed(40)
    query = (
        f"SELECT * FROM {customer_db.table} WHERE company LIKE '%#1%' OR provider = 'x%y' ORDER BY company;"
    )
    with CustomerSource(customer_db.conn_id, query) as source:
        keys = [r["customer_id"] for page in source.iter_pages(3) for r in page]
    assert keys == [1] + list(range(10, 20))


def test_text_keys_in_order(customer_db: CustomerDB) -> None:
    customer_db.execute("CREATE TABLE {t}_text (customer_id VARCHAR(20) PRIMARY KEY, provider VARCHAR(20))")
    customer_db.execute("INSERT INTO {t}_text VALUES (?, ?)", [(f"C-{i:03d}", "p") for i in range(25, 0, -1)])
    with CustomerSource(customer_db.conn_id, f"SELECT * FROM {customer_db.table}_text") as source:
        keys = [k for page in source.iter_keys(4) for k in page]
    assert keys == [f"C-{i:03d}" for i in range(1, 26)]


def test_columns_are_read_by_lowercase_name(customer_db: CustomerDB) -> None:
    customer_db.seed(2)
    query = f"SELECT customer_id AS Customer_ID, provider AS PROVIDER FROM {customer_db.table}"
    with CustomerSource(customer_db.conn_id, query, key_column="customer_id") as source:
        rows = next(source.iter_pages(10))
    assert set(rows[0]) == {"customer_id", "provider"}


@pytest.mark.parametrize("bad", ["", "  ;  ", "SELECT 1; DROP TABLE customers"])
def test_query_must_be_one_statement(bad: str) -> None:
    with pytest.raises(ValueError):
        clean_query(bad)


def test_plan_batches_are_contiguous_ranges(customer_db: CustomerDB) -> None:
    customer_db.seed(1234)
    batches = plan_batches(customer_db.conn_id, customer_db.query, batch_size=500, key_page_size=300)
    none: dict[str, list[str]] = {"deletes": [], "duplicates": []}
    assert batches == [
        {"index": 0, "first": 1, "last": 500, "count": 500, "of": 3, **none},
        {"index": 1, "first": 501, "last": 1000, "count": 500, "of": 3, **none},
        {"index": 2, "first": 1001, "last": 1234, "count": 234, "of": 3, **none},
    ]


def test_plan_batches_grow_to_stay_under_the_cap(customer_db: CustomerDB) -> None:
    customer_db.seed(1000)
    batches = plan_batches(customer_db.conn_id, customer_db.query, batch_size=10, max_batches=30)
    assert len(batches) <= 30 and {b["of"] for b in batches} == {len(batches)}
    assert sum(b["count"] for b in batches) == 1000
    assert batches[0]["first"] == 1 and batches[-1]["last"] == 1000
    assert all(a["last"] < b["first"] for a, b in itertools.pairwise(batches))
    assert max(b["count"] for b in batches) == 40  # 10 doubled twice


def test_plan_batches_of_an_empty_source(customer_db: CustomerDB) -> None:
    customer_db.seed(0)
    assert plan_batches(customer_db.conn_id, customer_db.query) == []
