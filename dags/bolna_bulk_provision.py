"""Keep every customer's Bolna SIP trunk in step with the customer database: plan → apply → record.

``plan_batches`` reads the customer keys in keyset pages and cuts them into key ranges
(batches of ``batch_size`` customers, grown if needed to stay under ``max_map_length``) →
``provision_batch`` (mapped, one task per batch, pool ``bolna_api``): reads its rows, maps them
to trunk specs (passwords read and masked here, never in XCom), skips customers whose spec hash
is unchanged, lists the account's trunks once if anything else needs a look, then creates /
updates / deprovisions with bounded concurrency on one rate budget, and records each result in
``bolna_provisioning_state`` as it lands → ``deprovision_gone`` (when ``deprovision`` is on:
customers recorded but no longer returned by the query) → ``summarize`` (counts, failed rows
with reasons; fails the run only when ``fail_on_error`` is on).

Connections: ``bolna_default`` (Bolna API) and ``bolna_customers`` (any common-sql database;
SQLite and PostgreSQL are tested). The query's columns follow the contract in
``docs/provisioning.md``. Create the pool once: ``airflow pools set bolna_api 4 "Bolna API"``
(its size = ``parallel_batches``); every batch draws from one rate budget in the state DB.

No I/O at import time: everything is imported and read inside the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

POOL = "bolna_api"

PARAMS = {
    "dry_run": Param(False, type="boolean", title="Dry run",
                     description="Plan only: print the plan of every batch, write nothing."),
    "batch_size": Param(500, type="integer", minimum=10, maximum=20000, title="Batch size",
                        description="Customers per mapped task (grown automatically to stay under max_map_length)."),
    "concurrency": Param(8, type="integer", minimum=1, maximum=64, title="Concurrency",
                         description="Customers in flight at first inside one batch (then sized from latency)."),
    "parallel_batches": Param(4, type="integer", minimum=1, maximum=64, title="Parallel batches",
                              description="Batches running at once (set the bolna_api pool to the same size); "
                                          "they share the connection's requests_per_minute through the state DB."),
    "requests_per_minute": Param(None, type=["null", "number"], minimum=0, title="Requests per minute per batch",
                                 description="Override the per-batch budget (0 = no client-side limit)."),
    "deprovision": Param(False, type="boolean", title="Deprovision",
                         description="Delete the trunks of churned customers and of customers gone from the query."),
    "max_deprovision": Param(100, type="integer", minimum=0, title="Max gone customers",
                             description="Refuse to delete more than this many vanished customers in one run (0 = no limit)."),
    "drift_check": Param(False, type="boolean", title="Drift check",
                         description="Compare with Bolna even when a customer's spec hash is unchanged."),
    "look_before_create": Param(False, type="boolean", title="Look before create",
                                description="List the Bolna account before creating trunks for customers never "
                                            "provisioned here (a first run on an account that already holds "
                                            "their trunks). Off: a taken name is found when Bolna refuses it."),
    "fail_on_error": Param(False, type="boolean", title="Fail on error",
                           description="Fail the run when any customer failed (the summary lists them either way)."),
    "customers_conn_id": Param("bolna_customers", type="string", title="Customer DB connection"),
    "query": Param("SELECT * FROM customers", type="string", format="multiline", title="Customer query",
                   description="A SELECT returning customer_id and the contract's columns (Jinja-templated)."),
    "state_conn_id": Param(None, type=["null", "string"], title="State DB connection",
                           description="Where bolna_provisioning_state lives (default: the customer DB)."),
    "state_table": Param("bolna_provisioning_state", type="string", title="State table"),
    "bolna_conn_id": Param("bolna_default", type="string", title="Bolna connection"),
    "name_template": Param("cust-{customer_id}", type="string", title="Trunk name template",
                           description="The trunk name (idempotency key) from the customer key."),
}


@dag(
    dag_id="bolna_bulk_provision",
    description="Provision and reconcile Bolna SIP trunks for every customer in a database.",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    params=PARAMS,
    tags=["bolna", "provisioning"],
    doc_md=__doc__,
)
def bolna_bulk_provision() -> None:
    """Plan → apply → record, in mapped batches."""

    @task
    def plan_batches(**context: Any) -> list[dict[str, Any]]:
        """Key ranges of about ``batch_size`` customers (keys only: no rows, no secrets)."""
        from airflow_provider_bolna.operators.provisioning import plan_batches_task

        return plan_batches_task(context)

    @task(pool=POOL, retries=2, retry_delay=timedelta(seconds=30), map_index_template="{{ batch_range }}")
    def provision_batch(batch: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Plan, apply and record one key range; returns its summary."""
        from airflow.sdk import get_current_context

        from airflow_provider_bolna.operators.provisioning import provision_batch_task

        get_current_context()["batch_range"] = f"{batch['first']}..{batch['last']}"  # the map index label
        return provision_batch_task(batch, context)

    @task(pool=POOL, retries=1, retry_delay=timedelta(seconds=30))
    def deprovision_gone(**context: Any) -> dict[str, Any]:
        """When ``deprovision`` is on: remove trunks of customers no longer in the query."""
        from airflow_provider_bolna.operators.provisioning import deprovision_gone_task

        return deprovision_gone_task(context)

    @task(trigger_rule="all_done")
    def summarize(results: list[dict[str, Any]], gone: dict[str, Any] | None, **context: Any) -> dict[str, Any]:
        """Totals and failed rows; fails only when ``fail_on_error`` is on."""
        from airflow_provider_bolna.operators.provisioning import summarize_task

        return summarize_task(results, gone, context)

    results = provision_batch.expand(batch=plan_batches())
    gone = deprovision_gone()
    results >> gone
    summarize(results, gone)


bolna_bulk_provision()
