"""The Airflow deployment itself: services healthy, loopback only, REST auth, configuration."""

from __future__ import annotations

import httpx
import psutil
import pytest

from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER, AirflowREST, AirflowStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_all_services_healthy(airflow: AirflowStack, rest: AirflowREST) -> None:
    health = rest.get("/monitor/health")
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert sorted(airflow.services) == ["api-server", "dag-processor", "scheduler", "triggerer"]
    version = rest.get("/version")["version"]
    assert version.startswith("3."), version


def test_every_listening_socket_is_loopback(airflow: AirflowStack) -> None:
    """No service (nor a child: log server, workers, parsers) listens beyond 127.0.0.1."""
    pids: set[int] = set()
    for service in airflow.services.values():
        process = psutil.Process(service.process.pid)
        pids |= {process.pid, *(child.pid for child in process.children(recursive=True))}
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        pytest.skip("listing other processes' sockets needs root")
    listening = [c for c in connections if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening, "the API server should be listening"
    assert {(c.laddr.ip, c.laddr.port) for c in listening} == {("127.0.0.1", airflow.port)}


def test_rest_requires_a_token(airflow: AirflowStack, rest: AirflowREST) -> None:
    anonymous = httpx.get(f"{airflow.url}/api/v2/dags", timeout=30, trust_env=False)
    assert anonymous.status_code == 401
    assert rest.http.get("/dags").status_code == 200
    wrong = httpx.post(
        f"{airflow.url}/auth/token",
        json={"username": ADMIN_USER, "password": "nope"},
        timeout=30,
        trust_env=False,
    )
    assert wrong.status_code == 401
    ok = httpx.post(
        f"{airflow.url}/auth/token",
        json={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        timeout=30,
        trust_env=False,
    )
    assert ok.status_code == 201 and ok.json()["access_token"].count(".") == 2  # a JWT


def test_configuration(rest: AirflowREST) -> None:
    """``[core] test_connection = Enabled`` and LocalExecutor, as the suite relies on both."""

    def option(section: str, name: str) -> str:
        data = rest.get(f"/config/section/{section}/option/{name}", headers={"Accept": "application/json"})
        return str(data["sections"][0]["options"][0]["value"])

    assert option("core", "test_connection") == "Enabled"
    assert option("core", "executor") == "LocalExecutor"
    assert option("scheduler", "use_job_schedule") == "False"


def test_project_dags_parse_without_errors(rest: AirflowREST) -> None:
    for dag_id in ("bolna_customer_signup", "bolna_bulk_provision", "example_bolna_sip_trunk"):
        rest.wait_for_dag(dag_id, timeout=120)
    assert rest.import_errors() == []
