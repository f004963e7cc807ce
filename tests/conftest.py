"""Shared test set-up: an isolated AIRFLOW_HOME, the metadata DB, paths and PostgreSQL.

The environment is set at import time, before any test module imports Airflow.
Sandbox fixtures (``bolna_sandbox``, ``bolna_sandbox_clean``, ``bolna_sandbox_factory``) come
from the project's pytest plugin, ``airflow_provider_bolna.sandbox.pytest_plugin``; ``sandbox``
is this suite's short name for ``bolna_sandbox_clean``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="bolna-airflow-test-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
os.environ.pop("AIRFLOW_CONN_BOLNA_DEFAULT", None)

from tests.airflow_cli import AirflowCLI

if TYPE_CHECKING:
    from airflow_provider_bolna.sandbox.testing import SandboxServer


@pytest.fixture
def sandbox(bolna_sandbox_clean: SandboxServer) -> SandboxServer:
    """The session sandbox, reset, with ``AIRFLOW_CONN_BOLNA_DEFAULT`` pointing at it (the
    plugin's ``bolna_sandbox_clean``; knobs per test: ``@pytest.mark.bolna_sandbox_knobs``)."""
    return bolna_sandbox_clean


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout."""
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (CI lays it there), or ``$BOLNA_SHARED_DIR``."""
    path = Path(os.environ.get("BOLNA_SHARED_DIR", REPO.parent / "shared"))
    if not (path / "bolna-api" / "sip-trunks.openapi.yaml").exists():
        pytest.skip(f"shared/ not found at {path}")
    return path


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """This test session's AIRFLOW_HOME (a temp dir)."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_cli(airflow_home: Path) -> AirflowCLI:
    """Run the ``airflow`` CLI against this session's metadata DB (migrated once)."""
    cli = AirflowCLI(airflow_home=airflow_home, dags_folder=REPO / "dags")
    cli.migrate()
    return cli


@pytest.fixture(scope="session")
def postgres_uri() -> str:
    """A PostgreSQL database for integration tests (``$BOLNA_TEST_POSTGRES_URI``).

    Skipped when unset, except in CI (``BOLNA_REQUIRE_POSTGRES=1``), where it fails.
    Start one with ``make postgres``.
    """
    uri = os.environ.get("BOLNA_TEST_POSTGRES_URI")
    if not uri:
        if os.environ.get("BOLNA_REQUIRE_POSTGRES") == "1":
            pytest.fail("BOLNA_TEST_POSTGRES_URI is not set but BOLNA_REQUIRE_POSTGRES=1")
        pytest.skip("no PostgreSQL: run `eval $(make -s postgres)` to enable these tests")
    return uri
