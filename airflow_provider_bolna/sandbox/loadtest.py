"""Throughput of a zero-latency sandbox over loopback (httpx, concurrent, time-bounded).

``python -m airflow_provider_bolna.sandbox.loadtest [--url URL] [--seconds 5] [--procs 2]
[--concurrency 32] [--client httpx|raw] [--scenario list-small get-trunk create-trunk]``

Without ``--url`` a fresh sandbox (temp file DB, WAL) is started. Each scenario runs for
``--seconds`` across ``--procs`` client processes with ``--concurrency`` in-flight requests
each, and prints requests/s and the status histogram. Loopback only: the URL must be local.

When the sandbox was started here (Linux), ``rps_per_server_cpu_s`` is also reported:
requests divided by the CPU seconds the server process used, i.e. the capacity of one fully
available core. It is robust to a busy machine, where wall-clock rps mostly measures how much
CPU the clients and the server happened to get.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import DEFAULT_API_KEY

Request = tuple[str, str, Any]  # method, path, json body
SCENARIOS = ("list-small", "get-trunk", "create-trunk")
LIST_SIZE = 10


def trunk_body(name: str) -> dict[str, Any]:
    """A minimal valid userpass create body."""
    return {
        "name": name,
        "provider": "loadtest",
        "auth_type": "userpass",
        "auth_username": "u",
        "auth_password": "p",
        "gateways": [{"gateway_address": "sip.example.com"}],
    }


def _requests(scenario: str, trunk_ids: list[str], worker: str) -> Callable[[int], Request]:
    if scenario == "list-small":
        return lambda i: ("GET", "/sip-trunks/trunks", None)
    if scenario == "get-trunk":
        return lambda i: ("GET", f"/sip-trunks/trunks/{trunk_ids[i % len(trunk_ids)]}", None)
    return lambda i: ("POST", "/sip-trunks/trunks", trunk_body(f"lt-{worker}-{i}"))


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams.

    It exists to measure the *server*: httpx's async client tops out at a few hundred
    requests/s on one core, well below what the sandbox serves.
    """

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self._auth = f"Authorization: Bearer {key}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any) -> int:
        """Send one request and read the whole response; return the status code."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        ).encode()
        self._writer.write(head + self._auth + b"\r\n" + payload)
        raw_head = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
        )
        await self._reader.readexactly(length)
        return int(lines[0].split(" ", 2)[1])

    async def close(self) -> None:
        """Close the socket."""
        if self._writer is not None:
            self._writer.close()


async def _drive(
    url: str, key: str, client_kind: str, make: Callable[[int], Request], seconds: float, concurrency: int
) -> tuple[Counter[str], float]:
    statuses: Counter[str] = Counter()
    counter = itertools.count()
    parts = urlsplit(url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, trust_env=False, timeout=30
    )

    async def worker() -> None:
        raw = RawConnection(parts.hostname or "127.0.0.1", parts.port or 80, key)
        try:
            while time.perf_counter() < deadline:
                method, path, body = make(next(counter))
                try:
                    if client_kind == "raw":
                        statuses[str(await raw.request(method, path, body))] += 1
                    else:
                        response = await client.request(method, path, json=body)
                        statuses[str(response.status_code)] += 1
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
                    statuses[type(exc).__name__] += 1
        finally:
            await raw.close()

    started = time.perf_counter()
    deadline = started + seconds
    async with client:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, time.perf_counter() - started


def _proc_main(args: tuple[str, str, str, str, list[str], float, int, int]) -> tuple[dict[str, int], float]:
    url, key, client_kind, scenario, trunk_ids, seconds, concurrency, index = args
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - optional speed-up
        pass
    make = _requests(scenario, trunk_ids, f"{os.getpid()}-{index}")
    statuses, elapsed = asyncio.run(_drive(url, key, client_kind, make, seconds, concurrency))
    return dict(statuses), elapsed


def process_cpu_s(pid: int | None) -> float | None:
    """user+system CPU seconds of process ``pid`` (Linux ``/proc``), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seed(url: str, key: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, trust_env=False) as client:
        ids = []
        for i in range(count):
            response = client.post("/sip-trunks/trunks", json=trunk_body(f"seed-{time.time_ns()}-{i}"))
            response.raise_for_status()
            ids.append(response.json()["id"])
        return ids


def run(
    url: str,
    key: str,
    scenarios: list[str],
    seconds: float,
    procs: int,
    concurrency: int,
    client_kind: str = "httpx",
    server_pid: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Run each scenario; return ``{scenario: {"rps": float, "statuses": {...}}}``."""
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadtest only targets a loopback sandbox")
    trunk_ids = _seed(url, key, LIST_SIZE)
    results: dict[str, dict[str, Any]] = {}
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        for scenario in scenarios:
            cpu_before = process_cpu_s(server_pid)
            parts = pool.map(
                _proc_main,
                [(url, key, client_kind, scenario, trunk_ids, seconds, concurrency, i) for i in range(procs)],
            )
            cpu_after = process_cpu_s(server_pid)
            total: Counter[str] = Counter()
            for statuses, _ in parts:
                total.update(statuses)
            requests = sum(total.values())
            elapsed = max(part_elapsed for _, part_elapsed in parts)
            results[scenario] = {"rps": round(requests / elapsed), "statuses": dict(total)}
            if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                results[scenario]["rps_per_server_cpu_s"] = round(requests / (cpu_after - cpu_before))
    return results


def main(argv: list[str] | None = None) -> None:
    """CLI entry point; prints JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="running sandbox (default: start one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="httpx.AsyncClient (realistic) or a raw keep-alive client (server capacity)",
    )
    args = parser.parse_args(argv)
    options = (args.scenario, args.seconds, args.procs, args.concurrency, args.client)
    if args.url:
        results = run(args.url, args.api_key, *options)
    else:
        from .testing import SandboxServer

        with SandboxServer(api_key=args.api_key) as server:
            results = run(server.url, args.api_key, *options, server_pid=server.pid)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
