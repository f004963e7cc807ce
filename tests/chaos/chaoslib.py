"""Tools of the chaos suite: customers with distinctive secrets, a secret scanner, the
convergence check on the sandbox's own tables, 429 bursts, a late-delivery proxy, a
throw-away PostgreSQL cluster and the engine's command line.

Nothing here talks to anything but 127.0.0.1, and every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna.sandbox.seed import (
    create_customers_table,
    generate_customers,
    insert_customers,
)

REPO = Path(__file__).resolve().parents[2]
#: Every SIP password of the suite starts with this and ends with ``PW_TAIL`` (random per
#: session), so any leaked head or tail of any password is found by a plain substring search.
PW_HEAD = f"chaosPW{secrets.token_hex(4)}"
PW_TAIL = f"{secrets.token_hex(4)}WPsoahc"
STATE_TABLE = "bolna_provisioning_state"


def new_api_key(label: str) -> str:
    """A distinctive bearer key (``sk-chaos-<label>-<random>``)."""
    return f"sk-chaos-{label}-{secrets.token_hex(16)}"


def sip_password(customer_id: Any) -> str:
    """A distinctive SIP password for one customer."""
    return f"{PW_HEAD}{customer_id}x{secrets.token_hex(6)}{PW_TAIL}"


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- customers


@dataclass
class Customers:
    """A SQLite customer database (the seed's table) with distinctive SIP passwords.

    :param path: the database file.
    :param conn_id: the Airflow connection id it is registered as (``AIRFLOW_CONN_*``).
    """

    path: Path
    conn_id: str = "bolna_customers"
    table: str = "customers"
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def query(self) -> str:
        return f"SELECT * FROM {self.table}"

    def airflow_conn(self) -> str:
        return json.dumps({"conn_type": "sqlite", "host": str(self.path)})

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def seed(self, count: int, seed: int = 0, invalid: int = 0, start_id: int = 1) -> None:
        """Insert ``count`` generated customers; every password is replaced by a distinctive one."""
        rows = []
        for row in generate_customers(count, invalid, seed, start_id):
            if row["auth_password"] is not None:
                row["auth_password"] = sip_password(row["customer_id"])
            rows.append(row)
            self.rows[str(row["customer_id"])] = row
        conn = self.connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            create_customers_table(conn, self.table)
            insert_customers(conn, rows, self.table)
        finally:
            conn.close()

    def expected(self) -> dict[str, set[str]]:
        """customer key → the digits of its numbers, for every valid row (mapped like the engine)."""
        from airflow_provider_bolna.provisioning.mapping import RowMapper

        mapper = RowMapper()
        out = {}
        for key, row in self.rows.items():
            mapped = mapper.map_row(row)
            if mapped.valid and mapped.status == "active":
                assert mapped.spec is not None
                out[key] = {n.key for n in mapped.spec.phone_numbers}
        return out

    def state(self) -> dict[str, dict[str, Any]]:
        """The state table, ``{}`` when it does not exist."""
        return read_state(self.connect)

    def passwords(self) -> list[str]:
        return [r["auth_password"] for r in self.rows.values() if r.get("auth_password")]


def read_state(connect: Callable[[], Any], table: str = STATE_TABLE) -> dict[str, dict[str, Any]]:
    conn = connect()
    try:
        cur = conn.cursor()
        try:
            cur.execute(
                f"SELECT customer_id, trunk_name, trunk_id, spec_hash, secret_hash, status, action, last_error FROM {table}"
            )
        except Exception:  # noqa: BLE001 - no table yet
            return {}
        names = [d[0] for d in cur.description]
        return {str(r[0]): dict(zip(names, r)) for r in cur.fetchall()}
    finally:
        conn.close()


# ---------------------------------------------------------------------- the sandbox's own tables


@dataclass
class Verdict:
    """Convergence of one scenario, from the sandbox's tables and the state table."""

    customers: int
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    extra_trunks: list[str] = field(default_factory=list)
    wrong_numbers: list[str] = field(default_factory=list)
    bad_state: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.extra_trunks or self.wrong_numbers or self.bad_state)

    def explain(self) -> str:
        return (
            f"lost {len(self.lost)} {self.lost[:10]}, duplicates {self.duplicates}, "
            f"extra trunks {self.extra_trunks[:10]}, wrong numbers {self.wrong_numbers[:10]}, "
            f"bad state rows {self.bad_state[:10]}, audit {self.audit}"
        )


def sandbox_tables(db_path: str | Path) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """Read the sandbox's SQLite file directly: name → trunk ids, trunk id → active number digits."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        names: dict[str, list[str]] = {}
        for trunk_id, name in conn.execute("SELECT id, name FROM trunks"):
            names.setdefault(name, []).append(trunk_id)
        numbers: dict[str, set[str]] = {}
        for trunk_id, digits in conn.execute("SELECT trunk_id, digits FROM phone_numbers WHERE deleted = 0"):
            numbers.setdefault(trunk_id, set()).add(digits)
        return names, numbers
    finally:
        conn.close()


def verify(
    server: Any,
    expected: Mapping[str, set[str]],
    state: Mapping[str, Mapping[str, Any]],
    name_template: str = "cust-{customer_id}",
    invalid: Iterable[str] = (),
) -> Verdict:
    """Every expected customer has exactly one trunk with exactly its numbers, and a state row
    ``provisioned`` pointing at that trunk; no other trunk exists; the audit is clean; every
    invalid customer has a ``failed`` row with a reason and no trunk."""
    audit = server.admin.audit()
    names, numbers = sandbox_tables(server.db_path)
    verdict = Verdict(
        customers=len(expected),
        audit={k: audit[k] for k in ("trunks", "numbers")},
        invalid=[str(k) for k in invalid],
    )
    verdict.duplicates = (
        len(audit["duplicate_trunk_names"])
        + len(audit["numbers_on_multiple_active_trunks"])
        + audit["active_numbers_without_trunk"]
        + sum(len(ids) - 1 for ids in names.values() if len(ids) > 1)
    )
    wanted_names = {name_template.format(customer_id=k): k for k in expected}
    verdict.extra_trunks = sorted(n for n in names if n not in wanted_names)
    for key, digits in expected.items():
        name = name_template.format(customer_id=key)
        ids = names.get(name, [])
        row = state.get(key)
        if not ids:
            verdict.lost.append(key)
            continue
        if numbers.get(ids[0], set()) != digits:
            verdict.wrong_numbers.append(key)
        if row is None or row["status"] != "provisioned" or row["trunk_id"] != ids[0] or not row["spec_hash"]:
            verdict.bad_state.append(key)
    for key in verdict.invalid:
        row = state.get(key)
        if row is None or row["status"] != "failed" or not row["last_error"]:
            verdict.bad_state.append(key)
        if name_template.format(customer_id=key) in names:
            verdict.extra_trunks.append(key)
    return verdict


def unrecorded_trunks(server: Any, state: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Trunks in the sandbox's tables that no ``provisioned`` state row points at: created by a
    run that died before recording them (a ``pending`` or ``failed`` row does not record a trunk)."""
    names, _ = sandbox_tables(server.db_path)
    recorded = {row["trunk_id"] for row in state.values() if row["status"] == "provisioned"}
    return sorted(tid for ids in names.values() for tid in ids if tid not in recorded)


def truthful_state(server: Any, state: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """State rows that claim a trunk the sandbox does not have (id unknown, or another name)."""
    names, _ = sandbox_tables(server.db_path)
    by_id = {tid: name for name, ids in names.items() for tid in ids}
    liars = []
    for key, row in state.items():
        lies = row["status"] == "provisioned" and by_id.get(row["trunk_id"]) != row["trunk_name"]
        unexplained = row["status"] == "failed" and not row["last_error"]
        if lies or unexplained:
            liars.append(key)
    return liars


class SandboxTally:
    """Counters of a sandbox summed across its restarts (they restart with the process)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.faults: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.requests = 0
        self.duplicate_names = 0

    def bank(self) -> None:
        """Add the current process's counters and zero them (call before a kill/restart)."""
        try:
            snap = self.server.admin.counters()
        except Exception:  # noqa: BLE001 - the server may already be gone
            return
        self.faults.update({k: v for k, v in snap["faults"].items() if v})
        self.writes.update({k: v for k, v in snap["writes"].items() if v})
        self.requests += snap["total_requests"]
        self.duplicate_names += snap["duplicate_names_attempted"]
        self.server.admin.reset_counters()


# ---------------------------------------------------------------------- secrets


class SecretScanner:
    """Substring search for secrets in texts, files, directory trees and databases.

    Each secret is searched whole and as its first and last 12 characters, so a leaked fragment
    (a cut, a partial mask) counts too. Hits are recorded as (place, label), never the secret.
    """

    def __init__(self) -> None:
        self.needles: dict[str, str] = {}
        self.hits: list[tuple[str, str]] = []
        self.places = 0
        self.bytes = 0
        self._pattern: re.Pattern[str] | None = None

    def add(self, label: str, secret: str) -> None:
        """Search for ``secret`` (and its head and tail) from now on."""
        if not secret:
            return
        for part, needle in (("", secret), (" head", secret[:12]), (" tail", secret[-12:])):
            if len(needle) >= 8:
                self.needles[needle] = label + part
        self._pattern = None

    def add_password_markers(self) -> None:
        """Every SIP password of the suite (their common head and tail)."""
        self.needles[PW_HEAD] = "sip password head"
        self.needles[PW_TAIL] = "sip password tail"
        self._pattern = None

    @property
    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            ordered = sorted(self.needles, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(n) for n in ordered))
        return self._pattern

    def text(self, place: str, text: str | bytes | None) -> int:
        """Scan one text; return the hits found in it."""
        if text is None:
            return 0
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.places += 1
        self.bytes += len(text)
        found = 0
        for match in self.pattern.finditer(text):
            self.hits.append((place, self.needles[match.group(0)]))
            found += 1
        return found

    def file(self, path: Path, place: str | None = None) -> int:
        try:
            data = path.read_bytes()
        except OSError:
            return 0
        return self.text(place or str(path), data)

    def tree(self, root: Path, label: str) -> int:
        """Every file under ``root``."""
        found = 0
        if root.exists():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                found += self.file(path, f"{label}/{path.relative_to(root)}")
        return found

    def sqlite(self, path: Path, label: str, tables: Iterable[str] | None = None) -> dict[str, int]:
        """Every column of every row of ``tables`` (default: all tables); hits per table."""
        per_table: dict[str, int] = {}
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            names = (
                list(tables)
                if tables is not None
                else [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            )
            for table in names:
                chunks = []
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    chunks.append("\x1f".join(_as_text(v) for v in row))
                per_table[table] = self.text(f"{label}:{table}", "\n".join(chunks))
        finally:
            conn.close()
        return per_table

    def rows(self, place: str, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.text(place, "\n".join(json.dumps(dict(r), default=str) for r in rows))

    def summary(self) -> str:
        counts = Counter(self.hits)
        return "; ".join(f"{label} in {place} ×{n}" for (place, label), n in counts.most_common(20))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# ---------------------------------------------------------------------- 429 bursts


class Bursts:
    """Switch the sandbox's rate limit on for short bursts, alternately with and without
    ``Retry-After``: ``period`` seconds apart, ``length`` seconds long, ``rate`` per minute.

    Bounded: stops after ``max_bursts`` bursts or on :meth:`stop`.
    """

    def __init__(
        self,
        server: Any,
        *,
        period: float = 8.0,
        length: float = 1.5,
        rate: float = 600,
        max_bursts: int = 200,
    ) -> None:
        self.server = server
        self.period, self.length, self.rate, self.max_bursts = period, length, rate, max_bursts
        self.with_retry_after = 0
        self.without_retry_after = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-429-bursts", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        try:
            self.server.admin.config(rate_limit_per_min=0)
        except Exception:  # noqa: BLE001, S110
            pass

    def _run(self) -> None:
        for i in range(self.max_bursts):
            if self._stop.wait(self.period - self.length):
                return
            retry_after = i % 2 == 0
            try:
                self.server.admin.config(rate_limit_per_min=self.rate, retry_after=retry_after)
            except Exception:  # noqa: BLE001, S112 - the sandbox may be restarting
                continue
            if retry_after:
                self.with_retry_after += 1
            else:
                self.without_retry_after += 1
            stopped = self._stop.wait(self.length)
            try:
                self.server.admin.config(rate_limit_per_min=0)
            except Exception:  # noqa: BLE001, S110
                pass
            if stopped:
                return


# ---------------------------------------------------------------------- late deliveries


class LateProxy:
    """An HTTP/1.1 forwarder in front of the sandbox that holds a fraction of the writes for
    ``late_s`` seconds and then delivers them *whatever the client did meanwhile*.

    The sandbox's own latency spikes happen before it reads the body, so a client that times
    out during a spike cancels the write (uvicorn reports the disconnect). Real APIs behind
    load balancers usually commit such a request anyway; this proxy reproduces that: the
    client times out, looks, and may write again while its first request is still on its way.

    :param upstream: ``(host, port)`` of the sandbox.
    :param late_rate: fraction of requests of ``methods`` held back.
    :param late_s: how long they are held.
    :param seed: seed of the choice.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        late_rate: float,
        late_s: float,
        seed: int = 0,
        methods: tuple[str, ...] = ("POST",),
    ) -> None:
        self.upstream = upstream
        self.late_rate, self.late_s, self.methods = late_rate, late_s, methods
        self._rng = random.Random(f"{seed}:late")
        self.port = 0
        self.late = Counter()  # method -> requests held back
        self.late_after_client_left = 0
        self.forwarded = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="chaos-late-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the late-delivery proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(100_000):  # requests on one keep-alive connection
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                method = lines[0].split(b" ", 1)[0].decode("latin-1")
                length = 0
                kept = [lines[0]]
                for line in lines[1:]:
                    if not line:
                        continue
                    name = line.split(b":", 1)[0].strip().lower()
                    if name == b"content-length":
                        length = int(line.split(b":", 1)[1].strip())
                    if name in (b"connection", b"keep-alive"):
                        continue
                    kept.append(line)
                body = await reader.readexactly(length) if length else b""
                request = b"\r\n".join([*kept, b"Connection: close", b"", b""]) + body
                delay = 0.0
                if method in self.methods and self._rng.random() < self.late_rate:
                    self.late[method] += 1
                    delay = self.late_s
                response, broken = await self._forward(request, delay)
                if delay and reader.at_eof():
                    self.late_after_client_left += 1
                if response is None or reader.at_eof():
                    return
                writer.write(response)
                await writer.drain()
                if broken:
                    return
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()

    async def _forward(self, request: bytes, delay: float) -> tuple[bytes | None, bool]:
        if delay:
            await asyncio.sleep(delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            return None, True
        try:
            up_writer.write(request)
            await up_writer.drain()
            raw = await up_reader.read(-1)
        except (ConnectionError, OSError):
            return None, True
        finally:
            up_writer.close()
        self.forwarded += 1
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            return None, True
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        length = next(
            (int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")),
            None,
        )
        broken = length is not None and len(body) < length
        return b"\r\n".join(lines) + b"\r\n\r\n" + body, broken


# ---------------------------------------------------------------------- PostgreSQL


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temp dir on a free port (never the shared one).

    As root, commands run as the ``postgres`` user (``runuser``), like ``scripts/postgres-up.sh``.
    """

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent.name)
        pg_ctl = shutil.which("pg_ctl") or (str(bins[-1]) if bins else None)
        if pg_ctl is None:
            raise FileNotFoundError("no PostgreSQL server binaries (pg_ctl) on this machine")
        self.bin = Path(pg_ctl).parent
        self.root = Path(tempfile.mkdtemp(prefix="bolna-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres")
        self.running = False

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)

    def init(self) -> ThrowawayPostgres:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"
        )
        return self

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def destroy(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except Exception:  # noqa: BLE001, S110
                pass
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------- the engine's command line


def engine_command(
    customers_conn: str, *, batch_size: int, concurrency: int, extra: Iterable[str] = ()
) -> list[str]:
    """``python -m airflow_provider_bolna.provisioning`` with no client-side rate limit."""
    return [
        sys.executable,
        "-m",
        "airflow_provider_bolna.provisioning",
        "--customers-conn",
        customers_conn,
        "--batch-size",
        str(batch_size),
        "--concurrency",
        str(concurrency),
        "--requests-per-minute",
        "0",
        "--json",
        "--fail-on-error",
        *extra,
    ]


def last_json(output: str) -> dict[str, Any] | None:
    """The run summary the engine prints last (``--json``), if it got that far."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def conn_extra(**overrides: Any) -> dict[str, Any]:
    """The Bolna connection extras of the chaos runs: short timeout, quick bounded retries."""
    extra = {
        "timeout": 1.0,
        "max_retries": 6,
        "retry_base_delay": 0.1,
        "retry_max_delay": 1.0,
        "max_retry_seconds": 20.0,
        "number_visibility_timeout": 2.0,
    }
    extra.update(overrides)
    return extra


def bolna_conn(url: str, api_key: str, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_BOLNA_DEFAULT`` value for ``url`` (the sandbox or a proxy in front of it)."""
    return json.dumps({"conn_type": "bolna", "host": url, "password": api_key, "extra": conn_extra(**extra)})
