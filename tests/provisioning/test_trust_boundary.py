"""The attacks of the trust-boundary issue, replayed through ``airflow dags test``.

Whoever may only trigger a DAG (conf) or write a customer row (tenant data) tried, against the
previous release: to read the Bolna API key through a Jinja-rendered query, to re-point another
customer's trunk, to adopt a hand-made trunk, to delete every trunk, to build 50 MB trunk names,
and to send another Airflow connection's secret to Bolna. Each attack must now leave the
sandbox untouched (zero writes, and zero requests where nothing legitimate runs) and leak no
secret into the run's output, task logs, XCom, rendered fields or the state table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_cli import scannable
from tests.chaos.chaoslib import SecretScanner
from tests.provisioning.conftest import CustomerDB, total_requests, writes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZERO_WRITES = {"create_trunk": 0, "update_trunk": 0, "delete_trunk": 0, "add_number": 0, "remove_number": 0}
AWS_SECRET = "AwsSecretKey-0123456789-must-never-leave"


def _scan(scanner: SecretScanner, output: str, airflow_home: Path, db: CustomerDB) -> None:
    scanner.text("dags test output", scannable(output))
    scanner.tree(airflow_home / "logs", "task logs")
    scanner.sqlite(
        airflow_home / "airflow.db", "metadata DB", tables=["xcom", "rendered_task_instance_fields"]
    )
    if db.execute("SELECT name FROM sqlite_master WHERE name = '{s}'".replace("{s}", db.state_table)):
        scanner.rows("state table", [{"row": r} for r in db.execute("SELECT * FROM {s}")])
    assert not scanner.hits, scanner.summary()


@pytest.fixture
def provisioned(sqlite_db: CustomerDB, bolna_api: Any) -> CustomerDB:
    """Ten customers, provisioned as the repository's deployment would (in-process: faster)."""
    from airflow_provider_bolna.provisioning import ProvisionOptions, plan_run, provision_batch

    sqlite_db.seed(10, seed=71)
    options = ProvisionOptions(scope="bolna", requests_per_minute=0)
    for batch in plan_run(sqlite_db.conn_id, sqlite_db.query, options=options).batches:
        provision_batch(sqlite_db.conn_id, sqlite_db.query, batch, options=options)
    assert writes(bolna_api)["create_trunk"] == 10
    return sqlite_db


ATTACKS = {
    "read the API key through a rendered query": {
        "dry_run": True,
        "query": "SELECT '{{ conn.bolna_default.password | reverse }}' AS customer_id",
    },
    "read a Variable through a rendered query": {
        "dry_run": True,
        "query": "SELECT '{{ var.value.sip_master }}' AS customer_id",
    },
    "re-point customer 2's trunk at another gateway": {
        "query": "SELECT customer_id, provider, auth_type, auth_username, auth_password, "
        "'evil.example.com' AS gateways FROM customers WHERE customer_id = 2"
    },
    "adopt and rewrite a hand-made trunk": {"name_template": "{customer_id}"},
    "delete every trunk": {
        "deprovision": True,
        "max_deprovision": 0,
        "query": "SELECT * FROM customers WHERE 1 = 0",
    },
    "build 50 MB trunk names": {"name_template": "{customer_id:>50000000}"},
    "choose the connections and the state table": {
        "customers_conn_id": "bolna_default",
        "state_table": "sqlite_master",
        "bolna_conn_id": "x",
    },
}


@pytest.mark.parametrize("conf", list(ATTACKS.values()), ids=list(ATTACKS))
def test_a_trigger_conf_attack_is_refused_and_touches_nothing(
    provisioned: CustomerDB, bolna_api: Any, airflow_cli: Any, airflow_home: Path, conf: dict[str, Any]
) -> None:
    db, server = provisioned, bolna_api
    with server.client() as http:  # a hand-made trunk the name_template attack aimed at
        http.post(
            "/sip-trunks/trunks",
            json={
                "name": "2",
                "provider": "byhand",
                "auth_type": "ip-based",
                "ip_identifiers": [{"ip_address": "198.51.100.7"}],
                "gateways": [{"gateway_address": "byhand.example.com"}],
            },
        ).raise_for_status()
    state_before = db.state()
    requests_before = total_requests(server)
    writes_before = writes(server)
    scanner = SecretScanner()
    scanner.add("api key", server.api_key)
    scanner.add("api key reversed", server.api_key[::-1])
    scanner.add("variable", AWS_SECRET)
    result = airflow_cli.dags_test(
        "bolna_bulk_provision", conf=conf, check=False, env={"AIRFLOW_VAR_SIP_MASTER": AWS_SECRET}
    )
    assert "state=failed" in result.stdout, result.stdout[-3000:]
    refused = [k for k in conf if k not in ("dry_run", "deprovision")]
    assert all(k in result.stdout for k in refused)  # the refusal names the keys
    assert "cannot be set when triggering a run" in result.stdout
    assert total_requests(server) == requests_before  # not one request, let alone a write
    assert writes(server) == writes_before
    assert db.state() == state_before
    _scan(scanner, result.stdout, airflow_home, db)


def test_a_row_cannot_send_another_connections_secret_to_bolna(
    sqlite_db: CustomerDB, bolna_api: Any, airflow_cli: Any, airflow_home: Path
) -> None:
    """A tenant writes a reference to an Airflow connection into its row, on a gateway it chose."""
    sqlite_db.seed(6, seed=72)
    sqlite_db.execute(
        "UPDATE {t} SET auth_type = 'userpass', auth_username = 'u', "
        "auth_password = ?, gateways = 'attacker.example.com' WHERE customer_id = 3",
        (json.dumps({"conn": "aws_default", "field": "password"}),),
    )
    aws = json.dumps({"conn_type": "aws", "login": "AKIA", "password": AWS_SECRET})
    scanner = SecretScanner()
    scanner.add("aws secret", AWS_SECRET)
    scanner.add("api key", bolna_api.api_key)
    result = airflow_cli.dags_test("bolna_bulk_provision", env={"AIRFLOW_CONN_AWS_DEFAULT": aws})
    assert "state=success" in result.stdout
    status, _, trunk_id, _, error = sqlite_db.state()["3"]
    assert status == "failed" and trunk_id is None
    assert error.startswith("customer 3: auth_password: password references are not enabled")
    assert "aws_default" not in error
    assert writes(bolna_api) == {**ZERO_WRITES, "create_trunk": 5}  # the others, not customer 3
    with bolna_api.client() as http:
        names = {t["name"] for t in http.get("/sip-trunks/trunks").json()}
    assert "cust-3" not in names
    _scan(scanner, result.stdout, airflow_home, sqlite_db)


def test_signup_refuses_a_conf_with_anything_but_customer_id(
    sqlite_db: CustomerDB, bolna_api: Any, airflow_cli: Any
) -> None:
    sqlite_db.seed(3, seed=73)
    for conf in (
        {"customer_id": 2, "query": "SELECT * FROM customers WHERE 1 = 0"},
        {"customer_id": 2, "bolna_conn_id": "other"},
    ):
        result = airflow_cli.dags_test("bolna_customer_signup", conf=conf, check=False)
        assert "state=failed" in result.stdout and "may hold only customer_id" in result.stdout
    assert total_requests(bolna_api) == 0


@pytest.mark.parametrize(
    "conf",
    [
        {"sip_password": {"conn": "aws_default"}},
        {"sip_password": {"conn": "bolna_example_carrier", "field": "extra.token"}},
        {"trunk_name": "cust-1"},  # another deployment's trunk: outside the example's namespace
    ],
    ids=["another-connection", "not-the-password", "someone-elses-trunk"],
)
def test_the_example_dags_params_cannot_reach_a_secret_or_another_trunk(
    sandbox: Any, airflow_cli: Any, airflow_home: Path, conf: dict[str, Any]
) -> None:
    aws = json.dumps({"conn_type": "aws", "login": "AKIA", "password": AWS_SECRET})
    carrier = json.dumps(
        {"conn_type": "generic", "password": "Example-Carrier-Pw-1", "extra": {"token": AWS_SECRET}}
    )
    scanner = SecretScanner()
    scanner.add("aws secret", AWS_SECRET)
    scanner.add("api key", sandbox.api_key)
    result = airflow_cli.dags_test(
        "example_bolna_sip_trunk",
        conf=conf,
        check=False,
        env={"AIRFLOW_CONN_AWS_DEFAULT": aws, "AIRFLOW_CONN_BOLNA_EXAMPLE_CARRIER": carrier},
    )
    assert "state=success" not in result.stdout.split("DagRun Finished")[-1][:300]
    assert sandbox.admin.counters()["writes"]["create_trunk"] == 0
    scanner.text("dags test output", scannable(result.stdout))
    scanner.tree(airflow_home / "logs", "task logs")
    assert not scanner.hits, scanner.summary()
