"""Carry out a customer's binding work on the hook: numbers to agents, agents to the trunk.

* :meth:`Binder.bind` maps each number of the work to its agent (``ensure_inbound_agent``: zero
  requests when the state already records the mapping, one setup otherwise — setup replaces a
  mapping, so a re-send is harmless), unlinks the numbers that should answer no agent, and
  switches each outbound agent's telephony provider to the SIP trunk **once per run**, however
  many customers of the batch share the agent (a lock per agent; the state's record of switched
  agents covers the later batches and runs).
* It returns the bindings to record: per number, its Bolna id and its agent.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bolna.provisioning.bindings import OUTBOUND_PROVIDER
from airflow_provider_bolna.provisioning.plan_items import PlanItem

__all__ = ["BindOutcome", "Binder"]


@dataclass
class BindOutcome:
    """What binding one customer did.

    :param bindings: per number key ``{"number", "id", "agent"}``: the record to keep.
    :param counts: ``bound``, ``rebound``, ``unchanged``, ``unlinked``, ``switched``.
    """

    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


class Binder:
    """The binding step of one batch.

    :param hook: the batch's hook.
    :param record_switch: called with an agent id once its provider is switched (records it in
        the state DB, so no later batch or run sends it again).
    """

    def __init__(self, hook: Any, record_switch: Callable[[str], None] | None = None) -> None:
        self.hook = hook
        self.record_switch = record_switch or (lambda agent: None)
        self._switches: dict[str, asyncio.Task[str]] = {}

    async def bind(self, item: PlanItem, trunk_id: str, known_ids: Mapping[str, str | None]) -> BindOutcome:
        """Apply ``item.bindings`` on trunk ``trunk_id``.

        :param known_ids: number key → Bolna id, from the trunk as created or listed.
        """
        outcome = BindOutcome()
        spec = item.customer.spec
        ids = dict(known_ids)
        agents: dict[str, str | None] = {}
        for binding in item.bindings.bind:
            result = await self.hook.aensure_inbound_agent(
                trunk_id,
                binding.number,
                binding.agent_id,
                phone_number_id=binding.phone_number_id or ids.get(binding.key),
                recorded_agent_id=binding.recorded_agent,
            )
            ids[binding.key] = result.phone_number_id or ids.get(binding.key)
            agents[binding.key] = binding.agent_id
            outcome.counts[result.action] += 1
        for number, key, number_id in item.bindings.unlink:
            result = await self.hook.aunlink_inbound_agent(
                trunk_id, number, phone_number_id=number_id or ids.get(key)
            )
            ids[key] = result.phone_number_id or ids.get(key)
            agents[key] = None
            outcome.counts["unlinked"] += 1
        for agent in item.bindings.switch:
            if await self.switch(agent) == "switched":
                outcome.counts["switched"] += 1
        if spec is not None:
            for number in spec.phone_numbers:
                key = number.key
                agent = agents[key] if key in agents else item.customer.agents.get(key)
                outcome.bindings[key] = {"number": number.phone_number, "id": ids.get(key), "agent": agent}
        return outcome

    async def unlink_all(self, item: PlanItem, trunk_id: str) -> int:
        """Unmap every number the state records as bound (before a deprovision)."""
        for number, key, number_id in item.bindings.unlink:
            await self.hook.aunlink_inbound_agent(trunk_id, number, phone_number_id=number_id)
        return len(item.bindings.unlink)

    async def switch(self, agent_id: str) -> str:
        """Switch ``agent_id`` to the SIP trunk once for the whole batch; ``switched`` or ``unchanged``."""
        task = self._switches.get(agent_id)
        if task is None or (task.done() and task.exception() is not None):
            task = self._switches[agent_id] = asyncio.ensure_future(self._switch(agent_id))
            first = True
        else:
            first = False
        action = await asyncio.shield(task)
        return action if first else "unchanged"

    async def _switch(self, agent_id: str) -> str:
        action = await self.hook.aensure_outbound_provider(agent_id, OUTBOUND_PROVIDER)
        self.record_switch(agent_id)
        return str(action)


def known_number_ids(numbers: Iterable[Any]) -> dict[str, str | None]:
    """Number key → Bolna id, from number objects (a trunk's ``active_numbers``...)."""
    return {n.key: n.id for n in numbers if getattr(n, "id", None)}
