"""AdaptiveConcurrency: the in-flight limit follows latency × the budget's rate (Little's law).

The end-to-end checks drive a simulated server (``asyncio.sleep`` for the latency) through the
same pattern as ``apply_plan``: one task per customer, each entering the limiter, reserving a
slot of a 1,000/min budget, sleeping the wait, then the latency. Real time, all four latencies
at once on one loop (about 12 s; the whole module about 21 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.concurrency import (
    AdaptiveConcurrency,
    _timeout_after_py310,
    gather_or_cancel,
    note_request,
    timeout_after,
)
from airflow_provider_bolna.provisioning.budget import BudgetTable, RateBudget
from airflow_provider_bolna.ratelimit import RateLimiter
from tests.provisioning.budget_load import RawDb

RPM = 1000.0
RUN_S = 12.0


async def drive(
    limiter: Any, reserve: Callable[[], Awaitable[float]], latency: float, seed: int, run_s: float = RUN_S
) -> list[float]:
    """Customers through ``limiter`` against a server answering in ``latency`` s (±20 %);
    return the send times (seconds since the start) until ``run_s``."""
    rng = random.Random(seed)
    sent: list[float] = []
    start = time.monotonic()

    async def customer() -> None:
        async with limiter:
            wait = await reserve()
            await asyncio.sleep(wait)
            sent.append(time.monotonic() - start)
            await asyncio.sleep(latency * rng.uniform(0.8, 1.2))

    tasks = [asyncio.ensure_future(customer()) for _ in range(int(RPM / 60 * run_s * 2))]
    await asyncio.sleep(run_s)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [t for t in sent if t <= run_s]


def steady_rate(sent: list[float], latency: float, run_s: float = RUN_S) -> float:
    """Sends per second after the warm-up (two latencies and a second)."""
    begin = 2 * latency + 1.0
    return sum(1 for t in sent if t >= begin) / (run_s - begin)


def paced(limiter: RateLimiter) -> Callable[[], Awaitable[float]]:
    async def reserve() -> float:
        return limiter.reserve()

    return reserve


LATENCIES = [0.01, 0.2, 1.0, 2.0]


async def test_default_settings_sustain_95_percent_of_the_budget_from_10ms_to_2s() -> None:
    """And, run alongside as the contrast, what the adaptive limit replaces: a fixed semaphore
    of 8 at 1 s gives about half of R."""
    budgets = [RateLimiter(RPM) for _ in LATENCIES]
    limiters = [AdaptiveConcurrency(lambda b=b: b.rate) for b in budgets]
    adaptive = [
        drive(lim, paced(b), lat, seed)
        for seed, (lim, b, lat) in enumerate(zip(limiters, budgets, LATENCIES, strict=True))
    ]
    *runs, fixed = await asyncio.gather(
        *adaptive, drive(asyncio.Semaphore(8), paced(RateLimiter(RPM)), 1.0, seed=7)
    )
    report = []
    for latency, limiter, sent in zip(LATENCIES, limiters, runs, strict=True):
        share = steady_rate(sent, latency) / (RPM / 60)
        report.append(
            f"{latency * 1000:.0f} ms: {share:.1%} of R, limit {limiter.limit}, "
            f"latency {limiter.latency:.3f}s"
        )
    report.append(f"fixed Semaphore(8) at 1000 ms: {steady_rate(fixed, 1.0) / (RPM / 60):.1%} of R")
    print("\n" + "\n".join(report))
    for latency, limiter, sent in zip(LATENCIES, limiters, runs, strict=True):
        assert steady_rate(sent, latency) >= 0.95 * RPM / 60, report
        # Little's law with 1.5x headroom: 16.7/s x latency x 1.5 (at least 2)
        assert limiter.limit == pytest.approx(max(2, RPM / 60 * latency * 1.5), rel=0.25, abs=1), report
    assert steady_rate(fixed, 1.0) < 0.6 * RPM / 60, report


async def test_the_shared_budget_and_the_limiter_together(tmp_path: Path) -> None:
    """The production pair: a RateBudget on the state DB (SQLite) and the limit read from it."""
    budget = RateBudget(BudgetTable(RawDb("sqlite", str(tmp_path / "state.db"))), "acct/sip-trunks", RPM)
    limiter = AdaptiveConcurrency(lambda: budget.rate)
    sent = await drive(limiter, budget.areserve, 1.0, seed=3, run_s=7.0)
    await budget.aclose()
    assert steady_rate(sent, 1.0, run_s=7.0) >= 0.95 * budget.max_rate
    assert limiter.limit == pytest.approx(budget.max_rate * 1.0 * 1.5, rel=0.25)  # 16.4/s x 1 s x 1.5


async def test_waiting_for_the_budget_is_not_counted_as_latency() -> None:
    """100 customers queue on a 10/s budget, each served in 0.1 s: the limit stays near
    10 x 0.1 x 1.5 instead of chasing the queue up to the cap."""
    budget = RateLimiter(600)  # 10/s
    limiter = AdaptiveConcurrency(lambda: budget.rate, initial=64)
    await drive(limiter, paced(budget), 0.1, seed=1, run_s=2.0)
    assert limiter.latency == pytest.approx(0.1, rel=0.3)
    assert limiter.limit == 2


def test_limit_follows_latency_between_minimum_and_cap() -> None:
    rate = 16.0
    limiter = AdaptiveConcurrency(lambda: rate, initial=8, smoothing=1.0)
    assert limiter.limit == 8  # no sample yet
    limiter.observe(1.0)
    assert limiter.limit == 24
    limiter.observe(3.0, requests=3)  # one second per request
    assert limiter.limit == 24
    limiter.observe(10.0)
    assert limiter.limit == 64  # cap
    limiter.observe(0.001)
    assert limiter.limit == 2  # minimum
    rate = 0.0  # budget off: Little's law cannot say; the limit stays where it is
    limiter.observe(5.0)
    assert limiter.limit == 2


def test_unlimited_rate_keeps_the_initial_limit() -> None:
    limiter = AdaptiveConcurrency(None, initial=8)
    limiter.observe(2.0)
    assert limiter.limit == 8 and limiter.latency == 2.0


def test_ewma_smooths_samples() -> None:
    limiter = AdaptiveConcurrency(10.0, smoothing=0.5)
    for sample in (1.0, 0.0):
        limiter.observe(sample)
    assert limiter.latency == 0.5


async def test_admits_at_most_limit_and_in_order() -> None:
    limiter = AdaptiveConcurrency(None, initial=2)
    inside, most, order = 0, 0, []

    async def section(index: int) -> None:
        nonlocal inside, most
        async with limiter:
            inside += 1
            most = max(most, inside)
            order.append(index)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(section(i) for i in range(10)))
    assert most == 2 and order == list(range(10)) and limiter.in_flight == 0


async def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    limiter = AdaptiveConcurrency(None, initial=1, minimum=1)
    release = asyncio.Event()
    entered: list[str] = []

    async def hold() -> None:
        async with limiter:
            entered.append("first")
            await release.wait()

    async def enter(name: str) -> None:
        async with limiter:
            entered.append(name)

    first = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    cancelled = asyncio.ensure_future(enter("cancelled"))
    third = asyncio.ensure_future(enter("third"))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(first, third, cancelled, return_exceptions=True)
    assert entered == ["first", "third"] and limiter.in_flight == 0


async def test_note_request_counts_only_inside_a_section() -> None:
    note_request(5.0)  # outside: ignored
    now = [0.0]
    limiter = AdaptiveConcurrency(10.0, smoothing=1.0, clock=lambda: now[0])
    async with limiter:
        note_request(3.0)
        note_request(1.0)
        now[0] = 6.0  # 6 s inside, 4 of them waiting for the budget, two requests
    assert limiter.latency == 1.0 and limiter.samples == 1


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="minimum"):
        AdaptiveConcurrency(1.0, minimum=0)
    with pytest.raises(ValueError, match="headroom"):
        AdaptiveConcurrency(1.0, headroom=0.5)


class Refused(Exception):
    """Stands for an error that must stop the other requests (a refused key)."""


async def test_gather_or_cancel_returns_results_in_order() -> None:
    async def after(seconds: float, value: int) -> int:
        await asyncio.sleep(seconds)
        return value

    assert await gather_or_cancel([after(0.03, 1), after(0.0, 2), after(0.01, 3)]) == [1, 2, 3]


async def test_gather_or_cancel_stops_the_others_and_raises_the_first_error_itself() -> None:
    """What TaskGroup + except* did, on Python 3.10 too: no exception group, nobody left running."""
    finished: list[str] = []
    cancelled: list[str] = []

    async def slow(name: str) -> None:
        try:
            await asyncio.sleep(5)
            finished.append(name)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def refuse() -> None:
        await asyncio.sleep(0.01)
        raise Refused("403")

    started = time.monotonic()
    with pytest.raises(Refused, match="403"):
        await gather_or_cancel([slow("a"), refuse(), slow("b")])
    assert time.monotonic() - started < 2
    assert sorted(cancelled) == ["a", "b"] and finished == []  # cancelled and awaited before the raise


async def test_gather_or_cancel_cancelled_from_outside_cancels_every_one() -> None:
    cancelled: list[int] = []

    async def wait(i: int) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    outer = asyncio.ensure_future(gather_or_cancel([wait(i) for i in range(3)]))
    await asyncio.sleep(0.01)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert sorted(cancelled) == [0, 1, 2]


# ---------------------------------------------------------------------- timeout_after

TIMEOUTS = [
    pytest.param(timeout_after, id="this-python"),
    pytest.param(_timeout_after_py310, id="py310-fallback"),
]


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_timeout_after_cuts_a_slow_block_with_timeout_error(timeout: Any) -> None:
    reached = []

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with timeout(0.05):
                await asyncio.sleep(5)
                reached.append("after the sleep")
        return time.monotonic() - started

    assert asyncio.run(main()) < 2 and not reached


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_timeout_after_lets_a_quick_block_finish_and_never_fires_later(timeout: Any) -> None:
    async def main() -> str:
        async with timeout(0.05):
            await asyncio.sleep(0)
        await asyncio.sleep(0.15)  # past the delay: a timer left armed would cancel this task here
        return "done"

    assert asyncio.run(main()) == "done"


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_timeout_after_passes_the_callers_cancellation_through(timeout: Any) -> None:
    """A task cancelled from outside (a triggerer stopping a trigger) ends cancelled, not with
    TimeoutError, and not carried on: even when the block's own work ends at that moment."""
    progress = []

    async def worker() -> None:
        while True:
            async with timeout(10):
                await asyncio.sleep(0)  # the inner work ends as the cancel lands
            progress.append(1)
            await asyncio.sleep(0)

    async def main() -> None:
        task = asyncio.ensure_future(worker())
        for turn in range(60):
            for _ in range(turn % 6):  # the cancel lands at every point of the loop in turn
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.wait([task], timeout=2)  # a swallowed cancel leaves it running
            assert task.cancelled(), f"turn {turn}: the cancellation was swallowed"
            task = asyncio.ensure_future(worker())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert progress, "the worker ran between cancellations"
