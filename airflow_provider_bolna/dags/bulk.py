"""``bulk_provision_dag``: keep every customer's Bolna SIP trunk in step with a customer database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import Param, XComArg, dag, task

from airflow_provider_bolna.dags.common import DEFAULT_POOL, build_deployment
from airflow_provider_bolna.provisioning.settings import Deployment

__all__ = ["bulk_provision_dag"]

_DOC = """Keep every customer's Bolna SIP trunk in step with the customer database: plan → apply → record.

``plan_batches`` reads the customer keys and cuts them into key ranges; it also plans the run's
deletes within its deletion budget. ``provision_batch`` (mapped, one task per batch, pool
``{pool}``) reads its rows, maps them to trunk specs (passwords read and masked there, never in
XCom), skips customers whose spec hash is unchanged, takes the writer leases of the others, lists
the account once if anything needs a look, creates / updates / deprovisions with bounded
concurrency on one rate budget, and records each result as it lands. ``deprovision_gone`` deletes
the planned customers gone from the query; ``summarize`` prints the totals and the failed rows,
and fails the run when its deletes were withheld (or, with ``fail_on_error``, when a customer
failed).

Deployment (set in the DAG file{variable}; a run's conf may set only the params below):

| setting | value |
|---|---|
{table}
"""


def bulk_provision_dag(
    dag_id: str = "bolna_bulk_provision",
    *,
    scope: str | None = None,
    settings_variable: str | None = None,
    schedule: Any = "@hourly",
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    pool: str = DEFAULT_POOL,
    batch_retries: int = 2,
    plan_timeout: timedelta = timedelta(minutes=30),
    batch_timeout: timedelta = timedelta(hours=2),
    dagrun_timeout: timedelta = timedelta(hours=6),
    tags: Sequence[str] = ("bolna", "provisioning"),
    **settings: Any,
) -> Any:
    """Build the bulk provisioning DAG of one deployment.

    :param dag_id: the DAG id.
    :param scope: the ownership scope of the state rows (default: ``dag_id``); give the sign-up
        DAG of the same customers the same scope.
    :param settings_variable: an Airflow Variable (JSON object) whose keys override these
        settings at run time (admins only; ``scope`` excepted); ``None``: none.
    :param schedule: when it runs (hourly by default).
    :param start_date: the DAG's start date.
    :param pool: the pool of the tasks that send requests; its size = ``parallel_batches``.
    :param batch_retries: retries of a failed batch task (reruns are idempotent).
    :param plan_timeout: ``execution_timeout`` of the planning task.
    :param batch_timeout: ``execution_timeout`` of each batch and of the sweep.
    :param dagrun_timeout: bound on the whole run.
    :param tags: the DAG's tags.
    :param settings: the deployment's settings (``customers_conn_id``, ``query``,
        ``state_conn_id``, ``state_table``, ``bolna_conn_id``, ``name_template``, ``deprovision``,
        ``max_deletes``, ``max_delete_fraction``, ``password_refs``, ...; see
        :class:`~airflow_provider_bolna.provisioning.settings.Deployment`).
    :raises SettingsError: a bad or unknown setting (at parse time, named).
    """
    deployment = build_deployment("bulk_provision_dag", dag_id, scope, settings)

    @dag(
        dag_id=dag_id,
        description=f"Provision and reconcile Bolna SIP trunks of scope {deployment.scope!r}.",
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dagrun_timeout,
        params=run_params(deployment),
        tags=list(tags),
        doc_md=_doc(deployment, pool, settings_variable),
    )
    def bulk() -> None:
        @task(execution_timeout=plan_timeout)
        def plan_batches(**context: Any) -> list[dict[str, Any]]:
            """Key ranges and the run's deletion plan (keys and counts only: no rows, no secrets)."""
            from airflow_provider_bolna.provisioning.tasks import plan_task

            return plan_task(deployment, settings_variable, context)

        # multiple_outputs=False on the tasks returning a dict: one XCom each, not one per key (Airflow
        # infers multiple outputs from `-> dict`, and 3.0's API refuses an XCom whose value is null)
        @task(
            pool=pool,
            retries=batch_retries,
            retry_delay=timedelta(seconds=30),
            execution_timeout=batch_timeout,
            map_index_template="{{ batch_range }}",
            multiple_outputs=False,
        )
        def provision_batch(batch: dict[str, Any], **context: Any) -> dict[str, Any]:
            """Plan, apply and record one key range; returns its summary."""
            from airflow.providers.common.compat.sdk import get_current_context

            from airflow_provider_bolna.provisioning.tasks import provision_batch_task

            get_current_context()["batch_range"] = f"{batch['first']}..{batch['last']}"  # the map index label
            return provision_batch_task(deployment, settings_variable, batch, context)

        @task(
            pool=pool,
            retries=1,
            retry_delay=timedelta(seconds=30),
            execution_timeout=batch_timeout,
            multiple_outputs=False,
        )
        def deprovision_gone(gone: list[str], **context: Any) -> dict[str, Any]:
            """Delete the trunks of the planned customers gone from the query."""
            from airflow_provider_bolna.provisioning.tasks import deprovision_gone_task

            return deprovision_gone_task(deployment, settings_variable, gone, context)

        @task(trigger_rule="all_done", execution_timeout=timedelta(minutes=15), multiple_outputs=False)
        def summarize(
            results: list[dict[str, Any]],
            gone: dict[str, Any] | None,
            budget: dict[str, Any] | None,
            **context: Any,
        ) -> dict[str, Any]:
            """Totals and failed rows; fails on withheld deletes, or on failures with ``fail_on_error``."""
            from airflow_provider_bolna.provisioning.tasks import summarize_task

            return summarize_task(deployment, settings_variable, results, gone, budget, context)

        batches = plan_batches()
        results = provision_batch.expand(batch=batches)
        swept = deprovision_gone(XComArg(batches.operator, key="gone"))
        results >> swept
        summarize(results, swept, XComArg(batches.operator, key="budget"))

    return bulk()


def run_params(deployment: Deployment) -> dict[str, Any]:
    """The params form: only what a trigger may set (:class:`~.settings.RunOptions`), bounded
    by the deployment."""
    d = deployment.defaults

    def flag(name: str, title: str, description: str) -> Param:
        return Param(getattr(d, name), type="boolean", title=title, description=description)

    params: dict[str, Any] = {
        "dry_run": flag("dry_run", "Dry run", "Plan only: print the plan of every batch, write nothing."),
        "drift_check": flag(
            "drift_check", "Drift check", "Compare with Bolna even when a customer's spec hash is unchanged."
        ),
        "fail_on_error": flag(
            "fail_on_error",
            "Fail on error",
            "Fail the run when any customer failed (the summary lists them either way).",
        ),
        "batch_size": Param(
            d.batch_size,
            type="integer",
            minimum=10,
            maximum=deployment.max_batch_size,
            title="Batch size",
            description="Customers per mapped task (grown automatically to stay under max_map_length).",
        ),
        "concurrency": Param(
            d.concurrency,
            type=["null", "integer"],
            minimum=1,
            maximum=deployment.max_concurrency,
            title="Concurrency",
            description="Customers in flight at once inside one batch (empty: the deployment's default).",
        ),
        "look_before_create": flag(
            "look_before_create",
            "Look before create",
            "List the Bolna account before creating trunks for customers never provisioned here (a first "
            "run on an account that already holds their trunks).",
        ),
    }
    if deployment.deprovision:
        params["deprovision"] = Param(
            d.deprovision,
            type=["null", "boolean"],
            title="Deprovision",
            description="Empty: the deployment's setting (deletes on, within the deletion "
            "budget). false: no delete in this run.",
        )
    if deployment.confirm_deletes_in_conf:
        params["confirm_deletes"] = Param(
            None,
            type=["null", "integer"],
            minimum=0,
            title="Confirm deletes",
            description="Confirm a run that plans more deletes than the budget: the "
            "planned count, as a dry run shows it.",
        )
    return params


def _doc(deployment: Deployment, pool: str, settings_variable: str | None) -> str:
    rows = []
    for key, value in deployment.model_dump(mode="json", exclude={"defaults", "query"}).items():
        rows.append(f"| `{key}` | `{value}` |")
    variable = f", overlaid by the Variable `{settings_variable}`" if settings_variable else ""
    return _DOC.format(pool=pool, variable=variable, table="\n".join(rows))
