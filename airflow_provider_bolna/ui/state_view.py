"""Read-only queries of one deployment's state rows, for the provisioning page.

Every query is bound (LIMIT, and the session's statement timeout), uses an index, and takes
request values as bound parameters only. The connection is opened read-only (PostgreSQL
``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``, SQLite ``PRAGMA query_only``): the
page cannot write, whatever a bug would ask of it.

Indexes used (from :meth:`~airflow_provider_bolna.provisioning.state.StateStore.ddl`):

=========================================== =======================================================
query                                       index
=========================================== =======================================================
totals by status                            ``(scope, status)`` — an index-only count, O(rows of
                                            the scope): 100k rows ≈ tens of milliseconds
one customer, keys of the pending deletions primary key ``(scope, customer_id)``
customers page (keyset on ``customer_id``)  primary key ``(scope, customer_id)``
customers of one status, page by page       ``(scope, status, customer_id)``
=========================================== =======================================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna.provisioning.db import in_lists, keyset_after
from airflow_provider_bolna.provisioning.state import StateStore
from airflow_provider_bolna.provisioning.state_schema import _as_datetime

__all__ = [
    "BINDINGS_COLUMNS",
    "STATUSES",
    "UI_STATEMENT_TIMEOUT",
    "Binding",
    "CustomerState",
    "Page",
    "StateUnavailable",
    "StateView",
    "describe_db_error",
    "parse_bindings",
]

log = logging.getLogger(__name__)

#: Seconds any one statement of the page may run (a slow database gives an error, not a hung page).
UI_STATEMENT_TIMEOUT = 10.0
STATUSES = ("pending", "provisioned", "failed", "deprovisioned")
#: Where a state row may keep its numbers and the agent each is mapped to (the first present wins).
BINDINGS_COLUMNS = ("bindings", "numbers")
#: Most numbers shown for one customer.
MAX_BINDINGS = 200
_COLUMNS = (
    "customer_id",
    "trunk_name",
    "trunk_id",
    "status",
    "action",
    "last_error",
    "error_fields",
    "run_id",
    "verified_at",
    "created_at",
    "updated_at",
)
#: columns a table of an older layout may lack (selected as NULL then)
_OPTIONAL = {"error_fields", "run_id", "verified_at"}


class StateUnavailable(RuntimeError):
    """The state table cannot be shown (not created yet, or an older layout the next run migrates)."""


@dataclass(frozen=True)
class Binding:
    """A number and the agent it is mapped to (``None``: unknown or none)."""

    number: str
    agent: str | None = None


@dataclass(frozen=True)
class CustomerState:
    """What the state table knows of one customer (no hash, no secret).

    :param error_fields: the fields at fault when the last attempt failed.
    :param bindings: the numbers (and mapped agents) when the table keeps them; ``None`` when it
        has no such column.
    :param bindings_text: the stored value when it could not be read as numbers.
    """

    customer_id: str
    trunk_name: str
    trunk_id: str | None
    status: str
    action: str | None
    last_error: str | None
    error_fields: tuple[str, ...]
    run_id: str | None
    verified_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    bindings: tuple[Binding, ...] | None = None
    bindings_text: str | None = None
    bindings_truncated: bool = False


@dataclass(frozen=True)
class Page:
    """One page of customers and where the next one starts (``None``: this is the last)."""

    rows: list[CustomerState]
    next_after: str | None


class _ReadOnlyStore(StateStore):
    """A :class:`StateStore` whose connections refuse writes."""

    def new_connection(self) -> Any:
        conn = super().new_connection()
        try:
            if self.dialect == "postgresql":
                cur = conn.cursor()
                try:
                    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                finally:
                    cur.close()
                conn.commit()
            elif self.dialect == "sqlite":
                conn.execute("PRAGMA query_only = ON")
        except Exception:
            conn.close()
            raise
        return conn


class StateView:
    """Read one scope's rows of a state table for the page.

    :param conn_id: the connection holding the state table.
    :param table: the state table (validated name).
    :param scope: the deployment's scope.
    :param statement_timeout: seconds any one statement may run.
    """

    def __init__(
        self, conn_id: str, table: str, scope: str, statement_timeout: float = UI_STATEMENT_TIMEOUT
    ) -> None:
        self.store = _ReadOnlyStore(conn_id, table, scope=scope, statement_timeout=statement_timeout)
        self.scope = scope
        self._select: str | None = None
        self._bindings: str | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    @property
    def _ph(self) -> str:
        return self.store.placeholder

    def check(self) -> None:
        """Make sure the table can be read; learn its columns.

        :raises StateUnavailable: no table yet, or a layout without ``scope``.
        """
        if self._select is not None:
            return
        if not self.store.exists():
            raise StateUnavailable("no state table yet: no run of this deployment has recorded anything")
        columns = self.store.columns(self.store.table)
        if "scope" not in columns:
            raise StateUnavailable(
                "the state table has the first layout (no scope column); "
                "the deployment's next run migrates it"
            )
        parts = [c if c in columns or c not in _OPTIONAL else f"NULL AS {c}" for c in _COLUMNS]
        self._bindings = next((c for c in BINDINGS_COLUMNS if c in columns), None)
        parts.append(self._bindings or "NULL AS bindings")
        self._select = ", ".join(parts)

    def _rows(self, where: str, params: list[Any], tail: str = "") -> list[CustomerState]:
        self.check()
        sql = f"SELECT {self._select} FROM {self.store.table} WHERE scope = {self._ph} AND {where}{tail}"
        return [self._row(r) for r in self.store.query(sql, [self.scope, *params])]

    def _row(self, r: tuple[Any, ...]) -> CustomerState:
        bindings, text, truncated = (None, None, False) if self._bindings is None else parse_bindings(r[11])
        return CustomerState(
            customer_id=str(r[0]),
            trunk_name=str(r[1]),
            trunk_id=None if r[2] is None else str(r[2]),
            status=str(r[3]),
            action=r[4],
            last_error=r[5],
            error_fields=tuple(f.strip() for f in str(r[6] or "").split(",") if f.strip()),
            run_id=r[7],
            verified_at=_as_datetime(r[8]),
            created_at=_as_datetime(r[9]),
            updated_at=_as_datetime(r[10]),
            bindings=bindings,
            bindings_text=text,
            bindings_truncated=truncated,
        )

    # ------------------------------------------------------------------ queries

    def totals(self) -> dict[str, int]:
        """Rows per status (every status present, zeros included)."""
        self.check()
        counts = self.store.counts()
        return {**dict.fromkeys(STATUSES, 0), **counts}

    def recorded_trunks(self) -> int:
        """Live rows with a trunk id: the base of the deletion budget's fraction."""
        self.check()
        return self.store.recorded_trunks()

    def customer(self, customer_id: str) -> CustomerState | None:
        """One customer's row, or ``None``."""
        rows = self._rows(f"customer_id = {self._ph}", [customer_id])
        return rows[0] if rows else None

    def page(
        self,
        *,
        status: str | None = None,
        after: str | None = None,
        start: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Customers in key order, ``limit`` at a time (keyset: ``customer_id > after``).

        :param status: only this status.
        :param after: continue after this key (the previous page's ``next_after``).
        :param start: begin at this key (inclusive; a search that found no exact match).
        :param limit: rows per page.
        """
        where, params = ["1 = 1"], []
        if status is not None:
            where.append(f"status = {self._ph}")
            params.append(status)
        keyset, keys = keyset_after("customer_id", self._ph, after, start)
        rows = self._rows(
            " AND ".join([*where, *keyset]),
            [*params, *keys, limit + 1],
            f" ORDER BY customer_id LIMIT {self._ph}",
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].customer_id if more and rows else None)

    def customers(self, keys: Iterable[str]) -> dict[str, CustomerState]:
        """These customers' rows (missing ones absent), ``IN`` lists of at most 500 keys."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CustomerState] = {}
        for marks, chunk in in_lists(wanted, self._ph):
            for row in self._rows(f"customer_id IN ({marks})", chunk):
                found[row.customer_id] = row
        return found


def parse_bindings(raw: Any) -> tuple[tuple[Binding, ...] | None, str | None, bool]:
    """A stored bindings value as numbers and agents: ``(bindings, unreadable text, truncated)``.

    Takes what a JSON column may hold: the state table's own ``{digits: {"number", "id", "agent"}}``,
    ``{"+91...": "agent-id"}``, ``{"+91...": {"agent_id": ...}}``,
    ``[{"phone_number"|"number": ..., "agent_id"|"agent": ...}]``, ``["+91...", ...]`` (numbers
    only), or a comma-separated text of numbers. Anything else is returned as text (escaped on the
    page like every other value).
    """
    if raw is None:
        return (), None, False
    value = raw
    if isinstance(raw, (bytes, bytearray)):
        value = raw.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return (), None, False
        try:
            value = json.loads(text)
        except ValueError:
            if all(c.isdigit() or c in "+ ,;-()" for c in text):
                numbers = [n.strip() for n in text.replace(";", ",").split(",") if n.strip()]
                return _bounded([Binding(n) for n in numbers])
            return None, text[:2000], False
    items: list[Binding] = []
    if isinstance(value, dict):
        # the engine's own shape: {digits: {"number", "id", "agent"}}; or {number: agent}
        items = [
            Binding(
                str(agent.get("number") or number) if isinstance(agent, dict) else str(number), _agent(agent)
            )
            for number, agent in value.items()
        ]
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                number = item.get("phone_number") or item.get("number")
                if number is None:
                    return None, json.dumps(value)[:2000], False
                items.append(Binding(str(number), _agent(item.get("agent_id", item.get("agent")))))
            elif isinstance(item, (str, int)):
                items.append(Binding(str(item)))
            else:
                return None, json.dumps(value)[:2000], False
    else:
        return None, str(value)[:2000], False
    return _bounded(items)


def _bounded(items: list[Binding]) -> tuple[tuple[Binding, ...], None, bool]:
    return tuple(items[:MAX_BINDINGS]), None, len(items) > MAX_BINDINGS


def _agent(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        inner = value.get("agent_id", value.get("agent", value.get("id")))
        return None if inner is None else str(inner)
    return str(value)


def describe_db_error(exc: BaseException, timeout: float = UI_STATEMENT_TIMEOUT) -> str:
    """What the page says when the state table could not be read: the error's kind, never its text
    (a driver's message may name hosts or users); the details go to the API server's log."""
    text = str(exc).lower()
    code = getattr(exc, "pgcode", None) or getattr(getattr(exc, "orig", None), "pgcode", None)
    if code in ("57014", "55P03") or "interrupted" in text or "statement timeout" in text:
        return f"the state table could not be read within the {timeout:g} s statement timeout"
    return f"the state table could not be read ({type(exc).__name__}; the API server's log has the details)"
