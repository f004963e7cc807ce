"""``TrunkSpec.drift()`` and ``TrunkSpec.fingerprint()``, with property tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_bolna.models import (
    SIPTrunk,
    SpecError,
    TrunkSpec,
    parse_trunk_spec,
)
from tests.unit.helpers import IP_SPEC, SIP_PASSWORD, USERPASS_SPEC, spec, trunk_json

TWO_GATEWAYS = [
    {"gateway_address": "a.carrier.example", "port": 5060, "priority": 1},
    {"gateway_address": "b.carrier.example", "port": 5080, "priority": 2},
]
NUMBERS = [{"phone_number": "+919876543210", "name": "Mumbai"}, {"phone_number": "14155550100"}]
FINGERPRINT_KEY = b"k" * 32


def _actual(source: dict[str, Any], **changes: Any) -> SIPTrunk:
    return SIPTrunk.model_validate(trunk_json(source, **changes))


def _apply(actual: SIPTrunk, body: dict[str, Any]) -> SIPTrunk:
    """What the API holds after a PATCH with ``body`` (fields replaced, lists wholesale)."""
    return SIPTrunk.model_validate({**actual.model_dump(mode="json"), **body})


# ---------------------------------------------------------------------------- no drift

NO_DRIFT_CASES = [
    pytest.param(USERPASS_SPEC, {}, id="identical-userpass"),
    pytest.param(IP_SPEC, {}, id="identical-ip-based"),
    pytest.param(
        spec(USERPASS_SPEC, gateways=TWO_GATEWAYS), {"gateways": TWO_GATEWAYS[::-1]}, id="gateways-reordered"
    ),
    pytest.param(IP_SPEC, {"ip_identifiers": IP_SPEC["ip_identifiers"][::-1]}, id="ips-reordered"),
    pytest.param(
        spec(IP_SPEC, ip_identifiers=[{"ip_address": "203.0.113.5"}, {"ip_address": "2001:db8::1"}]),
        {"ip_identifiers": [{"ip_address": "2001:db8::1/128"}, {"ip_address": "203.0.113.5/32"}]},
        id="ips-single-host-prefix",
    ),
    pytest.param(USERPASS_SPEC, {"auth_password": "the API never returns it"}, id="password-not-compared"),
    pytest.param(
        spec(USERPASS_SPEC, phone_numbers=NUMBERS), {"phone_numbers": []}, id="numbers-not-settings"
    ),
    pytest.param(
        USERPASS_SPEC,
        {"is_active": False, "health": "ok", "ice_support": True},
        id="unknown-and-unmanaged-fields",
    ),
]


@pytest.mark.parametrize(("source", "actual_changes"), NO_DRIFT_CASES)
def test_no_drift(source: dict[str, Any], actual_changes: dict[str, Any]) -> None:
    assert parse_trunk_spec(spec(source)).drift(_actual(source, **actual_changes)) is None


@pytest.mark.parametrize("source", [USERPASS_SPEC, IP_SPEC], ids=["userpass", "ip-based"])
def test_no_drift_when_the_api_omits_optional_fields(source: dict[str, Any]) -> None:
    """Omitted fields take Bolna's documented defaults, as does a spec that leaves them out."""
    minimal_spec = {
        k: v
        for k, v in source.items()
        if k not in ("allow", "disallow", "inbound_enabled", "outbound_leading_plus_enabled")
    }
    minimal_spec["gateways"] = [{"gateway_address": g["gateway_address"]} for g in source["gateways"]]
    actual = {k: v for k, v in minimal_spec.items() if k != "auth_password"} | {"id": "t1"}
    assert parse_trunk_spec(minimal_spec).drift(SIPTrunk.model_validate(actual)) is None


# ---------------------------------------------------------------------------- drift

DRIFT_CASES = [
    pytest.param(USERPASS_SPEC, {"description": "Renamed purpose"}, ["description"], id="description"),
    pytest.param(USERPASS_SPEC, {"description": None}, ["description"], id="description-cleared"),
    pytest.param(USERPASS_SPEC, {"auth_username": "other-user"}, ["auth_username"], id="auth-username"),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "sip.zadarma.com", "port": 5080}]},
        ["gateways"],
        id="gateway-port",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "sip.zadarma.com", "priority": 2}]},
        ["gateways"],
        id="gateway-priority",
    ),
    pytest.param(USERPASS_SPEC, {"gateways": TWO_GATEWAYS}, ["gateways"], id="gateway-added"),
    pytest.param(
        IP_SPEC, {"ip_identifiers": [{"ip_address": "15.207.90.192/31"}]}, ["ip_identifiers"], id="ip-removed"
    ),
    pytest.param(
        IP_SPEC,
        {"ip_identifiers": [*IP_SPEC["ip_identifiers"], {"ip_address": "198.51.100.7"}]},
        ["ip_identifiers"],
        id="ip-added",
    ),
    pytest.param(USERPASS_SPEC, {"allow": "ulaw"}, ["allow"], id="allow"),
    pytest.param(USERPASS_SPEC, {"allow": "alaw,ulaw"}, ["allow"], id="allow-order-is-preference"),
    pytest.param(USERPASS_SPEC, {"disallow": "g729"}, ["disallow"], id="disallow"),
    pytest.param(USERPASS_SPEC, {"transport": "transport-tcp"}, ["transport"], id="transport"),
    pytest.param(USERPASS_SPEC, {"direct_media": True}, ["direct_media"], id="direct-media"),
    pytest.param(USERPASS_SPEC, {"rtp_symmetric": False}, ["rtp_symmetric"], id="rtp-symmetric"),
    pytest.param(USERPASS_SPEC, {"force_rport": False}, ["force_rport"], id="force-rport"),
    pytest.param(
        USERPASS_SPEC, {"media_encryption_optimistic": True}, ["media_encryption_optimistic"], id="optimistic"
    ),
    pytest.param(USERPASS_SPEC, {"qualify_frequency": 0}, ["qualify_frequency"], id="qualify"),
    pytest.param(USERPASS_SPEC, {"inbound_enabled": False}, ["inbound_enabled"], id="inbound"),
    pytest.param(
        USERPASS_SPEC,
        {"outbound_leading_plus_enabled": False},
        ["outbound_leading_plus_enabled"],
        id="leading-plus",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"transport": "transport-tls", "media_encryption": "sdes"},
        ["media_encryption", "transport"],
        id="to-sdes",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"allow": "ulaw", "inbound_enabled": False},
        ["allow", "inbound_enabled"],
        id="two-fields",
    ),
]


@pytest.mark.parametrize(("source", "spec_changes", "fields"), DRIFT_CASES)
def test_drift_patches_exactly_the_changed_fields(
    source: dict[str, Any], spec_changes: dict[str, Any], fields: list[str]
) -> None:
    actual = _actual(source)
    want = parse_trunk_spec(spec(source, **spec_changes))
    patch = want.drift(actual)
    assert patch is not None
    assert patch.fields == fields
    body = patch.to_request_body()
    assert sorted(body) == fields
    request = want.to_request_body()
    for name in fields:
        assert body[name] == request.get(name), name
    assert want.drift(_apply(actual, body)) is None, "the patch does not converge"


SDES = {
    "transport": "transport-tls",
    "media_encryption": "sdes",
    "gateways": [{"gateway_address": "t.example", "port": 5061}],
}


@pytest.mark.parametrize(
    ("actual_changes", "spec_changes"),
    [
        pytest.param(SDES, {**SDES, "media_encryption": "no"}, id="sdes-to-no-keeps-tls"),
        pytest.param(
            SDES, {**SDES, "media_encryption": "no", "transport": "transport-udp"}, id="sdes-to-no-and-udp"
        ),
        pytest.param({}, SDES | {"gateways": USERPASS_SPEC["gateways"]}, id="udp-no-to-tls-sdes"),
        pytest.param(
            {"transport": "transport-tls"},
            {"transport": "transport-tls", "media_encryption": "sdes"},
            id="tls-no-to-sdes",
        ),
    ],
)
def test_media_encryption_always_sent_with_transport(
    actual_changes: dict[str, Any], spec_changes: dict[str, Any]
) -> None:
    actual = _actual(spec(USERPASS_SPEC, **actual_changes))
    want = parse_trunk_spec(spec(USERPASS_SPEC, **spec_changes))
    patch = want.drift(actual)
    assert patch is not None
    body = patch.to_request_body()
    assert {"media_encryption", "transport"} <= set(body)
    assert (body["media_encryption"], body["transport"]) == (
        want.media_encryption.value,
        want.transport.value,
    )
    assert want.drift(_apply(actual, body)) is None


def test_sdes_unchanged_does_not_resend_media_encryption() -> None:
    source = spec(USERPASS_SPEC, **SDES)
    patch = parse_trunk_spec(spec(source, media_encryption_optimistic=True)).drift(_actual(source))
    assert patch is not None and patch.fields == ["media_encryption_optimistic"]


@pytest.mark.parametrize(
    ("actual_source", "actual_changes", "fields"),
    [
        pytest.param(USERPASS_SPEC, {"provider": "twilio"}, ["provider"], id="provider"),
        pytest.param(
            IP_SPEC, {"name": USERPASS_SPEC["name"], "provider": "zadarma"}, ["auth_type"], id="auth-type"
        ),
        pytest.param(IP_SPEC, {"name": USERPASS_SPEC["name"]}, ["provider", "auth_type"], id="both"),
    ],
)
def test_drift_refuses_immutable_changes(
    actual_source: dict[str, Any], actual_changes: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(SpecError) as info:
        parse_trunk_spec(spec(USERPASS_SPEC)).drift(_actual(actual_source, **actual_changes))
    assert info.value.fields == fields
    assert SIP_PASSWORD not in str(info.value)


def test_drift_ignores_immutable_fields_the_api_omits() -> None:
    actual = trunk_json(USERPASS_SPEC)
    del actual["provider"], actual["auth_type"]
    assert parse_trunk_spec(spec(USERPASS_SPEC)).drift(SIPTrunk.model_validate(actual)) is None


# ---------------------------------------------------------------------------- fingerprint

BASE_FP_SPEC = spec(USERPASS_SPEC, gateways=TWO_GATEWAYS, phone_numbers=NUMBERS)

#: One change per TrunkSpec field (``auth_password`` has its own tests).
FINGERPRINT_CHANGES: dict[str, dict[str, Any]] = {
    "name": {"name": "Other"},
    "provider": {"provider": "twilio"},
    "description": {"description": "x"},
    "auth_type": {"auth_type": "ip-based", "ip_identifiers": [{"ip_address": "203.0.113.0/28"}]},
    "auth_username": {"auth_username": "someone-else"},
    "gateways": {"gateways": [TWO_GATEWAYS[0], {**TWO_GATEWAYS[1], "port": 5081}]},
    "ip_identifiers": {"ip_identifiers": [{"ip_address": "203.0.113.0/28"}]},
    "allow": {"allow": "ulaw"},
    "disallow": {"disallow": "g729"},
    "transport": {"transport": "transport-tcp"},
    "direct_media": {"direct_media": True},
    "rtp_symmetric": {"rtp_symmetric": False},
    "force_rport": {"force_rport": False},
    "media_encryption": {"transport": "transport-tls", "media_encryption": "sdes"},
    "media_encryption_optimistic": {"media_encryption_optimistic": True},
    "qualify_frequency": {"qualify_frequency": 61},
    "inbound_enabled": {"inbound_enabled": False},
    "outbound_leading_plus_enabled": {"outbound_leading_plus_enabled": False},
    "phone_numbers": {"phone_numbers": [*NUMBERS, {"phone_number": "442071838750"}]},
}
NUMBER_DETAIL_CHANGES = {
    "number-name": [{**NUMBERS[0], "name": "Delhi"}, NUMBERS[1]],
    "number-e164-flag": [{**NUMBERS[0], "e164_check_enabled": True}, NUMBERS[1]],
}


def test_fingerprint_changes_cover_every_field() -> None:
    assert set(FINGERPRINT_CHANGES) | {"auth_password"} == set(TrunkSpec.model_fields)


def test_fingerprint_is_stable() -> None:
    a, b = parse_trunk_spec(spec(BASE_FP_SPEC)), parse_trunk_spec(spec(BASE_FP_SPEC))
    assert a.fingerprint() == b.fingerprint() == a.fingerprint()
    assert len(a.fingerprint()) == 64 and int(a.fingerprint(), 16) >= 0


def test_fingerprint_is_stable_across_processes() -> None:
    """Hash randomisation must not leak into the fingerprint (it is stored in a state table)."""
    code = (
        "import json, sys; from airflow_provider_bolna.models import parse_trunk_spec; "
        "print(parse_trunk_spec(json.load(sys.stdin)).fingerprint())"
    )
    # this process hashes with a random seed; the child with a fixed, different one
    seed = "0" if os.environ.get("PYTHONHASHSEED") != "0" else "12345"
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(BASE_FP_SPEC),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == parse_trunk_spec(spec(BASE_FP_SPEC)).fingerprint()


@pytest.mark.parametrize("changes", [*FINGERPRINT_CHANGES.values()], ids=list(FINGERPRINT_CHANGES))
def test_fingerprint_changes_with_each_field(changes: dict[str, Any]) -> None:
    base = parse_trunk_spec(spec(BASE_FP_SPEC))
    assert parse_trunk_spec(spec(BASE_FP_SPEC, **changes)).fingerprint() != base.fingerprint()


@pytest.mark.parametrize("numbers", NUMBER_DETAIL_CHANGES.values(), ids=list(NUMBER_DETAIL_CHANGES))
def test_fingerprint_changes_with_number_details(numbers: list[dict[str, Any]]) -> None:
    base = parse_trunk_spec(spec(BASE_FP_SPEC))
    assert parse_trunk_spec(spec(BASE_FP_SPEC, phone_numbers=numbers)).fingerprint() != base.fingerprint()


def test_fingerprint_password_only_with_a_key() -> None:
    one = parse_trunk_spec(spec(BASE_FP_SPEC))
    two = parse_trunk_spec(spec(BASE_FP_SPEC, auth_password=SIP_PASSWORD + "-rotated"))
    assert one.fingerprint() == two.fingerprint()
    assert one.fingerprint(FINGERPRINT_KEY) != two.fingerprint(FINGERPRINT_KEY)
    assert one.fingerprint(FINGERPRINT_KEY) == parse_trunk_spec(spec(BASE_FP_SPEC)).fingerprint(
        FINGERPRINT_KEY
    )
    assert one.fingerprint(FINGERPRINT_KEY) != one.fingerprint(b"another key")
    assert one.fingerprint(FINGERPRINT_KEY) != one.fingerprint()


def test_fingerprint_key_irrelevant_without_password() -> None:
    ip = parse_trunk_spec(spec(IP_SPEC))
    assert ip.fingerprint(FINGERPRINT_KEY) == ip.fingerprint()


# ---------------------------------------------------------------------------- properties

HOSTS = ["a.example", "b.example", "sip.zadarma.com", "203.0.113.9", "gw-1.carrier.net"]
gateway_st = st.fixed_dictionaries(
    {
        "gateway_address": st.sampled_from(HOSTS),
        "port": st.integers(1, 65535),
        "priority": st.integers(0, 5),
    }
)
ip_st = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.tuples(st.ip_addresses(v=4), st.integers(8, 32)).map(lambda t: f"{t[0]}/{t[1]}"),
).map(lambda ip: {"ip_address": ip})
number_st = st.lists(
    st.from_regex(r"\+?[1-9][0-9]{9,12}", fullmatch=True), max_size=4, unique_by=lambda n: n.lstrip("+")
).map(lambda ns: [{"phone_number": n} for n in ns])
tls_st = st.sampled_from(
    [("transport-udp", "no"), ("transport-tcp", "no"), ("transport-tls", "no"), ("transport-tls", "sdes")]
)


@st.composite
def specs(draw: st.DrawFn, auth_type: str | None = None) -> dict[str, Any]:
    auth = auth_type or draw(st.sampled_from(["userpass", "ip-based"]))
    transport, media = draw(tls_st)
    data: dict[str, Any] = {
        "name": "Prop Trunk",
        "provider": "custom",
        "auth_type": auth,
        "gateways": draw(st.lists(gateway_st, min_size=1, max_size=4)),
        "ip_identifiers": draw(st.lists(ip_st, min_size=1 if auth == "ip-based" else 0, max_size=4)),
        "allow": draw(st.sampled_from(["ulaw,alaw", "ulaw", "alaw,ulaw", "ulaw,g722"])),
        "transport": transport,
        "media_encryption": media,
        "qualify_frequency": draw(st.integers(0, 300)),
        "inbound_enabled": draw(st.booleans()),
        "outbound_leading_plus_enabled": draw(st.booleans()),
        "description": draw(st.none() | st.sampled_from(["d1", "d2"])),
        "phone_numbers": draw(number_st),
    }
    if auth == "userpass":
        data |= {"auth_username": draw(st.sampled_from(["u1", "u2"])), "auth_password": SIP_PASSWORD}
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=specs(), rnd=st.randoms(use_true_random=False))
def test_fingerprint_and_drift_ignore_list_order(data: dict[str, Any], rnd: Any) -> None:
    shuffled = json.loads(json.dumps(data))
    for key in ("gateways", "ip_identifiers", "phone_numbers"):
        rnd.shuffle(shuffled[key])
    a, b = parse_trunk_spec(data), parse_trunk_spec(shuffled)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint(FINGERPRINT_KEY) == b.fingerprint(FINGERPRINT_KEY)
    assert a.drift(SIPTrunk.model_validate(trunk_json(shuffled))) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auth=st.sampled_from(["userpass", "ip-based"]), data=st.data())
def test_drift_patch_converges(auth: str, data: st.DataObject) -> None:
    """Applying the PATCH that drift() computes leaves no drift, and touches only differing fields."""
    have_spec, want_spec = data.draw(specs(auth)), data.draw(specs(auth))
    actual = SIPTrunk.model_validate(trunk_json(have_spec))
    want = parse_trunk_spec(want_spec)
    patch = want.drift(actual)
    if patch is None:
        assert want.comparable() == actual.comparable()
        return
    body = patch.to_request_body()
    assert "name" not in body and "provider" not in body and "auth_type" not in body
    for name in body:
        if name not in ("media_encryption", "transport"):
            assert actual.comparable()[name] != want.comparable()[name], f"{name} sent but unchanged"
    assert want.drift(_apply(actual, body)) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted(TrunkSpec.model_fields)
NESTED_KEYS = [
    "gateway_address",
    "port",
    "priority",
    "ip_address",
    "phone_number",
    "name",
    "e164_check_enabled",
]
junk_item = st.dictionaries(st.sampled_from(NESTED_KEYS) | st.text(max_size=6), JSON, max_size=4)
junk_specs = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), JSON, max_size=8),
    st.builds(lambda k, v: spec(USERPASS_SPEC, **{k: v}), st.sampled_from(FIELD_NAMES), JSON),
    st.builds(
        lambda k, items: spec(USERPASS_SPEC, **{k: items}),
        st.sampled_from(["gateways", "ip_identifiers", "phone_numbers"]),
        st.lists(junk_item, max_size=3),
    ),
)


@settings(max_examples=150, deadline=None)
@given(junk=junk_specs)
def test_junk_only_ever_raises_spec_error(junk: Any) -> None:
    try:
        parsed = parse_trunk_spec(junk)
    except SpecError as exc:
        assert exc.errors and SIP_PASSWORD not in str(exc)
    else:
        assert isinstance(parsed, TrunkSpec)
        parsed.to_request_body(), parsed.fingerprint(FINGERPRINT_KEY)
