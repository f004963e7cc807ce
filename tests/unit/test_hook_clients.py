"""The hook's clients over real sockets: the async client of a finished event loop is closed,
not leaked, and ``aclose`` forgets the loop.

A local keep-alive HTTP server records when the client closes each connection, which is what
"closed" means to the server and to the operating system (an unclosed client keeps its
sockets until garbage collection, with a ``ResourceWarning``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from airflow_provider_bolna.hooks.bolna import BolnaHook
from tests.unit.helpers import make_hook

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


class KeepAliveServer:
    """Answers ``[]`` to every request on a connection until the client closes it."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.opened = 0
        self.closed = threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.opened += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            pending = b""
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break  # the client closed the connection
                pending += chunk
                while b"\r\n\r\n" in pending:
                    _, pending = pending.split(b"\r\n\r\n", 1)
                    conn.sendall(ANSWER)
        self.closed.release()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    srv = KeepAliveServer()
    yield srv
    srv.close()


def _hook(server: KeepAliveServer) -> BolnaHook:
    return make_hook(base_url=server.url)


def test_the_client_of_a_finished_loop_is_closed_not_leaked(server: KeepAliveServer) -> None:
    hook = _hook(server)

    async def first() -> object:
        await hook.alist_trunks()
        return await hook.aclient()

    old = asyncio.run(first())  # a task's asyncio.run, a test, a script: the loop ends here
    assert server.closed.acquire(timeout=5), "the finished loop's connection was left open"

    async def second() -> object:
        await hook.alist_trunks()
        client = await hook.aclient()
        await hook.aclose()
        return client

    new = asyncio.run(second())
    assert new is not old and old.is_closed and new.is_closed
    assert server.opened == 2 and server.closed.acquire(timeout=5)


def test_aclose_forgets_the_loop(server: KeepAliveServer) -> None:
    hook = _hook(server)

    async def go() -> None:
        first = await hook.aclient()
        await hook.aclose()
        assert hook._aclient_loop is None  # no reference to a loop that may end
        second = await hook.aclient()
        assert second is not first and not second.is_closed
        await hook.aclose()

    asyncio.run(go())


def test_the_client_of_a_loop_still_running_elsewhere_is_closed_on_that_loop(server: KeepAliveServer) -> None:
    hook = _hook(server)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(hook.alist_trunks(), other).result(timeout=5)
        old = asyncio.run_coroutine_threadsafe(hook.aclient(), other).result(timeout=5)

        async def here() -> None:
            await hook.alist_trunks()  # another loop: a client of its own
            await hook.aclose()

        asyncio.run(here())
        assert server.closed.acquire(timeout=5) and server.closed.acquire(timeout=5)
        assert old.is_closed
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(timeout=5)
        other.close()
