"""The state table on SQLite and PostgreSQL: schema, upsert rules, reads, the writer thread."""

from __future__ import annotations

import pytest

from airflow_provider_bolna.provisioning.state import StateRecord, StateStore, StateWriter
from tests.provisioning.conftest import CustomerDB


@pytest.fixture
def store(customer_db: CustomerDB) -> StateStore:
    s = StateStore(customer_db.conn_id, customer_db.state_table)
    s.ensure_table()
    yield s
    s.close()


def test_ensure_table_is_idempotent_and_creates_the_columns(
    store: StateStore, customer_db: CustomerDB
) -> None:
    store.ensure_table()
    assert store.exists()
    rows = customer_db.execute(
        "SELECT customer_id, trunk_name, trunk_id, spec_hash, secret_hash, status, action, "
        "last_error, created_at, updated_at FROM {s}"
    )
    assert rows == []


def test_bad_table_names_are_refused(customer_db: CustomerDB) -> None:
    for bad in ("x; DROP TABLE y", "a.b.c", "1abc", "name with space"):
        with pytest.raises(ValueError, match="identifier"):
            StateStore(customer_db.conn_id, bad)


def test_upsert_inserts_then_updates_and_keeps_what_a_failure_does_not_know(
    store: StateStore, customer_db: CustomerDB
) -> None:
    store.upsert(
        [
            StateRecord(
                "1", "cust-1", "provisioned", "created", trunk_id="T1", spec_hash="h1", secret_hash="s1"
            )
        ]
    )
    created_at = customer_db.execute("SELECT created_at FROM {s}")[0][0]
    store.upsert([StateRecord("1", "cust-1", "failed", "failed", last_error="customer 1: boom")])
    row = store.get("1")
    assert (row.status, row.trunk_id, row.spec_hash, row.secret_hash, row.last_error) == (
        "failed",
        "T1",
        "h1",
        "s1",
        "customer 1: boom",
    )
    store.upsert([StateRecord("1", "cust-1", "provisioned", "updated", trunk_id="T1", spec_hash="h2")])
    row = store.get("1")
    assert (row.status, row.action, row.spec_hash, row.last_error) == ("provisioned", "updated", "h2", None)
    assert customer_db.execute("SELECT created_at FROM {s}")[0][0] == created_at
    store.upsert([StateRecord("1", "cust-1", "deprovisioned", "deprovisioned", trunk_id="T1")])
    assert store.get("1").status == "deprovisioned"


def test_long_errors_are_truncated(store: StateStore) -> None:
    store.upsert([StateRecord("9", "cust-9", "failed", "failed", last_error="x" * 5000)])
    assert len(store.get("9").last_error) == 1000


@pytest.mark.parametrize(("length", "kept"), [(999, "whole"), (1000, "whole"), (1001, "cut")])
def test_error_length_limit_boundary(store: StateStore, length: int, kept: str) -> None:
    """1,000 characters fit the column as they are; one more and the text is cut to 999 + "…"."""
    error = "e" * (length - 1) + "Z"
    store.upsert([StateRecord("8", "cust-8", "failed", "failed", last_error=error)])
    stored = store.get("8").last_error
    assert stored == (error if kept == "whole" else error[:999] + "…")


def test_get_many_in_chunks_and_iter_live_in_pages(store: StateStore) -> None:
    records = [
        StateRecord(
            f"{i:05d}", f"cust-{i}", "provisioned" if i % 3 else "deprovisioned", "created", trunk_id=f"T{i}"
        )
        for i in range(1, 1201)
    ]
    store.upsert(records)
    found = store.get_many([r.customer_id for r in records] + ["nope"])
    assert len(found) == 1200 and "nope" not in found
    pages = list(store.iter_live(page_size=250))
    live = [r.customer_id for page in pages for r in page]
    assert len(live) == 800 and live == sorted(live) and max(len(p) for p in pages) == 250
    assert store.counts() == {"provisioned": 800, "deprovisioned": 400}


def test_writer_thread_flushes_everything_in_small_groups(store: StateStore) -> None:
    with StateWriter(store, group=7) as writer:
        for i in range(100):
            writer.put(StateRecord(str(i), f"cust-{i}", "provisioned", "created", trunk_id=f"T{i}"))
    assert writer.written == 100 and len(store.get_many(str(i) for i in range(100))) == 100


def test_writer_reports_a_failed_write(customer_db: CustomerDB) -> None:
    missing = StateStore(
        customer_db.conn_id, customer_db.state_table.replace("bolna_provisioning_state", "never_made")
    )
    writer = StateWriter(missing)
    writer.put(StateRecord("1", "cust-1", "provisioned", "created"))
    with pytest.raises(RuntimeError, match="state writer failed"):
        writer.close()


def test_concurrent_ensure_table_is_harmless(customer_db: CustomerDB) -> None:
    import threading

    errors: list[BaseException] = []

    def create() -> None:
        try:
            with StateStore(customer_db.conn_id, customer_db.state_table) as s:
                s.ensure_table()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
