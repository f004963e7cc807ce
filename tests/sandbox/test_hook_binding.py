"""The hook's agent-binding endpoints and flows against the sandbox, over real HTTP.

Every test runs the sync and the async twin (``run``), and asserts the sandbox's own records:
the mappings it holds (``inbound_mappings()``), the agents' providers, and how many requests of
each kind reached it (counters and write attempts), so an unneeded request cannot go unnoticed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import SecretStr

from airflow_provider_bolna.exceptions import (
    BolnaAgentNotFoundError,
    BolnaAuthError,
    BolnaNotFoundError,
    BolnaValidationError,
)
from airflow_provider_bolna.failures import is_permanent
from airflow_provider_bolna.hooks.bolna import BindingResult, BolnaHook, BolnaSettings
from airflow_provider_bolna.models import AccountPhoneNumber, InboundAgentResponse, User
from airflow_provider_bolna.sandbox.testing import SandboxServer
from tests.unit.helpers import Runner

pytestmark = pytest.mark.integration

SETUP = "POST /inbound/setup"
UNLINK = "POST /inbound/unlink"
AGENT = "PATCH /v2/agent/{agent_id}"
LIST_NUMBERS = "GET /sip-trunks/trunks/{trunk_id}/numbers"
SHOWS_AGENT = pytest.mark.bolna_sandbox_knobs(number_list_shows_agent_id=True)
PHONE, PHONE_2 = "+14155550100", "+14155550101"


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def make_hook(server: SandboxServer, **settings: Any) -> BolnaHook:
    values: dict[str, Any] = {
        "api_key": SecretStr(server.api_key),
        "base_url": server.url,
        "requests_per_minute": 0,
        "agent_requests_per_minute": 0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.2,
        "number_visibility_timeout": 3.0,
    }
    values.update(settings)
    return BolnaHook(settings=BolnaSettings(**values))


@pytest.fixture
def hook(sandbox: SandboxServer) -> BolnaHook:
    return make_hook(sandbox)


@pytest.fixture
def trunk(hook: BolnaHook) -> dict[str, Any]:
    """A trunk with two numbers: ``{"id", "numbers": {phone: number id}}``."""
    result = hook.ensure_trunk(
        {
            "name": "bind-me",
            "provider": "twilio",
            "auth_type": "ip-based",
            "gateways": [{"gateway_address": "sip.example.net"}],
            "ip_identifiers": [{"ip_address": "203.0.113.0/28"}],
            "phone_numbers": [PHONE, PHONE_2],
        }
    )
    return {"id": result.trunk.id, "numbers": {n.phone_number: n.id for n in result.trunk.phone_numbers}}


@pytest.fixture
def agents(sandbox: SandboxServer) -> list[str]:
    return [a["id"] for a in sandbox.admin.create_agents(3)]


def requests(server: SandboxServer) -> Counter[str]:
    """Requests received per endpoint, whatever their status."""
    return Counter(
        {
            endpoint: sum(by_status.values())
            for endpoint, by_status in server.admin.counters()["requests"].items()
        }
    )


def fresh(server: SandboxServer) -> None:
    """Forget counters and attempts: what follows is what the step under test sent."""
    server.admin.reset_counters()
    server.admin.reset_attempts()


# ---------------------------------------------------------------------- endpoints


def test_get_user(sandbox: SandboxServer, hook: BolnaHook, run: Runner) -> None:
    user = run(hook, "get_user")
    assert isinstance(user, User)
    assert (user.id, user.email, user.wallet, user.concurrency.max) == (
        "sandbox-user",
        "sandbox@example.com",
        9930.01,
        10,
    )
    with pytest.raises(BolnaAuthError):
        run(make_hook(sandbox, api_key=SecretStr("wrong-key")), "get_user")


def test_update_agent_telephony(
    sandbox: SandboxServer, hook: BolnaHook, agents: list[str], run: Runner
) -> None:
    fresh(sandbox)
    response = run(hook, "update_agent_telephony", agents[0])
    assert (response.message, response.state) == ("success", "updated")
    run(hook, "update_agent_telephony", agents[1], "trunk")  # the newer family's value: kept open
    assert sandbox.agent_providers() == {agents[0]: "sip-trunk", agents[1]: "trunk", agents[2]: None}
    with pytest.raises(BolnaAgentNotFoundError, match="agent no-such-agent does not exist") as err:
        run(hook, "update_agent_telephony", "no-such-agent")
    assert err.value.agent_id == "no-such-agent" and is_permanent(err.value)
    # restated with a clearer message, it still names the call it came from
    assert (err.value.status_code, err.value.method) == (404, "PATCH")
    assert err.value.path is not None and err.value.path.endswith("/no-such-agent")
    with pytest.raises(BolnaValidationError, match="telephony_provider"):
        run(hook, "update_agent_telephony", agents[0], " ")
    assert requests(sandbox)[AGENT] == 3, "the blank provider was refused before sending"


@pytest.mark.parametrize("style", ["message", "agent"])
def test_setup_and_unlink_read_both_documented_answers(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner, style: str
) -> None:
    sandbox.admin.config(inbound_setup_response=style)
    number_id = trunk["numbers"][PHONE]
    answer = run(hook, "setup_inbound", agents[0], number_id)
    assert isinstance(answer, InboundAgentResponse)
    if style == "agent":
        assert (answer.id, answer.phone_number, answer.agent_id) == (number_id, PHONE, agents[0])
    else:
        assert answer.message == "SIP trunk number successfully mapped to agent" and answer.id is None
    assert sandbox.inbound_mappings() == {number_id: agents[0]}
    unlinked = run(hook, "unlink_inbound", number_id, agents[0])
    assert (unlinked.url, unlinked.id) == ((None, number_id) if style == "agent" else (None, None))
    assert sandbox.inbound_mappings() == {}


@pytest.mark.parametrize("style", ["message", "agent"])
def test_setup_404s_tell_the_number_from_the_agent(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner, style: str
) -> None:
    sandbox.admin.config(inbound_setup_response=style)
    with pytest.raises(BolnaNotFoundError) as number_err:
        run(hook, "setup_inbound", agents[0], "no-such-number")
    assert not isinstance(number_err.value, BolnaAgentNotFoundError) and not is_permanent(number_err.value)
    with pytest.raises(BolnaAgentNotFoundError):
        run(hook, "setup_inbound", "no-such-agent", trunk["numbers"][PHONE])
    with pytest.raises(BolnaNotFoundError):
        run(hook, "unlink_inbound", "no-such-number")
    assert sandbox.inbound_mappings() == {}


def test_ids_are_opaque(sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], run: Runner) -> None:
    """Dashed UUIDs, 32 hex characters and ids with ``/`` or ``?`` all go through unchanged."""
    ids = ["3c90c3cc-0d44-4b50-8888-8dd25736052a", "3C90C3CC0D444B5088888DD25736052A", "team/a?b=1#c"]
    sandbox.admin.create_agents([{"id": i} for i in ids])
    for agent_id in ids:
        run(hook, "update_agent_telephony", agent_id)
        run(hook, "setup_inbound", agent_id, trunk["numbers"][PHONE])
        assert sandbox.inbound_mappings() == {trunk["numbers"][PHONE]: agent_id}
    assert {a: sandbox.agent_providers()[a] for a in ids} == dict.fromkeys(ids, "sip-trunk")


def test_list_account_numbers(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    assert run(hook, "list_account_numbers") == []  # SIP numbers there: unverified, off by default
    sandbox.admin.config(phone_numbers_all_includes_sip=True)
    run(hook, "setup_inbound", agents[0], trunk["numbers"][PHONE])
    numbers = {n.phone_number: n for n in run(hook, "list_account_numbers")}
    assert set(numbers) == {PHONE, PHONE_2} and all(
        isinstance(n, AccountPhoneNumber) for n in numbers.values()
    )
    assert (numbers[PHONE].agent_id, numbers[PHONE].agent_known) == (agents[0], True)
    assert (numbers[PHONE_2].agent_id, numbers[PHONE_2].agent_known) == (None, True)


# ---------------------------------------------------------------------- ensure_inbound_agent


@SHOWS_AGENT
def test_ensure_inbound_agent_where_the_list_shows_agents(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    number_id = trunk["numbers"][PHONE]
    fresh(sandbox)
    first = run(hook, "ensure_inbound_agent", trunk["id"], PHONE, agents[0])
    assert first == BindingResult("bound", PHONE, number_id, agents[0], verified=True)
    assert requests(sandbox) == {LIST_NUMBERS: 1, SETUP: 1}

    fresh(sandbox)
    again = run(hook, "ensure_inbound_agent", trunk["id"], "14155550100", agents[0])
    assert (again.action, again.verified, again.phone_number_id) == ("unchanged", True, number_id)
    assert requests(sandbox) == {LIST_NUMBERS: 1}, "a mapping the list shows is not sent again"

    fresh(sandbox)
    moved = run(hook, "ensure_inbound_agent", trunk["id"], PHONE, agents[1])
    assert moved == BindingResult(
        "rebound", PHONE, number_id, agents[1], verified=True, previous_agent_id=agents[0]
    )
    assert sandbox.inbound_mappings() == {number_id: agents[1]}
    assert sandbox.inbound_setup_attempts_by_number() == {number_id: 1}


def test_ensure_inbound_agent_where_the_list_does_not_show_agents(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    number_id = trunk["numbers"][PHONE]
    first = run(hook, "ensure_inbound_agent", trunk["id"], PHONE, agents[0])
    assert first == BindingResult("bound", PHONE, number_id, agents[0], verified=False)
    fresh(sandbox)
    again = run(hook, "ensure_inbound_agent", trunk["id"], PHONE, agents[0])
    assert (again.action, again.verified) == ("bound", False), "unverifiable: re-applied (setup replaces)"
    assert requests(sandbox) == {LIST_NUMBERS: 1, SETUP: 1}
    assert sandbox.inbound_mappings() == {number_id: agents[0]}


def test_a_current_record_costs_no_request(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    number_id = trunk["numbers"][PHONE]
    run(hook, "ensure_inbound_agent", trunk["id"], PHONE, agents[0], phone_number_id=number_id)
    fresh(sandbox)
    same = run(
        hook,
        "ensure_inbound_agent",
        trunk["id"],
        PHONE,
        agents[0],
        phone_number_id=number_id,
        recorded_agent_id=agents[0],
    )
    assert same == BindingResult("unchanged", PHONE, number_id, agents[0], verified=None)
    assert requests(sandbox) == {}

    changed = run(
        hook,
        "ensure_inbound_agent",
        trunk["id"],
        PHONE,
        agents[1],
        phone_number_id=number_id,
        recorded_agent_id=agents[0],
    )
    assert changed == BindingResult("rebound", PHONE, number_id, agents[1], None, previous_agent_id=agents[0])
    assert requests(sandbox) == {SETUP: 1}, "the id was given: no list call"
    assert sandbox.inbound_mappings() == {number_id: agents[1]}


def test_known_numbers_spare_the_list_call(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    known = hook.list_numbers(trunk["id"])
    fresh(sandbox)
    for phone in (PHONE, PHONE_2):
        assert (
            run(hook, "ensure_inbound_agent", trunk["id"], phone, agents[2], known_numbers=known).action
            == "bound"
        )
    assert requests(sandbox) == {SETUP: 2}
    assert sandbox.inbound_mappings() == {
        trunk["numbers"][PHONE]: agents[2],
        trunk["numbers"][PHONE_2]: agents[2],
    }


@pytest.mark.parametrize(
    ("with_id", "style"),
    [(True, "message"), (True, "agent"), (False, "message")],
    ids=["id-from-add", "id-from-add-agent-style", "by-number"],
)
def test_a_just_added_number_is_waited_for(
    sandbox: SandboxServer,
    hook: BolnaHook,
    trunk: dict[str, Any],
    agents: list[str],
    run: Runner,
    with_id: bool,
    style: str,
) -> None:
    """Either documented 404 wording of an unknown number means "wait for it", not "no agent"."""
    sandbox.admin.config(number_visibility_delay_s=1.0, inbound_setup_response=style)
    added = hook.ensure_number(trunk["id"], "+14155550199").number
    fresh(sandbox)
    result = run(
        hook,
        "ensure_inbound_agent",
        trunk["id"],
        "+14155550199",
        agents[0],
        phone_number_id=added.id if with_id else None,
    )
    assert (result.action, result.phone_number_id) == ("bound", added.id)
    assert sandbox.inbound_mappings() == {added.id: agents[0]}
    statuses = [a["status"] for a in sandbox.write_attempts("inbound_setup")]
    assert statuses == (["404", "200"] if with_id else ["200"]), "one setup after the number showed"
    assert requests(sandbox)[LIST_NUMBERS] >= 2, "the number was invisible at first"


def test_a_stale_recorded_id_is_replaced_by_the_one_the_trunk_shows(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    old_id = trunk["numbers"][PHONE]
    hook.remove_number(trunk["id"], old_id)
    new_id = hook.ensure_number(trunk["id"], PHONE).number.id
    result = run(
        hook,
        "ensure_inbound_agent",
        trunk["id"],
        PHONE,
        agents[0],
        phone_number_id=old_id,
        recorded_agent_id=agents[1],
    )
    assert (result.action, result.phone_number_id, result.previous_agent_id) == ("rebound", new_id, agents[1])
    assert sandbox.inbound_mappings() == {new_id: agents[0]}


def test_a_number_not_on_the_trunk(
    sandbox: SandboxServer, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    hook = make_hook(sandbox, number_visibility_timeout=0.3)
    with pytest.raises(BolnaNotFoundError, match=r"\+14155550777 is not on trunk") as err:
        run(hook, "ensure_inbound_agent", trunk["id"], "+14155550777", agents[0])
    assert not is_permanent(err.value), "it may still show: a retry can fix it"
    assert requests(sandbox)[SETUP] == 0


@pytest.mark.parametrize("style", ["message", "agent"])
def test_an_unknown_agent_is_permanent_and_sent_once(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], run: Runner, style: str
) -> None:
    sandbox.admin.config(inbound_setup_response=style)
    fresh(sandbox)
    with pytest.raises(BolnaAgentNotFoundError, match="agent ghost does not exist") as err:
        run(hook, "ensure_inbound_agent", trunk["id"], PHONE, "ghost")
    assert is_permanent(err.value) and err.value.agent_id == "ghost"
    assert requests(sandbox) == {LIST_NUMBERS: 1, SETUP: 1}
    assert sandbox.inbound_mappings() == {}


def test_bad_input_is_refused_before_sending(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], run: Runner
) -> None:
    fresh(sandbox)
    for args, field in [
        ((trunk["id"], PHONE, " "), "agent_id"),
        ((trunk["id"], "not-a-number", "a"), "phone_number"),
    ]:
        with pytest.raises(BolnaValidationError, match=field):
            run(hook, "ensure_inbound_agent", *args)
    with pytest.raises(BolnaValidationError, match="phone_number_id"):
        run(hook, "ensure_inbound_agent", trunk["id"], PHONE, "a", phone_number_id="")
    assert requests(sandbox) == {}


# ---------------------------------------------------------------------- unlink_inbound_agent


@SHOWS_AGENT
def test_unlink_where_the_list_shows_agents(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    number_id = trunk["numbers"][PHONE]
    hook.setup_inbound(agents[0], number_id)
    first = run(hook, "unlink_inbound_agent", trunk["id"], PHONE)
    assert first == BindingResult(
        "unlinked", PHONE, number_id, None, verified=True, previous_agent_id=agents[0]
    )
    fresh(sandbox)
    again = run(hook, "unlink_inbound_agent", trunk["id"], PHONE)
    assert (again.action, again.verified) == ("unchanged", True)
    assert requests(sandbox) == {LIST_NUMBERS: 1}
    assert sandbox.inbound_mappings() == {}


def test_unlink_what_is_gone(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    number_id = trunk["numbers"][PHONE]
    hook.setup_inbound(agents[0], number_id)
    assert (
        run(hook, "unlink_inbound_agent", trunk["id"], None, phone_number_id=number_id).action == "unlinked"
    )
    assert (
        run(hook, "unlink_inbound_agent", trunk["id"], PHONE).action == "unlinked"
    )  # unverifiable: sent again
    hook.remove_number(trunk["id"], number_id)
    assert run(hook, "unlink_inbound_agent", trunk["id"], PHONE) == BindingResult("absent", PHONE, None, None)
    gone = run(hook, "unlink_inbound_agent", trunk["id"], PHONE, phone_number_id=number_id)
    assert (gone.action, gone.phone_number_id) == ("absent", number_id)
    hook.delete_trunk(trunk["id"])
    assert run(hook, "unlink_inbound_agent", trunk["id"], PHONE_2).action == "absent"
    with pytest.raises(BolnaValidationError, match="phone_number or phone_number_id"):
        run(hook, "unlink_inbound_agent", trunk["id"], None)


# ---------------------------------------------------------------------- ensure_outbound_provider


def test_ensure_outbound_provider(
    sandbox: SandboxServer, hook: BolnaHook, agents: list[str], run: Runner
) -> None:
    fresh(sandbox)
    assert run(hook, "ensure_outbound_provider", agents[0], recorded_provider="sip-trunk") == "unchanged"
    assert requests(sandbox) == {}
    assert run(hook, "ensure_outbound_provider", agents[0]) == "switched"
    assert (
        run(hook, "ensure_outbound_provider", agents[1], "sip-trunk", recorded_provider="twilio")
        == "switched"
    )
    assert sandbox.agent_update_attempts_by_agent() == {agents[0]: 1, agents[1]: 1}
    assert sandbox.agent_providers() == {agents[0]: "sip-trunk", agents[1]: "sip-trunk", agents[2]: None}
    with pytest.raises(BolnaAgentNotFoundError):
        run(hook, "ensure_outbound_provider", "ghost")


# ---------------------------------------------------------------------- faults


def test_exact_mappings_under_5xx_and_lost_answers(bolna_sandbox_factory: Any, run: Runner) -> None:
    """30 % of requests fail before acting, 30 % of committed writes lose their answer (502 or a
    cut connection): setup and the PATCH are resent (they set state) and every number ends on
    exactly its agent, every agent on the trunk."""
    server = bolna_sandbox_factory(seed=1616, number_list_shows_agent_id=True)
    hook = make_hook(server, max_retries=12)
    phones = [f"+1415555{i:04d}" for i in range(24)]
    trunk = hook.ensure_trunk(
        {
            "name": "faulty",
            "provider": "twilio",
            "auth_type": "ip-based",
            "gateways": [{"gateway_address": "gw.example"}],
            "ip_identifiers": [{"ip_address": "203.0.113.0/28"}],
            "phone_numbers": phones,
        }
    ).trunk
    agent_ids = [a["id"] for a in server.admin.create_agents(4)]
    intended = {n.id: agent_ids[i % 4] for i, n in enumerate(trunk.phone_numbers)}
    server.admin.config(fail_rate=0.3, drop_after_commit_rate=0.3)
    server.admin.reset_attempts()
    for i, phone in enumerate(phones):
        run(hook, "ensure_inbound_agent", trunk.id, phone, agent_ids[i % 4])
    for agent_id in agent_ids:
        assert run(hook, "ensure_outbound_provider", agent_id) == "switched"
    counters = server.admin.counters()
    assert (
        counters["faults"]["fail_before"] > 0
        and counters["faults"]["drop_after_commit_502"] + counters["faults"]["drop_after_commit_conn"] > 0
    )
    assert server.inbound_mappings() == intended
    assert server.agent_providers() == dict.fromkeys(agent_ids, "sip-trunk")
    setups = server.inbound_setup_attempts_by_number()
    assert set(setups) == set(intended) and max(setups.values()) <= 13
    committed = Counter(
        a["phone_number_id"] for a in server.write_attempts("inbound_setup") if a["committed"]
    )
    lost = sum(1 for a in server.write_attempts("inbound_setup") if a["committed"] and a["fault"])
    assert sum(committed.values()) == len(intended) + lost, "a setup is resent only when its answer was lost"


def test_the_agent_endpoint_429s_are_retried(bolna_sandbox_factory: Any, run: Runner) -> None:
    """The sandbox allows 120 agent PATCHes a minute (a small stand-in for Bolna's 500): a client
    without a budget meets 429s and retries them; one with the same budget meets none."""
    server = bolna_sandbox_factory(agent_rate_limit_per_min=120)
    agent_ids = [a["id"] for a in server.admin.create_agents(6)]
    eager = make_hook(server, max_retries=10, retry_base_delay=0.1, retry_max_delay=1.0)
    for agent_id in agent_ids:
        run(eager, "update_agent_telephony", agent_id)
    throttled = server.admin.counters()["faults"]["agent_rate_limited"]
    assert throttled > 0
    assert server.agent_providers() == dict.fromkeys(agent_ids, "sip-trunk")
    assert sum(server.agent_update_attempts_by_agent().values()) == len(agent_ids) + throttled

    server.admin.config(agent_rate_limit_per_min=0)
    server.admin.config(agent_rate_limit_per_min=120)  # a changed rate starts a full bucket
    server.admin.reset_counters()
    paced = make_hook(server, agent_requests_per_minute=100, max_retries=0)  # a little under the limit
    for agent_id in agent_ids:
        run(paced, "update_agent_telephony", agent_id, "twilio")
    assert server.admin.counters()["faults"]["agent_rate_limited"] == 0
    assert server.agent_providers() == dict.fromkeys(agent_ids, "twilio")


def test_the_agent_budget_does_not_slow_trunk_calls(sandbox: SandboxServer, trunk: dict[str, Any]) -> None:
    """The agent PATCH and the rest draw from different buckets (one place chooses)."""
    hook = make_hook(sandbox, requests_per_minute=6000, agent_requests_per_minute=60)
    agent_id = sandbox.admin.create_agent()["id"]
    hook.update_agent_telephony(agent_id)
    hook.list_numbers(trunk["id"])
    assert hook.limiter_for("agent") is not hook.limiter
    assert hook.limiter_for("agent").reserve() > 0.5, "the agent bucket holds the PATCH's slot (1/s)"
    assert hook.limiter.reserve() < 0.05, "the default bucket is not held by the agent PATCH"


# ---------------------------------------------------------------------- readiness with agents


@SHOWS_AGENT
def test_readiness_verifies_agents_the_list_shows(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    expect = {PHONE: agents[0], "14155550101": agents[1]}
    status = run(hook, "check_trunk_ready", trunk_id=trunk["id"], expect_agents=expect)
    assert not status.done and status.agents == {PHONE: "mismatch", "14155550101": "mismatch"}
    assert "no agent, expected" in status.message
    hook.setup_inbound(agents[0], trunk["numbers"][PHONE])
    hook.setup_inbound(agents[2], trunk["numbers"][PHONE_2])
    status = run(hook, "check_trunk_ready", trunk_id=trunk["id"], expect_agents=expect)
    assert not status.done and status.agents == {PHONE: "verified", "14155550101": "mismatch"}
    assert f"agent {agents[2]}, expected {agents[1]}" in status.message
    hook.setup_inbound(agents[1], trunk["numbers"][PHONE_2])
    fresh(sandbox)
    status = run(hook, "check_trunk_ready", trunk_id=trunk["id"], expect_agents=expect)
    assert status.done and status.to_xcom()["agents"] == {PHONE: "verified", "14155550101": "verified"}
    assert requests(sandbox) == {"GET /sip-trunks/trunks/{trunk_id}": 1}, (
        "the trunk body shows agent_id: no list call"
    )


def test_readiness_reports_unverifiable_agents_and_does_not_wait(
    sandbox: SandboxServer, hook: BolnaHook, trunk: dict[str, Any], agents: list[str], run: Runner
) -> None:
    fresh(sandbox)
    status = run(
        hook,
        "check_trunk_ready",
        trunk_id=trunk["id"],
        expect_agents={PHONE: agents[0], "+14155550188": agents[1]},
    )
    assert not status.done and status.missing == ["+14155550188"], "a mapped number must be visible"
    status = run(hook, "check_trunk_ready", trunk_name="bind-me", expect_agents={PHONE: agents[0]})
    assert status.done and status.agents == {PHONE: "unverifiable"}
    assert "1 unverifiable" in status.message
    assert all(endpoint.startswith("GET ") for endpoint in requests(sandbox))
