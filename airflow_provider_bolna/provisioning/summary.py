"""Secret-free summaries: per batch (what goes to XCom), per run, and as a printable table."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_bolna.provisioning.plan_items import Action
from airflow_provider_bolna.provisioning.results import OUTCOMES, ItemResult, count_outcomes

#: what the binding step counts, in summary order
BINDING_COUNTS: tuple[str, ...] = ("bound", "rebound", "unlinked", "switched")

__all__ = [
    "BINDING_COUNTS",
    "BatchSummary",
    "RequestCounter",
    "batch_summary",
    "fmt_counts",
    "format_summary",
    "summarize",
]

log = logging.getLogger(__name__)


@dataclass
class BatchSummary:
    """The secret-free result of one batch (what goes to XCom).

    :param batch: the batch descriptor (key range, or number of keys).
    :param counts: customers per outcome (planned actions in a dry run).
    :param failed: up to ``max_failed_rows`` failed rows ``{customer_id, trunk_name, reason}``.
    :param failed_total: all failed rows.
    :param requests: HTTP requests sent, by method, and ``total``.
    :param looked_up: customers whose actual trunk was read (0 = no list call).
    :param seconds: wall time.
    :param dry_run: whether nothing was written.
    :param plan: the printable plan (dry runs only).
    :param customers: per-customer results ``{customer_id, trunk_name, trunk_id, outcome,
        numbers, agents}``, only when asked for (sign-ups: a handful of customers).
    :param bindings: numbers ``bound``, ``rebound`` and ``unlinked``, agents ``switched``.
    """

    batch: dict[str, Any]
    counts: dict[str, int]
    failed: list[dict[str, Any]] = field(default_factory=list)
    failed_total: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    looked_up: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    plan: str | None = None
    customers: list[dict[str, Any]] = field(default_factory=list)
    bindings: dict[str, int] = field(default_factory=dict)

    def to_xcom(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return asdict(self)


def batch_summary(
    descriptor: dict[str, Any],
    results: list[ItemResult],
    counter: RequestCounter,
    looked_up: int,
    started: float,
    max_failed_rows: int,
) -> BatchSummary:
    """Count a batch's results into a :class:`BatchSummary` (and log it)."""
    failed = [r for r in results if r.outcome == "failed"]
    bindings: Counter[str] = Counter()
    for r in results:
        bindings.update(r.binding_counts)
    summary = BatchSummary(
        batch=descriptor,
        counts=count_outcomes(results),
        failed=[r.to_summary() for r in failed[:max_failed_rows]],
        failed_total=len(failed),
        requests=counter.snapshot(),
        looked_up=looked_up,
        seconds=round(time.monotonic() - started, 3),
        bindings={k: bindings[k] for k in BINDING_COUNTS if bindings.get(k)},
    )
    log.info(
        "Batch %s done in %.1fs: %s; %d requests",
        descriptor,
        summary.seconds,
        fmt_counts(summary.counts),
        summary.requests.get("total", 0),
    )
    for row in summary.failed:
        log.warning("Failed: %s", row["reason"])
    return summary


def fmt_counts(counts: Mapping[str, int]) -> str:
    """``created 3, failed 1`` (zero counts left out)."""
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing"


class RequestCounter:
    """Counts the HTTP requests the batch's hook sends (retries included), by method."""

    def __init__(self) -> None:
        self.by_method: dict[str, int] = {}

    async def attach(self, hook: Any) -> None:
        """Count the requests of ``hook``'s async client from now on."""
        client = await hook.aclient()
        hooks = client.event_hooks
        hooks.setdefault("request", [])
        if self._on_request not in hooks["request"]:
            hooks["request"].append(self._on_request)
        client.event_hooks = hooks

    async def _on_request(self, request: Any) -> None:
        self.by_method[request.method] = self.by_method.get(request.method, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """Requests by method, and ``total``."""
        out = dict(sorted(self.by_method.items()))
        out["total"] = sum(self.by_method.values())
        return out


def summarize(
    summaries: Iterable[Mapping[str, Any] | BatchSummary], max_failed_rows: int = 100, budget: Any = None
) -> dict[str, Any]:
    """Add batch summaries up into one run summary (JSON-safe).

    :param summaries: batch summaries (dicts from XCom or :class:`BatchSummary`).
    :param max_failed_rows: failed rows kept in the run summary.
    :param budget: the run's :class:`~.run.DeletionBudget` (or its dict), shown and kept.
    """
    counts: dict[str, int] = {}
    requests: dict[str, int] = {}
    bindings: Counter[str] = Counter()
    failed: list[dict[str, Any]] = []
    failed_total = 0
    batches = 0
    seconds = 0.0
    looked_up = 0
    dry_run = False
    for summary in summaries:
        data = summary.to_xcom() if isinstance(summary, BatchSummary) else dict(summary or {})
        if not data:
            continue
        if "sweep" not in (data.get("batch") or {}):
            batches += 1
        for k, v in (data.get("counts") or {}).items():
            counts[k] = counts.get(k, 0) + int(v)
        for k, v in (data.get("requests") or {}).items():
            requests[k] = requests.get(k, 0) + int(v)
        bindings.update({k: int(v) for k, v in (data.get("bindings") or {}).items()})
        failed_total += int(data.get("failed_total", 0))
        room = max_failed_rows - len(failed)
        if room > 0:
            failed += list(data.get("failed") or [])[:room]
        seconds = max(seconds, float(data.get("seconds") or 0.0))
        looked_up += int(data.get("looked_up") or 0)
        dry_run = dry_run or bool(data.get("dry_run"))
    requests.setdefault("total", 0)
    if not dry_run:
        counts = {**dict.fromkeys(OUTCOMES, 0), **counts}
    if budget is not None and not isinstance(budget, Mapping):
        budget = budget.to_dict()
    return {
        "counts": counts,
        "failed_total": failed_total,
        "failed": failed,
        "requests": requests,
        "batches": batches,
        "looked_up": looked_up,
        "slowest_batch_seconds": round(seconds, 3),
        "dry_run": dry_run,
        "deletion_budget": dict(budget) if budget else None,
        "bindings": {k: bindings[k] for k in BINDING_COUNTS if bindings.get(k)},
    }


def format_summary(run: Mapping[str, Any]) -> str:
    """A small text table of a run summary (and its failed rows)."""
    counts = run.get("counts", {})
    dry = bool(run.get("dry_run"))
    order = [a.value for a in Action] if dry else list(OUTCOMES)
    order += [k for k in counts if k not in order]
    width = max(len(k) for k in [*order, "requests", "batches"])
    title = "Bolna provisioning summary" + (" (dry run: planned actions, nothing written)" if dry else "")
    lines = [title, "-" * len(title)]
    for name in order:
        lines.append(f"{name.ljust(width)}  {int(counts.get(name, 0)):>8}")
    requests = run.get("requests", {})
    by_method = ", ".join(f"{k} {v}" for k, v in requests.items() if k != "total")
    lines.append(
        f"{'requests'.ljust(width)}  {requests.get('total', 0):>8}"
        + (f"  ({by_method})" if by_method else "")
    )
    lines.append(f"{'batches'.ljust(width)}  {run.get('batches', 0):>8}")
    bindings = run.get("bindings") or {}
    if bindings:
        lines.append(f"{'bindings'.ljust(width)}  " + ", ".join(f"{k} {v}" for k, v in bindings.items()))
    budget = run.get("deletion_budget") or {}
    if budget.get("enabled"):
        lines.append("")
        lines.append(
            ("DELETES WITHHELD: " if budget.get("withheld") else "deletion budget: ") + str(budget["message"])
        )
    failed = run.get("failed") or []
    if failed:
        lines.append("")
        lines.append(
            f"failed rows ({run.get('failed_total', len(failed))} in all, first {len(failed)} shown):"
        )
        for row in failed:
            lines.append(f"  {row.get('reason')}")
    return "\n".join(lines)
