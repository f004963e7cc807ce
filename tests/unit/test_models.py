"""Request rules, secret handling and response tolerance of :mod:`airflow_provider_bolna.models`."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from airflow_provider_bolna.models import (
    TRUNK_DEFAULTS,
    AuthType,
    ErrorBody,
    MediaEncryption,
    MessageResponse,
    PhoneNumber,
    PhoneNumberRequest,
    SIPTrunk,
    SIPTrunkCreateRequest,
    SIPTrunkUpdateRequest,
    SpecError,
    Transport,
    TrunkSpec,
    number_key,
    parse_trunk_spec,
)
from tests.unit.helpers import DOCUMENTED_DEFAULTS, IP_SPEC, SIP_PASSWORD, USERPASS_SPEC, spec

#: Words of the rules themselves: an error message may quote these without echoing input.
RULE_VOCABULARY = {
    "userpass",
    "ip-based",
    "sdes",
    "transport-tls",
    "transport-udp",
    "transport-tcp",
    "ulaw,alaw",
}


def _leaf_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaf_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _leaf_strings(v)]
    return [str(value)] if isinstance(value, (str, int)) and not isinstance(value, bool) else []


def _assert_no_input_echoed(err: SpecError, data: dict[str, Any]) -> None:
    rendered = " ".join(
        [str(err), repr(err), *(str(e) for e in err.errors), *(e.message for e in err.errors)]
    )
    assert SIP_PASSWORD not in rendered
    for value in _leaf_strings(data):
        if len(value) >= 4 and value not in RULE_VOCABULARY:
            assert value not in rendered, f"input value {value!r} echoed in {rendered!r}"


# ---------------------------------------------------------------------------- seed examples


def test_userpass_seed_example_parses_with_documented_defaults() -> None:
    s = parse_trunk_spec(spec(USERPASS_SPEC))
    assert s.auth_type is AuthType.USERPASS
    assert s.auth_username == "zadarma-user"
    assert s.auth_password is not None and s.auth_password.get_secret_value() == SIP_PASSWORD
    assert [(g.gateway_address, g.port, g.priority) for g in s.gateways] == [("sip.zadarma.com", 5060, 1)]
    assert s.ip_identifiers == [] and s.phone_numbers == []
    body = s.to_request_body()
    # unset optional fields carry Bolna's documented defaults; the example's own values win
    expected = {**DOCUMENTED_DEFAULTS, "inbound_enabled": True}
    assert {k: body[k] for k in DOCUMENTED_DEFAULTS} == expected


def test_ip_based_seed_example_parses_with_documented_defaults() -> None:
    s = parse_trunk_spec(spec(IP_SPEC))
    assert s.auth_type is AuthType.IP_BASED
    assert s.auth_username is None and s.auth_password is None
    assert [i.ip_address for i in s.ip_identifiers] == ["15.207.90.192/31", "204.89.151.128/27"]
    body = s.to_request_body()
    assert {k: body[k] for k in DOCUMENTED_DEFAULTS} == {**DOCUMENTED_DEFAULTS, "inbound_enabled": True}
    assert "auth_password" not in body and "auth_username" not in body and "description" not in body


def test_gateway_defaults_port_and_priority() -> None:
    s = parse_trunk_spec(spec(IP_SPEC, gateways=[{"gateway_address": "sip.carrier.example"}]))
    assert (s.gateways[0].port, s.gateways[0].priority) == (5060, 1)


def test_create_request_builds_the_documented_create_body() -> None:
    """The API's own name for the create body validates and serialises like a trunk spec."""
    body = SIPTrunkCreateRequest.model_validate(spec(phone_numbers=["+14155550100"])).to_request_body()
    assert body == {
        **DOCUMENTED_DEFAULTS,
        **{k: v for k, v in USERPASS_SPEC.items()},
        "gateways": [{"gateway_address": "sip.zadarma.com", "port": 5060, "priority": 1}],
        "ip_identifiers": [],
        "phone_numbers": [{"phone_number": "+14155550100", "e164_check_enabled": False}],
    }
    with pytest.raises(SpecError, match="unknown_field"):
        parse_trunk_spec(spec(unknown_field=1))
    with pytest.raises(ValidationError):
        SIPTrunkCreateRequest.model_validate(spec(unknown_field=1))


# ---------------------------------------------------------------------------- one defaults table, one password hash


def test_one_defaults_table_for_specs_and_trunks() -> None:
    """A minimal spec and a trunk read back without any optional setting do not drift: both take
    the same documented defaults, for every updatable setting that has one."""
    minimal = parse_trunk_spec(spec(IP_SPEC))
    bare = SIPTrunk.model_validate(
        {
            "id": "t1",
            "name": IP_SPEC["name"],
            "provider": "plivo",
            "auth_type": "ip-based",
            "gateways": IP_SPEC["gateways"],
            "ip_identifiers": IP_SPEC["ip_identifiers"],
        }
    )
    assert minimal.drift(bare.model_copy(update={"inbound_enabled": True})) is None
    defaulted = {
        n
        for n, f in TrunkSpec.model_fields.items()
        if not f.is_required() and f.default_factory is None and f.default is not None
    }
    assert set(TRUNK_DEFAULTS) == defaulted & set(SIPTrunk.model_fields)
    for name, value in TRUNK_DEFAULTS.items():
        assert TrunkSpec.model_fields[name].default == SIPTrunk.model_fields[name].default == value, name
    assert {k: _plain(v) for k, v in TRUNK_DEFAULTS.items()} == DOCUMENTED_DEFAULTS


def test_password_hash_is_the_hmac_of_the_password() -> None:
    s = parse_trunk_spec(spec())
    assert s.password_hash(b"k-1") == hmac.new(b"k-1", SIP_PASSWORD.encode(), hashlib.sha256).hexdigest()
    assert s.password_hash(b"k-2") != s.password_hash(b"k-1")
    assert parse_trunk_spec(spec(IP_SPEC)).password_hash(b"k-1") is None


def test_fingerprints_stay_byte_identical() -> None:
    """Fingerprints are stored in state tables: the values computed before password_hash existed."""
    s = parse_trunk_spec(spec(phone_numbers=["+14155550100"]))
    assert s.fingerprint(b"k-1") == "ca9835f109a739e6b9163e9b457821d3e24712ba8d32be9cfd1a58e6d1ff9b4c"
    assert s.fingerprint() == "8a70b469feb491084e5872f00f2c766e2a4c0044893fee316f08ed48443d2ce6"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


# ---------------------------------------------------------------------------- valid variations

VALID_CASES = [
    pytest.param(IP_SPEC, {"ip_identifiers": [{"ip_address": "203.0.113.5"}]}, id="ip-bare-ipv4"),
    pytest.param(IP_SPEC, {"ip_identifiers": [{"ip_address": "2001:db8::1"}]}, id="ip-bare-ipv6"),
    pytest.param(IP_SPEC, {"ip_identifiers": [{"ip_address": "2001:db8::/48"}]}, id="ip-ipv6-cidr"),
    pytest.param(IP_SPEC, {"ip_identifiers": [{"ip_address": "10.0.0.1/24"}]}, id="ip-cidr-host-bits-set"),
    pytest.param(
        USERPASS_SPEC, {"transport": "transport-tls", "media_encryption": "sdes"}, id="sdes-with-tls"
    ),
    pytest.param(USERPASS_SPEC, {"transport": "transport-tcp"}, id="tcp"),
    pytest.param(USERPASS_SPEC, {"gateways": [{"gateway_address": "203.0.113.9", "port": 1}]}, id="port-1"),
    pytest.param(
        USERPASS_SPEC, {"gateways": [{"gateway_address": "gw.example", "port": 65535}]}, id="port-65535"
    ),
    pytest.param(
        USERPASS_SPEC,
        {
            "gateways": [
                {"gateway_address": "a.example", "priority": 1},
                {"gateway_address": "b.example", "priority": 2},
            ]
        },
        id="two-gateways",
    ),
    pytest.param(USERPASS_SPEC, {"allow": "ulaw"}, id="codec-single"),
    pytest.param(USERPASS_SPEC, {"allow": "ulaw, alaw,g722"}, id="codec-spaces-after-comma"),
    pytest.param(USERPASS_SPEC, {"disallow": "all,!ulaw"}, id="codec-negated"),
    pytest.param(USERPASS_SPEC, {"qualify_frequency": 0}, id="qualify-disabled"),
    pytest.param(
        USERPASS_SPEC, {"phone_numbers": [{"phone_number": "919876543210"}]}, id="number-bare-digits"
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "+919876543210", "e164_check_enabled": True}]},
        id="number-e164-checked",
    ),
    pytest.param(USERPASS_SPEC, {"phone_numbers": [{"phone_number": 919876543210}]}, id="number-as-int"),
    pytest.param(USERPASS_SPEC, {"description": None}, id="description-null"),
]


@pytest.mark.parametrize(("base", "changes"), VALID_CASES)
def test_valid_spec_parses(base: dict[str, Any], changes: dict[str, Any]) -> None:
    s = parse_trunk_spec(spec(base, **changes))
    body = s.to_request_body()
    for key, value in changes.items():
        if key == "allow":
            assert body["allow"] == value.replace(" ", "")
        elif key == "phone_numbers":
            assert [n["phone_number"] for n in body["phone_numbers"]] == [
                str(n["phone_number"]) for n in value
            ]
        elif value is None:
            assert key not in body
        elif key != "gateways":
            assert body[key] == value


@pytest.mark.parametrize("value", [False, "no", "false", "NO", "False", None], ids=repr)
def test_media_encryption_off_spellings_mean_the_string_no(value: Any) -> None:
    """YAML turns an unquoted ``no`` into ``False``; the API wants the *string* ``"no"``."""
    s = parse_trunk_spec(spec(USERPASS_SPEC, media_encryption=value))
    assert s.media_encryption is MediaEncryption.NO
    assert s.to_request_body()["media_encryption"] == "no"
    update = SIPTrunkUpdateRequest(media_encryption=value) if value is not None else None
    if update is not None:
        assert update.to_request_body() == {"media_encryption": "no"}


# ---------------------------------------------------------------------------- invalid specs

INVALID_CASES = [
    pytest.param(USERPASS_SPEC, {"auth_username": None}, "auth_username", id="userpass-no-username"),
    pytest.param(USERPASS_SPEC, {"auth_username": ""}, "auth_username", id="userpass-empty-username"),
    pytest.param(USERPASS_SPEC, {"auth_password": None}, "auth_password", id="userpass-no-password"),
    pytest.param(USERPASS_SPEC, {"auth_password": ""}, "auth_password", id="userpass-empty-password"),
    pytest.param(USERPASS_SPEC, {"auth_password": "   "}, "auth_password", id="userpass-blank-password"),
    pytest.param(IP_SPEC, {"ip_identifiers": []}, "ip_identifiers", id="ip-based-no-ips"),
    pytest.param(IP_SPEC, {"ip_identifiers": None}, "ip_identifiers", id="ip-based-null-ips"),
    pytest.param(
        IP_SPEC,
        {"ip_identifiers": [{"ip_address": "999.12.1.1"}]},
        "ip_identifiers.0.ip_address",
        id="ip-out-of-range",
    ),
    pytest.param(
        IP_SPEC,
        {"ip_identifiers": [{"ip_address": "carrier.example.net"}]},
        "ip_identifiers.0.ip_address",
        id="ip-hostname",
    ),
    pytest.param(
        IP_SPEC,
        {"ip_identifiers": [{"ip_address": "10.20.0.0/33"}]},
        "ip_identifiers.0.ip_address",
        id="ip-bad-prefix",
    ),
    pytest.param(
        IP_SPEC,
        {"ip_identifiers": [{"ip_address": "15.207.90.192/31"}, {"ip_address": "2001:zz8::1"}]},
        "ip_identifiers.1.ip_address",
        id="ip-bad-ipv6-second",
    ),
    pytest.param(
        IP_SPEC, {"ip_identifiers": [{"ip_address": ""}]}, "ip_identifiers.0.ip_address", id="ip-empty"
    ),
    pytest.param(USERPASS_SPEC, {"media_encryption": "sdes"}, "media_encryption", id="sdes-default-udp"),
    pytest.param(
        USERPASS_SPEC,
        {"media_encryption": "sdes", "transport": "transport-tcp"},
        "media_encryption",
        id="sdes-with-tcp",
    ),
    pytest.param(
        USERPASS_SPEC, {"media_encryption": "dtls-srtp"}, "media_encryption", id="media-encryption-unknown"
    ),
    pytest.param(USERPASS_SPEC, {"gateways": []}, "gateways", id="no-gateways"),
    pytest.param(USERPASS_SPEC, {"gateways": None}, "gateways", id="null-gateways"),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": ""}]},
        "gateways.0.gateway_address",
        id="gateway-empty-address",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "sip://gw.example/path"}]},
        "gateways.0.gateway_address",
        id="gateway-url",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "gw .example"}]},
        "gateways.0.gateway_address",
        id="gateway-space",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "gw.example", "port": 0}]},
        "gateways.0.port",
        id="port-0",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "gw.example", "port": 65536}]},
        "gateways.0.port",
        id="port-65536",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "gw.example", "port": "five"}]},
        "gateways.0.port",
        id="port-text",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "gw.example"}, {"gateway_address": "gw2.example", "port": -5}]},
        "gateways.1.port",
        id="port-negative-second",
    ),
    pytest.param(USERPASS_SPEC, {"allow": ""}, "allow", id="codec-empty"),
    pytest.param(USERPASS_SPEC, {"allow": "ulaw,,alaw"}, "allow", id="codec-empty-entry"),
    pytest.param(USERPASS_SPEC, {"allow": "ulaw;alaw"}, "allow", id="codec-semicolon"),
    pytest.param(USERPASS_SPEC, {"allow": "ulaw,opus 48k"}, "allow", id="codec-space-in-name"),
    pytest.param(USERPASS_SPEC, {"disallow": "all,"}, "disallow", id="codec-trailing-comma"),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "919876543210", "e164_check_enabled": True}]},
        "phone_numbers.0.phone_number",
        id="e164-no-plus",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "+0919876543", "e164_check_enabled": True}]},
        "phone_numbers.0.phone_number",
        id="e164-leading-zero",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "+1234567890123456", "e164_check_enabled": True}]},
        "phone_numbers.0.phone_number",
        id="e164-too-long",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "call-me-maybe"}]},
        "phone_numbers.0.phone_number",
        id="number-not-digits",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "+919876543210"}, {"phone_number": "919876543210"}]},
        "phone_numbers",
        id="number-listed-twice",
    ),
    pytest.param(USERPASS_SPEC, {"auth_type": "oauth-token"}, "auth_type", id="auth-type-unknown"),
    pytest.param(USERPASS_SPEC, {"transport": "udp-please"}, "transport", id="transport-unknown"),
    pytest.param(USERPASS_SPEC, {"qualify_frequency": -1}, "qualify_frequency", id="qualify-negative"),
    pytest.param(USERPASS_SPEC, {"name": ""}, "name", id="name-empty"),
    pytest.param(USERPASS_SPEC, {"provider": None}, "provider", id="provider-null"),
    pytest.param(
        USERPASS_SPEC, {"gatewayz": [{"gateway_address": "gw.example"}]}, "gatewayz", id="unknown-top-field"
    ),
    pytest.param(
        USERPASS_SPEC,
        {"gateways": [{"gateway_address": "gw.example", "transport": "udp"}]},
        "gateways.0.transport",
        id="unknown-gateway-field",
    ),
    pytest.param(
        IP_SPEC,
        {"ip_identifiers": [{"ip_address": "15.207.90.192/31", "label": "carrier-edge"}]},
        "ip_identifiers.0.label",
        id="unknown-ip-field",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "+919876543210", "agent": "abcd"}]},
        "phone_numbers.0.agent",
        id="unknown-number-field",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": ["+919876543210", "12"]},
        "phone_numbers.1",
        id="bad-number-shorthand",
    ),
    pytest.param(
        USERPASS_SPEC,
        {"phone_numbers": [{"phone_number": "12"}]},
        "phone_numbers.0.phone_number",
        id="bad-number-object",
    ),
]


@pytest.mark.parametrize(("base", "changes", "field"), INVALID_CASES)
def test_invalid_spec_names_the_field_and_echoes_nothing(
    base: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    data = spec(base, **changes)
    with pytest.raises(SpecError) as info:
        parse_trunk_spec(data, context="row 7")
    err = info.value
    assert field in err.fields
    assert str(err).startswith("row 7: ")
    assert field in str(err)
    _assert_no_input_echoed(err, data)


def test_missing_required_fields_are_all_named() -> None:
    with pytest.raises(SpecError) as info:
        parse_trunk_spec({})
    assert set(info.value.fields) == {"name", "provider", "auth_type", "gateways"}


@pytest.mark.parametrize(
    "junk", [None, "a string", 42, [USERPASS_SPEC], {1: 2}], ids=["none", "str", "int", "list", "int-key"]
)
def test_non_mapping_input_is_a_spec_error(junk: Any) -> None:
    with pytest.raises(SpecError):
        parse_trunk_spec(junk)


def test_password_value_never_in_errors_of_a_rejected_spec() -> None:
    """A spec rejected for any reason still carries the password: it must not surface."""
    data = spec(
        USERPASS_SPEC, gateways=[{"gateway_address": SIP_PASSWORD, "port": 0}], allow=SIP_PASSWORD + ";x"
    )
    with pytest.raises(SpecError) as info:
        parse_trunk_spec(data)
    assert {"gateways.0.port", "allow"} <= set(info.value.fields)
    _assert_no_input_echoed(info.value, data)


def test_pydantic_validation_errors_hide_input() -> None:
    with pytest.raises(ValidationError) as info:
        TrunkSpec.model_validate(spec(USERPASS_SPEC, allow=SIP_PASSWORD + " x"))
    assert SIP_PASSWORD not in str(info.value)


# ---------------------------------------------------------------------------- password handling


def _all_renderings(model: Any) -> str:
    return "\n".join(
        [
            repr(model),
            str(model),
            str(model.model_dump()),
            str(model.model_dump(mode="json")),
            model.model_dump_json(),
            json.dumps(model.model_dump(mode="json")),
        ]
    )


def test_password_hidden_everywhere_but_the_request_body() -> None:
    s = parse_trunk_spec(spec(USERPASS_SPEC))
    assert SIP_PASSWORD not in _all_renderings(s)
    assert s.to_request_body()["auth_password"] == SIP_PASSWORD


def test_update_password_hidden_everywhere_but_the_request_body() -> None:
    u = SIPTrunkUpdateRequest(auth_username="new-user", auth_password=SIP_PASSWORD)
    assert SIP_PASSWORD not in _all_renderings(u)
    assert u.to_request_body() == {"auth_username": "new-user", "auth_password": SIP_PASSWORD}


@pytest.mark.parametrize(
    "password", ["  leading", "trailing  ", " both\t"], ids=["leading", "trailing", "both"]
)
def test_password_whitespace_is_kept_verbatim(password: str) -> None:
    """A SIP password is opaque: trimming it would silently change the credential."""
    s = parse_trunk_spec(spec(USERPASS_SPEC, auth_password=password))
    assert s.to_request_body()["auth_password"] == password
    assert SIPTrunkUpdateRequest(auth_password=password).to_request_body() == {"auth_password": password}


def test_secretstr_password_accepted() -> None:
    s = parse_trunk_spec(spec(USERPASS_SPEC, auth_password=SecretStr(SIP_PASSWORD)))
    assert s.to_request_body()["auth_password"] == SIP_PASSWORD


# ---------------------------------------------------------------------------- update request

UPDATE_BODY_CASES = [
    pytest.param({"is_active": False}, {"is_active": False}, id="deactivate"),
    pytest.param(
        {"outbound_leading_plus_enabled": False}, {"outbound_leading_plus_enabled": False}, id="one-bool"
    ),
    pytest.param(
        {"gateways": [{"gateway_address": "sip.newprovider.com"}]},
        {"gateways": [{"gateway_address": "sip.newprovider.com", "port": 5060, "priority": 1}]},
        id="gateways-replaced-whole",
    ),
    pytest.param({"description": None}, {"description": None}, id="explicit-null-description"),
    pytest.param(
        {"transport": "transport-tls", "media_encryption": "sdes"},
        {"transport": "transport-tls", "media_encryption": "sdes"},
        id="sdes-with-tls",
    ),
    pytest.param({"qualify_frequency": 0}, {"qualify_frequency": 0}, id="qualify-zero"),
]


@pytest.mark.parametrize(("fields", "body"), UPDATE_BODY_CASES)
def test_update_sends_only_set_fields(fields: dict[str, Any], body: dict[str, Any]) -> None:
    update = SIPTrunkUpdateRequest.model_validate(fields)
    assert update.to_request_body() == body
    assert update.fields == sorted(fields)


UPDATE_INVALID_CASES = [
    pytest.param({}, "", id="empty"),
    pytest.param({"provider": "twilio"}, "provider", id="provider-immutable"),
    pytest.param({"auth_type": "ip-based"}, "auth_type", id="auth-type-immutable"),
    pytest.param({"media_encryption": "sdes"}, "transport", id="sdes-without-transport"),
    pytest.param({"media_encryption": "sdes", "transport": "transport-udp"}, "transport", id="sdes-with-udp"),
    pytest.param({"gateways": []}, "gateways", id="remove-all-gateways"),
    pytest.param({"allow": "ulaw;alaw"}, "allow", id="bad-codec"),
    pytest.param(
        {"ip_identifiers": [{"ip_address": "not-an-ip"}]}, "ip_identifiers.0.ip_address", id="bad-ip"
    ),
    pytest.param({"is_activ": False}, "is_activ", id="unknown-field"),
]


@pytest.mark.parametrize(("fields", "field"), UPDATE_INVALID_CASES)
def test_invalid_update_is_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SIPTrunkUpdateRequest.model_validate(fields)
    err = SpecError.from_validation_error(info.value)
    assert field in err.fields


# ---------------------------------------------------------------------------- phone numbers


@pytest.mark.parametrize(
    ("raw", "key"),
    [("+919876543210", "919876543210"), ("919876543210", "919876543210"), (" +14155550100 ", "14155550100")],
    ids=["plus", "bare", "padded"],
)
def test_number_key_ignores_plus(raw: str, key: str) -> None:
    assert number_key(raw) == key
    assert PhoneNumberRequest(phone_number=raw).key == key


# ---------------------------------------------------------------------------- responses

TRUNK_CREATED_EXAMPLE: dict[str, Any] = {
    "id": "01HQXYZ123ABC456DEF",
    "name": "Twilio Production",
    "provider": "twilio",
    "description": "Main Twilio Elastic SIP trunk",
    "auth_type": "userpass",
    "auth_username": "<your-sip-username>",
    "gateways": [
        {
            "id": "01HQXYZ111AAA111BBB",
            "gateway_address": "your-trunk.pstn.twilio.com",
            "port": 5060,
            "priority": 1,
            "created_at": "2026-05-09T10:00:00Z",
        }
    ],
    "ip_identifiers": [],
    "phone_numbers": [],
    "allow": "ulaw,alaw",
    "disallow": "all",
    "transport": "transport-udp",
    "direct_media": False,
    "rtp_symmetric": True,
    "force_rport": True,
    "media_encryption": "no",
    "media_encryption_optimistic": False,
    "qualify_frequency": 60,
    "inbound_enabled": True,
    "outbound_leading_plus_enabled": True,
    "is_active": True,
    "created_at": "2026-05-09T10:00:00Z",
    "updated_at": "2026-05-09T10:00:00Z",
}
NUMBER_ADDED_EXAMPLE: dict[str, Any] = {
    "id": "01HQNUMBER111222333",
    "phone_number": "919876543210",
    "user_id": "user_abc123",
    "byot_trunk_id": "01HQXYZ123ABC456DEF",
    "telephony_provider": "sip-trunk",
    "deleted": False,
    "created_at": "2025-01-15T10:05:00Z",
    "updated_at": "2025-01-15T10:05:00Z",
}


def test_trunk_response_example_parses() -> None:
    t = SIPTrunk.model_validate(TRUNK_CREATED_EXAMPLE)
    assert t.id == "01HQXYZ123ABC456DEF"
    assert t.auth_type is AuthType.USERPASS and t.transport is Transport.UDP
    assert t.gateways[0].id == "01HQXYZ111AAA111BBB" and t.gateways[0].created_at is not None
    assert t.is_active is True


def test_trunk_response_tolerates_unknown_fields() -> None:
    extra = {"ice_support": True, "health": {"status": "ok"}, "user_id": "u1"}
    data = {
        **TRUNK_CREATED_EXAMPLE,
        **extra,
        "gateways": [{**TRUNK_CREATED_EXAMPLE["gateways"][0], "weight": 3}],
    }
    t = SIPTrunk.model_validate(data)
    assert t.model_extra == extra
    assert t.gateways[0].gateway_address == "your-trunk.pstn.twilio.com"


@pytest.mark.parametrize("missing", ["absent", "null"])
def test_trunk_response_missing_optional_fields_take_documented_defaults(missing: str) -> None:
    data: dict[str, Any] = {"id": "t1"}
    if missing == "null":
        data.update(
            {
                k: None
                for k in [
                    *DOCUMENTED_DEFAULTS,
                    "gateways",
                    "ip_identifiers",
                    "phone_numbers",
                    "is_active",
                    "name",
                    "description",
                ]
            }
        )
    t = SIPTrunk.model_validate(data)
    assert t.name is None and t.provider is None and t.auth_type is None
    assert (t.gateways, t.ip_identifiers, t.phone_numbers) == ([], [], [])
    assert t.is_active is True
    assert {
        k: v for k, v in t.model_dump(mode="json").items() if k in DOCUMENTED_DEFAULTS
    } == DOCUMENTED_DEFAULTS


def test_nested_response_nulls_take_defaults() -> None:
    """A nullable column in the live API must not make a whole trunk unreadable."""
    t = SIPTrunk.model_validate(
        {
            "id": "t",
            "gateways": [{"gateway_address": "gw.example", "port": None, "priority": None, "id": None}],
            "phone_numbers": [{"id": "n", "phone_number": "111", "deleted": None, "name": None}],
        }
    )
    assert (t.gateways[0].port, t.gateways[0].priority) == (5060, 1)
    assert t.phone_numbers[0].deleted is False and t.active_numbers == t.phone_numbers


def test_response_required_fields_still_required() -> None:
    with pytest.raises(ValidationError):
        PhoneNumber.model_validate({"id": None, "phone_number": "111"})
    with pytest.raises(ValidationError):
        SIPTrunk.model_validate({"name": "no id"})


def test_trunk_response_media_encryption_false_means_no() -> None:
    assert (
        SIPTrunk.model_validate({"id": "t", "media_encryption": False}).media_encryption is MediaEncryption.NO
    )


def test_number_response_example_and_tolerance() -> None:
    n = PhoneNumber.model_validate({**NUMBER_ADDED_EXAMPLE, "agent_id": None, "region": "IN"})
    assert (n.id, n.phone_number, n.byot_trunk_id, n.deleted) == (
        "01HQNUMBER111222333",
        "919876543210",
        "01HQXYZ123ABC456DEF",
        False,
    )
    assert n.model_extra == {"user_id": "user_abc123", "region": "IN"}
    minimal = PhoneNumber.model_validate({"id": "n1", "phone_number": "+14155550100"})
    assert (minimal.name, minimal.deleted, minimal.key) == (None, False, "14155550100")


def test_soft_deleted_numbers_are_not_active() -> None:
    t = SIPTrunk.model_validate(
        {
            "id": "t",
            "phone_numbers": [
                {"id": "a", "phone_number": "111", "deleted": True},
                {"id": "b", "phone_number": "222"},
            ],
        }
    )
    assert [n.id for n in t.active_numbers] == ["b"]


ERROR_BODY_CASES = [
    pytest.param(
        {"error": 400, "message": "At least one gateway is required"},
        "At least one gateway is required",
        id="error-message",
    ),
    pytest.param({"detail": "Invalid API key"}, "Invalid API key", id="detail-string"),
    pytest.param({"detail": {"message": "nested"}}, "nested", id="detail-object"),
    pytest.param({"error": 500}, "500", id="error-code-only"),
    pytest.param({}, "", id="empty"),
    pytest.param({"message": "m", "detail": "d", "error": 1}, "m", id="message-wins"),
    pytest.param({"detail": "d", "error": 7, "trace_id": "abc"}, "d", id="detail-before-error-extra-field"),
    pytest.param(
        {
            "detail": [
                {
                    "loc": ["body", "gateways", 0, "port"],
                    "msg": "too big",
                    "type": "less_than_equal",
                    "input": 70000,
                }
            ]
        },
        "gateways.0.port: too big",
        id="detail-list",
    ),
]


@pytest.mark.parametrize(("body", "text"), ERROR_BODY_CASES)
def test_error_body_text(body: dict[str, Any], text: str) -> None:
    assert ErrorBody.model_validate(body).text() == text


def test_error_body_detail_list_never_shows_input() -> None:
    body = {
        "detail": [
            {
                "loc": ["body", "auth_password"],
                "msg": "too weak",
                "type": "value_error",
                "input": SIP_PASSWORD,
            }
        ]
    }
    text = ErrorBody.model_validate(body).text()
    assert text == "auth_password: too weak"
    assert SIP_PASSWORD not in text


def test_message_response() -> None:
    assert MessageResponse.model_validate(
        {"message": "Trunk deleted successfully. 3 phone number(s) removed.", "x": 1}
    ).message.startswith("Trunk deleted")
    assert MessageResponse.model_validate({}).message == ""
