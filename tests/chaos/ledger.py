"""What the chaos suite measured: one record per scenario, a table at the end of the session.

Every figure in the summary (and in ``RESULTS.md``) is written by the tests as they run:
faults from the sandbox's own counters (plus the faults the tests cause themselves: SIGKILLs,
restarts, outages, late deliveries), customers, duplicates and lost customers from the
sandbox's tables and the state table, secret hits from the scans, fuzz cases from hypothesis.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

#: Fault kinds in the order they are shown (others are appended).
FAULT_ORDER = (
    "fail_before",
    "drop_after_commit_502",
    "drop_after_commit_conn",
    "rate_limited",
    "latency_spikes",
    "late_commits",
    "sigkill_worker",
    "sandbox_crash",
    "sandbox_restart",
    "db_outage",
    "bad_key",
)


@dataclass
class Scenario:
    """The figures of one test."""

    name: str
    nodeid: str = ""
    customers: int = 0
    runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    duplicates: int = 0
    lost: int = 0
    secret_hits: int = 0
    secret_places: int = 0
    secret_bytes: int = 0
    fuzz_cases: int = 0
    seconds: float = 0.0
    outcome: str = "not run"
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add_faults(self, faults: dict[str, Any] | Counter[str]) -> None:
        """Add fault counts (e.g. the sandbox's ``counters()["faults"]``)."""
        for kind, count in dict(faults).items():
            if count:
                self.faults[kind] += int(count)

    def note(self, text: str) -> None:
        """An observation worth reading (shown under the table)."""
        self.notes.append(text)


class Ledger:
    """All scenarios of the session."""

    def __init__(self) -> None:
        self.scenarios: list[Scenario] = []
        self.started = time.monotonic()

    def open(self, name: str, nodeid: str = "") -> Scenario:
        scenario = Scenario(name=name, nodeid=nodeid)
        self.scenarios.append(scenario)
        return scenario

    # ------------------------------------------------------------------ totals

    def totals(self) -> dict[str, Any]:
        faults: Counter[str] = Counter()
        for s in self.scenarios:
            faults.update(s.faults)
        return {
            "faults": faults,
            "faults_total": sum(faults.values()),
            "customers": sum(s.customers for s in self.scenarios),
            "duplicates": sum(s.duplicates for s in self.scenarios),
            "lost": sum(s.lost for s in self.scenarios),
            "secret_hits": sum(s.secret_hits for s in self.scenarios),
            "secret_places": sum(s.secret_places for s in self.scenarios),
            "secret_bytes": sum(s.secret_bytes for s in self.scenarios),
            "fuzz_cases": sum(s.fuzz_cases for s in self.scenarios),
            "requests": sum(s.requests for s in self.scenarios),
        }

    # ------------------------------------------------------------------ rendering

    def _rows(self) -> list[list[str]]:
        rows = []
        for s in self.scenarios:
            faults = ", ".join(f"{k} {v}" for k, v in _ordered(s.faults)) or "-"
            rows.append([s.name, s.outcome, str(s.customers or "-"), str(s.runs or "-"), faults,
                         str(s.duplicates), str(s.lost), f"{s.secret_hits}/{s.secret_places}",
                         str(s.fuzz_cases or "-"), f"{s.seconds:.0f}"])
        return rows

    HEADER: ClassVar[list[str]] = ["scenario", "outcome", "customers", "runs", "faults injected", "duplicates", "lost",
              "secret hits/places", "fuzz cases", "s"]

    def render_text(self) -> str:
        """A fixed-width table for the terminal."""
        rows = self._rows()
        total = self.totals()
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(self.HEADER)]
        widths[4] = min(widths[4], 70)
        line = lambda cells: "  ".join(c[: widths[i]].ljust(widths[i]) if i == 4 else c.ljust(widths[i])
                                       for i, c in enumerate(cells))
        out = [line(self.HEADER), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        out.append("")
        out += self._totals_lines(total)
        notes = [(s.name, n) for s in self.scenarios for n in s.notes]
        if notes:
            out.append("")
            out.append("observations:")
            out += [f"  [{name}] {n}" for name, n in notes]
        return "\n".join(out)

    @staticmethod
    def _totals_lines(total: dict[str, Any]) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in _ordered(total["faults"])) or "none"
        return [
            f"faults injected:   {total['faults_total']} ({faults})",
            f"customers:         {total['customers']}",
            f"duplicates found:  {total['duplicates']}",
            f"customers lost:    {total['lost']}",
            (f"secret hits:       {total['secret_hits']} "
             f"(in {total['secret_places']} places, {total['secret_bytes'] / 1e6:.1f} MB scanned)"),
            f"fuzz cases tried:  {total['fuzz_cases']}",
            f"API requests seen: {total['requests']}",
        ]

    def render_markdown(self, command: str, wall_seconds: float, exit_status: int) -> str:
        """``RESULTS.md``: the figures of this run, written by the run itself."""
        total = self.totals()
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        try:
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        except OSError:  # pragma: no cover
            load = "n/a"
        lines = [
            "# Chaos suite — results of the last full run",
            "",
            "Written by `tests/chaos/conftest.py` at the end of the run (do not edit by hand; rerun",
            "`pytest -m chaos tests/chaos` to refresh). Every figure below was measured in this run.",
            "",
            f"* date: {now}",
            f"* command: `{command}`",
            (f"* machine: {os.cpu_count()} CPU(s), load average at the end {load}, "
             f"Python {platform.python_version()}"),
            f"* wall time of the session: {wall_seconds:.0f} s; pytest exit status {exit_status}",
            "",
            "## Totals",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| faults injected | {total['faults_total']} |",
        ]
        for kind, count in _ordered(total["faults"]):
            lines.append(f"| &nbsp;&nbsp;{kind} | {count} |")
        lines += [
            f"| customers | {total['customers']} |",
            f"| duplicates found | {total['duplicates']} |",
            f"| customers lost | {total['lost']} |",
            (f"| secret hits | {total['secret_hits']} (in {total['secret_places']} places, "
             f"{total['secret_bytes'] / 1e6:.1f} MB scanned) |"),
            f"| fuzz cases tried | {total['fuzz_cases']} |",
            f"| API requests seen by the sandbox | {total['requests']} |",
            "",
            "## Scenarios",
            "",
            "| " + " | ".join(self.HEADER) + " |",
            "| " + " | ".join("---" for _ in self.HEADER) + " |",
        ]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._rows()]
        notes = [(s.name, n) for s in self.scenarios for n in s.notes]
        if notes:
            lines += ["", "## Observations", ""]
            lines += [f"* **{name}**: {n}" for name, n in notes]
        lines.append("")
        return "\n".join(lines)


def _ordered(faults: Counter[str]) -> list[tuple[str, int]]:
    known = [(k, faults[k]) for k in FAULT_ORDER if faults.get(k)]
    other = sorted((k, v) for k, v in faults.items() if k not in FAULT_ORDER and v)
    return known + other


#: The session's ledger (one pytest process).
LEDGER = Ledger()
