"""Trunk endpoints of the sandbox over real HTTP: shapes, defaults, status codes, rules."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.unit.helpers import DOCUMENTED_DEFAULTS as CREATE_FIELD_DEFAULTS

from .conftest import ISO, SEED_IP_BASED, SEED_USERPASS, TRUNKS, ULID, BodyFactory, assert_error

pytestmark = pytest.mark.integration

#: the documented defaults of the optional create fields, and what a new trunk starts with
DOCUMENTED_DEFAULTS = {**CREATE_FIELD_DEFAULTS, "is_active": True, "ip_identifiers": [], "phone_numbers": []}


@pytest.mark.parametrize("example", [SEED_USERPASS, SEED_IP_BASED], ids=["userpass", "ip-based"])
def test_seed_examples_create_with_defaults(api: httpx.Client, example: dict[str, Any]) -> None:
    response = api.post(TRUNKS, json=example)
    assert response.status_code == 201, response.text
    trunk = response.json()
    expected = {**DOCUMENTED_DEFAULTS, **{k: v for k, v in example.items() if k != "auth_password"}}
    for key, value in expected.items():
        if key == "gateways":
            assert [
                {k: g[k] for k in ("gateway_address", "port", "priority")} for g in trunk["gateways"]
            ] == value
        else:
            assert trunk[key] == value, key
    assert ULID.fullmatch(trunk["id"])
    assert ISO.fullmatch(trunk["created_at"]) and trunk["created_at"] == trunk["updated_at"]
    assert "auth_password" not in trunk and "auth_password_hash" not in trunk
    assert api.get(f"{TRUNKS}/{trunk['id']}").json() == trunk


def test_spec_examples_create(api: httpx.Client, shared_dir: Any) -> None:
    import yaml

    spec = yaml.safe_load((shared_dir / "bolna-api" / "sip-trunks.openapi.yaml").read_text())
    examples = spec["paths"]["/sip-trunks/trunks"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert examples
    for name, example in examples.items():
        response = api.post(TRUNKS, json=example["value"])
        assert response.status_code == 201, (name, response.text)


def test_gateway_defaults_and_order(api: httpx.Client, trunk_body: BodyFactory) -> None:
    gateways = [
        {"gateway_address": "b.example"},
        {"gateway_address": "a.example", "port": 5061, "priority": 0},
    ]
    trunk = api.post(TRUNKS, json=trunk_body(gateways=gateways)).json()
    assert [(g["gateway_address"], g["port"], g["priority"]) for g in trunk["gateways"]] == [
        ("b.example", 5060, 1),
        ("a.example", 5061, 0),
    ]
    assert all(ULID.fullmatch(g["id"]) for g in trunk["gateways"])


def test_ids_are_time_ordered(make_trunk: Any) -> None:
    ids = [make_trunk()["id"] for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_list_is_bare_array_with_filter(api: httpx.Client, make_trunk: Any) -> None:
    assert api.get(TRUNKS).json() == []
    active = make_trunk()
    inactive = make_trunk()
    api.patch(f"{TRUNKS}/{inactive['id']}", json={"is_active": False}).raise_for_status()
    assert [t["id"] for t in api.get(TRUNKS).json()] == [active["id"], inactive["id"]]
    assert [t["id"] for t in api.get(TRUNKS, params={"is_active": "true"}).json()] == [active["id"]]
    assert [t["id"] for t in api.get(TRUNKS, params={"is_active": "false"}).json()] == [inactive["id"]]


@pytest.mark.parametrize("value", ["yes", "1", "", "maybe"])
def test_list_bad_is_active(api: httpx.Client, value: str) -> None:
    assert_error(api.get(TRUNKS, params={"is_active": value}), 400, "is_active")


def test_get_unknown_trunk(api: httpx.Client) -> None:
    response = api.get(f"{TRUNKS}/01AAAAAAAAAAAAAAAAAAAAAAAA")
    assert response.status_code == 404
    assert response.json() == {"error": 404, "message": "trunk not found"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "sandbox-key"},
        {"Authorization": "Basic sandbox-key"},
    ],
)
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", TRUNKS),
        ("POST", TRUNKS),
        ("GET", f"{TRUNKS}/x"),
        ("PATCH", f"{TRUNKS}/x"),
        ("DELETE", f"{TRUNKS}/x"),
        ("POST", f"{TRUNKS}/x/numbers"),
        ("GET", f"{TRUNKS}/x/numbers"),
        ("DELETE", f"{TRUNKS}/x/numbers/y"),
    ],
)
def test_bad_or_missing_key_is_403(sandbox: Any, method: str, path: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=sandbox.url, trust_env=False) as client:
        response = client.request(method, path, headers=headers, json={})
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid API key"}


def test_bearer_scheme_is_case_insensitive(sandbox: Any) -> None:
    response = httpx.get(
        f"{sandbox.url}{TRUNKS}", headers={"Authorization": f"bearer {sandbox.api_key}"}, trust_env=False
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/", "/sip-trunks", f"{TRUNKS}/", "/trunk/trunks", f"{TRUNKS}/a/b"])
def test_unknown_route_is_404(api: httpx.Client, path: str) -> None:
    assert api.get(path).status_code == 404


def test_wrong_method_is_405(api: httpx.Client) -> None:
    assert api.put(TRUNKS, json={}).status_code == 405


def test_duplicate_name_is_409_and_counted(api: httpx.Client, sandbox: Any, trunk_body: BodyFactory) -> None:
    body = trunk_body(name="Acme")
    assert api.post(TRUNKS, json=body).status_code == 201
    response = api.post(TRUNKS, json=body)
    assert response.status_code == 409
    assert response.json() == {"error": 409, "message": "A trunk named 'Acme' already exists"}
    counters = sandbox.admin.counters()
    assert counters["duplicate_names_attempted"] == 1
    assert counters["requests"]["POST /sip-trunks/trunks"] == {"201": 1, "409": 1}
    assert counters["trunks"] == 1 and counters["writes"]["create_trunk"] == 1


# ----------------------------------------------------------------------------- validation
INVALID_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("missing name", {"name": None}, "name"),
    ("blank name", {"name": "  "}, "name"),
    ("name not string", {"name": 5}, "name"),
    ("missing provider", {"provider": None}, "provider"),
    ("empty provider", {"provider": ""}, "provider"),
    ("missing auth_type", {"auth_type": None}, "auth_type"),
    ("bad auth_type", {"auth_type": "digest"}, "auth_type"),
    ("userpass without username", {"auth_username": None}, "auth_username"),
    ("userpass blank username", {"auth_username": ""}, "auth_username"),
    ("userpass without password", {"auth_password": None}, "auth_password"),
    ("userpass empty password", {"auth_password": ""}, "auth_password"),
    ("ip-based without ips", {"auth_type": "ip-based"}, "ip_identifiers"),
    ("ip-based empty ips", {"auth_type": "ip-based", "ip_identifiers": []}, "ip_identifiers"),
    (
        "bad ip",
        {"auth_type": "ip-based", "ip_identifiers": [{"ip_address": "10.0.0.300"}]},
        "ip_identifiers[0].ip_address",
    ),
    ("hostname as ip", {"ip_identifiers": [{"ip_address": "sip.example.com"}]}, "ip_identifiers[0]"),
    ("ip item unknown key", {"ip_identifiers": [{"ip": "1.2.3.4"}]}, "ip_identifiers[0].ip"),
    ("missing gateways", {"gateways": None}, "gateways"),
    ("empty gateways", {"gateways": []}, "gateways"),
    ("gateways not list", {"gateways": {"gateway_address": "x"}}, "gateways"),
    ("gateway without address", {"gateways": [{"port": 5060}]}, "gateways[0].gateway_address"),
    ("gateway blank address", {"gateways": [{"gateway_address": ""}]}, "gateways[0].gateway_address"),
    ("port zero", {"gateways": [{"gateway_address": "x", "port": 0}]}, "gateways[0].port"),
    ("port too big", {"gateways": [{"gateway_address": "x", "port": 65536}]}, "gateways[0].port"),
    ("port string", {"gateways": [{"gateway_address": "x", "port": "5060"}]}, "gateways[0].port"),
    ("port bool", {"gateways": [{"gateway_address": "x", "port": True}]}, "gateways[0].port"),
    ("port fractional", {"gateways": [{"gateway_address": "x", "port": 5060.5}]}, "gateways[0].port"),
    ("negative priority", {"gateways": [{"gateway_address": "x", "priority": -1}]}, "gateways[0].priority"),
    ("negative qualify", {"qualify_frequency": -1}, "qualify_frequency"),
    ("huge qualify", {"qualify_frequency": 2**63}, "qualify_frequency"),
    ("bad transport", {"transport": "udp"}, "transport"),
    ("media_encryption false", {"media_encryption": False}, "media_encryption"),
    ("bad media_encryption", {"media_encryption": "srtp"}, "media_encryption"),
    ("sdes on udp", {"media_encryption": "sdes"}, "media_encryption"),
    ("sdes on tcp", {"media_encryption": "sdes", "transport": "transport-tcp"}, "media_encryption"),
    ("uppercase codec", {"allow": "ULAW"}, "allow"),
    ("codec with space", {"allow": "ulaw, alaw"}, "allow"),
    ("empty codec token", {"allow": "ulaw,,alaw"}, "allow"),
    ("trailing comma", {"disallow": "all,"}, "disallow"),
    ("empty disallow", {"disallow": ""}, "disallow"),
    ("bool as string", {"inbound_enabled": "true"}, "inbound_enabled"),
    ("bool as int", {"direct_media": 0}, "direct_media"),
    ("description number", {"description": 3}, "description"),
    ("unknown field", {"colour": "blue"}, "colour"),
    ("is_active not creatable", {"is_active": True}, "is_active"),
    ("bad inline number", {"phone_numbers": [{"phone_number": "12ab"}]}, "phone_numbers[0].phone_number"),
    ("inline number missing", {"phone_numbers": [{"name": "x"}]}, "phone_numbers[0].phone_number"),
]


@pytest.mark.parametrize(
    "overrides,field", [(o, f) for _, o, f in INVALID_CREATES], ids=[name for name, _, _ in INVALID_CREATES]
)
def test_create_validation(
    api: httpx.Client, sandbox: Any, trunk_body: BodyFactory, overrides: dict[str, Any], field: str
) -> None:
    body = trunk_body(**overrides)
    if overrides.get("auth_type") == "ip-based" and "ip_identifiers" not in overrides:
        body.pop("ip_identifiers", None)
    assert_error(api.post(TRUNKS, json=body), 400, field)
    assert sandbox.admin.counters()["trunks"] == 0


def test_sdes_with_tls_is_accepted(api: httpx.Client, trunk_body: BodyFactory) -> None:
    response = api.post(TRUNKS, json=trunk_body(media_encryption="sdes", transport="transport-tls"))
    assert response.status_code == 201
    assert response.json()["media_encryption"] == "sdes"


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'"x"', b"null", b'{"name": NaN}', b"\xff\xfe"])
def test_malformed_or_non_object_body(api: httpx.Client, raw: bytes) -> None:
    response = api.post(TRUNKS, content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "body")


def test_integral_float_port_is_accepted(api: httpx.Client, trunk_body: BodyFactory) -> None:
    body = trunk_body(gateways=[{"gateway_address": "x", "port": 5061.0}])
    assert api.post(TRUNKS, json=body).json()["gateways"][0]["port"] == 5061


def test_ipv6_and_cidr_identifiers(api: httpx.Client, trunk_body: BodyFactory) -> None:
    ips = [{"ip_address": "2001:db8::/32"}, {"ip_address": "203.0.113.5"}, {"ip_address": "10.1.2.3/8"}]
    trunk = api.post(
        TRUNKS,
        json=trunk_body(auth_type="ip-based", auth_username=None, auth_password=None, ip_identifiers=ips),
    ).json()
    assert trunk["ip_identifiers"] == ips
    assert trunk["auth_username"] is None


# ----------------------------------------------------------------------------- PATCH
def test_patch_changes_only_given_fields(api: httpx.Client, make_trunk: Any) -> None:
    trunk = make_trunk()
    time.sleep(0.005)  # timestamps have millisecond precision: the PATCH must land in a later one
    response = api.patch(
        f"{TRUNKS}/{trunk['id']}", json={"outbound_leading_plus_enabled": False, "description": None}
    )
    assert response.status_code == 200
    updated = response.json()
    changed = {k for k in trunk if trunk[k] != updated[k]}
    assert changed == {"outbound_leading_plus_enabled", "description", "updated_at"}
    assert updated["updated_at"] >= trunk["updated_at"]
    assert api.get(f"{TRUNKS}/{trunk['id']}").json() == updated


def test_patch_replaces_lists_wholesale(api: httpx.Client, make_trunk: Any) -> None:
    trunk = make_trunk(
        gateways=[{"gateway_address": "a"}, {"gateway_address": "b"}],
        ip_identifiers=[{"ip_address": "1.1.1.1"}],
    )
    updated = api.patch(
        f"{TRUNKS}/{trunk['id']}",
        json={"gateways": [{"gateway_address": "c", "port": 5080}], "ip_identifiers": []},
    ).json()
    assert [(g["gateway_address"], g["port"], g["priority"]) for g in updated["gateways"]] == [("c", 5080, 1)]
    assert updated["ip_identifiers"] == []


def test_patch_rotates_password_without_returning_it(api: httpx.Client, make_trunk: Any) -> None:
    trunk = make_trunk()
    updated = api.patch(f"{TRUNKS}/{trunk['id']}", json={"auth_username": "new", "auth_password": "pw"})
    assert updated.status_code == 200
    assert updated.json()["auth_username"] == "new"
    assert "auth_password" not in updated.text


@pytest.mark.parametrize(
    "body,field",
    [
        ({"provider": "other"}, "provider"),
        ({"auth_type": "ip-based"}, "auth_type"),
        ({"phone_numbers": []}, "phone_numbers"),
        ({"colour": "blue"}, "colour"),
        ({"gateways": []}, "gateways"),
        ({"auth_password": ""}, "auth_password"),
        ({"auth_username": ""}, "auth_username"),
        ({"name": ""}, "name"),
        ({"is_active": "false"}, "is_active"),
        ({"media_encryption": "sdes"}, "media_encryption"),
        ({"media_encryption": "sdes", "transport": "transport-tcp"}, "media_encryption"),
        ({"media_encryption": False}, "media_encryption"),
        ({}, "body"),
        ([], "body"),
    ],
)
def test_patch_validation(api: httpx.Client, make_trunk: Any, body: Any, field: str) -> None:
    trunk = make_trunk()
    assert_error(api.patch(f"{TRUNKS}/{trunk['id']}", json=body), 400, field)
    assert api.get(f"{TRUNKS}/{trunk['id']}").json() == trunk


def test_patch_sdes_with_tls_in_same_request_or_stored(api: httpx.Client, make_trunk: Any) -> None:
    trunk = make_trunk()
    url = f"{TRUNKS}/{trunk['id']}"
    assert api.patch(url, json={"media_encryption": "sdes", "transport": "transport-tls"}).status_code == 200
    assert api.patch(url, json={"media_encryption": "no"}).status_code == 200
    # stored transport is already TLS: sdes alone is accepted (documented choice)
    assert api.patch(url, json={"media_encryption": "sdes"}).json()["media_encryption"] == "sdes"
    # leaving TLS while sdes is stored would break the rule
    assert_error(api.patch(url, json={"transport": "transport-udp"}), 400, "media_encryption")


def test_patch_ip_based_cannot_drop_all_ips(api: httpx.Client) -> None:
    trunk = api.post(TRUNKS, json=SEED_IP_BASED).json()
    assert_error(api.patch(f"{TRUNKS}/{trunk['id']}", json={"ip_identifiers": []}), 400, "ip_identifiers")


def test_patch_rename_conflict_and_self_rename(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    first, second = make_trunk(name="one"), make_trunk(name="two")
    response = api.patch(f"{TRUNKS}/{second['id']}", json={"name": "one"})
    assert response.status_code == 409
    assert response.json()["message"] == "A trunk named 'one' already exists"
    assert api.patch(f"{TRUNKS}/{first['id']}", json={"name": "one"}).status_code == 200
    assert sandbox.admin.counters()["duplicate_names_attempted"] == 1


def test_patch_unknown_trunk(api: httpx.Client) -> None:
    assert api.patch(f"{TRUNKS}/nope", json={"is_active": False}).json() == {
        "error": 404,
        "message": "trunk not found",
    }


# ----------------------------------------------------------------------------- DELETE
def test_delete_trunk_soft_deletes_numbers(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    trunk = make_trunk(phone_numbers=[{"phone_number": "+14155550100"}, {"phone_number": "14155550101"}])
    url = f"{TRUNKS}/{trunk['id']}"
    response = api.delete(url)
    assert response.status_code == 200
    assert response.json() == {"message": "Trunk deleted successfully. 2 phone number(s) removed."}
    assert api.get(url).status_code == 404
    assert api.get(f"{url}/numbers").status_code == 404
    assert api.delete(url).json() == {"error": 404, "message": "trunk not found"}
    assert sandbox.admin.audit()["numbers"] == 0
    # the numbers are free again
    other = make_trunk(phone_numbers=[{"phone_number": "14155550100"}])
    assert other["phone_numbers"][0]["phone_number"] == "14155550100"


def test_delete_trunk_without_numbers(api: httpx.Client, make_trunk: Any) -> None:
    trunk = make_trunk()
    assert api.delete(f"{TRUNKS}/{trunk['id']}").json()["message"] == (
        "Trunk deleted successfully. 0 phone number(s) removed."
    )
