"""The request rate as the sandbox saw it: sliding 60-second windows over per-second counts.

Reads the ``per_second`` of ``GET /__sandbox__/counters`` (``{epoch second: [requests, 429s]}``,
counted when each request is answered); used by ``make e2e-celery`` and the rate benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_S = 60


@dataclass
class RateFigures:
    """The request rate as the sandbox saw it (per-second counts).

    :param requests: requests answered in the active window.
    :param throttled: of which 429.
    :param active_s: seconds from the first to the last second with a request (inclusive).
    :param busiest_window: most requests in any 60 consecutive seconds.
    :param share_of_rate: requests ÷ (rate × active_s / 60).
    :param per_minute: requests in each minute from the first request.
    :param per_second: requests in each second from the first request (the timeline).
    """

    requests: int
    throttled: int
    active_s: int
    busiest_window: int
    share_of_rate: float
    per_minute: list[int]
    per_second: list[int]

    @classmethod
    def from_timeline(cls, per_second: dict[str, list[int]], rate: float) -> RateFigures:
        """From ``GET /__sandbox__/counters``' ``per_second`` and the budget ``rate`` per minute."""
        seconds = sorted((int(s), counts) for s, counts in per_second.items())
        if not seconds:
            return cls(0, 0, 0, 0, 0.0, [], [])
        first, last = seconds[0][0], seconds[-1][0]
        counts = {s: c[0] for s, c in seconds}
        dense = [counts.get(s, 0) for s in range(first, last + 1)]
        windows = [sum(dense[i : i + WINDOW_S]) for i in range(max(1, len(dense) - WINDOW_S + 1))]
        minutes = [sum(dense[i : i + WINDOW_S]) for i in range(0, len(dense), WINDOW_S)]
        total = sum(dense)
        return cls(
            total,
            sum(c[1] for _, c in seconds),
            len(dense),
            max(windows),
            round(total / (rate * len(dense) / WINDOW_S), 4),
            minutes,
            dense,
        )
