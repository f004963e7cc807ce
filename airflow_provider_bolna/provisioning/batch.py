"""One batch, end to end: read → map → lease → plan → apply → record.

A batch is a key range of the customer query (``{"first", "last"}`` from
:func:`~.run.plan_run`) or a list of keys (``{"keys": [...]}``, the sign-up path). Its
descriptor may carry ``deletes`` (the keys it may deprovision: the run's deletion plan, within
budget) and ``duplicates`` (keys the source repeats: those rows fail, nothing is applied).

Order matters for safety:

1. rows are read and mapped; passwords are masked as they are read;
2. the state of the batch's customers is read (this scope only) and a first plan made without
   the API;
3. the customers that need a request (or a look-up) get their writer leases; those another run
   holds are left to it (``busy``); the state of the leased ones is read again — a concurrent
   writer may just have finished them — and re-planned;
4. one account listing (by name and by recorded id) if anything needs a look; trunks another
   scope recorded are refused;
5. creates are marked ``pending``, the plan applied, every result recorded as it lands; the
   leases are released only once the results are written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.models import FieldError, SpecError
from airflow_provider_bolna.provisioning.apply import abatch_hook, aclose_batch_hook
from airflow_provider_bolna.provisioning.bindings import OUTBOUND_PROVIDER
from airflow_provider_bolna.provisioning.leases import LeaseSet, new_holder
from airflow_provider_bolna.provisioning.listing import Listing, lookup_trunks
from airflow_provider_bolna.provisioning.mapping import MappedCustomer, RowMapper, shown_key
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.plan import Draft, Planner, hmac_key_for
from airflow_provider_bolna.provisioning.record import apply_with_options, mark_pending
from airflow_provider_bolna.provisioning.results import ItemResult
from airflow_provider_bolna.provisioning.source import CustomerSource
from airflow_provider_bolna.provisioning.state import StateStore
from airflow_provider_bolna.provisioning.summary import (
    BatchSummary,
    RequestCounter,
    batch_summary,
    fmt_counts,
)
from airflow_provider_bolna.secrets.masker import BatchSecrets

__all__ = [
    "abatch_hook",
    "aprovision_batch",
    "provision_batch",
    "provision_customers",
]  # abatch_hook: old path

log = logging.getLogger(__name__)


def provision_batch(customers_conn: Any, query: str, batch: Mapping[str, Any], **kwargs: Any) -> BatchSummary:
    """Plan, apply and record one batch: sync wrapper of :func:`aprovision_batch`, whose
    keyword arguments it takes (``bolna_conn_id``, ``state_conn``, ``options``, ``hook``,
    ``include_customers``)."""
    return asyncio.run(aprovision_batch(customers_conn, query, batch, **kwargs))


def provision_customers(
    customers_conn: Any,
    query: str,
    customer_ids: Sequence[Any],
    **kwargs: Any,
) -> BatchSummary:
    """Provision these customers only (the sign-up path): a batch of explicit keys, no deletes."""
    return provision_batch(customers_conn, query, {"keys": list(customer_ids)}, **kwargs)


async def aprovision_batch(
    customers_conn: Any,
    query: str,
    batch: Mapping[str, Any],
    *,
    bolna_conn_id: str = DEFAULT_CONN_ID,
    state_conn: Any = None,
    options: ProvisionOptions | None = None,
    hook: Any = None,
    include_customers: bool = False,
) -> BatchSummary:
    """Plan, apply and record one batch.

    :param customers_conn: connection id or ``DbApiHook`` of the customer database.
    :param query: the customer query (rendered), columns per :mod:`.mapping`.
    :param batch: ``{"first", "last"[, "deletes", "duplicates"]}`` (inclusive key range; either
        may be ``None``) or ``{"keys": [...]}``.
    :param bolna_conn_id: the Bolna connection.
    :param state_conn: where the state table lives (default: the customer database).
    :param options: see :class:`~.settings.ProvisionOptions`.
    :param hook: a ready :class:`BolnaHook` (tests); default: one new hook for this batch.
    :param include_customers: list every customer's result in the summary (small batches only).
    """
    options = options or ProvisionOptions()
    started = time.monotonic()
    descriptor = _describe(batch)
    own_hook = hook is None
    hook = hook or await abatch_hook(
        bolna_conn_id,
        options,
        batches=batch.get("of"),
        state_conn=state_conn if state_conn is not None else customers_conn,
    )
    counter = RequestCounter()
    source = CustomerSource(customers_conn, query, statement_timeout=options.statement_timeout_seconds)
    store = StateStore.for_run(state_conn if state_conn is not None else customers_conn, options)
    secrets = BatchSecrets()
    leases = LeaseSet(store, new_holder(options.run_id))
    try:
        has_state = store.prepare(options.dry_run)
        customers = _read_customers(source, batch, options, secrets)
        api_key = (await hook.aget_settings()).api_key.get_secret_value()
        planner = Planner(
            store.fingerprint_key(create=not options.dry_run),
            legacy_keys=[hmac_key_for(api_key)],
            deletes=batch.get("deletes") if options.deprovision else None,
            drift_check=options.drift_check,
            remove_extra_numbers=options.remove_extra_numbers,
            look_before_create=options.look_before_create or options.dry_run,
            verify_before=_verify_before(options),
            adopt_existing=options.adopt_existing,
            skip_reason=_skip_reason(options, batch),
            switched=_switched(store, customers) if has_state else (),
        )
        drafts = planner.prepare(customers, store.get_many(c.key for c in customers) if has_state else {})
        if not options.dry_run:
            drafts = _lease(drafts, planner, store, leases, options)
        names, ids = planner.lookup_names(drafts), planner.lookup_ids(drafts)
        await counter.attach(hook)
        actual = await lookup_trunks(hook, names, ids) if names else None
        owners = store.owners(names=_writes(drafts), trunk_ids=_ids(drafts, actual)) if has_state else {}
        plan = planner.finish(
            drafts, actual.by_name if actual else None, by_id=actual.by_id if actual else None, owners=owners
        )
        log.info(
            "Batch %s: %d customers, %d looked up; plan: %s",
            descriptor,
            len(customers),
            len(names),
            fmt_counts(plan.counts()),
        )
        if options.dry_run:
            table = plan.table()
            log.info("Plan of batch %s (dry run):\n%s", descriptor, table)
            return BatchSummary(
                descriptor,
                plan.counts(),
                requests=counter.snapshot(),
                looked_up=plan.looked_up,
                seconds=time.monotonic() - started,
                dry_run=True,
                plan=table,
            )
        mark_pending(store, plan)
        results = await apply_with_options(hook, plan, store, options, leases.check)
    finally:
        leases.release()  # after the writer has recorded every result
        source.close()
        store.close()
        if own_hook:
            await aclose_batch_hook(hook)
        secrets.release()  # a process running many batches must not carry every password
    summary = batch_summary(descriptor, results, counter, plan.looked_up, started, options.max_failed_rows)
    if include_customers:
        summary.customers = [_customer_result(r) for r in results]
    return summary


def _switched(store: StateStore, customers: Iterable[MappedCustomer]) -> set[str]:
    """The customers' outbound agents this scope already switched to the SIP trunk."""
    outbound = {a for c in customers for a in c.outbound_agents}
    return (
        {a for a, p in store.agent_providers(outbound).items() if p == OUTBOUND_PROVIDER}
        if outbound
        else set()
    )


def _lease(
    drafts: list[Draft], planner: Planner, store: StateStore, leases: LeaseSet, options: ProvisionOptions
) -> list[Draft]:
    """Take the writer leases of every customer that needs a request (and of every outbound
    agent to switch: once per run, whichever batch gets there first); re-plan the leased ones
    from fresh state, and leave the ones another run holds to it."""
    writing = {d.customer.trunk_name for d in drafts if _needs_writer(d)}
    agents = {a for d in drafts if _needs_writer(d) for a in d.customer.outbound_agents} - planner.switched
    if not writing:
        return drafts
    busy_agents = leases.acquire([f"agent:{a}" for a in sorted(agents)])  # no wait: see below
    # an agent another batch is switching right now counts as switched (if it fails, the next
    # run sees the agent unswitched and sends it then)
    planner.switched |= {a for a in agents if f"agent:{a}" in busy_agents}
    planner.switched |= _switched(store, [d.customer for d in drafts])
    busy = leases.acquire(writing, wait=options.lock_wait_seconds)
    fresh = store.get_many(d.customer.key for d in drafts if d.customer.trunk_name in writing)
    out = []
    for draft in drafts:
        name = draft.customer.trunk_name
        if name not in writing:
            out.append(draft)
        elif name in busy:
            planner.busy(draft)
            out.append(draft)
        else:
            out.append(planner.prepare([draft.customer], fresh)[0])
    return out


def _needs_writer(draft: Draft) -> bool:
    return draft.needs_lookup or (draft.decided is not None and draft.decided.needs_api)


def _writes(drafts: Iterable[Draft]) -> list[str]:
    """Names the plan may create or adopt (their owners are checked)."""
    return [
        d.customer.trunk_name
        for d in drafts
        if d.customer.valid and (d.needs_lookup or (d.decided is not None and d.decided.needs_api))
    ]


def _ids(drafts: Iterable[Draft], actual: Listing | None) -> list[str]:
    ids = [d.state.trunk_id for d in drafts if d.needs_lookup and d.state is not None and d.state.trunk_id]
    if actual is not None:
        ids += [t.id for t in actual.by_name.values()] + list(actual.by_id)
    return ids


def _verify_before(options: ProvisionOptions) -> datetime | None:
    if options.verify_interval is None:
        return None
    return datetime.now(timezone.utc) - options.verify_interval


def _skip_reason(options: ProvisionOptions, batch: Mapping[str, Any]) -> str:
    if not options.deprovision:
        return "churned; deprovision is off"
    if batch.get("deletes_withheld"):
        return "churned; the run's deletes are withheld (over the deletion budget): nothing deleted"
    return "churned; not among the run's planned deletes (plan the run with plan_run)"


def _read_customers(
    source: CustomerSource, batch: Mapping[str, Any], options: ProvisionOptions, secrets: BatchSecrets
) -> list[MappedCustomer]:
    """Read and map the batch's rows page by page, masking passwords as they are read.

    Rows whose key the source repeats (found by the run's key pass, or here) fail, all of them:
    which row's settings to apply cannot be told.
    """
    mapper = RowMapper(options.name_template, password_refs=options.password_refs)
    customers: list[MappedCustomer] = []
    if "keys" in batch:
        keys = list(dict.fromkeys(batch["keys"]))
        pages: Iterable[list[dict[str, Any]]] = (
            source.rows_for_keys(keys[i : i + options.page_size])
            for i in range(0, len(keys), options.page_size)
        )
    else:
        pages = source.iter_pages(options.page_size, first=batch.get("first"), last=batch.get("last"))
    for rows in pages:
        for row in rows:
            customers.append(mapper.map_row(row))
        secrets.add(mapper.secrets)
        mapper.secrets.clear()
    counts = Counter(c.key for c in customers)
    repeated = {str(k) for k in batch.get("duplicates") or ()} | {k for k, n in counts.items() if n > 1}
    return [_duplicate(c, counts[c.key]) if c.key in repeated else c for c in customers]


def _duplicate(customer: MappedCustomer, seen: int) -> MappedCustomer:
    times = f"{seen} times" if seen > 1 else "more than once"
    error = SpecError(
        [
            FieldError(
                field="customer_id",
                message=f"appears {times} in the customer query; keys "
                "must be unique (nothing was applied for this key)",
            )
        ],
        f"customer {shown_key(customer.key)}",
    )
    return MappedCustomer(
        customer.customer_id, customer.trunk_name, customer.status, error=str(error), fields=("customer_id",)
    )


def _customer_result(result: ItemResult) -> dict[str, Any]:
    spec = result.item.customer.spec
    return {
        "customer_id": result.item.customer_id,
        "trunk_name": result.item.trunk_name,
        "trunk_id": result.trunk_id,
        "outcome": result.outcome,
        "numbers": [n.phone_number for n in spec.phone_numbers] if spec is not None else [],
        "agents": (
            {
                n.phone_number: result.item.customer.agents[n.key]
                for n in spec.phone_numbers
                if n.key in result.item.customer.agents
            }
            if spec is not None
            else {}
        ),
    }


def _describe(batch: Mapping[str, Any]) -> dict[str, Any]:
    if "keys" in batch:
        return {"keys": len(batch["keys"]), "index": batch.get("index")}
    return {k: batch.get(k) for k in ("index", "first", "last", "count")}
