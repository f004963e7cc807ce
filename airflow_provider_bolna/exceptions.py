"""One exception hierarchy for everything that can go wrong talking to Bolna.

``BolnaError`` carries the HTTP status, the API's message, the request id (when the server
sends one) and the call (method and path). Messages are built from the API's error text
only after known secrets are redacted, and never from request bodies.

::

    BolnaError
    ├── BolnaAuthError          401 / 403 (bad or expired API key, no SIP-trunk access)
    ├── BolnaNotFoundError      404
    │   └── BolnaAgentNotFoundError  the voice agent does not exist (permanent for its customer)
    ├── BolnaValidationError    400 / 422 (also raised client-side, before sending)
    ├── BolnaConflictError      409 (duplicate trunk name, number on another trunk)
    ├── BolnaRateLimitError     429 (``retry_after`` when the server sent one)
    ├── BolnaServerError        5xx
    ├── BolnaTransportError     connect / timeout / dropped connection
    ├── BolnaResponseError      a 2xx whose body is not what the API documents
    ├── BolnaPhoneNumbersError  some numbers could not be put on a trunk (the others were)
    ├── BolnaBindingError       some numbers / agents could not be bound (the others were)
    └── BolnaTrunkNotReadyError a trunk did not become ready before a deadline
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BolnaAgentNotFoundError",
    "BolnaAuthError",
    "BolnaBindingError",
    "BolnaConflictError",
    "BolnaError",
    "BolnaNotFoundError",
    "BolnaPhoneNumbersError",
    "BolnaRateLimitError",
    "BolnaResponseError",
    "BolnaServerError",
    "BolnaTimeoutError",
    "BolnaTransportError",
    "BolnaTrunkNotReadyError",
    "BolnaValidationError",
    "error_for_status",
]


class BolnaError(Exception):
    """Base of every error raised by this provider's API client.

    :param message: what went wrong, secrets already removed.
    :param status_code: HTTP status, when there was a response.
    :param method: HTTP method of the call.
    :param path: URL path of the call (no query string, no host).
    :param request_id: the server's request id header, when sent.
    :param ambiguous: true when a write may have taken effect although it failed
        (timeout after sending, dropped connection, 5xx): look before writing again.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
        request_id: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.method = method
        self.path = path
        self.request_id = request_id
        self.ambiguous = ambiguous
        super().__init__(self._render())

    def _render(self) -> str:
        call = f"{self.method} {self.path}" if self.method and self.path else "Bolna API call"
        status = f" -> {self.status_code}" if self.status_code is not None else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{call}{status}: {self.message}{rid}"

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again may succeed."""
        return False

    @property
    def call_details(self) -> dict[str, Any]:
        """The call this error came from (status, method, path, request id): the keyword
        arguments that restate it as another error with a clearer message."""
        return {
            "status_code": self.status_code,
            "method": self.method,
            "path": self.path,
            "request_id": self.request_id,
        }


class BolnaAuthError(BolnaError):
    """The API key was refused (401 or 403). Never retried."""


class BolnaNotFoundError(BolnaError):
    """The trunk or number does not exist (or belongs to another account)."""


class BolnaAgentNotFoundError(BolnaNotFoundError):
    """The voice agent does not exist (or belongs to another account): a retry cannot fix it.

    :param agent_id: the agent that was not found.
    """

    def __init__(self, message: str, *, agent_id: str, **kwargs: object) -> None:
        self.agent_id = agent_id
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class BolnaValidationError(BolnaError, ValueError):
    """The request broke a rule of the API (400/422), or was refused before sending."""


class BolnaConflictError(BolnaError):
    """A uniqueness rule: a trunk with that name exists, or the number is on another trunk."""


class BolnaRateLimitError(BolnaError):
    """429. ``retry_after`` holds the server's ``Retry-After`` in seconds, when sent.

    :param retry_after: seconds the server asked us to wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]

    @property
    def retryable(self) -> bool:
        return True


class BolnaServerError(BolnaError):
    """5xx: the server failed. For a write, the effect may or may not have happened."""

    @property
    def retryable(self) -> bool:
        return True


class BolnaTransportError(BolnaError):
    """No usable response: connection refused, timeout, connection dropped mid-response."""

    @property
    def retryable(self) -> bool:
        return True


class BolnaTimeoutError(BolnaTransportError):
    """No complete answer within the timeout: the request may still be in flight (a proxy may
    deliver it later)."""


class BolnaResponseError(BolnaError):
    """A success status whose body is not JSON or not the documented shape."""


class BolnaPhoneNumbersError(BolnaError):
    """Some numbers could not be put on the trunk; the others were.

    :param failures: ``{phone_number: reason}`` for each failed number.
    :param permanent: whether every failure is one a retry cannot fix (conflict, validation).
    """

    def __init__(self, message: str, *, failures: dict[str, str], permanent: bool, **kwargs: object) -> None:
        self.failures = failures
        self.permanent = permanent
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class BolnaBindingError(BolnaError):
    """Some numbers could not be mapped to their inbound agent, or some agents not switched to
    the trunk; the others were.

    :param failures: ``{phone number or agent id: reason}`` for each failure.
    :param permanent: whether every failure is one a retry cannot fix (unknown agent, invalid input).
    """

    def __init__(self, message: str, *, failures: dict[str, str], permanent: bool, **kwargs: object) -> None:
        self.failures = failures
        self.permanent = permanent
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class BolnaTrunkNotReadyError(BolnaError):
    """The trunk did not become ready (exists, active, numbers visible) before the deadline."""


_BY_STATUS: dict[int, type[BolnaError]] = {
    400: BolnaValidationError,
    401: BolnaAuthError,
    403: BolnaAuthError,
    404: BolnaNotFoundError,
    409: BolnaConflictError,
    422: BolnaValidationError,
}


def error_for_status(status_code: int) -> type[BolnaError]:
    """The exception class for an HTTP error status."""
    if status_code == 429:
        return BolnaRateLimitError
    if status_code >= 500:
        return BolnaServerError
    return _BY_STATUS.get(status_code, BolnaError)
