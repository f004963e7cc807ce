"""ULID-like identifiers: 26 uppercase Crockford base32 characters, time-ordered.

48 bits of milliseconds since the epoch followed by 80 random bits. Within one process the
sequence is strictly increasing (monotonic ULIDs): an id minted in the same millisecond as the
previous one increments the random part instead of drawing a new one.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


class UlidGenerator:
    """Mints monotonic ULIDs; one instance per process is enough."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def new(self) -> str:
        """Return a fresh id greater than every id this generator returned before."""
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= self._last_ms:
            now_ms = self._last_ms
            rand = self._last_rand + 1
            if rand > _RANDOM_MAX:  # pragma: no cover - 2**80 ids in one millisecond
                now_ms, rand = now_ms + 1, 0
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        self._last_ms, self._last_rand = now_ms, rand
        return _encode((now_ms << _RANDOM_BITS) | rand, 26)


new_id = UlidGenerator().new
