"""The agent-binding operators, CreateSIPTrunkOperator's binding step, and the sensor / trigger
waiting for inbound agents: against the sandbox over real HTTP (default connection).

Each test checks what the sandbox holds afterwards (mappings, agents' providers) and how many
requests reached it, so an unneeded write cannot go unnoticed.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, TaskDeferred

from airflow_provider_bolna.exceptions import BolnaAgentNotFoundError, BolnaBindingError, BolnaValidationError
from airflow_provider_bolna.hooks.bolna import BolnaHook
from airflow_provider_bolna.links import BolnaSIPTrunkLink
from airflow_provider_bolna.operators.sip_trunk import (
    CreateSIPTrunkOperator,
    SetAgentTelephonyProviderOperator,
    SetInboundAgentOperator,
    UnlinkInboundAgentOperator,
)
from airflow_provider_bolna.sandbox.testing import SandboxServer
from airflow_provider_bolna.sensors.sip_trunk import SIPTrunkSensor

from .conftest import run_deferrable, spec

pytestmark = pytest.mark.integration

SHOWS_AGENT = pytest.mark.bolna_sandbox_knobs(number_list_shows_agent_id=True)
SETUP = "POST /inbound/setup"
AGENT = "PATCH /v2/agent/{agent_id}"
PHONES = ["+918100000001", "+918100000002", "+918100000003"]
PASSWORD = spec()["auth_password"]


def requests(server: SandboxServer) -> Counter[str]:
    return Counter({k: sum(v.values()) for k, v in server.admin.counters()["requests"].items()})


@pytest.fixture
def agents(sandbox: SandboxServer) -> list[str]:
    return [a["id"] for a in sandbox.admin.create_agents(3)]


@pytest.fixture
def trunk(sandbox: SandboxServer, context: dict) -> dict[str, Any]:
    """A trunk with PHONES: ``{"id", "numbers": {phone: id}}``."""
    result = CreateSIPTrunkOperator(task_id="t", trunk=spec("acme-bind", phone_numbers=PHONES)).execute(
        context
    )
    numbers = BolnaHook().list_numbers(result["trunk_id"])
    sandbox.admin.reset_counters()
    return {"id": result["trunk_id"], "numbers": {n.phone_number: n.id for n in numbers}}


# ---------------------------------------------------------------------- class-level contract


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (
            SetInboundAgentOperator,
            {"trunk_id", "phone_number", "agent_id", "phone_number_id", "bolna_conn_id"},
        ),
        (UnlinkInboundAgentOperator, {"trunk_id", "phone_number", "phone_number_id", "bolna_conn_id"}),
        (SetAgentTelephonyProviderOperator, {"agent_id", "provider", "bolna_conn_id"}),
        (CreateSIPTrunkOperator, {"inbound_agent_id", "inbound_agents", "outbound_agent_ids"}),
        (SIPTrunkSensor, {"expect_agents"}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_templated_fields(cls: type, fields: set[str]) -> None:
    assert fields <= set(cls.template_fields)


@pytest.mark.parametrize(
    "cls", [SetInboundAgentOperator, UnlinkInboundAgentOperator], ids=lambda c: c.__name__
)
def test_trunk_link_attached(cls: type) -> None:
    assert any(isinstance(link, BolnaSIPTrunkLink) for link in cls.operator_extra_links)


def test_mappable_over_numbers_and_agents() -> None:
    from airflow.providers.common.compat.sdk import DAG

    with DAG("bind_map_test", schedule=None, start_date=datetime(2026, 1, 1)):
        one_agent = SetInboundAgentOperator.partial(task_id="one", trunk_id="t1", agent_id="a1").expand(
            phone_number=PHONES
        )
        per_number = SetInboundAgentOperator.partial(task_id="per", trunk_id="t1").expand_kwargs(
            [{"phone_number": PHONES[0], "agent_id": "a1"}, {"phone_number": PHONES[1], "agent_id": "a2"}]
        )
        providers = SetAgentTelephonyProviderOperator.partial(task_id="prov").expand(agent_id=["a1", "a2"])
    assert one_agent.expand_input.value == {"phone_number": PHONES}
    assert one_agent.partial_kwargs["agent_id"] == "a1"
    assert per_number.expand_input.value[1] == {"phone_number": PHONES[1], "agent_id": "a2"}
    assert providers.expand_input.value == {"agent_id": ["a1", "a2"]}


# ---------------------------------------------------------------------- SetInboundAgentOperator


@SHOWS_AGENT
def test_set_inbound_agent_then_rerun(
    sandbox: SandboxServer, context: dict, trunk: dict, agents: list[str], ti: Any
) -> None:
    op = SetInboundAgentOperator(
        task_id="bind", trunk_id=trunk["id"], phone_number=PHONES[0], agent_id=agents[0]
    )
    first = op.execute(context)
    number_id = trunk["numbers"][PHONES[0]]
    assert first == {
        "trunk_id": trunk["id"],
        "phone_number": PHONES[0],
        "phone_number_id": number_id,
        "agent_id": agents[0],
        "action": "bound",
        "verified": True,
        "previous_agent_id": None,
    }
    assert ti.xcoms["trunk_id"] == trunk["id"] and ti.xcoms["bolna_trunk_url"].endswith(trunk["id"])
    rerun = SetInboundAgentOperator(
        task_id="bind", trunk_id=trunk["id"], phone_number=PHONES[0], agent_id=agents[0]
    )
    assert rerun.execute(context)["action"] == "unchanged"
    assert requests(sandbox)[SETUP] == 1, "a cleared and rerun task sends no second setup"
    assert sandbox.inbound_mappings() == {number_id: agents[0]}


def test_set_inbound_agent_by_id_without_agent_ids_in_reads(
    sandbox: SandboxServer, context: dict, trunk: dict, agents: list[str]
) -> None:
    number_id = trunk["numbers"][PHONES[1]]
    out = SetInboundAgentOperator(
        task_id="bind",
        trunk_id=trunk["id"],
        phone_number=PHONES[1],
        agent_id=agents[1],
        phone_number_id=number_id,
    ).execute(context)
    assert (out["action"], out["verified"], out["phone_number_id"]) == ("bound", None, number_id)
    assert requests(sandbox) == {SETUP: 1}
    assert sandbox.inbound_mappings() == {number_id: agents[1]}


def test_set_inbound_agent_unknown_agent_fails_without_retries(
    sandbox: SandboxServer, context: dict, trunk: dict
) -> None:
    op = SetInboundAgentOperator(
        task_id="bind", trunk_id=trunk["id"], phone_number=PHONES[0], agent_id="ghost-agent"
    )
    with pytest.raises(AirflowFailException, match="agent ghost-agent does not exist") as err:
        op.execute(context)
    assert isinstance(err.value.__cause__, BolnaAgentNotFoundError)
    for bad in ("", None):
        with pytest.raises(AirflowFailException, match="agent_id is empty"):
            SetInboundAgentOperator(
                task_id="b", trunk_id=trunk["id"], phone_number=PHONES[0], agent_id=bad
            ).execute(context)
    assert sandbox.inbound_mappings() == {}


# ---------------------------------------------------------------------- Unlink / provider


def test_unlink_inbound_agent(sandbox: SandboxServer, context: dict, trunk: dict, agents: list[str]) -> None:
    hook = BolnaHook()
    for phone in PHONES[:2]:
        hook.setup_inbound(agents[0], trunk["numbers"][phone])
    by_number = UnlinkInboundAgentOperator(task_id="u", trunk_id=trunk["id"], phone_number=PHONES[0]).execute(
        context
    )
    by_id = UnlinkInboundAgentOperator(
        task_id="u", trunk_id=trunk["id"], phone_number_id=trunk["numbers"][PHONES[1]]
    ).execute(context)
    assert (by_number["action"], by_number["phone_number_id"]) == ("unlinked", trunk["numbers"][PHONES[0]])
    assert (by_id["action"], by_id["phone_number"]) == ("unlinked", None)
    assert sandbox.inbound_mappings() == {}
    gone = UnlinkInboundAgentOperator(
        task_id="u", trunk_id=trunk["id"], phone_number="+918100000999"
    ).execute(context)
    assert gone["action"] == "absent"
    with pytest.raises(AirflowFailException, match="phone_number or phone_number_id"):
        UnlinkInboundAgentOperator(task_id="u", trunk_id=trunk["id"]).execute(context)


def test_set_agent_telephony_provider(sandbox: SandboxServer, context: dict, agents: list[str]) -> None:
    out = SetAgentTelephonyProviderOperator(task_id="p", agent_id=agents[0]).execute(context)
    assert out == {"agent_id": agents[0], "provider": "sip-trunk", "action": "switched"}
    assert sandbox.agent_providers()[agents[0]] == "sip-trunk"
    with pytest.raises(AirflowFailException) as err:
        SetAgentTelephonyProviderOperator(task_id="p", agent_id="ghost").execute(context)
    assert isinstance(err.value.__cause__, BolnaAgentNotFoundError)
    with pytest.raises(AirflowFailException) as bad:
        SetAgentTelephonyProviderOperator(task_id="p", agent_id=agents[1], provider="sip trunk").execute(
            context
        )
    assert isinstance(bad.value.__cause__, BolnaValidationError)
    assert requests(sandbox)[AGENT] == 2


# ---------------------------------------------------------------------- CreateSIPTrunkOperator, one task per customer


def create(trunk: dict, **kw: Any) -> CreateSIPTrunkOperator:
    return CreateSIPTrunkOperator(task_id="create", trunk=trunk, **kw)


@SHOWS_AGENT
def test_create_binds_every_number_and_switches_agents(
    sandbox: SandboxServer, context: dict, agents: list[str], ti: Any
) -> None:
    trunk = spec(
        "cust-1", phone_numbers=[PHONES[0], {"phone_number": PHONES[1], "agent_id": agents[1]}, PHONES[2]]
    )
    kw = {
        "inbound_agent_id": agents[0],
        "inbound_agents": {"918100000003": agents[2]},
        "outbound_agent_ids": [agents[0], agents[1], agents[0]],
    }
    first = create(trunk, **kw).execute(context)
    numbers = {n.phone_number: n.id for n in BolnaHook().list_numbers(first["trunk_id"])}
    intended = {numbers[PHONES[0]]: agents[0], numbers[PHONES[1]]: agents[1], numbers[PHONES[2]]: agents[2]}
    assert sandbox.inbound_mappings() == intended
    assert sandbox.agent_providers() == {agents[0]: "sip-trunk", agents[1]: "sip-trunk", agents[2]: None}
    assert sandbox.agent_update_attempts_by_agent() == {agents[0]: 1, agents[1]: 1}, (
        "each agent switched once"
    )
    assert [(b["phone_number"], b["agent_id"], b["action"]) for b in first["inbound_agents"]] == [
        (PHONES[0], agents[0], "bound"),
        (PHONES[1], agents[1], "bound"),
        (PHONES[2], agents[2], "bound"),
    ]
    assert first["outbound_agents"] == [
        {"agent_id": agents[0], "provider": "sip-trunk", "action": "switched"},
        {"agent_id": agents[1], "provider": "sip-trunk", "action": "switched"},
    ]
    assert PASSWORD not in json.dumps(first) + json.dumps(ti.xcoms)
    assert requests(sandbox)["GET /sip-trunks/trunks/{trunk_id}/numbers"] == 1, (
        "the created trunk's body gave the ids"
    )

    sandbox.admin.reset_counters()
    again = create(trunk, **kw).execute(context)  # a cleared and rerun task
    assert [b["action"] for b in again["inbound_agents"]] == ["unchanged"] * 3
    assert requests(sandbox)[SETUP] == 0
    assert sandbox.inbound_mappings() == intended


def test_create_without_agent_ids_in_reads_reapplies(
    sandbox: SandboxServer, context: dict, agents: list[str]
) -> None:
    trunk = spec("cust-2", phone_numbers=PHONES[:2])
    create(trunk, inbound_agent_id=agents[0]).execute(context)
    sandbox.admin.reset_counters()
    again = create(trunk, inbound_agent_id=agents[1]).execute(context)
    assert [(b["action"], b["verified"]) for b in again["inbound_agents"]] == [("bound", False)] * 2
    assert requests(sandbox)[SETUP] == 2 and "outbound_agents" in again and again["outbound_agents"] == []
    assert set(sandbox.inbound_mappings().values()) == {agents[1]}


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"inbound_agents": {"+918100000009": "a"}}, "not in the trunk's phone_numbers"),
        ({"inbound_agents": {PHONES[0]: "b"}}, "two different agents"),
        ({"inbound_agents": ["a"]}, "inbound_agents: must be a mapping"),
        ({"inbound_agent_id": "  "}, "inbound_agent_id"),
        ({"outbound_agent_ids": ["a", ""]}, "outbound_agent_ids.1"),
    ],
    ids=["outside-spec", "two-agents", "not-a-mapping", "blank-default", "blank-outbound"],
)
def test_create_refuses_bad_agents_before_any_request(
    sandbox: SandboxServer, context: dict, kw: dict, needle: str
) -> None:
    trunk = spec("cust-bad", phone_numbers=[{"phone_number": PHONES[0], "agent_id": "a"}])
    with pytest.raises(AirflowFailException, match=needle):
        create(trunk, **kw).execute(context)
    assert requests(sandbox) == {}


def test_create_reports_every_failed_binding_and_keeps_the_rest(
    sandbox: SandboxServer, context: dict, agents: list[str], ti: Any
) -> None:
    trunk = spec("cust-3", phone_numbers=PHONES[:2])
    op = create(
        trunk,
        inbound_agent_id=agents[0],
        inbound_agents={PHONES[1]: "ghost-in"},
        outbound_agent_ids=["ghost-out", agents[0]],
    )
    with pytest.raises(AirflowFailException, match="2 of 4 binding") as err:
        op.execute(context)
    cause = err.value.__cause__
    assert isinstance(cause, BolnaBindingError) and cause.permanent
    assert set(cause.failures) == {PHONES[1], "ghost-out"}
    assert ti.xcoms["trunk_id"], "the trunk is known to the rerun (nothing lost)"
    assert list(sandbox.inbound_mappings().values()) == [agents[0]]
    assert sandbox.agent_providers()[agents[0]] == "sip-trunk"


def test_create_binds_under_faults(
    sandbox: SandboxServer, context: dict, agents: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_DEFAULT",
        sandbox.airflow_conn_json(
            max_retries=12, retry_base_delay=0.01, retry_max_delay=0.1, number_visibility_timeout=2
        ),
    )
    sandbox.admin.config(fail_rate=0.25, drop_after_commit_rate=0.25, seed=7, number_list_shows_agent_id=True)
    trunk = spec("cust-faults", phone_numbers=PHONES)
    result = create(trunk, inbound_agent_id=agents[0], outbound_agent_ids=agents).execute(context)
    numbers = {n.phone_number: n.id for n in BolnaHook().list_numbers(result["trunk_id"])}
    assert sandbox.inbound_mappings() == {numbers[p]: agents[0] for p in PHONES}
    assert sandbox.agent_providers() == dict.fromkeys(agents, "sip-trunk")
    assert sandbox.trunks_by_name() == {"cust-faults": 1}
    faults = sandbox.admin.counters()["faults"]
    assert faults["fail_before"] + faults["drop_after_commit_502"] + faults["drop_after_commit_conn"] > 0


# ---------------------------------------------------------------------- readiness with agents


@SHOWS_AGENT
def test_create_and_wait_checks_the_mappings(
    sandbox: SandboxServer, context: dict, agents: list[str]
) -> None:
    op = create(
        spec("cust-wait", phone_numbers=PHONES[:2]),
        inbound_agent_id=agents[0],
        wait_for_ready=True,
        deferrable=True,
        poll_interval=0.1,
        ready_timeout=10,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.trigger.serialize()[1]["expect_agents"] == dict.fromkeys(PHONES[:2], agents[0])
    result = run_deferrable(
        create(
            spec("cust-wait", phone_numbers=PHONES[:2]),
            inbound_agent_id=agents[0],
            wait_for_ready=True,
            deferrable=True,
            poll_interval=0.1,
        ),
        context,
    )
    assert [b["action"] for b in result["inbound_agents"]] == ["unchanged"] * 2


@pytest.mark.parametrize("shows", [True, False], ids=["verified", "unverifiable"])
def test_sensor_poke_and_deferrable_agree_on_agents(
    sandbox: SandboxServer, context: dict, trunk: dict, agents: list[str], shows: bool
) -> None:
    sandbox.admin.config(number_list_shows_agent_id=shows)
    BolnaHook().setup_inbound(agents[0], trunk["numbers"][PHONES[0]])
    kw = {
        "trunk_id": trunk["id"],
        "expect_agents": {PHONES[0]: agents[0]},
        "poll_interval": 0.05,
        "timeout": 5,
    }
    poked = SIPTrunkSensor(task_id="p", deferrable=False, **kw).execute(context)
    deferred = SIPTrunkSensor(task_id="d", deferrable=True, **kw).execute(context)
    resumed = run_deferrable(
        SIPTrunkSensor(
            task_id="r", deferrable=True, **{**kw, "expect_agents": json.dumps(kw["expect_agents"])}
        ),
        context,
    )
    assert poked == deferred == resumed
    assert poked["agents"] == {PHONES[0]: "verified" if shows else "unverifiable"}


@SHOWS_AGENT
def test_sensor_waits_for_a_visible_mismatch_until_timeout(
    sandbox: SandboxServer, context: dict, trunk: dict, agents: list[str]
) -> None:
    BolnaHook().setup_inbound(agents[1], trunk["numbers"][PHONES[0]])
    for deferrable in (False, True):
        sensor = SIPTrunkSensor(
            task_id="w",
            trunk_id=trunk["id"],
            expect_agents={PHONES[0]: agents[0]},
            deferrable=deferrable,
            timeout=0.4,
            poll_interval=0.1,
        )
        with pytest.raises(AirflowSensorTimeout):
            run_deferrable(sensor, context)


def test_sensor_refuses_bad_expect_agents(sandbox: SandboxServer, context: dict, trunk: dict) -> None:
    sensor = SIPTrunkSensor(task_id="w", trunk_id=trunk["id"], expect_agents="[1, 2]", timeout=1)
    with pytest.raises(AirflowFailException, match="expect_agents") as err:
        sensor.execute(context)
    assert isinstance(err.value.__cause__, BolnaValidationError)
