"""One overall deadline per HTTP exchange for the *sync* client.

httpx's timeouts bound each socket operation, not the exchange: a server that trickles its
headers or body a few bytes at a time, each within the read timeout, holds a call for as long
as it likes (11.7 s with ``timeout=1`` in a test). The async client is bounded with a wall-clock
``asyncio.timeout`` around the exchange; a thread cannot be interrupted that way, so here every
socket operation of the sync client is bounded by what is left of the exchange's deadline:

* :func:`within` sets the deadline of the exchange running in this thread (a context variable);
* :class:`_DeadlineBackend` wraps httpcore's network backend: ``connect`` and every ``read`` /
  ``write`` get ``min(their timeout, time left)`` and fail at once when no time is left
  (``ConnectTimeout`` before anything was sent, ``ReadTimeout`` / ``WriteTimeout`` after); a TLS
  handshake, which is several reads under one socket timeout, gets a watchdog that shuts the
  socket down at the deadline.

Worst case of one sync exchange: the deadline, plus the resolver's time for the host name
(``getaddrinfo`` cannot be interrupted; the OS resolver's own timeouts apply), plus, when the
host resolves to several unreachable addresses, one more connect timeout per extra address.

Installed by :func:`bound_client` into the connection pools of an ``httpx.Client`` (httpcore
offers no public way to choose the backend of an httpx transport; if its internals change, the
client keeps its per-phase timeouts and :func:`bound_client` reports ``False``).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

__all__ = ["bound_client", "within"]

_DEADLINE: ContextVar[float | None] = ContextVar("bolna_exchange_deadline", default=None)


@contextlib.contextmanager
def within(deadline: float) -> Iterator[None]:
    """Bound every socket operation of the sync client in this context by ``deadline``.

    :param deadline: ``time.monotonic()`` value by which the exchange must be over.
    """
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the deadline; ``expired`` when nothing is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the exchange's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the exchange's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # request bodies are one trunk (kilobytes): they fit the socket's send buffer at once
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        sock = self._stream.get_extra_info("socket")
        watchdog = None
        if timeout is not None and isinstance(sock, socket.socket):
            # the handshake reads several records under one socket timeout: cut it at the deadline
            watchdog = threading.Timer(timeout, _shut, (sock,))
            watchdog.daemon = True
            watchdog.start()
        try:
            return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with connections whose operations end by the deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_client(client: httpx.Client) -> bool:
    """Make every connection pool of ``client`` honour :func:`within`; ``False`` if it could not.

    :param client: a sync client (its default transport and proxy mounts are all bound).
    """
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    pools = [getattr(t, "_pool", None) for t in transports]
    if not all(isinstance(getattr(p, "_network_backend", None), httpcore.NetworkBackend) for p in pools):
        return False
    for pool in pools:
        if not isinstance(pool._network_backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(pool._network_backend)
    return True
