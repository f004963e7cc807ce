"""Example: one SIP trunk's life cycle on Bolna — create, add numbers, wait, update, delete.

``create_trunk`` → ``add_numbers`` (mapped, one task per extra number) → ``wait_for_trunk``
(deferrable sensor: trunk active and every number visible) → ``update_trunk`` →
``cleanup_gate`` → ``delete_trunk``.

Every task is safe to retry and rerun: rerunning the DAG adopts the existing trunk and adds
only missing numbers. Trigger with ``{"cleanup": false}`` to keep the trunk; a second run then
creates nothing.

Secrets: the SIP password is *referenced*, never written here. The trunk's ``auth_password``
is ``{"param": "sip_password"}``, and the ``sip_password`` param defaults to
``{"conn": "bolna_example_carrier"}`` — the password of that Airflow connection, read inside
the task and masked in logs. Whoever triggers the run chooses the param's value, so the
operators' ``password_refs`` allow only connections and variables whose names start with
``bolna_example_`` (and only a connection's password): ``{"sip_password": {"conn": "aws_default"}}``
fails the task without reading anything. Trigger with
``{"sip_password": {"variable": "bolna_example_sip_password"}}`` to read a variable instead. (A
plain string also works, e.g. for a quick test, but then it sits in the DAG run's conf in the
metadata DB; prefer a reference.)

A trigger also chooses the trunk's name, so it is confined to the ``example-`` namespace: this
example adopts, updates and deletes its own trunks only.

Connections: ``bolna_default`` (Bolna API: host = API URL, password = API key) and
``bolna_example_carrier`` (password = the carrier's SIP password).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, Param, task

from airflow_provider_bolna.operators.sip_trunk import (
    AddPhoneNumbersOperator,
    CreateSIPTrunkOperator,
    DeleteSIPTrunkOperator,
    UpdateSIPTrunkOperator,
)
from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor

#: Numbers created together with the trunk.
NUMBERS = ["+918035000001", "+918035000002"]
#: What a trigger's ``sip_password`` param may reference (the example's own secrets only).
PASSWORD_REFS = {"conn_prefixes": ["bolna_example_"], "variable_prefixes": ["bolna_example_"]}
#: Numbers added after creation, one mapped task each.
EXTRA_NUMBERS = ["+918035000101", "+918035000102"]

with DAG(
    dag_id="example_bolna_sip_trunk",
    description="Create a Bolna SIP trunk with numbers, wait until ready, update it, delete it.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "trunk_name": Param(
            "example-acme-trunk",
            type="string",
            pattern="^example-[a-z0-9-]{1,60}$",
            description="Trunk name (unique per account), in the example- namespace.",
        ),
        "sip_username": Param("acme-user", type="string"),
        "sip_password": Param(
            {"conn": "bolna_example_carrier"},
            type=["object", "string"],
            description="Reference {'conn': id} or {'variable': key} to the SIP password (or, not recommended, the password).",
        ),
        "if_exists": Param("adopt", enum=["adopt", "update", "fail"]),
        "qualify_frequency": Param(30, type="integer", minimum=0),
        "cleanup": Param(True, type="boolean", description="Delete the trunk at the end."),
    },
    tags=["example", "bolna"],
) as dag:
    create_trunk = CreateSIPTrunkOperator(
        task_id="create_trunk",
        trunk={
            "name": "{{ params.trunk_name }}",
            "provider": "acme-carrier",
            "description": "Acme carrier trunk (managed by Airflow)",
            "auth_type": "userpass",
            "auth_username": "{{ params.sip_username }}",
            "auth_password": {"param": "sip_password"},
            "gateways": [{"gateway_address": "sip.acme-carrier.example", "port": 5060, "priority": 1}],
            "phone_numbers": NUMBERS,
        },
        if_exists="{{ params.if_exists }}",
        password_refs=PASSWORD_REFS,
    )

    add_numbers = AddPhoneNumbersOperator.partial(
        task_id="add_numbers",
        trunk_id=create_trunk.output["trunk_id"],
    ).expand(numbers=EXTRA_NUMBERS)

    wait_for_trunk = SIPTrunkSensor(
        task_id="wait_for_trunk",
        trunk_id=create_trunk.output["trunk_id"],
        expect_active=True,
        expect_numbers=NUMBERS + EXTRA_NUMBERS,
        deferrable=True,
        poll_interval=2,
        timeout=300,
    )

    update_trunk = UpdateSIPTrunkOperator(
        task_id="update_trunk",
        trunk_id=create_trunk.output["trunk_id"],
        update={"qualify_frequency": "{{ params.qualify_frequency }}"},
    )

    @task
    def cleanup_gate(**context):
        """Skip the delete when the run was triggered with ``cleanup: false``."""
        if not context["params"]["cleanup"]:
            raise AirflowSkipException("cleanup is false: keeping the trunk")

    delete_trunk = DeleteSIPTrunkOperator(
        task_id="delete_trunk",
        trunk_id=create_trunk.output["trunk_id"],
        deactivate_first=True,
    )

    create_trunk >> add_numbers >> wait_for_trunk >> update_trunk >> cleanup_gate() >> delete_trunk
