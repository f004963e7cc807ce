"""Write attempts and histories: what a test needs to assert the CLIENT's behaviour (how many
creates per name it sent, whatever became of them; how many trunks of a name ever existed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_bolna.sandbox.records import Records
from airflow_provider_bolna.sandbox.store import Store

from .conftest import SEED_USERPASS, TRUNKS, BodyFactory

pytestmark = pytest.mark.integration


def attempt_outcome(api: httpx.Client, method: str, path: str, **kwargs: Any) -> str:
    try:
        return str(api.request(method, path, **kwargs).status_code)
    except httpx.TransportError:
        return "lost"


def test_every_create_post_is_counted_by_name(
    api: httpx.Client, sandbox: Any, trunk_body: BodyFactory
) -> None:
    body = trunk_body(name="Acme")
    assert api.post(TRUNKS, json=body).status_code == 201
    assert api.post(TRUNKS, json=body).status_code == 409  # refused: name taken
    assert api.post(TRUNKS, json={**body, "gateways": []}).status_code == 400  # refused: invalid
    with httpx.Client(base_url=sandbox.url, trust_env=False) as anonymous:
        assert anonymous.post(TRUNKS, json=body).status_code == 403  # refused: no key
    sandbox.admin.config(fail_rate=1.0)
    assert api.post(TRUNKS, json=body).status_code in (500, 502, 503)  # injected, before the handler
    sandbox.admin.config(fail_rate=0.0, rate_limit_per_min=1)
    api.get(TRUNKS)  # takes the only token
    assert api.post(TRUNKS, json=body).status_code == 429
    sandbox.admin.config(rate_limit_per_min=0, drop_after_commit_rate=1.0, unique_names=False)
    assert attempt_outcome(api, "POST", TRUNKS, json=body) in ("502", "lost")  # committed, answer lost
    api.post(TRUNKS, content=b"{not json")  # no name to record

    assert sandbox.create_attempts_by_name() == {"Acme": 7, None: 1}
    assert sandbox.trunks_by_name() == {"Acme": 2}
    records = [(a["status"], a["committed"], a["fault"]) for a in sandbox.write_attempts("create_trunk")]
    assert records[:6] == [
        ("201", True, None),
        ("409", False, None),
        ("400", False, None),
        ("403", False, None),
        (records[4][0], False, "fail_before"),
        ("429", False, "rate_limited"),
    ]
    assert records[6][1] is True and records[6][2] in ("drop_after_commit_502", "drop_after_commit_conn")
    assert (
        records[6][0] == {"drop_after_commit_502": "502", "drop_after_commit_conn": "dropped"}[records[6][2]]
    )
    created = [a["trunk_id"] for a in sandbox.write_attempts("create_trunk") if a["committed"]]
    assert sorted(created) == sorted(t["id"] for t in api.get(TRUNKS).json())
    audit = sandbox.admin.audit()
    assert audit["repeated_create_attempts"] == [{"name": "Acme", "attempts": 7, "trunks": 2}]
    assert audit["trunk_names_created_more_than_once"] == [{"name": "Acme", "count": 2, "deleted": 0}]
    assert audit["write_attempts"] == {"create_trunk": 8} and audit["unfinished_write_attempts"] == 0
    assert sandbox.admin.counters()["write_attempts"]["create_trunk"] == 8


def test_trunks_by_name_counts_deleted_and_renamed_trunks(
    api: httpx.Client, sandbox: Any, make_trunk: Any
) -> None:
    gone = make_trunk(name="a")
    api.delete(f"{TRUNKS}/{gone['id']}").raise_for_status()
    make_trunk(name="a")
    renamed = make_trunk(name="b")
    api.patch(f"{TRUNKS}/{renamed['id']}", json={"name": "c"}).raise_for_status()
    assert sandbox.trunks_by_name() == {"a": 2, "c": 1}
    assert sandbox.trunks_by_name(include_deleted=False) == {"a": 1, "c": 1}
    history = {t["id"]: t for t in sandbox.admin.trunk_history()}
    assert history[renamed["id"]]["created_name"] == "b" and history[gone["id"]]["deleted_at"]
    assert sandbox.admin.audit()["deleted_trunks"] == 1
    assert sandbox.delete_attempts_by_trunk() == {gone["id"]: 1}
    [delete] = sandbox.write_attempts("delete_trunk")
    assert delete["trunk_name"] == "a" and delete["committed"]
    [rename] = sandbox.write_attempts("update_trunk")
    assert (rename["trunk_id"], rename["trunk_name"]) == (renamed["id"], "c")


def test_number_attempts_and_history(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    trunk, other = make_trunk(), make_trunk(phone_numbers=[{"phone_number": "15550009999"}])
    url = f"{TRUNKS}/{trunk['id']}/numbers"
    first = api.post(url, json={"phone_number": "+14155550100"}).json()
    assert api.post(url, json={"phone_number": "14155550100"}).status_code == 409
    assert api.post(url, json={"phone_number": "15550009999"}).status_code == 409  # on the other trunk
    api.delete(f"{url}/{first['id']}").raise_for_status()
    assert api.delete(f"{url}/{first['id']}").status_code == 404
    api.post(url, json={"phone_number": "14155550100"}).raise_for_status()  # back again
    assert api.post(f"{TRUNKS}/nope/numbers", json={"phone_number": "1"}).status_code == 404

    assert sandbox.add_number_attempts_by_trunk() == {
        (trunk["id"], "14155550100"): 3,
        (trunk["id"], "15550009999"): 1,
        ("nope", "1"): 1,
    }
    assert sandbox.numbers_by_trunk() == {(trunk["id"], "14155550100"): 2, (other["id"], "15550009999"): 1}
    assert sandbox.numbers_by_trunk(include_deleted=False) == {
        (trunk["id"], "14155550100"): 1,
        (other["id"], "15550009999"): 1,
    }
    assert sandbox.remove_number_attempts_by_number() == {(trunk["id"], first["id"]): 2}
    added = [a for a in sandbox.write_attempts("add_number") if a["committed"]]
    assert [a["phone_number"] for a in added] == ["+14155550100", "14155550100"]
    assert added[0]["phone_number_id"] == first["id"]


def test_binding_attempts(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    agent = sandbox.admin.create_agent()
    number = make_trunk(phone_numbers=[{"phone_number": "+14155550100"}])["phone_numbers"][0]
    for _ in range(2):
        api.patch(f"/v2/agent/{agent['id']}", json={"agent_config": {"telephony_provider": "sip-trunk"}})
        api.post("/inbound/setup", json={"agent_id": agent["id"], "phone_number_id": number["id"]})
    api.post("/inbound/setup", json={"agent_id": agent["id"], "phone_number_id": "unknown"})
    api.post("/inbound/unlink", json={"phone_number_id": number["id"]})
    assert sandbox.agent_update_attempts_by_agent() == {agent["id"]: 2}
    assert sandbox.inbound_setup_attempts_by_number() == {number["id"]: 2, "unknown": 1}
    assert sandbox.inbound_unlink_attempts_by_number() == {number["id"]: 1}
    [unlink] = sandbox.write_attempts("inbound_unlink")
    assert (unlink["trunk_id"], unlink["digits"]) == (number["byot_trunk_id"], "14155550100")


def test_attempts_survive_a_crash_counters_do_not(bolna_sandbox_factory: Any, tmp_path: Path) -> None:
    server = bolna_sandbox_factory(tmp_path / "crash.db")
    with server.client() as client:
        client.post(TRUNKS, json=SEED_USERPASS).raise_for_status()
        assert client.post(TRUNKS, json=SEED_USERPASS).status_code == 409
    server.kill()
    server.restart()
    assert server.create_attempts_by_name() == {SEED_USERPASS["name"]: 2}
    assert server.trunks_by_name() == {SEED_USERPASS["name"]: 1}
    assert server.admin.counters()["write_attempts"]["create_trunk"] == 0


def test_reset_clears_records_attempts_reset_only_attempts(
    api: httpx.Client, sandbox: Any, make_trunk: Any
) -> None:
    make_trunk(name="kept")
    api.post(TRUNKS, json={})
    assert sandbox.admin.reset_attempts() == 2
    assert sandbox.write_attempts() == [] and sandbox.trunks_by_name() == {"kept": 1}
    make_trunk(name="next")
    assert sandbox.create_attempts_by_name() == {"next": 1}
    sandbox.admin.reset()
    assert sandbox.write_attempts() == [] and sandbox.trunks_by_name() == {}
    assert sandbox.admin.number_history() == []


def test_attempts_kind_filter_is_checked(sandbox: Any) -> None:
    response = httpx.get(f"{sandbox.url}/__sandbox__/attempts", params={"kind": "nope"}, trust_env=False)
    assert response.status_code == 400 and "kind" in response.json()["message"]


def test_reads_are_not_write_attempts(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    trunk = make_trunk()
    for path in (
        TRUNKS,
        f"{TRUNKS}/{trunk['id']}",
        f"{TRUNKS}/{trunk['id']}/numbers",
        "/user/me",
        "/phone-numbers/all",
    ):
        api.get(path).raise_for_status()
    api.post("/nowhere", json={})
    assert [a["kind"] for a in sandbox.write_attempts()] == ["create_trunk"]


def test_an_attempt_that_never_finished_is_reported(tmp_path: Path) -> None:
    """A server killed between receiving a write and answering it leaves the record open."""
    store = Store(str(tmp_path / "s.db"))
    try:
        records: Records = store.records
        seq = records.begin_attempt("create_trunk", "POST /sip-trunks/trunks", {"trunk_name": "a"})
        records.begin_attempt("add_number", "POST /sip-trunks/trunks/{trunk_id}/numbers", {"trunk_id": "t"})
        records.finish_attempt(seq, 201, committed=True, fault=None, learned={"trunk_id": "T1"})
        assert store.audit()["unfinished_write_attempts"] == 1
        [done, open_] = records.attempts()
        assert (done["status"], done["trunk_id"], open_["status"]) == ("201", "T1", None)
    finally:
        store.close()
