"""Requests in flight sized from measured latency (Little's law), instead of a fixed semaphore.

To send ``rate`` requests a second when each takes ``latency`` seconds, ``rate × latency`` of
them must be in flight. A fixed ``asyncio.Semaphore(8)`` fills a 1,000/min budget only while
Bolna answers within half a second; at one second it gives about half of it.
:class:`AdaptiveConcurrency` measures the latency (EWMA) and keeps its limit at
``ceil(rate × latency × headroom)``, between ``minimum`` and ``cap``, where ``rate`` is what the
rate budget currently grants.

The latency it measures is the *service* time: the time inside ``async with`` minus what the
section waited for the rate budget, per request. Waiting for the budget is queueing, not
service: counting it would make the limit chase its own queue up to the cap. Pacers report
each reservation with :func:`note_request` (:class:`~airflow_provider_bolna.ratelimit.RateLimiter`
and :class:`~airflow_provider_bolna.provisioning.budget.RateBudget` do); the section's
requests are counted through a context variable, so nothing has to be passed around.

Usage (one instance per event loop)::

    limiter = AdaptiveConcurrency(lambda: budget.rate)
    async with limiter:
        await hook.aensure_trunk(spec)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import Self  # typing.Self: Python 3.11+

__all__ = ["AdaptiveConcurrency", "gather_or_cancel", "note_request", "timeout_after"]


@dataclass
class _Usage:
    """Requests and budget waits of one ``async with`` section (one task)."""

    started: float
    requests: int = 0
    waited: float = 0.0
    token: Token[_Usage | None] | None = field(default=None, repr=False)


_USAGE: ContextVar[_Usage | None] = ContextVar("bolna_request_usage", default=None)


def note_request(wait: float) -> None:
    """Count one request of the current section and the seconds it will wait for its slot.

    Called by rate limiters when they hand out a slot; a no-op outside an
    :class:`AdaptiveConcurrency` section.

    :param wait: seconds the caller sleeps before sending.
    """
    usage = _USAGE.get()
    if usage is not None:
        usage.requests += 1
        usage.waited += max(0.0, wait)


class AdaptiveConcurrency:
    """An async context manager admitting ``limit`` sections at once, the limit following latency.

    :param rate: requests per second the budget grants (a number or a callable read at each
        update, e.g. ``lambda: budget.rate``); ``None``, ``0`` or infinite = no budget, and the
        limit stays ``initial``.
    :param initial: the limit before the first latency sample.
    :param minimum: the smallest limit.
    :param cap: the largest limit.
    :param headroom: in-flight margin over Little's law (latency jitter, gaps between the
        requests of a section, the EWMA's lag).
    :param smoothing: EWMA weight of a new sample.
    :param clock: monotonic clock (tests).
    """

    def __init__(
        self,
        rate: float | Callable[[], float | None] | None,
        *,
        initial: int = 8,
        minimum: int = 2,
        cap: int = 64,
        headroom: float = 1.5,
        smoothing: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= minimum <= cap or headroom < 1 or not 0 < smoothing <= 1:
            raise ValueError("need 1 <= minimum <= cap, headroom >= 1 and 0 < smoothing <= 1")
        self._rate = rate
        self.minimum = minimum
        self.cap = cap
        self.headroom = headroom
        self.smoothing = smoothing
        self._clock = clock
        self._limit = min(cap, max(minimum, initial))
        self._latency: float | None = None
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.samples = 0

    @property
    def limit(self) -> int:
        """Sections admitted at once, now."""
        return self._limit

    @property
    def latency(self) -> float | None:
        """Smoothed service time per request, seconds (``None`` before the first sample)."""
        return self._latency

    @property
    def in_flight(self) -> int:
        """Sections inside the context now."""
        return self._in_flight

    def current_rate(self) -> float | None:
        """The budget's rate now (requests per second), ``None`` when unlimited."""
        rate = self._rate() if callable(self._rate) else self._rate
        if rate is None or rate <= 0 or math.isinf(rate):
            return None
        return float(rate)

    def observe(self, service_seconds: float, requests: int = 1) -> None:
        """Add one sample: a section's time outside budget waits, over its requests.

        :param service_seconds: seconds the section spent not waiting for the budget.
        :param requests: requests it sent (at least one is assumed).
        """
        sample = max(0.0, service_seconds) / max(1, requests)
        self.samples += 1
        self._latency = (
            sample if self._latency is None else self._latency + self.smoothing * (sample - self._latency)
        )
        rate = self.current_rate()
        if rate is not None:
            wanted = math.ceil(rate * self._latency * self.headroom)
            self._limit = min(self.cap, max(self.minimum, wanted))
        self._wake()

    # ------------------------------------------------------------------ the context manager

    async def __aenter__(self) -> Self:
        await self._acquire()
        usage = _Usage(self._clock())
        usage.token = _USAGE.set(usage)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        usage = _USAGE.get()
        self._release()
        if usage is None or usage.token is None:
            return
        _USAGE.reset(usage.token)
        if exc_type is None or not issubclass(exc_type, asyncio.CancelledError):
            self.observe(self._clock() - usage.started - usage.waited, usage.requests)

    async def _acquire(self) -> None:
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # admitted just as we were cancelled: pass the place on
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)


async def gather_or_cancel(awaitables: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run ``awaitables`` concurrently; on the first error cancel the others, wait for them to
    end, and raise that error itself (not an exception group).

    What ``asyncio.TaskGroup`` with ``except*`` gives on Python 3.11+, written for 3.10 too.
    Cancelling the caller cancels every one of them as well.

    :param awaitables: coroutines or futures.
    :returns: their results, in order.
    """
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


@contextlib.asynccontextmanager
async def _timeout_after_py310(delay: float) -> AsyncIterator[None]:
    """``asyncio.timeout`` for Python 3.10: cancel the current task after ``delay`` seconds and
    raise :class:`TimeoutError` in its place; any other cancellation goes through as it came.

    Not ``asyncio.wait_for``: before Python 3.12 it can swallow the caller's own cancellation
    when the inner task ends at that moment, and a trigger the triggerer cancels would then go
    on polling until its deadline.
    """
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("timeout_after must be used inside a task")
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(max(0.0, delay), expire)
    try:
        yield
    except asyncio.CancelledError:
        if fired:
            raise TimeoutError(f"no answer within {delay:g}s") from None
        raise
    finally:
        handle.cancel()


#: ``async with timeout_after(seconds):`` raises :class:`TimeoutError` when the block takes
#: longer, and never swallows a cancellation of the caller (``asyncio.timeout`` on 3.11+).
timeout_after: Callable[[float], contextlib.AbstractAsyncContextManager[None]] = (
    asyncio.timeout if sys.version_info >= (3, 11) else _timeout_after_py310  # type: ignore[assignment]
)
