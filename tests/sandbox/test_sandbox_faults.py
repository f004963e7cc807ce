"""Fault knobs really happen, are counted, and are reproducible under a seed."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .conftest import TRUNKS, BodyFactory

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def timed_get(api: httpx.Client, path: str = TRUNKS) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = api.get(path)
    return response, time.perf_counter() - started


def outcome(api: httpx.Client, method: str, path: str, **kwargs: Any) -> str:
    """The status code as text, or the transport error's class name."""
    try:
        return str(api.request(method, path, **kwargs).status_code)
    except httpx.TransportError as exc:
        return type(exc).__name__


# ----------------------------------------------------------------------------- latency
def test_latency_and_jitter(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(latency_ms=150)
    response, elapsed = timed_get(api)
    assert response.status_code == 200 and elapsed >= 0.15

    sandbox.admin.config(latency_ms=100, jitter_ms=80, seed=3)
    durations = [timed_get(api)[1] for _ in range(8)]
    assert min(durations) >= 0.02 and max(durations) - min(durations) > 0.02


def test_latency_applies_to_admin_free_paths_only(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(latency_ms=400)
    started = time.perf_counter()
    sandbox.admin.counters()
    assert time.perf_counter() - started < 0.4


def test_latency_spikes_exceed_client_timeout(sandbox: Any) -> None:
    sandbox.admin.config(latency_spike_rate=1.0, latency_spike_ms=500)
    with sandbox.client(timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.get(TRUNKS)
    assert sandbox.admin.counters()["faults"]["latency_spikes"] == 1


def spike_pattern(api: httpx.Client, sandbox: Any, count: int) -> list[bool]:
    sandbox.admin.reset()  # reseeds every fault stream
    pattern = []
    for _ in range(count):
        before = sandbox.admin.counters()["faults"]["latency_spikes"]
        api.get(TRUNKS)
        pattern.append(sandbox.admin.counters()["faults"]["latency_spikes"] > before)
    return pattern


def test_latency_spikes_are_seeded(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(latency_spike_rate=0.5, latency_spike_ms=1, seed=11)
    first = spike_pattern(api, sandbox, 20)
    assert 0 < sum(first) < 20
    assert spike_pattern(api, sandbox, 20) == first


# ----------------------------------------------------------------------------- rate limit
def test_rate_limit_without_retry_after(private_api: httpx.Client, private_sandbox: Any) -> None:
    api, sandbox = private_api, private_sandbox
    sandbox.admin.config(rate_limit_per_min=30)  # capacity 1, one token every 2 s
    assert api.get(TRUNKS).status_code == 200
    limited = api.get(TRUNKS)
    assert limited.status_code == 429
    assert limited.json() == {"error": 429, "message": "Rate limit exceeded"}
    assert "retry-after" not in limited.headers
    time.sleep(2.05)
    assert api.get(TRUNKS).status_code == 200
    counters = sandbox.admin.counters()
    # exactly one 429 on an idle machine; a starved server may throttle once more, but every
    # 429 is counted as a rate-limit fault and no request is lost
    throttled = counters["faults"]["rate_limited"]
    assert throttled >= 1
    assert counters["requests"]["GET /sip-trunks/trunks"] == {"200": 2, "429": throttled}


def test_rate_limit_with_retry_after(private_api: httpx.Client, private_sandbox: Any) -> None:
    api, sandbox = private_api, private_sandbox
    sandbox.admin.config(rate_limit_per_min=6, retry_after=True)  # a token every 10 s
    assert api.get(TRUNKS).status_code == 200
    limited = api.get(TRUNKS)
    assert limited.status_code == 429
    assert 8 <= int(limited.headers["retry-after"]) <= 10


def test_rate_limit_capacity_is_one_second(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(rate_limit_per_min=600)  # 10/s, capacity 10
    started = time.monotonic()
    statuses = []
    while 429 not in statuses and len(statuses) < 60:
        statuses.append(api.get(TRUNKS).status_code)
    elapsed = time.monotonic() - started
    assert statuses[:10] == [200] * 10 and statuses[-1] == 429
    assert statuses.count(200) <= 10 + elapsed * 10 + 1


def test_rate_limit_counts_only_authenticated(sandbox: Any) -> None:
    sandbox.admin.config(rate_limit_per_min=60)
    with httpx.Client(base_url=sandbox.url, trust_env=False) as anonymous:
        assert [anonymous.get(TRUNKS).status_code for _ in range(3)] == [403] * 3
    with sandbox.client() as client:
        assert client.get(TRUNKS).status_code == 200


# ----------------------------------------------------------------------------- fail before
def test_fail_rate_one_does_nothing(api: httpx.Client, sandbox: Any, trunk_body: BodyFactory) -> None:
    sandbox.admin.config(fail_rate=1.0)
    statuses = {api.post(TRUNKS, json=trunk_body()).status_code for _ in range(15)}
    assert statuses <= {500, 502, 503} and len(statuses) > 1
    response = api.get(TRUNKS)
    assert response.json()["error"] == response.status_code
    counters = sandbox.admin.counters()
    assert counters["trunks"] == 0 and counters["writes"]["create_trunk"] == 0
    assert counters["faults"]["fail_before"] == 16


def test_fail_rate_after_auth(sandbox: Any) -> None:
    sandbox.admin.config(fail_rate=1.0)
    assert httpx.get(f"{sandbox.url}{TRUNKS}", trust_env=False).status_code == 403


def fail_pattern(api: httpx.Client, sandbox: Any, seed: int) -> list[int]:
    sandbox.admin.reset()
    sandbox.admin.config(fail_rate=0.4, seed=seed)
    return [api.get(TRUNKS).status_code for _ in range(25)]


def test_fail_rate_is_seeded(api: httpx.Client, sandbox: Any) -> None:
    first = fail_pattern(api, sandbox, seed=42)
    assert 200 in first and set(first) - {200}
    assert fail_pattern(api, sandbox, seed=42) == first
    assert fail_pattern(api, sandbox, seed=43) != first


# ----------------------------------------------------------------------------- drop after commit
def test_drop_after_commit_commits(api: httpx.Client, sandbox: Any, trunk_body: BodyFactory) -> None:
    sandbox.admin.config(drop_after_commit_rate=1.0, seed=5)
    outcomes = [outcome(api, "POST", TRUNKS, json=trunk_body(name=f"t{i}")) for i in range(16)]
    assert set(outcomes) == {"502", "RemoteProtocolError"}
    sandbox.admin.config(drop_after_commit_rate=0.0)
    assert sorted(t["name"] for t in api.get(TRUNKS).json()) == sorted(f"t{i}" for i in range(16))
    counters = sandbox.admin.counters()
    faults = counters["faults"]
    assert faults["drop_after_commit_502"] == outcomes.count("502")
    assert faults["drop_after_commit_conn"] == outcomes.count("RemoteProtocolError")
    assert counters["writes"]["create_trunk"] == 16
    assert counters["requests"]["POST /sip-trunks/trunks"] == {
        "502": outcomes.count("502"),
        "dropped": outcomes.count("RemoteProtocolError"),
    }


def test_dropped_502_body(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    trunk = make_trunk()
    sandbox.admin.config(drop_after_commit_rate=1.0, seed=0)
    for _ in range(10):
        try:
            response = api.patch(f"{TRUNKS}/{trunk['id']}", json={"is_active": False})
        except httpx.TransportError:
            continue
        assert response.status_code == 502
        assert response.json() == {"error": 502, "message": "Bad gateway"}
        return
    pytest.fail("no 502 drop in 10 writes")


def test_drop_after_commit_spares_reads_and_failed_writes(api: httpx.Client, sandbox: Any) -> None:
    sandbox.admin.config(drop_after_commit_rate=1.0)
    assert api.get(TRUNKS).status_code == 200
    assert api.post(TRUNKS, json={}).status_code == 400
    assert api.delete(f"{TRUNKS}/nope").status_code == 404
    assert sandbox.admin.counters()["faults"]["drop_after_commit_502"] == 0


def test_every_write_kind_really_commits(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    trunk = make_trunk()
    agent = sandbox.admin.create_agent()
    numbers = f"{TRUNKS}/{trunk['id']}/numbers"
    sandbox.admin.config(drop_after_commit_rate=1.0)
    outcome(api, "PATCH", f"{TRUNKS}/{trunk['id']}", json={"description": "patched"})
    outcome(api, "POST", numbers, json={"phone_number": "15550001111"})
    outcome(
        api, "PATCH", f"/v2/agent/{agent['id']}", json={"agent_config": {"telephony_provider": "sip-trunk"}}
    )
    sandbox.admin.config(drop_after_commit_rate=0.0)
    assert api.get(f"{TRUNKS}/{trunk['id']}").json()["description"] == "patched"
    [number] = api.get(numbers).json()
    assert sandbox.admin.agents()[0]["telephony_provider"] == "sip-trunk"
    sandbox.admin.config(drop_after_commit_rate=1.0)
    outcome(api, "POST", "/inbound/setup", json={"agent_id": agent["id"], "phone_number_id": number["id"]})
    assert sandbox.inbound_mappings() == {number["id"]: agent["id"]}
    outcome(api, "POST", "/inbound/unlink", json={"phone_number_id": number["id"]})
    assert sandbox.inbound_mappings() == {}
    outcome(api, "DELETE", f"{numbers}/{number['id']}")
    outcome(api, "DELETE", f"{TRUNKS}/{trunk['id']}")
    sandbox.admin.config(drop_after_commit_rate=0.0)
    assert api.get(f"{TRUNKS}/{trunk['id']}").status_code == 404
    trunk_kinds = {
        "create_trunk": 1,
        "update_trunk": 1,
        "delete_trunk": 1,
        "add_number": 1,
        "remove_number": 1,
    }
    binding_kinds = {"update_agent": 1, "inbound_setup": 1, "inbound_unlink": 1}
    counters = sandbox.admin.counters()
    assert counters["writes"] == trunk_kinds and counters["binding_writes"] == binding_kinds
    assert counters["write_attempts"] == {**trunk_kinds, **binding_kinds}
    faults = counters["faults"]
    assert faults["drop_after_commit_502"] + faults["drop_after_commit_conn"] == 7
    dropped = [a for a in sandbox.write_attempts() if a["fault"]]
    assert len(dropped) == 7 and all(a["committed"] for a in dropped)
    assert {a["status"] for a in dropped} <= {"502", "dropped"}


def drop_pattern(api: httpx.Client, sandbox: Any, trunk_body: BodyFactory) -> list[str]:
    sandbox.admin.reset()
    sandbox.admin.config(drop_after_commit_rate=0.5, seed=9)
    return [outcome(api, "POST", TRUNKS, json=trunk_body(name=f"d{i}")) for i in range(20)]


def test_drop_after_commit_is_seeded(api: httpx.Client, sandbox: Any, trunk_body: BodyFactory) -> None:
    first = drop_pattern(api, sandbox, trunk_body)
    assert "201" in first and len(set(first)) > 1
    assert drop_pattern(api, sandbox, trunk_body) == first


# ----------------------------------------------------------------------------- admin API
def test_admin_config_roundtrip_and_validation(sandbox: Any) -> None:
    config = sandbox.admin.config()
    assert config["api_key"] == sandbox.api_key and config["fail_rate"] == 0
    assert sandbox.admin.config(latency_ms=5, retry_after=True)["latency_ms"] == 5
    for bad in (
        {"nope": 1},
        {"fail_rate": 1.5},
        {"latency_ms": -1},
        {"retry_after": 1},
        {"seed": 1.5},
        {"api_key": ""},
        {"rate_limit_per_min": "10"},
    ):
        response = httpx.patch(f"{sandbox.url}/__sandbox__/config", json=bad, trust_env=False)
        assert response.status_code == 400, bad
        assert next(iter(bad)) in response.json()["message"]
    assert sandbox.admin.config()["latency_ms"] == 5  # nothing applied by the failures


def test_api_key_can_change_at_run_time(sandbox: Any) -> None:
    sandbox.admin.config(api_key="rotated")
    url = f"{sandbox.url}{TRUNKS}"
    assert httpx.get(url, headers=sandbox.auth_headers, trust_env=False).status_code == 403
    assert httpx.get(url, headers={"Authorization": "Bearer rotated"}, trust_env=False).status_code == 200


def test_counters_reset_vs_reset(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    make_trunk()
    api.get("/nowhere")
    counters = sandbox.admin.counters()
    assert counters["total_requests"] == 2 and counters["requests"]["GET (unmatched)"] == {"404": 1}
    assert sandbox.admin.reset_counters()["total_requests"] == 0
    assert sandbox.admin.counters()["trunks"] == 1  # state kept
    after_reset = sandbox.admin.reset()
    assert after_reset["trunks"] == 0 and after_reset["total_requests"] == 0


def test_counters_shape(sandbox: Any) -> None:
    counters = sandbox.admin.counters()
    assert set(counters) == {
        "requests",
        "faults",
        "trunks",
        "numbers",
        "duplicate_names_attempted",
        "writes",
        "binding_writes",
        "write_attempts",
        "total_requests",
        "per_second",
    }
    assert set(counters["faults"]) == {
        "fail_before",
        "drop_after_commit_502",
        "drop_after_commit_conn",
        "rate_limited",
        "agent_rate_limited",
        "latency_spikes",
    }
    trunk_kinds = {"create_trunk", "update_trunk", "delete_trunk", "add_number", "remove_number"}
    binding_kinds = {"update_agent", "inbound_setup", "inbound_unlink"}
    assert set(counters["writes"]) == trunk_kinds and set(counters["binding_writes"]) == binding_kinds
    assert set(counters["write_attempts"]) == trunk_kinds | binding_kinds


def test_counters_per_second_timeline(api: httpx.Client, sandbox: Any) -> None:
    """Requests per epoch second, with the 429s among them: rates measured by the server."""
    sandbox.admin.config(rate_limit_per_min=60)  # a bucket of one: the second request is refused
    before = time.time()
    statuses = [api.get(TRUNKS).status_code for _ in range(3)]
    after = time.time()
    timeline = sandbox.admin.counters()["per_second"]
    assert all(int(before) <= int(second) <= int(after) for second in timeline)
    assert [sum(c[0] for c in timeline.values()), sum(c[1] for c in timeline.values())] == [
        3,
        statuses.count(429),
    ]
    assert statuses.count(429) == 2
    assert sandbox.admin.reset_counters()["per_second"] == {}


def test_audit_clean(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    make_trunk(phone_numbers=[{"phone_number": "15550001111"}])
    assert sandbox.admin.audit() == {
        "duplicate_trunk_names": [],
        "numbers_on_multiple_active_trunks": [],
        "active_numbers_without_trunk": 0,
        "trunks": 1,
        "numbers": 1,
        "deleted_trunks": 0,
        "trunk_names_created_more_than_once": [],
        "repeated_create_attempts": [],
        "write_attempts": {"create_trunk": 1},
        "unfinished_write_attempts": 0,
        "agents": 0,
        "inbound_mappings": 0,
        "mappings_to_unknown_agents": 0,
        "mappings_on_removed_numbers": 0,
    }


def test_admin_unknown_path(sandbox: Any) -> None:
    assert httpx.get(f"{sandbox.url}/__sandbox__/nope", trust_env=False).status_code == 404
