"""Provision one new customer end to end, as soon as they sign up.

Triggered two ways (both create a normal DAG run):

* REST API / UI / CLI with ``conf={"customer_id": 42}`` (validated by the ``customer_id``
  param), e.g. ``POST /api/v2/dags/bolna_customer_signup/dagRuns`` with
  ``{"logical_date": null, "conf": {"customer_id": 42}}``;
* an event on the asset ``bolna://customers/signup`` whose ``extra`` carries
  ``{"customer_id": 42}`` (``POST /api/v2/assets/events``, or an ``outlets=[SIGNUP_ASSET]``
  task of your sign-up pipeline). Events that arrive together are provisioned together.

``resolve_customers`` → ``provision`` (reads the customer's row with the same query and column
contract as ``bolna_bulk_provision``, creates the trunk with its numbers inline — or adopts and
fixes an existing one — and records it in ``bolna_provisioning_state``) → ``wait_until_ready``
(deferrable ``SIPTrunkSensor``: trunk active, every number visible).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, task

from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor

POOL = "bolna_api"
SIGNUP_ASSET = Asset("bolna://customers/signup")


@dag(
    dag_id="bolna_customer_signup",
    description="Provision a new customer's Bolna SIP trunk (REST-triggered or on a sign-up asset event).",
    schedule=[SIGNUP_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=16,
    params={
        "customer_id": Param(None, type=["null", "integer", "string"], minLength=1, title="Customer id",
                             description="The customer to provision (asset-triggered runs read it from the event)."),
        "customers_conn_id": Param("bolna_customers", type="string", title="Customer DB connection"),
        "query": Param("SELECT * FROM customers", type="string", format="multiline", title="Customer query"),
        "state_conn_id": Param(None, type=["null", "string"], title="State DB connection"),
        "state_table": Param("bolna_provisioning_state", type="string", title="State table"),
        "bolna_conn_id": Param("bolna_default", type="string", title="Bolna connection"),
        "name_template": Param("cust-{customer_id}", type="string", title="Trunk name template"),
    },
    tags=["bolna", "provisioning"],
    doc_md=__doc__,
)
def bolna_customer_signup() -> None:
    """Resolve the customer(s) → provision → wait until ready."""

    @task
    def resolve_customers(**context: Any) -> list[Any]:
        """Customer ids from the run's conf or the triggering asset events."""
        from airflow_provider_bolna.operators.provisioning import resolve_signup_customers

        return resolve_signup_customers(context)

    @task(pool=POOL, retries=2, retry_delay=timedelta(seconds=15))
    def provision(customer_ids: list[Any], **context: Any) -> list[dict[str, Any]]:
        """Create (or adopt and fix) the trunk with its numbers; record it."""
        from airflow_provider_bolna.operators.provisioning import provision_signup_task

        return provision_signup_task(customer_ids, context)

    provisioned = provision(resolve_customers())
    SIPTrunkSensor.partial(
        task_id="wait_until_ready",
        bolna_conn_id="{{ params.bolna_conn_id }}",
        expect_active=True,
        deferrable=True,
        poll_interval=2.0,
        timeout=600,
    ).expand_kwargs(provisioned)


bolna_customer_signup()
