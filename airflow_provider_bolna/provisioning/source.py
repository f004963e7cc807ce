"""Read customers from any database common-sql speaks, in keyset pages (memory flat in N).

The user's query is wrapped, never edited::

    SELECT * FROM (<query>) bolna_src
    WHERE bolna_src.customer_id > ? [AND bolna_src.customer_id <= ?]
    ORDER BY bolna_src.customer_id LIMIT ?

Values are always bound parameters (the hook's placeholder: ``?`` for SQLite, ``%s`` for
PostgreSQL); with ``%s`` drivers a literal ``%`` in the user's query is doubled so that it
survives parameter interpolation. Tested on SQLite and PostgreSQL; any database with
``LIMIT`` and derived tables works the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_bolna.provisioning.db import DbSession, end_read, get_db_hook, in_lists, keyset_after

__all__ = ["KEY_COLUMN", "CustomerSource", "KeyGroup", "clean_query", "get_db_hook"]

log = logging.getLogger(__name__)

KEY_COLUMN = "customer_id"
_ALIAS = "bolna_src"


@dataclass(frozen=True)
class KeyGroup:
    """One distinct customer key of the source.

    :param key: the key as the database returns it.
    :param rows: how many rows carry it (more than one breaks the contract: keys are unique).
    :param churned: whether a row with it has ``status = 'churned'``.
    """

    key: Any
    rows: int
    churned: bool


def clean_query(query: str) -> str:
    """Strip whitespace and trailing semicolons; refuse an empty query or several statements."""
    cleaned = query.strip()
    while cleaned.endswith(";"):
        cleaned = cleaned[:-1].rstrip()
    if not cleaned:
        raise ValueError("the customer query is empty")
    if re.search(r";\s*\S", cleaned):
        raise ValueError("the customer query must be a single SELECT statement (no ';' inside)")
    return cleaned


class CustomerSource(DbSession):
    """The customer query on one database connection.

    :param conn: an Airflow connection id or a ``DbApiHook``.
    :param query: a SELECT returning at least ``customer_id`` (already rendered by Jinja).
    :param key_column: the unique, ordered key column (``customer_id`` in the contract).
    :param statement_timeout: seconds any one statement may run.
    """

    def __init__(
        self, conn: Any, query: str, key_column: str = KEY_COLUMN, statement_timeout: float = 300.0
    ) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_column):
            raise ValueError(f"key_column {key_column!r} must be a plain column name")
        super().__init__(conn, statement_timeout)
        self.key_column = key_column
        query = clean_query(query)
        self.query = query.replace("%", "%%") if self.placeholder == "%s" else query

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        conn = self.connection()
        cur = conn.cursor()
        try:
            self.execute(cur, sql, params)
            names = [str(d[0]).lower() for d in cur.description or ()]
            rows = [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            cur.close()
        end_read(conn)
        return rows

    # ------------------------------------------------------------------ SQL

    def _select(self, columns: str, conditions: list[str], limit: bool, group: bool = False) -> str:
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        key = f"{_ALIAS}.{self.key_column}"
        tail = f" LIMIT {self.placeholder}" if limit else ""
        grouping = f" GROUP BY {key}" if group else ""
        return f"SELECT {columns} FROM (\n{self.query}\n) {_ALIAS}{where}{grouping} ORDER BY {key}{tail}"

    def _range(self, after: Any, first: Any, last: Any) -> tuple[list[str], list[Any]]:
        col = f"{_ALIAS}.{self.key_column}"
        conditions: list[str] = [f"{col} IS NOT NULL"]
        keyset, params = keyset_after(col, self.placeholder, after, first)
        conditions += keyset
        if last is not None:
            conditions.append(f"{col} <= {self.placeholder}")
            params.append(last)
        return conditions, params

    # ------------------------------------------------------------------ reads

    def column_names(self) -> set[str]:
        """The (lower-case) columns the query returns, read without fetching a row."""
        return self.columns(f"(\n{self.query}\n) {_ALIAS}")

    def iter_pages(
        self, page_size: int = 500, *, first: Any = None, last: Any = None, columns: str = "*"
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield rows in pages of at most ``page_size``, ordered by key, ``first <= key <= last``.

        Keys are unique by contract (:meth:`iter_key_groups` finds the rows that break it); a
        key repeated across a page boundary may be read once only.

        :param page_size: rows per query (``LIMIT``).
        :param first: smallest key to read (inclusive), ``None`` = from the start.
        :param last: largest key to read (inclusive), ``None`` = to the end.
        :param columns: ``*`` or the key column only (``columns="key"``).
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        select = f"{_ALIAS}.{self.key_column}" if columns == "key" else "*"
        after = None
        while True:
            conditions, params = self._range(after, first, last)
            rows = self._fetch(self._select(select, conditions, limit=True), [*params, page_size])
            if not rows:
                return
            yield rows
            if len(rows) < page_size:
                return
            after = rows[-1][self.key_column]

    def iter_keys(self, page_size: int = 5000, *, first: Any = None, last: Any = None) -> Iterator[list[Any]]:
        """Yield customer keys only, in keyset pages."""
        for rows in self.iter_pages(page_size, first=first, last=last, columns="key"):
            yield [r[self.key_column] for r in rows]

    def iter_key_groups(self, page_size: int = 5000) -> Iterator[list[KeyGroup]]:
        """Yield every distinct key with its row count and churn flag, in keyset pages.

        Grouping makes paging exact even when a key is (wrongly) repeated: a group is never
        split by a page boundary, so no row is skipped and every duplicate is counted.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        key = f"{_ALIAS}.{self.key_column}"
        churned = "0"
        if "status" in self.column_names():
            churned = (
                f"SUM(CASE WHEN LOWER(TRIM(CAST({_ALIAS}.status AS VARCHAR(64)))) = 'churned' "
                "THEN 1 ELSE 0 END)"
            )
        columns = f"{key} AS k, COUNT(*) AS n, {churned} AS churned"
        after = None
        while True:
            conditions, params = self._range(after, None, None)
            rows = self._fetch(
                self._select(columns, conditions, limit=True, group=True), [*params, page_size]
            )
            if not rows:
                return
            yield [KeyGroup(r["k"], int(r["n"]), bool(r["churned"])) for r in rows]
            if len(rows) < page_size:
                return
            after = rows[-1]["k"]

    def rows_for_keys(self, keys: Sequence[Any], columns: str = "*") -> list[dict[str, Any]]:
        """The rows of these customers (missing keys are simply absent), ordered by key.

        :param keys: customer keys (bound as parameters, in chunks).
        :param columns: ``*`` or ``"key"`` (the key column only).
        """
        out: list[dict[str, Any]] = []
        col = f"{_ALIAS}.{self.key_column}"
        select = col if columns == "key" else "*"
        for marks, chunk in in_lists(keys, self.placeholder):
            out += self._fetch(self._select(select, [f"{col} IN ({marks})"], limit=False), chunk)
        return out

    def key_sample(self) -> Any:
        """One key of the source (``None`` when it is empty): tells the key type."""
        for keys in self.iter_keys(1):
            return keys[0] if keys else None
        return None
