"""The end-to-end stack on CeleryExecutor: Redis (Debian's ``redis-server``) and Celery workers.

:class:`CeleryStack` is :class:`~tests.e2e.stack.AirflowStack` (api-server, scheduler,
dag-processor, triggerer on PostgreSQL, every socket on loopback) with ``CeleryExecutor``,
a private Redis as the broker, the metadata DB as the result backend, and ``celery worker``
processes, each its own process group (SIGKILL one to lose a "machine"). Workers run with
``--skip-serve-logs`` like the other services: the API server reads task logs from the shared
``AIRFLOW_HOME/logs``.

Only the standard library and httpx are imported here: the test process never imports Airflow.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.stack import AirflowStack, Service, free_port, wait_for

REDIS_SERVER = os.environ.get("BOLNA_E2E_REDIS_SERVER", "/usr/bin/redis-server")


def redis_server_path() -> str | None:
    """The ``redis-server`` binary, if installed (``scripts/e2e-celery-setup.sh`` installs it)."""
    if Path(REDIS_SERVER).exists():
        return REDIS_SERVER
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    """A throw-away Redis on ``127.0.0.1:<free port>``: no persistence, its own process group.

    :param workdir: its working directory.
    :param log_path: its output.
    """

    workdir: Path
    log_path: Path
    binary: str = field(default_factory=lambda: redis_server_path() or REDIS_SERVER)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start it and wait until it answers ``PING``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        wait_for(
            self.ping,
            timeout=timeout,
            interval=0.2,
            what=f"redis on port {self.port}",
            on_timeout=lambda: self.log_path.read_text(errors="replace")[-2000:],
        )
        return self

    def ping(self) -> bool:
        """Whether the server answers ``PING`` (raises if the process died)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.log_path.read_text(errors='replace')[-2000:]}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    def stop(self) -> None:
        """SIGTERM its process group, then SIGKILL."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class CeleryStack(AirflowStack):
    """:class:`AirflowStack` on ``CeleryExecutor`` with ``workers`` Celery workers of ``worker_slots`` each.

    :param broker_url: the Redis URL.
    :param workers: Celery worker processes (separate process groups).
    :param worker_slots: ``--concurrency`` of each worker.
    """

    broker_url: str = ""
    workers: int = 2
    worker_slots: int = 2

    def environ(self) -> dict[str, str]:
        env = super().environ()
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.workers * self.worker_slots * 2),
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_slots),
                # result backend: the metadata DB (Airflow's default, derived from sql_alchemy_conn)
                # --- a lost worker is noticed within a minute, not after Airflow's 5-10 min defaults
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            }
        )
        return env

    def worker_name(self, index: int) -> str:
        return f"celery-worker-{index}"

    def start_worker(self, index: int) -> Service:
        """Start ``airflow celery worker`` number ``index`` (its own process group and log)."""
        name = self.worker_name(index)
        args = [
            "celery",
            "worker",
            "--concurrency",
            str(self.worker_slots),
            "--celery-hostname",
            f"worker{index}@%h",
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
        ]
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
        """The four Airflow services, then the workers; wait until every worker says it is ready."""
        super().start(timeout=timeout)
        workers = [self.start_worker(index) for index in range(1, self.workers + 1)]

        def ready() -> bool:
            self.check_alive()
            return all(" ready." in w.log_path.read_text(errors="replace") for w in workers)

        wait_for(
            ready, timeout=timeout, interval=1.0, what="Celery workers ready", on_timeout=self.diagnostics
        )

    def kill_worker(self, index: int) -> tuple[float, list[int]]:
        """Lose worker ``index`` like a machine: SIGKILL it and every process it started.

        Airflow's task supervisor puts each task process in a process group of its own, so
        killing the worker's group is not enough: the whole tree of descendants is killed.

        :return: when, and the pids killed.
        """
        service = self.services.pop(self.worker_name(index))
        tree = [service.process.pid, *descendants(service.process.pid)]
        killed_at = time.time()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        service.kill()
        return killed_at, tree


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the command may contain spaces and parens
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
