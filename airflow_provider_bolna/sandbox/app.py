"""The sandbox ASGI application: routing, auth, faults, counters and records around the handlers.

Request pipeline for an API route (in this order):

1. latency (+ optional spike), awaited with ``asyncio.sleep``;
2. the body is read; a write request is recorded as an attempt (:mod:`.records`);
3. bearer auth → 403 ``{"detail": "Invalid API key"}``;
4. rate limit (token bucket; the agent endpoint has its own) → 429, ``Retry-After`` only if
   enabled;
5. ``fail_rate`` → 500/502/503 before anything is done;
6. the handler (one SQLite transaction per write);
7. for a committed write, ``drop_after_commit_rate`` → 502 or a broken connection;
8. the attempt's record is completed, then the response is sent.

Paths under ``/__sandbox__`` go to the admin API (no auth, loopback peers only).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any

from . import ADMIN_PREFIX
from .admin import Admin
from .asgi import Header, Receive, Scope, Send, header, read_body, send_broken, send_json
from .binding import AgentBindingApi
from .config import SandboxConfig
from .counters import DROPPED, Counters
from .errors import ApiError
from .faults import Faults
from .handlers import ApiRequest, Reply, SipTrunksApi
from .routing import AGENT_BUCKET, Route, Router, build_routes
from .store import Store

log = logging.getLogger("bolna_sandbox")

_FORBIDDEN = {"detail": "Invalid API key"}
_FAIL_MESSAGES = {500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable"}
_BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


@dataclass(frozen=True)
class _Outcome:
    """How a request ends: what is sent, and what its write attempt's record says."""

    status: int
    payload: Any
    headers: list[Header] = field(default_factory=list)
    committed: bool = False
    fault: str | None = None
    broken: bool = False  # the response is cut half-way (a lost response after commit)

    @property
    def counted(self) -> int | str:
        """The status counters and records show (``"dropped"`` for a broken response)."""
        return DROPPED if self.broken else self.status


class SandboxApp:
    """ASGI callable. Construct with a store and a config; serve with uvicorn."""

    def __init__(self, store: Store, config: SandboxConfig | None = None) -> None:
        self.store = store
        self.config = config or SandboxConfig()
        self.counters = Counters()
        self.faults = Faults(self.config)
        self.router = Router(
            build_routes(SipTrunksApi(store, self.config), AgentBindingApi(store, self.config))
        )
        self.admin = Admin(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            await self.admin.handle(scope, receive, send)
            return
        method: str = scope["method"]
        route, params, path_exists = self.router.match(method, scope.get("raw_path") or path.encode())
        if route is None:
            error = ApiError(405, "Method not allowed") if path_exists else ApiError(404, "Not found")
            await send_json(send, error.status, error.body())
            self.counters.record(f"{method} (unmatched)", error.status)
            return
        status = await self._api_call(route, params, scope, receive, send)
        self.counters.record(route.endpoint, status)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.config.api_key.encode()
        )

    async def _api_call(
        self, route: Route, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> int | str:
        """Run the pipeline described in the module docstring; return the status counted."""
        delay, spike = self.faults.delay_s()
        if spike:
            self.counters.faults["latency_spikes"] += 1
        if delay:
            await asyncio.sleep(delay)
        body, body_error = b"", None
        if scope["method"] in _BODY_METHODS:
            try:
                body = await read_body(receive)
            except ApiError as error:  # answered after auth, like any other bad body
                body_error = error
        req = ApiRequest(params, scope.get("query_string", b""), body)
        seq = None
        if route.write:
            self.counters.write_attempts[route.write] += 1
            seq = self.store.records.begin_attempt(route.write, route.endpoint, req.attempt_fields())
        outcome = self._decide(route, req, body_error, scope)
        if seq is not None:
            self.store.records.finish_attempt(
                seq, outcome.counted, committed=outcome.committed, fault=outcome.fault, learned=req.learned
            )
        if outcome.broken:
            await send_broken(send, outcome.status, outcome.payload)
        else:
            await send_json(send, outcome.status, outcome.payload, outcome.headers)
        return outcome.counted

    def _decide(self, route: Route, req: ApiRequest, body_error: ApiError | None, scope: Scope) -> _Outcome:
        """Steps 3 to 7 of the pipeline (everything after the body is read is synchronous)."""
        if not self._authorized(scope):
            return _Outcome(403, _FORBIDDEN)
        retry_after = self.faults.retry_after_s(route.bucket)
        if retry_after is not None:
            fault = "agent_rate_limited" if route.bucket == AGENT_BUCKET else "rate_limited"
            self.counters.faults[fault] += 1
            headers: list[Header] = (
                [(b"retry-after", str(retry_after).encode())] if self.config.retry_after else []
            )
            return _Outcome(429, ApiError(429, "Rate limit exceeded").body(), headers, fault=fault)
        failure = self.faults.fail_before()
        if failure is not None:
            self.counters.faults["fail_before"] += 1
            return _Outcome(failure, ApiError(failure, _FAIL_MESSAGES[failure]).body(), fault="fail_before")
        status, payload = self._run_handler(route, req, body_error)
        if not (route.write and status < 300):
            return _Outcome(status, payload)
        self.counters.committed(route.write)
        drop = self.faults.drop_after_commit()
        if drop == "502":
            self.counters.faults["drop_after_commit_502"] += 1
            return _Outcome(
                502, ApiError(502, "Bad gateway").body(), committed=True, fault="drop_after_commit_502"
            )
        if drop == "conn":
            self.counters.faults["drop_after_commit_conn"] += 1
            return _Outcome(status, payload, committed=True, fault="drop_after_commit_conn", broken=True)
        return _Outcome(status, payload, committed=True)

    def _run_handler(self, route: Route, req: ApiRequest, body_error: ApiError | None) -> Reply:
        try:
            if body_error is not None:
                raise body_error
            return route.handler(req)
        except ApiError as error:
            if error.tag == "duplicate_name":
                self.counters.duplicate_names_attempted += 1
            return error.status, error.body()
        except Exception:  # a sandbox bug must still look like an API answer
            log.exception("unhandled error in %s", route.endpoint)
            return 500, ApiError(500, "Internal server error").body()


def create_app(db_path: str = ":memory:", **knobs: Any) -> SandboxApp:
    """An in-process sandbox (e.g. for ``httpx.ASGITransport``); ``knobs`` as in SandboxConfig."""
    config = SandboxConfig()
    config.update(knobs)
    return SandboxApp(Store(db_path), config)
