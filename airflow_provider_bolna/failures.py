"""The failure policy, in one place: which errors a retry can fix, and what a task does about it.

One rule for every operator, the sensor (poke and deferrable alike) and the trigger:

* **permanent** — a refused API key (:class:`BolnaAuthError`), an unknown voice agent
  (:class:`BolnaAgentNotFoundError`), an invalid spec, update, number or connection
  (:class:`BolnaValidationError`, :class:`SpecError`), an unreadable password reference
  (:class:`SecretRefError`), a conflict (:class:`BolnaConflictError`), or a
  :class:`BolnaPhoneNumbersError` or :class:`BolnaBindingError` whose every failure is one of
  those: the task fails with ``AirflowFailException`` (no retries), chained to the original error;
* **transient** — anything else (429, 5xx, timeouts, already retried inside the hook; an
  unexpected answer; a missing connection): the error propagates, so Airflow's task retries
  apply, and the rerun is safe;
* **not ready yet** — while waiting for readiness, a transient API error or a 404 means "check
  again later" (:func:`means_not_ready`), in poke mode and in the trigger alike.

A trigger cannot raise into its task: it sends an error event (:func:`error_event`) that
``execute_complete`` turns back into the same outcome (:func:`raise_for_error_event`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_bolna.exceptions import (
    BolnaAgentNotFoundError,
    BolnaAuthError,
    BolnaBindingError,
    BolnaConflictError,
    BolnaError,
    BolnaNotFoundError,
    BolnaPhoneNumbersError,
    BolnaValidationError,
)
from airflow_provider_bolna.models import SpecError
from airflow_provider_bolna.secrets_ref import SecretRefError

__all__ = [
    "PERMANENT_ERRORS",
    "bolna_error_policy",
    "error_event",
    "is_permanent",
    "means_not_ready",
    "permanent_failure",
    "raise_for_error_event",
]

#: Errors a retry cannot fix: fail the task without using its retries.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    BolnaAuthError,
    BolnaAgentNotFoundError,
    BolnaValidationError,
    BolnaConflictError,
    SpecError,
    SecretRefError,
)


def is_permanent(exc: BaseException) -> bool:
    """Whether no retry can fix ``exc`` (see the module docstring)."""
    if isinstance(exc, (BolnaPhoneNumbersError, BolnaBindingError)):
        return exc.permanent
    return isinstance(exc, PERMANENT_ERRORS)


def means_not_ready(exc: BaseException) -> bool:
    """Whether ``exc``, met while checking readiness, only means "not ready yet": a transient
    API error (already retried by the hook) or a 404 (the trunk does not exist yet)."""
    return isinstance(exc, BolnaError) and (exc.retryable or isinstance(exc, BolnaNotFoundError))


def _fail_message(text: str, conn_id: str, auth: bool) -> str:
    if auth:
        return f"Bolna refused the API key of connection {conn_id!r} (not retried): {text}"
    return f"{text} (not retried)"


def permanent_failure(exc: BaseException, conn_id: str) -> AirflowFailException:
    """The ``AirflowFailException`` for a permanent ``exc`` (chain it: ``raise ... from exc``).

    :param exc: a permanent error.
    :param conn_id: the Bolna connection (named when its key was refused).
    """
    return AirflowFailException(_fail_message(str(exc), conn_id, isinstance(exc, BolnaAuthError)))


@contextmanager
def bolna_error_policy(conn_id: str) -> Iterator[None]:
    """Turn permanent errors into ``AirflowFailException`` (chained); let the others through.

    :param conn_id: the Bolna connection (named when its key was refused).
    """
    try:
        yield
    except Exception as exc:
        if is_permanent(exc):
            raise permanent_failure(exc, conn_id) from exc
        raise


def error_event(exc: BaseException, ref: str, trunk_id: str | None) -> dict[str, Any]:
    """The trigger's ``error`` event for ``exc`` (``retryable``: the error is not permanent).

    :param exc: what ended the wait.
    :param ref: how to name the trunk.
    :param trunk_id: the trunk's id, when known.
    """
    return {
        "status": "error",
        "message": f"checking {ref} failed: {type(exc).__name__}: {exc}",
        "trunk_id": trunk_id,
        "error_type": type(exc).__name__,
        "retryable": not is_permanent(exc),
    }


def raise_for_error_event(event: dict[str, Any], conn_id: str) -> NoReturn:
    """Raise what the error event stands for: ``AirflowFailException`` for a permanent error,
    else a :class:`BolnaError` (Airflow's retries apply), as in poke mode.

    :param event: a trigger event with ``status == "error"``.
    :param conn_id: the Bolna connection (named when its key was refused).
    """
    message = str(event.get("message"))
    auth = event.get("error_type") == BolnaAuthError.__name__
    if auth or not event.get("retryable"):
        raise AirflowFailException(_fail_message(message, conn_id, auth))
    raise BolnaError(message)
