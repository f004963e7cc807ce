"""The agent-binding shapes, readiness with expected agents, and the hook's reading of answers
the sandbox never gives (an undocumented 404 wording, the documented 401): pure or respx."""

from __future__ import annotations

import json

import pytest
import respx

from airflow_provider_bolna.exceptions import (
    BolnaAgentNotFoundError,
    BolnaAuthError,
    BolnaNotFoundError,
    BolnaResponseError,
    BolnaValidationError,
)
from airflow_provider_bolna.hooks import calls
from airflow_provider_bolna.hooks.base import AGENT_BUDGET, DEFAULT_BUDGET
from airflow_provider_bolna.models import (
    AccountPhoneNumber,
    AgentTelephonyUpdate,
    InboundAgentResponse,
    InboundSetupRequest,
    InboundUnlinkRequest,
    InboundUnlinkResponse,
    PhoneNumber,
    SIPTrunk,
    User,
    parse_agent_ids,
    parse_number_agents,
)
from airflow_provider_bolna.readiness import evaluate_trunk, needs_number_list
from tests.unit.helpers import Runner, calls_of, make_hook, number_json, trunk_json

AGENT_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
NUMBER_ID = "01HQNUMBER111222333"


# ---------------------------------------------------------------------- shapes


def test_agent_id_absent_is_not_agent_id_null() -> None:
    absent = PhoneNumber.model_validate(number_json("+14155550100"))
    null = PhoneNumber.model_validate(number_json("+14155550100", agent_id=None))
    mapped = PhoneNumber.model_validate(number_json("+14155550100", agent_id=AGENT_ID))
    assert (absent.agent_known, absent.agent_id) == (False, None)
    assert (null.agent_known, null.agent_id) == (True, None)
    assert (mapped.agent_known, mapped.agent_id) == (True, AGENT_ID)
    embedded = SIPTrunk.model_validate(trunk_json(phone_numbers=[number_json("+1415", agent_id=None)]))
    assert embedded.phone_numbers[0].agent_known


@pytest.mark.parametrize(
    "body",
    [
        {
            "url": f"https://api.bolna.ai/inbound_call?agent_id={AGENT_ID}&user_id=u1",
            "phone_number": "+1415",
            "id": NUMBER_ID,
        },
        {"message": "SIP trunk number successfully mapped to agent"},
        {},
        None,
    ],
    ids=["InboundAgentResponse", "message", "empty-object", "empty-body"],
)
def test_both_documented_setup_answers_read(body: object) -> None:
    answer = calls.setup_inbound(InboundSetupRequest(agent_id=AGENT_ID, phone_number_id=NUMBER_ID)).body()
    answer.feed(b"" if body is None else json.dumps(body).encode())
    parsed = answer.result()
    assert isinstance(parsed, InboundAgentResponse)
    assert parsed.agent_id == (AGENT_ID if body and "url" in body else None)


def test_unlink_answer_and_account_numbers() -> None:
    unlinked = InboundUnlinkResponse.model_validate({"url": None, "phone_number": "+1415", "id": NUMBER_ID})
    assert (unlinked.url, unlinked.agent_id, unlinked.id) == (None, None, NUMBER_ID)
    listed = AccountPhoneNumber.model_validate(
        {
            "id": "n1",
            "phone_number": "+19876543210",
            "agent_id": None,
            "telephony_provider": "twilio",
            "rented": True,
            "price": "5.0",
            "renewal_at": "2026-01-01",
            "humanized_created_at": "a day ago",
        }
    )
    assert (listed.agent_known, listed.rented, listed.key, listed.model_extra["price"]) == (
        True,
        True,
        "19876543210",
        "5.0",
    )


def test_user_tolerates_missing_and_extra_fields() -> None:
    user = User.model_validate({"id": "u1", "wallet": 12, "plan": "pro"})
    assert (user.id, user.wallet, user.name, user.concurrency, user.model_extra) == (
        "u1",
        12.0,
        None,
        None,
        {"plan": "pro"},
    )


@pytest.mark.parametrize(
    "agent_id",
    [AGENT_ID, "3c90c3cc0d444b5088888dd25736052a", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "a/b?c", " padded "],
)
def test_ids_are_opaque(agent_id: str) -> None:
    body = InboundSetupRequest(agent_id=agent_id, phone_number_id=agent_id).to_request_body()
    assert body == {"agent_id": agent_id, "phone_number_id": agent_id}, "kept exactly as given"


@pytest.mark.parametrize("extra", [{"allow_multiple": False}, {"ivr_config": {}}])
def test_plivo_only_fields_can_never_be_sent(extra: dict) -> None:
    with pytest.raises(BolnaValidationError, match=next(iter(extra))):
        calls.as_binding(InboundSetupRequest, agent_id="a", phone_number_id="n", **extra)


def test_requests_send_only_what_is_documented() -> None:
    assert InboundUnlinkRequest(phone_number_id="n").to_request_body() == {"phone_number_id": "n"}
    assert InboundUnlinkRequest(phone_number_id="n", agent_id="a").to_request_body() == {
        "phone_number_id": "n",
        "agent_id": "a",
    }
    assert AgentTelephonyUpdate.for_provider("sip-trunk").to_request_body() == {
        "agent_config": {"telephony_provider": "sip-trunk"}
    }
    for bad, field in [
        ({"agent_id": " ", "phone_number_id": "n"}, "agent_id"),
        ({"agent_id": "a", "phone_number_id": 5}, "phone_number_id"),
    ]:
        with pytest.raises(BolnaValidationError, match=field) as err:
            calls.as_binding(InboundSetupRequest, **bad)
        assert "5" not in str(err.value).replace("InboundSetupRequest", ""), "input values are never echoed"


def test_parse_number_agents_and_agent_ids() -> None:
    assert parse_number_agents(None, "f") == {} and parse_number_agents('{"+1415": "a"}', "f") == {
        "+1415": "a"
    }
    for bad in ("[1]", "not json", {"+1415": ""}, {"+1415": 5}, ["a"]):
        with pytest.raises(BolnaValidationError, match="^.*f"):
            parse_number_agents(bad, "f")
    assert parse_agent_ids("a1", "g") == ["a1"] and parse_agent_ids('["a1", "a2", "a1"]', "g") == ["a1", "a2"]
    assert parse_agent_ids(("a1",), "g") == ["a1"] and parse_agent_ids(None, "g") == []
    for bad, where in (([" "], "g.0"), ("[oops", "g"), (5, "g")):
        with pytest.raises(BolnaValidationError, match=where):
            parse_agent_ids(bad, "g")


# ---------------------------------------------------------------------- readiness


def _trunk(*numbers: dict) -> SIPTrunk:
    return SIPTrunk.model_validate(trunk_json(phone_numbers=list(numbers)))


def test_evaluate_verifies_shown_agents_and_reports_the_others() -> None:
    shown = number_json("+14155550100", agent_id="a1")
    hidden = number_json("+14155550101")
    status = evaluate_trunk(
        _trunk(shown, hidden),
        None,
        expect_active=True,
        expect_numbers=[],
        expect_agents={"14155550100": "a1", "+14155550101": "a2"},
    )
    assert status.done and status.agents == {"14155550100": "verified", "+14155550101": "unverifiable"}
    assert status.message.endswith(
        "with 2 expected number(s); inbound agents: 1 verified, 1 unverifiable "
        "(the number list does not show agent_id)"
    )
    assert status.to_xcom()["agents"] == status.agents


@pytest.mark.parametrize(("agent", "shown"), [("a9", "agent a9"), (None, "no agent")])
def test_evaluate_a_visible_mismatch_is_not_ready(agent: str | None, shown: str) -> None:
    status = evaluate_trunk(
        _trunk(number_json("+14155550100", agent_id=agent)),
        None,
        expect_active=True,
        expect_numbers=[],
        expect_agents={"+14155550100": "a1"},
    )
    assert not status.done and status.agents == {"+14155550100": "mismatch"}
    assert f"+14155550100 ({shown}, expected a1)" in status.message


def test_evaluate_without_expected_agents_is_unchanged() -> None:
    status = evaluate_trunk(
        _trunk(number_json("+14155550100")), None, expect_active=True, expect_numbers=["+14155550100"]
    )
    assert status.agents is None and "agents" not in status.to_xcom()
    assert status.message.endswith("is ready with 1 expected number(s)")


def test_needs_number_list_for_agents_the_trunk_body_does_not_show() -> None:
    assert not needs_number_list(
        _trunk(number_json("+14155550100", agent_id=None)), [], {"+14155550100": "a"}
    )
    assert needs_number_list(_trunk(number_json("+14155550100")), [], {"+14155550100": "a"})
    assert needs_number_list(_trunk(), [], {"+14155550100": "a"})
    assert not needs_number_list(_trunk(number_json("+14155550100")), ["+14155550100"])


# ---------------------------------------------------------------------- answers the sandbox never gives (respx)


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def test_an_undocumented_404_after_the_number_shows_is_the_agents(api: respx.MockRouter, run: Runner) -> None:
    """A 404 naming neither: look for the number once; it is there, so the agent is unknown."""
    api.post("/inbound/setup").respond(404, json={"detail": "Not Found"})
    api.get("/sip-trunks/trunks/T1/numbers").respond(
        200, json=[number_json("+14155550100", number_id=NUMBER_ID)]
    )
    with pytest.raises(BolnaAgentNotFoundError, match="agent a1 does not exist"):
        run(make_hook(), "ensure_inbound_agent", "T1", "+14155550100", "a1", phone_number_id=NUMBER_ID)
    assert calls_of(api) == [
        ("POST", "/inbound/setup"),
        ("GET", "/sip-trunks/trunks/T1/numbers"),
        ("POST", "/inbound/setup"),
    ]


def test_a_number_404_while_the_list_shows_it_stays_transient(api: respx.MockRouter, run: Runner) -> None:
    api.post("/inbound/setup").respond(404, json={"error": 404, "message": "Phone number doesn't exist."})
    api.get("/sip-trunks/trunks/T1/numbers").respond(
        200, json=[number_json("+14155550100", number_id=NUMBER_ID)]
    )
    with pytest.raises(BolnaNotFoundError, match="is on trunk T1 but /inbound/setup does not find it") as err:
        run(make_hook(), "ensure_inbound_agent", "T1", "+14155550100", "a1", phone_number_id=NUMBER_ID)
    assert not isinstance(err.value, BolnaAgentNotFoundError)


def test_the_documented_401_is_an_auth_failure(api: respx.MockRouter, run: Runner) -> None:
    api.patch(f"/v2/agent/{AGENT_ID}").respond(401, json={"error": 401, "message": "Access denied"})
    with pytest.raises(BolnaAuthError, match="Access denied"):
        run(make_hook(), "ensure_outbound_provider", AGENT_ID)
    assert len(api.calls) == 1, "never retried"


def test_a_setup_answer_of_another_shape_is_a_response_error(api: respx.MockRouter, run: Runner) -> None:
    api.post("/inbound/setup").respond(200, json=["mapped"])
    with pytest.raises(BolnaResponseError, match="unexpected shape"):
        run(make_hook(), "setup_inbound", AGENT_ID, NUMBER_ID)


def test_each_call_draws_from_its_budget() -> None:
    hook = make_hook(requests_per_minute=600, agent_requests_per_minute=30)
    update = calls.update_agent(AGENT_ID, AgentTelephonyUpdate.for_provider("sip-trunk"))
    setup = calls.setup_inbound(InboundSetupRequest(agent_id=AGENT_ID, phone_number_id=NUMBER_ID))
    assert (update.budget, setup.budget, calls.list_numbers("T1").budget) == (
        AGENT_BUDGET,
        DEFAULT_BUDGET,
        DEFAULT_BUDGET,
    )
    assert hook.limiter_for(update) is hook.limiter_for(AGENT_BUDGET) is not hook.limiter
    assert hook.limiter_for(setup) is hook.limiter
    assert (hook.limiter_for(update).max_rate, hook.limiter.max_rate) == (
        pytest.approx(0.5),
        pytest.approx(10.0),
    )
    assert make_hook(agent_requests_per_minute=0).limiter_for(AGENT_BUDGET).enabled is False
    assert (
        update.idempotent
        and setup.idempotent
        and calls.unlink_inbound(InboundUnlinkRequest(phone_number_id="n")).idempotent
    )
    assert not calls.add_number("T1", calls.as_number("+1415")).idempotent, "an add is not a replace"
