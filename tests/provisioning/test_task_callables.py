"""The Airflow-side adapters (``provisioning/tasks.py``) with a hand-made task context: the trust
boundary between a trigger and the deployment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jinja2
import pytest

from airflow_provider_bolna.provisioning.settings import Deployment
from airflow_provider_bolna.provisioning.tasks import (
    ProvisioningFailed,
    RunRefused,
    deprovision_gone_task,
    plan_task,
    provision_batch_task,
    provision_signup_task,
    render_query,
    resolve_signup_customers,
    summarize_task,
)
from airflow_provider_bolna.secrets.masker import mask_secrets
from airflow_provider_bolna.version_compat import TRIGGERING_ASSET_EVENTS_KEY
from tests.provisioning.conftest import CustomerDB, total_requests, writes


class FakeTask:
    """Just enough of an operator to render a template."""

    def render_template(self, content: str, context: dict[str, Any]) -> str:
        return jinja2.Template(content).render(**context)


@dataclass
class Event:
    extra: dict[str, Any]


@dataclass
class Run:
    conf: dict[str, Any]


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def ctx(conf: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    """A task context: the run's conf, the params form (declared params, conf merged in)."""
    conf = conf or {}
    return {
        "params": {**params, **conf},
        "dag_run": Run(conf),
        "task": FakeTask(),
        "ds": "2026-11-26",
        "run_id": "manual__test",
        "ti": FakeTI(),
    }


DEPLOYMENT = Deployment(scope="tests")


def test_only_the_authors_query_is_rendered_and_only_with_dates_and_variables() -> None:
    templated = DEPLOYMENT.model_copy(update={"query": "SELECT * FROM c WHERE day = '{{ ds }}'"})
    assert render_query(templated, ctx()) == "SELECT * FROM c WHERE day = '2026-11-26'"
    assert render_query(DEPLOYMENT, ctx()) == "SELECT * FROM customers"
    # a trigger's conf, params and run id are not in the template context
    for name in (
        "params.x",
        "dag_run.conf",
        "run_id",
        "conn.bolna_default.password",
        "triggering_asset_events",
    ):
        sneaky = DEPLOYMENT.model_copy(update={"query": f"SELECT '{{{{ {name} }}}}' AS c"})
        context = {**ctx(conf={"dry_run": True}, x="P"), "conn": object(), "triggering_asset_events": {}}
        try:
            rendered = render_query(sneaky, context)
        except jinja2.UndefinedError:
            continue
        assert rendered == "SELECT '' AS c", name


@pytest.mark.parametrize(
    "conf",
    [
        {"query": "SELECT '{{ conn.bolna_default.password | reverse }}' AS customer_id"},
        {"customers_conn_id": "other_db"},
        {"state_table": "x"},
        {"bolna_conn_id": "other"},
        {"name_template": "{customer_id}"},
        {"max_deprovision": 0},
        {"max_deletes": 100000},
        {"deprovision": True},
        {"confirm_deletes": 5},
        {"batch_size": 5},
        {"concurrency": 10_000},
        {"password_refs": {"conn_prefixes": [""]}},
    ],
)
def test_a_trigger_cannot_set_deployment_settings(conf: dict[str, Any]) -> None:
    with pytest.raises(RunRefused) as refused:
        plan_task(DEPLOYMENT, None, ctx(conf=conf))
    assert next(iter(conf)) in str(refused.value)  # names the key
    assert "{{" not in str(refused.value)  # never echoes a value


def test_signup_customers_from_conf_or_asset_events() -> None:
    assert resolve_signup_customers(ctx(conf={"customer_id": 42})) == [42]
    events = {
        "bolna://customers/signup": [
            Event({"customer_id": 7}),
            Event({"customer_id": "8"}),
            Event({"customer_id": 7, "from_rest_api": True}),
        ]
    }
    assert resolve_signup_customers({**ctx(), TRIGGERING_ASSET_EVENTS_KEY: events}) == [7, "8"]
    with pytest.raises(RunRefused, match="customer_id"):
        resolve_signup_customers({**ctx(), TRIGGERING_ASSET_EVENTS_KEY: {}})


@pytest.mark.parametrize(
    "context",
    [
        ctx(conf={"customer_id": 1, "query": "SELECT 1"}),
        ctx(conf={"customer_id": "x" * 129}),
        ctx(conf={"customer_id": {"nested": 1}}),
        {
            **ctx(),
            TRIGGERING_ASSET_EVENTS_KEY: {"a": [Event({"customer_id": 1, "customers_conn_id": "other"})]},
        },
        {**ctx(), TRIGGERING_ASSET_EVENTS_KEY: {"a": [Event({"customer_ids": [1, 2]})]}},
    ],
)
def test_signup_refuses_anything_but_a_customer_id(context: dict[str, Any]) -> None:
    with pytest.raises(RunRefused):
        resolve_signup_customers(context)


def test_summary_fails_only_when_asked_or_when_deletes_were_withheld() -> None:
    batch = {
        "counts": {"created": 2, "failed": 1},
        "failed_total": 1,
        "requests": {"POST": 2, "total": 2},
        "failed": [{"customer_id": 3, "trunk_name": "cust-3", "reason": "customer 3: numbers.0: bad"}],
        "batch": {"index": 0},
    }
    run = summarize_task(DEPLOYMENT, None, [batch, None], {}, None, ctx())
    assert run["counts"]["created"] == 2 and run["failed_total"] == 1 and run["batches"] == 1
    with pytest.raises(ProvisioningFailed, match="customer 3: numbers.0: bad"):
        summarize_task(DEPLOYMENT, None, [batch], None, None, ctx(conf={"fail_on_error": True}))
    withheld = {"enabled": True, "withheld": True, "message": "this run plans to delete 9 trunk(s) ..."}
    with pytest.raises(ProvisioningFailed, match="plans to delete 9"):
        summarize_task(DEPLOYMENT, None, [batch], None, withheld, ctx())


@pytest.mark.integration
def test_task_callables_end_to_end(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(25, invalid=1, seed=61)
    deployment = DEPLOYMENT.model_copy(update={"customers_conn_id": sqlite_db.conn_id})
    context = ctx(conf={"batch_size": 10})
    batches = plan_task(deployment, None, context)
    assert [b["count"] for b in batches] == [10, 10, 5]
    assert context["ti"].pushed["gone"] == [] and context["ti"].pushed["budget"]["enabled"] is False
    assert sqlite_db.execute("SELECT COUNT(*) FROM {s}") == [(0,)]  # state table created up front
    results = [provision_batch_task(deployment, None, b, context) for b in batches]
    assert sum(r["counts"]["created"] for r in results) == 24
    assert deprovision_gone_task(deployment, None, ["1"], context) == {}  # deprovision off
    run = summarize_task(deployment, None, results, {}, context["ti"].pushed["budget"], context)
    assert run["counts"]["created"] == 24 and run["failed_total"] == 1
    assert {r[0] for r in sqlite_db.execute("SELECT DISTINCT scope FROM {s}")} == {"tests"}


@pytest.mark.integration
def test_signup_task_reports_missing_and_invalid_customers(sqlite_db: CustomerDB, bolna_api: Any) -> None:
    sqlite_db.seed(6, invalid=1, seed=62)
    bad = sqlite_db.execute("SELECT customer_id FROM {t} ORDER BY customer_id")[3][
        0
    ]  # the broken row is in the middle
    out = provision_signup_task(DEPLOYMENT, None, [1], ctx())
    assert len(out) == 1 and out[0]["trunk_id"] and out[0]["expect_numbers"]
    with pytest.raises(ProvisioningFailed, match="customer 999: not returned by the query"):
        provision_signup_task(DEPLOYMENT, None, [999], ctx())
    with pytest.raises(ProvisioningFailed, match=f"customer {bad}: "):
        provision_signup_task(DEPLOYMENT, None, [bad], ctx())
    assert writes(bolna_api)["create_trunk"] == 1


@pytest.mark.integration
def test_signup_follows_the_settings_variable(
    sqlite_db: CustomerDB, bolna_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Variable's Bolna connection reaches the sensor's items (not the DAG file's, read at
    parse time), and its run-option defaults apply to the sign-up, but for dry_run."""
    sqlite_db.seed(3, seed=63)
    monkeypatch.setenv("AIRFLOW_CONN_BOLNA_SIGNUP", bolna_api.airflow_conn_json(requests_per_minute=0))
    monkeypatch.setenv("AIRFLOW_VAR_BOLNA_SIGNUP_SETTINGS", json.dumps({"bolna_conn_id": "bolna_signup"}))
    deployment = DEPLOYMENT.model_copy(update={"customers_conn_id": sqlite_db.conn_id})
    (item,) = provision_signup_task(deployment, "bolna_signup_settings", [1], ctx())
    assert item["bolna_conn_id"] == "bolna_signup" and item["trunk_id"]
    assert total_requests(bolna_api) == 1  # one create, numbers inline
    monkeypatch.setenv(
        "AIRFLOW_VAR_BOLNA_SIGNUP_SETTINGS",
        json.dumps({"defaults": {"look_before_create": True, "dry_run": True}}),
    )
    (item,) = provision_signup_task(deployment, "bolna_signup_settings", [2], ctx())
    assert item["bolna_conn_id"] == "bolna_default" and item["trunk_id"]
    assert total_requests(bolna_api) == 3  # looked first (a list call), then created: not a dry run
    assert writes(bolna_api)["create_trunk"] == 2


def test_bulk_masking_is_fast_and_effective() -> None:
    import time

    from airflow.providers.common.compat.sdk import redact

    secrets = [f"Bulk-Mask-Secret-{i:05d}" for i in range(2000)]
    started = time.perf_counter()
    assert mask_secrets(secrets + ["", secrets[0]]) == 2000
    assert time.perf_counter() - started < 5  # one by one this is minutes
    assert redact("pw=Bulk-Mask-Secret-01999 ok") == "pw=*** ok"


def test_a_batch_releases_its_passwords_but_not_older_secrets() -> None:
    """A process running many batches must not carry every password it read (dags test, CLI)."""
    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_bolna.secrets.masker import BatchSecrets
    from airflow_provider_bolna.version_compat import secrets_masker_parts

    mask_secrets(["Older-Secret-Kept-0001"])
    parts = secrets_masker_parts()
    assert parts is not None, "no process masker found: every batch would mask one password at a time"
    masker = parts.masker
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
