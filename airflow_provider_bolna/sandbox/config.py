"""Run-time knobs of the sandbox (faults, key, seed), changeable through the admin API."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from . import DEFAULT_API_KEY
from .errors import bad_request

#: knobs that are fractions of requests, each in [0, 1]
_RATES = ("fail_rate", "drop_after_commit_rate", "latency_spike_rate")
#: knobs that are non-negative numbers
_NON_NEGATIVE = (
    "latency_ms",
    "jitter_ms",
    "rate_limit_per_min",
    "number_visibility_delay_s",
    "latency_spike_ms",
)


@dataclass
class SandboxConfig:
    """Every knob of the sandbox. All faults are off by default."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_ms: float = 0.0
    rate_limit_per_min: float = 0.0
    retry_after: bool = False
    fail_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    number_visibility_delay_s: float = 0.0
    seed: int = 0
    api_key: str = DEFAULT_API_KEY

    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        """Names of all knobs, in declaration order."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape served by ``GET /__sandbox__/config``."""
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> set[str]:
        """Validate and apply ``changes`` atomically; return the names that changed value.

        Raises :class:`~airflow_provider_bolna.sandbox.errors.ApiError` (400) on an unknown
        knob or a bad value, in which case nothing is applied.
        """
        if not isinstance(changes, dict):
            raise bad_request("body", "must be a JSON object of knobs")
        known = set(self.knob_names())
        clean = {name: _check_knob(name, value, known) for name, value in changes.items()}
        changed = {name for name, value in clean.items() if getattr(self, name) != value}
        for name, value in clean.items():
            setattr(self, name, value)
        return changed


def _check_knob(name: str, value: Any, known: set[str]) -> Any:
    if name not in known:
        raise bad_request(name, "unknown knob")
    if name == "retry_after":
        if not isinstance(value, bool):
            raise bad_request(name, "must be a boolean")
        return value
    if name == "api_key":
        if not isinstance(value, str) or not value:
            raise bad_request(name, "must be a non-empty string")
        return value
    if name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(name, "must be an integer")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(name, "must be a finite number")
    if value < 0:
        raise bad_request(name, "must be >= 0")
    if name in _RATES and value > 1:
        raise bad_request(name, "must be a fraction between 0 and 1")
    assert name in _RATES or name in _NON_NEGATIVE
    return float(value)
