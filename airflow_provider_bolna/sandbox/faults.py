"""Deterministic fault injection: latency (+ spikes), rate limits, failures, lost responses.

Each fault draws from its own ``random.Random`` stream seeded from ``(seed, fault name)``, and
draws on every eligible request whether or not the fault is enabled, so the same seed and the
same request sequence give the same faults, and changing one knob does not shift another's
sequence. The rate limiters are token buckets (time based, not random): one for the agent
endpoint, one for every other API request.
"""

from __future__ import annotations

import math
import random
import time
from typing import Literal

from .config import SandboxConfig

DropKind = Literal["502", "conn"]
#: rate-limit bucket → the knob that sets its rate
_BUCKET_KNOBS = {"api": "rate_limit_per_min", "agent": "agent_rate_limit_per_min"}
_FAIL_STATUSES = (500, 502, 503)


class TokenBucket:
    """``rate_per_min`` tokens per minute, capacity ``max(1, rate_per_min / 60)`` (one second)."""

    def __init__(self, rate_per_min: float) -> None:
        self.rate_per_s = rate_per_min / 60.0
        self.capacity = max(1.0, self.rate_per_s)
        self._tokens = self.capacity
        self._last = time.monotonic()

    def take(self) -> float:
        """Take one token; return 0 if granted, else the seconds until one is available."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_s


class Faults:
    """Decides, per request, which fault (if any) happens. Reads the live config each time."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._buckets: dict[str, TokenBucket | None] = {}
        self.reseed()
        self.reset_rate_limit()

    def reseed(self) -> None:
        """Restart every random stream from the configured seed."""
        seed = self.config.seed
        self._latency = random.Random(f"{seed}:latency")
        self._spike = random.Random(f"{seed}:spike")
        self._fail = random.Random(f"{seed}:fail")
        self._drop = random.Random(f"{seed}:drop")

    def reset_rate_limit(self, *knobs: str) -> None:
        """Start full buckets at the configured rates (none where a limit is 0): the buckets
        of the given rate knobs, or all of them."""
        for bucket, knob in _BUCKET_KNOBS.items():
            if not knobs or knob in knobs:
                rate = getattr(self.config, knob)
                self._buckets[bucket] = TokenBucket(rate) if rate > 0 else None

    def on_config_change(self, changed: set[str]) -> None:
        """Re-derive state after an admin PATCH of the knobs in ``changed``."""
        if "seed" in changed:
            self.reseed()
        rates = changed & set(_BUCKET_KNOBS.values())
        if rates:
            self.reset_rate_limit(*rates)

    def delay_s(self) -> tuple[float, bool]:
        """Seconds to sleep for this request and whether it is a latency spike."""
        cfg = self.config
        jitter = self._latency.uniform(-cfg.jitter_ms, cfg.jitter_ms)
        spike = self._spike.random() < cfg.latency_spike_rate
        total_ms = max(0.0, cfg.latency_ms + jitter) + (cfg.latency_spike_ms if spike else 0.0)
        return total_ms / 1000.0, spike

    def retry_after_s(self, bucket: str = "api") -> int | None:
        """``None`` if the request may proceed, else the whole seconds (>= 1) to wait.

        ``bucket``: ``"api"`` (``rate_limit_per_min``) or ``"agent"`` (``agent_rate_limit_per_min``).
        """
        limiter = self._buckets[bucket]
        if limiter is None:
            return None
        wait = limiter.take()
        return max(1, math.ceil(wait)) if wait else None

    def fail_before(self) -> int | None:
        """An HTTP status (500/502/503) to answer *instead of* handling the request, or None."""
        failed = self._fail.random() < self.config.fail_rate
        status = self._fail.choice(_FAIL_STATUSES)
        return status if failed else None

    def drop_after_commit(self) -> DropKind | None:
        """For a committed write: lose the response as a 502 or a broken connection, or None."""
        dropped = self._drop.random() < self.config.drop_after_commit_rate
        kind: DropKind = "502" if self._drop.random() < 0.5 else "conn"
        return kind if dropped else None
