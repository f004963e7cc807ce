"""Micro-benchmarks behind two findings of the report (seconds, no Airflow run needed).

    python -m bench.micro masking   # cost of bulk-registering passwords as the masker grows
    python -m bench.micro listing   # memory/CPU of one account-wide list response vs account size
    python -m bench.micro listing-http [N [CODE_ROOT ...]] [--record]   # list_trunks(names=) over HTTP, N trunks
    python -m bench.micro httpx     # client CPU per request: httpx sync vs async (concurrency 1, 8)

``masking`` times ``provisioning.masking._bulk_add`` for one page of 500 passwords on a masker
that already holds k passwords (what batch k/500 pays when every batch runs in one process:
``airflow dags test``, ``python -m airflow_provider_bolna.provisioning``, tests).

``listing`` builds the body of ``GET /sip-trunks/trunks`` for an account of S trunks (a real
sandbox trunk, replicated with distinct names) and measures the two ways of keeping one batch's
500 trunks from it: decoding the whole body then filtering (the hook before item-by-item
reading), and the hook's item-by-item reading (peak RSS growth, CPU). ``listing-http`` measures
the hook's ``list_trunks(names=...)`` end to end against a sandbox seeded with N trunks, for one
or more source trees (``CODE_ROOT``: e.g. a checkout of an older commit, to compare). The
sandbox side (rendering S trunks) is not included.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def masking(sizes: tuple[int, ...] = (0, 5_000, 20_000, 65_000)) -> list[dict[str, Any]]:
    import random
    import string

    from airflow.sdk._shared.secrets_masker import _secrets_masker

    from airflow_provider_bolna.provisioning.masking import _bulk_add

    masker = _secrets_masker()
    rng = random.Random(1)

    def pw() -> str:
        return "pw-" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(16))

    out = []
    have = 0
    for k in sizes:
        if k > have:
            _bulk_add(masker, [pw() for _ in range(k - have)])
            have = k
        page = [pw() for _ in range(500)]
        rss0, c0 = _rss_mb(), _cpu()
        t0 = time.perf_counter()
        _bulk_add(masker, page)
        wall = time.perf_counter() - t0
        have += 500
        line = "customer 42 failed: gateways.0.port: must be an integer between 1 and 65535 (POST /sip-trunks/trunks)"
        t1 = time.perf_counter()
        for _ in range(20):
            masker.redact(line)
        redact_ms = (time.perf_counter() - t1) / 20 * 1000
        out.append(
            {
                "passwords_before": k,
                "page_compile_s": round(wall, 3),
                "page_cpu_s": round(_cpu() - c0, 3),
                "redact_one_log_line_ms": round(redact_ms, 3),
                "rss_mb": round(_rss_mb(), 1),
                "rss_growth_mb": round(_rss_mb() - rss0, 1),
                "patterns": len(masker.patterns),
            }
        )
        print(json.dumps(out[-1]), flush=True)
    return out


def _sample_trunk() -> dict[str, Any]:
    from airflow_provider_bolna.sandbox.seed import generate_customers
    from airflow_provider_bolna.sandbox.testing import SandboxServer
    from bench.naive_body import trunk_body

    row = next(generate_customers(1, seed=2026))
    with SandboxServer() as server, server.client() as client:
        created = client.post("/sip-trunks/trunks", json=trunk_body(row, inline_numbers=True))
        created.raise_for_status()
        listed = client.get("/sip-trunks/trunks")
        listed.raise_for_status()
        return listed.json()[0]


def _reset_peak() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _wanted(size: int) -> set[str]:
    return {f"cust-{i}" for i in range(size - 500 + 1, size + 1)}  # the batch's 500 names


def listing(sizes: tuple[int, ...] = (10_000, 50_000, 100_000)) -> list[dict[str, Any]]:
    """Decode one account-wide listing body held in memory and keep a batch's 500 trunks: the
    whole-body way (``json.loads``, filter, validate: the hook before item-by-item reading) and
    the hook's way (:class:`~airflow_provider_bolna.hooks.reading.JsonItems`, 64 KiB chunks).
    Each measurement runs in a fresh process."""
    import gc
    import subprocess
    import tempfile

    trunk = _sample_trunk()
    out = []
    for size in sizes:
        items = []
        for i in range(size):
            t = dict(trunk)
            t["id"] = f"{i:032x}"
            t["name"] = f"cust-{i + 1}"
            items.append(t)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            f.write(json.dumps(items, separators=(",", ":")).encode())
        del items
        gc.collect()
        for way in ("whole-body", "item-by-item"):
            done = subprocess.run(
                [sys.executable, "-m", "bench.micro", "listing-one", way, f.name, str(size)],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            out.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(out[-1]), flush=True)
        Path(f.name).unlink()
    return out


def listing_one(way: str, path: str, size: int) -> None:
    """One measurement of :func:`listing` (in its own process)."""
    from airflow_provider_bolna.hooks.reading import JsonItems
    from airflow_provider_bolna.models import SIPTrunk

    body = Path(path).read_bytes()
    wanted = _wanted(size)
    rss0 = _rss_mb()
    _reset_peak()
    c0, t0 = _cpu(), time.perf_counter()
    if way == "whole-body":
        data = json.loads(body)  # what httpx Response.json() does
        trunks = [SIPTrunk.model_validate(d) for d in data if isinstance(d, dict) and d.get("name") in wanted]
    else:
        reader = JsonItems(
            lambda d: SIPTrunk.model_validate(d) if isinstance(d, dict) and d.get("name") in wanted else None
        )
        for start in range(0, len(body), 65536):
            reader.feed(body[start : start + 65536])
        trunks = reader.result()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    print(
        json.dumps(
            {
                "way": way,
                "account_trunks": size,
                "body_mb": round(len(body) / 2**20, 1),
                "seconds": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "peak_rss_growth_mb": round(_peak_mb() - rss0, 1),
                "kept": len(trunks),
            }
        )
    )


def listing_http(
    size: int = 100_000, code_roots: tuple[str, ...] = (), repeats: int = 2
) -> list[dict[str, Any]]:
    """``BolnaHook.list_trunks(names=<500 names>)`` over real HTTP against a sandbox holding
    ``size`` trunks: client wall time and peak RSS growth, each call in a fresh process.

    :param code_roots: source trees of ``airflow_provider_bolna`` to compare (e.g. a checkout of
        an older commit); default: this one.
    """
    import subprocess
    import tempfile

    from airflow_provider_bolna.sandbox.seed import generate_customers
    from airflow_provider_bolna.sandbox.store import Store
    from airflow_provider_bolna.sandbox.testing import SandboxServer
    from airflow_provider_bolna.sandbox.validation import validate_create
    from bench.naive_body import trunk_body

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "listing.db")
        store = Store(db)
        body = trunk_body(next(generate_customers(1, seed=2026)), inline_numbers=True)
        store.import_trunks(
            validate_create(
                {
                    **body,
                    "name": f"cust-{i + 1}",
                    "phone_numbers": [{"phone_number": f"+1415{i:07d}"}],
                }
            )
            for i in range(size)
        )
        store.close()
        with SandboxServer(db_path=db) as server:
            for root in code_roots or (str(REPO),):
                for _ in range(repeats):
                    done = subprocess.run(
                        [
                            sys.executable,
                            str(BENCH / "micro.py"),
                            "listing-http-one",
                            root,
                            server.url,
                            server.api_key,
                            str(size),
                        ],
                        cwd=tmp,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    out.append(json.loads(done.stdout.strip().splitlines()[-1]))
                    print(json.dumps(out[-1]), flush=True)
    return out


def record_listing(rows: list[dict[str, Any]], results_path: Path) -> None:
    """Keep these ``listing-http`` rows in ``results.json`` (``listing_http``; the report's
    listing table), each with its source tree's git commit and the load average."""
    import os
    import subprocess
    from datetime import UTC, datetime

    def commit(root: str) -> str:
        done = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        return done.stdout.strip() or "?"

    results = json.loads(results_path.read_text()) if results_path.exists() else {"meta": {}, "runs": []}
    stamp = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_after": round(os.getloadavg()[0], 2),
    }
    results.setdefault("listing_http", []).extend(
        {**row, "commit": commit(row["code"]), **stamp} for row in rows
    )
    results_path.write_text(json.dumps(results, indent=1, default=str))


def listing_http_one(root: str, url: str, key: str, size: int) -> None:
    """One measurement of :func:`listing_http` (in its own process, code from ``root``)."""
    sys.path.insert(0, root)
    from pydantic import SecretStr

    import airflow_provider_bolna
    from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings

    assert airflow_provider_bolna.__file__.startswith(root), airflow_provider_bolna.__file__
    hook = BolnaHook(
        settings=BolnaSettings(api_key=SecretStr(key), base_url=url, timeout=300, requests_per_minute=0)
    )
    hook.get_trunk  # noqa: B018 - imports done
    wanted = _wanted(size)
    rss0 = _rss_mb()
    _reset_peak()
    c0, t0 = _cpu(), time.perf_counter()
    trunks = hook.list_trunks(names=wanted)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    print(
        json.dumps(
            {
                "code": root,
                "account_trunks": size,
                "seconds": round(wall, 3),
                "client_cpu_s": round(cpu, 3),
                "peak_rss_growth_mb": round(_peak_mb() - rss0, 1),
                "kept": len(trunks),
            }
        )
    )


def httpx_cost(requests: int = 2000) -> list[dict[str, Any]]:
    """Client CPU per GET against the sandbox: the sync client (the loop peer) vs the async client
    (our hook) at concurrency 1 and 8. Only the client process's CPU is counted."""
    import asyncio

    import httpx

    from airflow_provider_bolna.sandbox.testing import SandboxServer

    out = []

    def record(kind: str, concurrency: int, c0: float, t0: float) -> None:
        out.append(
            {
                "client": kind,
                "concurrency": concurrency,
                "requests": requests,
                "cpu_ms_per_request": round((_cpu() - c0) * 1000 / requests, 3),
                "wall_ms_per_request": round((time.perf_counter() - t0) * 1000 / requests, 3),
            }
        )
        print(json.dumps(out[-1]), flush=True)

    with SandboxServer() as server:
        with httpx.Client(base_url=server.url, headers=server.auth_headers) as client:
            client.get("/sip-trunks/trunks/warm-up")
            c0, t0 = _cpu(), time.perf_counter()
            for _ in range(requests):
                client.get("/sip-trunks/trunks/nope")
            record("httpx.Client", 1, c0, t0)
        for concurrency in (1, 8):

            async def go(concurrency: int = concurrency) -> None:
                async with httpx.AsyncClient(base_url=server.url, headers=server.auth_headers) as client:
                    await client.get("/sip-trunks/trunks/warm-up")
                    semaphore = asyncio.Semaphore(concurrency)

                    async def one() -> None:
                        async with semaphore:
                            await client.get("/sip-trunks/trunks/nope")

                    c0, t0 = _cpu(), time.perf_counter()
                    await asyncio.gather(*(one() for _ in range(requests)))
                    record("httpx.AsyncClient", concurrency, c0, t0)

            asyncio.run(go())
    return out


if __name__ == "__main__":
    what, args = (sys.argv[1] if len(sys.argv) > 1 else "masking"), sys.argv[2:]
    if what == "listing-one":
        listing_one(args[0], args[1], int(args[2]))
    elif what == "listing-http-one":
        listing_http_one(args[0], args[1], args[2], int(args[3]))
    elif what == "listing-http":
        record = "--record" in args
        args = [a for a in args if a != "--record"]
        rows = listing_http(int(args[0]) if args else 100_000, tuple(args[1:]))
        if record:
            record_listing(rows, BENCH / "results.json")
    else:
        {"masking": masking, "listing": listing, "httpx": httpx_cost}[what]()
