"""Plan a run: cut the customers into batches and decide, before anything is deleted, what
this run may delete.

:func:`plan_run` reads only customer keys (grouped, in keyset pages: exact even when a key is
wrongly repeated) and this scope's live state rows, then:

* cuts the keys into contiguous ranges of about ``batch_size`` customers (merged pairwise while
  there are more than ``max_batches``, e.g. ``[core] max_map_length``);
* notes, per batch, the keys the source repeats (those rows fail, nothing is applied);
* when deletes are on, computes **the run's deletion budget** over every delete: churned
  customers whose trunk this scope recorded, and customers recorded but gone from the query.
  Within the budget, each batch is given the keys it may delete and the sweep the gone keys;
  over it, nothing is deleted anywhere in the run (the run fails at the end, saying how to
  proceed), and nothing else is held back.

The descriptors carry customer keys only, never rows or secrets: they travel in XCom.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from airflow_provider_bolna.provisioning.mapping import customer_key
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.source import CustomerSource
from airflow_provider_bolna.provisioning.state import StateStore

__all__ = ["DeletionBudget", "RunPlan", "plan_batches", "plan_run"]

log = logging.getLogger(__name__)


@dataclass
class DeletionBudget:
    """What one run plans to delete, against what it may.

    :param enabled: whether the run deletes at all (deployment and run allow it).
    :param scope: the deployment.
    :param churned: churned customers whose trunk this scope recorded.
    :param gone: customers this scope recorded that the query no longer returns.
    :param recorded: trunks this scope has recorded (the base of the fraction).
    :param limit: most deletes allowed (``max_deletes`` and ``max_delete_fraction`` of ``recorded``).
    :param max_deletes: the absolute limit.
    :param max_delete_fraction: the fractional limit.
    :param confirmed: the confirmed count (``confirm_deletes``), if any.
    """

    enabled: bool
    scope: str
    churned: int = 0
    gone: int = 0
    recorded: int = 0
    limit: int = 0
    max_deletes: int = 0
    max_delete_fraction: float = 0.0
    confirmed: int | None = None

    @property
    def planned(self) -> int:
        """Trunks the run would delete."""
        return self.churned + self.gone

    @property
    def withheld(self) -> bool:
        """Whether the run's deletes are withheld: over the limit and not confirmed."""
        return self.enabled and self.planned > self.limit and self.confirmed != self.planned

    def message(self) -> str:
        """One line for logs, the dry-run plan and the failure."""
        if not self.enabled:
            return "deletes are off for this run"
        what = (
            f"this run plans to delete {self.planned} trunk(s) (churned {self.churned}, gone from the query "
            f"{self.gone}) of {self.recorded} recorded in scope {self.scope!r}; the deletion budget allows "
            f"{self.limit} (max_deletes={self.max_deletes}, max_delete_fraction={self.max_delete_fraction:g})"
        )
        if self.withheld:
            return (
                f"{what}. Nothing was deleted. To proceed, check the customer query, then raise the "
                f"deployment's max_deletes / max_delete_fraction, or confirm this run with "
                f"confirm_deletes={self.planned}"
            )
        if self.planned > self.limit:
            return f"{what}; confirmed with confirm_deletes={self.confirmed}"
        return what

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with the derived figures."""
        return {**asdict(self), "planned": self.planned, "withheld": self.withheld, "message": self.message()}


@dataclass
class RunPlan:
    """The batches of a run and its deletion plan.

    :param batches: batch descriptors ``{"index", "first", "last", "count", "of", "deletes",
        "duplicates"[, "deletes_withheld"]}``.
    :param gone: keys (text) of gone customers the sweep may delete.
    :param budget: the run's deletion budget.
    """

    batches: list[dict[str, Any]]
    gone: list[str] = field(default_factory=list)
    budget: DeletionBudget | None = None

    def to_xcom(self) -> dict[str, Any]:
        """What the planning task returns (keys and counts only)."""
        return {
            "batches": self.batches,
            "gone": self.gone,
            "budget": self.budget.to_dict() if self.budget else None,
        }


def plan_run(
    customers_conn: Any,
    query: str,
    *,
    options: ProvisionOptions | None = None,
    state_conn: Any = None,
    batch_size: int = 500,
    max_batches: int = 1000,
    key_page_size: int = 5000,
) -> RunPlan:
    """Cut the customer keys into batches and plan the run's deletes within its budget.

    :param customers_conn: connection id or ``DbApiHook`` of the customer database.
    :param query: the customer query (rendered).
    :param options: scope, state table, deprovision and the budget's limits.
    :param state_conn: where the state table lives (default: the customer database).
    :param batch_size: customers per batch (grown when needed).
    :param max_batches: most batches to return.
    :param key_page_size: keys per query.
    """
    options = options or ProvisionOptions()
    if batch_size < 1 or max_batches < 1:
        raise ValueError("batch_size and max_batches must be >= 1")
    store = StateStore(
        state_conn if state_conn is not None else customers_conn,
        options.state_table,
        scope=options.scope,
        statement_timeout=options.statement_timeout_seconds,
    )
    source = CustomerSource(customers_conn, query, statement_timeout=options.statement_timeout_seconds)
    with store, source:
        has_state = store.prepare(options.dry_run)  # up front, so that parallel batches never race
        live = _live_keys(store) if options.deprovision and has_state else set()
        batches, seen, churned = _cut(source, live, batch_size, max_batches, key_page_size)
        gone = sorted(live - seen)
        budget = DeletionBudget(
            enabled=options.deprovision,
            scope=options.scope,
            churned=len(churned),
            gone=len(gone),
            recorded=store.recorded_trunks() if options.deprovision and has_state else 0,
            max_deletes=options.max_deletes,
            max_delete_fraction=options.max_delete_fraction,
            confirmed=options.confirm_deletes,
        )
        budget.limit = options.delete_limit(budget.recorded)
    if budget.withheld:
        log.error("Deletion budget: %s", budget.message())
        for batch in batches:
            batch["deletes"], batch["deletes_withheld"] = [], True
        gone = []
    elif budget.enabled:
        log.info("Deletion budget: %s", budget.message())
    total = sum(b["count"] for b in batches)
    log.info("Planned %d batch(es) (%d customers)", len(batches), total)
    return RunPlan(batches, gone, budget)


def plan_batches(
    customers_conn: Any,
    query: str,
    *,
    batch_size: int = 500,
    max_batches: int = 1000,
    key_page_size: int = 5000,
    options: ProvisionOptions | None = None,
    state_conn: Any = None,
) -> list[dict[str, Any]]:
    """The batches of :func:`plan_run` only (no deletes unless ``options.deprovision``)."""
    return plan_run(
        customers_conn,
        query,
        options=options,
        state_conn=state_conn,
        batch_size=batch_size,
        max_batches=max_batches,
        key_page_size=key_page_size,
    ).batches


def _live_keys(store: StateStore) -> set[str]:
    return {row.customer_id for rows in store.iter_live(5000) for row in rows}


def _cut(
    source: CustomerSource,
    live: set[str],
    batch_size: int,
    max_batches: int,
    page_size: int,
) -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """Key ranges with their deletes and duplicates; every key seen (text), when ``live`` is
    non-empty; the churned keys to delete."""
    batches: list[dict[str, Any]] = []
    seen: set[str] = set()
    churned: set[str] = set()
    current: dict[str, Any] | None = None
    size = batch_size
    for groups in source.iter_key_groups(page_size):
        for group in groups:
            key = _json_key(group.key)
            text = customer_key(group.key)
            if current is None:
                current = {"first": key, "last": key, "count": 0, "deletes": [], "duplicates": []}
            current["last"] = key
            current["count"] += group.rows
            if group.rows > 1:
                current["duplicates"].append(text)
            if live:
                seen.add(text)
                if group.churned and text in live:
                    churned.add(text)
                    current["deletes"].append(text)
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
        batch["index"], batch["of"] = index, len(batches)
    return batches, seen, churned


def _merge_pairs(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = []
    for i in range(0, len(batches), 2):
        pair = batches[i : i + 2]
        merged.append(
            {
                "first": pair[0]["first"],
                "last": pair[-1]["last"],
                "count": sum(b["count"] for b in pair),
                "deletes": [k for b in pair for k in b["deletes"]],
                "duplicates": [k for b in pair for k in b["duplicates"]],
            }
        )
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
