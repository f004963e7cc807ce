"""pytest fixtures for the Bolna sandbox (registered via the ``pytest11`` entry point).

* ``bolna_sandbox`` (session): one :class:`~.testing.SandboxServer` on a temp-file database.
* ``sandbox`` (function): the session server, reset (state, counters, knobs, seed) before the
  test, with ``AIRFLOW_CONN_BOLNA_DEFAULT`` pointing at it.
* ``bolna_sandbox_factory`` (function): ``factory(db_path=None, **knobs) -> SandboxServer``,
  started; every server it made is stopped after the test.

Import-light on purpose: this module is imported by every pytest run where the package is
installed, so the sandbox itself (httpx, subprocess helpers) is imported only when a fixture
is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import SandboxServer

SandboxFactory = Callable[..., "SandboxServer"]


@pytest.fixture(scope="session")
def bolna_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox server shared by the whole session (file DB in a session temp dir)."""
    from .testing import SandboxServer

    db_path = tmp_path_factory.mktemp("bolna-sandbox") / "sandbox.db"
    with SandboxServer(db_path) as server:
        yield server


@pytest.fixture
def sandbox(bolna_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """The session sandbox, emptied and back to default knobs; Airflow's default conn set."""
    from .testing import CONN_ID_ENV

    bolna_sandbox.reset_to_defaults()
    monkeypatch.setenv(CONN_ID_ENV, bolna_sandbox.airflow_conn_json())
    return bolna_sandbox


@pytest.fixture
def bolna_sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    """Start extra sandboxes with custom knobs: ``factory(db_path=None, **knobs)``.

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
