"""A real Airflow 3.3 deployment on loopback for the end-to-end tests.

:class:`AirflowStack` runs the four long-lived Airflow 3 services as separate processes —
``api-server``, ``scheduler`` (LocalExecutor), ``dag-processor`` and ``triggerer`` — with:

* a private ``AIRFLOW_HOME`` (temp dir) and a PostgreSQL metadata database of its own
  (LocalExecutor with several processes writing at once wants a real database);
* ``SimpleAuthManager`` with one known admin user (password file written beforehand, so
  nothing is generated or printed);
* one shared JWT secret / Fernet key / API secret key for every service (the scheduler signs
  the task tokens the API server checks);
* every listening socket on 127.0.0.1: the API server gets a free port, and the scheduler's and
  triggerer's log servers (which would bind all interfaces) are not started
  (``--skip-serve-logs``): everything runs on this machine, so the API server reads task and
  trigger logs straight from ``AIRFLOW_HOME/logs``;
* each service in its own process group, its stdout/stderr in ``<log_dir>/<service>.log``,
  stopped with SIGTERM then SIGKILL to the whole group.

``airflow standalone`` was considered and not used: it mixes the services' output into one
stream, binds the API server and log servers to all interfaces, generates a password and
leaves us no hook to restart or inspect one service.

Only the standard library and httpx are imported here: the test process never imports Airflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ADMIN_USER = "admin"
ADMIN_PASSWORD = "bolna-e2e-admin"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = {"success", "failed"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 1.0,
    what: str = "condition",
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Call ``predicate`` until it returns something truthy; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError, KeyError, ValueError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            details = on_timeout() if on_timeout else ""
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                f"{f' (last error: {last_error!r})' if last_error else ''}\n{details}"
            )
        time.sleep(interval)


def with_database(uri: str, name: str) -> str:
    """``uri`` with its database (path) replaced by ``name``."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def sqlalchemy_uri(uri: str) -> str:
    """A ``postgresql://`` URI spelled for SQLAlchemy with psycopg2 (what Airflow's docs use)."""
    scheme, rest = uri.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg2"
    return f"{scheme}://{rest}"


@dataclass
class PostgresDatabase:
    """A throw-away database on an existing PostgreSQL server (created and dropped with psycopg2)."""

    server_uri: str
    name: str

    @property
    def uri(self) -> str:
        return with_database(self.server_uri, self.name)

    def _admin(self, sql: str) -> None:
        import psycopg2  # installed with apache-airflow-providers-postgres (test extra)

        connection = psycopg2.connect(with_database(self.server_uri, "postgres"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create(self) -> PostgresDatabase:
        self.drop()
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class Service:
    """One Airflow service process (its own process group)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self) -> None:
        """SIGTERM the whole process group (returns at once)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL whatever is left of the process group (children may outlive the leader)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL it."""
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.kill()


@dataclass
class AirflowStack:
    """Airflow's services on loopback, configured through ``AIRFLOW__*`` environment variables.

    :param home: AIRFLOW_HOME (created).
    :param dags_folder: the DAG bundle folder (``[core] dags_folder``).
    :param db_uri: SQLAlchemy URI of the (empty or migrated) metadata database.
    :param log_dir: where each service's output goes (``<service>.log``).
    :param extra_env: more environment for every service (``AIRFLOW_CONN_*``...).
    """

    home: Path
    dags_folder: Path
    db_uri: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    port: int = field(default_factory=free_port)
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._jwt_secret = secrets.token_urlsafe(32)
        self._secret_key = secrets.token_urlsafe(32)
        self._fernet_key = _fernet_key()
        self.passwords_file = self.home / "simple_auth_manager_passwords.json"
        self.passwords_file.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}) + "\n")

    # ------------------------------------------------------------------ configuration
    @property
    def url(self) -> str:
        """Base URL of the API server / UI."""
        return f"http://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        """The environment every ``airflow`` command of this stack runs with."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                # --- core
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                # --- database
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_uri,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
                # --- API server: loopback only, one worker
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": self._secret_key,
                "AIRFLOW__API__EXPOSE_CONFIG": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                # --- quick turn-around
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # only the runs the tests trigger: no cron/asset-scheduled runs racing them
                # (bolna_bulk_provision is @hourly with max_active_runs=1)
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                # --- logs: no log servers (they bind every interface); local files are read directly
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ commands
    def cli(
        self, *args: str, timeout: float = 300, check: bool = True, log_name: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` to completion (output also saved to ``<log_dir>/<log_name>.log``)."""
        proc = subprocess.run(
            [self.python, "-m", "airflow", *args],
            env=self.environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if log_name:
            (self.log_dir / f"{log_name}.log").write_text(proc.stdout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-6000:]}")
        return proc

    def migrate(self) -> None:
        """``airflow db migrate`` (creates every table on an empty database)."""
        self.cli("db", "migrate", timeout=600, log_name="db-migrate")

    def start_service(self, name: str) -> Service:
        """Start one service (``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``)."""
        args = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }[name]
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [self.python, "-m", "airflow", *args],
                env=self.environ(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(self.home),
            )
        service = Service(name, process, log_path)
        self.services[name] = service
        return service

    def start(self, timeout: float = 180) -> None:
        """Start every service and wait until the API server reports all of them healthy."""
        for name in SERVICES:
            self.start_service(name)
        wait_for(
            self._healthy,
            timeout=timeout,
            interval=1.0,
            what="Airflow services healthy",
            on_timeout=self.diagnostics,
        )

    def _healthy(self) -> bool:
        self.check_alive()
        response = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5, trust_env=False)
        if response.status_code != 200:
            return False
        health = response.json()
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(c) or {}).get("status") == "healthy" for c in components)

    def check_alive(self) -> None:
        """Raise with the service's log tail if one service has died."""
        for service in self.services.values():
            if not service.running:
                raise RuntimeError(
                    f"Airflow {service.name} exited with {service.process.returncode}:\n{service.log_tail()}"
                )

    def diagnostics(self, lines: int = 40) -> str:
        """The tail of every service's log (for failure messages)."""
        return "\n".join(
            f"----- {s.name} ({'running' if s.running else f'exit {s.process.returncode}'})"
            f" {s.log_path}\n{s.log_tail(lines)}"
            for s in self.services.values()
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every service: SIGTERM all process groups at once, wait, SIGKILL what is left."""
        services = list(self.services.values())
        self.services.clear()
        for service in services:
            service.terminate()
        deadline = time.monotonic() + timeout
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for service in services:
            service.kill()


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class AirflowREST:
    """Small client of Airflow's public REST API (``/api/v2``) with a SimpleAuthManager JWT."""

    def __init__(
        self, base_url: str, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url
        self.token = self.get_token(base_url, username, password)
        self.http = httpx.Client(
            base_url=f"{base_url}/api/v2",
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    @staticmethod
    def get_token(base_url: str, username: str, password: str) -> str:
        """``POST /auth/token`` → the access token (a JWT)."""
        response = httpx.post(
            f"{base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=30,
            trust_env=False,
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /auth/token: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ verbs
    def request(
        self, method: str, path: str, expect: int | tuple[int, ...] | None = None, **kwargs: Any
    ) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        codes = (expect,) if isinstance(expect, int) else expect
        if codes and response.status_code not in codes:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, expect=200, **kwargs).json()

    # ------------------------------------------------------------------ DAGs and runs
    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.get("/importErrors").get("import_errors", []))

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait until the DAG processor has serialized ``dag_id``; fail early on an import error."""

        def found() -> dict[str, Any] | None:
            response = self.http.get(f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            for error in self.import_errors():
                if Path(error.get("filename", "")).stem == dag_id or dag_id in error.get("filename", ""):
                    raise AssertionError(f"import error in {error['filename']}:\n{error.get('stack_trace')}")
            return None

        return wait_for(
            found,
            timeout=timeout,
            interval=1.0,
            what=f"DAG {dag_id} to be parsed",
            on_timeout=lambda: json.dumps(self.import_errors(), indent=1)[:4000],
        )

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", expect=200, json={"is_paused": False})

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        """``POST /dags/{dag_id}/dagRuns`` (``logical_date`` null: a manual run "now")."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", expect=200, json=body).json()

    def set_variable(self, key: str, value: str) -> None:
        """Create or replace an Airflow Variable (as an admin would)."""
        response = self.http.patch(f"/variables/{key}", json={"key": key, "value": value})
        if response.status_code == 404:
            response = self.http.post("/variables", json={"key": key, "value": value})
        response.raise_for_status()

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 240, stack: AirflowStack | None = None
    ) -> dict[str, Any]:
        """Poll the run until it is ``success`` or ``failed`` (returns the run)."""

        def finished() -> dict[str, Any] | None:
            if stack is not None:
                stack.check_alive()
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        def details() -> str:
            text = json.dumps(self.task_instances(dag_id, run_id), indent=1, default=str)[:4000]
            return text + ("\n" + stack.diagnostics(30) if stack else "")

        return wait_for(
            finished, timeout=timeout, interval=2.0, what=f"{dag_id}/{run_id} to finish", on_timeout=details
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(
            self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).get(
                "task_instances", []
            )
        )

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> list[dict[str, Any]]:
        """The task's log records (worker and trigger logs merged by the API server).

        The first records are a ``::group::Log message source details`` block whose events are
        the files read (``attempt=N.log`` from the worker, ``attempt=N.log.trigger.<job>.log``
        from the triggerer).
        """
        response = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            expect=200,
            params={"map_index": map_index, "full_content": True},
        )
        return list(response.json().get("content") or [])

    @staticmethod
    def log_text(records: list[dict[str, Any]]) -> str:
        """Records as ``logger | event`` lines (for assertions and failure messages)."""
        return "\n".join(f"{r.get('logger') or '-'} | {r.get('event')}" for r in records)

    def extra_links(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, str | None]:
        """``GET .../links``: the extra links the worker stored for this task instance."""
        return dict(
            self.get(
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links",
                params={"map_index": map_index},
            ).get("extra_links")
            or {}
        )

    def iter_task_instance_history(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> Iterator[dict[str, Any]]:
        """Every try of one task instance (``/tries``)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        yield from self.get(path).get("task_instances", [])


@dataclass
class RunResult:
    """A finished DAG run, its task instances and every TI state seen while polling it."""

    dag_id: str
    run_id: str
    run: dict[str, Any]
    task_instances: list[dict[str, Any]]
    seen_states: dict[tuple[str, int], list[str]]

    def ti(self, task_id: str, map_index: int = -1) -> dict[str, Any]:
        for ti in self.task_instances:
            if ti["task_id"] == task_id and ti["map_index"] == map_index:
                return ti
        raise KeyError(
            f"{self.dag_id}: no task instance {task_id}[{map_index}] in "
            f"{[(t['task_id'], t['map_index']) for t in self.task_instances]}"
        )

    def summary(self) -> str:
        return "\n".join(
            f"  {t['task_id']}[{t['map_index']}] {t['state']} try={t['try_number']} "
            f"seen={self.seen_states.get((t['task_id'], t['map_index']))}"
            for t in sorted(self.task_instances, key=lambda t: (t["task_id"], t["map_index"]))
        )


def watch_runs(
    rest: AirflowREST,
    runs: dict[str, str],
    timeout: float,
    interval: float = 1.0,
    stack: AirflowStack | None = None,
) -> dict[str, RunResult]:
    """Poll several runs until all are finished, recording each task instance's states on the way.

    :param runs: ``{dag_id: run_id}``.
    :raises TimeoutError: with the task instances of the unfinished runs and the services' logs.
    """
    seen: dict[str, dict[tuple[str, int], list[str]]] = {dag_id: {} for dag_id in runs}
    done: dict[str, RunResult] = {}
    deadline = time.monotonic() + timeout
    while True:
        for dag_id, run_id in runs.items():
            if dag_id in done:
                continue
            run = rest.dag_run(dag_id, run_id)
            tis = rest.task_instances(dag_id, run_id)
            for ti in tis:
                states = seen[dag_id].setdefault((ti["task_id"], ti["map_index"]), [])
                if ti["state"] and (not states or states[-1] != ti["state"]):
                    states.append(ti["state"])
            if run["state"] in TERMINAL_RUN_STATES:
                done[dag_id] = RunResult(dag_id, run_id, run, tis, seen[dag_id])
        if len(done) == len(runs):
            return done
        if stack is not None:
            stack.check_alive()
        if time.monotonic() >= deadline:
            pending = {d: r for d, r in runs.items() if d not in done}
            details = "\n".join(
                f"{d}/{r}:\n" + RunResult(d, r, {}, rest.task_instances(d, r), seen[d]).summary()
                for d, r in pending.items()
            )
            raise TimeoutError(
                f"runs not finished after {timeout:.0f}s:\n{details}\n"
                + (stack.diagnostics(30) if stack else "")
            )
        time.sleep(interval)
