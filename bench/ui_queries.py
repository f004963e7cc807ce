"""Time the provisioning page's state queries on a large state table (docs/ui.md, "Bounds").

``python -m bench.ui_queries --n 100000 [--postgres URI]`` fills one scope of a state table with
N customers (5 % failed, 1 % pending, 2 % deprovisioned; another scope with N/10 rows beside it),
then times each query the page runs, median of 7, on SQLite (a temp file) and, when given, on
PostgreSQL (a throw-away schema). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_bolna.provisioning.state import StateRecord, StateStore
from airflow_provider_bolna.ui.state_view import StateView

REPEAT = 7


def _status(i: int) -> str:
    return (
        "failed"
        if i % 20 == 0
        else "pending"
        if i % 100 == 1
        else "deprovisioned"
        if i % 50 == 2
        else "provisioned"
    )


def fill(conn_id: str, table: str, scope: str, n: int) -> None:
    with StateStore(conn_id, table, scope=scope, run_id="bench") as store:
        store.ensure_table()
        batch: list[StateRecord] = []
        for i in range(n):
            status = _status(i)
            batch.append(
                StateRecord(
                    f"{i:07d}",
                    f"cust-{i:07d}",
                    status,
                    "failed" if status == "failed" else "created",  # type: ignore[arg-type]
                    trunk_id=f"T{i}",
                    last_error="customer x: transport: bad" if status == "failed" else None,
                    error_fields=("transport",) if status == "failed" else (),
                )
            )
            if len(batch) == 5000:
                store.upsert(batch)
                batch = []
        store.upsert(batch)


def timed(fn: Callable[[], Any]) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def measure(conn_id: str, table: str, n: int) -> dict[str, float]:
    deep = f"{int(n * 0.9):07d}"
    keys = [f"{i:07d}" for i in range(0, n, max(1, n // 500))][:500]
    with StateView(conn_id, table, "bench") as view:
        counts = view.totals()
        assert sum(counts.values()) == n and counts["failed"] == len(range(0, n, 20)), counts
        return {
            "counts by status": timed(view.totals),
            "recorded trunks (budget base)": timed(view.recorded_trunks),
            "first page (50)": timed(lambda: view.page(limit=50)),
            "page at 90 % (keyset)": timed(lambda: view.page(after=deep, limit=50)),
            "failed, first page": timed(lambda: view.page(status="failed", limit=50)),
            "failed, page at 90 %": timed(lambda: view.page(status="failed", after=deep, limit=50)),
            "one customer": timed(lambda: view.customer(deep)),
            "500 customers (plan keys)": timed(lambda: view.customers(keys)),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_queries", description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("BOLNA_TEST_POSTGRES_URI"))
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        os.environ["AIRFLOW_CONN_BENCH_SQLITE"] = json.dumps({"conn_type": "sqlite", "host": str(path)})
        fill("bench_sqlite", "bolna_provisioning_state", "bench", args.n)
        fill("bench_sqlite", "bolna_provisioning_state", "other", args.n // 10)
        results["SQLite"] = measure("bench_sqlite", "bolna_provisioning_state", args.n)
    if args.postgres:
        import psycopg

        schema = f"bench_ui_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect(args.postgres, autocommit=True)
        admin.execute(f"CREATE SCHEMA {schema}")
        os.environ["AIRFLOW_CONN_BENCH_PG"] = args.postgres
        try:
            table = f"{schema}.bolna_provisioning_state"
            fill("bench_pg", table, "bench", args.n)
            fill("bench_pg", table, "other", args.n // 10)
            admin.execute(f"ANALYZE {table}")
            results["PostgreSQL"] = measure("bench_pg", table, args.n)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
            admin.close()
    names = list(next(iter(results.values())))
    print(
        f"| query ({args.n:,} customers, median of {REPEAT}) | "
        + " | ".join(f"{db} (ms)" for db in results)
        + " |"
    )
    print("|---|" + "---:|" * len(results))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{results[db][name]:.1f}" for db in results) + " |")


if __name__ == "__main__":
    main()
