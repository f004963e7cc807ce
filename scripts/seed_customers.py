#!/usr/bin/env python
"""Create a realistic customer table for ``bolna_bulk_provision`` (SQLite file or PostgreSQL).

    python scripts/seed_customers.py --db .demo/customers.db --count 1000 --invalid 5 --seed 1
    python scripts/seed_customers.py --postgres postgresql://user@host/db --table demo.customers --count 5000

Mixed carriers (twilio, plivo, zadarma, telnyx, vonage, exotel), userpass and ip-based,
1–3 numbers per customer (unique across customers), and ``--invalid`` rows that break one rule
each (bad CIDR, port 70000, SDES without TLS, missing password, short number, bad boolean).
The table is replaced. Columns follow the contract in ``docs/provisioning.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_bolna.sandbox.seed import (
    create_customers_table,
    generate_customers,
    insert_customers,
    seed_sqlite,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="SQLite file to create (parent folders are created)")
    where.add_argument("--postgres", metavar="URI", help="PostgreSQL URI (needs psycopg or psycopg2)")
    parser.add_argument("--table", default="customers", help="table name (schema.table allowed)")
    parser.add_argument("--count", type=int, required=True, help="customers to create")
    parser.add_argument("--invalid", type=int, default=0, help="how many rows break a rule")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same rows)")
    args = parser.parse_args(argv)
    if args.count < 0 or not 0 <= args.invalid <= args.count:
        parser.error("need 0 <= --invalid <= --count")
    started = time.monotonic()
    if args.db:
        count = seed_sqlite(args.db, args.count, args.invalid, args.seed, table=args.table)
        where_to = args.db
    else:
        try:
            import psycopg

            conn = psycopg.connect(args.postgres)
        except ImportError:
            import psycopg2

            conn = psycopg2.connect(args.postgres)
        try:
            create_customers_table(conn, args.table, drop=True)
            count = insert_customers(
                conn, generate_customers(args.count, args.invalid, args.seed), args.table, placeholder="%s"
            )
        finally:
            conn.close()
        where_to = f"{args.table} on PostgreSQL"
    print(
        f"seeded {count} customers ({args.invalid} invalid) into {where_to} in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
