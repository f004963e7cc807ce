"""Run the provisioning engine without a DAG: ``python -m airflow_provider_bolna.provisioning``.

Connections come from Airflow as usual (``AIRFLOW_CONN_BOLNA_DEFAULT``,
``AIRFLOW_CONN_BOLNA_CUSTOMERS``, a secrets backend, or the metadata DB)::

    python -m airflow_provider_bolna.provisioning --scope crm --customers-conn bolna_customers \\
        --query "SELECT * FROM customers" --batch-size 500 --concurrency 8 [--dry-run] [--deprovision]

Whoever runs this command is the deployment's author (it takes every setting). Batches run one
after another in this process. Exit status: 0, or 1 when ``--fail-on-error`` and a customer
failed or the run's deletes were withheld (over the deletion budget), or 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.provisioning.batch import provision_batch
from airflow_provider_bolna.provisioning.names import DEFAULT_NAME_TEMPLATE, DEFAULT_STATE_TABLE
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.run import plan_run
from airflow_provider_bolna.provisioning.summary import format_summary, summarize
from airflow_provider_bolna.provisioning.sweep import deprovision_gone

#: the arguments that are :class:`ProvisionOptions` fields of the same name
_OPTIONS = (
    "scope",
    "name_template",
    "dry_run",
    "deprovision",
    "drift_check",
    "look_before_create",
    "concurrency",
    "requests_per_minute",
    "state_table",
    "max_deletes",
    "max_delete_fraction",
    "confirm_deletes",
)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_bolna.provisioning", description=__doc__.splitlines()[0]
    )
    p.add_argument("--scope", default="default", help="the deployment scope owning the state rows")
    p.add_argument(
        "--customers-conn", default="bolna_customers", help="Airflow connection of the customer DB"
    )
    p.add_argument("--query", default="SELECT * FROM customers", help="customer query (column contract)")
    p.add_argument("--bolna-conn", default=DEFAULT_CONN_ID, help="Bolna connection")
    p.add_argument("--state-conn", default=None, help="connection of the state table (default: customer DB)")
    p.add_argument("--state-table", default=DEFAULT_STATE_TABLE)
    p.add_argument("--name-template", default=DEFAULT_NAME_TEMPLATE)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument(
        "--concurrency", type=int, default=None, help="customers in flight per batch (default: from latency)"
    )
    p.add_argument(
        "--requests-per-minute",
        type=float,
        default=None,
        help="the budget instead of the connection's (0 = unlimited)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--deprovision", action="store_true", help="delete trunks of churned / vanished customers")
    p.add_argument("--max-deletes", type=int, default=100, help="most trunks one run may delete")
    p.add_argument(
        "--max-delete-fraction",
        type=float,
        default=0.10,
        help="most trunks one run may delete, as a fraction of those recorded",
    )
    p.add_argument(
        "--confirm-deletes", type=int, default=None, help="confirm an over-budget run (the planned count)"
    )
    p.add_argument("--drift-check", action="store_true", help="compare with Bolna even when hashes match")
    p.add_argument(
        "--look-before-create",
        action="store_true",
        help="list the account before creating trunks for customers never provisioned here",
    )
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 when a customer failed")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = ProvisionOptions(**{name: getattr(args, name) for name in _OPTIONS})
    conns = {"bolna_conn_id": args.bolna_conn, "state_conn": args.state_conn}
    plan = plan_run(
        args.customers_conn,
        args.query,
        options=options,
        state_conn=args.state_conn,
        batch_size=args.batch_size,
    )
    print(f"{len(plan.batches)} batch(es)", flush=True)
    summaries = []
    for batch in plan.batches:
        summary = provision_batch(args.customers_conn, args.query, batch, options=options, **conns)
        summaries.append(summary.to_xcom())
        print(
            f"batch {batch['index']} [{batch['first']}..{batch['last']}]: "
            + ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v),
            flush=True,
        )
        if summary.plan:
            print(summary.plan, flush=True)
    if options.deprovision:
        gone = deprovision_gone(args.customers_conn, args.query, keys=plan.gone, options=options, **conns)
        summaries.append(gone.to_xcom())
    run = summarize(summaries, budget=plan.budget)
    print(json.dumps(run, default=str) if args.json else format_summary(run), flush=True)
    withheld = bool(plan.budget and plan.budget.withheld)
    return 1 if (args.fail_on_error and (run["failed_total"] or withheld)) else 0


if __name__ == "__main__":
    sys.exit(main())
