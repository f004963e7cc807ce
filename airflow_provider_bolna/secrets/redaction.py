"""Known secrets out of text: redaction before anything is cut, and the log masker.

``redact`` replaces every known secret in a text by ``***``, and also a piece of one cut off by
the start or the end of the text (a truncated response body that echoed it). Anything that is
shortened for a message goes through :func:`excerpt`, which redacts *before* cutting, so a cut
can never leave a fragment of a secret behind.

``mask_secret`` / ``amask_secret`` register a secret with Airflow's log masker; they never
raise (masking must never break a call). Nothing here imports Airflow at module level.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["amask_secret", "excerpt", "mask_secret", "may_hold", "redact", "redact_strings"]

#: A leaked piece of a secret shorter than this is left alone (it could be any text).
FRAGMENT_MIN = 8
#: Secrets shorter than this are not searched for (they would redact ordinary words).
SECRET_MIN = 3


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``, and so is a piece of one (at least
    :data:`FRAGMENT_MIN` characters) cut off by the end or the start of ``text``.

    :param text: the text to clean.
    :param secrets: the values that must not appear.
    """
    for secret in secrets:
        if secret and len(secret) >= SECRET_MIN:
            text = text.replace(secret, "***")
            for size in range(len(secret) - 1, FRAGMENT_MIN - 1, -1):
                if text.endswith(secret[:size]):
                    text = text[:-size] + "***"
                    break
            for size in range(len(secret) - 1, FRAGMENT_MIN - 1, -1):
                if text.startswith(secret[-size:]):
                    text = "***" + text[size:]
                    break
    return text


def may_hold(text: str, secrets: Iterable[str], start: int = 0, end: int | None = None) -> bool:
    """Whether ``text[start:end]`` (JSON text) may hold a secret or a piece :func:`redact` would
    remove: the cheap test that spares clean bodies the redaction walk. Any backslash counts (a
    JSON escape can spell a secret's characters another way).

    :param text: the text to test.
    :param secrets: the values that must not appear.
    :param start: where the part tested starts.
    :param end: where it ends (``None``: the end of ``text``).
    """
    end = len(text) if end is None else end
    if text.find("\\", start, end) >= 0:
        return True
    return any(
        text.find(secret[:FRAGMENT_MIN], start, end) >= 0
        or text.find(secret[-FRAGMENT_MIN:], start, end) >= 0
        for secret in secrets
        if secret and len(secret) >= SECRET_MIN
    )


def redact_strings(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (decoded JSON) with every string redacted, dict keys included.

    :param value: a decoded JSON value.
    :param secrets: the values that must not appear.
    """
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [redact_strings(v, secrets) for v in value]
    if isinstance(value, dict):  # keys too: a cut of a rendered item must not leave a fragment
        return {redact(str(k), secrets): redact_strings(v, secrets) for k, v in value.items()}
    return value


def excerpt(text: str, secrets: Iterable[str], limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters (``…`` marks a cut).

    :param text: the text to shorten.
    :param secrets: the values that must not appear.
    :param limit: the most characters kept.
    """
    text = redact(text, secrets)
    return (text[:limit] + "…") if len(text) > limit else text


def mask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker (no-op without Airflow; never raises)."""
    with contextlib.suppress(Exception):  # masking must never break a call
        from airflow_provider_bolna.version_compat import mask_secret as airflow_mask_secret

        airflow_mask_secret(secret)


async def amask_secret(secret: str) -> None:
    """Async twin of :func:`mask_secret`, safe on the triggerer's event loop."""
    with contextlib.suppress(Exception):
        from airflow_provider_bolna.version_compat import amask_secret as airflow_amask_secret

        await airflow_amask_secret(secret)
