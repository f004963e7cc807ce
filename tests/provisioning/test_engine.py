"""The engine end to end against the sandbox, on SQLite and on PostgreSQL customer databases.

The 1,000-customer life cycle: first run = exactly one create per valid customer (numbers
inline, no add_number) plus one list call per batch; rerun = no request at all; 10 changed
customers = exactly 10 PATCHes; 5 deleted + 3 churned with deprovision on = exactly those 8
trunks deleted; invalid rows fail with the field named and do not disturb the others.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from airflow_provider_bolna.provisioning import (
    GoneLimitExceeded,
    ProvisionOptions,
    deprovision_gone,
    format_summary,
    plan_batches,
    plan_run,
    provision_batch,
    provision_customers,
    summarize,
)
from tests.provisioning.conftest import CustomerDB, total_requests, writes

pytestmark = pytest.mark.integration

ZERO_WRITES = {"create_trunk": 0, "update_trunk": 0, "delete_trunk": 0, "add_number": 0, "remove_number": 0}


def run(db: CustomerDB, batch_size: int = 500, **opts: Any) -> dict[str, Any]:
    """What the DAG does, in-process: plan the run, provision each batch, sweep gone customers, summarize."""
    options = ProvisionOptions(state_table=db.state_table, concurrency=16, **opts)
    plan = plan_run(db.conn_id, db.query, options=options, batch_size=batch_size)
    summaries = [provision_batch(db.conn_id, db.query, b, options=options) for b in plan.batches]
    if options.deprovision:
        summaries.append(deprovision_gone(db.conn_id, db.query, keys=plan.gone, options=options))
    return summarize(summaries, budget=plan.budget)


def delta(server: Any, before: dict[str, int]) -> dict[str, int]:
    after = writes(server)
    return {k: after[k] - before.get(k, 0) for k in after}


@pytest.mark.parametrize("count", [pytest.param(1000, marks=pytest.mark.slow), 120], ids=["1000", "120"])
def test_life_cycle(customer_db: CustomerDB, bolna_api: Any, count: int) -> None:
    """1,000 customers (slow mark: ~30 s on 2 cores; 120 in the quick loop, same assertions)."""
    db, server = customer_db, bolna_api
    db.seed(count, invalid=6, seed=3)
    valid, batch_size = count - 6, count // 2
    step = max(1, (valid - 20) // 10)

    # 1. first run: one POST per valid customer, numbers inline, no list call (nobody was ever
    #    attempted: no state row, no pending mark)
    first = run(db, batch_size=batch_size)
    print(format_summary(first))
    assert first["counts"]["created"] == valid and first["counts"]["failed"] == 6
    assert writes(server) == {**ZERO_WRITES, "create_trunk": valid}
    assert first["requests"] == {"POST": valid, "total": valid}
    assert total_requests(server) == valid
    state = db.state()
    assert len(state) == count and not any(s[0] == "pending" for s in state.values())
    assert sum(1 for s in state.values() if s[0] == "provisioned" and s[2] and s[3]) == valid
    failed = {cid: s[4] for cid, s in state.items() if s[0] == "failed"}
    assert len(failed) == 6
    assert {e.split(": ")[1].split(".")[0] for e in failed.values()} == {
        "ip_identifiers",
        "gateways",
        "media_encryption",
        "auth_password",
        "numbers",
        "inbound_enabled",
    }
    assert all(e.startswith(f"customer {cid}: ") for cid, e in failed.items())
    audit = server.admin.audit()
    assert audit["trunks"] == valid and audit["duplicate_trunk_names"] == []
    assert audit["numbers_on_multiple_active_trunks"] == []

    # 2. rerun: nothing changed, nothing sent (the state table's hashes decide)
    requests_before = total_requests(server)
    second = run(db, batch_size=batch_size)
    assert second["counts"]["unchanged"] == valid and second["counts"]["failed"] == 6
    assert total_requests(server) == requests_before and second["requests"]["total"] == 0

    # 3. ten customers change a codec: exactly ten PATCHes (+ one list call per affected batch)
    changed = [
        r[0]
        for r in db.execute(
            "SELECT customer_id FROM {t} WHERE allow <> 'alaw' AND CAST(customer_id AS VARCHAR(255)) IN "
            "(SELECT customer_id FROM {s} WHERE status = 'provisioned') "
            "ORDER BY customer_id"
        )
    ][::step][:10]
    assert len(changed) == 10
    db.execute("UPDATE {t} SET allow = 'alaw' WHERE customer_id = ?", [(c,) for c in changed])
    before = writes(server)
    third = run(db, batch_size=batch_size)
    assert third["counts"]["updated"] == 10 and third["counts"]["unchanged"] == valid - 10
    assert delta(server, before) == {**ZERO_WRITES, "update_trunk": 10}
    assert third["requests"]["PATCH"] == 10 and third["requests"]["GET"] == 2  # both batches touched

    # 4. five customers deleted, three churned, deprovision on: exactly those eight trunks go
    gone = [
        r[0]
        for r in db.execute("SELECT customer_id FROM {s} WHERE status = 'provisioned' ORDER BY customer_id")
    ][5:13]
    deleted, churned = gone[:5], gone[5:]
    db.execute("DELETE FROM {t} WHERE customer_id = ?", [(int(c),) for c in deleted])
    db.execute("UPDATE {t} SET status = 'churned' WHERE customer_id = ?", [(int(c),) for c in churned])
    before = writes(server)
    fourth = run(db, batch_size=batch_size, deprovision=True)
    assert fourth["counts"]["deprovisioned"] == 8 and fourth["counts"]["failed"] == 6
    assert delta(server, before) == {
        **ZERO_WRITES,
        "delete_trunk": 8,
        "update_trunk": 8,
    }  # deactivate, then delete
    state = db.state()
    assert {c for c, s in state.items() if s[0] == "deprovisioned"} == set(gone)
    assert server.admin.audit()["trunks"] == valid - 8

    # 5. and a last rerun with deprovision on is a no-op
    requests_before = total_requests(server)
    fifth = run(db, batch_size=batch_size, deprovision=True)
    assert fifth["counts"]["deprovisioned"] == 0 and total_requests(server) == requests_before


def test_numbers_added_and_removed_with_minimal_writes(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(20, seed=5)
    run(sqlite_db)
    numbers = dict(sqlite_db.execute("SELECT customer_id, numbers FROM {t} WHERE customer_id IN (3, 4, 5)"))
    sqlite_db.execute(
        "UPDATE {t} SET numbers = ? WHERE customer_id = ?",
        [
            (numbers[3] + ", +19990000003", 3),  # one number more
            (numbers[4] + ", +19990000004, 19990000005", 4),  # two more
            (numbers[5].split(",")[0], 5),  # keep only the first
        ],
    )
    extra = len([n for n in numbers[5].split(",")[1:] if n.strip()])
    before = writes(server := bolna_api)
    summary = run(sqlite_db)
    assert summary["counts"]["updated"] == 3
    assert delta(server, before) == {**ZERO_WRITES, "add_number": 3, "remove_number": extra}


def test_password_rotation_is_patched_once(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(10, seed=1)
    run(sqlite_db)
    target = sqlite_db.execute(
        "SELECT customer_id FROM {t} WHERE auth_type = 'userpass' ORDER BY customer_id"
    )[0][0]
    sqlite_db.execute("UPDATE {t} SET auth_password = 'Rotated-Secret-77' WHERE customer_id = ?", (target,))
    before = writes(bolna_api)
    summary = run(sqlite_db)
    assert summary["counts"]["updated"] == 1
    assert delta(bolna_api, before) == {**ZERO_WRITES, "update_trunk": 1}
    assert "Rotated-Secret-77" not in repr(summary) and "Rotated-Secret-77" not in repr(sqlite_db.state())
    before = writes(bolna_api)
    run(sqlite_db)
    assert delta(bolna_api, before) == ZERO_WRITES


def test_drift_made_outside_is_found_by_drift_check(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(5, seed=2)
    run(sqlite_db)
    trunk_id = sqlite_db.state()["2"][2]
    with bolna_api.client() as http:
        http.patch(f"/sip-trunks/trunks/{trunk_id}", json={"qualify_frequency": 5}).raise_for_status()
    before = writes(bolna_api)
    assert run(sqlite_db)["counts"]["unchanged"] == 5  # hashes unchanged: not even a look
    summary = run(sqlite_db, drift_check=True)
    assert summary["counts"]["updated"] == 1 and summary["counts"]["unchanged"] == 4
    assert delta(bolna_api, before) == {**ZERO_WRITES, "update_trunk": 1}


def test_trunk_deleted_outside_is_recreated_and_orphan_adopted(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(4, seed=4)
    run(sqlite_db)
    state = sqlite_db.state()
    with bolna_api.client() as http:
        http.delete(f"/sip-trunks/trunks/{state['1'][2]}").raise_for_status()
    sqlite_db.execute("DELETE FROM {s} WHERE customer_id = '2'")  # a trunk we created but never recorded
    summary = run(sqlite_db, drift_check=True)
    assert summary["counts"]["created"] == 1 and summary["counts"]["adopted"] == 1
    assert summary["counts"]["unchanged"] == 2
    assert sqlite_db.state()["2"][0:2] == ("provisioned", "adopted")


def test_dry_run_writes_nothing_and_prints_the_plan(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(30, invalid=2, seed=7)
    options = ProvisionOptions(dry_run=True)
    summary = provision_batch(
        sqlite_db.conn_id, sqlite_db.query, {"first": None, "last": None}, options=options
    )
    assert summary.dry_run and summary.counts["create"] == 28 and summary.counts["invalid"] == 2
    assert writes(bolna_api) == ZERO_WRITES and summary.requests == {"GET": 1, "total": 1}
    assert "cust-1 " in summary.plan and "create" in summary.plan
    assert all(
        pw not in summary.plan
        for (pw,) in sqlite_db.execute("SELECT auth_password FROM {t} WHERE auth_password IS NOT NULL")
    )
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        sqlite_db.execute("SELECT COUNT(*) FROM {s}")  # not even the state table was created


def test_gone_sweep_refuses_to_wipe_the_account(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(12, seed=8)
    run(sqlite_db)
    sqlite_db.execute("DELETE FROM {t} WHERE customer_id > 1")
    with pytest.raises(GoneLimitExceeded, match="Nothing was deleted"):
        deprovision_gone(
            sqlite_db.conn_id,
            sqlite_db.query,
            options=ProvisionOptions(deprovision=True, max_deletes=5, max_delete_fraction=1.0),
        )
    assert writes(bolna_api)["delete_trunk"] == 0


@pytest.mark.parametrize("page_size", [500, 2], ids=["one-page", "pages-of-2"])
@pytest.mark.parametrize(
    ("gone", "refused"), [(4, False), (5, False), (6, True)], ids=["under", "at", "one-over"]
)
def test_gone_sweep_limit_boundary(
    sqlite_db: CustomerDB, bolna_api: Any, gone: int, refused: bool, page_size: int
) -> None:
    """``max_deletes=5``: 4 and exactly 5 gone customers are deprovisioned, 6 are refused
    with nothing deleted — whether the state table is read in one page or in pages of two."""
    sqlite_db.seed(10, seed=8)
    run(sqlite_db)
    sqlite_db.execute("DELETE FROM {t} WHERE customer_id <= ?", (gone,))
    before = writes(bolna_api)
    options = ProvisionOptions(
        deprovision=True,
        max_deletes=5,
        max_delete_fraction=1.0,
        page_size=page_size,
        state_table=sqlite_db.state_table,
    )
    if refused:
        with pytest.raises(GoneLimitExceeded, match="allows 5 "):
            deprovision_gone(sqlite_db.conn_id, sqlite_db.query, options=options)
        assert delta(bolna_api, before) == ZERO_WRITES
        assert bolna_api.admin.audit()["trunks"] == 10
        return
    summary = deprovision_gone(sqlite_db.conn_id, sqlite_db.query, options=options)
    assert summary.counts["deprovisioned"] == gone
    assert delta(bolna_api, before)["delete_trunk"] == gone
    assert bolna_api.admin.audit()["trunks"] == 10 - gone


def test_a_refused_key_stops_the_batch_after_one_request(
    sqlite_db: CustomerDB, bolna_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request would be refused the same way: the first customer goes alone, its 403
    stops the batch (raised, not swallowed as 40 failed rows), and nothing is recorded as done."""
    import json

    from airflow_provider_bolna.exceptions import BolnaAuthError

    sqlite_db.seed(40, seed=13)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_DEFAULT",
        json.dumps(
            {
                "conn_type": "bolna",
                "host": bolna_api.url,
                "password": "bk-revoked-0123456789abcdef",
                "extra": {"requests_per_minute": 0},
            }
        ),
    )
    with pytest.raises(BolnaAuthError):
        provision_batch(
            sqlite_db.conn_id,
            sqlite_db.query,
            {"first": None, "last": None},
            options=ProvisionOptions(concurrency=8, state_table=sqlite_db.state_table),
        )
    counters = bolna_api.admin.counters()
    assert counters["total_requests"] == 1, counters["requests"]
    assert counters["requests"] == {"POST /sip-trunks/trunks": {"403": 1}}
    assert not any(row[0] == "provisioned" for row in sqlite_db.state().values())


def test_one_customer_by_key_the_sign_up_path(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(3, seed=9)
    summary = provision_customers(sqlite_db.conn_id, sqlite_db.query, [2], include_customers=True)
    assert summary.counts["created"] == 1 and len(summary.customers) == 1
    (customer,) = summary.customers
    assert customer["customer_id"] == 2 and customer["trunk_name"] == "cust-2" and customer["trunk_id"]
    assert customer["numbers"] and writes(bolna_api) == {**ZERO_WRITES, "create_trunk": 1}
    assert sqlite_db.state()["2"][0] == "provisioned"


def test_a_batch_shares_one_rate_budget(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(20, seed=10)
    started = time.monotonic()
    summary = provision_batch(
        sqlite_db.conn_id,
        sqlite_db.query,
        {"first": 1, "last": 20},
        options=ProvisionOptions(concurrency=16, requests_per_minute=1200),
    )
    elapsed = time.monotonic() - started
    assert summary.counts["created"] == 20 and summary.requests["total"] == 20
    assert elapsed >= 19 / 20 * 0.9  # 20 requests at 20/s: about a second, whatever the concurrency


@pytest.mark.parametrize(
    ("connection_rpm", "deployment_rpm"),
    [(1200, None), (60_000, 1200)],
    ids=["connection-limit", "deployment-limit"],
)
def test_batches_at_once_share_the_connection_budget_through_the_state_db(
    customer_db: CustomerDB,
    sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    connection_rpm: int,
    deployment_rpm: int | None,
) -> None:
    """Two batches provisioned at once (two processes on a real deployment) together send at
    1,200/min — the connection's, or the deployment's own limit — not 1,200/min each; the budget
    row in the state DB counts them."""
    import asyncio

    from airflow_provider_bolna.provisioning import aprovision_batch
    from airflow_provider_bolna.provisioning.budget import BudgetTable, budget_table_beside

    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_DEFAULT", sandbox.airflow_conn_json(requests_per_minute=connection_rpm)
    )
    customer_db.seed(40, seed=11)
    options = ProvisionOptions(
        state_table=customer_db.state_table, concurrency=16, requests_per_minute=deployment_rpm
    )

    async def both() -> list[Any]:
        return await asyncio.gather(
            *(
                aprovision_batch(customer_db.conn_id, customer_db.query, batch, options=options)
                for batch in ({"first": 1, "last": 20}, {"first": 21, "last": 40})
            )
        )

    started = time.monotonic()
    summaries = asyncio.run(both())
    elapsed = time.monotonic() - started
    assert [s.counts["created"] for s in summaries] == [20, 20]
    assert elapsed >= 39 / 20 * 0.9  # 40 requests at 1,200/min: two seconds, not one
    table = BudgetTable(customer_db.conn_id, budget_table_beside(customer_db.state_table))
    row = table.read("bolna_default/sip-trunks")
    assert row is not None and row.granted >= 40 and row.throttled == 0


def test_ambiguous_failures_never_duplicate(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    """On an API that would accept a duplicate name: only the client's looking prevents one."""
    sqlite_db.seed(60, seed=11)
    bolna_api.admin.config(
        drop_after_commit_rate=0.3, fail_rate=0.1, seed=11, unique_names=False, unique_numbers=False
    )
    summary = run(sqlite_db)
    bolna_api.admin.config(drop_after_commit_rate=0.0, fail_rate=0.0)
    retry = run(sqlite_db)
    assert (
        summary["counts"]["created"]
        + summary["counts"]["adopted"]
        + retry["counts"]["created"]
        + retry["counts"]["adopted"]
        == 60
    )
    audit = bolna_api.admin.audit()
    assert audit["trunks"] == 60 and audit["duplicate_trunk_names"] == []
    # the client's own behaviour: one committed create per name, ever (a blind re-POST would
    # have committed a second trunk here)
    assert set(bolna_api.trunks_by_name(include_deleted=True).values()) == {1}
    assert {s[0] for s in sqlite_db.state().values()} == {"provisioned"}


@pytest.mark.parametrize("look_before_create", [False, True])
def test_an_account_that_already_holds_the_trunks_is_adopted(
    sqlite_db: CustomerDB, bolna_api: Any, look_before_create: bool
) -> None:
    """The state table is new but the account is not (trunks made before, or by hand).

    Optimistic creates: the first refusals of a taken name make the batch list the account
    once, and the creates not yet sent adopt without a POST. ``look_before_create``: one list
    call per batch up front, no POST at all.
    """
    sqlite_db.seed(60, seed=12)
    run(sqlite_db)  # made by an earlier tool: another state table below
    server = bolna_api
    server.admin.reset_counters()
    concurrency = 4
    summary = summarize(
        [
            provision_batch(
                sqlite_db.conn_id,
                sqlite_db.query,
                b,
                options=ProvisionOptions(
                    state_table="another_state",
                    concurrency=concurrency,
                    look_before_create=look_before_create,
                ),
            )
            for b in plan_batches(sqlite_db.conn_id, sqlite_db.query, batch_size=30)
        ]
    )
    assert summary["counts"]["adopted"] == 60 and summary["counts"]["created"] == 0
    counters = server.admin.counters()
    assert counters["writes"] == ZERO_WRITES and server.admin.audit()["trunks"] == 60
    refused = counters["duplicate_names_attempted"]
    if look_before_create:
        assert refused == 0 and summary["requests"] == {"GET": 2, "total": 2}
    else:
        # per batch: at most the creates already in flight are refused (each then looks its
        # name up), plus one shared listing for the rest of the batch
        assert 1 <= refused <= 2 * concurrency
        assert summary["requests"]["POST"] == refused
        assert summary["requests"]["GET"] <= refused + 2
        assert summary["requests"]["total"] < 60 / 2


@pytest.mark.parametrize(
    ("parallel_batches", "batches", "expected"),
    [(4, 2, 600.0), (4, 8, 300.0), (4, None, 300.0), (1, 3, 1200.0)],
)
async def test_fewer_batches_than_parallel_slots_share_the_budget_among_themselves(
    monkeypatch: pytest.MonkeyPatch, parallel_batches: int, batches: int | None, expected: float
) -> None:
    import json

    from airflow_provider_bolna.provisioning.engine import abatch_hook

    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_BUDGET",
        json.dumps(
            {
                "conn_type": "bolna",
                "host": "http://127.0.0.1:9",
                "password": "k" * 20,
                "extra": {"requests_per_minute": 1200},
            }
        ),
    )
    hook = await abatch_hook(
        "bolna_budget", ProvisionOptions(parallel_batches=parallel_batches), batches=batches
    )
    try:
        assert hook.limiter.rate * 60 == pytest.approx(expected)
    finally:
        await hook.aclose()


async def test_with_a_state_db_every_batch_hook_draws_from_the_connections_shared_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """No split by parallel_batches: the row ``<conn>/sip-trunks`` beside the state table, at the
    connection's whole rate."""
    import json

    from airflow_provider_bolna.provisioning.budget import RateBudget
    from airflow_provider_bolna.provisioning.engine import abatch_hook
    from tests.provisioning.budget_load import RawDb

    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_BUDGET",
        json.dumps(
            {
                "conn_type": "bolna",
                "host": "http://127.0.0.1:9",
                "password": "k" * 20,
                "extra": {"requests_per_minute": 1200},
            }
        ),
    )
    state = RawDb("sqlite", str(tmp_path / "state.db"))
    hook = await abatch_hook(
        "bolna_budget", ProvisionOptions(parallel_batches=4), batches=8, state_conn=state
    )
    try:
        assert isinstance(hook.limiter, RateBudget)
        assert (hook.limiter.key, hook.limiter.limit) == ("bolna_budget/sip-trunks", 1200.0)
        await hook.limiter.areserve()
    finally:
        await hook.aclose()
        await hook.limiter.aclose()
    with sqlite3.connect(state.target) as db:
        assert [
            key
            for key, granted in db.execute("SELECT bucket_key, granted FROM bolna_rate_budget")
            if granted >= 1
        ] == ["bolna_budget/sip-trunks"]
