"""Rate figures from the sandbox's per-second counts (make e2e-celery and the rate benchmarks)."""

from __future__ import annotations

import pytest

from airflow_provider_bolna.sandbox.rates import RateFigures


def test_sliding_windows_over_a_per_second_timeline() -> None:
    timeline = {str(1000 + s): [10, 0] for s in range(90)} | {"1095": [5, 5]}  # a 5 s gap, then 429s
    figures = RateFigures.from_timeline(timeline, rate=1000)
    assert figures.requests == 905 and figures.throttled == 5 and figures.active_s == 96
    assert figures.busiest_window == 600 and figures.per_minute == [600, 305]
    assert figures.per_second == [10] * 90 + [0] * 5 + [5]
    assert figures.share_of_rate == pytest.approx(905 / (1000 * 96 / 60), abs=1e-4)


def test_a_burst_inside_any_window_is_found() -> None:
    timeline = {"10": [400, 0], "69": [601, 0], "70": [1, 0]}  # 1,001 within 60 s, not in one minute
    figures = RateFigures.from_timeline(timeline, rate=1000)
    assert figures.busiest_window == 1001 and figures.per_minute == [1001, 1]


def test_empty_timeline() -> None:
    assert RateFigures.from_timeline({}, rate=1000).requests == 0
