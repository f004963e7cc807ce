"""Record results as they land: one result → one state row, written by a background writer.

The only module that knows how a result maps onto the state table's columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_bolna.provisioning.apply import apply_plan
from airflow_provider_bolna.provisioning.bindings import OUTBOUND_PROVIDER
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.plan_items import Action, Plan
from airflow_provider_bolna.provisioning.results import ItemResult
from airflow_provider_bolna.provisioning.state import StateStore
from airflow_provider_bolna.provisioning.state_schema import StateRecord
from airflow_provider_bolna.provisioning.writer import StateWriter

__all__ = ["apply_and_record", "apply_with_options", "mark_pending", "state_record"]


def state_record(result: ItemResult) -> StateRecord | None:
    """The state row to write for ``result``, or ``None`` when nothing new is known."""
    item = result.item
    if result.outcome == "skipped" or not item.record:
        return None  # nothing new to say (hash unchanged, same failure as recorded, ...)
    if result.outcome == "failed":
        return StateRecord(
            item.key,
            item.trunk_name,
            "failed",
            "failed",
            trunk_id=result.trunk_id,
            last_error=result.error,
            error_fields=result.fields or item.fields,
        )
    if result.outcome == "deprovisioned":
        return StateRecord(
            item.key, item.trunk_name, "deprovisioned", "deprovisioned", trunk_id=result.trunk_id
        )
    return StateRecord(
        item.key,
        item.trunk_name,
        "provisioned",
        result.outcome,
        trunk_id=result.trunk_id,
        spec_hash=item.spec_hash,
        secret_hash=item.secret_hash,
        verified=item.verified or result.outcome in ("created", "updated", "adopted"),
        bindings=result.bindings,
        outbound_agents=item.customer.outbound_agents,
    )


def mark_pending(store: StateStore, plan: Plan) -> None:
    """Record every create as ``pending`` before sending it (one transaction).

    A run killed between a POST and the record of its result leaves these rows behind, and
    the next run looks their names up rather than trusting that nothing was created.
    """
    store.upsert(
        [
            StateRecord(i.key, i.trunk_name, "pending", "create")
            for i in plan.items
            if i.action is Action.CREATE
        ]
    )


async def apply_and_record(
    hook: Any,
    plan: Plan,
    store: StateStore,
    *,
    concurrency: int | None,
    deactivate_first: bool = True,
    remove_extra_numbers: bool = True,
    guard: Callable[[], None] | None = None,
) -> list[ItemResult]:
    """:func:`~.apply.apply_plan`, recording every result as it lands.

    :raises StateWriterError: results could not be recorded (the batch fails loudly).
    """
    writer = StateWriter(store)

    def record(result: ItemResult) -> None:
        row = state_record(result)
        if row is not None:
            writer.put(row)

    def record_switch(agent_id: str) -> None:
        store.record_agent_provider(agent_id, OUTBOUND_PROVIDER)

    try:
        return await apply_plan(
            hook,
            plan,
            concurrency=concurrency,
            deactivate_first=deactivate_first,
            remove_extra_numbers=remove_extra_numbers,
            on_result=record,
            guard=guard,
            record_switch=record_switch,
        )
    finally:
        writer.close()


async def apply_with_options(
    hook: Any, plan: Plan, store: StateStore, options: ProvisionOptions, guard: Callable[[], None]
) -> list[ItemResult]:
    """:func:`apply_and_record` with the run's options (``concurrency``, ``deactivate_first``,
    ``remove_extra_numbers``).

    :param guard: called before each item; raises when the batch lost its leases.
    """
    chosen = {
        name: getattr(options, name) for name in ("concurrency", "deactivate_first", "remove_extra_numbers")
    }
    return await apply_and_record(hook, plan, store, guard=guard, **chosen)
