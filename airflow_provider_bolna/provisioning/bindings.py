"""Which numbers to bind to which Bolna agent, and which agents to switch to the SIP trunk.

Bolna offers no reliable way to read "which agent answers number X" back (see the agent-binding
API's known gaps), so the state table is the record: each customer's row keeps, per number, the
number's Bolna id and the agent it was mapped to. Desired (the row's ``inbound_agent_id`` and
per-number ``agent_id``) minus recorded gives the work:

* **bind** a number with no recorded agent, **rebind** one recorded with another agent;
* **unlink** a number that keeps its place on the trunk but should answer no agent any more
  (a number removed from the trunk loses its mapping with it);
* **switch** an outbound agent whose telephony provider this scope has not yet recorded as
  ``sip-trunk`` (once per agent, however many customers share it).

An unchanged customer whose bindings are all recorded costs no request at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUTBOUND_PROVIDER", "Binding", "BindingWork", "plan_bindings", "recorded_bindings"]

#: the telephony provider of an agent calling out through a legacy SIP trunk
OUTBOUND_PROVIDER = "sip-trunk"


@dataclass(frozen=True)
class Binding:
    """One number to map to an agent.

    :param number: the number as the spec writes it.
    :param key: its digits (the number's idempotency key).
    :param agent_id: the agent that must answer it.
    :param phone_number_id: Bolna's id of the number, when recorded.
    :param recorded_agent: the agent the state table records for it (``None``: none).
    """

    number: str
    key: str
    agent_id: str
    phone_number_id: str | None = None
    recorded_agent: str | None = None

    @property
    def kind(self) -> str:
        """``bind`` (no agent recorded) or ``rebind`` (another agent recorded)."""
        return "rebind" if self.recorded_agent else "bind"


@dataclass
class BindingWork:
    """The binding work of one customer.

    :param bind: numbers to map (or map anew).
    :param unlink: ``(number, key, phone_number_id)`` of numbers to unmap.
    :param switch: outbound agents to switch to the SIP trunk.
    """

    bind: list[Binding] = field(default_factory=list)
    unlink: list[tuple[str, str, str | None]] = field(default_factory=list)
    switch: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.bind or self.unlink or self.switch)

    def describe(self) -> str:
        """``bind +1…→a1; rebind +1…→a2; unlink +1…; switch a3`` (ids only: no secrets)."""
        parts = [f"{b.kind} {b.number}→{b.agent_id}" for b in self.bind]
        parts += [f"unlink {number}" for number, _, _ in self.unlink]
        parts += [f"switch agent {agent}" for agent in self.switch]
        return "; ".join(parts)


def recorded_bindings(raw: Any) -> dict[str, dict[str, Any]]:
    """A state row's ``bindings`` column as ``{number key: {"number", "id", "agent"}}``."""
    return {str(k): dict(v) for k, v in dict(raw or {}).items() if isinstance(v, Mapping)}


def plan_bindings(
    numbers: Iterable[tuple[str, str]],
    agents: Mapping[str, str],
    recorded: Mapping[str, Mapping[str, Any]],
    outbound: Iterable[str],
    switched: set[str],
    *,
    everything: bool = False,
) -> BindingWork:
    """The work that makes the recorded bindings match the desired ones.

    :param numbers: the spec's numbers, ``(number, key)``.
    :param agents: the desired agent per number key.
    :param recorded: the state row's bindings.
    :param outbound: the customer's outbound agents.
    :param switched: agents this scope already switched to the SIP trunk.
    :param everything: bind every desired number whatever is recorded (a trunk created anew).
    """
    work = BindingWork()
    for number, key in numbers:
        was = recorded.get(key) or {}
        want = agents.get(key)
        had = None if everything else was.get("agent")
        number_id = None if everything else was.get("id")
        if want is not None and want != had:
            work.bind.append(Binding(number, key, want, number_id, had))
        elif want is None and had is not None:
            work.unlink.append((number, key, number_id))
    work.switch = [agent for agent in dict.fromkeys(outbound) if agent not in switched]
    return work
