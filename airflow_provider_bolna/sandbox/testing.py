"""Start/stop a sandbox subprocess for tests, benchmarks and chaos runs.

>>> with SandboxServer(db_path="/tmp/s.db", latency_ms=20, seed=7) as server:
...     httpx.get(f"{server.url}/sip-trunks/trunks", headers=server.auth_headers)
...     server.admin.config(fail_rate=0.2)
...     server.admin.counters()

Only imports the standard library and httpx (never Airflow).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from typing_extensions import Self  # typing.Self: Python 3.11+

from . import ADMIN_PREFIX, DEFAULT_API_KEY, PID_HEADER
from .config import SWITCHES, SandboxConfig

CONN_ID_ENV = "AIRFLOW_CONN_BOLNA_DEFAULT"
_START_ATTEMPTS = 3


class _ExitedEarly(Exception):
    """The server process ended before it became healthy."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def knob_args(knobs: dict[str, Any]) -> list[str]:
    """CLI arguments for ``knobs`` (names as in :class:`~.config.SandboxConfig`)."""
    unknown = set(knobs) - set(SandboxConfig.knob_names())
    if unknown:
        raise TypeError(f"unknown sandbox knob(s): {sorted(unknown)}")
    args: list[str] = []
    for name, value in knobs.items():
        flag = name.replace("_", "-")
        if name in SWITCHES:
            args.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            args += [f"--{flag}", str(value)]
    return args


class SandboxAdmin:
    """Tiny client of the admin API (``/__sandbox__``)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url + ADMIN_PREFIX, timeout=timeout, trust_env=False)

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """The JSON answer; ``httpx.HTTPStatusError`` quoting the sandbox's message on an error."""
        response = self._http.request(method, path, json=body, params=params)
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"sandbox admin {method} {path}: {response.status_code} {response.text[:300]}",
                request=response.request,
                response=response,
            )
        return response.json()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"}``."""
        return self._call("GET", "/health")

    def health_pid(self, timeout: float = 0.5) -> int | None:
        """The process id of the server answering health (None if it does not say)."""
        response = self._http.get("/health", timeout=timeout)
        response.raise_for_status()
        pid = response.headers.get(PID_HEADER)
        return int(pid) if pid else None

    def config(self, **knobs: Any) -> dict[str, Any]:
        """Change the given knobs (if any) and return the full current config."""
        return self._call("PATCH", "/config", knobs) if knobs else self._call("GET", "/config")

    def counters(self) -> dict[str, Any]:
        """Request, fault and write counters (see ``docs/sandbox.md``)."""
        return self._call("GET", "/counters")

    def reset_counters(self) -> dict[str, Any]:
        """Zero the counters only."""
        return self._call("POST", "/counters/reset")

    def reset(self) -> dict[str, Any]:
        """Delete all state (agents and records too), zero counters, reseed the fault streams."""
        return self._call("POST", "/reset")

    def audit(self) -> dict[str, Any]:
        """Invariants and summaries from the SQL tables: duplicate names, numbers on several
        trunks, names created more than once, repeated create attempts, mappings."""
        return self._call("GET", "/audit")

    def create_agent(
        self, id: str | None = None, name: str | None = None, telephony_provider: str | None = None
    ) -> dict[str, Any]:
        """Create one agent (id: 32 hex characters unless given) and return it."""
        spec = {
            k: v
            for k, v in (("id", id), ("name", name), ("telephony_provider", telephony_provider))
            if v is not None
        }
        return self._call("POST", "/agents", spec)

    def create_agents(self, specs: int | list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create ``specs`` agents (a count, or a list of ``{"id"?, "name"?, ...}``), all or nothing."""
        items = [{} for _ in range(specs)] if isinstance(specs, int) else specs
        return self._call("POST", "/agents", items)

    def agents(self) -> list[dict[str, Any]]:
        """Every agent: ``id, name, telephony_provider, created_at, updated_at, phone_number_ids``."""
        return self._call("GET", "/agents")

    def mappings(self) -> list[dict[str, Any]]:
        """Every mapped number: ``phone_number_id, phone_number, trunk_id, agent_id``."""
        return self._call("GET", "/mappings")

    def attempts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every write attempt received (of one ``kind``), in arrival order."""
        return self._call("GET", "/attempts", params={"kind": kind} if kind else None)

    def reset_attempts(self) -> int:
        """Forget the recorded write attempts (state kept); return how many there were."""
        return int(self._call("POST", "/attempts/reset")["cleared"])

    def trunk_history(self) -> list[dict[str, Any]]:
        """Every trunk ever created: ``id, name, created_name, created_at, deleted_at``."""
        return self._call("GET", "/trunk-history")

    def number_history(self) -> list[dict[str, Any]]:
        """Every number ever added, removed ones included (``deleted: true``)."""
        return self._call("GET", "/number-history")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


class SandboxServer:
    """A sandbox running as a subprocess on ``127.0.0.1:<free port>``.

    ``db_path`` defaults to a file in a private temporary directory that also holds the server
    log (:attr:`log_path`) and is removed by :meth:`stop`;
    ``knobs`` are initial :class:`~.config.SandboxConfig` values (``api_key`` included).
    The port is kept across :meth:`restart`, so :attr:`url` stays valid.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 15.0,
        log_level: str = "warning",
        **knobs: Any,
    ) -> None:
        knob_args(knobs)  # fail fast on a typo
        self.knobs: dict[str, Any] = {"api_key": DEFAULT_API_KEY, **knobs}
        self._tmpdir: str | None = tempfile.mkdtemp(prefix="bolna-sandbox-")
        self.db_path = str(db_path) if db_path is not None else str(Path(self._tmpdir) / "sandbox.db")
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.log_path = Path(self._tmpdir) / "server.log"
        self._port_is_free_to_change = port is None
        self._process: subprocess.Popen[bytes] | None = None
        self.admin = SandboxAdmin(self.url)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:41234``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The bearer key the server was started with (changes via admin are not tracked)."""
        return str(self.knobs["api_key"])

    @property
    def auth_headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <key>"}``."""
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def pid(self) -> int | None:
        """Process id of the running server, if any."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line used to start the server."""
        return [
            sys.executable,
            "-m",
            "airflow_provider_bolna.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--db",
            self.db_path,
            "--log-level",
            self.log_level,
            *knob_args(self.knobs),
        ]

    def start(self) -> SandboxServer:
        """Start the subprocess and wait until ``/__sandbox__/health`` answers.

        If the process dies before it is healthy (typically: the free port was taken in the
        meantime) and the port was picked automatically and never served, a new port is tried.
        """
        if self.running:
            return self
        if self._tmpdir is None:
            raise RuntimeError("this SandboxServer was stopped; create a new one (or use restart())")
        attempts = _START_ATTEMPTS if self._port_is_free_to_change else 1
        for attempt in range(1, attempts + 1):
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            try:
                self._wait_healthy()
                break
            except _ExitedEarly:
                if attempt == attempts:
                    raise RuntimeError(f"sandbox exited at start-up:\n{self.log_tail()}") from None
                self.port = free_port(self.host)
                self.admin.close()
                self.admin = SandboxAdmin(self.url)
        self._port_is_free_to_change = False
        return self

    def _wait_healthy(self) -> None:
        """Poll health until *our* process answers (checked by pid), it dies, or time is up."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise _ExitedEarly
            try:
                if self.admin.health_pid() == self._process.pid:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self._terminate()
        raise RuntimeError(f"sandbox not healthy after {self.startup_timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log file."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the server (crash simulation); the database file stays."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def restart(self, **knobs: Any) -> SandboxServer:
        """Stop and start again on the same port and database, optionally with new knobs."""
        knob_args(knobs)
        self._terminate()
        self.knobs.update(knobs)
        return self.start()

    def stop(self) -> None:
        """Stop the server for good and remove its temporary directory (log, DB if defaulted)."""
        self._terminate()
        self.admin.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    def reset_to_defaults(self) -> None:
        """Delete all state and restore every knob to its start-up value."""
        self.admin.reset()
        self.admin.config(**{**SandboxConfig().to_dict(), **self.knobs})

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` with the base URL and bearer key set (caller closes it)."""
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(base_url=self.url, headers=self.auth_headers, trust_env=False, **kwargs)

    # ------------------------------------------------------------------ what the client did
    def write_attempts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every write request the server received (of one ``kind``, a key of
        ``counters()["writes"]``), in arrival order, with ``status`` (``"dropped"`` for a
        response cut after commit, ``None`` if it never finished), ``committed`` and ``fault``."""
        return self.admin.attempts(kind)

    def attempts_by(self, kind: str, *fields: str) -> Counter[Any]:
        """Write attempts of ``kind`` counted by one record field (keys are its values) or
        several (keys are tuples), e.g. ``attempts_by("add_number", "trunk_id", "digits")``."""

        def key(record: dict[str, Any]) -> Any:
            return record[fields[0]] if len(fields) == 1 else tuple(record[f] for f in fields)

        return Counter(key(record) for record in self.write_attempts(kind))

    def create_attempts_by_name(self) -> Counter[str]:
        """Create-trunk POSTs received per trunk name: refused (409, 400), failed by an injected
        fault (403/429/5xx before the handler) and lost after commit included."""
        return self.attempts_by("create_trunk", "trunk_name")

    def trunks_by_name(self, include_deleted: bool = True) -> Counter[str]:
        """Trunks per name (the current name, or the last one of a deleted trunk), deleted ones
        included unless ``include_deleted`` is false."""
        return Counter(
            t["name"] for t in self.admin.trunk_history() if include_deleted or t["deleted_at"] is None
        )

    def add_number_attempts_by_trunk(self) -> Counter[tuple[str, str]]:
        """Add-number POSTs received per ``(trunk_id, digits)`` (digits: the number without ``+``)."""
        return self.attempts_by("add_number", "trunk_id", "digits")

    def numbers_by_trunk(self, include_deleted: bool = True) -> Counter[tuple[str, str]]:
        """Numbers ever added per ``(trunk_id, digits)``, removed ones included unless
        ``include_deleted`` is false (inline numbers of a create included)."""
        return Counter(
            (n["trunk_id"], n["digits"])
            for n in self.admin.number_history()
            if include_deleted or not n["deleted"]
        )

    def delete_attempts_by_trunk(self) -> Counter[str]:
        """Delete-trunk requests received per trunk id."""
        return self.attempts_by("delete_trunk", "trunk_id")

    def remove_number_attempts_by_number(self) -> Counter[tuple[str, str]]:
        """Remove-number requests received per ``(trunk_id, phone_number_id)``."""
        return self.attempts_by("remove_number", "trunk_id", "phone_number_id")

    def agent_update_attempts_by_agent(self) -> Counter[str]:
        """``PATCH /v2/agent/{agent_id}`` requests received per agent id."""
        return self.attempts_by("update_agent", "agent_id")

    def inbound_setup_attempts_by_number(self) -> Counter[str]:
        """``POST /inbound/setup`` requests received per ``phone_number_id``."""
        return self.attempts_by("inbound_setup", "phone_number_id")

    def inbound_unlink_attempts_by_number(self) -> Counter[str]:
        """``POST /inbound/unlink`` requests received per ``phone_number_id``."""
        return self.attempts_by("inbound_unlink", "phone_number_id")

    def inbound_mappings(self) -> dict[str, str]:
        """``{phone_number_id: agent_id}`` of every mapped number."""
        return {m["phone_number_id"]: m["agent_id"] for m in self.admin.mappings()}

    def agent_providers(self) -> dict[str, str | None]:
        """``{agent_id: telephony_provider}`` of every agent (None until set)."""
        return {a["id"]: a["telephony_provider"] for a in self.admin.agents()}

    # ------------------------------------------------------------------ Airflow
    def airflow_conn_json(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_<ID>`` value (JSON) for the Bolna connection type."""
        return json.dumps({"conn_type": "bolna", "host": self.url, "password": self.api_key, "extra": extra})

    def airflow_conn_uri(self, **extra: Any) -> str:
        """The same connection in the URI form ``Connection.get_uri()`` produces.

        Parsed by Airflow to ``host="http://127.0.0.1:<port>"``, ``port=None``, like the JSON form.
        """
        scheme, hostport = self.url.split("://", 1)
        query = f"/?__extra__={quote(json.dumps(extra), safe='')}" if extra else ""
        return f"bolna://{scheme}://:{quote(self.api_key, safe='')}@{quote(hostport, safe='')}{query}"
