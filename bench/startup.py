"""Import time of the provider (``python -X importtime``) and parse time of each DAG file.

Each figure comes from a fresh interpreter, repeated; medians are reported.

* Import: the cumulative time of the module as ``-X importtime`` reports it, split into the
  part spent importing Airflow itself (``airflow.*`` modules not under ``airflow_provider_bolna``),
  third-party libraries (pydantic, httpx, tenacity, ...) and our own modules' code.
* Parse: a DAG file loaded by ``DagBag`` (what the DAG processor does), after Airflow itself is
  imported, cold (first file in the process, so the imports done at the DAG file's top level
  count) and warm (second load of the same file: its own code only, as the processor pays it
  on every re-parse). Same measurement for both DAG files.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

_PARSE_SNIPPET = r"""
import json, sys, time, runpy
import airflow  # Airflow's own start-up is not the DAG's cost
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import dag, task  # what any DAG file imports first
path = sys.argv[1]
t0 = time.perf_counter()
bag = DagBag(dag_folder=path)
cold = time.perf_counter() - t0
assert not bag.import_errors, bag.import_errors
stat = [s.duration.total_seconds() for s in bag.dagbag_stats]
t1 = time.perf_counter()
runpy.run_path(path)
warm = time.perf_counter() - t1
print(json.dumps({"cold_s": cold, "warm_s": warm, "dags": sorted(bag.dag_ids), "file_s": stat[0] if stat else None}))
"""


def _tree(stderr: str) -> list[tuple[int, str, int]]:
    """``-X importtime`` lines → ``(level, module, cumulative_us)`` in output order."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        name = parts[2].rstrip()
        level = (len(name) - len(name.lstrip(" ")) - 1) // 2
        out.append((level, name.strip(), int(parts[1].strip())))
    return out


def _is_airflow(name: str) -> bool:
    return name == "airflow" or name.startswith("airflow.")


def _is_ours(name: str) -> bool:
    return name == "airflow_provider_bolna" or name.startswith("airflow_provider_bolna.")


def split_import(stderr: str, module: str) -> dict[str, float]:
    """Total, Airflow, other libraries and own time (seconds) of ``module`` from ``-X importtime``.

    Every module imported under ``module`` is charged to the outermost group it sits in: a
    library imported by Airflow is Airflow's cost; a library imported by our code directly is
    "other libraries"; what remains is our own modules' code.
    """
    lines = _tree(stderr)
    idx = max((i for i, (_, name, _) in enumerate(lines) if name == module), default=None)
    if idx is None:
        return {}
    root_level = lines[idx][0]
    start = idx
    while start > 0 and lines[start - 1][0] > root_level:
        start -= 1
    # reversed post-order = parents before children; a stack gives each node its group
    airflow = other = 0
    stack: list[tuple[int, str]] = [(root_level, "ours")]  # (level, group of the subtree)
    for level, name, cum in reversed(lines[start:idx]):
        while stack and stack[-1][0] >= level:
            stack.pop()
        parent_group = stack[-1][1] if stack else "ours"
        if parent_group == "ours" and not _is_ours(name):
            group = "airflow" if _is_airflow(name) else "other"
            if group == "airflow":
                airflow += cum
            else:
                other += cum
        else:
            group = parent_group
        stack.append((level, group))
    total = lines[idx][2]
    return {
        "total_s": total / 1e6,
        "airflow_s": airflow / 1e6,
        "other_libs_s": other / 1e6,
        "own_s": max(0, total - airflow - other) / 1e6,
    }


_TIMED_IMPORT = r"""
import importlib, json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
pre = sys.argv[2] if len(sys.argv) > 2 else ""
if pre:
    importlib.import_module(pre)
w0, c0 = time.perf_counter(), cpu()
importlib.import_module(sys.argv[1])
print(json.dumps({"wall_s": time.perf_counter() - w0, "cpu_s": cpu() - c0}))
"""

#: What a worker or the DAG processor has imported before it ever imports our hook.
AIRFLOW_PRELUDE = "airflow.sdk"


def _timed(
    python: str, cwd: Path, env: dict[str, str], module: str, pre: str = ""
) -> dict[str, float] | None:
    proc = subprocess.run(
        [python, "-c", _TIMED_IMPORT, module, pre],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("{")), None)
    return json.loads(line) if proc.returncode == 0 and line else None


def import_times(python: str, cwd: Path, repeats: int = 5) -> dict[str, Any]:
    """Import cost of the package and of the hook module, each in fresh interpreters (medians).

    Per module: the ``-X importtime`` split (``total_s``, ``airflow_s``, ``other_libs_s``,
    ``own_s``); the wall and CPU time of the import alone (``wall_s``, ``cpu_s``); and the same
    after ``import airflow.sdk`` (``after_airflow_wall_s``/``_cpu_s``: the marginal cost in a
    worker or DAG processor, where Airflow and httpx are already loaded).
    """
    results: dict[str, Any] = {}
    env = dict(os.environ)
    for module in ("airflow_provider_bolna", "airflow_provider_bolna.hooks.bolna"):
        runs: list[dict[str, float]] = []
        for _ in range(repeats):
            proc = subprocess.run(
                [python, "-X", "importtime", "-c", f"import {module}"],
                cwd=str(cwd),
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            split = split_import(proc.stderr, module)
            plain = _timed(python, cwd, env, module)
            after = _timed(python, cwd, env, module, AIRFLOW_PRELUDE)
            if split and plain and after:
                runs.append(
                    {
                        **split,
                        **plain,
                        "after_airflow_wall_s": after["wall_s"],
                        "after_airflow_cpu_s": after["cpu_s"],
                    }
                )
        results[module] = (
            {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]} if runs else {}
        )
        results[module]["runs"] = len(runs)
    base = [_timed(python, cwd, env, AIRFLOW_PRELUDE) for _ in range(repeats)]
    base = [b for b in base if b]
    if base:
        results[AIRFLOW_PRELUDE] = {
            "wall_s": round(statistics.median(b["wall_s"] for b in base), 4),
            "cpu_s": round(statistics.median(b["cpu_s"] for b in base), 4),
            "runs": len(base),
        }
    return results


def parse_times(
    python: str, cwd: Path, files: dict[str, Path], env: dict[str, str], repeats: int = 5
) -> dict[str, Any]:
    """Median cold/warm parse time of each DAG file (fresh interpreter per repeat)."""
    out: dict[str, Any] = {}
    for label, path in files.items():
        runs = []
        for _ in range(repeats):
            proc = subprocess.run(
                [python, "-c", _PARSE_SNIPPET, str(path)],
                cwd=str(cwd),
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            line = next((ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("{")), None)
            if proc.returncode != 0 or line is None:
                out[label] = {"error": (proc.stderr or proc.stdout)[-2000:]}
                break
            runs.append(json.loads(line))
        else:
            out[label] = {
                "cold_s": round(statistics.median(r["cold_s"] for r in runs), 4),
                "warm_s": round(statistics.median(r["warm_s"] for r in runs), 4),
                "dagbag_file_s": round(statistics.median(r["file_s"] or 0 for r in runs), 4),
                "cold_runs": [round(r["cold_s"], 4) for r in runs],
                "warm_runs": [round(r["warm_s"], 4) for r in runs],
                "dags": runs[0]["dags"],
            }
    return out


if __name__ == "__main__":  # pragma: no cover - manual use
    repo = Path(__file__).resolve().parents[1]
    print(json.dumps(import_times(sys.executable, repo, repeats=3), indent=2))
