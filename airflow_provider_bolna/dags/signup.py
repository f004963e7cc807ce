"""``customer_signup_dag``: provision one new customer end to end, as soon as they sign up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import Asset, Param, dag, task

from airflow_provider_bolna.dags.common import DEFAULT_POOL, build_deployment
from airflow_provider_bolna.provisioning.settings import MAX_CUSTOMER_ID_LENGTH

__all__ = ["SIGNUP_ASSET_URI", "customer_signup_dag"]

SIGNUP_ASSET_URI = "bolna://customers/signup"

_DOC = """Provision one new customer end to end, as soon as they sign up (scope `{scope}`).

Triggered two ways, both with the customer's key and nothing else:

* REST API / UI / CLI with ``conf={{"customer_id": 42}}``, e.g.
  ``POST /api/v2/dags/{dag_id}/dagRuns`` with ``{{"logical_date": null, "conf": {{"customer_id": 42}}}}``;
* an event on the asset ``{asset}`` whose ``extra`` is ``{{"customer_id": 42}}``.

Any other key in the conf or the event's extra is refused before anything is read or sent.
``resolve_customers`` → ``provision`` (reads the customer's row with the deployment's query,
creates the trunk with its numbers inline — or adopts and fixes an existing one — and records it)
→ ``wait_until_ready`` (deferrable ``SIPTrunkSensor``: trunk active, every number visible).
"""


def customer_signup_dag(
    dag_id: str = "bolna_customer_signup",
    *,
    scope: str | None = None,
    settings_variable: str | None = None,
    asset_uri: str = SIGNUP_ASSET_URI,
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    max_active_runs: int = 16,
    pool: str = DEFAULT_POOL,
    provision_timeout: timedelta = timedelta(minutes=15),
    ready_timeout: float = 600.0,
    tags: Sequence[str] = ("bolna", "provisioning"),
    **settings: Any,
) -> Any:
    """Build the sign-up DAG of one deployment.

    :param dag_id: the DAG id.
    :param scope: the ownership scope (default: ``dag_id``); use the bulk DAG's scope for the
        same customers, so that both own the same rows.
    :param settings_variable: an Airflow Variable (JSON object) overriding settings at run time.
    :param asset_uri: the sign-up asset that triggers runs.
    :param start_date: the DAG's start date.
    :param max_active_runs: sign-ups provisioned at once (overlapping runs for one customer are
        safe: one writer per customer).
    :param pool: the pool of the provisioning task.
    :param provision_timeout: ``execution_timeout`` of the provisioning task.
    :param ready_timeout: how long to wait for the trunk to be ready, in seconds.
    :param tags: the DAG's tags.
    :param settings: the deployment's settings (as for
        :func:`~airflow_provider_bolna.dags.bulk.bulk_provision_dag`).
    :raises SettingsError: a bad or unknown setting (at parse time, named).
    """
    deployment = build_deployment("customer_signup_dag", dag_id, scope, settings)
    from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor

    @dag(
        dag_id=dag_id,
        description=f"Provision a new customer's Bolna SIP trunk (scope {deployment.scope!r}).",
        schedule=[Asset(asset_uri)],
        start_date=start_date,
        catchup=False,
        max_active_runs=max_active_runs,
        params={
            "customer_id": Param(
                None,
                type=["null", "integer", "string"],
                minLength=1,
                maxLength=MAX_CUSTOMER_ID_LENGTH,
                title="Customer id",
                description="The customer to provision (asset-triggered runs read it from the event).",
            )
        },
        tags=list(tags),
        doc_md=_DOC.format(scope=deployment.scope, dag_id=dag_id, asset=asset_uri),
    )
    def signup() -> None:
        @task(execution_timeout=timedelta(minutes=5))
        def resolve_customers(**context: Any) -> list[Any]:
            """Customer ids from the run's conf or the triggering asset events (nothing else)."""
            from airflow_provider_bolna.provisioning.tasks import resolve_signup_customers

            return resolve_signup_customers(context)

        @task(pool=pool, retries=2, retry_delay=timedelta(seconds=15), execution_timeout=provision_timeout)
        def provision(customer_ids: list[Any], **context: Any) -> list[dict[str, Any]]:
            """Create (or adopt and fix) the trunk with its numbers; record it."""
            from airflow_provider_bolna.provisioning.tasks import provision_signup_task

            return provision_signup_task(deployment, settings_variable, customer_ids, context)

        provisioned = provision(resolve_customers())
        SIPTrunkSensor.partial(
            task_id="wait_until_ready",  # bolna_conn_id comes with each item (the run's settings)
            expect_active=True,
            deferrable=True,
            poll_interval=2.0,
            timeout=ready_timeout,
            execution_timeout=timedelta(seconds=ready_timeout + 300),
        ).expand_kwargs(provisioned)

    return signup()
