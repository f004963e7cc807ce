"""Apply a plan on the async hook: bounded concurrency, one rate budget, results as they land.

* One :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook` per batch, paced by the account's
  budget shared through the state DB (:func:`abatch_hook`): every request, first attempts and
  retries, of every batch and sign-up run on any machine.
* :class:`~airflow_provider_bolna.concurrency.AdaptiveConcurrency` bounds in-flight customers
  (``concurrency`` at first, then the budget's rate × the measured latency, Little's law); the
  first customer of each phase goes alone, so that a refused key or a wrong URL costs one request.
* Deprovisions run first (they free numbers that other customers may take), then the rest.
* Creates send the numbers inline (one request per customer) through ``aensure_trunk`` with
  ``existing=None`` (the name is free as far as the plan knows), so an ambiguous failure
  (timeout, dropped connection, 5xx) is resolved by the hook's look-then-adopt logic, never by
  a blind second POST, and a name the API says is taken is adopted.
* One :class:`~.listing.AccountListing` per batch serves every look-up the creates need (a
  name found taken, the hook's recovery after an ambiguous failure): one listing, not one each.
* Every result is handed to ``on_result`` as soon as it is known (the state writer).
* A failure is a result (``failed`` with a secret-free reason), except an authentication
  failure, which stops the batch (every other request would fail the same way), and a lost
  writer lease (``guard`` raises), after which no write may be sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_bolna.concurrency import AdaptiveConcurrency, gather_or_cancel
from airflow_provider_bolna.exceptions import BolnaAuthError, BolnaError
from airflow_provider_bolna.provisioning.binder import Binder, known_number_ids
from airflow_provider_bolna.provisioning.leases import LeaseLost
from airflow_provider_bolna.provisioning.listing import AccountListing, Listing, lookup_trunks
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.plan_items import Action, Plan, PlanItem
from airflow_provider_bolna.provisioning.results import OUTCOMES, ItemResult, count_outcomes

# the listing's names stay importable from here, their old home
__all__ = [
    "OUTCOMES",
    "AccountListing",
    "ItemResult",
    "Listing",
    "abatch_hook",
    "aclose_batch_hook",
    "apply_plan",
    "count_outcomes",
    "lookup_trunks",
]

log = logging.getLogger(__name__)

#: most customers in flight when the number follows latency
ADAPTIVE_CAP = 64
#: failures after which no request of the batch may be sent
_STOPPERS = (BolnaAuthError, LeaseLost)


async def abatch_hook(
    bolna_conn_id: str, options: ProvisionOptions, batches: int | None = None, state_conn: Any = None
) -> Any:
    """One hook per batch, paced by the account's budget.

    * with a state DB: every batch, sign-up run and worker of any machine using this Bolna
      connection draws from one :class:`~.budget.RateBudget` there — work-conserving, never above
      its limit: ``options.requests_per_minute`` (the deployment's own limit) or else the
      connection's ``requests_per_minute`` (Bolna's 1,000 by default);
    * else: that limit shared out over ``min(parallel_batches, batches)``;
    * a limit of ``0``: no client-side limit.

    :param bolna_conn_id: the Bolna connection.
    :param options: ``requests_per_minute`` (override), ``parallel_batches``, ``state_table``.
    :param batches: how many batches the run has.
    :param state_conn: the state DB (``None``: no shared budget).
    """
    from airflow_provider_bolna.hooks.bolna import BolnaHook
    from airflow_provider_bolna.provisioning.budget import connection_budgets
    from airflow_provider_bolna.provisioning.budget_table import budget_table_beside

    settings = await BolnaHook(bolna_conn_id).aget_settings()
    if options.requests_per_minute is not None:  # the deployment's limit, still shared by its batches
        settings = dataclasses.replace(settings, requests_per_minute=options.requests_per_minute)
    budget = settings.requests_per_minute
    if budget and state_conn is not None:
        log.info("Shared rate budget: %s requests/minute for %s", budget, bolna_conn_id)
        shared = connection_budgets(
            state_conn, bolna_conn_id, settings, table=budget_table_beside(options.state_table)
        )
        # the SIP-trunk calls and the agent endpoint each draw from their own shared budget
        return BolnaHook(bolna_conn_id, limiter=shared["default"], agent_limiter=shared["agent"])
    sharing = min(options.parallel_batches, batches) if batches else options.parallel_batches
    rpm = budget / max(1, sharing) if budget else 0.0
    agent_rpm = (
        settings.agent_requests_per_minute / max(1, sharing) if settings.agent_requests_per_minute else 0.0
    )
    log.info("Batch rate budget: %s requests/minute", rpm or "unlimited")
    return BolnaHook(bolna_conn_id, requests_per_minute=rpm, agent_requests_per_minute=agent_rpm)


async def aclose_batch_hook(hook: Any) -> None:
    """Close a batch's hook; shared budgets give their unused slots back to the other claimants."""
    from airflow_provider_bolna.hooks.base import AGENT_BUDGET, DEFAULT_BUDGET

    await hook.aclose()
    for name in (DEFAULT_BUDGET, AGENT_BUDGET):
        close = getattr(hook.limiter_for(name), "aclose", None)
        if close is not None:
            await close()


async def apply_plan(
    hook: Any,
    plan: Plan,
    *,
    concurrency: int | None = None,
    deactivate_first: bool = True,
    remove_extra_numbers: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
    guard: Callable[[], None] | None = None,
    record_switch: Callable[[str], None] | None = None,
) -> list[ItemResult]:
    """Carry out ``plan`` with ``hook`` (a :class:`BolnaHook`); return one result per item.

    :param hook: the batch's hook (its rate limiter is the batch's budget).
    :param plan: from :class:`~.plan.Planner`.
    :param concurrency: customers in flight at once; ``None``: as many as the budget's rate times
        the measured latency needs (Little's law), up to :data:`ADAPTIVE_CAP`.
    :param deactivate_first: ``PATCH is_active=false`` before deleting a trunk, as Bolna advises.
    :param remove_extra_numbers: when a create adopts a trunk that holds the name, remove the
        numbers the spec does not list (as planned updates do).
    :param on_result: called with each result as soon as it is known (in the event loop).
    :param guard: called before each customer's requests; raising stops the batch (a lost writer
        lease: no write may be sent any more).
    :param record_switch: called with each agent switched to the SIP trunk (recorded in the state
        DB so that no later batch sends it again).
    :raises BolnaAuthError: the API key was refused (the batch stops; results so far are reported).
    """
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be >= 1 (or None: sized from latency)")
    results: list[ItemResult] = []

    def emit(result: ItemResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for item in plan.items:
        if not item.needs_api:
            emit(_offline_result(item))
    # in flight: a fixed `concurrency`, or (None) Little's law on the budget's rate and the
    # measured latency, 8 until the first sample
    if concurrency is None:
        semaphore = AdaptiveConcurrency(
            lambda: getattr(hook.limiter, "rate", None), initial=8, cap=ADAPTIVE_CAP
        )
    else:
        semaphore = AdaptiveConcurrency(None, initial=concurrency, minimum=concurrency, cap=concurrency)
    deprovisions = [i for i in plan.items if i.needs_api and i.action is Action.DEPROVISION]
    others = [i for i in plan.items if i.needs_api and i.action is not Action.DEPROVISION]
    listing = AccountListing(hook, [i.trunk_name for i in others if i.action is Action.CREATE])
    apply = _Applier(
        hook, deactivate_first, remove_extra_numbers, listing, guard, Binder(hook, record_switch)
    )
    try:
        for phase in (deprovisions, others):
            # the first item of a phase goes alone: a refused key costs one request, not
            # `concurrency` of them (the plan needs no request when nothing is looked up)
            for wave in (phase[:1], phase[1:]):
                if not wave:
                    continue
                # a stopper cancels the wave: every other request would fail the same way
                await gather_or_cancel(apply.guarded(item, semaphore, emit) for item in wave)
    finally:
        await listing.aclose()
    return results


def _offline_result(item: PlanItem) -> ItemResult:
    """Results that need no request."""
    if item.action is Action.INVALID:
        return ItemResult(item, "failed", trunk_id=item.trunk_id, error=item.reason, fields=item.fields)
    if item.action is Action.ADOPT:
        return ItemResult(item, "adopted", trunk_id=item.trunk_id)
    if item.action is Action.DEPROVISION:  # trunk already gone
        return ItemResult(item, "deprovisioned", trunk_id=item.trunk_id)
    if item.action is Action.SKIP:
        return ItemResult(item, "skipped")
    if item.action is Action.BUSY:
        return ItemResult(item, "busy", error=item.reason)
    return ItemResult(item, "unchanged", trunk_id=item.trunk_id)


class _Applier:
    """Carries out plan items on the hook (one per batch)."""

    def __init__(
        self,
        hook: Any,
        deactivate_first: bool,
        remove_extra_numbers: bool,
        listing: AccountListing,
        guard: Callable[[], None] | None,
        binder: Binder,
    ) -> None:
        self.hook = hook
        self.binder = binder
        self.deactivate_first = deactivate_first
        self.remove_extra_numbers = remove_extra_numbers
        self.listing = listing
        self.guard = guard or (lambda: None)

    async def guarded(
        self, item: PlanItem, semaphore: AdaptiveConcurrency, emit: Callable[[ItemResult], None]
    ) -> None:
        async with semaphore:
            started = time.monotonic()
            try:
                self.guard()
                result = await self.apply(item)
            except _STOPPERS as exc:
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

    async def apply(self, item: PlanItem) -> ItemResult:
        if item.action is Action.DEPROVISION:
            assert item.trunk_id is not None
            unlinked = await self.binder.unlink_all(item, item.trunk_id)  # before the trunk goes
            await self.hook.adelete_trunk(
                item.trunk_id, missing_ok=True, deactivate_first=self.deactivate_first
            )
            result = ItemResult(item, "deprovisioned", trunk_id=item.trunk_id)
            result.binding_counts = {"unlinked": unlinked} if unlinked else {}
            return result
        if item.action is Action.CREATE:
            result, ids = await self.create(item)
        elif item.action is Action.UPDATE:
            result, ids = await self.update(item)
        else:  # the trunk is as it should be; only its bindings are not
            outcome = {Action.ADOPT: "adopted", Action.BIND: "updated"}.get(item.action, "unchanged")
            result = ItemResult(item, outcome, trunk_id=item.trunk_id)
            ids = known_number_ids(item.existing.active_numbers) if item.existing is not None else {}
        assert result.trunk_id is not None
        bound = await self.binder.bind(item, result.trunk_id, ids)
        result.bindings, result.binding_counts = bound.bindings, dict(bound.counts)
        return result

    async def update(self, item: PlanItem) -> tuple[ItemResult, dict[str, str | None]]:
        hook, spec, trunk_id = self.hook, item.customer.spec, item.trunk_id
        assert spec is not None and trunk_id is not None and item.existing is not None
        ids = known_number_ids(item.existing.active_numbers)
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
            outcome = await hook.aensure_number(
                trunk_id, wanted[phone], known_numbers=item.existing.active_numbers
            )
            if outcome.number is not None:
                ids[outcome.number.key] = outcome.number.id
            if outcome.action == "created":
                added.append(phone)
        return ItemResult(
            item,
            "updated",
            trunk_id=trunk_id,
            patched_fields=patched,
            numbers_added=added,
            numbers_removed=removed,
        ), ids

    async def create(self, item: PlanItem) -> tuple[ItemResult, dict[str, str | None]]:
        hook, spec = self.hook, item.customer.spec
        assert spec is not None
        existing = await self.listing.existing(item.trunk_name)
        self.listing.entered()
        try:
            result = await hook.aensure_trunk(
                spec, if_exists="update", existing=existing, finder=self.listing.find
            )
        finally:
            self.listing.left()
        trunk = result.trunk
        ids = known_number_ids(trunk.active_numbers)
        if result.action == "created":
            return ItemResult(
                item, "created", trunk_id=trunk.id, numbers_added=list(result.numbers_added)
            ), ids
        self.listing.noticed()
        # The name was taken (by a person, another tool or run): the hook adopted the trunk and
        # patched its drift; finish the job as a planned update would.
        removed = []
        if self.remove_extra_numbers:
            wanted = {n.key for n in spec.phone_numbers}
            for number in trunk.active_numbers:
                if number.key not in wanted:
                    await hook.aremove_number(trunk.id, number.id, missing_ok=True)
                    removed.append(number.phone_number)
        outcome = "updated" if (result.action == "updated" or removed) else "adopted"
        return ItemResult(
            item,
            outcome,
            trunk_id=trunk.id,
            patched_fields=list(result.patched_fields),
            numbers_added=list(result.numbers_added),
            numbers_removed=removed,
        ), ids


def _reason(exc: BaseException, item: PlanItem) -> str:
    """``customer <id>: <error>`` with the customer's password redacted (belt and braces)."""
    text = str(exc) if isinstance(exc, BolnaError) else f"{type(exc).__name__}: {exc}"
    spec = item.customer.spec
    if spec is not None and spec.auth_password is not None:
        secret = spec.auth_password.get_secret_value()
        if secret:
            text = text.replace(secret, "***")
    return f"customer {item.key}: {text}"
