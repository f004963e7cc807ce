"""One request budget per Bolna account, shared through the state DB by every process using it.

Bolna allows 1,000 requests a minute per organisation (the agent endpoint 500). Every batch,
sign-up run and operator of every worker, on any machine, that uses the same connection and
scope draws from one :class:`RateBudget`: the account never receives more than ``limit``
requests in any ``period`` seconds, and whichever claimants are running can use all of it.

**The algorithm** is GCRA (the "virtual scheduling" token bucket) whose single state variable,
the theoretical arrival time ``next_free``, lives in one row of ``bolna_rate_budget``. A
claimant takes a *chunk* of consecutive send times ("slots") in one short transaction under a
row lock (PostgreSQL ``SELECT … FOR UPDATE`` with ``lock_timeout`` and ``statement_timeout``;
SQLite ``BEGIN IMMEDIATE`` with a busy timeout), then hands them out locally without I/O:
``reserve()`` returns how long to wait for the next slot. Time is the database's clock on
PostgreSQL (one clock for every machine), the local clock on SQLite (one machine).

**The guarantee.** Slots are spaced ``1 / max_rate`` apart (``burst`` of them may coincide
after an idle spell), and a slot may only be used from its time to ``grace`` seconds after it;
a slot nobody took by then is dropped. So any window of ``period`` seconds sees at most the
slots dated within ``period + grace`` seconds, and
``max_rate = (limit - burst) / (period + grace)`` keeps that at or under ``limit``
(1,000/min with the defaults: 16.4 requests/s, 98.3 % of the budget).

**Work-conserving.** Slots go to whoever asks, in order: one claimant alone gets them all,
four share them, and a finished claimant gives its untaken slots back when nobody has claimed
after it. Chunks start at one slot and double while every slot is used (halve when some
expire), so a claimant that sends one request does not sit on a second's worth of budget.

**AIMD, shared.** ``on_throttled`` (a 429) halves the row's rate factor, at most once per
``cooldown``, and moves every claimant's next slot past the server's ``Retry-After``;
successes add back 1 % of the rate each. Both are reported with the next claim (no I/O on
the caller's thread), so a 429 seen by any worker slows all of them.

Secrets never reach the table: a row holds its key (connection id and scope), times and
counters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna.concurrency import note_request, timeout_after
from airflow_provider_bolna.provisioning.budget_table import (
    AGENT_REQUESTS_PER_MINUTE,
    AGENT_SCOPE,
    DEFAULT_BUDGET_TABLE,
    SIP_TRUNKS_REQUESTS_PER_MINUTE,
    SIP_TRUNKS_SCOPE,
    BudgetRow,  # noqa: F401 - importable from here, its old home
    BudgetTable,
    ClaimRequest,
    Grant,
    RateBudgetError,
    budget_key,
    budget_table_beside,  # noqa: F401 - importable from here, its old home
    schedule,  # noqa: F401 - importable from here, its old home
)
from airflow_provider_bolna.provisioning.db import get_db_hook

__all__ = ["HOOK_BUDGETS", "RateBudget", "connection_budgets"]

log = logging.getLogger(__name__)

#: The hook's budget names (``default``: every call but the agent PATCH; ``agent``:
#: ``/v2/agent/{id}``) → the row's scope, the connection setting holding the limit, and Bolna's
#: limit for a connection that has no such setting.
HOOK_BUDGETS: dict[str, tuple[str, str, float]] = {
    "default": (SIP_TRUNKS_SCOPE, "requests_per_minute", SIP_TRUNKS_REQUESTS_PER_MINUTE),
    "agent": (AGENT_SCOPE, "agent_requests_per_minute", AGENT_REQUESTS_PER_MINUTE),
}

#: a wait that ran out: the builtin, and (Python 3.10) concurrent.futures' and asyncio's own
_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError, asyncio.TimeoutError)


# ---------------------------------------------------------------------- the claimant


@dataclass
class _Slot:
    earliest: float  # local monotonic time from which the slot may be used
    deadline: float  # local monotonic time after which it is lost
    tat: float  # next_free before this slot (DB clock), for the give-back


@dataclass
class _Pending:
    """What the next claim reports."""

    successes: int = 0
    throttle_for: float | None = None
    slots: deque[_Slot] = field(default_factory=deque)


class RateBudget:
    """A claimant of a shared budget: ``reserve()`` → seconds to wait, like ``RateLimiter``.

    :param conn: a :class:`BudgetTable`, or an Airflow connection id / ``DbApiHook`` of the state DB.
    :param key: the row, :func:`budget_key` (same connection + scope = same budget).
    :param limit: most requests in any ``period`` seconds (Bolna: 1,000 a minute for SIP
        trunks); ``0`` or ``None`` disables the budget (every reserve is free).
    :param period: the window of ``limit``, seconds.
    :param burst: slots that may fall at the same instant after an idle spell (>= 1).
    :param grace: seconds a slot stays usable after its time (then it is dropped); enters the rate.
    :param max_chunk: most slots per claim; default half a second's worth.
    :param min_fraction: the rate never drops below this fraction after 429s.
    :param increase: fraction of the rate given back per success after a 429.
    :param cooldown: seconds between two halvings of the shared rate.
    :param claim_timeout: most seconds a reserve spends claiming (DB retries included) before
        :class:`RateBudgetError`.
    :param table: the table name when ``conn`` is a connection.
    :param clock: local monotonic clock (tests).

    Thread-safe; claims run on one private worker thread (one DB connection), so sync callers
    block in :meth:`reserve` only while a claim is under way and async callers use
    :meth:`areserve`. Call :meth:`close` (or use ``with``) when done: untaken slots go back.
    """

    def __init__(
        self,
        conn: Any,
        key: str,
        limit: float | None,
        *,
        period: float = 60.0,
        burst: int = 1,
        grace: float = 1.0,
        max_chunk: int | None = None,
        min_fraction: float = 0.1,
        increase: float = 0.01,
        cooldown: float = 2.0,
        claim_timeout: float = 30.0,
        table: str = DEFAULT_BUDGET_TABLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or period <= 0 or grace < 0 or claim_timeout <= 0 or not 0 < min_fraction <= 1:
            raise ValueError(
                "need burst >= 1, period > 0, grace >= 0, claim_timeout > 0, 0 < min_fraction <= 1"
            )
        self.limit = float(limit or 0)
        if self.limit and self.limit <= burst:
            raise ValueError(f"limit {self.limit:g} must exceed burst {burst}")
        self.key = key
        self.period = period
        self.burst = burst
        self.grace = grace
        #: the full rate, requests per second: ``(limit - burst) / (period + grace)``
        self.max_rate = (self.limit - burst) / (period + grace) if self.limit else 0.0
        self.max_chunk = max_chunk or max(1, min(64, math.ceil(self.max_rate * 0.5)))
        self.claim_timeout = claim_timeout
        self._table = (
            conn if isinstance(conn, BudgetTable) else (BudgetTable(conn, table) if self.limit else None)
        )
        self._clock = clock
        self._request = ClaimRequest(
            count=0,
            interval=1.0 / self.max_rate if self.max_rate else 0.0,
            tolerance=(burst - 1) / self.max_rate if self.max_rate else 0.0,
            increase=increase,
            min_factor=min_fraction,
            cooldown=cooldown,
        )
        self._lock = threading.Lock()
        self._pending = _Pending()
        self._factor = 1.0
        self._chunk = 1
        self._expired = 0
        self._waiting = 0
        self._next_free: float | None = None  # where our last claim left the row
        self._closed = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.throttled = 0  # 429s reported
        self.granted = 0  # slots handed to callers
        self.expired = 0  # claimed slots nobody took in time
        self.claims = 0  # transactions
        self.last_error: BaseException | None = None  # of the last failed claim

    @property
    def enabled(self) -> bool:
        """False when no limit is configured."""
        return self.max_rate > 0

    @property
    def rate(self) -> float:
        """The shared rate as of the last claim, requests per second (``AdaptiveConcurrency`` reads it)."""
        return self.max_rate * self._factor

    # ------------------------------------------------------------------ the RateLimiter interface

    def reserve(self) -> float:
        """Take one slot; return how many seconds the caller must wait before sending.

        Blocks while a claim is under way (DB I/O, bounded by ``claim_timeout``).

        :raises RateBudgetError: no slot could be claimed within ``claim_timeout``.
        """
        return self._reserve_blocking()[0]

    async def areserve(self) -> float:
        """:meth:`reserve` for coroutines: claims run on the budget's thread, the loop stays free."""
        return (await self._reserve_async())[0]

    def acquire(self) -> None:
        """Reserve and sleep until the slot; take another if the sleep overshot the slot's grace."""
        while True:
            wait, deadline = self._reserve_blocking()
            if wait:
                time.sleep(wait)
            if self._on_time(deadline):
                return

    async def aacquire(self) -> None:
        """:meth:`acquire` for coroutines."""
        while True:
            wait, deadline = await self._reserve_async()
            if wait:
                await asyncio.sleep(wait)
            if self._on_time(deadline):
                return

    def on_success(self) -> None:
        """Report a success: the shared rate grows back (reported with the next claim)."""
        if self.enabled:
            with self._lock:
                self._pending.successes += 1

    def on_throttled(self, retry_after: float | None = None) -> None:
        """Report a 429: drop our untaken slots; the next claim halves the shared rate and
        pauses every claimant until ``retry_after`` seconds from now. No I/O here."""
        if not self.enabled:
            return
        with self._lock:
            self.throttled += 1
            pause = max(0.0, retry_after or 0.0)
            self._pending.throttle_for = max(self._pending.throttle_for or 0.0, pause)
            self._factor = max(self._request.min_factor, self._factor / 2)
            self._pending.slots.clear()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Give untaken slots back, report pending successes and 429s, close the DB connection."""
        executor = self._shutdown()
        if executor is None:
            return
        try:
            executor.submit(self._final_claim).result(timeout=self.claim_timeout)
        except Exception as exc:  # noqa: BLE001 - giving back is best effort
            log.warning("Could not return the rate budget's unused slots: %s", exc)
        finally:
            executor.shutdown(wait=False)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ internals

    def _take(self) -> tuple[float, float] | None:
        """The next usable local slot as ``(wait, deadline)``, dropping expired ones."""
        if not self.enabled:
            note_request(0.0)
            return 0.0, float("inf")
        now = self._clock()
        with self._lock:
            slots = self._pending.slots
            while slots and slots[0].deadline < now:
                slots.popleft()
                self._expired += 1
                self.expired += 1
            if not slots:
                return None
            slot = slots.popleft()
            self.granted += 1
        wait = max(0.0, slot.earliest - now)
        note_request(wait)
        return wait, slot.deadline

    def _on_time(self, deadline: float) -> bool:
        if self._clock() <= deadline:
            return True
        with self._lock:
            self.expired += 1
        return False

    def _reserve_blocking(self) -> tuple[float, float]:
        give_up, failures = self._clock() + self.claim_timeout, 0
        while (taken := self._take()) is None:
            try:
                with self._refilling() as refill:
                    refill.result(timeout=max(0.0, give_up - self._clock()))
            except Exception as exc:  # noqa: BLE001 - retried until claim_timeout
                failures += 1
                time.sleep(self._backoff(exc, failures, give_up))
        return taken

    async def _reserve_async(self) -> tuple[float, float]:
        give_up, failures = self._clock() + self.claim_timeout, 0
        while (taken := self._take()) is None:
            try:
                with self._refilling() as refill:
                    async with timeout_after(max(0.0, give_up - self._clock())):
                        await asyncio.wrap_future(refill)
            except Exception as exc:  # noqa: BLE001 - retried until claim_timeout
                failures += 1
                await asyncio.sleep(self._backoff(exc, failures, give_up))
        return taken

    @contextlib.contextmanager
    def _refilling(self) -> Iterator[concurrent.futures.Future[None]]:
        """A refill on the worker thread; the caller counts as waiting for it (chunk size)."""
        worker = self._worker()
        with self._lock:
            self._waiting += 1
        try:
            yield worker.submit(self._refill)
        finally:
            with self._lock:
                self._waiting -= 1

    def _backoff(self, exc: BaseException, failures: int, give_up: float) -> float:
        """Seconds before the next attempt; raise when ``claim_timeout`` is spent (or closed)."""
        if isinstance(exc, RateBudgetError):
            raise exc
        left = give_up - self._clock()
        if left <= 0:
            if isinstance(exc, _TIMEOUTS) and self.last_error is not None:
                exc = self.last_error  # the DB's reason beats "the caller stopped waiting"
            raise RateBudgetError(
                f"could not claim from the shared rate budget {self.key!r} within {self.claim_timeout:g}s: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        log.warning("Claiming from the rate budget %s failed (%s); retrying", self.key, exc)
        return min(left, 0.1 * 2 ** min(failures, 5))

    def _worker(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RateBudgetError(f"the rate budget {self.key!r} is closed")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bolna-budget")
            return self._executor

    def _refill(self) -> None:
        """On the worker thread: claim a chunk unless another caller's claim already did."""
        with self._lock:
            now = self._clock()
            if any(slot.deadline >= now for slot in self._pending.slots):
                return
            # slow start: double while every slot was taken, halve when some expired
            self._chunk = max(1, self._chunk // 2) if self._expired else min(self.max_chunk, self._chunk * 2)
            count = min(self.max_chunk, max(self._chunk, self._waiting))
            self._expired = 0
        self._claim(count)

    def _claim(self, count: int, give_back: tuple[float, float] | None = None) -> Grant:
        """One transaction: report what is pending, get ``count`` slots (worker thread only)."""
        assert self._table is not None
        with self._lock:
            pending = self._pending
            request = replace(
                self._request,
                count=count,
                successes=pending.successes,
                throttle_for=pending.throttle_for,
                give_back=give_back,
            )
            pending.successes, pending.throttle_for = 0, None
        try:
            grant = self._table.claim(self.key, request, self._clock)
        except BaseException as exc:
            self.last_error = exc
            with self._lock:  # report it again with the next claim
                pending.successes += request.successes
                if request.throttle_for is not None:
                    pending.throttle_for = max(pending.throttle_for or 0.0, request.throttle_for)
            raise
        with self._lock:
            self.claims += 1
            self._factor = grant.rate_factor
            self._next_free = grant.next_free
            for slot, tat in zip(grant.slots, grant.tats, strict=True):
                # the DB clock read `now` between local_before and local_after: from local_after
                # + offset the slot's time has surely come; at local_before + offset + grace
                # its grace has surely not passed
                offset = slot - grant.now
                pending.slots.append(
                    _Slot(grant.local_after + offset, grant.local_before + offset + self.grace, tat)
                )
        return grant

    def _shutdown(self) -> concurrent.futures.ThreadPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            executor, self._executor = self._executor, None
            has_news = bool(
                self._pending.slots or self._pending.successes or self._pending.throttle_for is not None
            )
        if executor is None and has_news and self._table is not None:
            executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bolna-budget")
        return executor

    def _final_claim(self) -> None:
        """On the worker thread: give back, report, close the connection."""
        assert self._table is not None
        try:
            with self._lock:
                untaken = list(self._pending.slots)
                self._pending.slots.clear()
                news = bool(untaken or self._pending.successes or self._pending.throttle_for is not None)
            if news:
                give_back = (
                    (self._next_free, untaken[0].tat) if untaken and self._next_free is not None else None
                )
                grant = self._claim(0, give_back)
                if give_back is not None:
                    log.debug(
                        "Rate budget %s: %d untaken slot(s) %s",
                        self.key,
                        len(untaken),
                        "given back" if grant.gave_back else "lost (claimed after)",
                    )
        finally:
            self._table.close()


# ---------------------------------------------------------------------- one connection's budgets


def connection_budgets(
    state_conn: Any, bolna_conn_id: str, settings: Any, *, table: str = DEFAULT_BUDGET_TABLE, **kwargs: Any
) -> dict[str, RateBudget]:
    """The shared budgets of one Bolna connection, one per endpoint family, keyed like
    :data:`HOOK_BUDGETS` (the hook's budget names).

    Each is a claimant of the row :func:`budget_key` ``(bolna_conn_id, scope)``, so every batch,
    sign-up run and worker using the connection draws from the same two budgets. A budget
    claims nothing (and opens no DB connection) until its first ``reserve``.

    :param state_conn: the state DB: an Airflow connection id or a ``DbApiHook`` (resolved once).
    :param bolna_conn_id: the Bolna connection (the rows' key).
    :param settings: the connection's settings (``requests_per_minute``, and
        ``agent_requests_per_minute`` when it has one: Bolna's 500 otherwise); ``0`` disables a budget.
    :param table: the budget table (:func:`budget_table_beside` the state table).
    :param kwargs: passed to every :class:`RateBudget`.
    """
    db = get_db_hook(state_conn)
    return {
        name: RateBudget(
            db, budget_key(bolna_conn_id, scope), getattr(settings, setting, default), table=table, **kwargs
        )
        for name, (scope, setting, default) in HOOK_BUDGETS.items()
    }
