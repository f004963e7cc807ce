"""Every ``BolnaHook`` endpoint method, sync and async, against a respx-mocked API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_bolna import __version__
from airflow_provider_bolna.exceptions import BolnaResponseError, BolnaValidationError
from airflow_provider_bolna.hooks.bolna import BolnaHook
from airflow_provider_bolna.models import (
    PhoneNumber,
    PhoneNumberRequest,
    SIPTrunk,
    SIPTrunkUpdateRequest,
    parse_trunk_spec,
)
from tests.unit.helpers import (
    API_KEY,
    IP_SPEC,
    NUMBER_ID,
    SIP_PASSWORD,
    TRUNK_ID,
    TRUNKS_PATH,
    USERPASS_SPEC,
    Runner,
    calls_of,
    number_json,
    spec,
    trunk_json,
)

TRUNK_PATH = f"{TRUNKS_PATH}/{TRUNK_ID}"
NUMBERS_PATH = f"{TRUNK_PATH}/numbers"
PHONE = "+919876543210"


def _only_request(api: respx.MockRouter) -> httpx.Request:
    assert len(api.calls) == 1, calls_of(api)
    return api.calls.last.request


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def _assert_common_headers(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["accept"] == "application/json"
    user_agent = request.headers["user-agent"]
    assert user_agent.startswith(f"airflow-provider-bolna/{__version__} ")
    if request.content:
        assert request.headers["content-type"] == "application/json"


# ---------------------------------------------------------------------------- trunks


@pytest.mark.parametrize("source", [USERPASS_SPEC, IP_SPEC], ids=["userpass", "ip-based"])
def test_create_trunk(hook: BolnaHook, api: respx.MockRouter, run: Runner, source: dict[str, Any]) -> None:
    api.post(TRUNKS_PATH).respond(201, json=trunk_json(source))
    trunk = run(hook, "create_trunk", spec(source))
    request = _only_request(api)
    assert (request.method, request.url.path, request.url.query) == ("POST", TRUNKS_PATH, b"")
    assert _body(request) == parse_trunk_spec(spec(source)).to_request_body()
    assert _body(request).get("auth_password") == source.get("auth_password")
    _assert_common_headers(request)
    assert isinstance(trunk, SIPTrunk) and trunk.id == TRUNK_ID and trunk.name == source["name"]


def test_create_trunk_accepts_a_spec_model(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.post(TRUNKS_PATH).respond(201, json=trunk_json())
    run(hook, "create_trunk", parse_trunk_spec(spec()))
    assert _body(_only_request(api))["auth_password"] == SIP_PASSWORD


def test_create_trunk_refuses_an_invalid_spec_before_sending(
    hook: BolnaHook, api: respx.MockRouter, run: Runner
) -> None:
    with pytest.raises(BolnaValidationError) as info:
        run(hook, "create_trunk", spec(auth_password=None))
    assert "auth_password" in str(info.value)
    assert api.calls.call_count == 0


@pytest.mark.parametrize(
    ("is_active", "query"),
    [(True, {"is_active": "true"}), (False, {"is_active": "false"}), (None, {})],
    ids=["active", "inactive", "all"],
)
def test_list_trunks(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, is_active: bool | None, query: dict[str, str]
) -> None:
    api.get(TRUNKS_PATH).respond(200, json=[trunk_json(), trunk_json(IP_SPEC, trunk_id="t2")])
    trunks = run(hook, "list_trunks", is_active=is_active)
    request = _only_request(api)
    assert (request.method, request.url.path) == ("GET", TRUNKS_PATH)
    assert dict(request.url.params) == query
    assert request.content == b""
    _assert_common_headers(request)
    assert all(isinstance(t, SIPTrunk) for t in trunks)
    assert sorted(t.id for t in trunks) == sorted([TRUNK_ID, "t2"])


def test_list_trunks_filters_by_name(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).respond(
        200, json=[trunk_json(), trunk_json(IP_SPEC, trunk_id="t2"), {"name": "junk without id"}]
    )
    trunks = run(hook, "list_trunks", names=[IP_SPEC["name"]])
    assert [t.id for t in trunks] == ["t2"]


def test_list_trunks_empty(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).respond(200, json=[])
    assert run(hook, "list_trunks") == []


def test_get_trunk(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNK_PATH).respond(200, json=trunk_json())
    trunk = run(hook, "get_trunk", TRUNK_ID)
    request = _only_request(api)
    assert (request.method, request.url.path) == ("GET", TRUNK_PATH)
    _assert_common_headers(request)
    assert isinstance(trunk, SIPTrunk) and trunk.gateways[0].gateway_address == "sip.zadarma.com"


def test_trunk_id_is_escaped_in_the_path(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(f"{TRUNKS_PATH}/a%2F..%2Fb%3Fx").respond(200, json=trunk_json(trunk_id="a/../b?x"))
    assert run(hook, "get_trunk", "a/../b?x").id == "a/../b?x"
    assert _only_request(api).url.raw_path == f"{TRUNKS_PATH}/a%2F..%2Fb%3Fx".encode()


@pytest.mark.parametrize("trunk_id", ["", "   "], ids=["empty", "blank"])
def test_empty_trunk_id_refused_before_sending(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, trunk_id: str
) -> None:
    with pytest.raises(BolnaValidationError, match="trunk_id"):
        run(hook, "get_trunk", trunk_id)
    assert api.calls.call_count == 0


@pytest.mark.parametrize("bad", ["..", ".", " .. "], ids=["dotdot", "dot", "padded-dotdot"])
@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        pytest.param("remove_number", (TRUNK_ID, "{}"), "phone_number_id", id="remove_number"),
        pytest.param("delete_trunk", ("{}",), "trunk_id", id="delete_trunk"),
        pytest.param("get_trunk", ("{}",), "trunk_id", id="get_trunk"),
    ],
)
def test_dot_segments_refused_before_sending(
    hook: BolnaHook,
    api: respx.MockRouter,
    run: Runner,
    bad: str,
    name: str,
    args: tuple[str, ...],
    field: str,
) -> None:
    """``..`` survives percent-encoding and URL normalisation then removes it:
    ``remove_number(trunk, "..")`` would send ``DELETE /sip-trunks/trunks/{trunk}``."""
    api.route().respond(200, json={"message": "deleted"})
    with pytest.raises(BolnaValidationError, match=field):
        run(hook, name, *(a.format(bad) for a in args))
    assert api.calls.call_count == 0


@pytest.mark.parametrize(
    ("update", "body"),
    [
        pytest.param({"is_active": False}, {"is_active": False}, id="dict"),
        pytest.param(
            SIPTrunkUpdateRequest(auth_username="u2", auth_password=SIP_PASSWORD),
            {"auth_username": "u2", "auth_password": SIP_PASSWORD},
            id="model-with-password",
        ),
        pytest.param(
            {
                "gateways": [{"gateway_address": "sip.newprovider.com"}],
                "outbound_leading_plus_enabled": False,
            },
            {
                "gateways": [{"gateway_address": "sip.newprovider.com", "port": 5060, "priority": 1}],
                "outbound_leading_plus_enabled": False,
            },
            id="gateways",
        ),
    ],
)
def test_update_trunk(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, update: Any, body: dict[str, Any]
) -> None:
    api.patch(TRUNK_PATH).respond(200, json=trunk_json(is_active=False))
    trunk = run(hook, "update_trunk", TRUNK_ID, update)
    request = _only_request(api)
    assert (request.method, request.url.path) == ("PATCH", TRUNK_PATH)
    assert _body(request) == body
    _assert_common_headers(request)
    assert isinstance(trunk, SIPTrunk) and trunk.is_active is False


@pytest.mark.parametrize(
    "update",
    [{}, {"provider": "twilio"}, {"media_encryption": "sdes"}],
    ids=["empty", "immutable", "sdes-no-tls"],
)
def test_update_trunk_refuses_invalid_update_before_sending(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, update: dict[str, Any]
) -> None:
    with pytest.raises(BolnaValidationError):
        run(hook, "update_trunk", TRUNK_ID, update)
    assert api.calls.call_count == 0


def test_delete_trunk(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.delete(TRUNK_PATH).respond(
        200, json={"message": "Trunk deleted successfully. 3 phone number(s) removed."}
    )
    assert run(hook, "delete_trunk", TRUNK_ID) is True
    request = _only_request(api)
    assert (request.method, request.url.path, request.content) == ("DELETE", TRUNK_PATH, b"")
    _assert_common_headers(request)


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200), httpx.Response(204), httpx.Response(200, json={})],
    ids=["200-empty", "204", "200-no-message"],
)
def test_delete_trunk_tolerates_bodyless_success(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, response: httpx.Response
) -> None:
    api.delete(TRUNK_PATH).mock(return_value=response)
    assert run(hook, "delete_trunk", TRUNK_ID) is True


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        pytest.param([], None, id="absent"),
        pytest.param([trunk_json(IP_SPEC, trunk_id="other")], None, id="other-names-only"),
        pytest.param(
            [
                trunk_json(trunk_id="t-new", created_at="2026-06-01T00:00:00Z"),
                trunk_json(trunk_id="t-old", created_at="2026-01-01T00:00:00Z"),
            ],
            "t-old",
            id="duplicates-oldest-wins",
        ),
        pytest.param([trunk_json(IP_SPEC, trunk_id="other"), trunk_json()], TRUNK_ID, id="found"),
    ],
)
def test_find_trunk(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, listing: list[dict[str, Any]], expected: str | None
) -> None:
    api.get(TRUNKS_PATH).respond(200, json=listing)
    found = run(hook, "find_trunk", USERPASS_SPEC["name"])
    request = _only_request(api)
    assert (request.method, request.url.path) == ("GET", TRUNKS_PATH)
    assert dict(request.url.params) == {}, "an inactive trunk still holds the name: look at all"
    assert (found.id if found else None) == expected


# ---------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("number", "body"),
    [
        pytest.param(PHONE, {"phone_number": PHONE, "e164_check_enabled": False}, id="str"),
        pytest.param(919876543210, {"phone_number": "919876543210", "e164_check_enabled": False}, id="int"),
        pytest.param(
            {"phone_number": PHONE, "name": "Mumbai", "e164_check_enabled": True},
            {"phone_number": PHONE, "name": "Mumbai", "e164_check_enabled": True},
            id="dict",
        ),
        pytest.param(
            PhoneNumberRequest(phone_number="919876543210"),
            {"phone_number": "919876543210", "e164_check_enabled": False},
            id="model",
        ),
    ],
)
def test_add_number(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, number: Any, body: dict[str, Any]
) -> None:
    api.post(NUMBERS_PATH).respond(201, json=number_json(body["phone_number"], number_id=NUMBER_ID))
    added = run(hook, "add_number", TRUNK_ID, number)
    request = _only_request(api)
    assert (request.method, request.url.path) == ("POST", NUMBERS_PATH)
    assert _body(request) == body
    _assert_common_headers(request)
    assert isinstance(added, PhoneNumber) and added.id == NUMBER_ID and added.byot_trunk_id == TRUNK_ID


@pytest.mark.parametrize(
    "number",
    ["not-a-number", {"phone_number": "919876543210", "e164_check_enabled": True}],
    ids=["junk", "e164"],
)
def test_add_number_refuses_invalid_number_before_sending(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, number: Any
) -> None:
    with pytest.raises(BolnaValidationError, match="phone_number"):
        run(hook, "add_number", TRUNK_ID, number)
    assert api.calls.call_count == 0


def test_list_numbers_skips_soft_deleted(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).respond(
        200,
        json=[
            number_json(PHONE),
            number_json("14155550100", deleted=True),
            number_json("442071838750", extra_field=1),
        ],
    )
    numbers = run(hook, "list_numbers", TRUNK_ID)
    request = _only_request(api)
    assert (request.method, request.url.path) == ("GET", NUMBERS_PATH)
    _assert_common_headers(request)
    assert all(isinstance(n, PhoneNumber) for n in numbers)
    assert [n.phone_number for n in numbers] == [PHONE, "442071838750"]


def test_remove_number(hook: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.delete(f"{NUMBERS_PATH}/{NUMBER_ID}").respond(
        200, json={"message": "Phone number removed successfully"}
    )
    assert run(hook, "remove_number", TRUNK_ID, NUMBER_ID) is True
    request = _only_request(api)
    assert (request.method, request.url.path) == ("DELETE", f"{NUMBERS_PATH}/{NUMBER_ID}")
    _assert_common_headers(request)


# ---------------------------------------------------------------------------- success bodies that are not what the API documents

BAD_SUCCESS_BODIES = [
    pytest.param(httpx.Response(200, text="<html>gateway</html>"), "not JSON", id="html"),
    pytest.param(httpx.Response(200, json={"trunks": []}), "unexpected shape", id="envelope-not-array"),
    pytest.param(httpx.Response(200, json=[{"name": "no id"}]), "unexpected shape", id="item-without-id"),
    pytest.param(httpx.Response(200), "unexpected shape", id="empty"),
]


@pytest.mark.parametrize(("response", "why"), BAD_SUCCESS_BODIES)
def test_unexpected_success_body_is_a_response_error(
    hook: BolnaHook, api: respx.MockRouter, run: Runner, response: httpx.Response, why: str
) -> None:
    api.get(TRUNKS_PATH).mock(return_value=response)
    with pytest.raises(BolnaResponseError, match=why) as info:
        run(hook, "list_trunks")
    assert info.value.status_code == 200
    assert api.calls.call_count == 1


# ---------------------------------------------------------------------------- clients


def test_sync_client_is_reused_across_calls(hook: BolnaHook, api: respx.MockRouter) -> None:
    api.get(TRUNKS_PATH).respond(200, json=[])
    hook.list_trunks()
    client = hook.client
    hook.list_trunks()
    assert hook.client is client and api.calls.call_count == 2
    hook.close()
    assert hook.client is not client


async def test_async_client_is_reused_within_a_loop(hook: BolnaHook, api: respx.MockRouter) -> None:
    api.get(TRUNKS_PATH).respond(200, json=[])
    await hook.alist_trunks()
    client = await hook.aclient()
    await hook.alist_trunks()
    assert await hook.aclient() is client
    await hook.aclose()


def test_trunk_url(hook: BolnaHook) -> None:
    assert hook.trunk_url("a/b") == "https://platform.bolna.ai/sip-trunks/a%2Fb"
