"""Routing of the API operations (raw path, segment by segment): the eight ``/sip-trunks``
operations and the five of agent binding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from .binding import AgentBindingApi
from .handlers import ApiRequest, Reply, SipTrunksApi

API_BUCKET = "api"
AGENT_BUCKET = "agent"


@dataclass(frozen=True)
class Route:
    """One API operation. ``write`` names its counter in ``writes`` and its kind of write
    attempt (None for reads); ``bucket`` is the rate limit it draws from."""

    method: str
    template: str
    handler: Callable[[ApiRequest], Reply]
    write: str | None = None
    bucket: str = API_BUCKET
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.strip("/").split("/")))

    @property
    def endpoint(self) -> str:
        """Counter key, e.g. ``"GET /sip-trunks/trunks/{trunk_id}"``."""
        return f"{self.method} {self.template}"

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        """Path parameters if ``segments`` fit this template, else None."""
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, value in zip(self.segments, segments):
            if pattern.startswith("{"):
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


class Router:
    """Matches the raw (still percent-encoded) path segment by segment."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, method: str, raw_path: bytes) -> tuple[Route | None, dict[str, str], bool]:
        """``(route, params, path_exists)``; ``path_exists`` tells 405 from 404."""
        if raw_path.endswith(b"/"):  # e.g. "/sip-trunks/trunks/": not a Bolna path
            return None, {}, False
        segments = [unquote_to_bytes(s).decode("utf-8", "replace") for s in raw_path[1:].split(b"/")]
        path_exists = False
        for route in self.routes:
            params = route.bind(segments)
            if params is None:
                continue
            if route.method == method:
                return route, params, True
            path_exists = True
        return None, {}, path_exists


def build_routes(trunks: SipTrunksApi, binding: AgentBindingApi) -> list[Route]:
    """The documented operations."""
    collection, trunk = "/sip-trunks/trunks", "/sip-trunks/trunks/{trunk_id}"
    numbers = f"{trunk}/numbers"
    return [
        Route("POST", collection, trunks.create_trunk, "create_trunk"),
        Route("GET", collection, trunks.list_trunks),
        Route("GET", trunk, trunks.get_trunk),
        Route("PATCH", trunk, trunks.update_trunk, "update_trunk"),
        Route("DELETE", trunk, trunks.delete_trunk, "delete_trunk"),
        Route("POST", numbers, trunks.add_number, "add_number"),
        Route("GET", numbers, trunks.list_numbers),
        Route("DELETE", f"{numbers}/{{phone_number_id}}", trunks.remove_number, "remove_number"),
        Route("GET", "/user/me", binding.user_me),
        Route("PATCH", "/v2/agent/{agent_id}", binding.update_agent, "update_agent", AGENT_BUCKET),
        Route("POST", "/inbound/setup", binding.inbound_setup, "inbound_setup"),
        Route("POST", "/inbound/unlink", binding.inbound_unlink, "inbound_unlink"),
        Route("GET", "/phone-numbers/all", binding.phone_numbers_all),
    ]
