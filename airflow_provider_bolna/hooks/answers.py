"""What one exchange's outcome means: the parsed result, or the
:class:`~airflow_provider_bolna.exceptions.BolnaError` it maps to.

Used by both exchange drivers of :class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook`.
Every text that reaches an error (body, headers, the transport's own message) is redacted of
the given secrets first. An error is ``ambiguous`` when a request that adds (a POST not marked
``replaces``) may have reached the server: it must not be resent blindly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from airflow_provider_bolna.exceptions import (
    BolnaRateLimitError,
    BolnaResponseError,
    BolnaTimeoutError,
    BolnaTransportError,
    error_for_status,
)
from airflow_provider_bolna.hooks.reading import ErrorBytes, error_text, header_text, retry_after_seconds
from airflow_provider_bolna.secrets.redaction import redact

if TYPE_CHECKING:
    from airflow_provider_bolna.hooks.instructions import Body, _Call

__all__ = ["body_for", "read_answer", "transport_error"]

#: Errors from which nothing reached the server: safe to resend any request.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def transport_error(call: _Call, exc: httpx.HTTPError, secrets: tuple[str, ...]) -> BolnaTransportError:
    """The error for a failed exchange with no answer (``BolnaTimeoutError`` for a timeout).

    :param call: the request that failed.
    :param exc: httpx's error.
    :param secrets: redacted from httpx's message.
    """
    sent = not isinstance(exc, _NOT_SENT)
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    kind = BolnaTimeoutError if isinstance(exc, httpx.TimeoutException) else BolnaTransportError
    return kind(
        redact(what, secrets),
        method=call.method,
        path=call.path,
        ambiguous=sent and not call.idempotent,
    )


def body_for(call: _Call, response: httpx.Response, secrets: tuple[str, ...]) -> Body:
    """The reader of ``response``'s body: the call's own for a success (told what to redact
    before parsing), a bounded byte buffer for an error."""
    if not response.is_success:
        return ErrorBytes()
    return call.body(secrets=secrets)


def read_answer(
    call: _Call,
    response: httpx.Response,
    body: Any,
    secrets: tuple[str, ...],
    limiter: Any,
    retry_max_delay: float,
) -> Any:
    """Map the response to a parsed result or a :class:`BolnaError`; feed the rate limiter.

    :param call: the request answered.
    :param response: its response (headers and status; the body was read into ``body``).
    :param body: the reader :func:`body_for` gave, fed the whole body.
    :param secrets: redacted from every text that reaches an error.
    :param limiter: the call's rate budget (told of a success or a 429).
    :param retry_max_delay: the cap on a server's ``Retry-After`` passed to the limiter.
    """
    # headers end up in messages too: redacted like the body (a proxy may echo the key)
    request_id = header_text(
        response.headers.get("x-request-id") or response.headers.get("request-id"), secrets
    )
    if response.is_success:
        limiter.on_success()
        try:
            return body.result()
        except (ValueError, ValidationError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # RecursionError: a pathologically nested body (json and pydantic both recurse)
            kind = (
                "is not JSON"
                if isinstance(exc, ValueError) and not isinstance(exc, ValidationError)
                else "has an unexpected shape"
            )
            raise BolnaResponseError(
                f"the {response.status_code} response body {kind} ({body.size} bytes, "
                f"content-type {header_text(response.headers.get('content-type'), secrets) or 'unknown'!r})",
                status_code=response.status_code,
                method=call.method,
                path=call.path,
                request_id=request_id,
            ) from None
    message = error_text(body.content, response, secrets)
    cls = error_for_status(response.status_code)
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "method": call.method,
        "path": call.path,
        "request_id": request_id,
        "ambiguous": response.status_code >= 500 and not call.idempotent,
    }
    if cls is BolnaRateLimitError:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        # the server's wait is honoured up to retry_max_delay, in the shared bucket too: an
        # absurd Retry-After (a day, "1e999") must not stall every call of the hook
        limiter.on_throttled(None if retry_after is None else min(retry_after, retry_max_delay))
        raise BolnaRateLimitError(message, retry_after=retry_after, **kwargs)
    raise cls(message, **kwargs)
