"""A provisioning run that dies at a chosen point (``python -m tests.provisioning.crash_worker``).

Used by ``test_crash_points.py``: one batch, one customer at a time (``concurrency=1``), with a
hook that ends the process with ``os._exit`` — no ``finally``, no flush, like a SIGKILL — at
one of two points of the ``at``-th create:

* ``after-post``: the ``at``-th trunk was created (the API answered 201) and the process dies
  before the result reaches the state table;
* ``after-record``: the ``at``-th result is committed to the state table and the process dies
  before the next create is sent.

Before dying, the worker waits (bounded) until the earlier results are committed, so that the
crash is the only thing left unknown and the rerun's figures are exact.

Exit status: :data:`CRASHED` at the crash point; :data:`NOT_REACHED` when the run ended
without reaching it (fewer creates than ``at``, or the engine stopped calling
``aensure_trunk``); :data:`STATE_NOT_WRITTEN` when the earlier results never showed in the
state table.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from typing import Any

CRASHED = 86
NOT_REACHED = 3
STATE_NOT_WRITTEN = 4
POINTS = ("after-post", "after-record")


def provisioned_rows(db_path: str, table: str) -> int:
    """Committed ``provisioned`` rows of the state table (0 before it exists)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = 'provisioned'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_for_rows(db_path: str, table: str, count: int, timeout: float = 20.0) -> None:
    """Until ``count`` results are committed, or exit :data:`STATE_NOT_WRITTEN`."""
    deadline = time.monotonic() + timeout
    while provisioned_rows(db_path, table) < count:
        if time.monotonic() > deadline:
            print(f"crash worker: {count} results never reached the state table", file=sys.stderr, flush=True)
            os._exit(STATE_NOT_WRITTEN)
        time.sleep(0.02)


def crashing_hook(point: str, at: int, db_path: str, table: str) -> Any:
    """A ``BolnaHook`` on ``bolna_default`` that dies at ``point`` of its ``at``-th create."""
    from airflow_provider_bolna.hooks.bolna import BolnaHook

    class CrashingHook(BolnaHook):
        creates = 0

        async def aensure_trunk(self, spec: Any, **kwargs: Any) -> Any:
            self.creates += 1
            if point == "after-record" and self.creates == at + 1:
                wait_for_rows(db_path, table, at)
                print(f"crash worker: dying after result {at} was recorded", flush=True)
                os._exit(CRASHED)
            if point == "after-post" and self.creates == at:
                wait_for_rows(db_path, table, at - 1)
            result = await super().aensure_trunk(spec, **kwargs)
            if point == "after-post" and self.creates == at:
                print(
                    f"crash worker: dying after create {at} ({result.action}) before its record", flush=True
                )
                os._exit(CRASHED)
            return result

    return CrashingHook("bolna_default", requests_per_minute=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", choices=POINTS, required=True)
    parser.add_argument("--at", type=int, required=True, help="which create (1-based)")
    parser.add_argument("--customers-conn", default="bolna_customers")
    parser.add_argument("--query", default="SELECT * FROM customers")
    parser.add_argument("--sqlite-path", required=True, help="the customer DB file (holds the state table)")
    parser.add_argument("--state-table", default="bolna_provisioning_state")
    args = parser.parse_args(argv)

    from airflow_provider_bolna.provisioning import ProvisionOptions, provision_batch

    hook = crashing_hook(args.point, args.at, args.sqlite_path, args.state_table)
    options = ProvisionOptions(concurrency=1, state_table=args.state_table)
    summary = provision_batch(
        args.customers_conn, args.query, {"first": None, "last": None}, options=options, hook=hook
    )
    print(f"crash worker: the run ended without reaching the crash point: {summary.counts}", flush=True)
    return NOT_REACHED


if __name__ == "__main__":
    sys.exit(main())
