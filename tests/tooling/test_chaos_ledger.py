"""The chaos suite's report generator (``tests/chaos/ledger.py``): unmeasured figures are shown
as "–", never as 0; totals sum only the scenarios that measured a figure and say how many; the
customer figures come apart (provisioned / refused / not attempted); every column is defined."""

from __future__ import annotations

from tests.chaos.chaoslib import Verdict
from tests.chaos.ledger import FIGURES, Ledger


def _table_row(markdown: str, name: str) -> dict[str, str]:
    lines = markdown.splitlines()
    start = lines.index("## Scenarios")
    header = [c.strip() for c in lines[start + 2].strip("|").split("|")]
    for line in lines[start + 4 :]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == name:
            return dict(zip(header, cells))
    raise AssertionError(f"no row {name!r}")


def _total(markdown: str, figure: str) -> str:
    for line in markdown.splitlines():
        if line.startswith(f"| {figure} |"):
            return line.split("|")[2].strip()
    raise AssertionError(f"no total {figure!r}")


def test_a_figure_a_scenario_does_not_measure_is_a_dash_not_a_zero() -> None:
    ledger = Ledger()
    fuzz = ledger.open("fuzz only")
    fuzz.count("fuzz_cases", 40)
    fuzz.secret_places = 40
    md = ledger.render_markdown("pytest", 1.0, 0)
    row = _table_row(md, "fuzz only")
    for header in (
        "customers",
        "provisioned",
        "refused",
        "not attempted",
        "lost",
        "duplicate trunks",
        "duplicate-name POSTs",
        "created, unrecorded",
        "runs",
        "API requests",
        "fixed cases",
        "faults injected",
    ):
        assert row[header] == "–", (header, row[header])
    assert row["generated cases"] == "40" and row["secret hits/places"] == "0/40"
    assert _total(md, "duplicate trunks") == "–" and _total(md, "lost") == "–"
    assert _total(md, "generated cases") == "40 (in 1 of 1 scenarios)"


def test_totals_sum_the_scenarios_that_measured_and_say_how_many() -> None:
    ledger = Ledger()
    a, b, c = ledger.open("a"), ledger.open("b"), ledger.open("c")
    a.duplicates, b.duplicates = 0, 2
    a.unrecorded = 13
    c.fixed_cases = 41
    md = ledger.render_markdown("pytest", 1.0, 0)
    assert _total(md, "duplicate trunks") == "2 (in 2 of 3 scenarios)"
    assert _total(md, "created, unrecorded") == "13 (in 1 of 3 scenarios)"
    assert _total(md, "fixed cases") == "41 (in 1 of 3 scenarios)"
    assert _total(md, "generated cases") == "–"  # static checks are not fuzz cases
    assert _total(md, "secret hits") == "–"  # nothing was scanned


def test_customers_come_apart_from_a_verdict() -> None:
    """900 rows in the source: 800 expected (3 of them lost), 50 invalid (one without its failed
    row), 50 never attempted (churned)."""
    ledger = Ledger()
    s = ledger.open("converge")
    s.customers = 900
    verdict = Verdict(
        customers=800,
        lost=["1"],
        wrong_numbers=["2"],
        bad_state=["2", "3", "i1"],
        duplicates=0,
        invalid=[f"i{n}" for n in range(50)],
    )
    s.converged(verdict)
    assert (s.provisioned, s.lost, s.refused, s.not_attempted, s.duplicates) == (797, 3, 49, 50, 0)
    row = _table_row(ledger.render_markdown("pytest", 1.0, 0), "converge")
    assert (row["customers"], row["provisioned"], row["refused"], row["not attempted"]) == (
        "900",
        "797",
        "49",
        "50",
    )


def test_every_column_is_defined_and_the_text_table_matches() -> None:
    ledger = Ledger()
    s = ledger.open("x")
    s.requests = 5
    md = ledger.render_markdown("pytest -m chaos", 1.0, 0, complete=False)
    for _, header, _ in FIGURES:
        assert f"* **{header}**: " in md
    assert "Partial run" in md and md.startswith("# Chaos suite — results of a partial run")
    text = ledger.render_text()
    assert "API requests:" in text and "5 (in 1 of 1 scenarios)" in text and "not measured" in text
