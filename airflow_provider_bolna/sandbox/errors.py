"""The one exception type the sandbox uses to answer a request with an error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answered with Bolna's documented ``{"error": <int>, "message": "..."}`` body.

    ``tag`` lets the app count special cases (e.g. ``"duplicate_name"``) without parsing
    messages.
    """

    def __init__(self, status: int, message: str, *, tag: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.tag = tag

    def body(self) -> dict[str, Any]:
        """The JSON body Bolna documents for 4xx/5xx responses."""
        return {"error": self.status, "message": self.message}


def bad_request(field: str, problem: str) -> ApiError:
    """A 400 whose message starts with the offending field, e.g. ``"port: must be ..."``."""
    return ApiError(400, f"{field}: {problem}")


def not_found(what: str) -> ApiError:
    """A 404 with Bolna's lower-case ``"<what> not found"`` message."""
    return ApiError(404, f"{what} not found")
