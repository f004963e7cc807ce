"""The admin API under ``/__sandbox__`` (no auth, loopback peers only).

=====================================  ==================================================
``GET    /__sandbox__/health``          ``{"status": "ok"}``
``GET    /__sandbox__/config``          current knobs
``PATCH  /__sandbox__/config``          change any knobs (JSON object) → current knobs
``GET    /__sandbox__/counters``        request / fault / write counters
``POST   /__sandbox__/counters/reset``  zero the counters → counters
``POST   /__sandbox__/reset``           delete all state, zero counters, reseed → counters
``GET    /__sandbox__/audit``           invariants computed from the SQL tables
=====================================  ==================================================

Every admin answer carries an ``x-sandbox-pid`` header (the server's process id).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ADMIN_PREFIX, PID_HEADER
from .asgi import Receive, Scope, Send, is_loopback, parse_json, read_body, send_json
from .errors import ApiError

if TYPE_CHECKING:
    from .app import SandboxApp

AdminHandler = Callable[[bytes], Any]


class Admin:
    """Serves the admin routes for one :class:`~.app.SandboxApp`."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        # lets a launcher check that the server on "its" port is really its own process
        self._identity = [(PID_HEADER.encode(), str(os.getpid()).encode())]
        self.routes: dict[tuple[str, str], AdminHandler] = {
            ("GET", "/health"): lambda _: {"status": "ok"},
            ("GET", "/config"): lambda _: app.config.to_dict(),
            ("PATCH", "/config"): self.patch_config,
            ("GET", "/counters"): lambda _: self.counters(),
            ("POST", "/counters/reset"): self.reset_counters,
            ("POST", "/reset"): self.reset,
            ("GET", "/audit"): lambda _: app.store.audit(),
        }

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one admin request."""
        if not is_loopback(scope):
            await send_json(send, 403, {"detail": "admin API is loopback-only"})
            return
        handler = self.routes.get((scope["method"], scope["path"][len(ADMIN_PREFIX):]))
        if handler is None:
            await send_json(send, 404, ApiError(404, "Not found").body())
            return
        try:
            body = await read_body(receive)
            await send_json(send, 200, handler(body), self._identity)
        except ApiError as error:
            await send_json(send, error.status, error.body(), self._identity)

    def counters(self) -> dict[str, Any]:
        """The counters snapshot, with live trunk/number totals from the store."""
        return self.app.counters.snapshot(*self.app.store.counts())

    def patch_config(self, body: bytes) -> dict[str, Any]:
        """Apply knob changes; re-derive fault state that depends on them."""
        changed = self.app.config.update(parse_json(body))
        self.app.faults.on_config_change(changed)
        return self.app.config.to_dict()

    def reset_counters(self, _: bytes) -> dict[str, Any]:
        """Zero the counters only."""
        self.app.counters.reset()
        return self.counters()

    def reset(self, _: bytes) -> dict[str, Any]:
        """Delete all trunks and numbers, zero counters, reseed faults, refill the bucket."""
        self.app.store.reset()
        self.app.counters.reset()
        self.app.faults.reseed()
        self.app.faults.reset_rate_limit()
        return self.counters()
