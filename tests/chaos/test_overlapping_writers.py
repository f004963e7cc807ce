"""Two bulk runs and five sign-up runs over overlapping customers, at once, under faults, on an
API that accepts duplicate trunk names and numbers.

Nothing on the API's side prevents a duplicate here: only the provider's own behaviour (one
writer per customer through the state DB's leases, pending marks, looking before re-sending)
can. Promise, checked on the sandbox's own tables after the storm and one quiet rerun:

* exactly one live trunk per active customer, none for churned or vanished ones;
* no customer lost (every valid row provisioned, its state row pointing at its trunk);
* deletes only inside the run's budget: exactly the planned churned and vanished customers'
  trunks, every other trunk untouched.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from airflow_provider_bolna.provisioning import (
    ProvisionOptions,
    deprovision_gone,
    plan_run,
    provision_batch,
    provision_customers,
)
from tests.chaos.chaoslib import Customers, bolna_conn, new_api_key
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

COUNT = 300
FAULTS = {"fail_rate": 0.10, "drop_after_commit_rate": 0.05, "seed": 13}
NO_UNIQUENESS = {"unique_names": False, "unique_numbers": False}


def bulk_run(customers: Customers, options: ProvisionOptions, errors: list[BaseException]) -> None:
    """What the bulk DAG does, in one thread: plan, every batch, the gone sweep."""
    try:
        plan = plan_run(customers.conn_id, customers.query, options=options, batch_size=50)
        for batch in plan.batches:
            provision_batch(customers.conn_id, customers.query, batch, options=options)
        if options.deprovision:
            deprovision_gone(customers.conn_id, customers.query, keys=plan.gone, options=options)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def signup_run(
    customers: Customers, ids: list[int], options: ProvisionOptions, errors: list[BaseException]
) -> None:
    try:
        provision_customers(customers.conn_id, customers.query, ids, options=options)
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def storm(customers: Customers, options: ProvisionOptions, signups: list[list[int]]) -> list[BaseException]:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=bulk_run, args=(customers, options, errors)) for _ in range(2)]
    threads += [
        threading.Thread(target=signup_run, args=(customers, ids, options, errors)) for ids in signups
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not any(t.is_alive() for t in threads), "a writer did not finish within 10 minutes"
    return errors


def live_trunks(server: Any) -> Counter[str]:
    with server.client() as http:
        return Counter(t["name"] for t in http.get("/sip-trunks/trunks").json())


@pytest.mark.timeout(1200)
def test_two_bulk_runs_and_five_signups_leave_one_trunk_per_customer(
    customers: Customers, start_sandbox: Any, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.name = f"overlapping writers: 2 bulk + 5 sign-up runs, {COUNT} customers, no unique names"
    key = new_api_key("overlap")
    server = start_sandbox(key, **FAULTS, **NO_UNIQUENESS)
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, key, requests_per_minute=0))
    customers.seed(COUNT, seed=13)
    scenario.customers = COUNT
    options = ProvisionOptions(concurrency=8, requests_per_minute=0, lock_wait_seconds=120)
    signups = [[3, 4, 5], [4, 5, 60], [60, 61, 149], [150, 151, 3], [299, 300, 1]]

    # 1. the storm: everyone at once, faults on
    errors = storm(customers, options, signups)
    scenario.note(
        f"storm 1 (creates): {len(errors)} run(s) ended in an error "
        f"({', '.join(sorted({type(e).__name__ for e in errors})) or 'none'}); the next runs converge"
    )
    # 2. churn 20, drop 10 from the source: a budget of 30 (10 % of 300) allows exactly those
    conn = customers.connect()
    with conn:
        conn.execute("UPDATE customers SET status = 'churned' WHERE customer_id BETWEEN 201 AND 220")
        conn.execute("DELETE FROM customers WHERE customer_id BETWEEN 221 AND 230")
    conn.close()
    deleting = ProvisionOptions(concurrency=8, requests_per_minute=0, lock_wait_seconds=120, deprovision=True)
    errors += storm(customers, deleting, [[10, 11], [11, 12], [201, 13], [14, 15], [16, 17]])
    # 3. one quiet run to converge what the faults left undone
    server.admin.config(fail_rate=0.0, drop_after_commit_rate=0.0)
    bulk_run(customers, deleting, errors)
    scenario.runs = 2 * 2 + 5 * 2 + 1

    counters = server.admin.counters()
    scenario.add_faults(counters["faults"])
    scenario.requests = counters["total_requests"]
    ever = server.trunks_by_name(include_deleted=True)  # every trunk ever created, per name
    live = server.trunks_by_name(include_deleted=False)
    duplicates = {name: n for name, n in ever.items() if n > 1}
    active = {f"cust-{i}" for i in range(1, COUNT + 1) if not 201 <= i <= 230}
    gone = {f"cust-{i}" for i in range(201, 231)}
    state = customers.state()
    lost = sorted(n for n in active if live.get(n, 0) != 1)
    not_recorded = sorted(
        n for n in active if state.get(n.removeprefix("cust-"), {}).get("status") != "provisioned"
    )
    deleted = {t["name"] for t in server.admin.trunk_history() if t["deleted_at"] is not None}
    scenario.duplicates = sum(n - 1 for n in duplicates.values())
    scenario.lost = len(lost) + len(not_recorded)
    attempts = server.create_attempts_by_name()
    scenario.note(
        f"create POSTs per name: max {max(attempts.values())}, names with more than one "
        f"{sum(1 for n in attempts.values() if n > 1)} (re-sent only after a look found nothing); "
        f"{len(deleted)} trunks deleted, all {len(gone)} planned"
    )
    assert not errors or all(not isinstance(e, AssertionError) for e in errors)
    assert not duplicates, f"a trunk name was created more than once: {duplicates}"
    assert not lost and not not_recorded, (lost[:10], not_recorded[:10])
    assert deleted == gone, (
        sorted(deleted - gone)[:10],
        sorted(gone - deleted)[:10],
    )  # inside the budget only
    assert set(live) == active
