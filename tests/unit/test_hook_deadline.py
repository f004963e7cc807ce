"""One overall deadline per HTTP exchange, against a real local server that answers slowly.

httpx's own timeouts bound each socket read: a server trickling its headers or body a byte at a
time (each byte well within the read timeout) used to hold one call for as long as it liked.
The hook must end every exchange within the connection's ``timeout`` (plus a small margin),
sync and async, and a POST whose request was sent is then ambiguous.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from airflow_provider_bolna.exceptions import BolnaTransportError
from airflow_provider_bolna.hooks.bolna import BolnaHook, BolnaSettings
from tests.unit.helpers import Runner, spec

TIMEOUT = 0.5
#: scheduling slack on a busy 2-core machine; the trickle lasts far longer than timeout + margin
MARGIN = 1.0
TRICKLE_SECONDS = 8.0


class TricklingServer:
    """Answers every request slowly: ``headers`` trickles the header block, ``body`` sends the
    headers at once then trickles the body; one byte every 0.1 s, for ``TRICKLE_SECONDS``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            if self.mode == "headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                slow = b"X-Pad: " + b"a" * 200 + b"\r\n\r\n[]"
            else:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
                )
                slow = b"[" + b" " * 399
            ends = time.monotonic() + TRICKLE_SECONDS
            for byte in slow:
                if self._stop.is_set() or time.monotonic() > ends:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what we want
                time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)


@pytest.fixture(params=["headers", "body"])
def server(request: pytest.FixtureRequest) -> Iterator[TricklingServer]:
    srv = TricklingServer(request.param)
    yield srv
    srv.close()


def _hook(url: str) -> BolnaHook:
    return BolnaHook(
        settings=BolnaSettings(
            api_key=SecretStr("k-deadline-test"),
            base_url=url,
            timeout=TIMEOUT,
            max_retries=0,
            requests_per_minute=0,
        )
    )


def test_a_trickling_server_cannot_hold_a_call_past_its_timeout(server: TricklingServer, run: Runner) -> None:
    started = time.monotonic()
    with pytest.raises(BolnaTransportError) as info:
        run(_hook(server.url), "get_trunk", "T1")
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + MARGIN, f"the call took {elapsed:.2f}s with timeout={TIMEOUT}"
    assert server.requests == 1
    assert info.value.retryable and not info.value.ambiguous  # a GET: safe to send again


def test_a_post_cut_by_the_deadline_is_ambiguous(server: TricklingServer, run: Runner) -> None:
    """The request went out: the trunk may exist now (ensure_trunk looks before sending again)."""
    started = time.monotonic()
    with pytest.raises(BolnaTransportError) as info:
        run(_hook(server.url), "create_trunk", spec())
    assert time.monotonic() - started < TIMEOUT + MARGIN
    assert info.value.ambiguous is True
    assert server.requests == 1, "an ambiguous POST is never sent again blindly"


def test_each_retry_gets_its_own_deadline(run: Runner) -> None:
    server = TricklingServer("body")
    try:
        hook = BolnaHook(
            settings=BolnaSettings(
                api_key=SecretStr("k-deadline-test"),
                base_url=server.url,
                timeout=0.5,
                max_retries=2,
                retry_base_delay=0.01,
                requests_per_minute=0,
            )
        )
        started = time.monotonic()
        with pytest.raises(BolnaTransportError):
            run(hook, "get_trunk", "T1")
        assert server.requests == 3
        assert time.monotonic() - started < 3 * 0.5 + MARGIN
    finally:
        server.close()
