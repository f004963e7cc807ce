"""Hypothesis settings shared by the fuzz tests of the chaos suite.

Deterministic by default (``derandomize``: the same cases on every CI run, so a failure is
reproducible); ``BOLNA_CHAOS_FUZZ_RANDOM=1`` explores new cases instead. No example database
is written.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

RANDOM = os.environ.get("BOLNA_CHAOS_FUZZ_RANDOM") == "1"

CHAOS = settings(
    derandomize=not RANDOM,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
)


def examples(default: int) -> int:
    """``default`` examples, scaled by ``BOLNA_CHAOS_FUZZ_SCALE`` (e.g. ``0.2`` for a quick loop)."""
    scale = float(os.environ.get("BOLNA_CHAOS_FUZZ_SCALE", "1"))
    return max(10, int(default * scale))
