"""The admin API under ``/__sandbox__`` (no auth, loopback peers only).

=========================================  ==============================================
``GET    /__sandbox__/health``              ``{"status": "ok"}``
``GET    /__sandbox__/config``              current knobs
``PATCH  /__sandbox__/config``              change any knobs (JSON object) → current knobs
``GET    /__sandbox__/counters``            request / fault / write counters
``POST   /__sandbox__/counters/reset``      zero the counters → counters
``POST   /__sandbox__/reset``               delete all state and records, zero counters, reseed
``GET    /__sandbox__/audit``               invariants and summaries from the SQL tables
``GET    /__sandbox__/agents``              agents (provider, mapped number ids)
``POST   /__sandbox__/agents``              create one agent (object) or several (array)
``GET    /__sandbox__/mappings``            every number mapped to an agent
``GET    /__sandbox__/attempts[?kind=K]``   every write attempt received (of kind K)
``POST   /__sandbox__/attempts/reset``      forget the write attempts → ``{"cleared": n}``
``GET    /__sandbox__/trunk-history``       every trunk ever created (deleted ones too)
``GET    /__sandbox__/number-history``      every number ever added (removed ones too)
=========================================  ==============================================

Every admin answer carries an ``x-sandbox-pid`` header (the server's process id).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ADMIN_PREFIX, PID_HEADER
from .asgi import Receive, Scope, Send, is_loopback, read_body, send_json
from .counters import WRITE_KINDS
from .errors import ApiError, bad_request
from .handlers import ApiRequest
from .validation import AGENT_SPEC

if TYPE_CHECKING:
    from .app import SandboxApp

AdminHandler = Callable[[ApiRequest], Any]


class Admin:
    """Serves the admin routes for one :class:`~.app.SandboxApp`."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        store = app.store
        # lets a launcher check that the server on "its" port is really its own process
        self._identity = [(PID_HEADER.encode(), str(os.getpid()).encode())]
        self.routes: dict[tuple[str, str], AdminHandler] = {
            ("GET", "/health"): lambda _: {"status": "ok"},
            ("GET", "/config"): lambda _: app.config.to_dict(),
            ("PATCH", "/config"): self.patch_config,
            ("GET", "/counters"): lambda _: self.counters(),
            ("POST", "/counters/reset"): self.reset_counters,
            ("POST", "/reset"): self.reset,
            ("GET", "/audit"): lambda _: store.audit(),
            ("GET", "/agents"): lambda _: store.agents.list_agents(),
            ("POST", "/agents"): self.create_agents,
            ("GET", "/mappings"): lambda _: store.agents.mappings(),
            ("GET", "/attempts"): self.attempts,
            ("POST", "/attempts/reset"): lambda _: {"cleared": store.records.clear_attempts()},
            ("GET", "/trunk-history"): lambda _: store.records.trunk_history(),
            ("GET", "/number-history"): lambda _: store.records.number_history(),
        }

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one admin request."""
        if not is_loopback(scope):
            await send_json(send, 403, {"detail": "admin API is loopback-only"})
            return
        handler = self.routes.get((scope["method"], scope["path"][len(ADMIN_PREFIX) :]))
        if handler is None:
            await send_json(send, 404, ApiError(404, "Not found").body())
            return
        try:
            body = await read_body(receive)
            request = ApiRequest({}, scope.get("query_string", b""), body)
            await send_json(send, 200, handler(request), self._identity)
        except ApiError as error:
            await send_json(send, error.status, error.body(), self._identity)

    def counters(self) -> dict[str, Any]:
        """The counters snapshot, with live trunk/number totals from the store."""
        return self.app.counters.snapshot(*self.app.store.counts())

    def patch_config(self, request: ApiRequest) -> dict[str, Any]:
        """Apply knob changes; re-derive fault state that depends on them."""
        changed = self.app.config.update(request.json())
        self.app.faults.on_config_change(changed)
        return self.app.config.to_dict()

    def reset_counters(self, _: ApiRequest) -> dict[str, Any]:
        """Zero the counters only."""
        self.app.counters.reset()
        return self.counters()

    def reset(self, _: ApiRequest) -> dict[str, Any]:
        """Delete all trunks, numbers, agents and records; zero counters, reseed faults,
        refill the rate-limit buckets."""
        self.app.store.reset()
        self.app.counters.reset()
        self.app.faults.reseed()
        self.app.faults.reset_rate_limit()
        return self.counters()

    def create_agents(self, request: ApiRequest) -> Any:
        """``{"id"?, "name"?, "telephony_provider"?}`` → the agent; an array → the list."""
        body = request.json() if request.body.strip() else {}
        if isinstance(body, list):
            return self.app.store.agents.create_agents(
                [AGENT_SPEC(f"[{i}]", item) for i, item in enumerate(body)]
            )
        return self.app.store.agents.create_agents([AGENT_SPEC("", body)])[0]

    def attempts(self, request: ApiRequest) -> list[dict[str, Any]]:
        """The write attempts, optionally of one ``kind`` (a key of ``write_attempts``)."""
        kind = request.query("kind")
        if kind is not None and kind not in WRITE_KINDS:
            raise bad_request("kind", f"must be one of {', '.join(WRITE_KINDS)}")
        return self.app.store.records.attempts(kind)
