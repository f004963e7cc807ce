"""Benchmarks: our bulk DAG vs the naive mapped-HttpOperator DAG vs a plain httpx loop.

    python -m bench.run            # the full matrix (hours on a busy 2-core machine; resumable)
    python -m bench.run --quick    # a CI-sized smoke run (< 5 minutes)
    python -m bench.run --report-only   # rebuild REPORT.md and the plot from results.json

Every run starts from an empty sandbox (admin reset) and no state table; the peers of one
size run back to back (A B C A B C ...) so that machine drift hits them alike. Before each
run the harness waits (bounded) for the 1-minute load average to drop under ``--load-max``
and records the load it ran under. Results accumulate in ``results.json``; a run already
recorded is skipped unless ``--fresh`` (so an interrupted run resumes where it stopped).
See ``bench/README.md`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from airflow_provider_bolna.sandbox.seed import seed_sqlite
from airflow_provider_bolna.sandbox.testing import SandboxServer
from bench.measure import run_measured, steady_rate
from bench.naive_body import numbers_of

SEED = 2026
OUR_DAG = REPO / "dags" / "bolna_bulk_provision.py"
NAIVE_DAG = BENCH / "dags" / "naive_http_provision.py"
PEERS = ("ours", "naive", "loop")
#: our DAG in the rate scenarios, by its deployment's parallel_batches
RATE_PEERS = {"ours_pb1": 1, "ours_pb4": 4, "ours_pb8": 8}


# ---------------------------------------------------------------------- the matrix


@dataclass
class Scenario:
    """One sandbox setting and the sizes each peer runs at."""

    name: str
    latency_ms: float
    sizes: dict[str, list[int]]
    rate_limit_per_min: float = 0.0
    #: per-peer DAG conf / connection extras
    conf: dict[str, dict[str, Any]] = field(default_factory=dict)
    conn_rpm: dict[str, float] = field(default_factory=dict)
    repeats: int = 2
    #: sizes at or above this run once (too long to repeat)
    once_from: int = 100_000
    #: (peer, N) pairs that run once
    once: set[tuple[str, int]] = field(default_factory=set)


def matrix(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("lat0", 0, {"ours": [200], "naive": [30], "loop": [200]}, repeats=1),
            Scenario(
                "rate",
                0,
                {"ours": [150]},
                rate_limit_per_min=1200,
                conf={"ours": {"parallel_batches": 1}},
                conn_rpm={"ours": 1200},
                repeats=1,
            ),
        ]
    R = 1000  # Bolna's documented limit; N = R customers ≈ one minute of requests
    return [
        # under Bolna's R at 50 ms and 1 s: our DAG at parallel_batches 1, 4 (the default) and 8 (a
        # deployment setting: the Variable), the naive DAG and the loop (both far below R there:
        # smaller N for them, the rate is what is compared)
        # ours_1batch: the whole run in one batch (batch_size 2000), to show what a batch
        # boundary costs when batches run one after another (`dags test`)
        *(
            Scenario(
                name,
                latency,
                {
                    **{peer: [1000] for peer in RATE_PEERS},
                    "ours_1batch": [1000],
                    "naive": [naive_n],
                    "loop": [loop_n],
                },
                rate_limit_per_min=R,
                conf={
                    **{peer: {"parallel_batches": pb} for peer, pb in RATE_PEERS.items()},
                    "ours_1batch": {"batch_size": 2000},
                },
                conn_rpm=dict.fromkeys([*RATE_PEERS, "ours_1batch"], R),
                once={("naive", naive_n)},
            )
            for name, latency, naive_n, loop_n in (("rate50", 50, 250, 1000), ("rate1s", 1000, 100, 200))
        ),
        Scenario(
            "lat0",
            0,
            {"ours": [1000, 10_000, 100_000], "naive": [250, 500, 1000], "loop": [1000, 10_000, 100_000]},
            once={("naive", 500)},
        ),
        # the loop at 50 ms is latency-bound (50 ms per customer, sequential): 1k shows it
        Scenario(
            "lat50",
            50,
            {"ours": [1000, 10_000, 100_000], "naive": [250, 1000], "loop": [1000]},
            once={("naive", 1000)},
        ),
    ]


# ---------------------------------------------------------------------- workspace


class Workspace:
    """Airflow home (migrated once), seeded customer DBs, DAG folders, the sandbox."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        self.root.mkdir(parents=True, exist_ok=True)
        self.airflow_home = root / "airflow-home"
        self.dags_ours = root / "dags-ours"
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.sandbox: SandboxServer | None = None
        self._numbers: dict[int, int] = {}

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home}/airflow.db",
                # the naive DAG maps one task per customer and per number; the default is 1024
                "AIRFLOW__CORE__MAX_MAP_LENGTH": "1000000",
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for name in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
            env.pop(name)
        return env

    def prepare_airflow(self) -> float:
        """Migrate the metadata DB once (kept across bench runs); returns seconds spent."""
        self.dags_ours.mkdir(exist_ok=True)
        link = self.dags_ours / OUR_DAG.name
        if not link.exists():
            link.symlink_to(OUR_DAG)
        marker = self.airflow_home / ".migrated"
        if marker.exists():
            return 0.0
        import subprocess

        self.airflow_home.mkdir(exist_ok=True)
        started = time.monotonic()
        subprocess.run(
            [self.python, "-m", "airflow", "db", "migrate"],
            env=self.base_env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
        marker.touch()
        return time.monotonic() - started

    def customers(self, n: int) -> Path:
        """The seeded customer DB of size ``n`` (created once, no invalid rows)."""
        path = self.root / f"customers-{n}.db"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            seed_sqlite(tmp, n, invalid=0, seed=SEED)
            tmp.rename(path)
        return path

    def expected_numbers(self, n: int) -> int:
        if n not in self._numbers:
            conn = sqlite3.connect(self.customers(n))
            try:
                self._numbers[n] = sum(
                    len(numbers_of({"numbers": r[0]})) for r in conn.execute("SELECT numbers FROM customers")
                )
            finally:
                conn.close()
        return self._numbers[n]

    def fresh_state(self, n: int) -> None:
        conn = sqlite3.connect(self.customers(n))
        try:
            conn.execute("DROP TABLE IF EXISTS bolna_provisioning_state")
            conn.commit()
        finally:
            conn.close()

    def start_sandbox(self) -> SandboxServer:
        db = self.root / "sandbox.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        self.sandbox = SandboxServer(db_path=db, startup_timeout=60).start()
        return self.sandbox

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None


# ---------------------------------------------------------------------- one run


def wait_for_quiet(load_max: float, max_wait: float) -> tuple[float, float]:
    """Wait until the 1-minute load average is under ``load_max`` (at most ``max_wait`` s)."""
    started = time.monotonic()
    while os.getloadavg()[0] >= load_max and time.monotonic() - started < max_wait:
        time.sleep(5)
    return os.getloadavg()[0], round(time.monotonic() - started, 1)


_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def _ts(line: str) -> float | None:
    m = _TS.match(line)
    if not m:
        return None
    return datetime.fromisoformat(m.group(1)).replace(tzinfo=timezone.utc).timestamp()


def parse_dag_output(text: str) -> dict[str, Any]:
    """Task window (first task start → DagRun finished) and our summary, from ``dags test`` output."""
    out: dict[str, Any] = {}
    first = last = None
    for line in text.splitlines():
        if first is None and "[DAG TEST] starting task" in line:
            first = _ts(line)
        if "DagRun Finished" in line:
            last = _ts(line)
            out["dagrun_success"] = "state=success" in line
        if "Done. Returned value was: {'counts'" in line:
            blob = line.split("Returned value was: ", 1)[1].rsplit(" [airflow", 1)[0]
            try:
                out["summary"] = ast.literal_eval(blob)
            except (ValueError, SyntaxError):
                pass
    if first and last:
        out["task_window_s"] = round(last - first, 3)
    out["task_instances"] = text.count("[DAG TEST] starting task")
    return out


def run_one(
    ws: Workspace, sc: Scenario, peer: str, n: int, rep: int, args: argparse.Namespace
) -> dict[str, Any]:
    sandbox = ws.sandbox
    assert sandbox is not None
    sandbox.admin.config(latency_ms=sc.latency_ms, rate_limit_per_min=sc.rate_limit_per_min)
    sandbox.admin.reset()  # empty account, zero counters, full rate bucket
    db = ws.customers(n)
    ws.fresh_state(n)
    env = ws.base_env()
    env["AIRFLOW_CONN_BOLNA_CUSTOMERS"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    rpm = sc.conn_rpm.get(peer, 0.0)  # 0 = no client-side budget: measure the machinery
    env["AIRFLOW_CONN_BOLNA_DEFAULT"] = sandbox.airflow_conn_json(requests_per_minute=rpm)
    env["AIRFLOW_CONN_BOLNA_HTTP"] = json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": sandbox.port,
            "schema": "http",
            "extra": {"Authorization": f"Bearer {sandbox.api_key}"},
        }
    )
    conf = dict(sc.conf.get(peer, {}))
    if peer.startswith("ours"):
        from airflow_provider_bolna.provisioning.settings import RUN_OPTION_KEYS

        # deployment settings (parallel_batches...) are the admins' Variable, not the run's conf
        settings = {k: conf.pop(k) for k in list(conf) if k not in RUN_OPTION_KEYS}
        env["AIRFLOW_VAR_BOLNA_PROVISIONING"] = json.dumps(settings)
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(ws.dags_ours)
        cmd = [ws.python, "-m", "airflow", "dags", "test", "bolna_bulk_provision", "-c", json.dumps(conf)]
    elif peer == "naive":
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(NAIVE_DAG.parent)
        cmd = [ws.python, "-m", "airflow", "dags", "test", "naive_http_provision"]
    else:
        cmd = [
            ws.python,
            "-m",
            "bench.loop_peer",
            "--db",
            str(db),
            "--url",
            sandbox.url,
            "--key",
            sandbox.api_key,
            "--max-seconds",
            str(args.timeout),
        ]
    load_before, waited = wait_for_quiet(args.load_max, args.load_wait)
    log = ws.logs / f"{sc.name}-{peer}-{n}-rep{rep}.log"
    m = run_measured(cmd, env=env, cwd=REPO, output=log, sandbox=sandbox, timeout=args.timeout)
    counters = sandbox.admin.counters()
    audit = sandbox.admin.audit()
    text = log.read_text(errors="replace")
    record: dict[str, Any] = {
        "key": run_key(sc, peer, n, rep),
        "scenario": sc.name,
        "peer": peer,
        "n": n,
        "rep": rep,
        "latency_ms": sc.latency_ms,
        "rate_limit_per_min": sc.rate_limit_per_min,
        "conn_rpm": rpm,
        "conf": conf,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **code_fingerprint(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "waited_for_load_s": waited,
        **{k: v for k, v in asdict(m).items() if k not in ("timeline",)},
        "cpu_s": round(m.cpu_s, 3),
        "timeline": m.timeline,
        "requests_total": counters["total_requests"],
        "requests_by_endpoint": counters["requests"],
        "rate_limited": counters["faults"]["rate_limited"],
        "writes": counters["writes"],
        "trunks": counters["trunks"],
        "numbers": counters["numbers"],
        "expected_numbers": ws.expected_numbers(n),
        "duplicate_names": len(audit.get("duplicate_trunk_names", [])),
        **steady_rate(m.timeline),
    }
    if sc.rate_limit_per_min:  # as the server saw it: every second, and the busiest 60 s
        from airflow_provider_bolna.sandbox.rates import RateFigures

        figures = RateFigures.from_timeline(counters["per_second"], sc.rate_limit_per_min)
        record.update(
            per_second=figures.per_second,
            busiest_window=figures.busiest_window,
            server_active_s=figures.active_s,
            server_share=figures.share_of_rate,
        )
    if peer == "loop":
        line = next((ln for ln in text.splitlines()[::-1] if ln.startswith("{")), "{}")
        record["loop"] = json.loads(line)
        record["task_window_s"] = record["loop"].get("seconds")
    else:
        record.update(parse_dag_output(text))
    record["ok"] = (
        m.returncode == 0
        and counters["trunks"] == n
        and counters["numbers"] == record["expected_numbers"]
        and record["duplicate_names"] == 0
    )
    record["throughput_tps"] = round(n / m.wall_s, 2)
    # the least any client can send to create N trunks on an empty account: one POST each,
    # numbers inline (a list call is needed only to find trunks that may already exist)
    record["minimal_requests"] = n
    record["requests_vs_minimal"] = round(counters["total_requests"] / record["minimal_requests"], 4)
    return record


def run_key(sc: Scenario, peer: str, n: int, rep: int) -> str:
    return f"{sc.name}/{peer}/{n}/rep{rep}"


# ---------------------------------------------------------------------- results file


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"meta": {}, "runs": [], "startup": {}}


def save_results(path: Path, results: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(path)


def code_fingerprint() -> dict[str, str]:
    """Which provider code was measured (the engine is being changed while the bench runs)."""
    import hashlib
    import subprocess

    digest = hashlib.sha256()
    files = sorted((REPO / "airflow_provider_bolna").rglob("*.py")) + [OUR_DAG]
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return {"git_head": head, "code_sha": digest.hexdigest()[:12]}


def machine_meta(python: str) -> dict[str, Any]:
    import importlib.metadata as md

    def ver(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "apache-airflow": ver("apache-airflow"),
        "apache-airflow-providers-http": ver("apache-airflow-providers-http"),
        "httpx": ver("httpx"),
        "pydantic": ver("pydantic"),
        "uvloop": ver("uvloop"),
        "interpreter": python,
    }


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI size: one small run per peer (< 5 min)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only keys containing this text (scenario/peer/N/repK); repeatable",
    )
    parser.add_argument("--fresh", action="store_true", help="forget recorded runs (of the selected keys)")
    parser.add_argument("--repeats", type=int, default=None, help="override the repeats of every scenario")
    parser.add_argument("--report-only", action="store_true", help="only rebuild REPORT.md and the plot")
    parser.add_argument(
        "--skip-startup", action="store_true", help="do not (re)measure import and parse times"
    )
    parser.add_argument(
        "--startup", action="store_true", help="measure import and parse times even with --only"
    )
    parser.add_argument(
        "--load-max", type=float, default=2.0, help="wait for the 1-min load to drop below this"
    )
    parser.add_argument(
        "--load-wait",
        type=float,
        default=None,
        help="most seconds to wait for it before running anyway (default 600; quick: 0)",
    )
    parser.add_argument("--timeout", type=float, default=7200, help="kill a run after this many seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch space (default bench/.work)")
    parser.add_argument("--out", type=Path, default=None, help="directory of results.json / REPORT.md / PNG")
    args = parser.parse_args(argv)
    if args.load_wait is None:
        args.load_wait = 0.0 if args.quick else 600.0

    suffix = "-quick" if args.quick else ""
    out = args.out or BENCH
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / f"results{suffix}.json"
    results = load_results(results_path)
    from bench.report import write_report

    if args.report_only:
        write_report(results, out, suffix)
        print(f"wrote {out / f'REPORT{suffix}.md'}")
        return 0

    python = sys.executable
    ws = Workspace(args.workdir or (BENCH / ".work" / ("quick" if args.quick else "full")), python)
    results["meta"] = {
        **results.get("meta", {}),
        **machine_meta(python),
        "quick": args.quick,
        "last_started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    bench_started = time.monotonic()
    print(f"[bench] preparing Airflow home in {ws.airflow_home} (load {os.getloadavg()[0]:.2f})", flush=True)
    migrate_s = ws.prepare_airflow()
    results["meta"]["airflow_migrate_s"] = (
        round(migrate_s, 1) if migrate_s else results["meta"].get("airflow_migrate_s")
    )

    if not args.skip_startup and (args.startup or not args.only):
        from bench.startup import import_times, parse_times

        repeats = 1 if args.quick else 5
        print("[bench] import and parse times", flush=True)
        env = ws.base_env()
        results["startup"] = {
            "load_before": round(os.getloadavg()[0], 2),
            "imports": import_times(python, REPO, repeats=repeats),
            "parse": parse_times(python, REPO, {"ours": OUR_DAG, "naive": NAIVE_DAG}, env, repeats=repeats),
            "load_after": round(os.getloadavg()[0], 2),
        }
        save_results(results_path, results)

    if args.fresh:  # forget the selected runs (all of them without --only)
        results["runs"] = [
            r for r in results["runs"] if args.only and not any(o in r["key"] for o in args.only)
        ]
    done = {r["key"] for r in results["runs"] if r.get("ok")}
    import threading

    stop_sampling = threading.Event()
    timeline = results.setdefault("load_timeline", [])

    def sample_load() -> None:
        while not stop_sampling.wait(30):
            timeline.append(
                (datetime.now(timezone.utc).isoformat(timespec="seconds"), round(os.getloadavg()[0], 2))
            )

    threading.Thread(target=sample_load, daemon=True).start()
    ws.start_sandbox()
    try:
        for sc in matrix(args.quick):
            repeats = args.repeats or sc.repeats
            sizes = sorted({n for ns in sc.sizes.values() for n in ns})
            for rep in range(1, repeats + 1):
                for n in sizes:
                    if rep > 1 and n >= sc.once_from:
                        continue
                    for peer in sc.sizes:
                        if n not in sc.sizes[peer] or (rep > 1 and (peer, n) in sc.once):
                            continue
                        key = run_key(sc, peer, n, rep)
                        if args.only and not any(o in key for o in args.only):
                            continue
                        if key in done:
                            continue
                        print(f"[bench] {key}: load {os.getloadavg()[0]:.2f} ...", flush=True)
                        record = run_one(ws, sc, peer, n, rep, args)
                        print(
                            f"[bench] {key}: {'ok' if record['ok'] else 'FAILED'} wall {record['wall_s']:.1f}s, "
                            f"{record['throughput_tps']:.1f} trunks/s, {record['requests_total']} requests, "
                            f"{record['rate_limited']} x 429, cpu {record['cpu_s']:.1f}s, "
                            f"rss {record['peak_rss_tree_mb']:.0f} MB, load {record['load_before']}→{record['load_after']}",
                            flush=True,
                        )
                        results["runs"] = [r for r in results["runs"] if r["key"] != key] + [record]
                        save_results(results_path, results)
    finally:
        stop_sampling.set()
        ws.stop()
    results["meta"]["last_finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["meta"]["last_duration_s"] = round(time.monotonic() - bench_started, 1)
    save_results(results_path, results)
    write_report(results, out, suffix)
    print(
        f"[bench] wrote {results_path}, {out / f'REPORT{suffix}.md'} in {time.monotonic() - bench_started:.0f}s",
        flush=True,
    )
    failed = [r["key"] for r in results["runs"] if not r.get("ok")]
    if failed:
        print(f"[bench] runs that did not provision everything: {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
