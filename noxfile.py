"""The compatibility matrix: the provider on every supported Airflow, each pair in a fresh venv.

Every session builds a new virtualenv with uv (``uv venv`` + ``uv pip install``), installs the
provider (``-e .[test]``) with one Airflow release, and runs the unit, operators and
provisioning suites, which include real ``airflow dags test`` runs of the DAGs against the
sandbox.

    nox -l                                          # every session; * = run by default
    nox                                             # the CI pairs, one after another
    make test-matrix                                # the CI pairs, 3 at a time (scripts/test_matrix.py)
    nox -s "tests(airflow='3.1', python='3.12')"    # one pair (any supported pair)
    nox -t full                                     # every supported pair
    nox -s "tests(airflow='2.11', python='3.10')" -- tests/unit -x   # pytest arguments

``BOLNA_MATRIX_SUITES`` (space-separated paths) replaces the default suites; pytest arguments
after ``--`` are added to them, or replace them if one of them is a path. The PostgreSQL tests
run when ``BOLNA_TEST_POSTGRES_URI`` is set, as in ``make test``.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

#: The Airflow release tested for each supported minor version (the latest patch release).
AIRFLOW = {"2.11": "2.11.2", "3.0": "3.0.6", "3.1": "3.1.8", "3.2": "3.2.2", "3.3": "3.3.2"}

#: The Python versions each Airflow release supports (its Requires-Python), within the 3.10-3.13
#: this project supports.
PYTHONS = {
    "2.11": ("3.10", "3.11", "3.12"),
    "3.0": ("3.10", "3.11", "3.12"),
    "3.1": ("3.10", "3.11", "3.12", "3.13"),
    "3.2": ("3.10", "3.11", "3.12", "3.13"),
    "3.3": ("3.10", "3.11", "3.12", "3.13"),
}

#: The pairs CI runs: each Airflow and each Python version at least once. ``make test`` covers
#: Airflow 3.3 on Python 3.11 already.
CI_PAIRS = (("2.11", "3.10"), ("3.0", "3.12"), ("3.1", "3.13"), ("3.2", "3.11"), ("3.3", "3.13"))

#: What a plain resolution gets wrong per Airflow version (Airflow's constraint files are not
#: reachable from CI, so everything else is the resolver's newest pick). Each pin was needed for
#: ``airflow dags test`` of a one-task DAG to pass:
#: * 3.0: FastAPI >= 0.117 makes the in-process execution API answer 422 to ``PATCH .../run``.
#: * 3.2: FastAPI >= 0.137 (with cadwyn 9) fails building ``TITerminalStatePayload``'s
#:   discriminated union; svcs 26 leaves ``app.state.svcs_registry`` unset in the in-process API.
PINS: dict[str, tuple[str, ...]] = {
    "3.0": ("fastapi<0.117",),
    "3.2": ("fastapi<0.137", "svcs<26"),
}

DEFAULT_SUITES = ("tests/unit", "tests/operators", "tests/provisioning")

nox.options.default_venv_backend = "none"
nox.options.sessions = [f"tests(airflow='{a}', python='{p}')" for a, p in CI_PAIRS]
nox.options.error_on_missing_interpreters = True


def interpreter(python: str) -> str:
    """The interpreter for ``python`` (X.Y): pyenv's build if there is one, else uv finds it."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found = sorted(glob.glob(f"{pyenv_root}/versions/{python}.*/bin/python{python}"))
    return found[-1] if found else python


def suites(posargs: list[str]) -> list[str]:
    """pytest arguments: the suites (default or $BOLNA_MATRIX_SUITES) unless posargs name paths."""
    chosen = shlex.split(os.environ.get("BOLNA_MATRIX_SUITES", "")) or list(DEFAULT_SUITES)
    names_paths = any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in posargs)
    return list(posargs) if names_paths else [*chosen, *posargs]


@nox.session(venv_backend="none")
@nox.parametrize(
    ("airflow", "python"),
    [
        nox.param(a, p, tags=["full", *(["ci"] if (a, p) in CI_PAIRS else [])])
        for a, pythons in PYTHONS.items()
        for p in pythons
    ],
)
def tests(session: nox.Session, airflow: str, python: str) -> None:
    """A fresh uv venv with the provider and this Airflow on this Python; the unit, operators and
    provisioning suites (or the pytest arguments given after ``--``)."""
    uv = shutil.which("uv")
    if uv is None:
        session.error("uv is not on PATH (pip install uv)")
    venv = ROOT / ".nox" / f"airflow{airflow}-py{python}"
    started = time.monotonic()
    session.run(uv, "venv", "-q", "--clear", "--python", interpreter(python), str(venv), external=True)
    session.run(
        uv,
        "pip",
        "install",
        "-q",
        "--python",
        str(venv / "bin" / "python"),
        "-e",
        ".[test]",
        f"apache-airflow=={AIRFLOW[airflow]}",
        *PINS.get(airflow, ()),
        external=True,
    )
    installed = time.monotonic() - started
    version = session.run(
        str(venv / "bin" / "python"),
        "-c",
        "import sys, airflow; print(f'apache-airflow {airflow.__version__} on Python {sys.version.split()[0]}')",
        external=True,
        silent=True,
    )
    session.log("%s, installed in %.0f s", (version or "").strip(), installed)
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        session.run(
            str(venv / "bin" / "pytest"),
            "-m",
            "not chaos and not e2e and not e2e_celery",
            "-p",
            "no:cacheprovider",
            *suites(session.posargs),
            env=env,
            external=True,
        )
    finally:
        session.log("airflow %s / python %s: %.0f s in all", airflow, python, time.monotonic() - started)
