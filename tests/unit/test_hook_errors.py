"""Mapping of error responses to :mod:`airflow_provider_bolna.exceptions`, for every body shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_bolna.exceptions import (
    BolnaAuthError,
    BolnaConflictError,
    BolnaError,
    BolnaNotFoundError,
    BolnaRateLimitError,
    BolnaServerError,
    BolnaTransportError,
    BolnaValidationError,
    error_for_status,
)
from airflow_provider_bolna.hooks.bolna import BolnaHook
from tests.unit.helpers import SIP_PASSWORD, TRUNK_ID, TRUNKS_PATH, Runner, make_hook

TRUNK_PATH = f"{TRUNKS_PATH}/{TRUNK_ID}"
ERROR_TEXT_LIMIT = 300


@pytest.fixture
def once() -> BolnaHook:
    """A hook that never retries, so each test sees exactly one response."""
    return make_hook(max_retries=0)


STATUS_CASES = [
    pytest.param(
        400,
        {"error": 400, "message": "At least one gateway is required"},
        BolnaValidationError,
        "At least one gateway is required",
        id="400-error-message",
    ),
    pytest.param(
        422,
        {"detail": "media_encryption='sdes' requires transport='transport-tls'"},
        BolnaValidationError,
        "media_encryption='sdes' requires transport='transport-tls'",
        id="422-detail-string",
    ),
    pytest.param(401, {"error": 401, "message": "Unauthorized"}, BolnaAuthError, "Unauthorized", id="401"),
    pytest.param(403, {"detail": "Invalid API key"}, BolnaAuthError, "Invalid API key", id="403-detail"),
    pytest.param(
        404, {"error": 404, "message": "trunk not found"}, BolnaNotFoundError, "trunk not found", id="404"
    ),
    pytest.param(
        409,
        {"message": "Phone number already exists on another active trunk"},
        BolnaConflictError,
        "Phone number already exists on another active trunk",
        id="409",
    ),
    pytest.param(
        429,
        {"error": 429, "message": "Too many requests"},
        BolnaRateLimitError,
        "Too many requests",
        id="429",
    ),
    pytest.param(
        500, {"error": 500, "message": "Internal error"}, BolnaServerError, "Internal error", id="500"
    ),
    pytest.param(
        502,
        "<html><body>Bad gateway</body></html>",
        BolnaServerError,
        "<html><body>Bad gateway</body></html>",
        id="502-html",
    ),
    pytest.param(503, None, BolnaServerError, "Service Unavailable", id="503-empty"),
    pytest.param(418, {"message": "teapot"}, BolnaError, "teapot", id="418-unmapped"),
]


@pytest.mark.parametrize(("status", "body", "cls", "text"), STATUS_CASES)
def test_status_maps_to_exception(
    once: BolnaHook, api: respx.MockRouter, run: Runner, status: int, body: Any, cls: type, text: str
) -> None:
    response = (
        httpx.Response(status, json=body)
        if isinstance(body, dict)
        else httpx.Response(status, text=body or "")
    )
    api.get(TRUNK_PATH).mock(return_value=response)
    with pytest.raises(BolnaError) as info:
        run(once, "get_trunk", TRUNK_ID)
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.method, err.path) == (status, "GET", TRUNK_PATH)
    assert err.message == text
    assert str(err) == f"GET {TRUNK_PATH} -> {status}: {text}"


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BolnaValidationError, False),
        (401, BolnaAuthError, False),
        (403, BolnaAuthError, False),
        (404, BolnaNotFoundError, False),
        (409, BolnaConflictError, False),
        (422, BolnaValidationError, False),
        (429, BolnaRateLimitError, True),
        (500, BolnaServerError, True),
        (503, BolnaServerError, True),
        (599, BolnaServerError, True),
        (405, BolnaError, False),
    ],
    ids=str,
)
def test_error_for_status(status: int, cls: type, retryable: bool) -> None:
    assert error_for_status(status) is cls
    assert (
        cls("x").retryable if cls is not BolnaRateLimitError else cls("x", retry_after=None).retryable
    ) is retryable


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(BolnaValidationError, ValueError)


def test_detail_list_input_never_in_the_exception(
    once: BolnaHook, api: respx.MockRouter, run: Runner
) -> None:
    detail = [
        {
            "loc": ["body", "auth_password"],
            "msg": "String should have at most 8 characters",
            "type": "string_too_long",
            "input": "UNIQUE-INPUT-VALUE-1",
        },
        {
            "loc": ["body", "gateways", 0, "port"],
            "msg": "Input should be less than 65536",
            "type": "less_than",
            "input": 99999,
        },
    ]
    api.patch(TRUNK_PATH).respond(422, json={"detail": detail})
    with pytest.raises(BolnaValidationError) as info:
        run(once, "update_trunk", TRUNK_ID, {"auth_password": SIP_PASSWORD})
    rendered = f"{info.value} {info.value!r} {info.value.message}"
    assert (
        info.value.message
        == "auth_password: String should have at most 8 characters; gateways.0.port: Input should be less than 65536"
    )
    assert "UNIQUE-INPUT-VALUE-1" not in rendered and "99999" not in rendered and SIP_PASSWORD not in rendered


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(500, text="x" * 10_000), id="text"),
        pytest.param(httpx.Response(500, json={"message": "y" * 10_000}), id="json-message"),
        pytest.param(
            httpx.Response(
                422, json={"detail": [{"loc": ["body", f"f{i}"], "msg": "z" * 50} for i in range(200)]}
            ),
            id="detail-list",
        ),
    ],
)
def test_oversized_error_body_is_truncated(
    once: BolnaHook, api: respx.MockRouter, run: Runner, response: httpx.Response
) -> None:
    api.get(TRUNK_PATH).mock(return_value=response)
    with pytest.raises(BolnaError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert len(info.value.message) <= ERROR_TEXT_LIMIT + 1
    assert info.value.message.endswith("…")


@pytest.mark.parametrize(
    ("length", "cut"),
    [(ERROR_TEXT_LIMIT - 1, False), (ERROR_TEXT_LIMIT, False), (ERROR_TEXT_LIMIT + 1, True)],
    ids=["under", "at", "one-over"],
)
def test_error_text_limit_boundary(
    once: BolnaHook, api: respx.MockRouter, run: Runner, length: int, cut: bool
) -> None:
    """300 characters are kept as they are; one more and the text is cut to 300 + "…"."""
    text = "m" * (length - 1) + "Z"
    api.get(TRUNK_PATH).respond(500, json={"message": text})
    with pytest.raises(BolnaError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert info.value.message == (text[:ERROR_TEXT_LIMIT] + "…" if cut else text)


@pytest.mark.parametrize(
    ("response", "text"),
    [
        pytest.param(httpx.Response(400, json=["a", "list"]), "Bad Request", id="json-array"),
        pytest.param(
            httpx.Response(400, json={"message": {"nested": "object"}}),
            "Bad Request",
            id="message-not-a-string",
        ),
        pytest.param(httpx.Response(400, text="   "), "Bad Request", id="whitespace"),
        pytest.param(
            httpx.Response(400, json={"message": "", "detail": ""}), "Bad Request", id="empty-strings"
        ),
    ],
)
def test_unusable_error_body_falls_back_to_the_reason(
    once: BolnaHook, api: respx.MockRouter, run: Runner, response: httpx.Response, text: str
) -> None:
    api.get(TRUNK_PATH).mock(return_value=response)
    with pytest.raises(BolnaValidationError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert info.value.message == text


@pytest.mark.parametrize("header", ["x-request-id", "request-id"])
def test_request_id_is_carried(once: BolnaHook, api: respx.MockRouter, run: Runner, header: str) -> None:
    api.get(TRUNK_PATH).respond(404, json={"message": "trunk not found"}, headers={header: "req-abc-123"})
    with pytest.raises(BolnaNotFoundError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert info.value.request_id == "req-abc-123"
    assert "req-abc-123" in str(info.value)


def _http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        pytest.param("7", 7, 7, id="seconds"),
        pytest.param("0.25", 0.25, 0.25, id="fractional-seconds"),
        pytest.param(lambda: _http_date(30), 28, 31, id="http-date"),
        pytest.param(lambda: _http_date(-30), 0, 0, id="http-date-past"),
        pytest.param("-3", 0, 0, id="negative"),
    ],
)
def test_retry_after_parsed(
    once: BolnaHook, api: respx.MockRouter, run: Runner, retry_after: Any, low: float, high: float
) -> None:
    value = retry_after() if callable(retry_after) else retry_after
    api.get(TRUNK_PATH).respond(429, json={"message": "slow down"}, headers={"Retry-After": value})
    with pytest.raises(BolnaRateLimitError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert info.value.retry_after is not None
    assert low <= info.value.retry_after <= high


@pytest.mark.parametrize("header", [None, "soon", ""], ids=["absent", "garbage", "empty"])
def test_retry_after_absent_or_unparseable(
    once: BolnaHook, api: respx.MockRouter, run: Runner, header: str | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    api.get(TRUNK_PATH).respond(429, json={"message": "slow down"}, headers=headers)
    with pytest.raises(BolnaRateLimitError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert info.value.retry_after is None


TRANSPORT_CASES = [
    pytest.param("GET", httpx.ConnectError("refused"), False, id="get-connect"),
    pytest.param("GET", httpx.ReadTimeout("timed out"), False, id="get-read-timeout"),
    pytest.param("POST", httpx.ConnectError("refused"), False, id="post-connect-nothing-sent"),
    pytest.param("POST", httpx.ConnectTimeout("timed out"), False, id="post-connect-timeout"),
    pytest.param("POST", httpx.PoolTimeout("pool"), False, id="post-pool-timeout"),
    pytest.param("POST", httpx.ReadTimeout("timed out"), True, id="post-read-timeout"),
    pytest.param("POST", httpx.WriteTimeout("timed out"), True, id="post-write-timeout"),
    pytest.param("POST", httpx.RemoteProtocolError("peer closed"), True, id="post-dropped"),
    pytest.param("POST", httpx.ReadError("reset"), True, id="post-read-error"),
]


@pytest.mark.parametrize(("method", "exc", "ambiguous"), TRANSPORT_CASES)
def test_transport_errors(
    once: BolnaHook, api: respx.MockRouter, run: Runner, method: str, exc: Exception, ambiguous: bool
) -> None:
    """A failure after the request may have reached the server makes a POST ambiguous."""
    path = f"{TRUNK_PATH}/numbers"
    api.route(method=method, path=path).mock(side_effect=exc)
    with pytest.raises(BolnaTransportError) as info:
        if method == "GET":
            run(once, "list_numbers", TRUNK_ID)
        else:
            run(once, "add_number", TRUNK_ID, "+919876543210")
    err = info.value
    assert err.ambiguous is ambiguous
    assert err.status_code is None and (err.method, err.path) == (method, path)
    assert type(exc).__name__ in str(err)


@pytest.mark.parametrize(
    ("status", "ambiguous"), [(500, True), (503, True), (429, False), (400, False)], ids=str
)
def test_post_status_ambiguity(
    once: BolnaHook, api: respx.MockRouter, run: Runner, status: int, ambiguous: bool
) -> None:
    api.post(f"{TRUNK_PATH}/numbers").respond(status, json={"message": "m"})
    with pytest.raises(BolnaError) as info:
        run(once, "add_number", TRUNK_ID, "+919876543210")
    assert info.value.ambiguous is ambiguous


def test_5xx_on_get_is_not_ambiguous(once: BolnaHook, api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNK_PATH).respond(503)
    with pytest.raises(BolnaServerError) as info:
        run(once, "get_trunk", TRUNK_ID)
    assert info.value.ambiguous is False


def test_error_rendering_without_a_call() -> None:
    assert str(BolnaError("plain")) == "Bolna API call: plain"
