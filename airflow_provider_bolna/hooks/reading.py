"""How the hook reads response bodies, fed chunk by chunk whatever the driver (sync or async),
and turns error bodies and headers into messages with every known secret redacted.

* :class:`WholeJson` — a success body decoded whole, then parsed (one trunk, one number...).
* :class:`JsonItems` — a success body that is a JSON array, decoded one item at a time with
  ``json.JSONDecoder.raw_decode`` over a rolling buffer; each item is kept (parsed) or dropped
  as it arrives, so listing a 100,000-trunk account holds one item, one chunk and the kept
  trunks in memory, never the whole body or its decoded form.
* :class:`ErrorBytes` — an error body, kept up to a limit (the message needs a few hundred
  characters; a hostile server may send gigabytes).

A body never raises from :meth:`feed`: the first error is kept and raised by ``result()``.
A success body is redacted before it is parsed: a server that echoes the API key or a SIP
password in any field (a proxy's debug page, a misconfigured gateway) cannot put it into a
returned model, and so into a log line, an XCom or the state table.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from pydantic import ValidationError

from airflow_provider_bolna.models import ErrorBody
from airflow_provider_bolna.secrets.redaction import excerpt, may_hold, redact, redact_strings

__all__ = [
    "ErrorBytes",
    "JsonArrayReader",
    "JsonItems",
    "WholeJson",
    "error_text",
    "header_text",
    "retry_after_seconds",
]

#: Characters of an error message kept from the body (after redaction).
ERROR_TEXT_LIMIT = 300
#: Characters of a response header kept in a message (after redaction).
HEADER_TEXT_LIMIT = 100

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_AFTER_ITEM = " \t\n\r,]"


class WholeJson:
    """A success body decoded as one JSON document, then parsed.

    :param parse: decoded JSON (``None`` for an empty body) → the call's result.
    :param secrets: values redacted from every string of the body before it is parsed.
    """

    def __init__(self, parse: Callable[[Any], Any], secrets: tuple[str, ...] = ()) -> None:
        self._parse = parse
        self.secrets = secrets
        self._parts: list[bytes] = []
        self.size = 0

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``True`` means "stop reading" (never, here)."""
        self._parts.append(chunk)
        self.size += len(chunk)
        return False

    def result(self) -> Any:
        """The parsed body. :raises ValueError, ValidationError, TypeError: a bad body."""
        body = b"".join(self._parts)
        data = json.loads(body) if body else None
        if self.secrets and may_hold(body.decode("utf-8", "replace"), self.secrets):
            data = redact_strings(data, self.secrets)
        return self._parse(data)


class JsonArrayReader:
    """Decode a JSON array from text pieces, handing each item to ``on_item`` as it completes.

    Memory: the unread rest of the last piece and the item being decoded. A failed decode of an
    incomplete item is tried again only once the pending text has doubled, so the work stays
    linear in the body's size however the chunks fall.

    :param on_item: called with each decoded item, in order.
    :param max_item_chars: an item longer than this is an error (a trunk is a few kilobytes).
    :param secrets: values redacted from every string of an item before ``on_item`` sees it.
    """

    def __init__(
        self, on_item: Callable[[Any], None], max_item_chars: int = 16 * 2**20, secrets: tuple[str, ...] = ()
    ) -> None:
        self._on_item = on_item
        self.secrets = secrets
        self._max_item = max_item_chars
        self._decode = json.JSONDecoder().raw_decode
        self._text = codecs.getincrementaldecoder("utf-8")("strict")
        self._buf = ""
        self._pos = 0
        self._state = "start"  # start → first → (item → next)* → done
        self._retry_from = 0  # decode the pending item again once this many chars are pending
        self.count = 0

    def feed(self, chunk: bytes) -> None:
        """Decode what ``chunk`` completes. :raises ValueError: the body is not a JSON array."""
        self._buf += self._text.decode(chunk)
        self._advance(final=False)
        self._buf, self._pos = self._buf[self._pos :], 0

    def close(self) -> None:
        """The body ended. :raises ValueError: the array is incomplete or followed by data."""
        self._buf += self._text.decode(b"", final=True)
        self._advance(final=True)
        if self._state == "start":
            raise TypeError("expected a JSON array, got an empty body")
        if self._state != "done":
            raise ValueError("the JSON array ends early")

    def _advance(self, final: bool) -> None:
        buf = self._buf
        while True:
            pos = self._pos = _WHITESPACE.match(buf, self._pos).end()  # type: ignore[union-attr]
            if pos >= len(buf):
                return
            char = buf[pos]
            if self._state == "start":
                if char != "[":
                    # valid JSON of another shape is a shape error; anything else is not JSON
                    raise (TypeError if char in '{"-0123456789tfn' else ValueError)("expected a JSON array")
                self._pos, self._state = pos + 1, "first"
            elif self._state == "done":
                raise ValueError("data after the JSON array")
            elif self._state == "next" or (self._state == "first" and char == "]"):
                if char not in ",]":
                    raise ValueError("expected ',' or ']' between array items")
                self._pos, self._state = pos + 1, ("item" if char == "," else "done")
            elif not self._item(buf, pos, final):
                return

    def _item(self, buf: str, pos: int, final: bool) -> bool:
        """Decode the item at ``pos``; ``False`` when it needs more text."""
        pending = len(buf) - pos
        if not final and pending < self._retry_from:
            return False
        try:
            value, end = self._decode(buf, pos)
        except json.JSONDecodeError:
            if final:
                raise
            if pending > self._max_item:
                raise ValueError(
                    f"an item of the JSON array is longer than {self._max_item} characters"
                ) from None
            self._retry_from = 2 * pending
            return False
        if not final and isinstance(value, (int, float)) and (end >= len(buf) or buf[end] not in _AFTER_ITEM):
            return False  # a number cut by the chunk ("1.5e" of "1.5e-7") may go on in the next one
        self._retry_from = 0
        self._pos, self._state = end, "next"
        self.count += 1
        if self.secrets and may_hold(buf, self.secrets, pos, end):
            value = redact_strings(value, self.secrets)
        self._on_item(value)
        return True


class JsonItems:
    """A success body that is a JSON array, read item by item.

    :param keep: item → the parsed value to keep, or ``None`` to drop it.
    :param finish: the kept values, in order → the call's result.
    :param secrets: values redacted from every item before it is kept.
    """

    def __init__(
        self,
        keep: Callable[[Any], Any],
        finish: Callable[[list[Any]], Any] = list,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._keep = keep
        self._finish = finish
        self._kept: list[Any] = []
        self._reader = JsonArrayReader(self._on_item, secrets=secrets)
        self._error: BaseException | None = None
        self.size = 0

    def _on_item(self, item: Any) -> None:
        value = self._keep(item)
        if value is not None:
            self._kept.append(value)

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``True`` (stop reading) once the body is known to be bad."""
        self.size += len(chunk)
        if self._error is None:
            try:
                self._reader.feed(chunk)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                self._error = exc
        return self._error is not None

    def result(self) -> Any:
        """The call's result. :raises ValueError, ValidationError, TypeError: a bad body."""
        if self._error is not None:
            raise self._error
        self._reader.close()
        return self._finish(self._kept)


class ErrorBytes:
    """An error body, kept up to ``limit`` bytes (the rest is not read).

    :param limit: bytes kept.
    """

    def __init__(self, limit: int = 64 * 1024) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self.size = 0

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``True`` (stop reading) once ``limit`` bytes are kept."""
        room = self._limit - self.size
        self._parts.append(chunk[:room])
        self.size += min(len(chunk), room)
        return self.size >= self._limit

    @property
    def content(self) -> bytes:
        """The kept bytes."""
        return b"".join(self._parts)


def error_text(content: bytes, response: httpx.Response, secrets: Iterable[str] = ()) -> str:
    """The API's error message from any body shape, or a short excerpt of a non-JSON body.

    Secrets are redacted *before* anything is truncated, so a cut can never leave a
    fragment of a secret behind.
    """
    secrets = tuple(secrets)
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        text = _decode(content, response).strip()
    else:
        text = ""
        if isinstance(data, dict):
            try:
                text = ErrorBody.model_validate(redact_strings(data, secrets)).text()
            except (ValidationError, TypeError, ValueError, AttributeError, RecursionError):
                text = ""  # an error body of an unexpected shape: the status line says enough
    return excerpt(redact(text, secrets) or response.reason_phrase, secrets, ERROR_TEXT_LIMIT)


def _decode(content: bytes, response: httpx.Response) -> str:
    try:
        return content.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset in the content-type
        return content.decode("utf-8", errors="replace")


def header_text(value: str | None, secrets: Iterable[str]) -> str | None:
    """A response header fit for a message: secrets redacted, then cut."""
    return excerpt(value, secrets, HEADER_TEXT_LIMIT) if value else None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta or HTTP date); ``None`` if unusable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None  # "inf", "nan", "1e999"
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
