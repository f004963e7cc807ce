"""The supported (Airflow, Python) versions are declared once per place and agree: the matrix
(``noxfile.py``), ``pyproject.toml`` (Requires-Python, classifiers, the Airflow range) and the
README's table; and CI's pairs cover every Airflow and every Python version."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (make test's interpreter)

REPO = Path(__file__).resolve().parents[2]


def _noxfile_constants() -> dict[str, Any]:
    tree = ast.parse((REPO / "noxfile.py").read_text(encoding="utf-8"))
    wanted = {"AIRFLOW", "PYTHONS", "CI_PAIRS"}
    found: dict[str, Any] = {}
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id in wanted and node.value is not None:
            found[target.id] = ast.literal_eval(node.value)
    assert set(found) == wanted, found
    return found


@pytest.fixture(scope="module")
def matrix() -> dict[str, Any]:
    return _noxfile_constants()


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pythons(matrix: dict[str, Any]) -> list[str]:
    return sorted({p for ps in matrix["PYTHONS"].values() for p in ps}, key=Version)


def test_ci_pairs_cover_every_airflow_and_every_python(matrix: dict[str, Any]) -> None:
    pairs = set(matrix["CI_PAIRS"])
    assert {a for a, _ in pairs} == set(matrix["AIRFLOW"]) == set(matrix["PYTHONS"])
    assert {p for _, p in pairs} == set(_pythons(matrix))
    assert all(p in matrix["PYTHONS"][a] for a, p in pairs), "a CI pair that Airflow does not support"
    for minor, release in matrix["AIRFLOW"].items():
        assert release.startswith(f"{minor}."), (minor, release)


def test_requires_python_and_classifiers_are_the_matrix_pythons(
    matrix: dict[str, Any], project: dict[str, Any]
) -> None:
    pythons = _pythons(matrix)
    spec = SpecifierSet(project["requires-python"])
    candidates = [f"3.{m}" for m in range(6, 20)]
    assert [p for p in candidates if spec.contains(f"{p}.0")] == pythons
    declared = sorted(
        (
            c.rsplit(" :: ", 1)[1]
            for c in project["classifiers"]
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
        ),
        key=Version,
    )
    assert declared == pythons


def test_the_airflow_requirement_is_the_matrix_range(matrix: dict[str, Any], project: dict[str, Any]) -> None:
    (airflow,) = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "apache-airflow"]
    releases = [Version(r) for r in matrix["AIRFLOW"].values()]
    assert all(airflow.specifier.contains(r) for r in releases)
    lowest, highest = min(releases), max(releases)
    assert {(s.operator, s.version) for s in airflow.specifier} == {
        (">=", f"{lowest.major}.{lowest.minor}.0"),
        ("<", f"{highest.major}.{highest.minor + 1}"),
    }, "the range is the tested minors, from the first release of the oldest"


def test_the_readme_table_lists_every_supported_pair(matrix: dict[str, Any]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = dict(matrix["CI_PAIRS"])
    for minor, release in matrix["AIRFLOW"].items():
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| {minor} ({release}) |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        pythons = matrix["PYTHONS"][minor]
        assert cells[1] == f"{pythons[0]}–{pythons[-1]}", row
        assert cells[2].split()[0] == ci[minor], row
        assert [p for p in pythons if p != ci[minor]] == re.findall(r"3\.\d+", cells[3]), row
