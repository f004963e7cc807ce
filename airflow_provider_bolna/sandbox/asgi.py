"""Minimal ASGI plumbing: read a body, send JSON, send a deliberately broken response.

The sandbox speaks raw ASGI (no framework) because it needs byte-level control to break a
response half-way, and because it is faster.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

MAX_BODY_BYTES = 5 * 1024 * 1024
_intentional_drop: contextvars.ContextVar[bool] = contextvars.ContextVar("bolna_sandbox_drop", default=False)
_UVICORN_INCOMPLETE = "ASGI callable returned without completing response."


@dataclass(frozen=True)
class RawJson:
    """JSON text produced elsewhere (by SQLite), sent as-is."""

    text: str


def encode_json(payload: Any) -> bytes:
    """Response bytes: raw JSON text as UTF-8, anything else as compact JSON."""
    if isinstance(payload, RawJson):
        return payload.text.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def _start(status: int, length: int, headers: Iterable[Header]) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
            *headers,
        ],
    }


async def send_json(send: Send, status: int, payload: Any, headers: Iterable[Header] = ()) -> None:
    """Send a complete JSON response."""
    body = encode_json(payload)
    await send(_start(status, len(body), headers))
    await send({"type": "http.response.body", "body": body})


async def send_broken(send: Send, status: int, payload: Any) -> None:
    """Announce the full body, send only half of it, and return without finishing.

    The server then closes the connection; an HTTP client sees a transport error
    (``httpx.RemoteProtocolError``: peer closed connection without sending complete message
    body), never the status line's promise.
    """
    body = encode_json(payload)
    await send(_start(status, len(body), ()))
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    _intentional_drop.set(True)


class IntentionalDropFilter(logging.Filter):
    """Silence uvicorn's error log for responses the sandbox broke on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == _UVICORN_INCOMPLETE and _intentional_drop.get())


async def read_body(receive: Receive) -> bytes:
    """The whole request body (400 beyond :data:`MAX_BODY_BYTES`)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise bad_request("body", f"larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Parse a JSON request body; 400 for an empty or malformed one (NaN/Infinity included)."""
    if not body.strip():
        raise bad_request("body", "a JSON body is required")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise bad_request("body", "malformed JSON") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def header(scope: Scope, name: bytes) -> str | None:
    """The first request header called ``name`` (lower-case bytes), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def is_loopback(scope: Scope) -> bool:
    """Whether the peer is on the loopback interface (or unknown, e.g. a unix socket)."""
    client = scope.get("client")
    if not client:
        return True
    host = str(client[0])
    return host == "::1" or host.startswith(("127.", "::ffff:127."))
