#!/usr/bin/env python
"""``make demo``: 1,000 customers in SQLite → Bolna sandbox → ``bolna_bulk_provision`` twice.

1. seed 1,000 customers (5 of them invalid) into ``.demo/customers.db``, each bound to one of
   20 Bolna voice agents (some numbers to an agent of their own, a third of the customers with
   an outbound agent);
2. start the Bolna sandbox with 50 ms latency (``.demo/sandbox.db``) and create the 20 agents;
3. prepare an AIRFLOW_HOME in ``.demo/airflow`` (``airflow db migrate``, once);
4. run ``airflow dags test bolna_bulk_provision`` with the connections in the environment
   (``AIRFLOW_CONN_BOLNA_DEFAULT`` → sandbox, ``AIRFLOW_CONN_BOLNA_CUSTOMERS`` → the SQLite file)
   and print the summary and the sandbox's counters;
5. run it again: nothing changed, so nothing is sent (zero writes, zero requests);
6. stop the sandbox.

Options: ``--count``, ``--invalid``, ``--agents``, ``--latency-ms``, ``--rpm`` (the connection's
request budget, default 1000/min like Bolna's), ``--keep`` (leave the sandbox running until Ctrl-C).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEMO = REPO / ".demo"
STARTED = time.monotonic()


def say(message: str) -> None:
    """One progress line with the elapsed time."""
    elapsed = int(time.monotonic() - STARTED)
    print(f"[demo {elapsed // 60}:{elapsed % 60:02d}] {message}", flush=True)


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def airflow(args: list[str], env: dict[str, str], log: Path, timeout: float = 900) -> str:
    """Run ``airflow ARGS``, output to ``log``; exit the demo with the log's tail on failure."""
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            stdout=out,
            check=False,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        print(text[-5000:], file=sys.stderr)
        say(f"`airflow {' '.join(args[:3])}` failed (exit {proc.returncode}); full log: {log}")
        sys.exit(1)
    return text


def lines_ready(customers_db: Path) -> int:
    """Numbers the state table records on a trunk with their Bolna id and agent."""
    import sqlite3

    conn = sqlite3.connect(customers_db)
    try:
        rows = conn.execute(
            "SELECT bindings FROM bolna_provisioning_state WHERE status = 'provisioned'"
        ).fetchall()
    finally:
        conn.close()
    return sum(
        1 for (raw,) in rows for b in json.loads(raw or "{}").values() if b.get("id") and b.get("agent")
    )


def run_summary(output: str) -> dict[str, Any]:
    """The ``summarize`` task's return value from the ``dags test`` output."""
    for line in reversed(output.splitlines()):
        if "Returned value was: {'counts'" in line:
            return ast.literal_eval(line.split("Returned value was: ", 1)[1].rsplit(" [airflow", 1)[0])
    raise SystemExit("no summary found in the DAG run output")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--invalid", type=int, default=5)
    parser.add_argument("--agents", type=int, default=20, help="Bolna agents the customers are bound to")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--rpm", type=float, default=1000.0, help="request budget per minute (0 = none)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="fixed in-flight customers (default: from latency)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the sandbox running at the end")
    args = parser.parse_args()

    from airflow_provider_bolna.provisioning.engine import format_summary
    from airflow_provider_bolna.sandbox.seed import agent_ids, seed_sqlite
    from airflow_provider_bolna.sandbox.testing import SandboxServer

    DEMO.mkdir(exist_ok=True)
    customers_db = DEMO / "customers.db"
    for stale in DEMO.glob("customers.db*"):
        stale.unlink()
    for stale in DEMO.glob("sandbox.db*"):
        stale.unlink()

    say(
        f"seeding {args.count:,} customers ({args.invalid} invalid, bound to {args.agents} agents) into "
        f"{customers_db.relative_to(REPO)}"
    )
    seed_sqlite(customers_db, args.count, args.invalid, seed=1, agents=args.agents)

    say(f"starting the Bolna sandbox ({args.latency_ms:g} ms latency)")
    with SandboxServer(DEMO / "sandbox.db", latency_ms=args.latency_ms) as sandbox:
        say(f"sandbox at {sandbox.url}; creating {args.agents} voice agents")
        sandbox.admin.create_agents([{"id": agent} for agent in agent_ids(args.agents)])
        home = DEMO / "airflow"
        home.mkdir(exist_ok=True)
        env = airflow_env(
            home,
            {
                "AIRFLOW_CONN_BOLNA_DEFAULT": sandbox.airflow_conn_json(requests_per_minute=args.rpm),
                "AIRFLOW_CONN_BOLNA_CUSTOMERS": json.dumps(
                    {"conn_type": "sqlite", "host": str(customers_db)}
                ),
            },
        )
        marker = home / ".migrated"
        if not marker.exists():
            say("airflow db migrate (first run only) ...")
            airflow(["db", "migrate"], env, DEMO / "migrate.log")
            marker.touch()
        else:
            say("metadata DB already migrated")

        # `dags test` runs the batches one after another: one batch may use the whole budget.
        # That is a deployment setting (the admins' Variable), not something a run's conf may set.
        env["AIRFLOW_VAR_BOLNA_PROVISIONING"] = json.dumps({"parallel_batches": 1})
        conf = json.dumps({"concurrency": args.concurrency} if args.concurrency else {})
        results = []
        for attempt, label in ((1, "first run: provision everyone"), (2, "second run: nothing changed")):
            say(f"{label} — airflow dags test bolna_bulk_provision (budget {args.rpm:g} req/min) ...")
            before = sandbox.admin.counters()
            started = time.monotonic()
            output = airflow(
                ["dags", "test", "bolna_bulk_provision", "-c", conf], env, DEMO / f"run{attempt}.log"
            )
            seconds = time.monotonic() - started
            after = sandbox.admin.counters()
            run = run_summary(output)
            writes = {k: after["writes"][k] - before["writes"].get(k, 0) for k in after["writes"]}
            writes.update(
                {
                    k: after["binding_writes"][k] - before["binding_writes"].get(k, 0)
                    for k in after["binding_writes"]
                }
            )
            requests = after["total_requests"] - before["total_requests"]
            results.append((run, writes, requests, seconds))
            say(
                f"run {attempt} done in {seconds:.0f}s (log: {(DEMO / f'run{attempt}.log').relative_to(REPO)})"
            )
            print()
            print(format_summary(run))
            print()
            print(
                f"sandbox counters for this run: {requests} requests; writes "
                + ", ".join(f"{k} {v}" for k, v in writes.items())
            )
            print()
        audit = sandbox.admin.audit()
        mapped = len(sandbox.admin.mappings())
        switched = sum(1 for a in sandbox.admin.agents() if a["telephony_provider"] == "sip-trunk")
        say(
            f"sandbox audit: {audit['trunks']} trunks, {audit['numbers']} numbers, "
            f"{len(audit['duplicate_trunk_names'])} duplicate names; {mapped} numbers mapped to an agent, "
            f"{switched} agents calling out through the SIP trunk"
        )
        ready = lines_ready(customers_db)
        (_, first_writes, _, _), (_, second_writes, second_requests, _) = results[0], results[1]
        ok = (
            sum(second_writes.values()) == 0
            and first_writes["add_number"] == 0
            and ready == mapped == first_writes["inbound_setup"]
        )
        if args.keep:
            say(f"sandbox still running at {sandbox.url} (Ctrl-C to stop)")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        say("stopping the sandbox")
    verdict = "OK" if ok else "UNEXPECTED"
    say(
        f"{verdict}: run 1 created {first_writes['create_trunk']} trunks with their numbers inline "
        f"({first_writes['add_number']} add_number calls), mapped {first_writes['inbound_setup']} numbers to their "
        f"agents and switched {first_writes['update_agent']} agents to the trunk; run 2 sent {second_requests} "
        f"requests and {sum(second_writes.values())} writes"
    )
    say(f"{ready} lines are ready to take calls (a number on a trunk, mapped to its voice agent)")
    if not shutil.which("sqlite3"):
        print(
            f"state table: python -c \"import sqlite3; print(sqlite3.connect('{customers_db}')"
            ".execute('select status, action, count(*) from bolna_provisioning_state group by 1, 2').fetchall())\""
        )
    else:
        print(
            f"state table: sqlite3 {customers_db} 'select status, action, count(*) from bolna_provisioning_state "
            "group by 1, 2'"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
