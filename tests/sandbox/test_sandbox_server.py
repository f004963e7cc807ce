"""The sandbox process: CLI, restart / crash persistence, helpers, fixtures, independence."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_bolna.sandbox import app as app_module
from airflow_provider_bolna.sandbox.cli import build_parser, config_from_args
from airflow_provider_bolna.sandbox.testing import SandboxServer, knob_args

from .conftest import SEED_USERPASS, TRUNKS

pytestmark = pytest.mark.integration


def create(server: SandboxServer, body: dict[str, Any] = SEED_USERPASS) -> dict[str, Any]:
    with server.client() as client:
        response = client.post(TRUNKS, json=body)
        assert response.status_code == 201, response.text
        return response.json()


def test_restart_keeps_state(bolna_sandbox_factory: Any, tmp_path: Path) -> None:
    server = bolna_sandbox_factory(tmp_path / "state.db", seed=1)
    trunk = create(server, {**SEED_USERPASS, "phone_numbers": [{"phone_number": "+14155550100"}]})
    url = server.url
    server.restart()
    assert server.url == url
    with server.client() as client:
        assert client.get(f"{TRUNKS}/{trunk['id']}").json() == trunk
        assert client.post(TRUNKS, json=SEED_USERPASS).status_code == 409  # the name is still taken
    assert server.admin.counters()["total_requests"] == 2  # counters restart with the process


def test_killed_server_keeps_committed_writes(bolna_sandbox_factory: Any, tmp_path: Path) -> None:
    server = bolna_sandbox_factory(tmp_path / "crash.db")
    trunk = create(server)
    server.kill()
    server.restart()
    with server.client() as client:
        assert client.get(f"{TRUNKS}/{trunk['id']}").status_code == 200


def test_restart_with_new_knobs(bolna_sandbox_factory: Any) -> None:
    server = bolna_sandbox_factory(api_key="k1")
    assert server.admin.config()["api_key"] == "k1"
    server.restart(fail_rate=0.5, retry_after=True)
    config = server.admin.config()
    assert config["fail_rate"] == 0.5 and config["retry_after"] is True and config["api_key"] == "k1"


def test_memory_db_and_cli_knobs(tmp_path: Path) -> None:
    with SandboxServer(
        ":memory:",
        latency_ms=3,
        jitter_ms=1,
        rate_limit_per_min=100,
        retry_after=True,
        fail_rate=0.1,
        drop_after_commit_rate=0.2,
        number_visibility_delay_s=2,
        latency_spike_rate=0.05,
        latency_spike_ms=900,
        seed=77,
        api_key="abc",
    ) as server:
        assert server.admin.config() == {
            "latency_ms": 3.0,
            "jitter_ms": 1.0,
            "latency_spike_rate": 0.05,
            "latency_spike_ms": 900.0,
            "rate_limit_per_min": 100.0,
            "agent_rate_limit_per_min": 500.0,
            "retry_after": True,
            "fail_rate": 0.1,
            "drop_after_commit_rate": 0.2,
            "number_visibility_delay_s": 2.0,
            "seed": 77,
            "api_key": "abc",
            "unique_names": True,
            "unique_numbers": True,
            "number_list_shows_agent_id": False,
            "phone_numbers_all_includes_sip": False,
            "inbound_setup_response": "message",
            "user_me_available": True,
        }
        assert not list(tmp_path.iterdir())


def test_startup_is_fast() -> None:
    server = SandboxServer()
    started = time.perf_counter()
    with server:
        elapsed = time.perf_counter() - started
    assert elapsed < 5  # ~0.7 s on an idle machine; generous for loaded CI runners


def test_bad_cli_values_exit() -> None:
    with pytest.raises(SystemExit):
        config_from_args(build_parser().parse_args(["--fail-rate", "2"]))
    args = build_parser().parse_args(["--retry-after", "--seed", "4"])
    assert args.db == ":memory:" and args.host == "127.0.0.1"
    assert config_from_args(args).retry_after is True


def test_knob_args_rejects_typos() -> None:
    with pytest.raises(TypeError):
        knob_args({"fail_ratio": 0.1})
    with pytest.raises(TypeError):
        SandboxServer(latncy_ms=1)
    assert knob_args({"retry_after": False, "seed": 3}) == ["--no-retry-after", "--seed", "3"]
    assert knob_args({"unique_names": False, "number_list_shows_agent_id": True}) == [
        "--no-unique-names",
        "--number-list-shows-agent-id",
    ]


def test_stopped_server_cannot_start_again() -> None:
    server = SandboxServer()
    server.start()
    server.stop()
    with pytest.raises(RuntimeError):
        server.start()


def test_sandbox_fixture_sets_airflow_connection(sandbox: SandboxServer) -> None:
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_BOLNA_DEFAULT"])
    assert conn == {"conn_type": "bolna", "host": sandbox.url, "password": sandbox.api_key, "extra": {}}


def test_sandbox_fixture_resets_knobs_and_state(sandbox: SandboxServer) -> None:
    assert sandbox.admin.counters()["total_requests"] == 0
    assert sandbox.admin.config()["fail_rate"] == 0
    create(sandbox)
    sandbox.admin.config(fail_rate=1.0, api_key="other")


def test_sandbox_fixture_resets_knobs_and_state_again(sandbox: SandboxServer) -> None:
    test_sandbox_fixture_resets_knobs_and_state(sandbox)


def test_airflow_connection_forms_agree(sandbox: SandboxServer) -> None:
    connection = pytest.importorskip("airflow.models.connection")
    from_json = connection.Connection.from_json(sandbox.airflow_conn_json(timeout=5), conn_id="a")
    from_uri = connection.Connection(conn_id="b", uri=sandbox.airflow_conn_uri(timeout=5))
    for conn in (from_json, from_uri):
        assert (conn.conn_type, conn.host, conn.port, conn.password) == (
            "bolna",
            sandbox.url,
            None,
            sandbox.api_key,
        )
        assert conn.extra_dejson == {"timeout": 5}


def test_sandbox_imports_neither_airflow_nor_the_provider() -> None:
    modules = sorted(
        p.stem
        for p in Path(app_module.__file__).parent.glob("*.py")
        if p.stem not in ("__init__", "__main__")
    )
    code = (
        f"import sys; import {', '.join(f'airflow_provider_bolna.sandbox.{m}' for m in modules)}; "
        "bad = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.') "
        "or (m.startswith('airflow_provider_bolna.') and not m.startswith('airflow_provider_bolna.sandbox'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_plugin_is_import_light() -> None:
    code = (
        "import sys; import airflow_provider_bolna.sandbox.pytest_plugin; "
        "heavy = [m for m in ('httpx', 'uvicorn', 'sqlite3') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_admin_is_loopback_only_and_api_binds_loopback(sandbox: SandboxServer) -> None:
    assert sandbox.host == "127.0.0.1"
    assert httpx.get(f"{sandbox.url}/__sandbox__/health", trust_env=False).json() == {"status": "ok"}


async def test_in_process_app_with_asgi_transport() -> None:
    from airflow_provider_bolna.sandbox.app import create_app

    app = create_app(api_key="k")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", headers={"Authorization": "Bearer k"}
    ) as client:
        assert (await client.post(TRUNKS, json=SEED_USERPASS)).status_code == 201
        assert len((await client.get(TRUNKS)).json()) == 1
        assert (await client.get("/__sandbox__/counters")).json()["trunks"] == 1


def test_taken_port_is_retried_or_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from airflow_provider_bolna.sandbox import testing

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # an explicit port that is taken: a clear error
        with pytest.raises(RuntimeError, match="exited"):
            SandboxServer(port=taken, startup_timeout=10).start()
        # an automatic port that got taken before the server bound it: a new port is tried
        ports = iter([taken])
        real_free_port = testing.free_port
        monkeypatch.setattr(
            testing, "free_port", lambda host="127.0.0.1": next(ports, None) or real_free_port(host)
        )
        with SandboxServer() as server:
            assert server.port != taken
            assert server.admin.health() == {"status": "ok"}
