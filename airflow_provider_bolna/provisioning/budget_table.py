"""The budget's shared state: the ``bolna_rate_budget`` table and the schedule computed on it.

One row per budget (``<connection id>/<scope>``) holds GCRA's theoretical arrival time and the
shared AIMD state; :meth:`BudgetTable.claim` locks it (PostgreSQL ``SELECT … FOR UPDATE`` under
``lock_timeout`` / ``statement_timeout``; SQLite ``BEGIN IMMEDIATE`` under a busy timeout),
applies :func:`schedule` (pure) and writes it back in one short transaction.
:class:`~airflow_provider_bolna.provisioning.budget.RateBudget` is the claimant built on it.

Portable SQL (SQLite, PostgreSQL); times are epoch seconds on the DB server's clock
(PostgreSQL) or this machine's (SQLite). No secret is stored.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_bolna.provisioning.db import DbSession
from airflow_provider_bolna.provisioning.names import TABLE_NAME

__all__ = [
    "AGENT_REQUESTS_PER_MINUTE",
    "AGENT_SCOPE",
    "DEFAULT_BUDGET_TABLE",
    "SIP_TRUNKS_REQUESTS_PER_MINUTE",
    "SIP_TRUNKS_SCOPE",
    "BudgetRow",
    "BudgetTable",
    "ClaimRequest",
    "Grant",
    "RateBudgetError",
    "budget_key",
    "budget_table_beside",
    "schedule",
]

log = logging.getLogger(__name__)

DEFAULT_BUDGET_TABLE = "bolna_rate_budget"
#: Scope of the SIP-trunk endpoints and Bolna's budget for them (per organisation).
SIP_TRUNKS_SCOPE = "sip-trunks"
SIP_TRUNKS_REQUESTS_PER_MINUTE = 1000.0
#: Scope of the agent endpoint, which has a budget of its own.
AGENT_SCOPE = "agent"
AGENT_REQUESTS_PER_MINUTE = 500.0
_KEY_LIMIT = 255
_COLUMNS = ("next_free", "rate_factor", "throttled_until", "decreased_at", "granted", "throttled")
#: Give-back compares times read back from the DB: equal within this many seconds.
_SAME_TIME = 1e-6


class RateBudgetError(RuntimeError):
    """The shared budget could not be claimed in time (state DB unreachable, lock timeouts)."""


def budget_key(conn_id: str, scope: str = SIP_TRUNKS_SCOPE) -> str:
    """The row key of a connection's budget for one scope: ``<conn_id>/<scope>``.

    :param conn_id: the Bolna connection id (every user of it shares the budget).
    :param scope: :data:`SIP_TRUNKS_SCOPE`, :data:`AGENT_SCOPE` or another endpoint family.
    """
    key = f"{conn_id}/{scope}"
    if not conn_id or not scope or len(key) > _KEY_LIMIT:
        raise ValueError(
            f"budget key {key!r} must be a non-empty connection id and scope, at most {_KEY_LIMIT} characters"
        )
    return key


def budget_table_beside(state_table: str) -> str:
    """The budget table in the schema of ``state_table`` (``s.bolna_provisioning_state`` →
    ``s.bolna_rate_budget``; unqualified stays unqualified)."""
    schema, dot, _ = state_table.rpartition(".")
    return f"{schema}{dot}{DEFAULT_BUDGET_TABLE}"


# ---------------------------------------------------------------------- the schedule (pure)


@dataclass(frozen=True)
class BudgetRow:
    """The shared state of one budget (times in seconds on the DB's clock).

    :param key: :func:`budget_key`.
    :param next_free: GCRA's theoretical arrival time: the next slot at the full spacing.
    :param rate_factor: AIMD multiplier of the rate, ``min_fraction`` … 1.
    :param throttled_until: no slot before this time (the last 429's ``Retry-After``).
    :param decreased_at: when the factor was last halved (one halving per cooldown).
    :param granted: slots handed out so far (statistics).
    :param throttled: 429s reported so far (statistics).
    """

    key: str
    next_free: float = 0.0
    rate_factor: float = 1.0
    throttled_until: float = 0.0
    decreased_at: float = float("-inf")
    granted: int = 0
    throttled: int = 0


@dataclass(frozen=True)
class ClaimRequest:
    """What a claimant asks for and reports in one transaction.

    :param count: slots wanted (``0``: only report, or give back).
    :param interval: seconds between slots at the full rate (``1 / max_rate``).
    :param tolerance: GCRA's burst tolerance in seconds at the full rate (``(burst - 1) * interval``).
    :param successes: successes since the last claim (additive increase).
    :param increase: rate factor added per success.
    :param min_factor: the factor never drops below this.
    :param throttle_for: a 429 was seen: pause every claimant this many seconds (``0``: only slow down).
    :param cooldown: seconds between two halvings.
    :param give_back: ``(expected next_free, restored next_free)``: return untaken slots if
        nobody has claimed since (the row still ends where this claimant's slots end).
    """

    count: int
    interval: float
    tolerance: float = 0.0
    successes: int = 0
    increase: float = 0.01
    min_factor: float = 0.1
    throttle_for: float | None = None
    cooldown: float = 2.0
    give_back: tuple[float, float] | None = None


@dataclass(frozen=True)
class Grant:
    """The slots of one claim.

    :param now: the DB's clock during the claim.
    :param slots: send times (DB clock), ascending.
    :param tats: ``next_free`` just before each slot (to give untaken slots back exactly).
    :param next_free: ``next_free`` after the last slot.
    :param rate_factor: the shared factor after this claim.
    :param gave_back: whether the give-back took effect.
    :param local_before: the claimant's clock just before ``now`` was read.
    :param local_after: the claimant's clock just after ``now`` was read.
    """

    now: float
    slots: tuple[float, ...]
    tats: tuple[float, ...]
    next_free: float
    rate_factor: float
    gave_back: bool = False
    local_before: float = 0.0
    local_after: float = 0.0


def schedule(row: BudgetRow, now: float, request: ClaimRequest) -> tuple[BudgetRow, Grant]:
    """Apply one claim to the shared state: AIMD, give-back, then ``count`` GCRA slots.

    :param row: the locked row.
    :param now: the current time (same clock as the row).
    :param request: see :class:`ClaimRequest`.
    :return: the row to write back and the grant.
    """
    factor, decreased_at, until, tat = row.rate_factor, row.decreased_at, row.throttled_until, row.next_free
    gave_back = False
    if request.give_back is not None:
        expected, restored = request.give_back
        if abs(tat - expected) <= _SAME_TIME and restored < tat:
            tat, gave_back = restored, True
    if request.successes:
        factor = min(1.0, factor + request.successes * request.increase)
    throttled = 0
    if request.throttle_for is not None:
        throttled = 1
        if now >= decreased_at + request.cooldown:
            factor, decreased_at = max(request.min_factor, factor / 2), now
        until = max(until, now + request.throttle_for)
    factor = min(1.0, max(request.min_factor, factor))
    interval, tolerance = request.interval / factor, request.tolerance / factor
    slots, tats = [], []
    for _ in range(request.count):
        slot = max(now, tat - tolerance, until)
        slots.append(slot)
        tats.append(tat)
        tat = max(tat, slot) + interval
    new_row = replace(
        row,
        next_free=tat,
        rate_factor=factor,
        throttled_until=until,
        decreased_at=decreased_at,
        granted=row.granted + request.count,
        throttled=row.throttled + throttled,
    )
    return new_row, Grant(now, tuple(slots), tuple(tats), tat, factor, gave_back)


# ---------------------------------------------------------------------- the table


class BudgetTable(DbSession):
    """The ``bolna_rate_budget`` table on one connection: claims in short locked transactions.

    :param conn: an Airflow connection id or a ``DbApiHook`` (SQLite, PostgreSQL; any
        DB-API hook with ``get_conn()``, ``placeholder`` and ``conn_type``).
    :param table: table name, optionally schema-qualified.
    :param lock_timeout: most seconds a claim waits for the row lock.
    :param statement_timeout: most seconds one statement may run (PostgreSQL).
    :param clock: the time source for the schedule; default the DB's clock on PostgreSQL,
        ``time.time`` elsewhere (tests inject a fake).

    Use one instance per thread: the DB-API connection is opened on first use.
    """

    def __init__(
        self,
        conn: Any,
        table: str = DEFAULT_BUDGET_TABLE,
        *,
        lock_timeout: float = 2.0,
        statement_timeout: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not TABLE_NAME.match(table):
            raise ValueError(
                f"budget table {table!r} must be a plain (optionally schema-qualified) identifier"
            )
        if lock_timeout <= 0 or statement_timeout <= 0:
            raise ValueError("lock_timeout and statement_timeout must be > 0 (every wait is bounded)")
        super().__init__(conn, statement_timeout)
        self.table = table
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self.clock = clock
        self._known_keys: set[str] = set()

    def new_connection(self) -> Any:
        """A connection whose waits are bounded (SQLite: busy timeout; PostgreSQL: not autocommit)."""
        conn = super().new_connection()
        if self.dialect == "sqlite":
            conn.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
        elif getattr(conn, "autocommit", False):
            conn.autocommit = False  # the row lock must last until the UPDATE is committed
        return conn

    # ------------------------------------------------------------------ schema

    def ddl(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` (portable types; times are epoch seconds)."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
            "  bucket_key VARCHAR(255) NOT NULL PRIMARY KEY,\n"  # _KEY_LIMIT
            "  next_free DOUBLE PRECISION NOT NULL,\n"
            "  rate_factor DOUBLE PRECISION NOT NULL,\n"
            "  throttled_until DOUBLE PRECISION NOT NULL,\n"
            "  decreased_at DOUBLE PRECISION NOT NULL,\n"
            "  granted BIGINT NOT NULL,\n"
            "  throttled BIGINT NOT NULL,\n"
            "  updated_at DOUBLE PRECISION NOT NULL\n"
            ")"
        )

    # ------------------------------------------------------------------ transactions

    def read(self, key: str) -> BudgetRow | None:
        """The row of ``key`` (``None`` before its first claim)."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE bucket_key = {self.placeholder}",
                (key,),
            )
            found = cur.fetchone()
        finally:
            cur.close()
        conn.rollback()
        return None if found is None else _row(key, found)

    def claim(
        self, key: str, request: ClaimRequest, local_clock: Callable[[], float] = time.monotonic
    ) -> Grant:
        """Lock the row, :func:`schedule` the request, write the row back, commit.

        :param key: the row.
        :param request: see :class:`ClaimRequest`.
        :param local_clock: the claimant's clock, read around the DB clock (``Grant.local_*``)
            so that the slots can be placed on it.

        :raises Exception: the driver's error (lock or statement timeout, lost connection);
            the transaction is rolled back and the connection dropped (reopened next time).
        """
        conn = self.connection()
        cur = conn.cursor()
        try:
            self._begin(cur)
            if key not in self._known_keys:
                # first claim of this key on this connection: table and row if missing, in the
                # bounded transaction (two claimants racing to create the table: the loser's
                # claim fails and is retried)
                cur.execute(self.ddl())
                self._insert_row(cur, key)
            select = f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE bucket_key = {self.placeholder}"
            if self.dialect != "sqlite":
                select += " FOR UPDATE"  # SQLite: BEGIN IMMEDIATE already holds the write lock
            cur.execute(select, (key,))
            found = cur.fetchone()
            if found is None:
                raise LookupError(f"budget row {key!r} vanished from {self.table}")  # retried: re-inserted
            local_before = local_clock()
            now = self._now(cur)
            local_after = local_clock()
            row, grant = schedule(_row(key, found), now, request)
            sets = [f"{c} = {self.placeholder}" for c in (*_COLUMNS, "updated_at")]
            cur.execute(
                f"UPDATE {self.table} SET {', '.join(sets)} WHERE bucket_key = {self.placeholder}",
                (
                    row.next_free,
                    row.rate_factor,
                    row.throttled_until,
                    _finite(row.decreased_at),
                    row.granted,
                    row.throttled,
                    now,
                    key,
                ),
            )
            conn.commit()
            self._known_keys.add(key)
            return replace(grant, local_before=local_before, local_after=local_after)
        except BaseException:
            self._abandon(conn)
            raise
        finally:
            _close_quietly(cur)

    def _insert_row(self, cur: Any, key: str) -> None:
        ph = self.placeholder
        cur.execute(
            f"INSERT INTO {self.table} (bucket_key, {', '.join(_COLUMNS)}, updated_at) "
            f"VALUES ({ph}, 0, 1, 0, {ph}, 0, 0, 0) ON CONFLICT (bucket_key) DO NOTHING",
            (key, _finite(float("-inf"))),
        )

    def _begin(self, cur: Any) -> None:
        if self.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")  # the write lock now: waits at most busy_timeout
        elif self.dialect == "postgresql":
            # set_config(..., true) = SET LOCAL, with bound values: until the transaction ends
            cur.execute(
                "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                (f"{int(self.lock_timeout * 1000)}ms", f"{int(self.statement_timeout * 1000)}ms"),
            )

    def _now(self, cur: Any) -> float:
        if self.clock is not None:
            return self.clock()
        if self.dialect == "postgresql":
            cur.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
            return float(cur.fetchone()[0])
        return time.time()

    def _abandon(self, conn: Any) -> None:
        """Roll back and drop the connection: after a timeout its state is unknown."""
        try:
            conn.rollback()
        except Exception:
            log.debug("rollback of a failed budget claim failed", exc_info=True)
        try:
            self.close()
        except Exception:
            log.debug("closing the budget connection failed", exc_info=True)
        self._known_keys.clear()


def _row(key: str, values: Any) -> BudgetRow:
    next_free, factor, until, decreased_at, granted, throttled = values
    return BudgetRow(
        key, float(next_free), float(factor), float(until), float(decreased_at), int(granted), int(throttled)
    )


def _finite(value: float) -> float:
    """``-inf`` is not portable SQL: store "never" as a very old time."""
    return value if math.isfinite(value) else -1e18


def _close_quietly(cur: Any) -> None:
    try:
        cur.close()
    except Exception:
        log.debug("closing a budget cursor failed", exc_info=True)
