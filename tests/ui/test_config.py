"""``[bolna] ui_deployments``: the admin's list of deployments the page shows, validated, errors named."""

from __future__ import annotations

import json

import pytest

from airflow_provider_bolna.provisioning.settings import SettingsError
from airflow_provider_bolna.ui.config import UIDeployment, parse_ui_deployments, ui_deployments

GOOD = {"dag_id": "bolna_bulk_provision", "scope": "bolna", "state_conn_id": "bolna_customers"}


def test_a_minimal_entry_gets_the_engine_defaults() -> None:
    (deployment,) = parse_ui_deployments(json.dumps([GOOD]))
    assert deployment == UIDeployment(
        dag_id="bolna_bulk_provision",
        scope="bolna",
        state_conn_id="bolna_customers",
        state_table="bolna_provisioning_state",
        bolna_conn_id="bolna_default",
        signup_dag_id=None,
    )
    assert deployment.dag_ids == ("bolna_bulk_provision",)


def test_the_signup_dag_guards_the_deployment_too() -> None:
    (deployment,) = parse_ui_deployments(
        [
            {
                **GOOD,
                "signup_dag_id": "bolna_customer_signup",
                "state_table": "crm.bolna_state",
                "bolna_conn_id": "bolna_eu",
            }
        ]
    )
    assert deployment.dag_ids == ("bolna_bulk_provision", "bolna_customer_signup")
    assert deployment.state_table == "crm.bolna_state"


@pytest.mark.parametrize("raw", [None, "", "   ", "[]"])
def test_unset_or_empty_means_no_deployment(raw: str | None) -> None:
    assert parse_ui_deployments(raw) == []


@pytest.mark.parametrize(
    ("entry", "key", "why"),
    [
        (
            {**GOOD, "state_table": "state; DROP TABLE customers"},
            "ui_deployments.0.state_table",
            "plain table name",
        ),
        (
            {**GOOD, "state_conn_id": "postgres://user:pw@host/db"},
            "ui_deployments.0.state_conn_id",
            "connection id",
        ),
        ({**GOOD, "dag_id": "bulk dag"}, "ui_deployments.0.dag_id", "DAG id"),
        ({**GOOD, "signup_dag_id": "x" * 251}, "ui_deployments.0.signup_dag_id", "DAG id"),
        ({**GOOD, "scope": "-bad"}, "ui_deployments.0.scope", "1-64 characters"),
        ({**GOOD, "query": "SELECT 1"}, "ui_deployments.0.query", "is not a setting here"),
        ({"scope": "bolna", "state_conn_id": "c"}, "ui_deployments.0.dag_id", "Field required"),
    ],
    ids=["table", "conn-uri", "dag-id", "long-signup", "scope", "unknown-key", "missing-dag"],
)
def test_a_bad_entry_is_refused_naming_its_key_not_its_value(
    entry: dict[str, str], key: str, why: str
) -> None:
    with pytest.raises(SettingsError) as err:
        parse_ui_deployments(json.dumps([entry]))
    assert err.value.keys == [key]
    assert why in str(err.value)
    assert "[bolna] ui_deployments" in str(err.value)
    for value in entry.values():  # never echoed (a value may be a URI with a password in it)
        if len(value) > 6:
            assert value not in str(err.value)


def test_a_scope_listed_twice_is_refused() -> None:
    with pytest.raises(SettingsError) as err:
        parse_ui_deployments([GOOD, {**GOOD, "dag_id": "other"}])
    assert err.value.keys == ["ui_deployments.1.scope"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [("{not json", "not valid JSON"), ('{"dag_id": "x"}', "JSON list"), ("[1]", "valid dictionary")],
)
def test_not_a_list_of_objects(raw: str, why: str) -> None:
    with pytest.raises(SettingsError, match=why):
        parse_ui_deployments(raw)


def test_read_from_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__BOLNA__UI_DEPLOYMENTS", json.dumps([GOOD]))
    assert [d.scope for d in ui_deployments()] == ["bolna"]
    monkeypatch.delenv("AIRFLOW__BOLNA__UI_DEPLOYMENTS")
    assert ui_deployments() == []
