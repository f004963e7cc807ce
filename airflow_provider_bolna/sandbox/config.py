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
    "agent_rate_limit_per_min",
    "number_visibility_delay_s",
    "latency_spike_ms",
)
#: knobs that are switches (JSON booleans)
SWITCHES = (
    "retry_after",
    "unique_names",
    "unique_numbers",
    "number_list_shows_agent_id",
    "phone_numbers_all_includes_sip",
    "user_me_available",
)
#: knobs that take one of a few strings
CHOICES: dict[str, tuple[str, ...]] = {"inbound_setup_response": ("message", "agent")}


@dataclass
class SandboxConfig:
    """Every knob of the sandbox. All faults are off by default, except the agent endpoint's
    own rate limit (Bolna documents 500 requests/min on ``/v2/agent/{agent_id}``)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_ms: float = 0.0
    rate_limit_per_min: float = 0.0
    agent_rate_limit_per_min: float = 500.0
    retry_after: bool = False
    fail_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    number_visibility_delay_s: float = 0.0
    seed: int = 0
    api_key: str = DEFAULT_API_KEY
    #: 409 on a duplicate trunk name (create or rename); off = duplicates are stored
    unique_names: bool = True
    #: 409 on a number already on another trunk; off = it is stored there too
    unique_numbers: bool = True
    #: numbers in list-numbers and in trunk bodies carry ``agent_id`` (the guide's shape)
    number_list_shows_agent_id: bool = False
    #: ``GET /phone-numbers/all`` lists SIP-trunk numbers too (unverified on the live API)
    phone_numbers_all_includes_sip: bool = False
    #: 200 body of /inbound/setup and /inbound/unlink: ``message`` (trunk guide) or ``agent``
    #: (InboundAgentResponse of the published schema)
    inbound_setup_response: str = "message"
    #: ``GET /user/me`` exists; off = it answers 404 like an unknown route (a client's fallback)
    user_me_available: bool = True

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
    if name in SWITCHES:
        if not isinstance(value, bool):
            raise bad_request(name, "must be a boolean")
        return value
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise bad_request(name, f"must be one of {', '.join(map(repr, CHOICES[name]))}")
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
