"""Operators, sensor and trigger against the local Bolna sandbox (real HTTP, real state).

The ``sandbox`` fixture (from ``airflow_provider_bolna.sandbox.pytest_plugin``) resets the
server and points ``AIRFLOW_CONN_BOLNA_DEFAULT`` at it; the operators use that default.
Counters (``sandbox.admin.counters()``) prove how many writes reached the API.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout

from airflow_provider_bolna.hooks.bolna import BolnaHook
from airflow_provider_bolna.operators.sip_trunk import (
    AddPhoneNumbersOperator,
    BolnaPhoneNumbersError,
    CreateSIPTrunkOperator,
    DeleteSIPTrunkOperator,
    RemovePhoneNumberOperator,
    UpdateSIPTrunkOperator,
)
from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor
from airflow_provider_bolna.triggers.sip_trunk import SIPTrunkTrigger

from .conftest import run_deferrable, run_trigger, spec

pytestmark = pytest.mark.integration


def writes(sandbox: Any) -> dict[str, int]:
    return sandbox.admin.counters()["writes"]


def requests(sandbox: Any) -> dict[str, dict[str, int]]:
    return sandbox.admin.counters()["requests"]


def create(trunk: dict, **kw: Any) -> CreateSIPTrunkOperator:
    return CreateSIPTrunkOperator(task_id="create", trunk=trunk, **kw)


def test_rerun_of_create_adopts(sandbox: Any, context: dict) -> None:
    trunk = spec("acme-rerun", phone_numbers=["+918000000001"])
    first = create(trunk).execute(context)
    second = create(trunk).execute(context)  # a cleared and rerun task
    assert first["action"] == "created" and second["action"] == "adopted"
    assert first["trunk_id"] == second["trunk_id"]
    assert second["numbers"] == ["+918000000001"] and second["numbers_added"] == []
    assert writes(sandbox) == {
        "create_trunk": 1,
        "update_trunk": 0,
        "delete_trunk": 0,
        "add_number": 0,
        "remove_number": 0,
    }
    assert requests(sandbox)["POST /sip-trunks/trunks"] == {"201": 1}


def test_if_exists_update_sends_one_patch_for_one_changed_field(sandbox: Any, context: dict) -> None:
    create(spec("acme-upd", qualify_frequency=60)).execute(context)
    sandbox.admin.reset_counters()
    result = create(spec("acme-upd", qualify_frequency=25), if_exists="update").execute(context)
    assert result["action"] == "updated" and result["patched_fields"] == ["qualify_frequency"]
    assert writes(sandbox)["update_trunk"] == 1
    assert requests(sandbox)["PATCH /sip-trunks/trunks/{trunk_id}"] == {"200": 1}
    trunk = BolnaHook().get_trunk(result["trunk_id"])
    assert trunk.qualify_frequency == 25 and trunk.transport.value == "transport-udp"
    again = create(spec("acme-upd", qualify_frequency=25), if_exists="update").execute(context)
    assert again["action"] == "unchanged"
    assert writes(sandbox)["update_trunk"] == 1, "no drift, no PATCH"


def test_add_numbers_conflict_then_rerun(
    sandbox: Any, context: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # after a 409 the hook waits up to number_visibility_timeout (default 10 s) for the number to
    # show on *this* trunk before calling it a conflict; keep the test fast
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", sandbox.airflow_conn_json(number_visibility_timeout=0.5))
    other = create(spec("acme-other", phone_numbers=["+918000000009"])).execute(context)
    mine = create(spec("acme-mine")).execute(context)
    op = AddPhoneNumbersOperator(
        task_id="add", trunk_id=mine["trunk_id"], numbers=["+918000000009", "+918000000010", "+918000000011"]
    )
    with pytest.raises(AirflowFailException, match=r"\+918000000009.*another active trunk") as err:
        op.execute(context)
    assert isinstance(err.value.__cause__, BolnaPhoneNumbersError)
    assert writes(sandbox)["add_number"] == 2, "the two free numbers were added before failing"
    numbers = {n.phone_number for n in BolnaHook().list_numbers(mine["trunk_id"])}
    assert numbers == {"+918000000010", "+918000000011"}
    assert {n.phone_number for n in BolnaHook().list_numbers(other["trunk_id"])} == {"+918000000009"}

    rerun = AddPhoneNumbersOperator(
        task_id="add", trunk_id=mine["trunk_id"], numbers=["+918000000010", "918000000011"]
    )
    out = rerun.execute(context)
    assert [n["action"] for n in out["numbers"]] == ["unchanged", "unchanged"]
    assert writes(sandbox)["add_number"] == 2


def test_update_delete_remove_are_idempotent(sandbox: Any, context: dict) -> None:
    trunk_id = create(spec("acme-life", phone_numbers=["+918000000020"])).execute(context)["trunk_id"]
    for _ in range(2):
        out = UpdateSIPTrunkOperator(task_id="u", trunk_id=trunk_id, update={"description": "v2"}).execute(
            context
        )
        assert out["updated_fields"] == ["description"]
    assert BolnaHook().get_trunk(trunk_id).description == "v2"

    remove = [
        RemovePhoneNumberOperator(task_id="r", trunk_id=trunk_id, phone_number="918000000020").execute(
            context
        )
        for _ in range(2)
    ]
    assert [r["removed"] for r in remove] == [True, False]

    delete = [
        DeleteSIPTrunkOperator(task_id="d", trunk_id=trunk_id, deactivate_first=True).execute(context)
        for _ in range(2)
    ]
    assert [d["deleted"] for d in delete] == [True, False]
    w = writes(sandbox)
    assert (w["remove_number"], w["delete_trunk"]) == (1, 1)


def test_restarted_trigger_sends_only_gets(sandbox: Any, context: dict) -> None:
    trunk_id = create(spec("acme-trig")).execute(context)["trunk_id"]
    sandbox.admin.reset_counters()
    first = SIPTrunkTrigger(
        trunk_id=trunk_id, expect_numbers=["+918000000030"], poll_interval=0.05, deadline=time.time() + 0.3
    )
    (timeout,) = run_trigger(first)
    assert timeout.payload["status"] == "timeout"
    AddPhoneNumbersOperator(task_id="add", trunk_id=trunk_id, numbers=["+918000000030"]).execute(context)
    sandbox.admin.reset_counters()
    classpath, kwargs = first.serialize()  # the triggerer restarts: same kwargs, new deadline
    (event,) = run_trigger(import_string(classpath)(**{**kwargs, "deadline": time.time() + 30}))
    assert event.payload["status"] == "success" and event.payload["trunk_id"] == trunk_id
    seen = requests(sandbox)
    assert seen and all(endpoint.startswith("GET ") for endpoint in seen), seen
    assert sum(writes(sandbox).values()) == 0


def test_create_and_wait_deferrable_with_slow_numbers(sandbox: Any, context: dict) -> None:
    sandbox.admin.config(number_visibility_delay_s=1.0)
    op = create(
        spec("acme-wait", phone_numbers=["+918000000040"]),
        wait_for_ready=True,
        deferrable=True,
        poll_interval=0.2,
    )
    result = run_deferrable(op, context)
    assert result["action"] == "created"
    reqs = requests(sandbox)
    assert reqs["GET /sip-trunks/trunks/{trunk_id}/numbers"]["200"] >= 2, "the number was invisible at first"
    assert writes(sandbox)["create_trunk"] == 1


def test_create_and_wait_sync(sandbox: Any, context: dict) -> None:
    sandbox.admin.config(number_visibility_delay_s=0.5)
    op = create(
        spec("acme-wait-sync", phone_numbers=["+918000000041"]),
        wait_for_ready=True,
        deferrable=False,
        poll_interval=0.1,
    )
    assert op.execute(context)["action"] == "created"


def test_sensor_times_out_while_deferred(sandbox: Any, context: dict) -> None:
    trunk_id = create(spec("acme-never")).execute(context)["trunk_id"]
    sensor = SIPTrunkSensor(
        task_id="wait",
        trunk_id=trunk_id,
        expect_numbers=["+918000000050"],
        deferrable=True,
        timeout=0.5,
        poll_interval=0.1,
    )
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout, match="does not show number"):
        run_deferrable(sensor, context)
    assert time.monotonic() - started < 10


def test_sensor_poke_and_deferrable_agree(sandbox: Any, context: dict) -> None:
    trunk_id = create(spec("acme-agree", phone_numbers=["+918000000060"])).execute(context)["trunk_id"]
    kw = {"trunk_name": "acme-agree", "expect_numbers": ["918000000060"], "poll_interval": 0.05, "timeout": 5}
    poked = SIPTrunkSensor(task_id="p", deferrable=False, **kw).execute(context)
    deferred = SIPTrunkSensor(task_id="d", deferrable=True, **kw).execute(context)
    assert poked == deferred and poked["trunk_id"] == trunk_id
