"""Data safety: every delete inside one budget, owned rows only, one writer per customer, loud
failures, renames and duplicate keys, bounded waits, key rotation and self-healing.

Each test replays a finding of the data-safety issue against the engine and the sandbox over
real HTTP, on SQLite (and PostgreSQL where the database matters).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

from airflow_provider_bolna.provisioning import (
    GoneLimitExceeded,
    ProvisionOptions,
    deprovision_gone,
    plan_run,
    provision_batch,
    provision_customers,
    summarize,
)
from airflow_provider_bolna.provisioning.leases import LeaseSet, new_holder
from airflow_provider_bolna.provisioning.plan import hmac_key_for
from airflow_provider_bolna.provisioning.settings import Deployment, RunOptions
from airflow_provider_bolna.provisioning.state import StateStore, StateWriter, StateWriterError
from tests.provisioning.conftest import CustomerDB, total_requests, writes

pytestmark = pytest.mark.integration

ZERO_WRITES = {"create_trunk": 0, "update_trunk": 0, "delete_trunk": 0, "add_number": 0, "remove_number": 0}


def run(db: CustomerDB, query: str | None = None, **opts: Any) -> dict[str, Any]:
    """One whole run in-process: plan (with the deletion budget), batches, gone sweep, summary."""
    options = ProvisionOptions(state_table=db.state_table, concurrency=8, requests_per_minute=0, **opts)
    query = query or db.query
    plan = plan_run(db.conn_id, query, options=options, batch_size=100)
    summaries = [provision_batch(db.conn_id, query, b, options=options) for b in plan.batches]
    if options.deprovision:
        summaries.append(deprovision_gone(db.conn_id, query, keys=plan.gone, options=options))
    return summarize(summaries, budget=plan.budget)


def delta(server: Any, before: dict[str, int]) -> dict[str, int]:
    after = writes(server)
    return {k: after[k] - before.get(k, 0) for k in after}


# ---------------------------------------------------------------------- 1. one deletion budget


def test_churned_customers_count_against_the_budget(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    """300 customers switched to churned used to delete 300 trunks under a limit of 100."""
    sqlite_db.seed(400, seed=81)
    run(sqlite_db)
    sqlite_db.execute("UPDATE {t} SET status = 'churned' WHERE customer_id <= 300")
    before = writes(bolna_api)
    withheld = run(sqlite_db, deprovision=True)
    budget = withheld["deletion_budget"]
    assert budget["withheld"] and budget["planned"] == 300 and budget["churned"] == 300
    assert budget["limit"] == 40  # 10 % of 400 recorded < max_deletes 100
    assert delta(bolna_api, before) == ZERO_WRITES and withheld["counts"]["deprovisioned"] == 0
    assert "Nothing was deleted" in budget["message"] and "confirm_deletes=300" in budget["message"]
    # the one-run confirmation must equal the planned count
    assert run(sqlite_db, deprovision=True, confirm_deletes=299)["deletion_budget"]["withheld"]
    confirmed = run(sqlite_db, deprovision=True, confirm_deletes=300)
    assert confirmed["counts"]["deprovisioned"] == 300 and delta(bolna_api, before)["delete_trunk"] == 300


@pytest.mark.parametrize(("gone", "withheld"), [(4, False), (5, True)])
def test_emptying_the_source_is_bounded_by_the_fraction(
    sqlite_db: CustomerDB, bolna_api: Any, gone: int, withheld: bool
) -> None:
    """41 recorded trunks: 10 % allows 4 deletes; the 5th withholds every delete of the run."""
    sqlite_db.seed(41, seed=82)
    run(sqlite_db)
    sqlite_db.execute(f"DELETE FROM {{t}} WHERE customer_id <= {gone}")
    before = writes(bolna_api)
    summary = run(sqlite_db, deprovision=True)
    budget = summary["deletion_budget"]
    assert (budget["planned"], budget["limit"], budget["withheld"]) == (gone, 4, withheld)
    assert delta(bolna_api, before)["delete_trunk"] == (0 if withheld else gone)


@pytest.mark.parametrize(("gone", "raises"), [(5, False), (6, True)])
def test_the_absolute_limit_at_and_one_over(
    sqlite_db: CustomerDB, bolna_api: Any, gone: int, raises: bool
) -> None:
    sqlite_db.seed(20, seed=83)
    run(sqlite_db)
    sqlite_db.execute(f"DELETE FROM {{t}} WHERE customer_id <= {gone}")
    options = ProvisionOptions(
        deprovision=True, max_deletes=5, max_delete_fraction=1.0, requests_per_minute=0
    )
    if raises:
        with pytest.raises(GoneLimitExceeded, match="plans to delete 6"):
            deprovision_gone(sqlite_db.conn_id, sqlite_db.query, options=options)
        assert writes(bolna_api)["delete_trunk"] == 0
    else:
        assert (
            deprovision_gone(sqlite_db.conn_id, sqlite_db.query, options=options).counts["deprovisioned"] == 5
        )


def test_a_dry_run_shows_the_budget_and_deletes_nothing(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(30, seed=84)
    run(sqlite_db)
    sqlite_db.execute("UPDATE {t} SET status = 'churned' WHERE customer_id <= 10")
    before = writes(bolna_api)
    summary = run(sqlite_db, deprovision=True, dry_run=True)
    assert summary["deletion_budget"]["planned"] == 10 and summary["deletion_budget"]["withheld"]
    assert delta(bolna_api, before) == ZERO_WRITES


# ---------------------------------------------------------------------- 2. ownership


def test_two_deployments_sharing_account_and_state_table_never_sweep_each_other(
    sqlite_db: CustomerDB, bolna_api: Any
) -> None:
    sqlite_db.seed(40, seed=85)
    low, high = f"{sqlite_db.query} WHERE customer_id <= 20", f"{sqlite_db.query} WHERE customer_id > 20"
    run(sqlite_db, query=low, scope="north", name_template="n-{customer_id}")
    run(sqlite_db, query=high, scope="south", name_template="s-{customer_id}")
    before = writes(bolna_api)
    # north's query no longer returns anything of south's: south's rows are not north's to sweep
    north = run(sqlite_db, query=low, scope="north", name_template="n-{customer_id}", deprovision=True)
    assert north["counts"]["deprovisioned"] == 0 and delta(bolna_api, before) == ZERO_WRITES
    scopes = dict(sqlite_db.execute("SELECT scope, COUNT(*) FROM {s} GROUP BY scope"))
    assert scopes == {"north": 20, "south": 20}


def test_adopting_a_trunk_another_scope_owns_fails_that_row(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(6, seed=86)
    run(sqlite_db, scope="north")
    before = writes(bolna_api)
    south = run(sqlite_db, scope="south", look_before_create=True)  # same names: north's trunks
    assert south["counts"]["failed"] == 6 and delta(bolna_api, before) == ZERO_WRITES
    assert all("belongs to deployment scope 'north'" in f["reason"] for f in south["failed"])
    assert all(f["fields"] == ["trunk_name"] for f in south["failed"])


# ---------------------------------------------------------------------- 3. one writer per customer


def test_leases_one_holder_expiry_and_dead_holder_takeover(sqlite_db: CustomerDB) -> None:
    store = StateStore(sqlite_db.conn_id, sqlite_db.state_table)
    store.ensure_table()
    first, second = LeaseSet(store, new_holder("a"), ttl=1.0), LeaseSet(store, new_holder("b"), ttl=1.0)
    try:
        assert first.acquire(["cust-1", "cust-2"]) == set()
        assert second.acquire(["cust-2", "cust-3"]) == {"cust-2"}  # busy
        first.release()
        assert second.acquire(["cust-2"]) == set()
        dead = LeaseSet(store, "run@" + __import__("socket").gethostname()[:40] + ":999999:dead", ttl=60.0)
        assert dead.acquire(["cust-9"]) == set()
        dead._stop.set()  # a crashed process: it never releases, and its pid does not exist
        assert first.acquire(["cust-9"]) == set()  # taken over at once, not after 60 s
    finally:
        first.release()
        second.release()


def test_a_waiting_batch_holds_none_of_the_names_it_waits_for(sqlite_db: CustomerDB) -> None:
    """Two batches that each took part of what the other wants would wait on each other, and
    the waiting one's leases (not yet renewed) would expire under it: both then created the same
    trunks (the chaos storm's 40 duplicates). A wait holds nothing; when the name it waits for
    is freed it takes them all at once."""
    store = StateStore(sqlite_db.conn_id, sqlite_db.state_table)
    store.ensure_table()
    waiter, holder, third = (LeaseSet(store, new_holder(n), ttl=30.0) for n in ("waiter", "holder", "third"))
    busy: list[set[str]] = []
    try:
        assert holder.acquire(["cust-2"]) == set()
        thread = threading.Thread(
            target=lambda: busy.append(waiter.acquire(["cust-1", "cust-2"], wait=10, poll=0.1))
        )
        thread.start()
        time.sleep(0.5)  # the waiter is waiting for cust-2
        assert third.acquire(["cust-1"]) == set(), "the waiter held cust-1 while it waited"
        third.release()
        holder.release()
        thread.join(15)
        assert busy == [set()] and waiter.held == {"cust-1", "cust-2"}
        assert holder.acquire(["cust-1"]) == {"cust-1"}  # and now it does hold them
    finally:
        for leases in (waiter, holder, third):
            leases.release()
        store.close()


def test_leases_are_renewed_by_their_keeper_thread(customer_db: CustomerDB) -> None:
    """A batch that runs longer than a renewal period keeps its leases (SQLite connections are
    bound to their thread: the keeper must use its own)."""
    store = StateStore(customer_db.conn_id, customer_db.state_table)
    store.ensure_table()
    leases = LeaseSet(store, new_holder("long"), ttl=0.6)
    rival = LeaseSet(store, new_holder("rival"), ttl=0.6)
    try:
        assert leases.acquire(["cust-1"]) == set()
        time.sleep(1.5)  # several renewals, well past the ttl
        leases.check()
        assert rival.acquire(["cust-1"]) == {"cust-1"}  # still held: renewed, not expired
    finally:
        leases.release()
        rival.release()
        store.close()


def test_overlapping_signups_for_one_customer_create_one_trunk(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    """Two sign-up runs for the same customer at once, on an API that accepts duplicate names."""
    sqlite_db.seed(3, seed=87)
    bolna_api.admin.config(unique_names=False, latency_ms=300)
    results: list[Any] = []

    def signup() -> None:
        results.append(
            provision_customers(
                sqlite_db.conn_id,
                sqlite_db.query,
                [2],
                options=ProvisionOptions(requests_per_minute=0, lock_wait_seconds=30),
            )
        )

    threads = [threading.Thread(target=signup) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    outcomes = sorted(o for r in results for o, n in r.counts.items() for _ in range(n))
    assert outcomes == ["created", "unchanged"]
    assert bolna_api.admin.counters()["writes"]["create_trunk"] == 1


# ---------------------------------------------------------------------- 4. loud failures


def test_a_failing_state_read_fails_the_batch_instead_of_replanning(
    sqlite_db: CustomerDB, bolna_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_db.seed(20, seed=88)
    run(sqlite_db)
    real = StateStore.table_exists

    def flaky(self: StateStore, table: str) -> bool:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(StateStore, "table_exists", flaky)
    before = total_requests(bolna_api)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        provision_batch(
            sqlite_db.conn_id,
            sqlite_db.query,
            {"first": None, "last": None},
            options=ProvisionOptions(requests_per_minute=0),
        )
    monkeypatch.setattr(StateStore, "table_exists", real)
    assert total_requests(bolna_api) == before  # nothing re-planned, nothing sent


# ---------------------------------------------------------------------- 5. renames and duplicate keys


def test_a_trunk_renamed_on_bolna_is_found_by_id_and_its_name_restored(
    sqlite_db: CustomerDB, bolna_api: Any
) -> None:
    sqlite_db.seed(5, seed=89)
    run(sqlite_db)
    trunk_id = sqlite_db.state()["2"][2]
    with bolna_api.client() as http:
        http.patch(f"/sip-trunks/trunks/{trunk_id}", json={"name": "renamed-by-hand"}).raise_for_status()
    before = writes(bolna_api)
    healed = run(sqlite_db, drift_check=True)
    assert healed["counts"]["updated"] == 1 and delta(bolna_api, before) == {**ZERO_WRITES, "update_trunk": 1}
    with bolna_api.client() as http:
        assert http.get(f"/sip-trunks/trunks/{trunk_id}").json()["name"] == "cust-2"
    # and a deprovision deletes that trunk, by id, whatever its name
    sqlite_db.execute("UPDATE {t} SET status = 'churned' WHERE customer_id = 2")
    with bolna_api.client() as http:
        http.patch(f"/sip-trunks/trunks/{trunk_id}", json={"name": "renamed-again"}).raise_for_status()
    assert run(sqlite_db, deprovision=True)["counts"]["deprovisioned"] == 1
    assert bolna_api.admin.audit()["trunks"] == 4


def test_duplicate_customer_keys_fail_both_rows_and_apply_nothing(
    customer_db: CustomerDB, bolna_api: Any
) -> None:
    customer_db.seed(12, seed=90)
    query = (
        f"SELECT * FROM {customer_db.table} UNION ALL "
        f"SELECT * FROM {customer_db.table} WHERE customer_id IN (3, 10)"
    )
    plan = plan_run(
        customer_db.conn_id,
        query,
        options=ProvisionOptions(state_table=customer_db.state_table),
        batch_size=5,
        key_page_size=3,
    )  # page boundaries fall inside the repeated keys
    assert sum(b["count"] for b in plan.batches) == 14
    assert sorted(k for b in plan.batches for k in b["duplicates"]) == ["10", "3"]
    summary = run(customer_db, query=query)
    assert summary["counts"]["created"] == 10 and summary["counts"]["failed"] == 4
    assert all("appears 2 times" in f["reason"] or "more than once" in f["reason"] for f in summary["failed"])
    with bolna_api.client() as http:
        names = {t["name"] for t in http.get("/sip-trunks/trunks").json()}
    assert "cust-3" not in names and "cust-10" not in names


# ---------------------------------------------------------------------- 6. bounded waits


def test_a_sqlite_statement_past_its_timeout_is_interrupted(sqlite_db: CustomerDB) -> None:
    store = StateStore(sqlite_db.conn_id, sqlite_db.state_table, statement_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        store.query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
            "SELECT COUNT(*) FROM n"
        )
    assert time.monotonic() - started < 5
    store.close()


@pytest.mark.postgres
def test_a_postgres_statement_past_its_timeout_is_cancelled(pg_db: CustomerDB) -> None:
    store = StateStore(pg_db.conn_id, pg_db.state_table, statement_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Exception, match="statement timeout|canceling statement"):
        store.query("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 4
    store.close()


def test_a_state_writer_that_cannot_finish_fails_within_its_bound(
    sqlite_db: CustomerDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(sqlite_db.conn_id, sqlite_db.state_table)
    store.ensure_table()
    monkeypatch.setattr(StateStore, "upsert", lambda self, records, conn=None: time.sleep(30))
    from airflow_provider_bolna.provisioning.state import StateRecord

    writer = StateWriter(store, join_timeout=0.5)
    writer.put(StateRecord("1", "cust-1", "provisioned", "created"))
    started = time.monotonic()
    with pytest.raises(StateWriterError, match="did not finish within"):
        writer.close()
    assert time.monotonic() - started < 3


# ---------------------------------------------------------------------- 7. bounded cost


def test_ambiguous_creates_share_one_recovery_listing(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    """30 % of creates lose their response: each used to list the whole account on its own."""
    sqlite_db.seed(60, seed=91)
    bolna_api.admin.config(drop_after_commit_rate=0.3, seed=91)
    summary = run(sqlite_db)
    lost = bolna_api.admin.counters()["faults"]
    ambiguous = lost.get("drop_after_commit_502", 0) + lost.get("drop_after_commit_conn", 0)
    assert ambiguous >= 5
    listings = summary["requests"].get("GET", 0)
    assert listings <= ambiguous / 4 + 2, (listings, ambiguous)  # about failures / concurrency (8)
    assert summary["counts"]["created"] == 60 and bolna_api.admin.audit()["trunks"] == 60


# ---------------------------------------------------------------------- 8. key rotation


def test_rotating_the_api_key_sends_nothing(
    sqlite_db: CustomerDB, bolna_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_db.seed(15, seed=92)
    run(sqlite_db)
    new_key = "rotated-" + "k" * 30
    bolna_api.admin.config(api_key=new_key)
    conn = bolna_api.airflow_conn_json(requests_per_minute=0).replace(bolna_api.api_key, new_key)
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", conn)
    before = total_requests(bolna_api)
    assert run(sqlite_db)["counts"]["unchanged"] == 15
    assert total_requests(bolna_api) == before


def test_rows_hashed_by_an_earlier_version_are_rekeyed_without_a_request(
    sqlite_db: CustomerDB, bolna_api: Any
) -> None:
    """Earlier versions keyed the hashes with sha256(API key): an upgrade must send nothing."""
    from airflow_provider_bolna.provisioning.mapping import RowMapper
    from airflow_provider_bolna.provisioning.plan import secret_hash

    sqlite_db.seed(10, seed=93)
    run(sqlite_db)
    legacy = hmac_key_for(bolna_api.api_key)
    mapper = RowMapper()
    columns = [c[1] for c in sqlite_db.execute("PRAGMA table_info({t})")]
    for values in sqlite_db.execute("SELECT * FROM {t}"):
        customer = mapper.map_row(dict(zip(columns, values)))
        sqlite_db.execute(
            "UPDATE {s} SET spec_hash = ?, secret_hash = ? WHERE customer_id = ?",
            (customer.spec.fingerprint(legacy), secret_hash(customer.spec, legacy), customer.key),
        )
    before = total_requests(bolna_api)
    summary = run(sqlite_db)
    assert summary["counts"]["unchanged"] == 10 and total_requests(bolna_api) == before
    salted = run(sqlite_db)  # re-keyed: now plain "hash unchanged"
    assert salted["counts"]["unchanged"] == 10


# ---------------------------------------------------------------------- 9. self-healing


def test_a_trunk_deleted_in_the_dashboard_comes_back_within_the_verify_interval(
    sqlite_db: CustomerDB, bolna_api: Any
) -> None:
    sqlite_db.seed(8, seed=94)
    run(sqlite_db)
    trunk_id = sqlite_db.state()["5"][2]
    with bolna_api.client() as http:
        http.delete(f"/sip-trunks/trunks/{trunk_id}").raise_for_status()
    before = total_requests(bolna_api)
    assert (
        run(sqlite_db)["counts"]["unchanged"] == 8 and total_requests(bolna_api) == before
    )  # verified today
    sqlite_db.execute("UPDATE {s} SET verified_at = '2020-01-01 00:00:00'")  # a day (and more) later
    never = Deployment(scope="default", verify_interval=None).options(RunOptions()).verify_interval
    assert (
        never is None and run(sqlite_db, verify_interval=never)["requests"]["total"] == 0
    )  # "never" lists nothing
    healed = run(sqlite_db)
    assert healed["counts"]["created"] == 1 and healed["counts"]["unchanged"] == 7
    assert healed["requests"]["GET"] == 1  # one list call per batch, not one per customer
    assert run(sqlite_db)["requests"]["total"] == 0


# ---------------------------------------------------------------------- state table migration


def test_a_first_layout_state_table_is_migrated_in_place(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(5, seed=95)
    sqlite_db.execute(
        "CREATE TABLE {s} (customer_id VARCHAR(255) NOT NULL PRIMARY KEY, trunk_name VARCHAR(255) NOT NULL, "
        "trunk_id VARCHAR(255), spec_hash VARCHAR(64), secret_hash VARCHAR(64), status VARCHAR(32) NOT NULL, "
        "action VARCHAR(32), last_error TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL, "
        "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
    )
    sqlite_db.execute("INSERT INTO {s} (customer_id, trunk_name, status) VALUES ('99', 'cust-99', 'failed')")
    run(sqlite_db, scope="legacy")
    rows = dict(sqlite_db.execute("SELECT customer_id, scope FROM {s}"))
    assert rows["99"] == "legacy" and len(rows) == 6
