"""Retries and back-off of single calls: what is retried, how long it waits, and when it stops."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_bolna.exceptions import (
    BolnaError,
    BolnaRateLimitError,
    BolnaServerError,
    BolnaTransportError,
)
from tests.unit.helpers import TRUNK_ID, TRUNKS_PATH, Runner, make_hook, spec, trunk_json

TRUNK_PATH = f"{TRUNKS_PATH}/{TRUNK_ID}"
OK_TRUNK = httpx.Response(200, json=trunk_json())
CREATED = httpx.Response(201, json=trunk_json())


def _responses(*items: Any) -> list[Any]:
    """respx side effects: responses are returned, exceptions raised, in order."""
    return list(items)


def test_retry_after_is_honoured(api: respx.MockRouter, run: Runner, sleeps: list[float]) -> None:
    hook = make_hook()
    route = api.get(TRUNK_PATH).mock(
        side_effect=_responses(httpx.Response(429, headers={"Retry-After": "0.2"}), OK_TRUNK)
    )
    started = time.monotonic()
    assert run(hook, "get_trunk", TRUNK_ID).id == TRUNK_ID
    assert time.monotonic() - started >= 0.2
    assert route.call_count == 2
    assert sleeps == [0.2]


def test_retry_after_is_capped_by_retry_max_delay(
    api: respx.MockRouter, run: Runner, sleeps: list[float]
) -> None:
    hook = make_hook(retry_max_delay=0.05)
    api.get(TRUNK_PATH).mock(
        side_effect=_responses(httpx.Response(429, headers={"Retry-After": "3600"}), OK_TRUNK)
    )
    run(hook, "get_trunk", TRUNK_ID)
    assert sleeps == [0.05]


def test_429_without_retry_after_backs_off_exponentially(
    api: respx.MockRouter, run: Runner, sleeps: list[float]
) -> None:
    hook = make_hook(retry_base_delay=0.01)
    route = api.get(TRUNK_PATH).mock(
        side_effect=_responses(httpx.Response(429), httpx.Response(429), httpx.Response(429), OK_TRUNK)
    )
    run(hook, "get_trunk", TRUNK_ID)
    assert route.call_count == 4
    assert len(sleeps) == 3
    # full jitter in the upper half of base * 2**n
    for n, slept in enumerate(sleeps):
        assert 0.01 * 2**n / 2 <= slept <= 0.01 * 2**n, sleeps


@pytest.mark.parametrize(
    ("method", "path", "name", "args", "ok"),
    [
        pytest.param("GET", TRUNK_PATH, "get_trunk", (TRUNK_ID,), OK_TRUNK, id="get"),
        pytest.param(
            "PATCH", TRUNK_PATH, "update_trunk", (TRUNK_ID, {"is_active": False}), OK_TRUNK, id="patch"
        ),
        pytest.param(
            "DELETE",
            TRUNK_PATH,
            "delete_trunk",
            (TRUNK_ID,),
            httpx.Response(200, json={"message": "ok"}),
            id="delete",
        ),
    ],
)
@pytest.mark.parametrize("status", [500, 503])
def test_5xx_retried_for_idempotent_calls(
    api: respx.MockRouter,
    run: Runner,
    method: str,
    path: str,
    name: str,
    args: tuple,
    ok: httpx.Response,
    status: int,
) -> None:
    route = api.route(method=method, path=path).mock(
        side_effect=_responses(httpx.Response(status), httpx.Response(status), ok)
    )
    run(make_hook(), name, *args)
    assert route.call_count == 3


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_retried_for_get(api: respx.MockRouter, run: Runner, exc: Exception) -> None:
    route = api.get(TRUNK_PATH).mock(side_effect=_responses(exc, OK_TRUNK))
    assert run(make_hook(), "get_trunk", TRUNK_ID).id == TRUNK_ID
    assert route.call_count == 2


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")], ids=lambda e: type(e).__name__
)
def test_connect_error_on_post_is_retried_directly(
    api: respx.MockRouter, run: Runner, exc: Exception
) -> None:
    """Nothing reached the server: resending the POST cannot duplicate anything."""
    route = api.post(TRUNKS_PATH).mock(side_effect=_responses(exc, CREATED))
    assert run(make_hook(), "create_trunk", spec()).id == TRUNK_ID
    assert route.call_count == 2


def test_429_on_post_is_retried(api: respx.MockRouter, run: Runner) -> None:
    route = api.post(TRUNKS_PATH).mock(side_effect=_responses(httpx.Response(429), CREATED))
    run(make_hook(), "create_trunk", spec())
    assert route.call_count == 2


@pytest.mark.parametrize(
    "outcome",
    [
        httpx.Response(500),
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.WriteTimeout("slow"),
    ],
    ids=["500", "503", "ReadTimeout", "RemoteProtocolError", "WriteTimeout"],
)
def test_post_never_blindly_resent(api: respx.MockRouter, run: Runner, outcome: Any) -> None:
    route = api.post(TRUNKS_PATH).mock(side_effect=_responses(outcome, CREATED))
    with pytest.raises(BolnaError) as info:
        run(make_hook(), "create_trunk", spec())
    assert info.value.ambiguous is True
    assert route.call_count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 422])
def test_4xx_other_than_429_never_retried(api: respx.MockRouter, run: Runner, status: int) -> None:
    route = api.get(TRUNK_PATH).mock(side_effect=_responses(httpx.Response(status), OK_TRUNK))
    with pytest.raises(BolnaError) as info:
        run(make_hook(), "get_trunk", TRUNK_ID)
    assert info.value.status_code == status
    assert route.call_count == 1


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_attempts_bounded_by_max_retries(api: respx.MockRouter, run: Runner, max_retries: int) -> None:
    route = api.get(TRUNK_PATH).respond(503)
    with pytest.raises(BolnaServerError):
        run(make_hook(max_retries=max_retries), "get_trunk", TRUNK_ID)
    assert route.call_count == max_retries + 1


def test_last_error_is_raised_after_exhaustion(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNK_PATH).mock(side_effect=_responses(httpx.Response(503), httpx.ConnectError("refused")))
    with pytest.raises(BolnaTransportError):
        run(make_hook(max_retries=1), "get_trunk", TRUNK_ID)


def test_retry_time_bounded_by_max_retry_seconds(api: respx.MockRouter, run: Runner) -> None:
    hook = make_hook(max_retries=1000, max_retry_seconds=0.3, retry_base_delay=0.02, retry_max_delay=0.05)
    route = api.get(TRUNK_PATH).respond(503)
    started = time.monotonic()
    with pytest.raises(BolnaServerError):
        run(hook, "get_trunk", TRUNK_ID)
    elapsed = time.monotonic() - started
    assert 3 <= route.call_count < 1000
    assert elapsed < 0.3 + 0.5  # the budget, plus scheduling slack on a busy machine


def test_retry_after_beyond_the_budget_gives_up_at_once(
    api: respx.MockRouter, run: Runner, sleeps: list[float]
) -> None:
    """Waiting past max_retry_seconds for one more attempt would break the bound."""
    hook = make_hook(max_retry_seconds=0.5)
    route = api.get(TRUNK_PATH).respond(429, headers={"Retry-After": "5"})
    started = time.monotonic()
    with pytest.raises(BolnaRateLimitError) as info:
        run(hook, "get_trunk", TRUNK_ID)
    assert time.monotonic() - started < 0.5
    assert info.value.retry_after == 5
    assert route.call_count == 1 and sleeps == []


def test_retries_are_logged(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get(TRUNK_PATH).mock(side_effect=_responses(httpx.Response(503, json={"message": "busy"}), OK_TRUNK))
    with caplog.at_level(logging.DEBUG):
        make_hook().get_trunk(TRUNK_ID)
    captured = capsys.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "failed on attempt 1" in logged and "busy" in logged


# ---------------------------------------------------------------------------- one budget per public call


def _slow(response: httpx.Response, seconds: float = 0.05) -> Any:
    """A respx side effect: answer ``response`` after ``seconds`` (a server taking its time)."""

    def answer(request: httpx.Request) -> httpx.Response:
        time.sleep(seconds)
        return response

    return answer


def test_max_retry_seconds_bounds_a_whole_ensure_trunk(api: respx.MockRouter, run: Runner) -> None:
    """Every POST fails ambiguously and every look says absent: the flow gives up when the
    budget is spent, not after max_retries rounds each with a budget of its own."""
    hook = make_hook(max_retries=50, max_retry_seconds=0.3)
    api.get(TRUNKS_PATH).mock(side_effect=_slow(httpx.Response(200, json=[])))
    posts = api.post(TRUNKS_PATH).mock(side_effect=_slow(httpx.Response(503)))
    started = time.monotonic()
    with pytest.raises(BolnaServerError):
        run(hook, "ensure_trunk", spec())
    elapsed = time.monotonic() - started
    assert posts.call_count <= 5, f"{posts.call_count} POSTs in a 0.3 s budget of 0.1 s rounds"
    assert elapsed < 0.3 + 0.6, elapsed  # the budget, then one last look (and scheduling slack)


def test_max_retry_seconds_bounds_a_whole_ensure_number(api: respx.MockRouter, run: Runner) -> None:
    hook = make_hook(max_retries=50, max_retry_seconds=0.3)
    api.get(f"{TRUNK_PATH}/numbers").mock(side_effect=_slow(httpx.Response(200, json=[])))
    posts = api.post(f"{TRUNK_PATH}/numbers").mock(side_effect=_slow(httpx.Response(503)))
    with pytest.raises(BolnaServerError):
        run(hook, "ensure_number", TRUNK_ID, "+14155550100")
    assert posts.call_count <= 5


def test_waiting_for_a_number_to_show_stays_within_the_budget(api: respx.MockRouter, run: Runner) -> None:
    """An unexplained 409 waits for the number to show, but not past max_retry_seconds."""
    hook = make_hook(max_retry_seconds=0.3, number_visibility_timeout=30.0)
    api.get(f"{TRUNK_PATH}/numbers").respond(200, json=[])
    api.post(f"{TRUNK_PATH}/numbers").respond(409, json={"message": "conflict"})
    started = time.monotonic()
    with pytest.raises(BolnaError, match="another active trunk"):
        run(hook, "ensure_number", TRUNK_ID, "+14155550100")
    assert time.monotonic() - started < 0.3 + 0.6
