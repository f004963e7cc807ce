"""The retry policy of one call: what is retried, how long to wait, when to stop.

Used by both exchange drivers of :class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook`
(tenacity's ``Retrying`` and ``AsyncRetrying`` take the same policy). A call is retried while
its error is transient and resending can do no harm, up to ``max_retries`` more attempts, and
no wait is started that would end past the public call's time budget.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState, retry_if_exception

from airflow_provider_bolna.exceptions import BolnaError, BolnaRateLimitError

if TYPE_CHECKING:
    from airflow_provider_bolna.hooks.instructions import _Call
    from airflow_provider_bolna.hooks.settings import BolnaSettings

__all__ = ["backoff", "retry_policy", "should_retry"]


def retry_policy(
    call: _Call, settings: BolnaSettings, log: logging.Logger, *, retry: bool, until: float
) -> dict[str, Any]:
    """tenacity's arguments for sending ``call``.

    :param call: the request (named in the warning logged before each retry).
    :param settings: the connection's retry settings (``max_retries``, delays).
    :param log: where each retry is logged.
    :param retry: ``False``: one attempt only.
    :param until: ``time.monotonic()`` past which no retry (or wait) starts.
    """
    attempts = (settings.max_retries + 1) if retry else 1

    def stop(state: RetryCallState) -> bool:
        # never start a wait that would end past the budget
        return state.attempt_number >= attempts or time.monotonic() + (state.upcoming_sleep or 0) >= until

    return {
        "stop": stop,
        "wait": lambda state: backoff(settings, state),
        "retry": retry_if_exception(should_retry),
        "before_sleep": lambda state: _log_retry(log, call, state),
        "reraise": True,
    }


def backoff(s: BolnaSettings, state: RetryCallState) -> float:
    """Exponential back-off with full jitter; a server's ``Retry-After`` wins (capped).

    :param s: the connection's settings (``retry_base_delay``, ``retry_max_delay``).
    :param state: tenacity's state of the call (attempt number, last error).
    """
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, BolnaRateLimitError) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), s.retry_max_delay)
    ceiling = min(s.retry_max_delay, s.retry_base_delay * 2 ** (state.attempt_number - 1))
    return random.uniform(ceiling / 2, ceiling)


def _log_retry(log: logging.Logger, call: _Call, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "Bolna %s %s failed on attempt %d (%s); retrying in %.2fs",
        call.method,
        call.path,
        state.attempt_number,
        exc,
        delay,
    )


def should_retry(exc: BaseException) -> bool:
    """Retry what failed transiently, but never resend a POST whose effect is unknown."""
    return isinstance(exc, BolnaError) and exc.retryable and not exc.ambiguous
