"""The glue: plan batches → provision each batch (read, map, plan, apply, record).

Public API (everything takes connection ids or hooks, nothing needs an Airflow task context)::

    from airflow_provider_bolna.provisioning import (
        ProvisionOptions, deprovision_gone, format_summary, plan_batches, provision_batch, summarize)

    batches = plan_batches("bolna_customers", "SELECT * FROM customers", batch_size=500)
    summaries = [provision_batch("bolna_customers", query, b, options=ProvisionOptions()) for b in batches]
    gone = deprovision_gone("bolna_customers", query, options=ProvisionOptions(deprovision=True))
    run = summarize(summaries + [gone])
    print(format_summary(run))

(:func:`~.gone.deprovision_gone` lives in :mod:`.gone`, the summaries in :mod:`.summary`.)

Batch descriptors are key ranges (``{"index", "first", "last", "count"}``) or key lists
(``{"keys": [...]}``): customer keys only, never rows or secrets, so they can travel in XCom.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from airflow_provider_bolna.provisioning.apply import ItemResult, apply_plan, lookup_trunks
from airflow_provider_bolna.provisioning.budget import RateBudget, budget_key, budget_table_beside
from airflow_provider_bolna.provisioning.mapping import (
    DEFAULT_NAME_TEMPLATE,
    MappedCustomer,
    RowMapper,
    validate_name_template,
)
from airflow_provider_bolna.provisioning.masking import BatchSecrets
from airflow_provider_bolna.provisioning.plan import Action, Plan, Planner, hmac_key_for
from airflow_provider_bolna.provisioning.source import CustomerSource
from airflow_provider_bolna.provisioning.state import DEFAULT_STATE_TABLE, StateRecord, StateStore, StateWriter
from airflow_provider_bolna.provisioning.summary import (
    BatchSummary,
    RequestCounter,
    batch_summary,
    fmt_counts,
    format_summary,
    summarize,
)

__all__ = [
    "DEFAULT_BOLNA_CONN_ID",
    "BatchSummary",
    "ProvisionOptions",
    "aprovision_batch",
    "format_summary",
    "plan_batches",
    "provision_batch",
    "provision_customers",
    "summarize",
]

log = logging.getLogger(__name__)

DEFAULT_BOLNA_CONN_ID = "bolna_default"


@dataclass
class ProvisionOptions:
    """How a batch is provisioned.

    :param name_template: trunk name from the customer key, ``{customer_id}`` only.
    :param dry_run: plan (and print the plan) without writing anything.
    :param deprovision: delete the trunks of churned customers and of customers gone from the source.
    :param drift_check: compare with the API even when the spec hash is unchanged.
    :param look_before_create: list the account before creating trunks for customers the state
        table has never seen (one list call per batch, O(account size) each). Off by default: a
        name already taken is found when the API refuses it, and then adopted; turn it on for a
        first run on an account that already holds many of the customers' trunks.
    :param remove_extra_numbers: remove numbers on a trunk that the customer row does not list.
    :param concurrency: customers in flight at once in a batch.
    :param deactivate_first: deactivate a trunk before deleting it.
    :param requests_per_minute: this batch's request budget; ``None`` = the connection's budget
        divided by ``parallel_batches``.
    :param parallel_batches: how many batches run at once (the pool size), to share the budget.
    :param page_size: rows per keyset query.
    :param max_failed_rows: failed rows listed in a batch summary (the count is always exact).
    :param state_table: the state table (``schema.table`` allowed).
    :param max_deprovision: most customers the gone-sweep deletes in one run (safety net against
        a wrong query); ``0`` = no limit.
    """

    name_template: str = DEFAULT_NAME_TEMPLATE
    dry_run: bool = False
    deprovision: bool = False
    drift_check: bool = False
    look_before_create: bool = False
    remove_extra_numbers: bool = True
    concurrency: int = 8
    deactivate_first: bool = True
    requests_per_minute: float | None = None
    parallel_batches: int = 1
    page_size: int = 500
    max_failed_rows: int = 20
    state_table: str = DEFAULT_STATE_TABLE
    max_deprovision: int = 100

    def __post_init__(self) -> None:
        validate_name_template(self.name_template)
        for name in ("concurrency", "parallel_batches", "page_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.requests_per_minute is not None and self.requests_per_minute < 0:
            raise ValueError("requests_per_minute must be >= 0 (0 = no client-side limit)")
        if self.max_deprovision < 0:
            raise ValueError("max_deprovision must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProvisionOptions:
        """Build from a dict (DAG params), ignoring keys that are not options."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)


# ---------------------------------------------------------------------- batches


def plan_batches(
    customers_conn: Any,
    query: str,
    *,
    batch_size: int = 500,
    max_batches: int = 1000,
    key_page_size: int = 5000,
) -> list[dict[str, Any]]:
    """Cut the customer keys into contiguous key ranges of about ``batch_size`` customers.

    Keys are read in keyset pages of ``key_page_size`` (memory holds one page and the
    descriptors). When the ranges would exceed ``max_batches`` (e.g. ``max_map_length``),
    neighbours are merged pairwise, doubling the batch size, as often as needed.

    :param customers_conn: connection id or ``DbApiHook`` of the customer database.
    :param query: the customer query (rendered).
    :param batch_size: customers per batch (grown when needed).
    :param max_batches: most batches to return.
    :param key_page_size: keys per query.
    :return: ``[{"index", "first", "last", "count", "of"}, ...]`` in key order (``of``: how
        many batches the run has, so that fewer batches than ``parallel_batches`` share the
        rate budget among themselves only).
    """
    if batch_size < 1 or max_batches < 1:
        raise ValueError("batch_size and max_batches must be >= 1")
    batches: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    size = batch_size
    with CustomerSource(customers_conn, query) as source:
        for keys in source.iter_keys(key_page_size):
            for key in keys:
                key = _json_key(key)
                if current is None:
                    current = {"first": key, "last": key, "count": 0}
                current["last"] = key
                current["count"] += 1
                if current["count"] >= size:
                    batches.append(current)
                    current = None
                    if len(batches) > max_batches:
                        batches, size = _merge_pairs(batches), size * 2
    if current is not None:
        batches.append(current)
    while len(batches) > max_batches:
        batches, size = _merge_pairs(batches), size * 2
    for index, batch in enumerate(batches):
        batch["index"] = index
    total = sum(b["count"] for b in batches)
    log.info("Planned %d batch(es) of up to %d customers (%d customers)", len(batches), size, total)
    return [{"index": b["index"], "first": b["first"], "last": b["last"], "count": b["count"], "of": len(batches)}
            for b in batches]


def _merge_pairs(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = []
    for i in range(0, len(batches), 2):
        pair = batches[i : i + 2]
        merged.append({"first": pair[0]["first"], "last": pair[-1]["last"], "count": sum(b["count"] for b in pair)})
    return merged


def _json_key(key: Any) -> Any:
    """Keys travel in XCom: ints stay ints, Decimals become ints, anything else text."""
    if isinstance(key, bool):
        return str(key)
    if isinstance(key, int):
        return key
    if isinstance(key, Decimal) and key == key.to_integral_value():
        return int(key)
    return str(key)


# ---------------------------------------------------------------------- one batch


def provision_batch(
    customers_conn: Any,
    query: str,
    batch: Mapping[str, Any],
    *,
    bolna_conn_id: str = DEFAULT_BOLNA_CONN_ID,
    state_conn: Any = None,
    options: ProvisionOptions | None = None,
    hook: Any = None,
    include_customers: bool = False,
) -> BatchSummary:
    """Plan, apply and record one batch (sync wrapper of :func:`aprovision_batch`)."""
    return asyncio.run(
        aprovision_batch(customers_conn, query, batch, bolna_conn_id=bolna_conn_id, state_conn=state_conn,
                         options=options, hook=hook, include_customers=include_customers)
    )


def provision_customers(
    customers_conn: Any,
    query: str,
    customer_ids: Sequence[Any],
    **kwargs: Any,
) -> BatchSummary:
    """Provision these customers only (the sign-up path): a batch of explicit keys."""
    return provision_batch(customers_conn, query, {"keys": list(customer_ids)}, **kwargs)


async def aprovision_batch(
    customers_conn: Any,
    query: str,
    batch: Mapping[str, Any],
    *,
    bolna_conn_id: str = DEFAULT_BOLNA_CONN_ID,
    state_conn: Any = None,
    options: ProvisionOptions | None = None,
    hook: Any = None,
    include_customers: bool = False,
) -> BatchSummary:
    """Plan, apply and record one batch.

    :param customers_conn: connection id or ``DbApiHook`` of the customer database.
    :param query: the customer query (rendered), columns per :mod:`.mapping`.
    :param batch: ``{"first", "last"}`` (inclusive key range; either may be ``None``) or
        ``{"keys": [...]}``.
    :param bolna_conn_id: the Bolna connection.
    :param state_conn: where the state table lives (default: the customer database).
    :param options: see :class:`ProvisionOptions`.
    :param hook: a ready :class:`BolnaHook` (tests); default: one new hook for this batch.
    :param include_customers: list every customer's result in the summary (small batches only).
    """
    options = options or ProvisionOptions()
    started = time.monotonic()
    descriptor = _describe(batch)
    own_hook = hook is None
    state_db = state_conn if state_conn is not None else customers_conn
    hook = hook or await abatch_hook(bolna_conn_id, options, batches=batch.get("of"), state_conn=state_db)
    counter = RequestCounter()
    source = CustomerSource(customers_conn, query)
    store = StateStore(state_conn if state_conn is not None else customers_conn, options.state_table)
    secrets = BatchSecrets()
    try:
        if not options.dry_run:
            store.ensure_table()
        customers = _read_customers(source, batch, options, secrets)
        key = hmac_key_for((await hook.aget_settings()).api_key.get_secret_value())
        state = store.get_many(c.key for c in customers) if store.exists() else {}
        planner = Planner(key, deprovision=options.deprovision, drift_check=options.drift_check,
                          remove_extra_numbers=options.remove_extra_numbers,
                          look_before_create=options.look_before_create or options.dry_run)
        drafts = planner.prepare(customers, state)
        names = planner.lookup_names(drafts)
        await counter.attach(hook)
        actual = await lookup_trunks(hook, names) if names else None
        plan = planner.finish(drafts, actual)
        log.info("Batch %s: %d customers, %d looked up; plan: %s", descriptor, len(customers), len(names),
                 fmt_counts(plan.counts()))
        if options.dry_run:
            table = plan.table()
            log.info("Plan of batch %s (dry run):\n%s", descriptor, table)
            return BatchSummary(descriptor, plan.counts(), requests=counter.snapshot(), looked_up=plan.looked_up,
                                seconds=time.monotonic() - started, dry_run=True, plan=table)
        mark_pending(store, plan)
        results = await apply_and_record(hook, plan, store, options)
    finally:
        source.close()
        store.close()
        if own_hook:
            await hook.aclose()
            if isinstance(hook.limiter, RateBudget):
                await hook.limiter.aclose()  # unused slots go back to the other claimants
        secrets.release()  # a process running many batches must not carry every password
    summary = batch_summary(descriptor, results, counter, plan.looked_up, started, options.max_failed_rows)
    if include_customers:
        summary.customers = [_customer_result(r) for r in results]
    return summary


def _customer_result(result: ItemResult) -> dict[str, Any]:
    spec = result.item.customer.spec
    return {
        "customer_id": result.item.customer_id,
        "trunk_name": result.item.trunk_name,
        "trunk_id": result.trunk_id,
        "outcome": result.outcome,
        "numbers": [n.phone_number for n in spec.phone_numbers] if spec is not None else [],
    }


async def abatch_hook(bolna_conn_id: str, options: ProvisionOptions, batches: int | None = None,
                      state_conn: Any = None) -> Any:
    """One hook per batch; its budget is the override, the connection's budget shared through
    the state DB, or (no state DB) the connection's budget shared out.

    :param bolna_conn_id: the Bolna connection.
    :param options: ``requests_per_minute`` (override) and ``parallel_batches``.
    :param batches: how many batches the run has: a run of fewer batches than
        ``parallel_batches`` shares the budget among those only.
    :param state_conn: the state DB: every batch, run and worker using the connection draws
        from one :class:`~.budget.RateBudget` there.
    """
    from airflow_provider_bolna.hooks.bolna import BolnaHook

    rpm = options.requests_per_minute
    if rpm is None and state_conn is not None:
        budget = (await BolnaHook(bolna_conn_id).aget_settings()).requests_per_minute
        if budget:
            log.info("Shared rate budget: %s requests/minute for %s", budget, bolna_conn_id)
            shared = RateBudget(state_conn, budget_key(bolna_conn_id), budget,
                                table=budget_table_beside(options.state_table))
            return BolnaHook(bolna_conn_id, limiter=shared)
    if rpm is None:
        budget = (await BolnaHook(bolna_conn_id).aget_settings()).requests_per_minute
        sharing = min(options.parallel_batches, batches) if batches else options.parallel_batches
        rpm = budget / max(1, sharing) if budget else 0.0
    log.info("Batch rate budget: %s requests/minute", rpm or "unlimited")
    return BolnaHook(bolna_conn_id, requests_per_minute=rpm)


def _read_customers(
    source: CustomerSource, batch: Mapping[str, Any], options: ProvisionOptions, secrets: BatchSecrets
) -> list[MappedCustomer]:
    """Read and map the batch's rows page by page, masking passwords as they are read."""
    mapper = RowMapper(options.name_template)
    customers: list[MappedCustomer] = []
    if "keys" in batch:
        keys = list(batch["keys"])
        pages: Iterable[list[dict[str, Any]]] = (
            source.rows_for_keys(keys[i : i + options.page_size]) for i in range(0, len(keys), options.page_size)
        )
    else:
        pages = source.iter_pages(options.page_size, first=batch.get("first"), last=batch.get("last"))
    for rows in pages:
        for row in rows:
            customers.append(mapper.map_row(row))
        secrets.add(mapper.secrets)
        mapper.secrets.clear()
    return customers


def mark_pending(store: StateStore, plan: Plan) -> None:
    """Record every create as ``pending`` before sending it (one transaction).

    A run killed between a POST and the record of its result leaves these rows behind, and
    the next run looks their names up rather than trusting that nothing was created.
    """
    store.upsert([StateRecord(i.key, i.trunk_name, "pending", "create") for i in plan.items
                  if i.action is Action.CREATE])


async def apply_and_record(hook: Any, plan: Plan, store: StateStore, options: ProvisionOptions) -> list[ItemResult]:
    writer = StateWriter(store)

    def record(result: ItemResult) -> None:
        row = result.state_record()
        if row is not None:
            writer.put(row)

    try:
        return await apply_plan(hook, plan, concurrency=options.concurrency,
                                deactivate_first=options.deactivate_first, on_result=record)
    finally:
        writer.close()


def _describe(batch: Mapping[str, Any]) -> dict[str, Any]:
    if "keys" in batch:
        return {"keys": len(batch["keys"]), "index": batch.get("index")}
    return {k: batch.get(k) for k in ("index", "first", "last", "count")}


