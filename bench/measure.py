"""Run one peer as a subprocess and measure it: wall time, CPU seconds, peak RSS, request rate.

* CPU: ``os.wait4`` rusage of the child, which includes every descendant it waited for.
* Peak RSS: the sum over the process tree (``psutil``, polled), and the largest single
  process (``ru_maxrss``).
* Requests: the sandbox's counters polled about once a second (admin calls are not counted),
  so the request rate over time is known for every peer alike.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


@dataclass
class Measured:
    """What one subprocess run cost."""

    returncode: int
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_tree_mb: float
    max_rss_single_mb: float
    sandbox_cpu_s: float
    timeline: list[tuple[float, int, int]] = field(default_factory=list)  # (t, total requests, 429s)
    output_path: str | None = None

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _requests_429(counters: dict[str, Any]) -> tuple[int, int]:
    return int(counters.get("total_requests", 0)), int(counters.get("faults", {}).get("rate_limited", 0))


def run_measured(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: str | Path,
    output: Path,
    sandbox: Any,
    timeout: float,
    rss_interval: float = 0.25,
    counter_interval: float = 1.0,
) -> Measured:
    """Run ``cmd`` to completion (killed after ``timeout`` seconds), measuring it.

    :param sandbox: the :class:`SandboxServer` whose counters and CPU are sampled.
    """
    sandbox_proc = psutil.Process(sandbox.pid)
    sandbox_cpu0 = sum(sandbox_proc.cpu_times()[:2])
    peak = 0
    timeline: list[tuple[float, int, int]] = []
    stop = threading.Event()
    with open(output, "wb") as out:
        started = time.monotonic()
        child = subprocess.Popen(
            cmd, env=env, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        proc = psutil.Process(child.pid)

        def sample_counters() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # a missed sample is fine
                    total, limited = _requests_429(sandbox.admin.counters())
                    timeline.append((round(time.monotonic() - started, 3), total, limited))
                stop.wait(counter_interval)

        sampler = threading.Thread(target=sample_counters, daemon=True)
        sampler.start()
        rusage = None
        status = 0
        try:
            while True:
                pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                peak = max(peak, _tree_rss(proc))
                if time.monotonic() - started > timeout:
                    for p in [*proc.children(recursive=True), proc]:
                        try:
                            p.kill()
                        except psutil.Error:
                            pass
                time.sleep(rss_interval)
        finally:
            wall = time.monotonic() - started
            stop.set()
            sampler.join(timeout=5)
        child.returncode = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(Exception):  # the sandbox may be gone: the sample is optional
        total, limited = _requests_429(sandbox.admin.counters())
        timeline.append((round(wall, 3), total, limited))
    sandbox_cpu = sum(sandbox_proc.cpu_times()[:2]) - sandbox_cpu0
    assert rusage is not None
    return Measured(
        returncode=child.returncode,
        wall_s=round(wall, 3),
        cpu_user_s=round(rusage.ru_utime, 3),
        cpu_sys_s=round(rusage.ru_stime, 3),
        peak_rss_tree_mb=round(peak / 2**20, 1),
        max_rss_single_mb=round(rusage.ru_maxrss / 1024, 1),
        sandbox_cpu_s=round(sandbox_cpu, 3),
        timeline=timeline,
        output_path=str(output),
    )


def steady_rate(
    timeline: list[tuple[float, int, int]], lo: float = 0.05, hi: float = 0.95
) -> dict[str, float]:
    """Requests per minute while the run was sending, from the sampled counters.

    ``active``: from the first to the last sample in which the count moved (the window that
    holds every request, sampling granularity ±1 s). ``steady``: between the samples where
    ``lo`` and ``hi`` of the requests had been sent (ramp-up and tail excluded).
    """
    if len(timeline) < 2 or timeline[-1][1] == 0:
        return {}
    total = timeline[-1][1]
    first = next(i for i, (_, n, _) in enumerate(timeline) if n > 0)
    last = next(i for i, (_, n, _) in enumerate(timeline) if n == total)
    t0 = timeline[max(first - 1, 0)][0]
    t1 = timeline[last][0]
    out: dict[str, float] = {}
    if t1 > t0:
        out["active_s"] = round(t1 - t0, 2)
        out["active_rpm"] = round(total / (t1 - t0) * 60, 1)
    a = next(i for i, (_, n, _) in enumerate(timeline) if n >= lo * total)
    b = next(i for i, (_, n, _) in enumerate(timeline) if n >= hi * total)
    if timeline[b][0] > timeline[a][0]:
        out["steady_rpm"] = round(
            (timeline[b][1] - timeline[a][1]) / (timeline[b][0] - timeline[a][0]) * 60, 1
        )
        # successes only (429s excluded)
        ok = (timeline[b][1] - timeline[b][2]) - (timeline[a][1] - timeline[a][2])
        out["steady_ok_rpm"] = round(ok / (timeline[b][0] - timeline[a][0]) * 60, 1)
    return out
