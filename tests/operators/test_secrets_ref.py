"""Password references: resolution, masking, errors that never carry a secret."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import SecretStr

from airflow_provider_bolna.secrets_ref import (
    PasswordRefPolicy,
    SecretRefError,
    is_secret_ref,
    mask_plain_secrets,
    resolve_secret_refs,
)


@pytest.fixture
def carrier(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CARRIER_ACME",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "acme-login",
                "password": "Conn-S1P-9x8y",
                "extra": {"alt": "Extra-S1P-4t"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_VAR_ACME_SIP_PASSWORD", "Var-S1P-7q6w")
    return "carrier_acme"


def test_import_has_no_side_effects() -> None:
    code = "import sys, airflow_provider_bolna.secrets_ref; print('airflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"conn": "carrier_acme"}, "Conn-S1P-9x8y"),
        ({"conn": "carrier_acme", "field": "password"}, "Conn-S1P-9x8y"),
        ({"conn": "carrier_acme", "field": "extra.alt"}, "Extra-S1P-4t"),
        ({"variable": "acme_sip_password"}, "Var-S1P-7q6w"),
    ],
    ids=["conn", "conn-password", "conn-extra", "variable"],
)
def test_resolves_airflow_refs(carrier: str, ref: dict, expected: str) -> None:
    masked: list[str] = []
    spec = {"name": "t", "auth_password": ref}
    out = resolve_secret_refs(spec, mask=masked.append)
    assert out["auth_password"] == expected
    assert expected in masked
    assert spec["auth_password"] == ref, "the input must not be modified"


def test_real_masker_redacts_resolved_password(carrier: str) -> None:
    from airflow.providers.common.compat.sdk import redact

    resolve_secret_refs({"auth_password": {"conn": "carrier_acme"}})
    assert redact("sending Conn-S1P-9x8y now") == "sending *** now"


def test_login_ref_is_resolved_but_not_masked(carrier: str) -> None:
    masked: list[str] = []
    out = resolve_secret_refs(
        {"auth_username": {"conn": "carrier_acme", "field": "login"}}, mask=masked.append
    )
    assert out == {"auth_username": "acme-login"}
    assert masked == []


def test_plain_password_passes_through_and_is_masked() -> None:
    masked: list[str] = []
    out = resolve_secret_refs(
        {"auth_password": "Plain-S1P-1a2b", "gateways": [{"gateway_address": "x"}]}, mask=masked.append
    )
    assert out["auth_password"] == "Plain-S1P-1a2b"
    assert masked == ["Plain-S1P-1a2b"]


def test_param_ref_to_plain_value_and_to_reference(carrier: str) -> None:
    masked: list[str] = []
    out = resolve_secret_refs(
        {"auth_password": {"param": "pw"}}, params={"pw": "Param-S1P-3c"}, mask=masked.append
    )
    assert out["auth_password"] == "Param-S1P-3c" and masked == ["Param-S1P-3c"]
    # a reference chosen by whoever triggers the run resolves only under an explicit policy
    allowed = PasswordRefPolicy(conn_prefixes=("carrier_",))
    out = resolve_secret_refs(
        {"auth_password": {"param": "pw"}},
        params={"pw": {"conn": "carrier_acme"}},
        mask=masked.append,
        param_policy=allowed,
    )
    assert out["auth_password"] == "Conn-S1P-9x8y"


@pytest.mark.parametrize(
    "value",
    [
        {"conn": "carrier_acme"},  # off by default
        {"conn": "aws_default"},  # not allow-listed
        {"conn": "carrier_acme", "field": "extra.token"},  # only a connection's password
        {"variable": "acme_sip_password"},  # no variable prefix allowed
    ],
)
def test_a_param_cannot_reach_a_secret_the_policy_does_not_allow(carrier: str, value: dict[str, str]) -> None:
    policy = None if value == {"conn": "carrier_acme"} else PasswordRefPolicy(conn_prefixes=("carrier_",))
    kwargs = {} if policy is None else {"param_policy": policy}
    with pytest.raises(SecretRefError) as refused:
        resolve_secret_refs(
            {"auth_password": {"param": "pw"}}, params={"pw": value}, mask=lambda _: None, **kwargs
        )
    assert refused.value.field == "auth_password"
    assert not any(part in str(refused.value) for part in ("carrier_acme", "aws_default", "extra.token"))


def test_nested_specs_in_lists(carrier: str) -> None:
    out = resolve_secret_refs(
        {"trunks": [{"auth_password": {"variable": "acme_sip_password"}}]}, mask=lambda _: None
    )
    assert out == {"trunks": [{"auth_password": "Var-S1P-7q6w"}]}


def test_json_string_spec(carrier: str) -> None:
    out = resolve_secret_refs(json.dumps({"auth_password": {"conn": "carrier_acme"}}), mask=lambda _: None)
    assert out["auth_password"] == "Conn-S1P-9x8y"


@pytest.mark.parametrize(
    ("value", "params", "needle"),
    [
        ({"conn": "missing_conn"}, None, "cannot read connection 'missing_conn'"),
        ({"variable": "missing_var"}, None, "cannot read variable 'missing_var'"),
        ({"conn": "carrier_acme", "variable": "x"}, None, "a reference is"),
        ({"conn": "carrier_acme", "bogus": 1}, None, "unknown key(s) 'bogus'"),
        ({"conn": "carrier_acme", "field": "host"}, None, "'field' must be"),
        ({"conn": ""}, None, "must be a non-empty string"),
        ({"param": "pw"}, None, "param 'pw' is not set"),
        ({"param": "pw"}, {"pw": {"param": "other"}}, "cannot point to another param"),
        ({"not": "a ref"}, None, "must be a string or a reference"),
    ],
    ids=[
        "no-conn",
        "no-var",
        "two-kinds",
        "unknown-key",
        "bad-field",
        "empty",
        "no-param",
        "param-loop",
        "not-ref",
    ],
)
def test_errors_name_the_field(carrier: str, value: object, params: dict | None, needle: str) -> None:
    with pytest.raises(SecretRefError) as err:
        resolve_secret_refs({"auth_password": value}, params=params, mask=lambda _: None)
    assert err.value.field == "auth_password"
    assert needle in str(err.value)


def test_error_never_contains_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NO_PW", json.dumps({"conn_type": "generic", "login": "Secret-Login-55"}))
    with pytest.raises(SecretRefError) as err:
        resolve_secret_refs({"auth_password": {"conn": "no_pw"}}, mask=lambda _: None)
    assert "has no password" in str(err.value)
    assert "Secret-Login-55" not in str(err.value)


def test_mask_plain_secrets_never_resolves() -> None:
    masked: list[str] = []
    mask_plain_secrets(
        {"auth_password": {"conn": "carrier_acme"}, "x": [{"password": "P-1234567"}]}, mask=masked.append
    )
    assert masked == ["P-1234567"]
    mask_plain_secrets(json.dumps({"auth_password": "J-1234567"}), mask=masked.append)
    mask_plain_secrets(type("Spec", (), {"auth_password": SecretStr("S-1234567")})(), mask=masked.append)
    mask_plain_secrets("{not json", mask=masked.append)
    assert masked == ["P-1234567", "J-1234567", "S-1234567"]


def test_is_secret_ref() -> None:
    assert is_secret_ref({"conn": "x"}) and is_secret_ref({"variable": "x"}) and is_secret_ref({"param": "x"})
    assert not is_secret_ref("conn") and not is_secret_ref({"gateway_address": "x"})
