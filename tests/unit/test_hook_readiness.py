"""Readiness checks (shared by the sensor's poke and the trigger) and quick conflict answers."""

from __future__ import annotations

import time

import httpx
import pytest

from airflow_provider_bolna.exceptions import (
    BolnaAuthError,
    BolnaConflictError,
    BolnaError,
    BolnaValidationError,
)
from airflow_provider_bolna.models import SpecError, parse_trunk_spec
from tests.unit.helpers import TRUNK_ID, TRUNKS_PATH, calls_of, make_hook, number_json, spec, trunk_json

NUMBERS_PATH = f"{TRUNKS_PATH}/{TRUNK_ID}/numbers"


def test_ready_when_active_and_numbers_visible(api, hook, run):
    api.get(f"{TRUNKS_PATH}/{TRUNK_ID}").respond(
        200, json=trunk_json(phone_numbers=[number_json("+14155550100")])
    )
    status = run(hook, "check_trunk_ready", trunk_id=TRUNK_ID, expect_numbers=["14155550100"])
    assert status.done, status.message
    assert calls_of(api) == [("GET", f"{TRUNKS_PATH}/{TRUNK_ID}")]  # numbers embedded: no list call


def test_missing_number_looks_at_number_list_then_reports_it(api, hook, run):
    api.get(f"{TRUNKS_PATH}/{TRUNK_ID}").respond(200, json=trunk_json())
    api.get(NUMBERS_PATH).respond(200, json=[number_json("+14155550100")])
    status = run(
        hook, "check_trunk_ready", trunk_id=TRUNK_ID, expect_numbers=["+14155550100", "+14155550199"]
    )
    assert not status.done
    assert status.missing == ["+14155550199"]
    assert "+14155550199" in status.message


def test_inactive_trunk_is_not_ready_unless_not_asked(api, hook, run):
    api.get(f"{TRUNKS_PATH}/{TRUNK_ID}").respond(200, json=trunk_json(is_active=False))
    assert not run(hook, "check_trunk_ready", trunk_id=TRUNK_ID).done
    assert run(hook, "check_trunk_ready", trunk_id=TRUNK_ID, expect_active=False).done


def test_by_name_and_not_found_yet(api, hook, run):
    api.get(TRUNKS_PATH).respond(200, json=[])
    status = run(hook, "check_trunk_ready", trunk_name="cust-1")
    assert not status.done and "does not exist" in status.message


def test_transient_error_is_not_ready_but_auth_error_raises(api, run):
    hook = make_hook(max_retries=0)
    api.get(f"{TRUNKS_PATH}/{TRUNK_ID}").respond(503, json={"error": 503, "message": "busy"})
    assert not run(hook, "check_trunk_ready", trunk_id=TRUNK_ID).done
    api.get(f"{TRUNKS_PATH}/{TRUNK_ID}").respond(403, json={"detail": "Invalid API key"})
    with pytest.raises(BolnaAuthError):
        run(hook, "check_trunk_ready", trunk_id=TRUNK_ID)


def test_needs_an_id_or_a_name(hook, run):
    with pytest.raises(BolnaValidationError):
        run(hook, "check_trunk_ready")


def test_number_on_another_trunk_fails_after_one_look_without_waiting(api, run):
    hook = make_hook(number_visibility_timeout=5.0)
    api.get(NUMBERS_PATH).respond(200, json=[])
    api.post(NUMBERS_PATH).respond(
        409, json={"error": 409, "message": "Phone number already exists on another active trunk"}
    )
    started = time.monotonic()
    with pytest.raises(BolnaConflictError, match="14155550100"):
        run(hook, "ensure_number", TRUNK_ID, "+14155550100")
    assert time.monotonic() - started < 2.0  # did not wait out the 5 s visibility timeout
    assert calls_of(api).count(("GET", NUMBERS_PATH)) == 2  # the known-numbers read + one look


def test_unexplained_conflict_waits_for_the_number_to_show(api, run):
    hook = make_hook(number_visibility_timeout=0.3)
    api.get(NUMBERS_PATH).mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[number_json("+14155550100")]),
        ]
    )
    api.post(NUMBERS_PATH).respond(409, json={"error": 409, "message": "conflict"})
    result = run(hook, "ensure_number", TRUNK_ID, "+14155550100")
    assert result.action == "unchanged"


def test_spec_error_is_a_bolna_error_naming_the_field():
    with pytest.raises(BolnaError) as info:
        parse_trunk_spec(spec(gateways=[{"gateway_address": "sip.x", "port": 0}]), context="customer 7")
    assert isinstance(info.value, SpecError)
    assert str(info.value).startswith("customer 7: gateways.0.port")


def test_phone_numbers_accept_plain_strings():
    parsed = parse_trunk_spec(spec(phone_numbers=["+14155550100", 14155550101]))
    assert [n.phone_number for n in parsed.phone_numbers] == ["+14155550100", "14155550101"]


def test_codec_spacing_in_a_response_is_not_drift():
    wanted = parse_trunk_spec(spec())
    from airflow_provider_bolna.models import SIPTrunk

    actual = SIPTrunk.model_validate(trunk_json(allow="ulaw, alaw"))
    assert wanted.drift(actual) is None
