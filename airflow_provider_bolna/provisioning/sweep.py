"""Customers gone from the source: recorded by this scope, no longer returned by the query.

Churned customers (``status = 'churned'``) are deleted by their batch; this sweep handles rows
deleted from the source. The run's plan (:func:`~.run.plan_run`) lists the gone keys within the
run's deletion budget; the sweep checks each again (still recorded by this scope, still absent
from the query), takes its writer lease and deprovisions it (deactivate, then delete).

Called without a list of keys, the sweep finds the gone customers itself and applies the same
budget: more than the budget allows → :class:`GoneLimitExceeded` and nothing is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.provisioning.apply import abatch_hook, aclose_batch_hook
from airflow_provider_bolna.provisioning.leases import LeaseSet, new_holder
from airflow_provider_bolna.provisioning.listing import lookup_trunks
from airflow_provider_bolna.provisioning.mapping import MappedCustomer, customer_key
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.plan_items import Action, Plan, PlanItem
from airflow_provider_bolna.provisioning.record import apply_with_options
from airflow_provider_bolna.provisioning.results import OUTCOMES
from airflow_provider_bolna.provisioning.run import DeletionBudget
from airflow_provider_bolna.provisioning.source import CustomerSource
from airflow_provider_bolna.provisioning.state import StateStore
from airflow_provider_bolna.provisioning.state_schema import StateRow
from airflow_provider_bolna.provisioning.summary import BatchSummary, RequestCounter, batch_summary

__all__ = ["GoneLimitExceeded", "adeprovision_gone", "deprovision_gone"]

log = logging.getLogger(__name__)


class GoneLimitExceeded(RuntimeError):
    """More customers vanished from the source than the deletion budget allows (nothing deleted)."""


def deprovision_gone(customers_conn: Any, query: str, **kwargs: Any) -> BatchSummary:
    """Delete the trunks of customers recorded by this scope but gone from the source.

    Sync wrapper of :func:`adeprovision_gone`, whose keyword arguments it takes (``keys``,
    ``bolna_conn_id``, ``state_conn``, ``options``, ``hook``).
    """
    return asyncio.run(adeprovision_gone(customers_conn, query, **kwargs))


async def adeprovision_gone(
    customers_conn: Any,
    query: str,
    *,
    keys: Sequence[str] | None = None,
    bolna_conn_id: str = DEFAULT_CONN_ID,
    state_conn: Any = None,
    options: ProvisionOptions | None = None,
    hook: Any = None,
) -> BatchSummary:
    """Deprovision the gone customers: ``keys`` (the run's plan) or, without it, all of them
    within the deletion budget.

    :param keys: the gone keys (text) the run's plan allows; each is checked again.
    :raises GoneLimitExceeded: without ``keys``, when more are gone than the budget allows.
    """
    options = options or ProvisionOptions(deprovision=True)
    started = time.monotonic()
    store = StateStore.for_run(state_conn if state_conn is not None else customers_conn, options)
    source = CustomerSource(customers_conn, query, statement_timeout=options.statement_timeout_seconds)
    own_hook = hook is None
    counter = RequestCounter()
    descriptor: dict[str, Any] = {"sweep": "gone"}
    leases = LeaseSet(store, new_holder(options.run_id))
    results: list[Any] = []
    looked_up = 0
    try:
        if not store.exists():
            return BatchSummary(descriptor, dict.fromkeys(OUTCOMES, 0), dry_run=options.dry_run)
        gone = _recheck(source, store, keys) if keys is not None else _find_gone(source, store, options)
        if gone and not options.dry_run:
            busy = leases.acquire([g.trunk_name for g in gone], wait=options.lock_wait_seconds)
            gone = [g for g in gone if g.trunk_name not in busy]
        if not gone:
            return BatchSummary(
                descriptor,
                dict.fromkeys(OUTCOMES, 0),
                dry_run=options.dry_run,
                seconds=round(time.monotonic() - started, 3),
            )
        hook = hook or await abatch_hook(
            bolna_conn_id, options, state_conn=state_conn if state_conn is not None else customers_conn
        )
        await counter.attach(hook)
        missing = [g.trunk_name for g in gone if g.trunk_id is None]
        actual = await lookup_trunks(hook, missing) if missing else None
        looked_up = len(missing)
        items = []
        for row in gone:
            customer = MappedCustomer(row.customer_id, row.trunk_name, "churned")
            found = actual.get(row.trunk_name) if actual is not None else None
            trunk_id = row.trunk_id or (found.id if found is not None else None)
            items.append(
                PlanItem(customer, Action.DEPROVISION, trunk_id=trunk_id, reason="gone from the source")
            )
        plan = Plan(items, looked_up=looked_up)
        log.info("%d customer(s) are gone from the source:\n%s", len(items), plan.table())
        if options.dry_run:
            return BatchSummary(
                descriptor,
                plan.counts(),
                requests=counter.snapshot(),
                dry_run=True,
                plan=plan.table(),
                seconds=round(time.monotonic() - started, 3),
            )
        results = await apply_with_options(hook, plan, store, options, leases.check)
    finally:
        leases.release()
        source.close()
        store.close()
        if own_hook and hook is not None:
            await aclose_batch_hook(hook)
    return batch_summary(descriptor, results, counter, looked_up, started, options.max_failed_rows)


def _recheck(source: CustomerSource, store: StateStore, keys: Sequence[str]) -> list[StateRow]:
    """The planned gone keys that are still recorded (live) and still absent from the source."""
    rows = [r for r in store.get_many(keys).values() if r.live]
    present = _present(source, rows)
    return [r for r in rows if r.customer_id not in present]


def _present(source: CustomerSource, rows: list[StateRow]) -> set[str]:
    """Which of these recorded customers the source still returns (text keys)."""
    sample = source.key_sample()
    as_int = isinstance(sample, (int, Decimal)) and not isinstance(sample, bool)
    keys: list[Any] = []
    for row in rows:
        if as_int:
            try:
                keys.append(int(row.customer_id))
            except ValueError:
                continue  # a text key cannot be in an integer-keyed source: gone
        else:
            keys.append(row.customer_id)
    found = source.rows_for_keys(keys, columns="key") if keys else []
    return {customer_key(r[source.key_column]) for r in found}


def _find_gone(source: CustomerSource, store: StateStore, options: ProvisionOptions) -> list[StateRow]:
    gone: list[StateRow] = []
    for rows in store.iter_live(options.page_size):
        present = _present(source, rows)
        gone += [row for row in rows if row.customer_id not in present]
    budget = DeletionBudget(
        enabled=True,
        scope=options.scope,
        gone=len(gone),
        recorded=store.recorded_trunks(),
        max_deletes=options.max_deletes,
        max_delete_fraction=options.max_delete_fraction,
        confirmed=options.confirm_deletes,
    )
    budget.limit = options.delete_limit(budget.recorded)
    if budget.withheld:
        raise GoneLimitExceeded(budget.message())
    return gone
