"""``BolnaBaseHook``: the wire layer under :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook`.

It owns the connection's settings, the sync and async httpx clients (one keep-alive pool each),
the rate budget, the exchange of one request (one overall deadline: ``timeout``) and the two
drivers of flows. It knows no endpoint. Its parts live next to it: the retry policy in
:mod:`~airflow_provider_bolna.hooks.retry`, what an answer means (result or error) in
:mod:`~airflow_provider_bolna.hooks.answers`, the reading of bodies in
:mod:`~airflow_provider_bolna.hooks.reading`.

Design: every request is described once as a :class:`~airflow_provider_bolna.hooks.instructions._Call`
(request + how to read its body). Operations of several calls are written once as generator
*flows* that yield instructions (see :mod:`~airflow_provider_bolna.hooks.instructions`) and receive results; the
two drivers, :meth:`BolnaBaseHook._drive` and :meth:`BolnaBaseHook._adrive`, run them the sync
or the async way: the only code written twice.

Time bounds: one exchange (connect, send, wait, read) ends within ``timeout`` (see
:mod:`~airflow_provider_bolna.hooks.deadline` for the sync client's worst case); one public call
(a flow included) starts no retry, back-off or poll after ``max_retry_seconds``, and gives each
step still needed then a single attempt.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import httpx
from airflow.providers.common.compat.sdk import BaseHook
from tenacity import AsyncRetrying, Retrying

from airflow_provider_bolna import DEFAULT_CONN_ID, __version__
from airflow_provider_bolna.concurrency import timeout_after
from airflow_provider_bolna.exceptions import BolnaError, BolnaTimeoutError, BolnaTransportError
from airflow_provider_bolna.hooks.answers import body_for, read_answer, transport_error
from airflow_provider_bolna.hooks.deadline import bound_client, within
from airflow_provider_bolna.hooks.instructions import (
    _BUDGET_SETTINGS,
    AGENT_BUDGET,
    DEFAULT_BUDGET,
    TIME_LEFT,
    Body,
    Flow,
    _Call,
    _Find,
    _Sleep,
    _TimeLeft,
)
from airflow_provider_bolna.hooks.retry import retry_policy
from airflow_provider_bolna.hooks.settings import BolnaSettings
from airflow_provider_bolna.ratelimit import RateLimiter
from airflow_provider_bolna.secrets.redaction import amask_secret, mask_secret

# The flow vocabulary (_Call, _Sleep, _Find, TIME_LEFT, Flow, the budgets) moved to hooks.instructions,
# the retry policy to hooks.retry and the reading of an answer to hooks.answers: the names
# stay importable from here.
__all__ = [
    "AGENT_BUDGET",
    "DEFAULT_BUDGET",
    "TIME_LEFT",
    "USER_AGENT",
    "Body",
    "BolnaBaseHook",
    "BolnaSettings",
    "Flow",
]

T = TypeVar("T")

USER_AGENT = (
    f"airflow-provider-bolna/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"
)


class BolnaBaseHook(BaseHook):
    """The transport under every Bolna endpoint: settings, clients, exchanges, retries, errors.

    :param bolna_conn_id: Airflow connection of type ``bolna`` (or ``http``): host = API base
        URL, password = API key.
    :param settings: use these settings instead of reading a connection (tests, scripts).
    :param timeout: override the connection's request timeout (seconds).
    :param max_retries: override the connection's retry count.
    :param requests_per_minute: override the connection's rate budget.
    :param agent_requests_per_minute: override the connection's budget of the agent endpoint.
    :param limiter: pace the calls with this instead of a bucket of the hook's own (e.g. a
        :class:`~airflow_provider_bolna.provisioning.budget.RateBudget` shared through the state DB).
    :param agent_limiter: the same for the agent endpoint's own budget.
    """

    conn_name_attr = "bolna_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "bolna"
    hook_name = "Bolna"

    def __init__(
        self,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        *,
        settings: BolnaSettings | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        requests_per_minute: float | None = None,
        agent_requests_per_minute: float | None = None,
        limiter: Any = None,
        agent_limiter: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bolna_conn_id = bolna_conn_id
        self._overrides = {
            "timeout": timeout,
            "max_retries": max_retries,
            "requests_per_minute": requests_per_minute,
            "agent_requests_per_minute": agent_requests_per_minute,
        }
        self._settings = settings
        given = {DEFAULT_BUDGET: limiter, AGENT_BUDGET: agent_limiter}
        self._limiters: dict[str, Any] = {name: lim for name, lim in given.items() if lim is not None}
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._aclient_keeper: AsyncIterator[None] | None = None
        self._warned_insecure = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bolna_conn_id={self.bolna_conn_id!r})"

    # ------------------------------------------------------------------ settings & clients

    @property
    def settings(self) -> BolnaSettings:
        """The connection's settings, loaded (and the key masked) on first use."""
        if self._settings is None:
            conn = self.get_connection(self.bolna_conn_id)
            self._settings = BolnaSettings.from_connection(conn, **self._overrides)
            mask_secret(self._settings.api_key.get_secret_value())
        return self._settings

    async def aget_settings(self) -> BolnaSettings:
        """Async twin of :attr:`settings`, safe on the triggerer's event loop."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            conn = await get_async_connection(self.bolna_conn_id, hook=self)
            self._settings = BolnaSettings.from_connection(conn, **self._overrides)
            await amask_secret(self._settings.api_key.get_secret_value())
        return self._settings

    @property
    def limiter(self) -> Any:
        """The rate budget of the default budget: every call of this hook but the agent PATCH (a
        token bucket of its own unless one shared through the state DB was given)."""
        return self.limiter_for(DEFAULT_BUDGET)

    def limiter_for(self, call: _Call | str) -> Any:
        """The rate budget ``call`` draws from (or that of a budget name): one per budget, shared
        by the sync and async calls of this hook. The one place where a call meets its budget."""
        budget = call if isinstance(call, str) else call.budget
        limiter = self._limiters.get(budget)
        if limiter is None:  # setdefault: two threads racing here still share one bucket
            limiter = self._limiters.setdefault(
                budget, RateLimiter(getattr(self.settings, _BUDGET_SETTINGS[budget]))
            )
        return limiter

    def _client_kwargs(self) -> dict[str, Any]:
        s = self.settings
        if s.insecure and not self._warned_insecure:
            self._warned_insecure = True
            self.log.warning(
                "Bolna connection %r sends the API key over plain http (allow_insecure_http is on)",
                self.bolna_conn_id,
            )
        return {
            "base_url": s.base_url,
            "headers": {
                "Authorization": f"Bearer {s.api_key.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            "timeout": _phase_timeouts(s.timeout),
            "limits": httpx.Limits(max_connections=100, max_keepalive_connections=50),
        }

    @property
    def client(self) -> httpx.Client:
        """The sync client (one keep-alive pool for the hook's lifetime)."""
        if self._client is None:
            self._client = httpx.Client(**self._client_kwargs())
            if not bound_client(self._client):
                self.log.warning(
                    "Bolna calls are bounded per socket operation only (httpx internals changed)"
                )
        return self._client

    def get_conn(self) -> httpx.Client:
        """The configured sync client (base URL, API key, timeouts): Airflow's usual accessor."""
        return self.client

    async def aclient(self) -> httpx.AsyncClient:
        """The async client of the running event loop (one pool per loop).

        A client made on another loop is closed on its own loop when that loop shuts down
        (``asyncio.run`` does at its end), or here when it is still left open.
        """
        await self.aget_settings()
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            await self._retire_aclient()
            client = httpx.AsyncClient(**self._client_kwargs())
            keeper = _closed_with_its_loop(client)
            await anext(keeper)  # registered with the loop: closed when the loop shuts down
            self._aclient, self._aclient_loop, self._aclient_keeper = client, loop, keeper
        return self._aclient

    async def _retire_aclient(self) -> None:
        """Close the async client of another event loop (if that loop has not already)."""
        keeper, loop = self._aclient_keeper, self._aclient_loop
        self._aclient = self._aclient_loop = self._aclient_keeper = None
        if keeper is None:
            return
        if loop is not None and loop.is_running() and loop is not asyncio.get_running_loop():
            asyncio.run_coroutine_threadsafe(_close_keeper(keeper), loop)  # its sockets belong to that loop
            return
        try:
            await _close_keeper(keeper)
        except Exception as exc:  # noqa: BLE001 - a finished loop: nothing more can be done
            self.log.debug("Closing the async client of a finished event loop failed: %s", exc)

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client's connections."""
        keeper = self._aclient_keeper
        self._aclient = self._aclient_loop = self._aclient_keeper = None
        if keeper is not None:
            await _close_keeper(keeper)

    # ------------------------------------------------------------------ drivers

    def _budget_end(self) -> float:
        return time.monotonic() + self.settings.max_retry_seconds

    def _drive(
        self, flow: Flow[T], *, finder: Callable[[str], Any] | None = None, until: float | None = None
    ) -> T:
        """Run a flow with the sync client within one retry budget (ends at ``until``)."""
        until = self._budget_end() if until is None else until
        step: Any = None
        error: BaseException | None = None
        while True:
            try:
                instruction = flow.throw(error) if error is not None else flow.send(step)
            except StopIteration as stop:
                return stop.value
            step, error = None, None
            try:
                if isinstance(instruction, _Sleep):
                    time.sleep(max(0.0, min(instruction.seconds, until - time.monotonic())))
                elif isinstance(instruction, _TimeLeft):
                    step = until - time.monotonic()
                elif isinstance(instruction, _Find):
                    step = (
                        finder(instruction.name) if finder else self._drive(instruction.fallback, until=until)
                    )
                else:
                    step = self._request(instruction, until=until)
            except BolnaError as exc:
                error = exc

    async def _adrive(
        self, flow: Flow[T], *, finder: Callable[[str], Any] | None = None, until: float | None = None
    ) -> T:
        """Run a flow with the async client within one retry budget (ends at ``until``)."""
        until = (await self.aget_settings()).max_retry_seconds + time.monotonic() if until is None else until
        step: Any = None
        error: BaseException | None = None
        while True:
            try:
                instruction = flow.throw(error) if error is not None else flow.send(step)
            except StopIteration as stop:
                return stop.value
            step, error = None, None
            try:
                if isinstance(instruction, _Sleep):
                    await asyncio.sleep(max(0.0, min(instruction.seconds, until - time.monotonic())))
                elif isinstance(instruction, _TimeLeft):
                    step = until - time.monotonic()
                elif isinstance(instruction, _Find):
                    step = (
                        await finder(instruction.name)
                        if finder
                        else await self._adrive(instruction.fallback, until=until)
                    )
                else:
                    step = await self._arequest(instruction, until=until)
            except BolnaError as exc:
                error = exc

    def _request(self, call: _Call, *, retry: bool = True, until: float | None = None) -> Any:
        """Send ``call`` with the sync client, retrying what is safe to retry until ``until``."""
        policy = retry_policy(
            call, self.settings, self.log, retry=retry, until=self._budget_end() if until is None else until
        )
        for attempt in Retrying(**policy):
            with attempt:
                wait = self.limiter_for(call).reserve()
                if wait:
                    time.sleep(wait)
                return self._exchange(call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(self, call: _Call, *, retry: bool = True, until: float | None = None) -> Any:
        """Send ``call`` with the async client, retrying what is safe to retry until ``until``."""
        client = await self.aclient()
        policy = retry_policy(
            call, self.settings, self.log, retry=retry, until=self._budget_end() if until is None else until
        )
        async for attempt in AsyncRetrying(**policy):
            with attempt:
                limiter = self.limiter_for(call)
                areserve = getattr(limiter, "areserve", None)  # a shared budget claims off the loop
                wait = await areserve() if areserve is not None else limiter.reserve()
                if wait:
                    await asyncio.sleep(wait)
                return await self._aexchange(call, client)
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, call: _Call) -> Any:
        """One request and its whole answer, within ``timeout`` (every socket operation bounded)."""
        timeout = self.settings.timeout
        client = self.client
        request = client.build_request(
            call.method, call.path, json=call.json, params=call.params, timeout=_phase_timeouts(timeout)
        )
        with within(time.monotonic() + timeout):
            try:
                response = client.send(request, stream=True)
                try:
                    body = self._body_for(call, response)
                    for chunk in response.iter_bytes():
                        if body.feed(chunk):
                            break
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                raise self._transport_error(call, exc) from None
        return self._read(call, response, body)

    async def _aexchange(self, call: _Call, client: httpx.AsyncClient) -> Any:
        """Async twin of :meth:`_exchange`, bounded by a wall-clock timeout around it all."""
        timeout = self.settings.timeout
        progress = _Progress()
        request = client.build_request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            timeout=_phase_timeouts(timeout),
            extensions={"trace": progress.trace},
        )

        try:  # timeout_after, not asyncio.wait_for: that can swallow a cancellation before 3.12
            async with timeout_after(timeout):
                response = await client.send(request, stream=True)
                try:
                    body = self._body_for(call, response)
                    async for chunk in response.aiter_bytes():
                        if body.feed(chunk):
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            raise BolnaTimeoutError(
                f"no complete answer within the {timeout:g}s timeout",
                method=call.method,
                path=call.path,
                ambiguous=progress.sent and not call.idempotent,
            ) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(call, exc) from None
        return self._read(call, response, body)

    # ------------------------------------------------------------------ secrets & answers

    def _secrets_or_empty(self) -> tuple[str, ...]:
        return (self._settings.api_key.get_secret_value(),) if self._settings else ()

    def _secrets_of(self, call: _Call) -> tuple[str, ...]:
        """What must never leave an exchange of ``call``: the API key and the call's own secrets."""
        return (*self._secrets_or_empty(), *call.secrets)

    def _transport_error(self, call: _Call, exc: httpx.HTTPError) -> BolnaTransportError:
        return transport_error(call, exc, self._secrets_of(call))

    def _body_for(self, call: _Call, response: httpx.Response) -> Body:
        return body_for(call, response, self._secrets_of(call))

    def _read(self, call: _Call, response: httpx.Response, body: Any) -> Any:
        """Map the response to a parsed result or a :class:`BolnaError`; feed the rate limiter."""
        return read_answer(
            call,
            response,
            body,
            self._secrets_of(call),
            self.limiter_for(call),
            self.settings.retry_max_delay,
        )


# ---------------------------------------------------------------------- helpers


def _phase_timeouts(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, connect=min(timeout, 10.0))


class _Progress:
    """Whether an async exchange got as far as sending its request (from httpcore's trace)."""

    def __init__(self) -> None:
        self.sent = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith("send_request_headers.started"):
            self.sent = True


async def _closed_with_its_loop(client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Holds ``client`` open; an event loop shutting its async generators down closes it."""
    try:
        yield
    finally:
        await client.aclose()


async def _close_keeper(keeper: AsyncIterator[None]) -> None:
    await keeper.aclose()  # type: ignore[attr-defined]
