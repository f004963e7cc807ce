"""Loading ``BolnaSettings`` from an Airflow connection, and ``test_connection()``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from airflow_provider_bolna.exceptions import BolnaValidationError
from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings
from tests.unit.helpers import API_KEY, TRUNKS_PATH, Runner, make_hook, trunk_json

CONN_ENV = "AIRFLOW_CONN_BOLNA_DEFAULT"
OTHER_CONN_ENV = "AIRFLOW_CONN_MY_BOLNA"


def _settings(mode: str, hook: BolnaHook) -> BolnaSettings:
    if mode == "sync":
        return hook.settings
    return asyncio.run(hook.aget_settings())


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


CONNECTION_CASES = [
    pytest.param(
        {
            "conn_type": "bolna",
            "host": "https://x",
            "password": "dummy-key",
            "extra": {"timeout": 5, "requests_per_minute": 120},
        },
        {
            "api_key": "dummy-key",
            "base_url": "https://x",
            "timeout": 5.0,
            "requests_per_minute": 120.0,
            "max_retries": 5,
        },
        id="bolna-json",
    ),
    pytest.param(
        {
            "conn_type": "http",
            "host": "api.example.com",
            "schema": "https",
            "port": 8443,
            "password": "dummy-key",
        },
        {"api_key": "dummy-key", "base_url": "https://api.example.com:8443", "timeout": 30.0},
        id="http-host-schema-port",
    ),
    pytest.param(
        {"conn_type": "http", "host": "localhost", "schema": "http", "port": 8765, "password": "dummy-key"},
        {"base_url": "http://localhost:8765"},
        id="http-plain-http",
    ),
    pytest.param(
        {"conn_type": "http", "host": "https://api.example.com", "port": 8443, "password": "dummy-key"},
        {"base_url": "https://api.example.com:8443"},
        id="http-url-host-plus-port",
    ),
    pytest.param(
        {"conn_type": "http", "host": "http://localhost:8765/", "port": 8765, "password": "dummy-key"},
        {"base_url": "http://localhost:8765"},
        id="port-already-in-host",
    ),
    pytest.param(
        {"conn_type": "bolna", "host": "api.example.com", "password": "dummy-key"},
        {"base_url": "https://api.example.com"},
        id="bare-host-defaults-to-https",
    ),
    pytest.param(
        {"conn_type": "bolna", "host": "https://api.example.com/", "password": "dummy-key"},
        {"base_url": "https://api.example.com"},
        id="trailing-slash",
    ),
    pytest.param(
        {"conn_type": "bolna", "password": "dummy-key"},
        {"base_url": "https://api.bolna.ai"},
        id="no-host-default",
    ),
    pytest.param(
        {"conn_type": "bolna", "host": "https://x", "extra": {"api_key": "from-extra"}},
        {"api_key": "from-extra"},
        id="api-key-extra",
    ),
    pytest.param(
        {
            "conn_type": "bolna",
            "host": "https://x",
            "extra": {"extra__bolna__api_key": "prefixed", "extra__bolna__max_retries": "2"},
        },
        {"api_key": "prefixed", "max_retries": 2},
        id="prefixed-extras",
    ),
    pytest.param(
        {
            "conn_type": "bolna",
            "host": "https://x",
            "password": "dummy-key",
            "extra": {"timeout": "", "max_retry_seconds": "9.5", "dashboard_url": "https://dash.example/"},
        },
        {"timeout": 30.0, "max_retry_seconds": 9.5, "dashboard_url": "https://dash.example"},
        id="string-and-empty-extras",
    ),
    pytest.param(
        "bolna://:uri-key@api.example.com/?timeout=7",
        {"api_key": "uri-key", "base_url": "https://api.example.com", "timeout": 7.0},
        id="uri-form",
    ),
]


@pytest.mark.parametrize(("conn", "expected"), CONNECTION_CASES)
def test_settings_from_env_connection(
    monkeypatch: pytest.MonkeyPatch, mode: str, conn: Any, expected: dict[str, Any]
) -> None:
    monkeypatch.setenv(CONN_ENV, conn if isinstance(conn, str) else json.dumps(conn))
    settings = _settings(mode, BolnaHook())
    actual = {k: getattr(settings, k) for k in expected}
    actual["api_key"] = settings.api_key.get_secret_value() if "api_key" in expected else None
    assert {k: v for k, v in actual.items() if k in expected} == expected


def test_named_connection_and_hook_overrides(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv(
        OTHER_CONN_ENV,
        json.dumps(
            {
                "conn_type": "bolna",
                "host": "https://x",
                "password": "dummy-key",
                "extra": {"timeout": 5, "max_retries": 3},
            }
        ),
    )
    settings = _settings(mode, BolnaHook("my_bolna", timeout=9, requests_per_minute=30))
    assert (settings.timeout, settings.max_retries, settings.requests_per_minute) == (9.0, 3, 30.0)


@pytest.mark.parametrize(
    ("conn", "match"),
    [
        pytest.param({"conn_type": "bolna", "host": "https://x"}, "no API key", id="missing-key"),
        pytest.param(
            {"conn_type": "bolna", "host": "https://x", "password": "", "extra": {"api_key": ""}},
            "no API key",
            id="empty-key",
        ),
        pytest.param(
            {
                "conn_type": "bolna",
                "host": "https://x",
                "password": "dummy-key",
                "extra": {"timeout": "fast"},
            },
            "timeout",
            id="non-numeric-extra",
        ),
        pytest.param(
            {"conn_type": "bolna", "host": "https://x:port", "password": "dummy-key"},
            "port",
            id="bad-port-in-host",
        ),
    ],
)
def test_bad_connection_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch, mode: str, conn: dict[str, Any], match: str
) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    with pytest.raises(BolnaValidationError, match=match) as info:
        _settings(mode, BolnaHook())
    assert "bolna_default" in str(info.value)


def test_requests_use_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        CONN_ENV, json.dumps({"conn_type": "bolna", "host": "https://conn.example", "password": API_KEY})
    )
    hook = BolnaHook()
    with respx.mock(base_url="https://conn.example") as api:
        api.get(TRUNKS_PATH).respond(200, json=[])
        hook.list_trunks()
        Runner("async")(BolnaHook(), "list_trunks")
        assert [c.request.headers["authorization"] for c in api.calls] == [f"Bearer {API_KEY}"] * 2


def test_connection_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        CONN_ENV, json.dumps({"conn_type": "bolna", "host": "https://x", "password": "dummy-key"})
    )
    hook = BolnaHook()
    first = hook.settings
    monkeypatch.setenv(
        CONN_ENV, json.dumps({"conn_type": "bolna", "host": "https://y", "password": "dummy-key"})
    )
    assert hook.settings is first


def test_constructor_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONN_ENV, raising=False)
    hook = BolnaHook("does_not_exist")  # no connection needed until the first call
    assert hook.bolna_conn_id == "does_not_exist"


# ---------------------------------------------------------------------------- test_connection

USER_PATH = "/user/me"


def test_test_connection_checks_the_key_with_user_me(hook: BolnaHook, api: respx.MockRouter) -> None:
    user = api.get(USER_PATH).respond(200, json={"id": "u-1", "name": "Acme", "email": "ops@acme.test"})
    listing = api.get(TRUNKS_PATH).respond(200, json=[trunk_json()])
    ok, message = hook.test_connection()
    assert ok is True
    assert "https://api.test" in message and "API key accepted" in message
    assert "ops@acme.test" not in message, "account details stay out of the UI message"
    assert user.call_count == 1 and listing.call_count == 0, "no listing where /user/me answers"


def test_test_connection_falls_back_to_one_listing_where_user_me_is_404(
    hook: BolnaHook, api: respx.MockRouter
) -> None:
    api.get(USER_PATH).respond(404, json={"detail": "Not Found"})
    listing = api.get(TRUNKS_PATH).respond(200, json=[trunk_json(), trunk_json(trunk_id="t2")])
    ok, message = hook.test_connection()
    assert ok is True
    assert "2 active" in message and "https://api.test" in message
    assert listing.call_count == 1
    assert dict(listing.calls.last.request.url.params) == {"is_active": "true"}


FAILURE_CASES = [
    pytest.param(
        httpx.Response(403, json={"detail": f"Invalid API key {API_KEY}"}), "403", id="403-echoing-key"
    ),
    pytest.param(
        httpx.Response(401, text=f"Authorization: Bearer {API_KEY} refused"), "401", id="401-text-echoing-key"
    ),
    pytest.param(httpx.Response(500, json={"error": 500, "message": "boom"}), "500", id="500-not-retried"),
    pytest.param(httpx.ConnectError("connection refused"), "ConnectError", id="connect-error"),
]


@pytest.mark.parametrize(("outcome", "mentions"), FAILURE_CASES)
def test_test_connection_failure(hook: BolnaHook, api: respx.MockRouter, outcome: Any, mentions: str) -> None:
    route = api.get(USER_PATH)
    listing = api.get(TRUNKS_PATH).respond(200, json=[])
    if isinstance(outcome, Exception):
        route.mock(side_effect=outcome)
    else:
        route.mock(return_value=outcome)
    ok, message = hook.test_connection()
    assert ok is False
    assert mentions in message
    assert API_KEY not in message
    assert route.call_count == 1, "test_connection must answer fast, without retries"
    assert listing.call_count == 0, "only a 404 falls back to a listing"


def test_test_connection_fallback_listing_refused(hook: BolnaHook, api: respx.MockRouter) -> None:
    api.get(USER_PATH).respond(404)
    listing = api.get(TRUNKS_PATH).respond(403, json={"detail": f"Invalid API key {API_KEY}"})
    ok, message = hook.test_connection()
    assert ok is False and "403" in message and API_KEY not in message
    assert listing.call_count == 1


@pytest.mark.parametrize(
    "conn",
    [None, {"conn_type": "bolna", "host": "https://x"}],
    ids=["no-connection", "no-key"],
)
def test_test_connection_never_raises_on_a_bad_connection(
    monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any] | None
) -> None:
    if conn is None:
        monkeypatch.delenv(CONN_ENV, raising=False)
    else:
        monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    ok, message = BolnaHook().test_connection()
    assert ok is False and "bolna_default" in message


def test_test_connection_message_never_holds_the_key_from_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        CONN_ENV, json.dumps({"conn_type": "bolna", "host": "https://conn.example", "password": API_KEY})
    )
    with respx.mock(base_url="https://conn.example") as api:
        api.get(USER_PATH).respond(403, json={"detail": f"key {API_KEY} is not valid"})
        ok, message = BolnaHook().test_connection()
    assert ok is False and API_KEY not in message and "403" in message


def test_settings_repr_hides_the_key() -> None:
    hook = make_hook()
    assert API_KEY not in repr(hook.settings) and API_KEY not in str(hook.settings)
    assert API_KEY not in repr(hook)


# ---------------------------------------------------------------------------- transport: https only


@pytest.mark.parametrize(
    "host",
    ["http://api.example.com", "api.example.com:80", "http://10.0.0.7:8765", "ftp://api.example.com"],
    ids=["http-url", "http-schema-field", "http-private-ip", "ftp"],
)
def test_insecure_api_host_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, mode: str, host: str
) -> None:
    conn: dict[str, Any] = {"conn_type": "bolna", "host": host, "password": API_KEY}
    if host == "api.example.com:80":
        conn.update(host="api.example.com", schema="http", port=80)
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    with respx.mock(assert_all_called=False) as api:
        anything = api.route().respond(200, json=[])
        with pytest.raises(BolnaValidationError) as info:
            Runner(mode)(BolnaHook(), "list_trunks")
    assert "connection 'bolna_default': host" in str(info.value) and "https://" in str(info.value)
    assert API_KEY not in str(info.value)
    assert anything.call_count == 0


@pytest.mark.parametrize(
    "host", ["http://localhost:8765", "http://127.0.0.5:8765", "http://[::1]:8765", "http://LOCALHOST."]
)
def test_plain_http_to_a_loopback_host_is_accepted_without_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    host: str,
) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "bolna", "host": host, "password": "dummy-key"}))
    hook = BolnaHook()
    with respx.mock(assert_all_called=False) as api:
        api.route().respond(200, json=[])
        hook.list_trunks()
    assert "plain http" not in caplog.text + capsys.readouterr().out


def test_allow_insecure_http_accepts_plain_http_and_warns_once_per_hook(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = {
        "conn_type": "bolna",
        "host": "http://api.example.com",
        "password": API_KEY,
        "extra": {"allow_insecure_http": "true"},
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    hook = BolnaHook()
    with respx.mock(base_url="http://api.example.com") as api:
        api.get(TRUNKS_PATH).respond(200, json=[])
        hook.list_trunks()
        hook.list_trunks()
        Runner("async")(hook, "list_trunks")
    out = capsys.readouterr().out
    logged = caplog.text + out
    # once per channel: Airflow 2 and 3.0 also print the `airflow.task` logger's records to stdout
    warning = "sends the API key over plain http"
    assert max(caplog.text.count(warning), out.count(warning)) == 1
    assert "warning" in logged.lower() and API_KEY not in logged


@pytest.mark.parametrize("value", ["maybe", 2])
def test_allow_insecure_http_must_be_a_boolean(
    monkeypatch: pytest.MonkeyPatch, mode: str, value: Any
) -> None:
    conn = {
        "conn_type": "bolna",
        "host": "http://api.example.com",
        "password": "dummy-key",
        "extra": {"allow_insecure_http": value},
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    with pytest.raises(BolnaValidationError, match="allow_insecure_http"):
        _settings(mode, BolnaHook())


def test_settings_made_in_code_follow_the_same_rule() -> None:
    with pytest.raises(BolnaValidationError, match="base_url"):
        BolnaSettings(api_key=SecretStr("k"), base_url="http://api.example.com")
    assert BolnaSettings(
        api_key=SecretStr("k"), base_url="http://api.example.com", allow_insecure_http=True
    ).insecure
    assert not BolnaSettings(api_key=SecretStr("k"), base_url="http://127.0.0.1:1").insecure


# ---------------------------------------------------------------------------- get_conn


def test_get_conn_is_the_configured_sync_client(hook: BolnaHook, api: respx.MockRouter) -> None:
    route = api.get(TRUNKS_PATH).respond(200, json=[])
    client = hook.get_conn()
    assert isinstance(client, httpx.Client) and client is hook.get_conn()
    client.get(TRUNKS_PATH)
    hook.list_trunks()
    assert [c.request.headers["authorization"] for c in route.calls] == [f"Bearer {API_KEY}"] * 2
    assert str(client.base_url).rstrip("/") == "https://api.test"
