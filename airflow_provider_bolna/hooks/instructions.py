"""The vocabulary of flows: what a flow yields and the drivers of
:class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook` run.

A flow is a generator that yields instructions (:class:`_Call`, :class:`_Sleep`, :class:`_Find`,
:data:`TIME_LEFT`) and receives their results (or has their :class:`BolnaError` thrown in); the
sync and the async driver run the same flow. Also here: the rate budgets a call draws from and
the protocol of the body readers of :mod:`~airflow_provider_bolna.hooks.reading`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = ["AGENT_BUDGET", "DEFAULT_BUDGET", "TIME_LEFT", "Body", "Flow"]

T = TypeVar("T")


class Body(Protocol):
    """A response body being read (see :mod:`~airflow_provider_bolna.hooks.reading`)."""

    size: int

    def feed(self, chunk: bytes) -> bool: ...  # True: stop reading


#: Rate budgets (a token bucket each): most calls, and the agent endpoint's own (Bolna: 500/min);
#: the setting that holds each one's requests per minute.
DEFAULT_BUDGET, AGENT_BUDGET = "default", "agent"
_BUDGET_SETTINGS = {DEFAULT_BUDGET: "requests_per_minute", AGENT_BUDGET: "agent_requests_per_minute"}


@dataclass(frozen=True)
class _Call:
    """One HTTP exchange: the request, and a factory of the reader of its success body.

    ``replaces``: a POST that sets state (a second send leaves the same state), so it is safe to
    resend after an ambiguous failure. ``budget``: the rate budget it draws from.
    """

    method: str
    path: str
    body: Callable[..., Body]  # called with secrets=: what to redact before parsing
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    secrets: tuple[str, ...] = ()
    replaces: bool = False
    budget: str = DEFAULT_BUDGET

    @property
    def idempotent(self) -> bool:
        """Whether resending after an ambiguous failure can do no harm (a POST that adds cannot)."""
        return self.method != "POST" or self.replaces


@dataclass(frozen=True)
class _Sleep:
    """A pause requested by a flow (the driver sleeps the sync or async way, within the budget)."""

    seconds: float


@dataclass(frozen=True)
class _Find:
    """Look a trunk up by name: with the caller's finder when the public call got one, else by
    running ``fallback`` (the hook's own look-up flow)."""

    name: str
    fallback: Generator[Any, Any, Any]


class _TimeLeft:
    """Asks the driver how many seconds are left of the public call's retry budget."""


TIME_LEFT = _TimeLeft()

Flow = Generator["_Call | _Sleep | _Find | _TimeLeft", Any, T]
