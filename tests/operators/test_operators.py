"""Unit tests of the SIP-trunk operators against a respx-mocked Bolna API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_bolna.exceptions import (
    BolnaAuthError,
    BolnaError,
    BolnaServerError,
    BolnaTrunkNotReadyError,
)
from airflow_provider_bolna.links import BolnaSIPTrunkLink
from airflow_provider_bolna.models import SpecError, TrunkSpec
from airflow_provider_bolna.operators.sip_trunk import (
    AddPhoneNumbersOperator,
    BolnaPhoneNumbersError,
    CreateSIPTrunkOperator,
    DeleteSIPTrunkOperator,
    RemovePhoneNumberOperator,
    UpdateSIPTrunkOperator,
)
from airflow_provider_bolna.secrets_ref import SecretRefError
from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor
from airflow_provider_bolna.triggers.sip_trunk import SIPTrunkTrigger

from .conftest import API, API_KEY, DASHBOARD, TRUNK_ID, number_json, run_deferrable, spec, trunk_json

TRUNKS = f"{API}/sip-trunks/trunks"
TRUNK = f"{TRUNKS}/{TRUNK_ID}"
NUMBERS = f"{TRUNK}/numbers"

ALL_OPERATORS = [
    CreateSIPTrunkOperator,
    UpdateSIPTrunkOperator,
    DeleteSIPTrunkOperator,
    AddPhoneNumbersOperator,
    RemovePhoneNumberOperator,
    SIPTrunkSensor,
]


def methods(respx_mock: Any) -> list[str]:
    return [call.request.method for call in respx_mock.calls]


def bodies(respx_mock: Any, method: str) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in respx_mock.calls if c.request.method == method]


# ---------------------------------------------------------------------- class-level contract


@pytest.mark.parametrize("cls", ALL_OPERATORS, ids=lambda c: c.__name__)
def test_conn_id_is_templated(cls: type) -> None:
    assert "bolna_conn_id" in cls.template_fields


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (CreateSIPTrunkOperator, {"trunk", "if_exists"}),
        (UpdateSIPTrunkOperator, {"trunk_id", "update"}),
        (DeleteSIPTrunkOperator, {"trunk_id"}),
        (AddPhoneNumbersOperator, {"trunk_id", "numbers"}),
        (RemovePhoneNumberOperator, {"trunk_id", "phone_number", "phone_number_id"}),
        (SIPTrunkSensor, {"trunk_id", "trunk_name", "expect_numbers"}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_template_fields_cover_user_inputs(cls: type, fields: set[str]) -> None:
    assert fields <= set(cls.template_fields)
    for name in ("trunk", "update", "numbers", "expect_numbers"):
        if name in cls.template_fields:
            assert cls.template_fields_renderers[name] == "json"


@pytest.mark.parametrize(
    "cls", [CreateSIPTrunkOperator, UpdateSIPTrunkOperator, SIPTrunkSensor], ids=lambda c: c.__name__
)
def test_link_attached(cls: type) -> None:
    assert any(isinstance(link, BolnaSIPTrunkLink) for link in cls.operator_extra_links)


_DEFERRABLE_PROBE = """
import json
from airflow_provider_bolna.operators.sip_trunk import CreateSIPTrunkOperator
from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor
trunk = {"name": "t", "provider": "p", "auth_type": "ip-based", "gateways": [{"gateway_address": "h"}],
         "ip_identifiers": [{"ip_address": "10.0.0.1"}]}
print(json.dumps({
    "create": CreateSIPTrunkOperator(task_id="c", trunk=trunk).deferrable,
    "sensor": SIPTrunkSensor(task_id="s", trunk_name="t").deferrable,
    "create_explicit": CreateSIPTrunkOperator(task_id="e", trunk=trunk, deferrable=False).deferrable,
    "sensor_explicit": SIPTrunkSensor(task_id="f", trunk_name="t", deferrable=False).deferrable,
}))
"""


@pytest.mark.parametrize("configured", ["true", "false", None], ids=["config-true", "config-false", "unset"])
def test_deferrable_default_follows_config(configured: str | None) -> None:
    """``[operators] default_deferrable`` decides the default, read when the module is imported
    (as Airflow's own operators do), so each setting runs in a fresh interpreter."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ)
    env.pop("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", None)
    if configured is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = configured
    out = subprocess.run(
        [sys.executable, "-c", _DEFERRABLE_PROBE],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    expected = configured == "true"
    assert (seen["create"], seen["sensor"]) == (expected, expected)
    assert (seen["create_explicit"], seen["sensor_explicit"]) == (False, False)  # an explicit argument wins


# ---------------------------------------------------------------------- CreateSIPTrunkOperator


def create_op(bolna_conn: str, trunk: Any = None, **kw: Any) -> CreateSIPTrunkOperator:
    return CreateSIPTrunkOperator(
        task_id="create", trunk=trunk if trunk is not None else spec(), bolna_conn_id=bolna_conn, **kw
    )


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"gateways": []}, "gateways"),
        ({"auth_password": None}, "auth_password"),
        ({"media_encryption": "sdes"}, "media_encryption"),
        ({"gateways": [{"gateway_address": "sip.acme.test", "port": 70000}]}, "gateways.0.port"),
        ({"phone_numbers": ["+919999999", "not-a-number"]}, "phone_numbers.1"),
    ],
    ids=["no-gateway", "no-password", "sdes-udp", "port", "numbers"],
)
def test_invalid_spec_fails_before_any_request(
    bolna_conn: str, context: dict, respx_mock: Any, bad: dict, field: str
) -> None:
    op = create_op(bolna_conn, spec(**bad))
    with pytest.raises(AirflowFailException) as err:
        op.execute(context)
    assert isinstance(err.value.__cause__, SpecError)
    assert field in err.value.__cause__.fields
    assert field in str(err.value)
    assert respx_mock.calls.call_count == 0


def test_create_new_trunk(bolna_conn: str, context: dict, respx_mock: Any, ti: Any) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[])
    post = respx_mock.post(TRUNKS).respond(201, json=trunk_json(numbers=["+911111111"]))
    result = create_op(bolna_conn, spec(phone_numbers=["+911111111"])).execute(context)
    assert result == {
        "trunk_id": TRUNK_ID,
        "name": "acme",
        "action": "created",
        "numbers_added": ["+911111111"],
        "patched_fields": [],
        "numbers": ["+911111111"],
    }
    assert post.call_count == 1
    body = json.loads(post.calls.last.request.content)
    assert body["phone_numbers"] == [{"phone_number": "+911111111", "e164_check_enabled": False}]
    assert body["auth_password"] == "Unit-S1P-pass-77"
    assert ti.xcoms["trunk_id"] == TRUNK_ID
    assert ti.xcoms["bolna_trunk_url"] == f"{DASHBOARD}/sip-trunks/{TRUNK_ID}"
    assert "Unit-S1P-pass-77" not in json.dumps(ti.xcoms) + json.dumps(result)


def test_rerun_adopts_existing_trunk(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[trunk_json(qualify_frequency=30)])
    result = create_op(bolna_conn, spec(qualify_frequency=60)).execute(context)
    assert result["action"] == "adopted" and result["trunk_id"] == TRUNK_ID
    assert methods(respx_mock) == ["GET"]


def test_update_sends_one_patch_with_only_the_changed_field(
    bolna_conn: str, context: dict, respx_mock: Any
) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[trunk_json(qualify_frequency=60)])
    patch = respx_mock.patch(TRUNK).respond(200, json=trunk_json(qualify_frequency=30))
    result = create_op(bolna_conn, spec(qualify_frequency=30), if_exists="update").execute(context)
    assert result["action"] == "updated" and result["patched_fields"] == ["qualify_frequency"]
    assert patch.call_count == 1
    assert bodies(respx_mock, "PATCH") == [{"qualify_frequency": 30}]
    assert methods(respx_mock) == ["GET", "PATCH"]


def test_if_exists_fail_refuses_without_retries(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[trunk_json()])
    with pytest.raises(AirflowFailException, match="already exists"):
        create_op(bolna_conn, if_exists="fail").execute(context)
    assert methods(respx_mock) == ["GET"]


def test_bad_if_exists_value(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    with pytest.raises(AirflowFailException, match="if_exists"):
        create_op(bolna_conn, if_exists="replace").execute(context)
    assert respx_mock.calls.call_count == 0


def test_auth_error_fails_without_retries(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).respond(403, json={"detail": "Invalid API key"})
    with pytest.raises(AirflowFailException, match="refused the API key of connection 'bolna_unit'") as err:
        create_op(bolna_conn).execute(context)
    assert isinstance(err.value.__cause__, BolnaAuthError)
    assert respx_mock.calls.call_count == 1
    assert API_KEY not in str(err.value)


def test_transient_error_propagates_for_airflow_retries(
    bolna_conn: str, context: dict, respx_mock: Any
) -> None:
    respx_mock.get(TRUNKS).respond(503, json={"message": "busy"})
    with pytest.raises(BolnaServerError):
        create_op(bolna_conn).execute(context)
    assert respx_mock.calls.call_count == 3  # the hook retried (max_retries=2); Airflow may retry the task


def test_password_reference_resolved_only_in_execute(
    bolna_conn: str, context: dict, respx_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import redact

    monkeypatch.setenv(
        "AIRFLOW_CONN_CARRIER_UNIT", json.dumps({"conn_type": "generic", "password": "Ref-S1P-0k9j"})
    )
    respx_mock.get(TRUNKS).respond(200, json=[])
    post = respx_mock.post(TRUNKS).respond(201, json=trunk_json())
    op = create_op(bolna_conn, spec(name="{{ params.name }}", auth_password={"conn": "{{ params.carrier }}"}))
    context["params"] = {"name": "acme", "carrier": "carrier_unit"}
    op.render_template_fields(context)
    assert op.trunk["auth_password"] == {"conn": "carrier_unit"}  # what the rendered template shows
    op.execute(context)
    assert json.loads(post.calls.last.request.content)["auth_password"] == "Ref-S1P-0k9j"
    assert op.trunk["auth_password"] == {"conn": "carrier_unit"}, "execute must not write the secret back"
    assert redact("pw=Ref-S1P-0k9j") == "pw=***"


def test_plain_password_masked_at_render(bolna_conn: str, context: dict) -> None:
    from airflow.providers.common.compat.sdk import redact

    op = create_op(bolna_conn, json.dumps(spec(auth_password="Plain-Rndr-S1P-3")))
    op.render_template_fields(context)
    assert redact(op.trunk) == op.trunk.replace("Plain-Rndr-S1P-3", "***")


def test_plain_password_masked_at_execute(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    from airflow.providers.common.compat.sdk import redact

    respx_mock.get(TRUNKS).respond(200, json=[])
    respx_mock.post(TRUNKS).respond(201, json=trunk_json())
    create_op(bolna_conn, spec(auth_password="Plain-Exec-S1P-4")).execute(context)
    assert redact("x Plain-Exec-S1P-4") == "x ***"


def test_param_password_and_trunk_spec_object(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[])
    post = respx_mock.post(TRUNKS).respond(201, json=trunk_json())
    context["params"] = {"pw": "Param-Exec-S1P-5"}
    create_op(bolna_conn, spec(auth_password={"param": "pw"})).execute(context)
    assert json.loads(post.calls.last.request.content)["auth_password"] == "Param-Exec-S1P-5"
    respx_mock.get(TRUNKS).respond(200, json=[trunk_json()])
    result = create_op(bolna_conn, TrunkSpec.model_validate(spec())).execute(context)
    assert result["action"] == "adopted"


def test_unresolvable_reference_fails_without_retries(
    bolna_conn: str, context: dict, respx_mock: Any
) -> None:
    with pytest.raises(AirflowFailException, match="auth_password: cannot read connection 'nope'") as err:
        create_op(bolna_conn, spec(auth_password={"conn": "nope"})).execute(context)
    assert isinstance(err.value.__cause__, SecretRefError)
    assert respx_mock.calls.call_count == 0


def test_wait_for_ready_defers_after_pushing_link(
    bolna_conn: str, context: dict, respx_mock: Any, ti: Any
) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[])
    respx_mock.post(TRUNKS).respond(201, json=trunk_json(numbers=[]))
    op = create_op(
        bolna_conn, spec(phone_numbers=["+912222222"]), wait_for_ready=True, deferrable=True, ready_timeout=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SIPTrunkTrigger)
    assert (trigger.trunk_id, trigger.expect_numbers, trigger.bolna_conn_id) == (
        TRUNK_ID,
        ["+912222222"],
        bolna_conn,
    )
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs["result"]["action"] == "created"
    assert ti.xcoms["bolna_trunk_url"].endswith(TRUNK_ID), "link must be pushed before deferring"


def test_wait_for_ready_end_to_end_deferrable(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[])
    respx_mock.post(TRUNKS).respond(201, json=trunk_json(numbers=[]))
    respx_mock.get(TRUNK).respond(200, json=trunk_json(numbers=[]))
    respx_mock.get(NUMBERS).mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[number_json("912222222")]),  # stored without "+": still a match
        ]
    )
    op = create_op(
        bolna_conn,
        spec(phone_numbers=["+912222222"]),
        wait_for_ready=True,
        deferrable=True,
        poll_interval=0.01,
    )
    result = run_deferrable(op, context)
    assert result["action"] == "created"
    assert methods(respx_mock)[2:] == ["GET"] * 4  # trigger: get trunk + numbers, twice


def test_wait_for_ready_sync_times_out(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(TRUNKS).respond(200, json=[trunk_json(is_active=False)])
    respx_mock.get(TRUNK).respond(200, json=trunk_json(is_active=False))
    op = create_op(bolna_conn, wait_for_ready=True, deferrable=False, poll_interval=0.01, ready_timeout=0.05)
    with pytest.raises(BolnaTrunkNotReadyError, match="is not active"):
        op.execute(context)


@pytest.mark.parametrize(
    ("event", "exc", "needle"),
    [
        (None, BolnaError, "unexpected event"),
        ({"status": "weird"}, BolnaError, "unexpected event"),
        ({"status": "timeout", "message": "m"}, BolnaTrunkNotReadyError, "not ready"),
        (
            {"status": "error", "message": "m", "error_type": "BolnaAuthError"},
            AirflowFailException,
            "API key",
        ),
        (
            {"status": "error", "message": "m", "error_type": "BolnaValidationError", "retryable": False},
            AirflowFailException,
            "not retried",
        ),
        ({"status": "error", "message": "boom", "error_type": "X", "retryable": True}, BolnaError, "boom"),
    ],
    ids=["none", "unknown", "timeout", "auth", "permanent", "transient"],
)
def test_execute_complete_validates_event(
    bolna_conn: str, context: dict, event: Any, exc: type, needle: str
) -> None:
    with pytest.raises(exc, match=needle):
        create_op(bolna_conn).execute_complete(context, event=event, result={"trunk_id": TRUNK_ID})


def test_execute_complete_success_returns_result(bolna_conn: str, context: dict) -> None:
    out = create_op(bolna_conn).execute_complete(
        context, event={"status": "success", "message": "ok"}, result={"a": 1}
    )
    assert out == {"a": 1}


# ---------------------------------------------------------------------- AddPhoneNumbersOperator


def test_add_numbers_created_unchanged_and_conflict(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(200, json=[number_json("+913333333", 1)])

    def add(request: httpx.Request) -> httpx.Response:
        number = json.loads(request.content)["phone_number"]
        if number == "+914444444":
            return httpx.Response(
                409, json={"message": "Phone number already exists on another active trunk"}
            )
        return httpx.Response(201, json=number_json(number, 9))

    respx_mock.post(NUMBERS).mock(side_effect=add)
    op = AddPhoneNumbersOperator(
        task_id="add",
        trunk_id=TRUNK_ID,
        numbers=["+913333333", "+914444444", "+915555555"],
        bolna_conn_id=bolna_conn,
    )
    with pytest.raises(AirflowFailException) as err:
        op.execute(context)
    cause = err.value.__cause__
    assert isinstance(cause, BolnaPhoneNumbersError)
    assert list(cause.failures) == ["+914444444"] and cause.permanent
    assert "+914444444" in str(err.value) and "another active trunk" in str(err.value)
    posted = [b["phone_number"] for b in bodies(respx_mock, "POST")]
    assert posted == ["+914444444", "+915555555"], "the others are still added; +913333333 was already there"


def test_add_numbers_xcom(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(200, json=[number_json("913333333", 1)])
    respx_mock.post(NUMBERS).respond(201, json=number_json("+915555555", 2))
    out = AddPhoneNumbersOperator(
        task_id="add",
        trunk_id=TRUNK_ID,
        numbers=["+913333333", {"phone_number": "+915555555", "name": "sales"}, "915555555"],
        bolna_conn_id=bolna_conn,
    ).execute(context)
    assert out == {
        "trunk_id": TRUNK_ID,
        "numbers": [
            {
                "phone_number": "+913333333",
                "action": "unchanged",
                "phone_number_id": "01NUM000000000000000000001",
            },
            {
                "phone_number": "+915555555",
                "action": "created",
                "phone_number_id": "01NUM000000000000000000002",
            },
        ],
    }
    assert bodies(respx_mock, "POST") == [
        {"phone_number": "+915555555", "name": "sales", "e164_check_enabled": False}
    ]


def test_add_single_number_as_mapped_value(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(200, json=[])
    respx_mock.post(NUMBERS).respond(201, json=number_json("+916666666"))
    out = AddPhoneNumbersOperator(
        task_id="add", trunk_id=TRUNK_ID, numbers="+916666666", bolna_conn_id=bolna_conn
    ).execute(context)
    assert [n["action"] for n in out["numbers"]] == ["created"]


def test_add_numbers_invalid_fail_before_requests(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    op = AddPhoneNumbersOperator(
        task_id="add", trunk_id=TRUNK_ID, numbers=["+916666666", "call-me", "12"], bolna_conn_id=bolna_conn
    )
    with pytest.raises(AirflowFailException, match=r"numbers\.1.*numbers\.2"):
        op.execute(context)
    assert respx_mock.calls.call_count == 0


def test_add_numbers_transient_failure_is_retryable(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(200, json=[])

    def add(request: httpx.Request) -> httpx.Response:
        number = json.loads(request.content)["phone_number"]
        if number == "+917777777":
            return httpx.Response(429, json={"message": "slow down"})
        return httpx.Response(201, json=number_json(number))

    respx_mock.post(NUMBERS).mock(side_effect=add)
    op = AddPhoneNumbersOperator(
        task_id="add", trunk_id=TRUNK_ID, numbers=["+917777777", "+918888888"], bolna_conn_id=bolna_conn
    )
    with pytest.raises(BolnaPhoneNumbersError) as err:
        op.execute(context)
    assert not err.value.permanent and list(err.value.failures) == ["+917777777"]
    assert "+918888888" in [b["phone_number"] for b in bodies(respx_mock, "POST")]


def test_add_numbers_mappable_in_a_dag() -> None:
    from airflow.providers.common.compat.sdk import DAG

    with DAG("map_test", schedule=None, start_date=datetime(2026, 1, 1)):
        by_number = AddPhoneNumbersOperator.partial(task_id="by_number", trunk_id="t1").expand(
            numbers=["+911", "+912"]
        )
        by_trunk = AddPhoneNumbersOperator.partial(task_id="by_trunk", numbers=["+913"]).expand(
            trunk_id=["t1", "t2"]
        )
    assert by_number.expand_input.value == {"numbers": ["+911", "+912"]}
    assert by_trunk.expand_input.value == {"trunk_id": ["t1", "t2"]}
    assert by_number.partial_kwargs["trunk_id"] == "t1"


# ---------------------------------------------------------------------- Update / Delete / Remove


def test_update_patches_only_given_fields(
    bolna_conn: str, context: dict, respx_mock: Any, ti: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ROTATED_PW", "Rotated-S1P-22")
    respx_mock.patch(TRUNK).respond(200, json=trunk_json())
    out = UpdateSIPTrunkOperator(
        task_id="u",
        trunk_id=TRUNK_ID,
        bolna_conn_id=bolna_conn,
        update={"qualify_frequency": "30", "auth_password": {"variable": "rotated_pw"}},
    ).execute(context)
    assert out == {
        "trunk_id": TRUNK_ID,
        "name": "acme",
        "updated_fields": ["auth_password", "qualify_frequency"],
    }
    assert bodies(respx_mock, "PATCH") == [{"qualify_frequency": 30, "auth_password": "Rotated-S1P-22"}]
    assert ti.xcoms["bolna_trunk_url"] == f"{DASHBOARD}/sip-trunks/{TRUNK_ID}"
    assert "Rotated-S1P-22" not in json.dumps(out)


@pytest.mark.parametrize(
    ("update", "needle"),
    [
        ({"provider": "other"}, "provider"),
        ({"media_encryption": "sdes"}, "transport"),
        ({}, "at least one field"),
        ({"qualify_frequency": -1}, "qualify_frequency"),
        ({"colour": "blue"}, "colour"),
    ],
    ids=["immutable", "sdes", "empty", "range", "unknown"],
)
def test_update_validated_before_sending(
    bolna_conn: str, context: dict, respx_mock: Any, update: dict, needle: str
) -> None:
    with pytest.raises(AirflowFailException, match=needle):
        UpdateSIPTrunkOperator(
            task_id="u", trunk_id=TRUNK_ID, update=update, bolna_conn_id=bolna_conn
        ).execute(context)
    assert respx_mock.calls.call_count == 0


@pytest.mark.parametrize(("status", "deleted"), [(200, True), (404, False)], ids=["deleted", "already-gone"])
def test_delete_is_idempotent(
    bolna_conn: str, context: dict, respx_mock: Any, status: int, deleted: bool
) -> None:
    respx_mock.delete(TRUNK).respond(status, json={"message": "ok" if status == 200 else "trunk not found"})
    out = DeleteSIPTrunkOperator(task_id="d", trunk_id=TRUNK_ID, bolna_conn_id=bolna_conn).execute(context)
    assert out == {"trunk_id": TRUNK_ID, "deleted": deleted}


def test_delete_deactivates_first(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.patch(TRUNK).respond(200, json=trunk_json(is_active=False))
    respx_mock.delete(TRUNK).respond(200, json={"message": "deleted"})
    DeleteSIPTrunkOperator(
        task_id="d", trunk_id=TRUNK_ID, deactivate_first=True, bolna_conn_id=bolna_conn
    ).execute(context)
    assert methods(respx_mock) == ["PATCH", "DELETE"]
    assert bodies(respx_mock, "PATCH") == [{"is_active": False}]


def test_delete_empty_trunk_id(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    with pytest.raises(AirflowFailException, match="trunk_id is empty"):
        DeleteSIPTrunkOperator(task_id="d", trunk_id="  ", bolna_conn_id=bolna_conn).execute(context)


def test_remove_number_by_number(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(200, json=[number_json("919999999", 4)])
    delete = respx_mock.delete(f"{NUMBERS}/01NUM000000000000000000004").respond(
        200, json={"message": "removed"}
    )
    out = RemovePhoneNumberOperator(
        task_id="r", trunk_id=TRUNK_ID, phone_number="+919999999", bolna_conn_id=bolna_conn
    ).execute(context)
    assert out == {
        "trunk_id": TRUNK_ID,
        "phone_number": "+919999999",
        "phone_number_id": "01NUM000000000000000000004",
        "removed": True,
    }
    assert delete.call_count == 1


def test_remove_number_already_gone(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(200, json=[])
    out = RemovePhoneNumberOperator(
        task_id="r", trunk_id=TRUNK_ID, phone_number="+919999999", bolna_conn_id=bolna_conn
    ).execute(context)
    assert out["removed"] is False and methods(respx_mock) == ["GET"]
    respx_mock.delete(f"{NUMBERS}/n1").respond(404, json={"message": "not found"})
    out = RemovePhoneNumberOperator(
        task_id="r", trunk_id=TRUNK_ID, phone_number_id="n1", bolna_conn_id=bolna_conn
    ).execute(context)
    assert out == {"trunk_id": TRUNK_ID, "phone_number": None, "phone_number_id": "n1", "removed": False}


def test_remove_number_trunk_gone(bolna_conn: str, context: dict, respx_mock: Any) -> None:
    respx_mock.get(NUMBERS).respond(404, json={"message": "trunk not found"})
    out = RemovePhoneNumberOperator(
        task_id="r", trunk_id=TRUNK_ID, phone_number="+919999999", bolna_conn_id=bolna_conn
    ).execute(context)
    assert out["removed"] is False


def test_remove_number_needs_exactly_one(bolna_conn: str, context: dict) -> None:
    with pytest.raises(AirflowFailException, match="exactly one"):
        RemovePhoneNumberOperator(task_id="r", trunk_id=TRUNK_ID, bolna_conn_id=bolna_conn).execute(context)
    with pytest.raises(AirflowFailException, match="exactly one"):
        RemovePhoneNumberOperator(
            task_id="r", trunk_id=TRUNK_ID, phone_number="+91", phone_number_id="x", bolna_conn_id=bolna_conn
        ).execute(context)
