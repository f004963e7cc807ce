"""The client-side token bucket, on a fake clock, and how one hook shares it."""

from __future__ import annotations

import asyncio
import itertools
import threading

import httpx
import pytest
import respx

from airflow_provider_bolna.hooks.base import DEFAULT_BUDGET
from airflow_provider_bolna.ratelimit import RateLimiter
from tests.unit.helpers import TRUNKS_PATH, Runner, make_hook

RPM = 60  # one request a second: waits read as seconds
INTERVAL = 60 / RPM


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _limiter(clock: FakeClock, rpm: float | None = RPM, **kwargs: float) -> RateLimiter:
    return RateLimiter(rpm, clock=clock, **kwargs)


@pytest.mark.parametrize("rpm", [0, None], ids=["zero", "none"])
def test_disabled_without_a_budget(clock: FakeClock, rpm: float | None) -> None:
    limiter = _limiter(clock, rpm)
    assert limiter.enabled is False
    assert [limiter.reserve() for _ in range(100)] == [0.0] * 100
    limiter.on_throttled(retry_after=30)
    limiter.on_success()
    assert limiter.reserve() == 0.0 and limiter.throttled == 0


def test_back_to_back_reservations_are_paced_at_the_budget(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_callers_that_wait_send_exactly_the_budget_per_minute(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=120)
    sent = []
    while clock.now < 1000.0 + 60:
        clock.advance(limiter.reserve())
        if clock.now < 1000.0 + 60:
            sent.append(clock.now)
    assert len(sent) == 120
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(sent)}
    assert gaps == {0.5}


def test_idle_bucket_does_not_bank_more_than_burst(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    limiter.reserve()
    clock.advance(3600)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("burst", [1, 3, 10])
def test_burst_after_idle(clock: FakeClock, burst: int) -> None:
    limiter = _limiter(clock, burst=burst)
    clock.advance(3600)
    waits = [limiter.reserve() for _ in range(burst + 2)]
    assert waits == [0.0] * burst + [1.0, 2.0]


def test_burst_below_one_means_one(clock: FakeClock) -> None:
    limiter = _limiter(clock, burst=0.2)
    assert [limiter.reserve() for _ in range(2)] == [0.0, 1.0]


def test_throttle_halves_the_rate(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    limiter.reserve()
    clock.advance(10)
    limiter.on_throttled()
    assert limiter.throttled == 1
    assert limiter.rate == pytest.approx(limiter.max_rate / 2)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 2.0, 4.0]


def test_repeated_throttles_floor_at_min_fraction(clock: FakeClock) -> None:
    limiter = _limiter(clock, min_fraction=0.1)
    for _ in range(20):
        limiter.on_throttled()
    assert limiter.throttled == 20
    assert limiter.rate == pytest.approx(limiter.max_rate * 0.1)


def test_success_recovers_additively_and_never_above_the_budget(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    limiter.on_throttled()
    limiter.on_success()
    assert limiter.rate == pytest.approx(limiter.max_rate * 0.51)
    for _ in range(48):
        limiter.on_success()
    assert limiter.rate == pytest.approx(limiter.max_rate * 0.99)
    for _ in range(10):
        limiter.on_success()
    assert limiter.rate == limiter.max_rate


def test_success_at_full_rate_changes_nothing(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    limiter.on_success()
    assert limiter.rate == limiter.max_rate


def test_retry_after_pushes_the_next_slot(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=6000)
    limiter.reserve()
    limiter.on_throttled(retry_after=5.0)
    assert limiter.reserve() == pytest.approx(5.0)


def test_retry_after_never_pulls_the_next_slot_earlier(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    for _ in range(10):
        limiter.reserve()  # next free slot is 10 s away
    limiter.on_throttled(retry_after=1.0)
    assert limiter.reserve() == pytest.approx(10.0)


def test_concurrent_reservations_never_share_a_slot(clock: FakeClock) -> None:
    limiter = _limiter(clock)
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker() -> None:
        start.wait()
        for _ in range(5):
            w = limiter.reserve()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(100)]


# ---------------------------------------------------------------------------- the hook's bucket


def test_sync_and_async_calls_of_one_hook_share_one_bucket(api: respx.MockRouter) -> None:
    api.get(TRUNKS_PATH).respond(200, json=[])
    hook = make_hook(requests_per_minute=6000)  # 10 ms a request
    clock = FakeClock()
    hook._limiters[DEFAULT_BUDGET] = RateLimiter(6000, clock=clock)
    waits: list[float] = []
    reserve = hook.limiter.reserve

    def spy() -> float:
        waits.append(reserve())
        return waits[-1]

    hook.limiter.reserve = spy  # type: ignore[method-assign]

    async def async_calls() -> None:
        await hook.alist_trunks()
        await hook.alist_trunks()
        await hook.aclose()

    hook.list_trunks()
    asyncio.run(async_calls())
    hook.list_trunks()
    assert waits == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert api.calls.call_count == 4


def test_hook_limiter_is_built_from_the_settings() -> None:
    hook = make_hook(requests_per_minute=120)
    assert hook.limiter is hook.limiter
    assert hook.limiter.max_rate == pytest.approx(2.0)
    assert make_hook().limiter.enabled is False


def test_hook_reports_throttles_and_successes_to_its_bucket(api: respx.MockRouter) -> None:
    api.get(TRUNKS_PATH).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0.05"}), httpx.Response(200, json=[])]
    )
    hook = make_hook(requests_per_minute=60_000)
    hook.list_trunks()
    assert hook.limiter.throttled == 1
    assert hook.limiter.rate == pytest.approx(hook.limiter.max_rate * 0.51)


def test_every_attempt_draws_from_the_bucket(api: respx.MockRouter) -> None:
    api.get(TRUNKS_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(200, json=[])]
    )
    hook = make_hook(requests_per_minute=6000)
    clock = FakeClock()
    hook._limiters[DEFAULT_BUDGET] = RateLimiter(6000, clock=clock)
    hook.list_trunks()
    assert hook.limiter.reserve() == pytest.approx(0.03)  # three slots were taken before


def test_both_drivers_sleep_the_limiters_wait_before_every_attempt(
    api: respx.MockRouter, run: Runner, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking a slot is not enough: the sync driver must ``time.sleep`` and the async one
    ``asyncio.sleep`` the wait it was given, before the request — first attempts and retries."""
    wait = 0.0371  # distinct from any back-off of make_hook's (≤ 1 ms)
    reserved: list[int] = []

    def reserve(self: RateLimiter) -> float:
        reserved.append(len(api.calls))
        return wait

    monkeypatch.setattr(RateLimiter, "reserve", reserve)
    slept_before: list[int] = []

    def respond(request: httpx.Request, outcome: httpx.Response) -> httpx.Response:
        slept_before.append(sleeps.count(wait))
        return outcome

    outcomes = iter([httpx.Response(503), httpx.Response(200, json=[]), httpx.Response(200, json=[])])
    api.get(TRUNKS_PATH).mock(side_effect=lambda request: respond(request, next(outcomes)))
    hook = make_hook(requests_per_minute=60)
    run(hook, "list_trunks")  # a 503, then the retry
    run(hook, "list_trunks")
    assert api.calls.call_count == 3 and len(reserved) == 3
    assert slept_before == [1, 2, 3], f"sleeps {sleeps}: the wait must be slept before each request"
