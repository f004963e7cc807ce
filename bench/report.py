"""``results.json`` → ``REPORT.md`` (tables, ratios, slopes, targets) and ``throughput.png``.

Medians over repeats; slopes are least-squares fits of wall time (and CPU time) over N on every
run of a peer, so Airflow's fixed start-up cost (tens of seconds on a busy machine) cancels.
Hand-written analysis lives in ``bench/findings.md`` and is appended verbatim.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PEER_LABEL = {
    "ours": "ours (bolna_bulk_provision)",
    "ours_pb1": "ours, parallel_batches=1",
    "ours_pb4": "ours, parallel_batches=4 (default)",
    "ours_pb8": "ours, parallel_batches=8",
    "ours_1batch": "ours, one batch (batch_size 2000)",
    "naive": "naive (mapped HttpOperator)",
    "loop": "loop (sequential httpx, no Airflow)",
}
SCENARIO_ORDER = {"lat0": 0, "lat50": 1, "rate": 2, "rate50": 3, "rate1s": 4}
PEER_ORDER = {"ours": 0, "ours_pb1": 1, "ours_pb4": 2, "ours_pb8": 3, "ours_1batch": 4, "naive": 5, "loop": 6}
PEER_COLOR = {
    "ours": "tab:blue",
    "ours_pb1": "#9ecae1",
    "ours_pb4": "#3182bd",
    "ours_pb8": "#08306b",
    "ours_1batch": "tab:green",
    "naive": "tab:red",
    "loop": "tab:gray",
}
TARGETS = {
    "marginal_ratio_lat50": 50.0,
    "wall_ratio_1k": 30.0,
    "rate_share": 0.95,
    "rate_429_share": 0.01,
    "requests_vs_minimal": 1.05,
    "rss_100k_over_10k": 1.2,
    "parse_s": 0.3,
    "import_s": 0.5,
}


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def slope(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept) of y over x; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx
    return b, my - b * mx


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 100 or digits == 0:
            return f"{value:,.0f}{unit}"
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def group(runs: list[dict[str, Any]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["scenario"], r["peer"], r["n"])].append(r)
    return groups


def summarize_group(rs: list[dict[str, Any]]) -> dict[str, Any]:
    def m(key: str) -> Any:
        return med([r.get(key) for r in rs])

    ok = all(r.get("ok") for r in rs)
    return {
        "reps": len(rs),
        "ok": ok,
        "wall_s": m("wall_s"),
        "wall_runs": [r["wall_s"] for r in rs],
        "task_window_s": m("task_window_s"),
        "tps": m("throughput_tps"),
        "requests": m("requests_total"),
        "minimal": m("minimal_requests"),
        "req_ratio": m("requests_vs_minimal"),
        "rate_limited": m("rate_limited"),
        "rss_tree": m("peak_rss_tree_mb"),
        "rss_single": m("max_rss_single_mb"),
        "cpu_s": m("cpu_s"),
        "sandbox_cpu_s": m("sandbox_cpu_s"),
        "load": [r.get("load_before") for r in rs],
        "steady_ok_rpm": m("steady_ok_rpm"),
        "active_rpm": m("active_rpm"),
        "steady_rpm": m("steady_rpm"),
        "task_instances": m("task_instances"),
    }


def slopes(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (scenario, peer): wall and CPU slope over all N, and segment slopes between medians."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("ok"):
            by[(r["scenario"], r["peer"])].append(r)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, rs in by.items():
        fit = slope([(r["n"], r["wall_s"]) for r in rs])
        cfit = slope([(r["n"], r["cpu_s"]) for r in rs])
        tfit = slope([(r["n"], r["task_window_s"]) for r in rs if r.get("task_window_s")])
        sizes = sorted({r["n"] for r in rs})
        medians = {n: med([r["wall_s"] for r in rs if r["n"] == n]) for n in sizes}
        segments = []
        for a, b in itertools.pairwise(sizes):
            segments.append((a, b, (medians[b] - medians[a]) / (b - a)))
        out[key] = {
            "sizes": sizes,
            "wall_ms_per_customer": fit[0] * 1000 if fit else None,
            "fixed_s": fit[1] if fit else None,
            "cpu_ms_per_customer": cfit[0] * 1000 if cfit else None,
            "window_ms_per_customer": tfit[0] * 1000 if tfit else None,
            "segments_ms": [(a, b, s * 1000) for a, b, s in segments],
        }
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def is_rate(scenario: str) -> bool:
    """The scenarios run under the sandbox's rate limit."""
    return scenario.startswith("rate")


def rate_timeline(rs: list[dict[str, Any]]) -> list[int] | None:
    """The per-second counts (server side) of the run with the median wall time."""
    runs = sorted((r for r in rs if r.get("per_second")), key=lambda r: r["wall_s"])
    return runs[len(runs) // 2]["per_second"] if runs else None


def plot(results: dict[str, Any], path: Path) -> bool:
    """Throughput vs N, and the per-second request rate of each rate scenario's runs."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = group([r for r in results["runs"] if r.get("ok")])
    rate_scenarios = sorted(
        {
            s
            for s, _, _ in groups
            if is_rate(s)
            and any(r.get("per_second") for (s2, _, _), rs in groups.items() if s2 == s for r in rs)
        },
        key=lambda s: SCENARIO_ORDER.get(s, 9),
    )
    fig, axes = plt.subplots(
        1, 1 + len(rate_scenarios), figsize=(7 + 7 * len(rate_scenarios), 6.5), squeeze=False
    )
    ax = axes[0][0]
    styles = {"lat0": "-", "lat50": "--"}
    for scenario in ("lat0", "lat50"):
        for peer in ("ours", "naive", "loop"):
            pts = sorted(
                (n, summarize_group(rs)["tps"])
                for (s, p, n), rs in groups.items()
                if s == scenario and p == peer
            )
            if not pts:
                continue
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                styles[scenario],
                marker="o",
                color=PEER_COLOR[peer],
                label=f"{peer}, {scenario.replace('lat', '')} ms latency",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("customers (N)")
    ax.set_ylabel("trunks per second (whole run, wall clock)")
    ax.set_title("Throughput vs N (median of runs; Airflow start-up included)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    for ax, scenario in zip(axes[0][1:], rate_scenarios, strict=True):
        limit = None
        for (s, peer, n), rs in sorted(groups.items(), key=lambda kv: PEER_ORDER.get(kv[0][1], 9)):
            counts = rate_timeline(rs) if s == scenario else None
            if not counts:
                continue
            limit = rs[0]["rate_limit_per_min"]
            ours = peer.startswith("ours")
            ax.plot(
                range(len(counts)),
                counts,
                color=PEER_COLOR.get(peer, "black"),
                lw=1.2 if ours else 0.8,
                alpha=1.0 if ours else 0.6,
                label=f"{PEER_LABEL.get(peer, peer)}, N={n:,}",
            )
        if limit:
            ax.axhline(limit / 60, color="black", ls=":", lw=1, label=f"R = {limit:,.0f}/min")
        latency = next(r["latency_ms"] for (s, _, _), rs in groups.items() if s == scenario for r in rs)
        ax.set_xlabel("seconds from the first request")
        ax.set_ylabel("requests answered per second (sandbox's count)")
        ax.set_title(f"Under R, {latency:g} ms latency (median run of each peer)")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 22)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(results: dict[str, Any], out: Path, suffix: str = "") -> None:
    runs = results.get("runs", [])
    for r in runs:  # runs recorded before "minimal" became N (no list call is needed on an empty account)
        if r.get("n") and r.get("requests_total") is not None:
            r["minimal_requests"] = r["n"]
            r["requests_vs_minimal"] = round(r["requests_total"] / r["n"], 4)
    groups = group(runs)
    sums = {k: summarize_group(v) for k, v in groups.items()}
    sl = slopes(runs)
    meta = results.get("meta", {})
    startup = results.get("startup", {})
    png = out / f"throughput{suffix}.png"
    has_plot = plot(results, png)
    lines: list[str] = []
    w = lines.append
    w(f"# Benchmarks: bulk provisioning vs the naive peers{' (quick run)' if suffix else ''}")
    w("")
    w("Generated by `python -m bench.run` from `results.json` (raw runs, including per-second request")
    w(
        "timelines); hand-written analysis at the end (`bench/findings.md`). See `bench/README.md` for the method."
    )
    w("")
    loads = [r.get("load_before") for r in runs if r.get("load_before") is not None]
    w(
        f"- Machine: {meta.get('cpus')} CPUs, {meta.get('platform')}, Python {meta.get('python')}; "
        f"Airflow {meta.get('apache-airflow')}, providers-http {meta.get('apache-airflow-providers-http')}, "
        f"httpx {meta.get('httpx')}, pydantic {meta.get('pydantic')}."
    )
    if loads:
        w(
            f"- 1-minute load average at the start of the {len(loads)} runs: min {min(loads):.1f}, median "
            f"{statistics.median(loads):.1f}, max {max(loads):.1f} (the machine is shared; see *Noise*)."
        )
    w(
        f"- Last run: {meta.get('last_started')} → {meta.get('last_finished')} "
        f"({fmt((meta.get('last_duration_s') or 0) / 60, 0)} min)."
    )
    shas = sorted(
        {
            f"{r.get('code_sha')} (git {r.get('git_head')})"
            for r in runs
            if r.get("code_sha") and r["peer"].startswith("ours")
        }
    )
    if shas:
        w(
            f"- Provider code measured by the `ours` runs: {', '.join(shas)} (sha256 of `airflow_provider_bolna/**.py` "
            f"+ the DAG, per run in `results.json`). The naive DAG and the loop do not use it."
        )
    w(
        "- Peers: **ours** = `dags/bolna_bulk_provision.py` via `airflow dags test` (batch_size 500; concurrency 8 in "
        "the lat0/lat50 runs, then the default, and sized from latency, today's default, in the rate runs; deployment "
        "settings such as `parallel_batches` through the Variable `bolna_provisioning`; connection "
        "`requests_per_minute` 0 = no client budget, except in the rate scenarios where it is R, shared by the "
        "batches through the state DB); **naive** = "
        "`bench/dags/naive_http_provision.py` via `airflow dags test` (one mapped `HttpOperator` per customer and "
        "per number, `AIRFLOW__CORE__MAX_MAP_LENGTH` raised from 1024); **loop** = `bench/loop_peer.py`, sequential "
        "httpx, numbers inline. Same seeded customers (`sandbox.seed`, 1–3 numbers each), same sandbox "
        "process, empty account and no state table before every run."
    )
    w("")

    # ------------------------------------------------------------------ main table
    w("## Results (medians over repeats)")
    w("")
    w(
        "Wall = the whole command (Airflow start-up included); window = first task start → DagRun finished "
        "(for the loop: its own run time). Requests and 429s from the sandbox's counters; minimal = one create per "
        "customer (numbers inline), the least any client can send to an empty account. RSS = peak sum over the process tree (psutil, "
        "0.25 s polls) / largest single process (`ru_maxrss`). CPU = user+sys of the peer's process tree; "
        "sandbox CPU separately."
    )
    w("")
    w(
        "| scenario | peer | N | runs | wall s | window s | trunks/s | requests | ÷ minimal | 429s | peak RSS MB (tree / max proc) | CPU s | sandbox CPU s | load at start | ok |"
    )
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    order, porder = SCENARIO_ORDER, PEER_ORDER
    for (s, p, n), g in sorted(
        sums.items(), key=lambda kv: (order.get(kv[0][0], 9), porder.get(kv[0][1], 9), kv[0][2])
    ):
        w(
            f"| {s} | {p} | {n:,} | {g['reps']} | {fmt(g['wall_s'])} | {fmt(g['task_window_s'])} | {fmt(g['tps'], 1)} | "
            f"{fmt(g['requests'], 0)} | {fmt(g['req_ratio'], 3)} | {fmt(g['rate_limited'], 0)} | "
            f"{fmt(g['rss_tree'], 0)} / {fmt(g['rss_single'], 0)} | {fmt(g['cpu_s'])} | {fmt(g['sandbox_cpu_s'])} | "
            f"{', '.join(fmt(x) for x in g['load'])} | {'yes' if g['ok'] else 'NO'} |"
        )
    w("")
    if has_plot:
        w(f"![throughput vs N]({png.name})")
        w("")

    # ------------------------------------------------------------------ slopes
    w("## Cost per customer (slope of wall time over N)")
    w("")
    w(
        "Least-squares slope over every run of the peer (the intercept is the fixed cost: interpreter, Airflow "
        "start-up, DAG run bookkeeping). Segment slopes between the medians at consecutive sizes show whether the "
        "cost per customer is constant."
    )
    w("")
    w(
        "| scenario | peer | sizes | wall ms / customer | fixed s (intercept) | task-window ms / customer | CPU ms / customer | segments (ms / customer) |"
    )
    w("|---|---|---|---:|---:|---:|---:|---|")
    for (s, p), v in sorted(sl.items(), key=lambda kv: (order.get(kv[0][0], 9), porder.get(kv[0][1], 9))):
        if is_rate(s):
            continue
        segs = "; ".join(f"{a:,}→{b:,}: {x:.2f}" for a, b, x in v["segments_ms"])
        w(
            f"| {s} | {p} | {', '.join(f'{n:,}' for n in v['sizes'])} | {fmt(v['wall_ms_per_customer'], 2)} | "
            f"{fmt(v['fixed_s'])} | {fmt(v['window_ms_per_customer'], 2)} | {fmt(v['cpu_ms_per_customer'], 2)} | {segs} |"
        )
    w("")

    # ------------------------------------------------------------------ ratios
    w("## Ratios")
    w("")
    w("| what | lat0 | lat50 |")
    w("|---|---:|---:|")

    def wall(s: str, p: str, n: int) -> float | None:
        g = sums.get((s, p, n))
        return g["wall_s"] if g and g["ok"] else None

    def mslope(s: str, p: str) -> float | None:
        v = sl.get((s, p))
        return v["wall_ms_per_customer"] if v else None

    def seg(s: str, p: str, a: int, b: int) -> float | None:
        v = sl.get((s, p))
        return next((x for lo, hi, x in (v["segments_ms"] if v else []) if lo == a and hi == b), None)

    rows = [
        (
            "whole-run wall time at N=1,000: naive ÷ ours",
            lambda s: ratio(wall(s, "naive", 1000), wall(s, "ours", 1000)),
        ),
        (
            "marginal cost per customer: naive (fit 250–1k) ÷ ours (1k→10k)",
            lambda s: ratio(mslope(s, "naive"), seg(s, "ours", 1000, 10_000)),
        ),
        (
            "marginal cost per customer: naive (fit 250–1k) ÷ ours (10k→100k)",
            lambda s: ratio(mslope(s, "naive"), seg(s, "ours", 10_000, 100_000)),
        ),
        (
            "marginal cost per customer: naive ÷ ours (least-squares fits over all sizes)",
            lambda s: ratio(mslope(s, "naive"), mslope(s, "ours")),
        ),
        (
            "whole-run wall time at N=1,000: ours ÷ loop",
            lambda s: ratio(wall(s, "ours", 1000), wall(s, "loop", 1000)),
        ),
        (
            "whole-run wall time at N=10,000: ours ÷ loop",
            lambda s: ratio(wall(s, "ours", 10_000), wall(s, "loop", 10_000)),
        ),
        (
            "whole-run wall time at N=100,000: ours ÷ loop",
            lambda s: ratio(wall(s, "ours", 100_000), wall(s, "loop", 100_000)),
        ),
        (
            "marginal cost per customer: ours ÷ loop (1k→10k)",
            lambda s: ratio(seg(s, "ours", 1000, 10_000), seg(s, "loop", 1000, 10_000)),
        ),
        (
            "marginal cost per customer: ours ÷ loop (10k→100k)",
            lambda s: ratio(seg(s, "ours", 10_000, 100_000), seg(s, "loop", 10_000, 100_000)),
        ),
    ]
    for label, f in rows:
        w(f"| {label} | {fmt(f('lat0'), 2)} | {fmt(f('lat50'), 2)} |")
    w("")
    naive_fit = sl.get(("lat0", "naive"))
    for s in ("lat0", "lat50"):
        v = sl.get((s, "naive"))
        if v and v["wall_ms_per_customer"]:
            est = (v["fixed_s"] + v["wall_ms_per_customer"] * 10) / 60
            w(
                f"- Naive DAG at N=10,000 ({s}), extrapolated from its slope: ≈ {est:,.0f} min "
                f"(not run: it would also need `max_map_length` ≥ ~20,000 mapped number tasks)."
            )
    if naive_fit:
        w("")

    # ------------------------------------------------------------------ cost growth
    w("## Cost growth 1k → 10k → 100k (ours)")
    w("")
    w(
        "| scenario | N | wall s | wall ÷ N (ms) | CPU s | CPU ÷ N (ms) | requests | list calls | peak RSS MB |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in ("lat0", "lat50"):
        for n in (1000, 10_000, 100_000):
            g = sums.get((s, "ours", n))
            if not g:
                continue
            rs = groups[(s, "ours", n)]
            lists = med(
                [r["requests_by_endpoint"].get("GET /sip-trunks/trunks", {}).get("200", 0) for r in rs]
            )
            w(
                f"| {s} | {n:,} | {fmt(g['wall_s'])} | {fmt(g['wall_s'] * 1000 / n, 2)} | {fmt(g['cpu_s'])} | "
                f"{fmt(g['cpu_s'] * 1000 / n, 2)} | {fmt(g['requests'], 0)} | {fmt(lists, 0)} | {fmt(g['rss_tree'], 0)} |"
            )
    w("")

    # ------------------------------------------------------------------ rate limit
    rate_keys = sorted(
        ((s, p, n) for (s, p, n) in sums if is_rate(s)),
        key=lambda k: (order.get(k[0], 9), porder.get(k[1], 9), k[2]),
    )
    rate_runs = [r for r in runs if is_rate(r["scenario"])]
    R = rate_runs[0]["rate_limit_per_min"] if rate_runs else None
    if rate_keys:
        w(f"## Under the sandbox's rate limit R = {fmt(R, 0)} requests/min")
        w("")
        w(
            "The sandbox refuses (429) what exceeds R (a token bucket refilled every second); our connection's "
            "`requests_per_minute` is R. *Steady* = successful requests per minute between 5 % and 95 % of the "
            "run's requests (the harness's 1 s polls of the counters); *active* = every request ÷ the seconds "
            "from the first to the last answered request, and *busiest 60 s* = the most requests answered in any "
            "60 consecutive seconds, both from the sandbox's own per-second counts (runs recorded before those "
            "counts existed show the polled figure for *active* and – for the busiest window). Our shared budget "
            f"grants at most (R − 1) / 61 s = {(R - 1) / 61 * 60 / R * 100:.1f} % of R (see docs/rate-budget.md). "
            "The naive DAG and the loop are "
            "far below R at these latencies, so they ran at a smaller N (the rate is what is compared)."
        )
        w("")
        w(
            "| scenario | latency | peer | N | runs | wall s | steady ok/min | share of R (steady) | share of R (active) | busiest 60 s | requests | 429s | load at start | ok |"
        )
        w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for key in rate_keys:
            s, p, n = key
            g, rs = sums[key], groups[key]
            share = ratio(g["steady_ok_rpm"], R)
            server = med([r.get("server_share") for r in rs])
            active = server if server is not None else ratio(g["active_rpm"], R)
            busiest = med([r.get("busiest_window") for r in rs])
            w(
                f"| {s} | {fmt(rs[0]['latency_ms'], 0)} ms | {PEER_LABEL.get(p, p)} | {n:,} | {g['reps']} | {fmt(g['wall_s'])} | "
                f"{fmt(g['steady_ok_rpm'], 0)} | {fmt(share * 100 if share else None, 1, ' %')} | "
                f"{fmt(active * 100 if active else None, 1, ' %')} | {fmt(busiest, 0)} | {fmt(g['requests'], 0)} | "
                f"{fmt(g['rate_limited'], 0)} | {', '.join(fmt(x) for x in g['load'])} | {'yes' if g['ok'] else 'NO'} |"
            )
        w("")
        if has_plot:
            w("Per-second timelines: the right-hand panels of the plot above.")
            w("")

    # ------------------------------------------------------------------ listing a big account
    listing = results.get("listing_http", [])
    if listing:
        size = listing[0]["account_trunks"]
        w(f"## Listing a {size:,}-trunk account")
        w("")
        w(
            "`python -m bench.micro listing-http 100000 OLD_TREE NEW_TREE --record`: the hook's "
            "`list_trunks(names=<a batch's 500 names>)` over HTTP against a sandbox holding the account, each call in "
            "a fresh process; wall time (the sandbox rendering the list included), the client's CPU and its peak RSS "
            "growth (medians)."
        )
        w("")
        w(
            "| code | account trunks | calls | seconds | client CPU s | peak RSS growth MB | trunks kept | load after |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---|")
        by_commit: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in listing:
            by_commit[row["commit"]].append(row)
        for commit, rows in by_commit.items():
            w(
                f"| `{commit}` | {rows[0]['account_trunks']:,} | {len(rows)} | {fmt(med([r['seconds'] for r in rows]), 2)} | "
                f"{fmt(med([r['client_cpu_s'] for r in rows]), 2)} | {fmt(med([r['peak_rss_growth_mb'] for r in rows]), 1)} | "
                f"{fmt(med([r['kept'] for r in rows]), 0)} | {', '.join(str(x) for x in sorted({r['load_after'] for r in rows}))} |"
            )
        w("")

    # ------------------------------------------------------------------ start-up
    if startup:
        w("## Import and parse time")
        w("")
        w(
            f"Fresh interpreter per measurement, medians (load {startup.get('load_before')} → {startup.get('load_after')})."
        )
        w(
            "`-X importtime` cumulative time, split by who imported what: Airflow's own modules (imported by our "
            "code), other libraries imported by our code directly (pydantic, httpx, tenacity, stdlib), and our own "
            "modules' code."
        )
        w("")
        w(
            "| module | importtime total s | Airflow's part s | other libraries s | our code s | wall s (CPU s), fresh interpreter | wall s (CPU s) after `import airflow.sdk` |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|")
        for mod, v in startup.get("imports", {}).items():
            if "total_s" not in v:
                continue
            w(
                f"| `import {mod}` | {fmt(v.get('total_s'), 3)} | {fmt(v.get('airflow_s'), 3)} | "
                f"{fmt(v.get('other_libs_s'), 3)} | {fmt(v.get('own_s'), 3)} | {fmt(v.get('wall_s'), 3)} ({fmt(v.get('cpu_s'), 3)}) | "
                f"{fmt(v.get('after_airflow_wall_s'), 3)} ({fmt(v.get('after_airflow_cpu_s'), 3)}) |"
            )
        base = startup.get("imports", {}).get("airflow.sdk")
        if base:
            w(
                f"| `import airflow.sdk` alone (reference) | | | | | {fmt(base.get('wall_s'), 3)} ({fmt(base.get('cpu_s'), 3)}) | |"
            )
        w("")
        w(
            "| DAG file | cold parse s (first DagBag load, Airflow already imported) | DagBag's own file stat s | warm re-parse s | runs (cold) |"
        )
        w("|---|---:|---:|---:|---|")
        for label, v in startup.get("parse", {}).items():
            if "error" in v:
                w(f"| {label} | error | | | |")
                continue
            w(
                f"| {label} (`{', '.join(v.get('dags', []))}`) | {fmt(v.get('cold_s'), 3)} | {fmt(v.get('dagbag_file_s'), 3)} | {fmt(v.get('warm_s'), 3)} | "
                f"{', '.join(fmt(x, 3) for x in v.get('cold_runs', []))} |"
            )
        w("")

    # ------------------------------------------------------------------ targets
    w("## Targets")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    t = TARGETS
    for lo, hi in ((1000, 10_000), (10_000, 100_000)):
        ours50 = seg("lat50", "ours", lo, hi)
        r50 = ratio(mslope("lat50", "naive"), ours50)
        w(
            f"| marginal cost per customer ≥ {t['marginal_ratio_lat50']:.0f}× lower than naive at 50 ms (ours {lo:,}→{hi:,}) | "
            f"{fmt(r50, 1, '×')} ({fmt(mslope('lat50', 'naive'), 1)} vs {fmt(ours50, 2)} ms/customer) | "
            f"{verdict(None if r50 is None else r50 >= t['marginal_ratio_lat50'])} |"
        )
    for s in ("lat0", "lat50"):
        r1k = ratio(wall(s, "naive", 1000), wall(s, "ours", 1000))
        w(
            f"| whole-run wall time ≥ {t['wall_ratio_1k']:.0f}× faster at 1k ({s}) | {fmt(r1k, 1, '×')} "
            f"({fmt(wall(s, 'naive', 1000))} s vs {fmt(wall(s, 'ours', 1000))} s) | "
            f"{verdict(None if r1k is None else r1k >= t['wall_ratio_1k'])} |"
        )
    for key in rate_keys:
        s, p, n = key
        if not p.startswith("ours"):
            continue
        g, rs = sums[key], groups[key]
        share = ratio(g["steady_ok_rpm"], R)
        server = med([r.get("server_share") for r in rs])
        busiest = max((r.get("busiest_window") or 0) for r in rs) or None
        q = (g["rate_limited"] or 0) / g["requests"] if g["requests"] else None
        label = f"{s}, {PEER_LABEL.get(p, p)}"
        w(
            f"| ≥ {t['rate_share'] * 100:.0f} % of R while there is work ({label}) | steady "
            f"{fmt(share * 100 if share else None, 1, ' %')}, active window {fmt(server * 100 if server else None, 1, ' %')} | "
            f"{verdict(None if server is None and share is None else (server if server is not None else share) >= t['rate_share'])} |"
        )
        w(
            f"| never above R in any 60 s, < 1 % 429s ({label}) | busiest 60 s {fmt(busiest, 0)}, 429s "
            f"{fmt(q * 100 if q is not None else None, 2, ' %')} | "
            f"{verdict(None if q is None else (q < t['rate_429_share'] and (busiest is None or busiest <= (R or 0))))} |"
        )
    ratios = [(k, v["req_ratio"]) for k, v in sums.items() if k[1] == "ours" and v["req_ratio"]]
    if ratios:
        worst = max(r for _, r in ratios)
        w(
            f"| requests sent ≤ {t['requests_vs_minimal']} × minimal (ours, every run) | worst {worst:.3f} | "
            f"{verdict(worst <= t['requests_vs_minimal'])} |"
        )
    for s in ("lat0", "lat50"):
        a, b = sums.get((s, "ours", 10_000)), sums.get((s, "ours", 100_000))
        if a and b and a["rss_tree"] and b["rss_tree"]:
            rr = b["rss_tree"] / a["rss_tree"]
            w(
                f"| peak RSS at 100k within {t['rss_100k_over_10k']}× of 10k ({s}) | {rr:.2f}× "
                f"({b['rss_tree']:.0f} vs {a['rss_tree']:.0f} MB) | {verdict(rr <= t['rss_100k_over_10k'])} |"
            )
    parse = startup.get("parse", {}).get("ours", {})
    if parse.get("cold_s") is not None:
        w(
            f"| DAG parse < {t['parse_s']} s | cold {parse['cold_s']:.3f} s, warm {parse['warm_s']:.3f} s | "
            f"{verdict(parse['cold_s'] < t['parse_s'])} |"
        )
    for mod, v in startup.get("imports", {}).items():
        if v.get("total_s") is None:
            continue
        own = v["total_s"] - v.get("airflow_s", 0)
        after = v.get("after_airflow_wall_s")
        w(
            f"| `import {mod}` < {t['import_s']} s | fresh interpreter {v['total_s']:.3f} s, of which Airflow "
            f"{v.get('airflow_s', 0):.3f} s; without Airflow's part {own:.3f} s; after `import airflow.sdk` "
            f"{fmt(after, 3)} s | total {verdict(v['total_s'] < t['import_s'])}; without Airflow "
            f"{verdict(own < t['import_s'])}; in an Airflow process {verdict(None if after is None else after < t['import_s'])} |"
        )
    w("")

    findings = BENCH / "findings.md"
    if findings.exists() and not suffix:
        w(findings.read_text().rstrip())
        w("")
    (out / f"REPORT{suffix}.md").write_text("\n".join(lines) + "\n")
