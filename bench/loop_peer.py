"""The floor of "no Airflow at all": read the customers, POST one trunk each (numbers inline), in a loop.

``python -m bench.loop_peer --db customers.db --url http://127.0.0.1:PORT --key KEY``

One ``httpx.Client`` (keep-alive), sequential, no state table, no look-up, no idempotency.
A 429 is waited out (``Retry-After`` if sent, else 1 s) and the request resent — the least a
script must do to finish under a rate limit. Prints one JSON line with its counts.
Imports the standard library and httpx only.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time

import httpx

from bench.naive_body import trunk_body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite customer DB (table customers)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="give up after this long")
    args = parser.parse_args(argv)

    started = time.monotonic()
    conn = sqlite3.connect(args.db)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM customers ORDER BY customer_id")]
    conn.close()
    created = failed = sent = throttled = 0
    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=30.0, trust_env=False) as client:
        for row in rows:
            body = trunk_body(row, inline_numbers=True)
            while True:
                if time.monotonic() - started > args.max_seconds:
                    print(json.dumps({"error": "time limit", "created": created}), flush=True)
                    return 2
                sent += 1
                response = client.post("/sip-trunks/trunks", json=body)
                if response.status_code == 429:
                    throttled += 1
                    time.sleep(float(response.headers.get("retry-after") or 1.0))
                    continue
                break
            if response.status_code == 201:
                created += 1
            else:
                failed += 1
    print(
        json.dumps(
            {
                "customers": len(rows),
                "created": created,
                "failed": failed,
                "requests": sent,
                "throttled": throttled,
                "seconds": round(time.monotonic() - started, 3),
            }
        ),
        flush=True,
    )
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
