"""Response fuzzing: the hook fed malformed, truncated, non-JSON, wrong-typed, deeply nested and
oversized bodies, odd statuses and headers (respx; nothing leaves the process).

Every call either returns or raises a :class:`~airflow_provider_bolna.exceptions.BolnaError`
subclass — never a raw ``KeyError`` / ``ValidationError`` / ``JSONDecodeError`` /
``RecursionError`` / ``TypeError`` — and the exception as it would be logged (message, repr,
the whole formatted traceback chain) never contains the API key, nor the SIP password the call
sent, even when the body echoes them (whole, in keys, cut at a truncation boundary). Calls also
finish in bounded time whatever ``Retry-After`` says.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from airflow_provider_bolna.exceptions import BolnaError, BolnaRateLimitError, BolnaResponseError
from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings
from tests.chaos.chaoslib import SecretScanner, new_api_key, sip_password
from tests.chaos.fuzzing import CHAOS, examples
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos]

BASE = "https://api.chaos.test"
KEY = new_api_key("responses")
PASSWORD = sip_password("responses")
TRUNK_ID = "01HCHAOSTRUNK0000000000001"

SPEC = {
    "name": "cust-fuzz",
    "provider": "twilio",
    "auth_type": "userpass",
    "auth_username": "u",
    "auth_password": PASSWORD,
    "gateways": [{"gateway_address": "sip.example.com"}],
    "phone_numbers": ["+14155550100"],
}
TRUNK = {
    "id": TRUNK_ID,
    "name": "cust-fuzz",
    "provider": "twilio",
    "auth_type": "userpass",
    "auth_username": "u",
    "gateways": [{"id": "G1", "gateway_address": "sip.example.com", "port": 5060, "priority": 1}],
    "ip_identifiers": [],
    "phone_numbers": [{"id": "N1", "phone_number": "+14155550100", "deleted": False}],
    "allow": "ulaw,alaw",
    "disallow": "all",
    "transport": "transport-udp",
    "is_active": True,
    "created_at": "2026-01-01T00:00:00.000Z",
}
NUMBER = {"id": "N1", "phone_number": "+14155550100", "deleted": False}
AGENT_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
#: the published InboundAgentResponse (the other documented answer is a bare {"message"})
INBOUND = {
    "url": f"https://api.bolna.ai/inbound_call?agent_id={AGENT_ID}&user_id=u1",
    "phone_number": "+14155550100",
    "id": "N1",
}

#: (name, sends the password (documentation), sync call, async call or None)
CALLS: list[tuple[str, bool, Callable[[BolnaHook], Any], Callable[[BolnaHook], Any] | None]] = [
    ("list_trunks", False, lambda h: h.list_trunks(), lambda h: h.alist_trunks()),
    ("list_trunks(names)", False, lambda h: h.list_trunks(names=["cust-fuzz"]), None),
    ("get_trunk", False, lambda h: h.get_trunk(TRUNK_ID), lambda h: h.aget_trunk(TRUNK_ID)),
    ("create_trunk", True, lambda h: h.create_trunk(SPEC), lambda h: h.acreate_trunk(SPEC)),
    (
        "update_trunk",
        True,
        lambda h: h.update_trunk(TRUNK_ID, {"auth_password": PASSWORD}),
        lambda h: h.aupdate_trunk(TRUNK_ID, {"auth_password": PASSWORD}),
    ),
    (
        "delete_trunk",
        False,
        lambda h: h.delete_trunk(TRUNK_ID, deactivate_first=True),
        lambda h: h.adelete_trunk(TRUNK_ID),
    ),
    ("add_number", False, lambda h: h.add_number(TRUNK_ID, "+14155550100"), None),
    ("list_numbers", False, lambda h: h.list_numbers(TRUNK_ID), lambda h: h.alist_numbers(TRUNK_ID)),
    ("remove_number", False, lambda h: h.remove_number(TRUNK_ID, "N1"), None),
    (
        "ensure_trunk",
        True,
        lambda h: h.ensure_trunk(SPEC, if_exists="update"),
        lambda h: h.aensure_trunk(SPEC, if_exists="update"),
    ),
    (
        "ensure_number",
        False,
        lambda h: h.ensure_number(TRUNK_ID, "+14155550199"),
        lambda h: h.aensure_number(TRUNK_ID, "+14155550199"),
    ),
    (
        "check_trunk_ready",
        False,
        lambda h: h.check_trunk_ready(trunk_id=TRUNK_ID, expect_numbers=["+14155550100"]),
        lambda h: h.acheck_trunk_ready(trunk_name="cust-fuzz"),
    ),
    # agent binding
    ("get_user", False, lambda h: h.get_user(), lambda h: h.aget_user()),
    (
        "update_agent_telephony",
        False,
        lambda h: h.update_agent_telephony(AGENT_ID),
        lambda h: h.aupdate_agent_telephony(AGENT_ID),
    ),
    (
        "setup_inbound",
        False,
        lambda h: h.setup_inbound(AGENT_ID, "N1"),
        lambda h: h.asetup_inbound(AGENT_ID, "N1"),
    ),
    ("unlink_inbound", False, lambda h: h.unlink_inbound("N1"), lambda h: h.aunlink_inbound("N1", AGENT_ID)),
    ("list_account_numbers", False, lambda h: h.list_account_numbers(), lambda h: h.alist_account_numbers()),
    (
        "ensure_inbound_agent",
        False,
        lambda h: h.ensure_inbound_agent(TRUNK_ID, "+14155550100", AGENT_ID),
        lambda h: h.aensure_inbound_agent(TRUNK_ID, "+14155550100", AGENT_ID, phone_number_id="N1"),
    ),
    (
        "unlink_inbound_agent",
        False,
        lambda h: h.unlink_inbound_agent(TRUNK_ID, "+14155550100"),
        lambda h: h.aunlink_inbound_agent(TRUNK_ID, "+14155550100"),
    ),
    (
        "ensure_outbound_provider",
        False,
        lambda h: h.ensure_outbound_provider(AGENT_ID),
        lambda h: h.aensure_outbound_provider(AGENT_ID),
    ),
    (
        "check_trunk_ready(agents)",
        False,
        lambda h: h.check_trunk_ready(trunk_id=TRUNK_ID, expect_agents={"+14155550100": AGENT_ID}),
        lambda h: h.acheck_trunk_ready(trunk_id=TRUNK_ID, expect_agents={"+14155550100": AGENT_ID}),
    ),
]

# ---------------------------------------------------------------------- strategies

SECRETS = st.sampled_from(
    [
        KEY,
        PASSWORD,
        f"Bearer {KEY}",
        f"invalid key {KEY} for this account",
        f"password={PASSWORD}",
        "x" * 190 + KEY,
        "y" * 195 + PASSWORD,
        KEY + "z" * 300,
        json.dumps({"k": KEY}),
        KEY.upper(),
    ]
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    SECRETS,
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "id",
            "name",
            "message",
            "detail",
            "error",
            "loc",
            "msg",
            "phone_numbers",
            "gateways",
            "created_at",
            "is_active",
            "deleted",
            "phone_number",
            "input",
        ]
    ),
    st.text(max_size=12),
    SECRETS,
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """A documented object with fields dropped, re-typed or added (secrets included)."""
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["drop", "retype", "add", "nest"]))
        field = draw(st.sampled_from(sorted(data) or ["id"]))
        if action == "drop":
            data.pop(field, None)
        elif action == "retype":
            data[field] = draw(JSON)
        elif action == "add":
            data[draw(KEYS)] = draw(JSON)
        elif isinstance(data.get(field), list) and data[field]:
            data[field][0] = draw(JSON)
    return draw(st.sampled_from([data, [data], [data, TRUNK], {"items": [data]}, [NUMBER, data]]))


@st.composite
def error_bodies(draw: st.DrawFn) -> Any:
    """FastAPI- and Bolna-shaped error bodies with odd types and echoed secrets."""
    loc = draw(st.one_of(st.lists(st.one_of(st.text(max_size=8), st.integers(), SECRETS), max_size=4), JSON))
    item = draw(
        st.one_of(
            st.fixed_dictionaries({"loc": st.just(loc), "msg": LEAVES, "input": SECRETS}),
            st.dictionaries(KEYS, JSON, max_size=3),
            JSON,
        )
    )
    return draw(
        st.sampled_from(
            [
                {"detail": [item]},
                {"detail": item},
                {"error": draw(LEAVES), "message": draw(LEAVES)},
                {"message": draw(JSON)},
                {"detail": draw(JSON)},
                {"error": draw(JSON)},
                [item],
                item,
            ]
        )
    )


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


_HUGE_LIST = json.dumps(
    [{**TRUNK, "id": f"T{i:08d}", "name": f"other-{i}", "description": "d" * 400} for i in range(5000)]
).encode()  # ~3.5 MB of well-formed trunks

BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    mutated(TRUNK).map(lambda v: json.dumps(v).encode()),
    mutated(NUMBER).map(lambda v: json.dumps(v).encode()),
    mutated({**NUMBER, "agent_id": AGENT_ID}).map(lambda v: json.dumps(v).encode()),
    mutated(INBOUND).map(lambda v: json.dumps(v).encode()),
    error_bodies().map(lambda v: json.dumps(v).encode()),
    st.tuples(st.one_of(mutated(TRUNK), error_bodies()), st.floats(0, 1)).map(
        lambda t: (s := json.dumps(t[0]).encode())[: int(len(s) * t[1])]
    ),  # truncated JSON
    st.binary(max_size=300),  # not JSON, maybe not UTF-8
    SECRETS.map(lambda s: f"<html><body>500 Internal Server Error: {s}</body></html>".encode()),
    st.sampled_from(
        [
            b"",
            b"null",
            b"NaN",
            b"[NaN, Infinity]",
            b"\xff\xfe\x00",
            b'{"id": "\\ud800"}',
            _nested(50_000),
            _nested(999),
            b'{"a":' * 20_000,
            _HUGE_LIST,
            _HUGE_LIST[: len(_HUGE_LIST) // 2],
            b'"' + KEY.encode() * 20_000 + b'"',
        ]
    ),
)
STATUSES = st.sampled_from(
    [200, 200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504, 302, 418]
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.one_of(
            st.sampled_from(
                [
                    "application/json",
                    "text/html",
                    "application/octet-stream",
                    "",
                    "application/json; charset=latin-1",
                ]
            ),
            SECRETS,
        ),
        "retry-after": st.sampled_from(
            [
                "1",
                "0",
                "-5",
                "inf",
                "nan",
                "1e999",
                "86400",
                "garbage",
                "",
                "Wed, 21 Oct 2015 07:28:00 GMT",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "99999999999",
            ]
        ),
        "x-request-id": st.one_of(
            st.text(max_size=20).filter(lambda s: s.isprintable() and s.isascii()), SECRETS
        ),
    },
)

# ---------------------------------------------------------------------- the checks


def make_hook() -> BolnaHook:
    settings = BolnaSettings(
        api_key=SecretStr(KEY),
        base_url=BASE,
        timeout=2.0,
        max_retries=1,
        retry_base_delay=0.001,
        retry_max_delay=0.01,
        max_retry_seconds=2.0,
        requests_per_minute=60_000,
        agent_requests_per_minute=60_000,
        number_visibility_timeout=0.02,
    )
    return BolnaHook(settings=settings)


def rendered_result(outcome: Any) -> str:
    """A returned value as a user sees it: its repr (a log line) and, where it has one, its
    XCom form (what the operators push), item by item for a list."""
    items = outcome if isinstance(outcome, list) else [outcome]
    parts = [repr(outcome)]
    for item in items:
        if hasattr(item, "to_xcom"):
            parts.append(json.dumps(item.to_xcom(), default=str))
    return "\n".join(parts)


def check_outcome(name: str, outcome: Any, elapsed: float, scan: SecretScanner) -> None:
    """Bounded time; only a ``BolnaError`` may come out; neither what is raised nor what is
    returned holds the API key or the password the call sent."""
    assert elapsed < 20, f"{name} took {elapsed:.1f}s"
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, BolnaError), (
            f"{name} raised a raw {type(outcome).__name__}: {str(outcome)[:300]}"
        )
        rendered, place = (
            "".join(traceback.format_exception(outcome)) + repr(outcome) + outcome.message,
            "exception",
        )
    else:
        rendered, place = rendered_result(outcome), "result"
    assert KEY[:12] not in rendered and KEY[-12:] not in rendered, (
        f"{name}: the API key leaked in the {place}: {rendered[:600]}"
    )
    assert PASSWORD[:12] not in rendered and PASSWORD[-12:] not in rendered, (
        f"{name}: the password leaked in the {place}"
    )
    scan.text(f"{name} {place}", rendered)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every async example (one async client, no TLS setup per example)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


#: the password and any piece of it (>= 8 characters) a truncation may have left
_PIECES = sorted(
    {PASSWORD[:n] for n in range(8, len(PASSWORD) + 1)}
    | {PASSWORD[-n:] for n in range(8, len(PASSWORD) + 1)},
    key=len,
    reverse=True,
)
_NOT_SENT_TEXT = re.compile("|".join(re.escape(p) for p in _PIECES))
_NOT_SENT = re.compile(b"|".join(re.escape(p.encode()) for p in _PIECES))


def _mocked(status: int, body: bytes, headers: dict[str, str]) -> respx.MockRouter:
    """Every request gets the fuzzed answer; a server can echo the SIP password only in the answer
    to a request that carried it (the API key is on every request, so it may be echoed anywhere)."""
    secret = PASSWORD.encode()

    def answer(request: httpx.Request) -> httpx.Response:
        if secret in request.content:
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(
            status,
            content=_NOT_SENT.sub(b"<not sent>", body),
            headers={k: _NOT_SENT_TEXT.sub("<not sent>", v) for k, v in headers.items()},
        )

    router = respx.mock(base_url=BASE, assert_all_called=False, assert_all_mocked=True)
    router.route().mock(side_effect=answer)
    return router


def test_fuzz_hook_responses_sync(scenario: Scenario, scanner: SecretScanner) -> None:
    scenario.name = "fuzz: hook responses (sync)"
    scanner.add("api key", KEY)
    hook = make_hook()
    count = 0

    @settings(parent=CHAOS, max_examples=examples(800))
    @given(call=st.sampled_from(CALLS), status=STATUSES, body=BODIES, headers=HEADERS)
    def run(call: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
        nonlocal count
        count += 1
        name, _, sync, _ = call
        started = time.monotonic()
        with _mocked(status, body, headers):
            try:
                outcome: Any = sync(hook)
            except Exception as exc:  # noqa: BLE001 - the property: only BolnaError may come out
                outcome = exc
        check_outcome(name, outcome, time.monotonic() - started, scanner)

    try:
        run()
    finally:
        hook.close()
        scenario.count("fuzz_cases", count)
    assert not scanner.hits, scanner.summary()


def test_fuzz_hook_responses_async(
    scenario: Scenario, scanner: SecretScanner, loop: asyncio.AbstractEventLoop
) -> None:
    scenario.name = "fuzz: hook responses (async)"
    scanner.add("api key", KEY)
    hook = make_hook()
    calls = [c for c in CALLS if c[3] is not None]
    count = 0

    @settings(parent=CHAOS, max_examples=examples(300))
    @given(call=st.sampled_from(calls), status=STATUSES, body=BODIES, headers=HEADERS)
    def run(call: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
        nonlocal count
        count += 1
        name, _, _, acall = call
        started = time.monotonic()
        with _mocked(status, body, headers):
            try:
                outcome: Any = loop.run_until_complete(asyncio.wait_for(acall(hook), 30))
            except TimeoutError:
                pytest.fail(f"async {name} hung (status {status}, headers {headers})")
            except Exception as exc:  # noqa: BLE001
                outcome = exc
        check_outcome(f"async {name}", outcome, time.monotonic() - started, scanner)

    try:
        run()
    finally:
        loop.run_until_complete(hook.aclose())
        scenario.count("fuzz_cases", count)
    assert not scanner.hits, scanner.summary()


# ---------------------------------------------------------------------- regressions (bugs this suite found)


def test_regressions_found_by_response_fuzzing(scenario: Scenario, loop: asyncio.AbstractEventLoop) -> None:
    """The fixes in ``hooks/bolna.py`` for what the fuzzing above found, pinned one by one."""
    scenario.name = "fuzz: response regressions"
    hook = make_hook()
    cases = [
        # a FastAPI detail whose loc is not a list: raw TypeError from the error-text reader
        (400, json.dumps({"detail": [{"loc": 5, "msg": "bad"}]}).encode(), {}, BolnaError),
        # pathologically nested bodies: raw RecursionError from json (success and error paths)
        (200, _nested(100_000), {}, BolnaResponseError),
        (400, _nested(100_000), {}, BolnaError),
        # a secret in a *key* of a detail item, cut at the 200-character boundary: a fragment leaked
        (400, json.dumps({"detail": [[{"y" * 185 + KEY: 1}]]}).encode(), {}, BolnaError),
        # Retry-After that is not finite: OverflowError in time.sleep (sync)
        (429, b"{}", {"retry-after": "1e999"}, BolnaRateLimitError),
        # a proxy echoing the key in the request id / content type: both went into the message as is
        (502, b"", {"x-request-id": KEY}, BolnaError),
        (200, b"not json", {"content-type": f"text/plain; key={KEY}"}, BolnaResponseError),
        # a body cut in the middle of an echoed key (truncated response): the head of the key leaked
        (401, json.dumps({"message": f"invalid key {KEY}"}).encode()[:-20], {}, BolnaError),
    ]
    for status, body, headers, expected in cases:
        with _mocked(status, body, headers), pytest.raises(expected) as caught:
            hook.list_trunks()
        rendered = "".join(traceback.format_exception(caught.value))
        assert KEY[:12] not in rendered and KEY[-12:] not in rendered
        scenario.count("fixed_cases")

    # Retry-After of a day: the hook's shared bucket waited a day (async: forever) — now capped
    # at retry_max_delay like the back-off itself
    with respx.mock(base_url=BASE) as router:
        router.get("/sip-trunks/trunks").mock(
            side_effect=[
                httpx.Response(429, json={}, headers={"retry-after": "86400"}),
                httpx.Response(200, json=[]),
                httpx.Response(200, json=[]),
            ]
        )
        started = time.monotonic()
        assert loop.run_until_complete(asyncio.wait_for(hook.alist_trunks(), 10)) == []
        assert loop.run_until_complete(asyncio.wait_for(hook.alist_trunks(), 10)) == []
        assert time.monotonic() - started < 5
    scenario.count("fixed_cases")
    loop.run_until_complete(hook.aclose())
    hook.close()


@pytest.mark.parametrize("field", ["name", "description", "allow"])
def test_success_body_echoing_the_key_is_not_returned(field: str) -> None:
    """What ``check_outcome`` scans in results, on a case the fuzz reaches only by chance: a
    listing whose trunk echoes the key, whole in one field and cut in another."""
    hook = make_hook()
    body = [{**TRUNK, field: f"echo {KEY}", "auth_username": KEY[:20]}]
    with _mocked(200, json.dumps(body).encode(), {}):
        outcome = hook.list_trunks()
    hook.close()
    assert len(outcome) == 1 and getattr(outcome[0], field) == "echo ***"
    rendered = rendered_result(outcome)
    assert KEY[:12] not in rendered and KEY[-12:] not in rendered, (
        f"the API key is in the result: {rendered[:300]}"
    )


def test_created_trunk_echoing_the_password_is_not_returned() -> None:
    """A create answered with the SIP password in a field (escaped as JSON may escape it): the
    returned trunk holds ``***`` there, while a clean answer is returned as sent."""
    hook = make_hook()
    spelled = "".join(f"\\u{ord(c):04x}" for c in PASSWORD)  # valid JSON for the same string
    escaped = json.dumps({**TRUNK, "allow": PASSWORD}).replace(PASSWORD, spelled)
    with _mocked(201, escaped.encode(), {}):
        echoed = hook.create_trunk(SPEC)
    with _mocked(201, json.dumps(TRUNK).encode(), {}):
        clean = hook.create_trunk(SPEC)
    hook.close()
    assert echoed.allow == "***" and PASSWORD[:12] not in rendered_result(echoed)
    assert clean.allow == "ulaw,alaw" and clean.name == "cust-fuzz"
