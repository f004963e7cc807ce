"""SIPTrunkSensor (poke and deferrable), SIPTrunkTrigger and BolnaSIPTrunkLink, against respx."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow.triggers.base import TriggerEvent

from airflow_provider_bolna.exceptions import BolnaError
from airflow_provider_bolna.links import BolnaSIPTrunkLink
from airflow_provider_bolna.readiness import DEFER_GRACE_SECONDS, evaluate_trunk
from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor
from airflow_provider_bolna.triggers.sip_trunk import SIPTrunkTrigger

from .conftest import API, DASHBOARD, TRUNK_ID, number_json, run_deferrable, run_trigger, trunk_json

TRUNKS = f"{API}/sip-trunks/trunks"
TRUNK = f"{TRUNKS}/{TRUNK_ID}"
NUMBERS = f"{TRUNK}/numbers"
CLASSPATH = "airflow_provider_bolna.triggers.sip_trunk.SIPTrunkTrigger"


def trigger(bolna_conn: str, **kw: Any) -> SIPTrunkTrigger:
    kw.setdefault("trunk_id", TRUNK_ID)
    kw.setdefault("deadline", time.time() + 30)
    kw.setdefault("poll_interval", 0.01)
    return SIPTrunkTrigger(bolna_conn_id=bolna_conn, **kw)


# ---------------------------------------------------------------------- trigger


def test_serialize_round_trips(bolna_conn: str) -> None:
    original = trigger(
        bolna_conn,
        expect_numbers=["+911", "912"],
        expect_active=False,
        deadline=1_900_000_000.5,
        expect_agents={"+911": "agent/1"},
    )
    classpath, kwargs = original.serialize()
    assert classpath == CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs, "kwargs must be JSON-only"
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "trunk_id": TRUNK_ID,
        "trunk_name": None,
        "expect_active": False,
        "expect_numbers": ["+911", "912"],
        "poll_interval": 0.01,
        "deadline": 1_900_000_000.5,
        "bolna_conn_id": bolna_conn,
        "expect_agents": {"+911": "agent/1"},
    }
    by_name = SIPTrunkTrigger(trunk_name="acme", deadline=1.0)
    assert import_string(CLASSPATH)(**by_name.serialize()[1]).serialize() == by_name.serialize()


@pytest.mark.parametrize("refs", [{}, {"trunk_id": "a", "trunk_name": "b"}], ids=["none", "both"])
def test_trigger_needs_exactly_one_reference(refs: dict) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SIPTrunkTrigger(deadline=1.0, **refs)


def test_trigger_success_after_numbers_appear(bolna_conn: str, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json(numbers=["+911111111"]))
    respx_mock.get(NUMBERS).mock(
        side_effect=[
            httpx.Response(200, json=[number_json("+911111111")]),
            httpx.Response(200, json=[number_json("+911111111"), number_json("922222222", 1)]),
        ]
    )
    (event,) = run_trigger(trigger(bolna_conn, expect_numbers=["+911111111", "+922222222"]))
    assert event == TriggerEvent(
        {
            "status": "success",
            "message": f"trunk {TRUNK_ID} (acme) is ready with 2 expected number(s)",
            "trunk_id": TRUNK_ID,
            "name": "acme",
            "is_active": True,
            "numbers": ["+911111111", "922222222"],
            "missing": [],
        }
    )
    assert {c.request.method for c in respx_mock.calls} == {"GET"}


def test_restarted_trigger_sends_only_gets(bolna_conn: str, respx_mock: Any) -> None:
    """A triggerer restart = the trigger is cancelled and re-created from serialize(): reads only."""
    respx_mock.get(TRUNK).respond(200, json=trunk_json(is_active=False))
    respx_mock.get(NUMBERS).respond(200, json=[])
    first = trigger(bolna_conn, expect_numbers=["+911111111"], poll_interval=0.02)

    async def run_until_cancelled() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(first.run().__anext__(), timeout=1.5)

    asyncio.run(run_until_cancelled())
    before = respx_mock.calls.call_count
    assert before >= 2, "the first trigger polled a few times"
    respx_mock.get(TRUNK).respond(200, json=trunk_json(numbers=["+911111111"]))
    classpath, kwargs = first.serialize()
    (event,) = run_trigger(import_string(classpath)(**kwargs))
    assert event.payload["status"] == "success"
    assert respx_mock.calls.call_count > before
    assert [c.request.method for c in respx_mock.calls] == ["GET"] * respx_mock.calls.call_count


def test_trigger_by_name_waits_for_the_trunk_to_exist(bolna_conn: str, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[trunk_json(name="other", trunk_id="X")]),
            httpx.Response(200, json=[trunk_json()]),
        ]
    )
    (event,) = run_trigger(trigger(bolna_conn, trunk_id=None, trunk_name="acme"))
    assert event.payload["status"] == "success" and event.payload["trunk_id"] == TRUNK_ID
    assert respx_mock.calls.call_count == 3


def test_trigger_keeps_polling_through_transient_errors_and_404(bolna_conn: str, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).mock(
        side_effect=[
            httpx.Response(404, json={"message": "trunk not found"}),
            *[httpx.Response(503, json={"message": "busy"})] * 3,  # one poll: first try + 2 hook retries
            httpx.Response(200, json=trunk_json()),
        ]
    )
    (event,) = run_trigger(trigger(bolna_conn))
    assert event.payload["status"] == "success"


def test_trigger_auth_error_is_an_error_event(bolna_conn: str, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).respond(401, json={"message": "bad key"})
    (event,) = run_trigger(trigger(bolna_conn))
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "BolnaAuthError" and event.payload["retryable"] is False
    assert event.payload["trunk_id"] == TRUNK_ID
    assert respx_mock.calls.call_count == 1


def test_trigger_deadline_in_the_past_checks_once_then_times_out(bolna_conn: str, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json(is_active=False))
    (event,) = run_trigger(trigger(bolna_conn, deadline=time.time() - 1))
    assert event.payload["status"] == "timeout"
    assert (
        event.payload["message"].startswith("deadline passed: ")
        and "is not active" in event.payload["message"]
    )
    assert respx_mock.calls.call_count == 1


def test_evaluate_trunk_matches_numbers_with_or_without_plus() -> None:
    from airflow_provider_bolna.models import PhoneNumber, SIPTrunk

    trunk = SIPTrunk.model_validate(trunk_json(numbers=["911"]))
    status = evaluate_trunk(trunk, None, expect_active=True, expect_numbers=["+911"])
    assert status.done
    deleted = [PhoneNumber.model_validate({**number_json("+911"), "deleted": True})]
    assert not evaluate_trunk(trunk, deleted, expect_active=True, expect_numbers=["+911"]).done
    assert not evaluate_trunk(None, None, expect_active=False, expect_numbers=[]).done


# ---------------------------------------------------------------------- sensor: poke mode


def sensor(bolna_conn: str, **kw: Any) -> SIPTrunkSensor:
    if "trunk_name" not in kw:
        kw.setdefault("trunk_id", TRUNK_ID)
    kw.setdefault("poll_interval", 0.01)
    kw.setdefault("timeout", 30)
    return SIPTrunkSensor(task_id="wait", bolna_conn_id=bolna_conn, **kw)


def test_sensor_poke_mode_waits_for_numbers(bolna_conn: str, context: dict, respx_mock: Any, ti: Any) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json())
    respx_mock.get(NUMBERS).mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(503, json={}),
            httpx.Response(503, json={}),
            httpx.Response(503, json={}),  # transient: not ready
            httpx.Response(200, json=[number_json("+911111111")]),
        ]
    )
    out = sensor(bolna_conn, expect_numbers=["+911111111"], deferrable=False).execute(context)
    assert out == {"trunk_id": TRUNK_ID, "name": "acme", "is_active": True, "numbers": ["+911111111"]}
    assert ti.xcoms["trunk_id"] == TRUNK_ID
    assert ti.xcoms["bolna_trunk_url"] == f"{DASHBOARD}/sip-trunks/{TRUNK_ID}"
    assert {c.request.method for c in respx_mock.calls} == {"GET"}


def test_sensor_poke_mode_times_out(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json(is_active=False))
    with pytest.raises(AirflowSensorTimeout):
        sensor(bolna_conn, timeout=0.05, deferrable=False).execute(context)


def test_sensor_auth_error_fails_without_retries(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).respond(403, json={"detail": "forbidden"})
    for deferrable in (False, True):
        with pytest.raises(AirflowFailException, match="refused the API key"):
            sensor(bolna_conn, deferrable=deferrable).execute(context)


def test_sensor_needs_exactly_one_reference(bolna_conn: str) -> None:
    with pytest.raises(ValueError, match="trunk_id or trunk_name"):
        SIPTrunkSensor(task_id="s")
    with pytest.raises(ValueError, match="not both"):
        SIPTrunkSensor(task_id="s", trunk_id="a", trunk_name="b")


def test_sensor_poll_interval_sets_poke_interval(bolna_conn: str) -> None:
    assert SIPTrunkSensor(task_id="s", trunk_id="a", poll_interval=7).poke_interval == 7
    assert SIPTrunkSensor(task_id="s", trunk_id="a", poll_interval=7, poke_interval=9).poke_interval == 9


# ---------------------------------------------------------------------- sensor: deferrable


def test_sensor_deferrable_pokes_once_then_defers_with_deadline(
    bolna_conn: str, context: dict, respx_mock: Any, ti: Any
) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json(is_active=False))
    respx_mock.get(NUMBERS).respond(200, json=[])
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor(bolna_conn, deferrable=True, timeout=120, expect_numbers=["+911"]).execute(context)
    trig = deferred.value.trigger
    assert isinstance(trig, SIPTrunkTrigger)
    assert before + 120 <= trig.deadline <= time.time() + 120
    assert trig.expect_numbers == ["+911"] and trig.poll_interval == 0.01
    assert deferred.value.timeout == timedelta(seconds=120 + DEFER_GRACE_SECONDS)
    assert [c.request.url.path for c in respx_mock.calls] == [
        f"/sip-trunks/trunks/{TRUNK_ID}",
        f"/sip-trunks/trunks/{TRUNK_ID}/numbers",
    ], "exactly one poke before deferring"
    assert ti.xcoms["bolna_trunk_url"].endswith(TRUNK_ID), "link pushed before deferring"


def test_sensor_deferrable_done_at_first_poke_does_not_defer(
    bolna_conn: str, context: dict, respx_mock: Any
) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json())
    assert sensor(bolna_conn, deferrable=True).execute(context)["trunk_id"] == TRUNK_ID


def test_sensor_deferrable_end_to_end_by_name(
    bolna_conn: str, context: dict, respx_mock: Any, ti: Any
) -> None:
    respx_mock.get(TRUNKS).mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[trunk_json()]),
        ]
    )
    op = sensor(bolna_conn, trunk_name="acme", deferrable=True)
    with pytest.raises(TaskDeferred):
        op.execute(context)
    assert ti.xcoms == {"bolna_trunk_url": ""}, "trunk unknown yet: blank link"
    out = run_deferrable(sensor(bolna_conn, trunk_name="acme", deferrable=True), context)
    assert out["trunk_id"] == TRUNK_ID
    assert ti.xcoms["bolna_trunk_url"].endswith(TRUNK_ID)


def test_sensor_times_out_while_deferred(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNK).respond(200, json=trunk_json(is_active=False))
    with pytest.raises(AirflowSensorTimeout, match="deadline passed"):
        run_deferrable(sensor(bolna_conn, deferrable=True, timeout=0), context)
    with pytest.raises(AirflowSkipException):
        run_deferrable(sensor(bolna_conn, deferrable=True, timeout=0, soft_fail=True), context)


def test_sensor_execute_complete_validates_event(bolna_conn: str, context: dict) -> None:
    op = sensor(bolna_conn, deferrable=True)
    with pytest.raises(Exception, match="unexpected event"):
        op.execute_complete(context, event=None)
    with pytest.raises(AirflowFailException, match="API key"):
        op.execute_complete(
            context, event={"status": "error", "message": "m", "error_type": "BolnaAuthError"}
        )


# ---------------------------------------------------------------------- link


def test_link_reads_the_pushed_url() -> None:
    link = BolnaSIPTrunkLink()
    assert link.name == "Bolna trunk"
    ti_key = mock.Mock(dag_id="d", task_id="t", run_id="r", map_index=-1)
    with mock.patch(
        "airflow_provider_bolna.links.XCom.get_value", return_value="https://x/sip-trunks/1"
    ) as get:
        assert link.get_link(operator=mock.Mock(), ti_key=ti_key) == "https://x/sip-trunks/1"
    get.assert_called_once_with(key="bolna_trunk_url", ti_key=ti_key)
    with mock.patch("airflow_provider_bolna.links.XCom.get_value", return_value=None):
        assert link.get_link(operator=mock.Mock(), ti_key=ti_key) == ""


def test_link_url_from_dashboard_extra_and_default(bolna_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_bolna.hooks.bolna import BolnaHook

    assert BolnaHook(bolna_conn).trunk_url("a/b") == f"{DASHBOARD}/sip-trunks/a%2Fb"
    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_PLAIN", json.dumps({"conn_type": "bolna", "host": API, "password": "k-123456"})
    )
    assert BolnaHook("bolna_plain").trunk_url("T1") == "https://platform.bolna.ai/sip-trunks/T1"


# ---------------------------------------------------------------------- one failure policy, both modes

#: (answer of every check, what the task gets): permanent errors fail without retries, other
#: errors fail this try (Airflow's retries apply), transient ones mean "not ready" until the timeout.
ERROR_OUTCOMES = [
    pytest.param(httpx.Response(401, json={"message": "Access denied"}), "fail", id="auth-401"),
    pytest.param(httpx.Response(403, json={"detail": "Invalid API key"}), "fail", id="auth-403"),
    pytest.param(httpx.Response(400, json={"message": "trunk_id is malformed"}), "fail", id="validation-400"),
    pytest.param(httpx.Response(422, json={"detail": [{"msg": "bad"}]}), "fail", id="validation-422"),
    pytest.param(httpx.Response(409, json={"message": "conflict"}), "fail", id="conflict-409"),
    pytest.param(httpx.Response(405, json={"message": "method not allowed"}), "retry", id="unexpected-405"),
    pytest.param(httpx.Response(200, text="<html>proxy</html>"), "retry", id="unreadable-200"),
    pytest.param(httpx.Response(503, json={"message": "busy"}), "timeout", id="transient-503"),
    pytest.param(httpx.Response(404, json={"message": "trunk not found"}), "timeout", id="not-yet-404"),
]


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, AirflowSensorTimeout):
        return "timeout"
    if isinstance(exc, AirflowFailException):
        return "fail"
    if isinstance(exc, BolnaError):
        return "retry"
    return f"unexpected {type(exc).__name__}"


@pytest.mark.parametrize(("response", "expected"), ERROR_OUTCOMES)
def test_poke_and_deferrable_modes_give_the_same_outcome(
    bolna_conn: str, context: dict, respx_mock: Any, response: httpx.Response, expected: str
) -> None:
    outcomes = {}
    for deferrable in (False, True):
        # the first check finds the trunk inactive (so the deferrable sensor defers), every
        # later one gets the error: in the trigger, or in the next poke
        answers = iter([httpx.Response(200, json=trunk_json(is_active=False))])
        respx_mock.get(TRUNK).mock(side_effect=lambda request, answers=answers: next(answers, response))
        with pytest.raises(Exception) as info:
            run_deferrable(sensor(bolna_conn, deferrable=deferrable, timeout=0.5), context)
        outcomes["deferrable" if deferrable else "poke"] = _outcome(info.value)
        assert respx_mock.calls.call_count >= 2, "the error came after the first check"
        respx_mock.reset()
    assert outcomes == {"poke": expected, "deferrable": expected}
