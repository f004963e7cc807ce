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
from typing import Any, Self

__all__ = ["KEY_COLUMN", "CustomerSource", "get_db_hook"]

log = logging.getLogger(__name__)

KEY_COLUMN = "customer_id"
_ALIAS = "bolna_src"
#: Bound parameters per ``IN (...)`` list (SQLite's historical limit is 999).
IN_CHUNK = 500


def get_db_hook(conn_id_or_hook: Any) -> Any:
    """A ``DbApiHook`` for a connection id (``BaseHook.get_connection(id).get_hook()``), or the hook itself."""
    if not isinstance(conn_id_or_hook, str):
        return conn_id_or_hook
    from airflow.providers.common.compat.sdk import BaseHook

    return BaseHook.get_connection(conn_id_or_hook).get_hook()


def placeholder_of(hook: Any) -> str:
    """The DB-API placeholder of a hook (``?`` or ``%s``)."""
    placeholder = getattr(hook, "placeholder", None) or "%s"
    return str(placeholder)


def clean_query(query: str) -> str:
    """Strip whitespace and trailing semicolons; refuse an empty query."""
    cleaned = query.strip()
    while cleaned.endswith(";"):
        cleaned = cleaned[:-1].rstrip()
    if not cleaned:
        raise ValueError("the customer query is empty")
    if re.search(r";\s*\S", cleaned):
        raise ValueError("the customer query must be a single SELECT statement (no ';' inside)")
    return cleaned


class DbSession:
    """One DB-API connection of a ``DbApiHook``, opened on first use, reused, closed once.

    Subclasses set ``self.hook``; use as a context manager or call :meth:`close`.
    """

    hook: Any
    _conn: Any = None

    def new_connection(self) -> Any:
        """A fresh DB-API connection (a writer thread opens its own)."""
        return self.hook.get_conn()

    def connection(self) -> Any:
        """The session's connection (opened on first use, reused for every statement)."""
        if self._conn is None:
            self._conn = self.new_connection()
        return self._conn

    def close(self) -> None:
        """Close the connection, if open."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CustomerSource(DbSession):
    """The customer query on one database connection.

    :param conn: an Airflow connection id or a ``DbApiHook``.
    :param query: a SELECT returning at least ``customer_id`` (already rendered by Jinja).
    :param key_column: the unique, ordered key column (``customer_id`` in the contract).
    """

    def __init__(self, conn: Any, query: str, key_column: str = KEY_COLUMN) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_column):
            raise ValueError(f"key_column {key_column!r} must be a plain column name")
        self.hook = get_db_hook(conn)
        self.key_column = key_column
        self.placeholder = placeholder_of(self.hook)
        query = clean_query(query)
        self.query = query.replace("%", "%%") if self.placeholder == "%s" else query

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(sql, tuple(params))
            names = [str(d[0]).lower() for d in cur.description or ()]
            rows = [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            cur.close()
        _end_read(conn)
        return rows

    # ------------------------------------------------------------------ SQL

    def _select(self, columns: str, conditions: list[str], limit: bool) -> str:
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        tail = f" LIMIT {self.placeholder}" if limit else ""
        return (
            f"SELECT {columns} FROM (\n{self.query}\n) {_ALIAS}{where} "
            f"ORDER BY {_ALIAS}.{self.key_column}{tail}"
        )

    def _range(self, after: Any, first: Any, last: Any) -> tuple[list[str], list[Any]]:
        col = f"{_ALIAS}.{self.key_column}"
        conditions: list[str] = [f"{col} IS NOT NULL"]
        params: list[Any] = []
        if after is not None:
            conditions.append(f"{col} > {self.placeholder}")
            params.append(after)
        elif first is not None:
            conditions.append(f"{col} >= {self.placeholder}")
            params.append(first)
        if last is not None:
            conditions.append(f"{col} <= {self.placeholder}")
            params.append(last)
        return conditions, params

    # ------------------------------------------------------------------ reads

    def iter_pages(
        self, page_size: int = 500, *, first: Any = None, last: Any = None, columns: str = "*"
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield rows in pages of at most ``page_size``, ordered by key, ``first <= key <= last``.

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
        """Yield customer keys only, in keyset pages (for planning batches)."""
        for rows in self.iter_pages(page_size, first=first, last=last, columns="key"):
            yield [r[self.key_column] for r in rows]

    def rows_for_keys(self, keys: Sequence[Any], columns: str = "*") -> list[dict[str, Any]]:
        """The rows of these customers (missing keys are simply absent), ordered by key.

        :param keys: customer keys (bound as parameters, in chunks).
        :param columns: ``*`` or ``"key"`` (the key column only).
        """
        out: list[dict[str, Any]] = []
        col = f"{_ALIAS}.{self.key_column}"
        select = col if columns == "key" else "*"
        for start in range(0, len(keys), IN_CHUNK):
            chunk = list(keys[start : start + IN_CHUNK])
            marks = ", ".join([self.placeholder] * len(chunk))
            out += self._fetch(self._select(select, [f"{col} IN ({marks})"], limit=False), chunk)
        return out

    def key_sample(self) -> Any:
        """One key of the source (``None`` when it is empty): tells the key type."""
        for keys in self.iter_keys(1):
            return keys[0] if keys else None
        return None


def _end_read(conn: Any) -> None:
    """End the implicit read transaction (PostgreSQL drivers open one per statement)."""
    rollback = getattr(conn, "rollback", None)
    if rollback is not None:
        try:
            rollback()
        except Exception:
            log.debug("rollback after read failed", exc_info=True)
