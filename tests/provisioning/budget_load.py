"""Claimants hammering one shared rate budget, in a process of their own.

``python -m tests.provisioning.budget_load '<json spec>'`` starts ``claimants`` budgets (each
with its own DB connection) and ``threads`` threads per budget that ``acquire()`` and record the
wall-clock time of every send from ``start_at`` to ``start_at + duration``; then it closes the
budgets (untaken slots go back) and writes ``{"events": [...], "stats": [...]}`` to ``out``.

Only the standard library, a DB driver and the budget module are imported (no Airflow), so a
process is ready in a fraction of a second.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_bolna.provisioning.budget import BudgetTable, RateBudget


@dataclass
class RawDb:
    """A stand-in for a ``DbApiHook`` (``get_conn``, ``placeholder``, ``conn_type``) without Airflow.

    :param conn_type: ``sqlite`` or ``postgres``.
    :param target: the SQLite file or the PostgreSQL URI.
    """

    conn_type: str
    target: str

    @property
    def placeholder(self) -> str:
        return "?" if self.conn_type == "sqlite" else "%s"

    def get_conn(self) -> Any:
        if self.conn_type == "sqlite":
            return sqlite3.connect(self.target)
        import psycopg

        return psycopg.connect(self.target, connect_timeout=5)


def budget_from(spec: dict[str, Any]) -> RateBudget:
    """One claimant as the spec says (its own connection)."""
    table = BudgetTable(RawDb(spec["conn_type"], spec["target"]), spec["table"])
    return RateBudget(table, spec["key"], spec["limit"], period=spec["period"], grace=spec["grace"])


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Hammer the budget as ``spec`` says; return the send times and each claimant's counters."""
    budgets = [budget_from(spec) for _ in range(spec["claimants"])]
    events: list[float] = []
    lock = threading.Lock()
    stop_at = spec["start_at"] + spec["duration"]

    def hammer(budget: RateBudget) -> None:
        time.sleep(max(0.0, spec["start_at"] - time.time()))
        while True:
            budget.acquire()
            now = time.time()
            if now >= stop_at:
                return
            with lock:
                events.append(now)

    threads = [threading.Thread(target=hammer, args=(b,)) for b in budgets for _ in range(spec["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for budget in budgets:
        budget.close()
    stats = [{"granted": b.granted, "expired": b.expired, "claims": b.claims} for b in budgets]
    return {"events": events, "stats": stats}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = run(spec)
    with open(spec["out"], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
