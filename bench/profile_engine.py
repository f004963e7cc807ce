"""Profile the provisioning engine without Airflow's scheduler: what the DAG's tasks do, in-process.

    python -m bench.profile_engine --n 2000 [--latency-ms 0] [--prefill 0] [--out bench/profiles]

Seeds N customers (SQLite), starts a sandbox (optionally pre-filled with ``--prefill`` other
trunks, to see how the per-batch list call scales with the account's size), then runs
``plan_batches`` + ``provision_batch`` for every batch under pyinstrument, and prints where the
time goes plus a per-phase breakdown (list call vs creates) from the engine's own log lines.
Needs ``pip install pyinstrument``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def prefill(server, count: int, chunk: int = 200) -> None:  # type: ignore[no-untyped-def]
    """Create ``count`` unrelated trunks (names ``other-*``) with a raw client, concurrently."""
    import asyncio

    import httpx

    async def go() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=server.auth_headers, timeout=60) as client:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                async with sem:
                    body = {
                        "name": f"other-{i}",
                        "provider": "twilio",
                        "auth_type": "ip-based",
                        "gateways": [{"gateway_address": f"gw{i}.example.net", "port": 5060, "priority": 1}],
                        "ip_identifiers": [{"ip_address": "198.51.100.7"}],
                        "phone_numbers": [{"phone_number": f"+1{3_000_000_000 + i}"}],
                    }
                    r = await client.post("/sip-trunks/trunks", json=body)
                    r.raise_for_status()

            for start in range(0, count, chunk):
                await asyncio.gather(*(one(i) for i in range(start, min(count, start + chunk))))

    asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--prefill", type=int, default=0, help="other trunks in the account before the run")
    parser.add_argument("--out", type=Path, default=BENCH / "profiles")
    parser.add_argument("--no-profile", action="store_true", help="time only (no pyinstrument)")
    args = parser.parse_args(argv)

    from airflow_provider_bolna.sandbox.seed import seed_sqlite
    from airflow_provider_bolna.sandbox.testing import SandboxServer

    tmp = Path(tempfile.mkdtemp(prefix="bolna-bench-profile-"))
    db = tmp / "customers.db"
    seed_sqlite(db, args.n, seed=2026)
    os.environ["AIRFLOW_CONN_BOLNA_CUSTOMERS"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    logging.basicConfig(level=logging.WARNING)
    with SandboxServer(db_path=tmp / "sandbox.db", latency_ms=args.latency_ms) as server:
        os.environ["AIRFLOW_CONN_BOLNA_DEFAULT"] = server.airflow_conn_json(requests_per_minute=0)
        if args.prefill:
            t = time.monotonic()
            prefill(server, args.prefill)
            print(f"prefilled {args.prefill} trunks in {time.monotonic() - t:.1f}s", flush=True)
        server.admin.reset_counters()
        from airflow_provider_bolna.provisioning import (
            ProvisionOptions,
            plan_batches,
            provision_batch,
            summarize,
        )

        options = ProvisionOptions(concurrency=args.concurrency)
        query = "SELECT * FROM customers"
        profiler = None
        if not args.no_profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.002, async_mode="enabled")
            profiler.start()
        cpu0, t0 = time.process_time(), time.monotonic()
        batches = plan_batches("bolna_customers", query, batch_size=args.batch_size)
        summaries = []
        for b in batches:
            bt = time.monotonic()
            s = provision_batch("bolna_customers", query, b, options=options)
            summaries.append(s)
            print(
                f"batch {b['index']}: {s.counts['created']} created, {s.requests.get('total')} requests, "
                f"{time.monotonic() - bt:.2f}s",
                flush=True,
            )
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        if profiler is not None:
            profiler.stop()
        run = summarize(summaries)
        counters = server.admin.counters()
        print(
            json.dumps(
                {
                    "n": args.n,
                    "prefill": args.prefill,
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "ms_per_customer_wall": round(wall * 1000 / args.n, 3),
                    "ms_per_customer_cpu": round(cpu * 1000 / args.n, 3),
                    "counts": run["counts"],
                    "requests": counters["total_requests"],
                }
            ),
            flush=True,
        )
        if profiler is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            stem = f"engine-n{args.n}-lat{int(args.latency_ms)}-prefill{args.prefill}"
            (args.out / f"{stem}.txt").write_text(
                profiler.output_text(unicode=False, color=False, show_all=False)
            )
            (args.out / f"{stem}.html").write_text(profiler.output_html())
            print(f"profile: {args.out / (stem + '.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
