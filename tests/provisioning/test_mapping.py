"""The column contract: each column rule, and errors that name the customer and the field."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bolna.models import AuthType, MediaEncryption, Transport
from airflow_provider_bolna.provisioning.mapping import (
    RowMapper,
    render_trunk_name,
    validate_name_template,
)
from airflow_provider_bolna.provisioning.settings import PasswordRefPolicy

PASSWORD = "S1p-Pass-Word-42"


def row(**over: Any) -> dict[str, Any]:
    """A valid userpass customer row."""
    base = {
        "customer_id": 42,
        "provider": "twilio",
        "auth_type": "userpass",
        "auth_username": "acme",
        "auth_password": PASSWORD,
        "gateways": "sip.acme.test",
    }
    base.update(over)
    return base


def mapped(**over: Any):
    return RowMapper().map_row(row(**over))


def test_minimal_row_takes_bolna_defaults() -> None:
    m = mapped()
    assert m.valid and m.status == "active" and m.trunk_name == "cust-42"
    spec = m.spec
    assert spec.auth_type is AuthType.USERPASS and spec.transport is Transport.UDP
    assert spec.allow == "ulaw,alaw" and spec.qualify_frequency == 60 and spec.phone_numbers == []
    assert [g.model_dump() for g in spec.gateways] == [
        {"gateway_address": "sip.acme.test", "port": 5060, "priority": 1}
    ]


def test_column_names_are_case_insensitive_and_unknown_columns_ignored() -> None:
    data = {k.upper(): v for k, v in row().items()} | {"COMPANY": "Acme", "created_at": "2026-01-01"}
    assert RowMapper().map_row(data).valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.test", [("a.test", 5060, 1)]),
        ("a.test:5061", [("a.test", 5061, 1)]),
        ("a.test:5060;b.test:5080", [("a.test", 5060, 1), ("b.test", 5080, 2)]),
        ("a.test, b.test", [("a.test", 5060, 1), ("b.test", 5060, 2)]),
        ("a.test:5060:3", [("a.test", 5060, 3)]),
        ("[2001:db8::1]:5060", [("2001:db8::1", 5060, 1)]),
        ('[{"gateway_address": "a.test", "port": 5062, "priority": 2}]', [("a.test", 5062, 2)]),
        ('["a.test:5070", "b.test"]', [("a.test", 5070, 1), ("b.test", 5060, 1)]),
        ('{"gateway_address": "a.test"}', [("a.test", 5060, 1)]),
    ],
    ids=[
        "host",
        "host-port",
        "two-semicolon",
        "two-comma",
        "priority",
        "ipv6",
        "json-objects",
        "json-strings",
        "json-object",
    ],
)
def test_gateways_text_and_json(text: str, expected: list[tuple[str, int, int]]) -> None:
    spec = mapped(gateways=text).spec
    assert [(g.gateway_address, g.port, g.priority) for g in spec.gateways] == expected


def test_gateways_from_a_json_column_value() -> None:
    spec = mapped(gateways=[{"gateway_address": "a.test", "port": 5061}]).spec  # psycopg gives lists for json
    assert spec.gateways[0].port == 5061


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("a.test:70000", "gateways.0.port", "less than or equal to 65535"),
        ("a.test:x", "gateways.0.port", "whole number"),
        ("b.test;a.test:0", "gateways.1.port", "greater than or equal to 1"),
        ("[not json", "gateways", "does not parse"),
        ("a:b:c:d", "gateways.0", "host[:port[:priority]]"),
        ("[]", "gateways", "at least one gateway"),
    ],
)
def test_gateway_errors_name_field_and_row(value: str, field: str, message: str) -> None:
    m = mapped(gateways=value)
    assert not m.valid and field in m.fields
    assert m.error.startswith("customer 42: ") and f"{field}: " in m.error and message in m.error


def test_missing_gateways_is_an_error() -> None:
    m = mapped(gateways=None)
    assert m.fields == ("gateways",)


def test_ip_identifiers_and_their_errors() -> None:
    spec = mapped(
        auth_type="ip-based",
        auth_username=None,
        auth_password=None,
        ip_identifiers="203.0.113.0/28; 198.51.100.7 2001:db8::/64",
    ).spec
    assert [i.ip_address for i in spec.ip_identifiers] == ["203.0.113.0/28", "198.51.100.7", "2001:db8::/64"]
    m = mapped(auth_type="ip-based", auth_password=None, ip_identifiers="10.0.0.1, 10.0.0.0/33")
    assert m.fields == ("ip_identifiers.1",) and "CIDR" in m.error
    m = mapped(auth_type="ip-based", auth_password=None, ip_identifiers=None)
    assert m.fields == ("ip_identifiers",)


def test_numbers_split_and_named_errors() -> None:
    spec = mapped(numbers="+14155550100, 14155550101;+14155550102").spec
    assert [n.phone_number for n in spec.phone_numbers] == ["+14155550100", "14155550101", "+14155550102"]
    assert mapped(numbers='["+14155550100", 14155550101]').spec.phone_numbers[1].phone_number == "14155550101"
    m = mapped(numbers="+14155550100, 12")
    assert m.fields == ("numbers.1",) and m.error.startswith("customer 42: numbers.1: ")
    m = mapped(numbers="+14155550100, 14155550100")
    assert m.fields == ("numbers",) and m.error.startswith("customer 42: numbers: ")


def test_e164_flag_applies_to_every_number() -> None:
    spec = mapped(numbers="+14155550100", e164_check_enabled="yes").spec
    assert spec.phone_numbers[0].e164_check_enabled is True
    m = mapped(numbers="14155550100", e164_check_enabled=True)
    assert m.fields == ("numbers.0",) and "E.164" in m.error


@pytest.mark.parametrize("value", [True, 1, "1", "true", "T", "yes", "Y", "on"])
def test_true_booleans(value: Any) -> None:
    assert mapped(inbound_enabled=value).spec.inbound_enabled is True


@pytest.mark.parametrize("value", [False, 0, "0", "false", "F", "no", "N", "off"])
def test_false_booleans(value: Any) -> None:
    assert mapped(outbound_leading_plus_enabled=value).spec.outbound_leading_plus_enabled is False


@pytest.mark.parametrize(
    "column",
    [
        "inbound_enabled",
        "direct_media",
        "rtp_symmetric",
        "force_rport",
        "media_encryption_optimistic",
        "outbound_leading_plus_enabled",
    ],
)
def test_bad_boolean_names_the_column(column: str) -> None:
    m = mapped(**{column: "maybe"})
    assert (
        m.fields == (column,)
        and m.error == f"customer 42: {column}: must be a boolean (true/false, 1/0, yes/no)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("udp", Transport.UDP),
        ("TCP", Transport.TCP),
        ("tls", Transport.TLS),
        ("transport-tls", Transport.TLS),
    ],
)
def test_transport_short_and_long_names(value: str, expected: Transport) -> None:
    assert mapped(transport=value, gateways="a.test:5061").spec.transport is expected


def test_sdes_needs_tls() -> None:
    m = mapped(media_encryption="sdes", transport="udp")
    assert m.fields == ("media_encryption",) and "transport-tls" in m.error
    spec = mapped(media_encryption="sdes", transport="tls").spec
    assert spec.media_encryption is MediaEncryption.SDES


def test_codecs_and_qualify_frequency() -> None:
    spec = mapped(allow="ulaw", disallow="all", qualify_frequency="0").spec
    assert (spec.allow, spec.disallow, spec.qualify_frequency) == ("ulaw", "all", 0)
    assert mapped(qualify_frequency="often").fields == ("qualify_frequency",)
    assert mapped(allow="ulaw,,alaw").fields == ("allow",)


def test_userpass_needs_username_and_password() -> None:
    assert mapped(auth_password=None).fields == ("auth_password",)
    assert mapped(auth_username="").fields == ("auth_username",)


def test_several_errors_are_all_reported_without_values() -> None:
    m = mapped(gateways="a.test:70000", inbound_enabled="maybe", auth_password="hunter2-secret")
    assert set(m.fields) == {"gateways.0.port", "inbound_enabled"}
    assert "hunter2-secret" not in m.error and "70000" not in m.error and "maybe" not in m.error


def test_immutable_provider_and_auth_type_values() -> None:
    assert mapped(auth_type="ip").fields == ("auth_type",)
    assert mapped(provider=None).fields == ("provider",)


def test_status_active_churned_and_invalid() -> None:
    assert mapped(status=None).status == "active"
    assert mapped(status=" Active ").status == "active"
    churned = mapped(status="churned", gateways="a.test:70000")
    assert churned.status == "churned" and churned.valid and churned.spec is None  # no validation needed
    m = mapped(status="paused")
    assert m.fields == ("status",) and m.error == "customer 42: status: must be 'active' or 'churned'"


def test_missing_customer_id_is_a_query_error() -> None:
    with pytest.raises(KeyError, match="customer_id"):
        RowMapper().map_row({"provider": "x"})


def test_name_template() -> None:
    assert render_trunk_name("acme-{customer_id}-sip", 7) == "acme-7-sip"
    assert render_trunk_name("cust-{customer_id}", "C-001") == "cust-C-001"
    for bad in (
        "static-name",
        "cust-{customer_id}-{region}",
        "cust-{",
        "{customer_id:>50000000}",
        "{customer_id!r}",
        "{customer_id.__class__}",
        "{customer_id[0]}",
        "{0}",
        "cust/{customer_id}",
        "x" * 100 + "{customer_id}",
    ):
        with pytest.raises(ValueError, match="name_template"):
            validate_name_template(bad)
    assert RowMapper("t-{customer_id}").map_row(row()).trunk_name == "t-42"


def test_plain_passwords_are_collected_for_masking() -> None:
    mapper = RowMapper()
    mapper.map_row(row())
    mapper.map_row(row(customer_id=43, auth_password="Other-Pass-99"))
    assert mapper.secrets == [PASSWORD, "Other-Pass-99"]


class _Conn:
    def __init__(self, password: str) -> None:
        self.password = password
        self.login = "carrier-login"
        self.extra_dejson: dict[str, Any] = {}


def test_password_references_are_resolved_cached_and_masked() -> None:
    calls: list[str] = []

    def get_connection(conn_id: str) -> _Conn:
        calls.append(conn_id)
        return _Conn("From-Conn-Secret-1")

    policy = PasswordRefPolicy(conn_prefixes=("carrier_",), variable_prefixes=("sip_",))
    mapper = RowMapper(
        password_refs=policy, get_connection=get_connection, get_variable=lambda key: "From-Var-Secret-2"
    )
    a = mapper.map_row(row(auth_password='{"conn": "carrier_acme"}'))
    b = mapper.map_row(row(customer_id=43, auth_password={"conn": "carrier_acme"}))
    c = mapper.map_row(row(customer_id=44, auth_password='{"variable": "sip_pw"}'))
    assert a.spec.auth_password.get_secret_value() == "From-Conn-Secret-1"
    assert b.spec.auth_password.get_secret_value() == "From-Conn-Secret-1"
    assert c.spec.auth_password.get_secret_value() == "From-Var-Secret-2"
    assert calls == ["carrier_acme"]  # one lookup per batch, not per row
    assert "From-Conn-Secret-1" in mapper.secrets and "From-Var-Secret-2" in mapper.secrets


def test_unresolvable_reference_is_a_row_error() -> None:
    def boom(conn_id: str) -> Any:
        raise LookupError(conn_id)

    policy = PasswordRefPolicy(conn_prefixes=("carrier_",))
    m = RowMapper(password_refs=policy, get_connection=boom).map_row(
        row(auth_password='{"conn": "carrier_nope"}')
    )
    assert m.fields == ("auth_password",) and "cannot read connection 'carrier_nope'" in m.error
    m = RowMapper(password_refs=policy).map_row(row(auth_password='{"conn": "carrier_x", "bogus": 1}'))
    assert m.fields == ("auth_password",)


@pytest.mark.parametrize(
    ("reference", "policy"),
    [
        ('{"conn": "aws_default"}', PasswordRefPolicy()),  # off by default
        ('{"conn": "aws_default"}', PasswordRefPolicy(conn_prefixes=("carrier_",))),  # not allow-listed
        ('{"conn": "carrier_acme", "field": "extra.token"}', PasswordRefPolicy(conn_prefixes=("carrier_",))),
        ('{"conn": "carrier_acme", "field": "login"}', PasswordRefPolicy(conn_prefixes=("carrier_",))),
        ('{"variable": "aws_secret"}', PasswordRefPolicy(variable_prefixes=("sip_",))),
        ('{"variable": "sip_pw"}', PasswordRefPolicy(conn_prefixes=("carrier_",))),
        ('{"param": "sip_password"}', PasswordRefPolicy(conn_prefixes=("carrier_",))),
    ],
)
def test_a_row_cannot_reach_a_secret_the_policy_does_not_allow(
    reference: str, policy: PasswordRefPolicy
) -> None:
    """A tenant's row must not choose which secret is sent to Bolna (on a gateway it chose)."""
    reads: list[str] = []

    def get_connection(conn_id: str) -> _Conn:
        reads.append(conn_id)
        return _Conn("Airflow-Secret-Of-Another-System")

    def get_variable(key: str) -> str:
        reads.append(key)
        return "Airflow-Secret-Of-Another-System"

    mapper = RowMapper(password_refs=policy, get_connection=get_connection, get_variable=get_variable)
    m = mapper.map_row(row(auth_password=reference))
    assert m.spec is None and m.fields == ("auth_password",)
    assert reads == [] and mapper.secrets == []  # refused before anything was read
    for part in ("aws_default", "aws_secret", "carrier_acme", "sip_pw", "extra.token", "sip_password"):
        assert part not in m.error  # the reference is not echoed


@pytest.mark.parametrize("customer_id", ["a" * 99, "x/y", "évè", "42 ", "a\nb", "{customer_id}"])
def test_a_trunk_name_bolna_may_refuse_fails_that_row_alone(customer_id: str) -> None:
    mapper = RowMapper("cust-{customer_id}")
    m = mapper.map_row(row(customer_id=customer_id))
    assert m.spec is None and m.fields == ("customer_id",) and "trunk name" in m.error
    assert mapper.map_row(row(customer_id="ok-1_2.3")).spec is not None


def test_a_huge_customer_key_fails_without_building_the_name() -> None:
    m = RowMapper().map_row(row(customer_id="9" * 50_000_000))
    assert m.fields == ("customer_id",) and len(m.error) < 300
