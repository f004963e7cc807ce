"""A refused API key: one clear authentication error, no retry storm, no key in any message.

The sandbox answers 403 to every request with the wrong key; we count what reached it.
"""

from __future__ import annotations

import builtins
import json
import traceback
from typing import Any

import pytest

from airflow_provider_bolna.exceptions import BolnaAuthError
from airflow_provider_bolna.provisioning.engine import (
    ProvisionOptions,
    plan_batches,
    plan_run,
    provision_batch,
)
from tests.chaos.chaoslib import Customers, SecretScanner, bolna_conn, new_api_key
from tests.chaos.ledger import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def _auth_errors(exc: BaseException) -> list[BolnaAuthError]:
    """The auth error(s) in ``exc``, looking inside exception groups."""
    if isinstance(exc, BolnaAuthError):
        return [exc]
    if isinstance(exc, getattr(builtins, "BaseExceptionGroup", ())):  # Python 3.11+
        return [e for sub in exc.exceptions for e in _auth_errors(sub)]
    return []


def _forbidden(server: Any) -> int:
    return sum(statuses.get("403", 0) for statuses in server.admin.counters()["requests"].values())


@pytest.fixture
def keys(start_sandbox: Any, scanner: SecretScanner) -> tuple[Any, str, str]:
    good, bad = new_api_key("good"), new_api_key("bad")
    scanner.add("good api key", good)
    scanner.add("bad api key", bad)
    return start_sandbox(good), good, bad


def test_bad_key_fresh_run_one_request_per_batch(
    keys: tuple[Any, str, str],
    customers: Customers,
    scanner: SecretScanner,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.name = "bad key: fresh run (2 batches)"
    server, _, bad = keys
    customers.seed(500, seed=2)
    scenario.customers = 500
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, bad))
    batches = plan_batches(customers.conn_id, customers.query, batch_size=250)
    assert len(batches) == 2
    for batch in batches:
        with pytest.raises(BolnaAuthError) as caught:
            provision_batch(
                customers.conn_id,
                customers.query,
                batch,
                options=ProvisionOptions(concurrency=16, requests_per_minute=0),
            )
        scanner.text("auth error", "".join(traceback.format_exception(caught.value)))
        assert "403" in str(caught.value) and "Invalid API key" in str(caught.value)
    scenario.faults["bad_key"] += 1
    scenario.requests = server.admin.counters()["total_requests"]
    scenario.runs = 1
    assert scenario.requests == _forbidden(server) <= len(batches), (
        f"{scenario.requests} requests for {len(batches)} batches"
    )
    state = customers.state()
    failed = [row for row in state.values() if row["status"] == "failed"]
    # the customer whose request was refused is marked failed with the 403 (one per batch); no
    # row claims a trunk (an empty table would make the "none provisioned" check vacuous)
    assert len(failed) == len(batches) and all("403" in row["last_error"] for row in failed), failed
    assert state and not [key for key, row in state.items() if row["status"] == "provisioned"]
    scenario.provisioned, scenario.refused, scenario.not_attempted = 0, len(failed), 500 - len(failed)
    scenario.note(f"{scenario.requests} request(s) for {len(batches)} batches of 250 customers")
    assert not scanner.hits, scanner.summary()


def test_bad_key_mid_apply_stops_the_batch(
    keys: tuple[Any, str, str],
    customers: Customers,
    scanner: SecretScanner,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key is revoked after a good run; the next run only deletes churned trunks (recorded
    ids, no lookup), so the 403 comes inside the apply phase, from 8 concurrent requests."""
    scenario.name = "bad key: refused mid-apply (deprovisions)"
    server, good, bad = keys
    customers.seed(60, seed=3)
    scenario.customers = 60
    options = ProvisionOptions(
        concurrency=8, requests_per_minute=0, deprovision=True, max_delete_fraction=1.0
    )
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, good))
    assert (
        provision_batch(
            customers.conn_id, customers.query, {"first": None, "last": None}, options=options
        ).counts["created"]
        == 60
    )
    conn = customers.connect()
    conn.execute("UPDATE customers SET status = 'churned'")  # (an active customer would need a lookup first:
    # the spec hashes are keyed with the API key, so a new key means a fresh look)
    conn.commit()
    conn.close()
    (batch,) = plan_run(
        customers.conn_id, customers.query, options=options
    ).batches  # the deletes it may make
    server.admin.reset_counters()
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, bad))
    with pytest.raises(BaseException) as caught:
        provision_batch(customers.conn_id, customers.query, batch, options=options)
    errors = _auth_errors(caught.value)
    scanner.text("auth error", "".join(traceback.format_exception(caught.value)))
    scenario.faults["bad_key"] += 1
    scenario.requests = server.admin.counters()["total_requests"]
    scenario.runs = 2
    assert errors, f"not an authentication error: {caught.value!r}"
    assert scenario.requests == _forbidden(server) <= options.concurrency, (
        f"{scenario.requests} requests after the first 403 (concurrency {options.concurrency})"
    )
    assert server.admin.audit()["trunks"] == 60, "nothing was deleted with a refused key"
    failed = [r for r in customers.state().values() if r["status"] == "failed"]
    # every refused request marked its customer failed, with the 403 (never an empty list)
    assert 1 <= len(failed) <= scenario.requests, failed
    assert all("403" in r["last_error"] for r in failed)
    scenario.refused, scenario.not_attempted = len(failed), 60 - len(failed)
    scenario.note(
        f"{scenario.requests} request(s) before the batch stopped; raised as "
        f"{type(caught.value).__name__}; {len(failed)} rows marked failed"
    )
    if not isinstance(caught.value, BolnaAuthError):
        scenario.note(
            "the batch raises an ExceptionGroup (asyncio.TaskGroup), not BolnaAuthError as apply_plan "
            "documents: `except BolnaAuthError` around provision_batch does not catch it"
        )
    assert not scanner.hits, scanner.summary()


def test_bad_key_mid_apply_raises_bolna_auth_error(
    keys: tuple[Any, str, str], customers: Customers, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.name = "bad key: mid-apply error type "
    server, good, bad = keys
    customers.seed(12, seed=4)
    options = ProvisionOptions(
        concurrency=4, requests_per_minute=0, deprovision=True, max_delete_fraction=1.0
    )
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, good))
    provision_batch(customers.conn_id, customers.query, {"first": None, "last": None}, options=options)
    conn = customers.connect()
    conn.execute("UPDATE customers SET status = 'churned'")
    conn.commit()
    conn.close()
    (batch,) = plan_run(customers.conn_id, customers.query, options=options).batches
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, bad))
    with pytest.raises(BolnaAuthError):
        provision_batch(customers.conn_id, customers.query, batch, options=options)


def test_bad_key_fails_the_dag_task_without_retries(
    keys: tuple[Any, str, str], customers: Customers, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_bolna.provisioning.settings import Deployment
    from airflow_provider_bolna.provisioning.tasks import provision_batch_task

    scenario.name = "bad key: DAG task fails without retries "
    server, _, bad = keys
    customers.seed(10, seed=5)
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, bad))
    deployment = Deployment(scope="chaos", customers_conn_id=customers.conn_id, requests_per_minute=0)
    with pytest.raises(AirflowFailException):
        provision_batch_task(deployment, None, {"first": None, "last": None}, {"params": {}})


def test_bad_key_sip_trunk_operator(
    keys: tuple[Any, str, str], scanner: SecretScanner, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_bolna.operators.sip_trunk import CreateSIPTrunkOperator

    scenario.name = "bad key: CreateSIPTrunkOperator"
    server, _, bad = keys
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_DEFAULT", bolna_conn(server.url, bad))

    class TI:
        def xcom_push(self, key: str, value: Any) -> None:
            json.dumps(value)

    op = CreateSIPTrunkOperator(
        task_id="t",
        trunk={
            "name": "cust-x",
            "provider": "p",
            "auth_type": "ip-based",
            "ip_identifiers": [{"ip_address": "10.0.0.1"}],
            "gateways": [{"gateway_address": "h"}],
        },
    )
    with pytest.raises(AirflowFailException, match="refused the API key") as caught:
        op.execute({"ti": TI(), "params": {}})
    scanner.text("operator error", "".join(traceback.format_exception(caught.value)))
    scenario.faults["bad_key"] += 1
    scenario.requests = server.admin.counters()["total_requests"]
    assert scenario.requests == 1
    assert not scanner.hits, scanner.summary()
