"""What happened to each customer: the vocabulary shared by apply, record and summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bolna.provisioning.plan_items import PlanItem

__all__ = ["OUTCOMES", "ItemResult", "Outcome", "count_outcomes"]

Outcome = str
#: Every outcome, in summary order.
OUTCOMES: tuple[str, ...] = (
    "created",
    "adopted",
    "updated",
    "unchanged",
    "deprovisioned",
    "skipped",
    "busy",
    "failed",
)


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
    :param fields: the fields at fault, for a failure.
    :param bindings: per number key ``{"number", "id", "agent"}`` after this run (``None``:
        nothing new to record).
    :param binding_counts: ``bound``, ``rebound``, ``unchanged``, ``unlinked``, ``switched``.
    """

    item: PlanItem
    outcome: Outcome
    trunk_id: str | None = None
    error: str | None = None
    patched_fields: list[str] = field(default_factory=list)
    numbers_added: list[str] = field(default_factory=list)
    numbers_removed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fields: tuple[str, ...] = ()
    bindings: dict[str, dict[str, Any]] | None = None
    binding_counts: dict[str, int] = field(default_factory=dict)

    @property
    def customer_id(self) -> Any:
        """The customer key as read."""
        return self.item.customer_id

    def to_summary(self) -> dict[str, Any]:
        """A small, secret-free dict (failed rows in XCom)."""
        return {
            "customer_id": self.item.customer_id,
            "trunk_name": self.item.trunk_name,
            "reason": self.error,
            "fields": list(self.fields or self.item.fields),
        }


def count_outcomes(results: Iterable[ItemResult]) -> dict[str, int]:
    """Customers per outcome, every outcome present."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts
