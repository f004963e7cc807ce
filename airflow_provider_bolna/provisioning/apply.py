"""Apply a plan on the async hook: bounded concurrency, one rate budget, results as they land.

* One :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook` per batch: its token bucket is
  shared by every in-flight request of the batch (first attempts and retries).
* ``asyncio.Semaphore(concurrency)`` bounds in-flight customers.
* Deprovisions run first (they free numbers that other customers may take), then the rest.
* Creates send the numbers inline (one request per customer) through ``aensure_trunk`` with
  ``existing=None`` — the plan's list call already showed the name is free — so an ambiguous
  failure (timeout, dropped connection, 5xx) is resolved by the hook's look-then-adopt logic,
  never by a blind second POST.
* Every result is handed to ``on_result`` as soon as it is known (the state writer).
* A failure is a result (``failed`` with a secret-free reason), except an authentication
  failure, which stops the batch: every other request would fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bolna.exceptions import BolnaAuthError, BolnaError
from airflow_provider_bolna.provisioning.plan import Action, Plan, PlanItem
from airflow_provider_bolna.provisioning.state import StateRecord

__all__ = ["OUTCOMES", "ItemResult", "Outcome", "apply_plan"]

log = logging.getLogger(__name__)

Outcome = str
#: Every outcome, in summary order.
OUTCOMES: tuple[str, ...] = ("created", "adopted", "updated", "unchanged", "deprovisioned", "skipped", "failed")


@dataclass
class ItemResult:
    """What happened to one customer.

    :param item: the plan item.
    :param outcome: one of :data:`OUTCOMES`.
    :param trunk_id: the trunk, when known.
    :param error: secret-free reason of a failure.
    :param patched_fields: fields sent in a PATCH.
    :param numbers_added: numbers registered.
    :param numbers_removed: numbers removed.
    :param seconds: time spent on it.
    """

    item: PlanItem
    outcome: Outcome
    trunk_id: str | None = None
    error: str | None = None
    patched_fields: list[str] = field(default_factory=list)
    numbers_added: list[str] = field(default_factory=list)
    numbers_removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def customer_id(self) -> Any:
        """The customer key as read."""
        return self.item.customer_id

    def state_record(self) -> StateRecord | None:
        """The state-table row to write, or ``None`` when nothing changed."""
        item = self.item
        if self.outcome == "skipped" or not item.record:
            return None  # nothing new to say (hash unchanged, same failure as recorded, ...)
        if self.outcome == "failed":
            return StateRecord(item.key, item.trunk_name, "failed", "failed", trunk_id=self.trunk_id,
                               last_error=self.error)
        if self.outcome == "deprovisioned":
            return StateRecord(item.key, item.trunk_name, "deprovisioned", "deprovisioned", trunk_id=self.trunk_id)
        return StateRecord(item.key, item.trunk_name, "provisioned", self.outcome, trunk_id=self.trunk_id,
                           spec_hash=item.spec_hash, secret_hash=item.secret_hash)

    def to_summary(self) -> dict[str, Any]:
        """A small, secret-free dict (failed rows in XCom)."""
        return {"customer_id": self.item.customer_id, "trunk_name": self.item.trunk_name,
                "reason": self.error}


async def apply_plan(
    hook: Any,
    plan: Plan,
    *,
    concurrency: int = 8,
    deactivate_first: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
) -> list[ItemResult]:
    """Carry out ``plan`` with ``hook`` (a :class:`BolnaHook`); return one result per item.

    :param hook: the batch's hook (its rate limiter is the batch's budget).
    :param plan: from :class:`~.plan.Planner`.
    :param concurrency: customers in flight at once.
    :param deactivate_first: ``PATCH is_active=false`` before deleting a trunk, as Bolna advises.
    :param on_result: called with each result as soon as it is known (in the event loop).
    :raises BolnaAuthError: the API key was refused (the batch stops; results so far are reported).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    results: list[ItemResult] = []

    def emit(result: ItemResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for item in plan.items:
        if not item.needs_api:
            emit(_offline_result(item))
    semaphore = asyncio.Semaphore(concurrency)
    deprovisions = [i for i in plan.items if i.needs_api and i.action is Action.DEPROVISION]
    others = [i for i in plan.items if i.needs_api and i.action is not Action.DEPROVISION]
    for phase in (deprovisions, others):
        if not phase:
            continue
        try:
            async with asyncio.TaskGroup() as group:
                for item in phase:
                    group.create_task(_guarded(hook, item, semaphore, deactivate_first, emit))
        except* BolnaAuthError as refused:
            raise refused.exceptions[0] from None  # every other request would be refused the same way
    return results


def _offline_result(item: PlanItem) -> ItemResult:
    """Results that need no request."""
    if item.action is Action.INVALID:
        return ItemResult(item, "failed", trunk_id=item.trunk_id, error=item.reason)
    if item.action is Action.ADOPT:
        return ItemResult(item, "adopted", trunk_id=item.trunk_id)
    if item.action is Action.DEPROVISION:  # trunk already gone
        return ItemResult(item, "deprovisioned", trunk_id=item.trunk_id)
    if item.action is Action.SKIP:
        return ItemResult(item, "skipped")
    return ItemResult(item, "unchanged", trunk_id=item.trunk_id)


async def _guarded(
    hook: Any, item: PlanItem, semaphore: asyncio.Semaphore, deactivate_first: bool,
    emit: Callable[[ItemResult], None],
) -> None:
    async with semaphore:
        started = time.monotonic()
        try:
            result = await _apply_one(hook, item, deactivate_first)
        except BolnaAuthError as exc:
            emit(ItemResult(item, "failed", trunk_id=item.trunk_id, error=_reason(exc, item)))
            raise
        except BolnaError as exc:
            result = ItemResult(item, "failed", trunk_id=item.trunk_id, error=_reason(exc, item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("Unexpected error provisioning customer %s", item.key)
            result = ItemResult(item, "failed", trunk_id=item.trunk_id, error=_reason(exc, item))
        result.seconds = time.monotonic() - started
        emit(result)


async def _apply_one(hook: Any, item: PlanItem, deactivate_first: bool) -> ItemResult:
    if item.action is Action.DEPROVISION:
        assert item.trunk_id is not None
        await hook.adelete_trunk(item.trunk_id, missing_ok=True, deactivate_first=deactivate_first)
        return ItemResult(item, "deprovisioned", trunk_id=item.trunk_id)
    spec = item.customer.spec
    assert spec is not None
    if item.action is Action.CREATE:
        return await _create(hook, item)
    trunk_id = item.trunk_id
    assert trunk_id is not None and item.existing is not None
    removed: list[str] = []
    for number in item.remove_numbers:
        await hook.aremove_number(trunk_id, number.id, missing_ok=True)
        removed.append(number.phone_number)
    patched: list[str] = []
    if item.patch is not None:
        await hook.aupdate_trunk(trunk_id, item.patch)
        patched = item.patch.fields
    added: list[str] = []
    wanted = {n.phone_number: n for n in spec.phone_numbers}
    for phone in item.add_numbers:
        outcome = await hook.aensure_number(trunk_id, wanted[phone], known_numbers=item.existing.active_numbers)
        if outcome.action == "created":
            added.append(phone)
    return ItemResult(item, "updated", trunk_id=trunk_id, patched_fields=patched, numbers_added=added,
                      numbers_removed=removed)


async def _create(hook: Any, item: PlanItem) -> ItemResult:
    spec = item.customer.spec
    assert spec is not None
    result = await hook.aensure_trunk(spec, if_exists="update", existing=None)
    trunk = result.trunk
    if result.action == "created":
        return ItemResult(item, "created", trunk_id=trunk.id, numbers_added=list(result.numbers_added))
    # The name was taken after our list call (another run, a person): the hook adopted it and
    # patched its drift; finish the job by removing numbers the spec does not list.
    wanted = {n.key for n in spec.phone_numbers}
    removed = []
    for number in trunk.active_numbers:
        if number.key not in wanted:
            await hook.aremove_number(trunk.id, number.id, missing_ok=True)
            removed.append(number.phone_number)
    outcome = "updated" if (result.action == "updated" or removed) else "adopted"
    return ItemResult(item, outcome, trunk_id=trunk.id, patched_fields=list(result.patched_fields),
                      numbers_added=list(result.numbers_added), numbers_removed=removed)


def _reason(exc: BaseException, item: PlanItem) -> str:
    """``customer <id>: <error>`` with the customer's password redacted (belt and braces)."""
    text = str(exc) if isinstance(exc, BolnaError) else f"{type(exc).__name__}: {exc}"
    spec = item.customer.spec
    if spec is not None and spec.auth_password is not None:
        secret = spec.auth_password.get_secret_value()
        if secret:
            text = text.replace(secret, "***")
    return f"customer {item.key}: {text}"


def count_outcomes(results: Iterable[ItemResult]) -> dict[str, int]:
    """Customers per outcome, every outcome present."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts
