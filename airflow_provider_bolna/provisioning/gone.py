"""Customers gone from the source: recorded in the state table, no longer returned by the query.

Churned customers (``status = 'churned'``) are handled by their own batch; this sweep handles
rows deleted from the source. It walks the state table in keyset pages, asks the query which
of those customers still exist, and deprovisions (deactivate, then delete) the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from airflow_provider_bolna.provisioning.apply import OUTCOMES
from airflow_provider_bolna.provisioning.engine import (
    DEFAULT_BOLNA_CONN_ID,
    ProvisionOptions,
    abatch_hook,
    apply_and_record,
    lookup_trunks,
)
from airflow_provider_bolna.provisioning.mapping import MappedCustomer, customer_key
from airflow_provider_bolna.provisioning.plan import Action, Plan, PlanItem
from airflow_provider_bolna.provisioning.source import CustomerSource
from airflow_provider_bolna.provisioning.state import StateRow, StateStore
from airflow_provider_bolna.provisioning.summary import BatchSummary, RequestCounter, batch_summary

__all__ = ["GoneLimitExceeded", "adeprovision_gone", "deprovision_gone"]

log = logging.getLogger(__name__)


class GoneLimitExceeded(RuntimeError):
    """More customers vanished from the source than ``max_deprovision`` allows (nothing deleted)."""


def deprovision_gone(
    customers_conn: Any,
    query: str,
    *,
    bolna_conn_id: str = DEFAULT_BOLNA_CONN_ID,
    state_conn: Any = None,
    options: ProvisionOptions | None = None,
    hook: Any = None,
) -> BatchSummary:
    """Delete the trunks of customers recorded in the state table but gone from the source.

    Sync wrapper of :func:`adeprovision_gone`.
    """
    return asyncio.run(
        adeprovision_gone(customers_conn, query, bolna_conn_id=bolna_conn_id, state_conn=state_conn,
                          options=options, hook=hook)
    )


async def adeprovision_gone(
    customers_conn: Any,
    query: str,
    *,
    bolna_conn_id: str = DEFAULT_BOLNA_CONN_ID,
    state_conn: Any = None,
    options: ProvisionOptions | None = None,
    hook: Any = None,
) -> BatchSummary:
    """Sweep the state table (keyset pages) for customers the source no longer returns.

    Churned customers are handled by their batch; this handles rows deleted from the source.
    Nothing is deleted when more than ``options.max_deprovision`` customers are gone (a wrong
    query must not wipe an account): :class:`GoneLimitExceeded` is raised instead.

    :raises GoneLimitExceeded: too many customers are gone.
    """
    options = options or ProvisionOptions(deprovision=True)
    started = time.monotonic()
    store = StateStore(state_conn if state_conn is not None else customers_conn, options.state_table)
    source = CustomerSource(customers_conn, query)
    own_hook = hook is None
    counter = RequestCounter()
    descriptor: dict[str, Any] = {"sweep": "gone"}
    try:
        if not store.exists():
            return BatchSummary(descriptor, dict.fromkeys(OUTCOMES, 0), dry_run=options.dry_run)
        gone = _find_gone(source, store, options)
        if not gone:
            return BatchSummary(descriptor, dict.fromkeys(OUTCOMES, 0), dry_run=options.dry_run,
                                seconds=round(time.monotonic() - started, 3))
        hook = hook or await abatch_hook(bolna_conn_id, options)
        await counter.attach(hook)
        missing_ids = [g.trunk_name for g in gone if g.trunk_id is None]
        actual = await lookup_trunks(hook, missing_ids) if missing_ids else {}
        items = []
        for row in gone:
            customer = MappedCustomer(row.customer_id, row.trunk_name, "churned")
            trunk_id = row.trunk_id or (actual[row.trunk_name].id if row.trunk_name in actual else None)
            items.append(PlanItem(customer, Action.DEPROVISION, trunk_id=trunk_id, reason="gone from the source"))
        plan = Plan(items, looked_up=len(missing_ids))
        log.info("%d customer(s) are gone from the source:\n%s", len(items), plan.table())
        if options.dry_run:
            return BatchSummary(descriptor, plan.counts(), requests=counter.snapshot(), dry_run=True,
                                plan=plan.table(), seconds=round(time.monotonic() - started, 3))
        results = await apply_and_record(hook, plan, store, options)
    finally:
        source.close()
        store.close()
        if own_hook and hook is not None:
            await hook.aclose()
    return batch_summary(descriptor, results, counter, len(missing_ids), started, options.max_failed_rows)


def _find_gone(source: CustomerSource, store: StateStore, options: ProvisionOptions) -> list[StateRow]:
    sample = source.key_sample()
    as_int = isinstance(sample, (int, Decimal)) and not isinstance(sample, bool)
    gone = []
    for rows in store.iter_live(options.page_size):
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
        present = {customer_key(r[source.key_column]) for r in found}
        gone += [row for row in rows if row.customer_id not in present]
        if options.max_deprovision and len(gone) > options.max_deprovision:
            raise GoneLimitExceeded(
                f"more than {options.max_deprovision} recorded customers are gone from the source query; "
                "nothing was deleted. Check the query, or raise max_deprovision (0 = no limit)."
            )
    return gone


