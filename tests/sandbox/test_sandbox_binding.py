"""Agent binding over real HTTP: /user/me, the agent PATCH, inbound setup / unlink,
/phone-numbers/all, the agents of the admin API, and every knob of these routes."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from .conftest import TRUNKS, assert_error

pytestmark = pytest.mark.integration

SIP_TRUNK = {"agent_config": {"telephony_provider": "sip-trunk"}}
HEX32 = re.compile(r"[0-9a-f]{32}")
SETUP_OK = {"message": "SIP trunk number successfully mapped to agent"}
UNLINK_OK = {"message": "SIP trunk number successfully unlinked from agent"}


@pytest.fixture
def agent(sandbox: Any) -> dict[str, Any]:
    return sandbox.admin.create_agent()


@pytest.fixture
def trunk(make_trunk: Any) -> dict[str, Any]:
    return make_trunk(phone_numbers=[{"phone_number": "+14155550100"}, {"phone_number": "14155550101"}])


@pytest.fixture
def number(trunk: dict[str, Any]) -> dict[str, Any]:
    return trunk["phone_numbers"][0]


def setup(api: httpx.Client, agent_id: str, number_id: str) -> httpx.Response:
    return api.post("/inbound/setup", json={"agent_id": agent_id, "phone_number_id": number_id})


# ----------------------------------------------------------------------------- /user/me
def test_user_me(api: httpx.Client, sandbox: Any) -> None:
    response = api.get("/user/me")
    assert response.status_code == 200
    user = response.json()
    assert set(user) == {"id", "name", "email", "wallet", "concurrency"}
    assert isinstance(user["wallet"], float) and set(user["concurrency"]) == {"max", "current"}
    bad = httpx.get(f"{sandbox.url}/user/me", headers={"Authorization": "Bearer wrong"}, trust_env=False)
    assert bad.status_code == 403 and bad.json() == {"detail": "Invalid API key"}
    assert sandbox.admin.counters()["requests"]["GET /user/me"] == {"200": 1, "403": 1}


def test_user_me_can_be_missing(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(user_me_available=False)
    response = api.get("/user/me")
    assert response.status_code == 404
    assert response.json() == api.get("/no/such/route").json() == {"error": 404, "message": "Not found"}
    sandbox.admin.config(user_me_available=True)
    assert api.get("/user/me").status_code == 200


def test_user_me_goes_through_latency_and_faults(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(latency_ms=200)
    started = time.perf_counter()
    assert api.get("/user/me").status_code == 200
    assert time.perf_counter() - started >= 0.2
    sandbox.admin.config(latency_ms=0, fail_rate=1.0)
    assert api.get("/user/me").status_code in (500, 502, 503)
    sandbox.admin.config(fail_rate=0.0, rate_limit_per_min=60)
    assert [api.get("/user/me").status_code for _ in range(2)] == [200, 429]


# ----------------------------------------------------------------------------- agents (admin)
def test_admin_agents(sandbox: Any) -> None:
    default = sandbox.admin.create_agent()
    assert HEX32.fullmatch(default["id"]) and default["telephony_provider"] is None
    named = sandbox.admin.create_agent(id="3c90c3cc-0d44-4b50-8888-8dd25736052a", name="Sales")
    assert (named["id"], named["name"]) == ("3c90c3cc-0d44-4b50-8888-8dd25736052a", "Sales")
    batch = sandbox.admin.create_agents(3)
    assert len({a["id"] for a in batch}) == 3
    assert [a["id"] for a in sandbox.admin.agents()] == [
        default["id"],
        named["id"],
        *(a["id"] for a in batch),
    ]
    assert sandbox.admin.audit()["agents"] == 5
    sandbox.admin.reset()
    assert sandbox.admin.agents() == []


@pytest.mark.parametrize(
    "body,field",
    [
        ({"id": ""}, "id"),
        ({"id": "a b"}, "id"),
        ({"id": 5}, "id"),
        ({"name": ""}, "name"),
        ({"nope": 1}, "nope"),
        ([{"id": "ok"}, {"id": "x\ty"}], "[1].id"),
        ("x", "body"),
    ],
)
def test_admin_agent_validation(sandbox: Any, body: Any, field: str) -> None:
    response = httpx.post(f"{sandbox.url}/__sandbox__/agents", json=body, trust_env=False)
    assert_error(response, 400, field)
    assert sandbox.admin.agents() == []  # all or nothing


def test_admin_agent_duplicate_id(sandbox: Any) -> None:
    sandbox.admin.create_agent(id="a1")
    with pytest.raises(httpx.HTTPStatusError, match="409.*already exists"):
        sandbox.admin.create_agents([{"id": "a2"}, {"id": "a1"}])
    assert [a["id"] for a in sandbox.admin.agents()] == ["a1"]


# ----------------------------------------------------------------------------- PATCH /v2/agent
@pytest.mark.parametrize("provider", ["sip-trunk", "trunk", "plivo", "default"])
def test_patch_agent_provider(api: httpx.Client, sandbox: Any, agent: dict[str, Any], provider: str) -> None:
    response = api.patch(f"/v2/agent/{agent['id']}", json={"agent_config": {"telephony_provider": provider}})
    assert response.status_code == 200
    assert response.json() == {"message": "success", "state": "updated"}
    assert sandbox.agent_providers() == {agent["id"]: provider}
    assert sandbox.admin.counters()["binding_writes"]["update_agent"] == 1


def test_patch_unknown_agent_is_404_before_the_body(api: httpx.Client) -> None:
    for body in (SIP_TRUNK, {"bad": 1}):
        response = api.patch("/v2/agent/0123456789abcdef0123456789abcdef", json=body)
        assert response.status_code == 404
        assert response.json() == {"error": 404, "message": "agent not found"}


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "agent_config"),
        ({"agent_config": {}}, "agent_config.telephony_provider"),
        ({"agent_config": {"telephony_provider": "sip_trunk"}}, "agent_config.telephony_provider"),
        ({"agent_config": {"telephony_provider": None}}, "agent_config.telephony_provider"),
        ({"agent_config": "sip-trunk"}, "agent_config"),
        ({"agent_config": {"telephony_provider": "sip-trunk", "agent_name": "x"}}, "agent_config.agent_name"),
        ({**SIP_TRUNK, "agent_prompts": {}}, "agent_prompts"),
        ([], "body"),
    ],
)
def test_patch_agent_validation(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], body: Any, field: str
) -> None:
    assert_error(api.patch(f"/v2/agent/{agent['id']}", json=body), 400, field)
    assert sandbox.agent_providers() == {agent["id"]: None}


def test_agent_id_is_an_opaque_path_segment(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.create_agent(id="team/x?y")
    assert api.patch("/v2/agent/team%2Fx%3Fy", json=SIP_TRUNK).status_code == 200
    assert sandbox.agent_providers() == {"team/x?y": "sip-trunk"}


# ----------------------------------------------------------------------------- agent rate limit
def test_agent_endpoint_has_its_own_bucket(private_api: httpx.Client, private_sandbox: Any) -> None:
    api, sandbox = private_api, private_sandbox
    sandbox.admin.config(agent_rate_limit_per_min=30)  # capacity 1, a token every 2 s
    agent = sandbox.admin.create_agent()
    assert api.patch(f"/v2/agent/{agent['id']}", json=SIP_TRUNK).status_code == 200
    limited = api.patch(f"/v2/agent/{agent['id']}", json=SIP_TRUNK)
    assert limited.status_code == 429 and limited.json() == {"error": 429, "message": "Rate limit exceeded"}
    assert "retry-after" not in limited.headers
    # everything else draws from the other bucket (off here)
    assert [api.get("/user/me").status_code for _ in range(5)] == [200] * 5
    counters = sandbox.admin.counters()
    assert counters["faults"]["agent_rate_limited"] >= 1 and counters["faults"]["rate_limited"] == 0
    # and the other bucket does not throttle the agent endpoint
    sandbox.admin.config(agent_rate_limit_per_min=0, rate_limit_per_min=30, retry_after=True)
    assert api.get("/user/me").status_code == 200
    assert api.get("/user/me").status_code == 429
    assert [api.patch(f"/v2/agent/{agent['id']}", json=SIP_TRUNK).status_code for _ in range(5)] == [200] * 5


def test_agent_rate_limit_retry_after(private_api: httpx.Client, private_sandbox: Any) -> None:
    private_sandbox.admin.config(agent_rate_limit_per_min=6, retry_after=True)  # a token every 10 s
    agent = private_sandbox.admin.create_agent()
    assert private_api.patch(f"/v2/agent/{agent['id']}", json=SIP_TRUNK).status_code == 200
    limited = private_api.patch(f"/v2/agent/{agent['id']}", json=SIP_TRUNK)
    assert limited.status_code == 429 and 8 <= int(limited.headers["retry-after"]) <= 10


def test_agent_rate_limit_defaults_to_500_per_minute(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any]
) -> None:
    assert sandbox.admin.config()["agent_rate_limit_per_min"] == 500
    started = time.monotonic()
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 100:
        statuses.append(api.patch(f"/v2/agent/{agent['id']}", json=SIP_TRUNK).status_code)
    elapsed = time.monotonic() - started
    capacity, per_s = 500 / 60, 500 / 60
    assert statuses[:8] == [200] * 8 and statuses[-1] == 429
    assert statuses.count(200) <= capacity + elapsed * per_s + 1


# ----------------------------------------------------------------------------- /inbound/setup
def test_setup_maps_and_remaps(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], number: dict[str, Any]
) -> None:
    response = setup(api, agent["id"], number["id"])
    assert response.status_code == 200 and response.json() == SETUP_OK
    assert sandbox.inbound_mappings() == {number["id"]: agent["id"]}
    other = sandbox.admin.create_agent()
    assert setup(api, other["id"], number["id"]).status_code == 200  # replaces, silently
    assert sandbox.inbound_mappings() == {number["id"]: other["id"]}
    by_agent = {a["id"]: a["phone_number_ids"] for a in sandbox.admin.agents()}
    assert by_agent == {agent["id"]: [], other["id"]: [number["id"]]}
    assert setup(api, other["id"], number["id"]).status_code == 200  # same mapping again: fine
    assert sandbox.admin.audit()["inbound_mappings"] == 1


def test_setup_agent_shaped_response(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], number: dict[str, Any]
) -> None:
    sandbox.admin.config(inbound_setup_response="agent")
    body = setup(api, agent["id"], number["id"]).json()
    assert body == {
        "url": f"https://api.bolna.ai/inbound_call?agent_id={agent['id']}&user_id=sandbox-user",
        "phone_number": "+14155550100",
        "id": number["id"],
    }


@pytest.mark.parametrize(
    "style,message",
    [("message", "SIP trunk phone number not found in database"), ("agent", "Phone number doesn't exist.")],
)
def test_setup_unknown_number(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], style: str, message: str
) -> None:
    sandbox.admin.config(inbound_setup_response=style)
    response = setup(api, agent["id"], "01HQNUMBER111222333")
    assert response.status_code == 404 and response.json() == {"error": 404, "message": message}


def test_setup_unknown_agent(api: httpx.Client, sandbox: Any, number: dict[str, Any]) -> None:
    response = setup(api, "0123456789abcdef0123456789abcdef", number["id"])
    assert response.status_code == 404 and response.json() == {"error": 404, "message": "agent not found"}
    assert sandbox.inbound_mappings() == {}


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "agent_id"),
        ({"agent_id": "a"}, "phone_number_id"),
        ({"phone_number_id": "n"}, "agent_id"),
        ({"agent_id": 5, "phone_number_id": "n"}, "agent_id"),
        ({"agent_id": "a", "phone_number_id": ""}, "phone_number_id"),
        ({"agent_id": "a", "phone_number_id": "n", "allow_multiple": True}, "allow_multiple"),
        ({"agent_id": "a", "phone_number_id": "n", "allow_multiple": "no"}, "allow_multiple"),
        ({"agent_id": "a", "phone_number_id": "n", "ivr_config": {}}, "ivr_config"),
        (["a"], "body"),
    ],
)
def test_setup_validation(api: httpx.Client, body: Any, field: str) -> None:
    assert_error(api.post("/inbound/setup", json=body), 400, field)


def test_setup_accepts_allow_multiple_false(
    api: httpx.Client, agent: dict[str, Any], number: dict[str, Any]
) -> None:
    body = {"agent_id": agent["id"], "phone_number_id": number["id"], "allow_multiple": False}
    assert api.post("/inbound/setup", json=body).status_code == 200


def test_setup_waits_for_number_visibility(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], trunk: dict[str, Any]
) -> None:
    sandbox.admin.config(number_visibility_delay_s=30)
    added = api.post(f"{TRUNKS}/{trunk['id']}/numbers", json={"phone_number": "15550001111"}).json()
    assert setup(api, agent["id"], added["id"]).status_code == 404
    assert setup(api, agent["id"], trunk["phone_numbers"][0]["id"]).status_code == 200  # an old one is fine


def test_setup_with_faults_does_nothing(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], number: dict[str, Any]
) -> None:
    sandbox.admin.config(fail_rate=1.0)
    assert setup(api, agent["id"], number["id"]).status_code in (500, 502, 503)
    assert sandbox.inbound_mappings() == {}
    [attempt] = sandbox.write_attempts("inbound_setup")
    assert attempt["fault"] == "fail_before" and not attempt["committed"]
    assert (attempt["agent_id"], attempt["phone_number_id"]) == (agent["id"], number["id"])


# ----------------------------------------------------------------------------- /inbound/unlink
@pytest.mark.parametrize("style", ["message", "agent"])
def test_unlink(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], number: dict[str, Any], style: str
) -> None:
    sandbox.admin.config(inbound_setup_response=style)
    setup(api, agent["id"], number["id"]).raise_for_status()
    response = api.post("/inbound/unlink", json={"phone_number_id": number["id"], "agent_id": agent["id"]})
    assert response.status_code == 200
    expected = (
        UNLINK_OK if style == "message" else {"url": None, "phone_number": "+14155550100", "id": number["id"]}
    )
    assert response.json() == expected
    assert sandbox.inbound_mappings() == {}
    # unlinking an unmapped number is a no-op, and agent_id is tolerated whatever it says
    assert (
        api.post("/inbound/unlink", json={"phone_number_id": number["id"], "agent_id": "x"}).status_code
        == 200
    )


def test_unlink_errors(api: httpx.Client) -> None:
    response = api.post("/inbound/unlink", json={"phone_number_id": "nope"})
    assert response.status_code == 404
    assert response.json() == {"error": 404, "message": "SIP trunk phone number not found in database"}
    assert_error(api.post("/inbound/unlink", json={}), 400, "phone_number_id")
    assert_error(api.post("/inbound/unlink", json={"phone_number_id": "n", "agent_id": 1}), 400, "agent_id")
    assert_error(api.post("/inbound/unlink", json={"phone_number_id": "n", "x": 1}), 400, "x")


# ----------------------------------------------------------------------------- mappings end with the number
def test_removing_the_number_clears_its_mapping(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], trunk: dict[str, Any]
) -> None:
    first, second = trunk["phone_numbers"]
    for number in (first, second):
        setup(api, agent["id"], number["id"]).raise_for_status()
    api.delete(f"{TRUNKS}/{trunk['id']}/numbers/{first['id']}").raise_for_status()
    assert sandbox.inbound_mappings() == {second["id"]: agent["id"]}
    assert setup(api, agent["id"], first["id"]).status_code == 404  # a removed number cannot be mapped
    # the same DID added again is a new number, with no agent
    readded = api.post(f"{TRUNKS}/{trunk['id']}/numbers", json={"phone_number": first["phone_number"]}).json()
    assert readded["id"] != first["id"] and readded["id"] not in sandbox.inbound_mappings()
    audit = sandbox.admin.audit()
    assert audit["mappings_on_removed_numbers"] == 0 and audit["inbound_mappings"] == 1


def test_deleting_the_trunk_clears_its_mappings(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], trunk: dict[str, Any], make_trunk: Any
) -> None:
    other = make_trunk(phone_numbers=[{"phone_number": "15550009999"}])
    for number in (*trunk["phone_numbers"], *other["phone_numbers"]):
        setup(api, agent["id"], number["id"]).raise_for_status()
    api.delete(f"{TRUNKS}/{trunk['id']}").raise_for_status()
    assert sandbox.inbound_mappings() == {other["phone_numbers"][0]["id"]: agent["id"]}
    assert sandbox.admin.audit()["mappings_on_removed_numbers"] == 0
    assert (
        api.post("/inbound/unlink", json={"phone_number_id": trunk["phone_numbers"][0]["id"]}).status_code
        == 404
    )


# ----------------------------------------------------------------------------- /phone-numbers/all
def test_phone_numbers_all_hides_sip_numbers_by_default(api: httpx.Client, number: dict[str, Any]) -> None:
    response = api.get("/phone-numbers/all")
    assert response.status_code == 200 and response.json() == []


def test_phone_numbers_all_with_sip_numbers(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], trunk: dict[str, Any]
) -> None:
    sandbox.admin.config(phone_numbers_all_includes_sip=True)
    first, second = trunk["phone_numbers"]
    setup(api, agent["id"], first["id"]).raise_for_status()
    api.delete(f"{TRUNKS}/{trunk['id']}/numbers/{second['id']}").raise_for_status()
    [listed] = api.get("/phone-numbers/all").json()
    assert set(listed) == {
        "id",
        "phone_number",
        "agent_id",
        "telephony_provider",
        "rented",
        "created_at",
        "updated_at",
    }
    assert (listed["id"], listed["phone_number"], listed["agent_id"]) == (
        first["id"],
        "+14155550100",
        agent["id"],
    )
    assert listed["telephony_provider"] == "sip-trunk" and listed["rented"] is False


# ----------------------------------------------------------------------------- agent_id in number lists
def number_bodies(api: httpx.Client, trunk: dict[str, Any]) -> list[dict[str, Any]]:
    """Every place a number of ``trunk`` is rendered by a read."""
    return [
        *api.get(f"{TRUNKS}/{trunk['id']}/numbers").json(),
        *api.get(f"{TRUNKS}/{trunk['id']}").json()["phone_numbers"],
        *api.get(TRUNKS).json()[0]["phone_numbers"],
    ]


def test_number_lists_hide_agent_id_by_default(
    api: httpx.Client, agent: dict[str, Any], trunk: dict[str, Any]
) -> None:
    setup(api, agent["id"], trunk["phone_numbers"][0]["id"]).raise_for_status()
    added = api.post(f"{TRUNKS}/{trunk['id']}/numbers", json={"phone_number": "15550001111"}).json()
    bodies = [*number_bodies(api, trunk), added, *trunk["phone_numbers"]]
    assert len(bodies) == 12 and not any("agent_id" in n for n in bodies)


def test_number_lists_show_agent_id_when_asked(
    api: httpx.Client, sandbox: Any, agent: dict[str, Any], make_trunk: Any
) -> None:
    sandbox.admin.config(number_list_shows_agent_id=True)
    trunk = make_trunk(phone_numbers=[{"phone_number": "+14155550100"}, {"phone_number": "14155550101"}])
    assert [n["agent_id"] for n in trunk["phone_numbers"]] == [None, None]
    setup(api, agent["id"], trunk["phone_numbers"][0]["id"]).raise_for_status()
    bodies = number_bodies(api, trunk)
    assert [n["agent_id"] for n in bodies] == [agent["id"], None] * 3
    added = api.post(f"{TRUNKS}/{trunk['id']}/numbers", json={"phone_number": "15550001111"}).json()
    assert added["agent_id"] is None
    patched = api.patch(f"{TRUNKS}/{trunk['id']}", json={"description": "x"}).json()
    assert patched["phone_numbers"][0]["agent_id"] == agent["id"]
