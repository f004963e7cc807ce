"""Apply a plan on the async hook: bounded concurrency, one rate budget, results as they land.

* One :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook` per batch: its token bucket is
  shared by every in-flight request of the batch (first attempts and retries).
* :class:`~airflow_provider_bolna.concurrency.AdaptiveConcurrency` bounds in-flight customers
  (``concurrency`` at first, then the budget's rate × the measured latency); the first customer of each
  phase goes alone, so that a refused key or a wrong URL costs one request.
* Deprovisions run first (they free numbers that other customers may take), then the rest.
* Creates send the numbers inline (one request per customer) through ``aensure_trunk`` with
  ``existing=None`` (the name is free as far as the plan knows), so an ambiguous failure
  (timeout, dropped connection, 5xx) is resolved by the hook's look-then-adopt logic, never by
  a blind second POST, and a name the API says is taken is adopted.
* Once one create of a batch finds its name taken, the account probably holds more of the
  batch's names (trunks made by hand, or before the state table existed): :class:`TakenNames`
  then lists the account once, and the creates not yet sent adopt what it shows instead of
  each POSTing into a refusal and listing the account on its own.
* Every result is handed to ``on_result`` as soon as it is known (the state writer).
* A failure is a result (``failed`` with a secret-free reason), except an authentication
  failure, which stops the batch: every other request would fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bolna.concurrency import AdaptiveConcurrency
from airflow_provider_bolna.exceptions import BolnaAuthError, BolnaError
from airflow_provider_bolna.models import SIPTrunk
from airflow_provider_bolna.provisioning.plan import Action, Plan, PlanItem
from airflow_provider_bolna.provisioning.state import StateRecord

__all__ = ["OUTCOMES", "ItemResult", "Outcome", "TakenNames", "apply_plan", "lookup_trunks"]

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


async def lookup_trunks(hook: Any, names: Sequence[str]) -> dict[str, SIPTrunk]:
    """One list call; the oldest trunk wins when a name is taken twice."""
    trunks = await hook.alist_trunks(names=names)
    actual: dict[str, SIPTrunk] = {}
    for trunk in trunks:
        if trunk.name in actual:
            log.warning("Two trunks are named %s (%s, %s); using the oldest", trunk.name, actual[trunk.name].id, trunk.id)
            continue
        actual[trunk.name or ""] = trunk
    return actual


class TakenNames:
    """One account listing, taken on demand, shared by the creates of a batch.

    Until :meth:`noticed` is called, :meth:`existing` answers ``None`` at once (create). After,
    it waits for a single list call of the batch's create names and answers from it. A failed
    listing is logged and ignored (the creates fall back on the hook's own conflict handling),
    except a refused key, which stops the batch.

    :param hook: the batch's hook.
    :param names: the trunk names the batch creates.
    """

    def __init__(self, hook: Any, names: Sequence[str]) -> None:
        self._hook = hook
        self._names = list(names)
        self._listing: asyncio.Future[dict[str, SIPTrunk]] | None = None

    def noticed(self) -> None:
        """A create found its name taken: list the account (once) for the others."""
        if self._listing is None:
            log.info("A trunk name of this batch was already taken; listing the account once for the other %d",
                     len(self._names))
            self._listing = asyncio.ensure_future(lookup_trunks(self._hook, self._names))

    async def existing(self, name: str) -> SIPTrunk | None:
        """The trunk holding ``name`` per the listing, or ``None`` (absent, or no listing)."""
        if self._listing is None:
            return None
        try:
            actual = await asyncio.shield(self._listing)
        except BolnaAuthError:
            raise
        except BolnaError as exc:
            log.warning("Listing the account failed (%s); creating without it", exc)
            return None
        return actual.get(name)

    async def aclose(self) -> None:
        """Collect the listing (so that no task is left pending)."""
        if self._listing is not None and not self._listing.done():
            self._listing.cancel()
        if self._listing is not None:
            await asyncio.gather(self._listing, return_exceptions=True)


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
    # in flight: Little's law on the budget's rate; `concurrency` until latency is measured
    semaphore = AdaptiveConcurrency(lambda: getattr(hook.limiter, "rate", None), initial=concurrency,
                                    cap=max(64, concurrency))
    deprovisions = [i for i in plan.items if i.needs_api and i.action is Action.DEPROVISION]
    others = [i for i in plan.items if i.needs_api and i.action is not Action.DEPROVISION]
    taken = TakenNames(hook, [i.trunk_name for i in others if i.action is Action.CREATE])
    try:
        for phase in (deprovisions, others):
            # the first item of a phase goes alone: a refused key costs one request, not
            # `concurrency` of them (the plan needs no request when nothing is looked up)
            for wave in (phase[:1], phase[1:]):
                if not wave:
                    continue
                try:
                    async with asyncio.TaskGroup() as group:
                        for item in wave:
                            group.create_task(_guarded(hook, item, semaphore, deactivate_first, emit, taken))
                except* BolnaAuthError as refused:
                    raise refused.exceptions[0] from None  # every other request would be refused the same way
    finally:
        await taken.aclose()
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
    hook: Any, item: PlanItem, semaphore: AdaptiveConcurrency, deactivate_first: bool,
    emit: Callable[[ItemResult], None], taken: TakenNames,
) -> None:
    async with semaphore:
        started = time.monotonic()
        try:
            result = await _apply_one(hook, item, deactivate_first, taken)
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


async def _apply_one(hook: Any, item: PlanItem, deactivate_first: bool, taken: TakenNames) -> ItemResult:
    if item.action is Action.DEPROVISION:
        assert item.trunk_id is not None
        await hook.adelete_trunk(item.trunk_id, missing_ok=True, deactivate_first=deactivate_first)
        return ItemResult(item, "deprovisioned", trunk_id=item.trunk_id)
    spec = item.customer.spec
    assert spec is not None
    if item.action is Action.CREATE:
        return await _create(hook, item, taken)
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


async def _create(hook: Any, item: PlanItem, taken: TakenNames) -> ItemResult:
    spec = item.customer.spec
    assert spec is not None
    existing = await taken.existing(item.trunk_name)
    result = await hook.aensure_trunk(spec, if_exists="update", existing=existing)
    trunk = result.trunk
    if result.action == "created":
        return ItemResult(item, "created", trunk_id=trunk.id, numbers_added=list(result.numbers_added))
    taken.noticed()
    # The name was taken (by a person, another tool or run): the hook adopted the trunk and
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
