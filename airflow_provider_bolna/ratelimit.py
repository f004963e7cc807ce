"""A client-side request budget: a token bucket that sync and async callers share.

Bolna allows 1000 requests a minute per organisation. One :class:`RateLimiter` per hook
instance paces every call (first attempts and retries alike). Callers *reserve* a slot and
are told how long to wait, so threads (``time.sleep``) and coroutines (``asyncio.sleep``)
draw from the same bucket without holding a lock while they wait.

On a 429 the rate is halved for a while (multiplicative decrease) and then grows back by a
small step per success (additive increase) up to the configured rate, so a budget set too
high heals itself instead of hammering the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airflow_provider_bolna.concurrency import note_request

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket with reservations and AIMD back-off.

    :param requests_per_minute: the budget; ``0`` or ``None`` disables limiting.
    :param burst: how many requests may go at once after an idle period (default: one).
    :param min_fraction: the rate never drops below this fraction of the budget after 429s.
    :param clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        burst: float = 1.0,
        min_fraction: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rate = (requests_per_minute or 0) / 60.0  # per second
        self.rate = self.max_rate
        self.burst = max(1.0, burst)
        self.min_rate = self.max_rate * min_fraction
        self._clock = clock
        self._lock = threading.Lock()
        self._next_free = clock()  # time at which the next request may go, at the current rate
        self.throttled = 0  # 429s reported

    @property
    def enabled(self) -> bool:
        """False when no budget is configured."""
        return self.max_rate > 0

    def reserve(self) -> float:
        """Take one slot; return how many seconds the caller must wait before sending."""
        if not self.enabled:
            note_request(0.0)
            return 0.0
        with self._lock:
            now = self._clock()
            interval = 1.0 / self.rate
            # an idle bucket refills up to `burst` slots, never more
            earliest = now - (self.burst - 1) * interval
            start = max(self._next_free, earliest)
            self._next_free = start + interval
        wait = max(0.0, start - now)
        note_request(wait)  # lets AdaptiveConcurrency tell service time from queueing
        return wait

    def on_throttled(self, retry_after: float | None = None) -> None:
        """Report a 429: halve the rate and push the next slot past ``retry_after``."""
        if not self.enabled:
            return
        with self._lock:
            self.throttled += 1
            self.rate = max(self.min_rate, self.rate / 2)
            if retry_after:
                self._next_free = max(self._next_free, self._clock() + retry_after)

    def on_success(self) -> None:
        """Report a success: grow the rate back towards the budget by 1 % of it."""
        if not self.enabled or self.rate >= self.max_rate:
            return
        with self._lock:
            self.rate = min(self.max_rate, self.rate + self.max_rate * 0.01)
