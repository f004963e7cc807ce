"""The Airflow-side adapters (``operators/provisioning.py``) with a hand-made task context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
import pytest

from airflow_provider_bolna.operators.provisioning import (
    ProvisioningFailed,
    deprovision_gone_task,
    plan_batches_task,
    provision_batch_task,
    provision_signup_task,
    render_query,
    resolve_signup_customers,
    summarize_task,
)
from airflow_provider_bolna.provisioning.masking import mask_secrets
from tests.provisioning.conftest import CustomerDB, writes


class FakeTask:
    """Just enough of an operator to render a template."""

    def render_template(self, content: str, context: dict[str, Any]) -> str:
        return jinja2.Template(content).render(**context)


@dataclass
class Event:
    extra: dict[str, Any]


def ctx(**params: Any) -> dict[str, Any]:
    return {"params": params, "task": FakeTask(), "ds": "2026-11-26"}


def test_query_param_is_rendered_with_jinja() -> None:
    assert render_query(ctx(query="SELECT * FROM c WHERE day = '{{ ds }}'")) == "SELECT * FROM c WHERE day = '2026-11-26'"
    assert render_query(ctx()) == "SELECT * FROM customers"


def test_signup_customers_from_conf_or_asset_events() -> None:
    assert resolve_signup_customers({"params": {"customer_id": 42}}) == [42]
    events = {"bolna://customers/signup": [Event({"customer_id": 7}), Event({"customer_ids": [8, 7]}), Event({})]}
    assert resolve_signup_customers({"params": {"customer_id": None}, "triggering_asset_events": events}) == [7, 8]
    with pytest.raises(ValueError, match="customer_id"):
        resolve_signup_customers({"params": {}, "triggering_asset_events": {}})


def test_summary_fails_only_when_asked() -> None:
    batch = {"counts": {"created": 2, "failed": 1}, "failed_total": 1, "requests": {"POST": 2, "total": 2},
             "failed": [{"customer_id": 3, "trunk_name": "cust-3", "reason": "customer 3: numbers.0: bad"}],
             "batch": {"index": 0}}
    run = summarize_task([batch, None], {}, ctx())
    assert run["counts"]["created"] == 2 and run["failed_total"] == 1 and run["batches"] == 1
    with pytest.raises(ProvisioningFailed, match="customer 3: numbers.0: bad"):
        summarize_task([batch], None, ctx(fail_on_error=True))


@pytest.mark.integration
def test_task_callables_end_to_end(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(25, invalid=1, seed=61)
    context = ctx(batch_size=10, customers_conn_id=sqlite_db.conn_id)
    batches = plan_batches_task(context)
    assert [b["count"] for b in batches] == [10, 10, 5]
    assert sqlite_db.execute("SELECT COUNT(*) FROM {s}") == [(0,)]  # state table created up front
    results = [provision_batch_task(b, context) for b in batches]
    assert sum(r["counts"]["created"] for r in results) == 24
    assert deprovision_gone_task(context) == {}  # deprovision off
    run = summarize_task(results, {}, context)
    assert run["counts"]["created"] == 24 and run["failed_total"] == 1


@pytest.mark.integration
def test_signup_task_reports_missing_and_invalid_customers(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(6, invalid=1, seed=62)
    bad = sqlite_db.execute("SELECT customer_id FROM {t} ORDER BY customer_id")[3][0]  # the broken row is in the middle
    out = provision_signup_task([1], ctx())
    assert len(out) == 1 and out[0]["trunk_id"] and out[0]["expect_numbers"]
    with pytest.raises(ProvisioningFailed, match="customer 999: not returned by the query"):
        provision_signup_task([999], ctx())
    with pytest.raises(ProvisioningFailed, match=f"customer {bad}: "):
        provision_signup_task([bad], ctx())
    assert writes(bolna_api)["create_trunk"] == 1


def test_bulk_masking_is_fast_and_effective() -> None:
    import time

    from airflow.sdk._shared.secrets_masker import redact

    secrets = [f"Bulk-Mask-Secret-{i:05d}" for i in range(2000)]
    started = time.perf_counter()
    assert mask_secrets(secrets + ["", secrets[0]]) == 2000
    assert time.perf_counter() - started < 5  # one by one this is minutes
    assert redact("pw=Bulk-Mask-Secret-01999 ok") == "pw=*** ok"


def test_a_batch_releases_its_passwords_but_not_older_secrets() -> None:
    """A process running many batches must not carry every password it read (dags test, CLI)."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker, redact

    from airflow_provider_bolna.provisioning.masking import BatchSecrets

    mask_secrets(["Older-Secret-Kept-0001"])
    masker = _secrets_masker()
    before = set(masker.patterns)
    batch = BatchSecrets()
    assert batch.add([f"Batch-Secret-{i:05d}" for i in range(500)] + ["Older-Secret-Kept-0001"]) == 501
    assert redact("a Batch-Secret-00499 b") == "a *** b" and len(masker.patterns) == len(before) + 500
    batch.release()
    assert masker.patterns == before
    assert redact("a Batch-Secret-00499 b") == "a Batch-Secret-00499 b"
    assert redact("x Older-Secret-Kept-0001 y") == "x *** y"  # masked before the batch: stays masked
    batch.release()  # idempotent
    assert masker.patterns == before
