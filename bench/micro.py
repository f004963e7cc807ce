"""Micro-benchmarks behind two findings of the report (seconds, no Airflow run needed).

    python -m bench.micro masking   # cost of bulk-registering passwords as the masker grows
    python -m bench.micro listing   # memory/CPU of one account-wide list response vs account size
    python -m bench.micro httpx     # client CPU per request: httpx sync vs async (concurrency 1, 8)

``masking`` times ``provisioning.masking._bulk_add`` for one page of 500 passwords on a masker
that already holds k passwords (what batch k/500 pays when every batch runs in one process:
``airflow dags test``, ``python -m airflow_provider_bolna.provisioning``, tests).

``listing`` builds the body of ``GET /sip-trunks/trunks`` for an account of S trunks (a real
sandbox trunk, replicated with distinct names) and measures what ``BolnaHook`` does with it for
one batch: decode the JSON, keep the 500 names of the batch, validate them (peak RSS growth,
CPU). The sandbox side (rendering S trunks) is not included.
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
        out.append({"passwords_before": k, "page_compile_s": round(wall, 3), "page_cpu_s": round(_cpu() - c0, 3),
                    "redact_one_log_line_ms": round(redact_ms, 3), "rss_mb": round(_rss_mb(), 1),
                    "rss_growth_mb": round(_rss_mb() - rss0, 1), "patterns": len(masker.patterns)})
        print(json.dumps(out[-1]), flush=True)
    return out


def _sample_trunk() -> dict[str, Any]:
    from airflow_provider_bolna.provisioning.seed import generate_customers
    from airflow_provider_bolna.sandbox.testing import SandboxServer
    from bench.naive_body import trunk_body

    row = next(generate_customers(1, seed=2026))
    with SandboxServer() as server, server.client() as client:
        created = client.post("/sip-trunks/trunks", json=trunk_body(row, inline_numbers=True))
        created.raise_for_status()
        listed = client.get("/sip-trunks/trunks")
        listed.raise_for_status()
        return listed.json()[0]


def listing(sizes: tuple[int, ...] = (10_000, 50_000, 100_000)) -> list[dict[str, Any]]:
    import gc

    from airflow_provider_bolna.hooks.bolna import _parse_trunk_list

    trunk = _sample_trunk()
    out = []
    for size in sizes:
        items = []
        for i in range(size):
            t = dict(trunk)
            t["id"] = f"{i:032x}"
            t["name"] = f"cust-{i + 1}"
            items.append(t)
        body = json.dumps(items, separators=(",", ":")).encode()
        del items
        gc.collect()
        wanted = {f"cust-{i}" for i in range(size - 500 + 1, size + 1)}  # the batch's 500 names
        rss0, c0, t0 = _rss_mb(), _cpu(), time.perf_counter()
        data = json.loads(body)  # what httpx Response.json() does
        rss_peak = _rss_mb()
        trunks = _parse_trunk_list(data, wanted)
        wall = time.perf_counter() - t0
        cpu = _cpu() - c0
        del data
        gc.collect()
        out.append({"account_trunks": size, "body_mb": round(len(body) / 2**20, 1), "decode_filter_validate_s": round(wall, 3),
                    "cpu_s": round(cpu, 3), "rss_growth_decoded_mb": round(rss_peak - rss0, 1), "kept": len(trunks)})
        print(json.dumps(out[-1]), flush=True)
        del body
        gc.collect()
    return out


def httpx_cost(requests: int = 2000) -> list[dict[str, Any]]:
    """Client CPU per GET against the sandbox: the sync client (the loop peer) vs the async client
    (our hook) at concurrency 1 and 8. Only the client process's CPU is counted."""
    import asyncio

    import httpx

    from airflow_provider_bolna.sandbox.testing import SandboxServer

    out = []

    def record(kind: str, concurrency: int, c0: float, t0: float) -> None:
        out.append({"client": kind, "concurrency": concurrency, "requests": requests,
                    "cpu_ms_per_request": round((_cpu() - c0) * 1000 / requests, 3),
                    "wall_ms_per_request": round((time.perf_counter() - t0) * 1000 / requests, 3)})
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
    what = sys.argv[1] if len(sys.argv) > 1 else "masking"
    {"masking": masking, "listing": listing, "httpx": httpx_cost}[what]()
