"""DB-API plumbing shared by the customer source and the state store (the bottom layer).

* :func:`get_db_hook` — a connection id to a common-sql ``DbApiHook``;
* :class:`DbSession` — one lazily opened DB-API connection, every statement bounded by a
  statement timeout: PostgreSQL's ``statement_timeout`` / ``lock_timeout``; on SQLite a busy
  timeout and a progress handler that interrupts a statement past its deadline. Other databases
  get no server-side bound (documented);
* :func:`table_exists` — asks the catalog, so that only a missing table means "no table": any
  other error (a dropped connection, a permission problem) propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from typing_extensions import Self  # typing.Self: Python 3.11+

__all__ = ["IN_CHUNK", "DbSession", "dialect_of", "get_db_hook", "in_lists", "keyset_after", "placeholder_of"]

log = logging.getLogger(__name__)

#: Bound parameters per ``IN (...)`` list (SQLite's historical limit is 999).
IN_CHUNK = 500
DEFAULT_STATEMENT_TIMEOUT = 300.0
#: SQLite calls the progress handler every this many virtual-machine instructions.
_SQLITE_PROGRESS_STEPS = 10_000


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


def dialect_of(hook: Any) -> str:
    """``postgresql``, ``sqlite`` or the connection type."""
    conn_type = str(getattr(hook, "conn_type", "") or "")
    return "postgresql" if conn_type in ("postgres", "postgresql") else conn_type or "unknown"


class DbSession:
    """One DB-API connection of a ``DbApiHook``, opened on first use, reused, closed once.

    :param conn: an Airflow connection id or a ``DbApiHook``.
    :param statement_timeout: seconds any one statement may run (and wait for locks).

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, conn: Any, statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT) -> None:
        self.conn_ref = conn
        self.hook = get_db_hook(conn)
        self.placeholder = placeholder_of(self.hook)
        self.dialect = dialect_of(self.hook)
        self.statement_timeout = float(statement_timeout)
        self._conn: Any = None
        #: per SQLite connection: the running statement's deadline (read by its progress handler)
        self._deadlines: dict[int, list[float | None]] = {}

    # ------------------------------------------------------------------ connections

    def new_connection(self) -> Any:
        """A fresh DB-API connection with the statement bounds applied (a writer thread opens its own)."""
        conn = self.hook.get_conn()
        try:
            self._bound(conn)
        except Exception:
            conn.close()
            raise
        return conn

    def _bound(self, conn: Any) -> None:
        millis = max(1, int(self.statement_timeout * 1000))
        if self.dialect == "postgresql":
            cur = conn.cursor()
            try:
                cur.execute(f"SET statement_timeout = {millis}")
                cur.execute(f"SET lock_timeout = {millis}")
            finally:
                cur.close()
            conn.commit()  # a SET inside a transaction that is later rolled back would be undone
        elif self.dialect == "sqlite" and hasattr(conn, "set_progress_handler"):
            conn.execute(f"PRAGMA busy_timeout = {millis}")
            deadline: list[float | None] = [None]

            def past_deadline() -> int:  # non-zero interrupts the running statement
                return int(deadline[0] is not None and time.monotonic() > deadline[0])

            conn.set_progress_handler(past_deadline, _SQLITE_PROGRESS_STEPS)
            self._deadlines[id(conn)] = deadline

    def connection(self) -> Any:
        """The session's connection (opened on first use, reused for every statement)."""
        if self._conn is None:
            self._conn = self.new_connection()
        return self._conn

    def execute(self, cur: Any, sql: str, params: Sequence[Any] = (), *, many: bool = False) -> None:
        """Run one statement on ``cur`` within the statement timeout.

        :param many: ``executemany`` with ``params`` a list of parameter tuples.
        """
        deadline = self._deadlines.get(id(getattr(cur, "connection", None)))
        if deadline is not None:
            deadline[0] = time.monotonic() + self.statement_timeout
        try:
            if many:
                cur.executemany(sql, params)
            else:
                cur.execute(sql, tuple(params))
        finally:
            if deadline is not None:
                deadline[0] = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read, ending the read transaction (PostgreSQL drivers open one per statement)."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            self.execute(cur, sql, params)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            cur.close()
        end_read(conn)
        return rows

    def write(
        self,
        statements: Sequence[tuple[str, Sequence[Any]]],
        conn: Any = None,
        *,
        many: bool = False,
        immediate: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Run ``(sql, params)`` statements in one transaction and commit; roll back on error.

        :param conn: the connection (default: the session's).
        :param many: ``executemany`` each statement with its list of parameter tuples.
        :param immediate: on SQLite, take the write lock first (``BEGIN IMMEDIATE``), so that the
            statements see no concurrent writer (schema migrations).
        :return: the rows of the last statement, if it returns any.
        """
        conn = conn if conn is not None else self.connection()
        cur = conn.cursor()
        rows: list[tuple[Any, ...]] = []
        try:
            if immediate and self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                self.execute(cur, sql, params, many=many)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            cur.close()
        return rows

    def table_exists(self, table: str) -> bool:
        """Whether ``table`` (``schema.table`` allowed) exists, from the catalog.

        Only a missing table answers ``False``; a failing query raises.
        """
        schema, _, name = table.rpartition(".")
        if self.dialect == "postgresql":
            rows = self.query(f"SELECT to_regclass({self.placeholder}) IS NOT NULL", [table])
        elif self.dialect == "sqlite":
            catalog = f"{schema}.sqlite_master" if schema else "sqlite_master"
            rows = self.query(
                f"SELECT 1 FROM {catalog} WHERE type = 'table' AND name = {self.placeholder}", [name]
            )
            return bool(rows)
        else:
            where = f"table_name = {self.placeholder}" + (
                f" AND table_schema = {self.placeholder}" if schema else ""
            )
            rows = self.query(
                f"SELECT 1 FROM information_schema.tables WHERE {where}", [name, schema] if schema else [name]
            )
            return bool(rows)
        return bool(rows and rows[0][0])

    def columns(self, table: str) -> set[str]:
        """The (lower-case) column names of an existing table (or of a derived table,
        ``(SELECT ...) alias``), read without fetching a row."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            self.execute(cur, f"SELECT * FROM {table} WHERE 1 = 0")
            names = {str(d[0]).lower() for d in cur.description or ()}
        finally:
            cur.close()
        end_read(conn)
        return names

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


def in_lists(values: Sequence[Any], placeholder: str) -> Iterator[tuple[str, list[Any]]]:
    """``values`` as bound ``IN`` lists of at most :data:`IN_CHUNK`: ``(marks, chunk)``, where
    ``marks`` is ``"%s, %s, ..."`` (one placeholder per value of ``chunk``).

    :param values: the values, in order.
    :param placeholder: the driver's placeholder (``%s`` or ``?``).
    """
    for start in range(0, len(values), IN_CHUNK):
        chunk = list(values[start : start + IN_CHUNK])
        yield ", ".join([placeholder] * len(chunk)), chunk


def keyset_after(column: str, placeholder: str, after: Any, start: Any) -> tuple[list[str], list[Any]]:
    """The keyset condition of a page: ``column > after`` or else ``column >= start`` (either may be
    ``None``: no condition), with its bound parameters.

    :param column: the key column (a trusted name).
    :param placeholder: the driver's placeholder.
    :param after: continue after this key (exclusive).
    :param start: begin at this key (inclusive), when ``after`` is ``None``.
    """
    if after is not None:
        return [f"{column} > {placeholder}"], [after]
    if start is not None:
        return [f"{column} >= {placeholder}"], [start]
    return [], []


def end_read(conn: Any) -> None:
    """End the implicit read transaction (PostgreSQL drivers open one per statement)."""
    rollback = getattr(conn, "rollback", None)
    if rollback is not None:
        try:
            rollback()
        except Exception:
            log.debug("rollback after read failed", exc_info=True)
