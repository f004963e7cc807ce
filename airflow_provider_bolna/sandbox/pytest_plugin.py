"""pytest fixtures for the Bolna sandbox (registered via the ``pytest11`` entry point).

Loaded in every pytest run where the package is installed, so every name it adds starts with
``bolna_`` (a project's own ``sandbox`` fixture stays its own):

* ``bolna_sandbox`` (session): one :class:`~.testing.SandboxServer` on a temp-file database.
* ``bolna_sandbox_clean`` (function): the session server, reset (state, records, counters,
  knobs, seed) before the test, with ``AIRFLOW_CONN_BOLNA_DEFAULT`` pointing at it. Knobs for
  one test: ``@pytest.mark.bolna_sandbox_knobs(unique_names=False, ...)``.
* ``bolna_sandbox_factory`` (function): ``factory(db_path=None, **knobs) -> SandboxServer``,
  started; every server it made is stopped after the test.

Import-light on purpose: the sandbox itself (httpx, subprocess helpers) is imported only when
a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import SandboxServer

SandboxFactory = Callable[..., "SandboxServer"]
KNOBS_MARKER = "bolna_sandbox_knobs"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker that sets knobs for ``bolna_sandbox_clean``."""
    config.addinivalue_line(
        "markers", f"{KNOBS_MARKER}(**knobs): sandbox knobs for this test (bolna_sandbox_clean)"
    )


@pytest.fixture(scope="session")
def bolna_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox server shared by the whole session (file DB in a session temp dir)."""
    from .testing import SandboxServer

    db_path = tmp_path_factory.mktemp("bolna-sandbox") / "sandbox.db"
    with SandboxServer(db_path) as server:
        yield server


@pytest.fixture
def bolna_sandbox_clean(
    bolna_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> SandboxServer:
    """The session sandbox, emptied and back to default knobs (plus the knobs of a
    ``bolna_sandbox_knobs`` marker); Airflow's default Bolna connection points at it."""
    from .testing import CONN_ID_ENV, knob_args

    knobs: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(KNOBS_MARKER))):  # closest wins
        knobs.update(marker.kwargs)
    knob_args(knobs)  # TypeError naming a misspelt knob
    bolna_sandbox.reset_to_defaults()
    if knobs:
        bolna_sandbox.admin.config(**knobs)
    monkeypatch.setenv(CONN_ID_ENV, bolna_sandbox.airflow_conn_json())
    return bolna_sandbox


@pytest.fixture
def bolna_sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    """Start extra sandboxes with custom knobs: ``factory(db_path=None, **knobs)``, e.g.
    ``factory(unique_names=False, fail_rate=0.1)``.

    Without ``db_path`` each server gets a fresh file DB in a temp dir. Servers are stopped at
    teardown.
    """
    from .testing import SandboxServer

    servers: list[SandboxServer] = []

    def start(db_path: Any = None, **knobs: Any) -> SandboxServer:
        if db_path is None:
            db_path = tmp_path_factory.mktemp("bolna-sandbox") / "sandbox.db"
        server = SandboxServer(db_path, **knobs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
