"""The eight ``/sip-trunks`` endpoints: parse, validate, call the store, shape the reply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .asgi import RawJson, parse_json
from .config import SandboxConfig
from .store import Store
from .validation import parse_is_active, validate_create, validate_number, validate_update

Reply = tuple[int, Any]


@dataclass(frozen=True)
class ApiRequest:
    """What a handler may look at: decoded path parameters, raw query string, raw body."""

    params: dict[str, str]
    query_string: bytes = b""
    body: bytes = b""

    def query(self, name: str) -> str | None:
        """Last value of a query parameter, or None."""
        values = parse_qs(self.query_string.decode("latin-1"), keep_blank_values=True).get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The parsed JSON body (400 if missing or malformed)."""
        return parse_json(self.body)


class SipTrunksApi:
    """Handlers for Bolna's legacy SIP-trunk endpoints; errors are raised as ApiError."""

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self.store = store
        self.config = config

    def create_trunk(self, req: ApiRequest) -> Reply:
        trunk, numbers = validate_create(req.json())
        return 201, RawJson(self.store.create_trunk(trunk, numbers, self.config.number_visibility_delay_s))

    def list_trunks(self, req: ApiRequest) -> Reply:
        return 200, RawJson(self.store.list_trunks(parse_is_active(req.query("is_active"))))

    def get_trunk(self, req: ApiRequest) -> Reply:
        return 200, RawJson(self.store.get_trunk(req.params["trunk_id"]))

    def update_trunk(self, req: ApiRequest) -> Reply:
        trunk_id = req.params["trunk_id"]
        current = self.store.rule_view(trunk_id)  # 404 before looking at the body
        changes = validate_update(req.json(), current)
        return 200, RawJson(self.store.update_trunk(trunk_id, changes))

    def delete_trunk(self, req: ApiRequest) -> Reply:
        removed = self.store.delete_trunk(req.params["trunk_id"])
        return 200, {"message": f"Trunk deleted successfully. {removed} phone number(s) removed."}

    def add_number(self, req: ApiRequest) -> Reply:
        trunk_id = req.params["trunk_id"]
        self.store.require_trunk(trunk_id)  # 404 before looking at the body
        number = validate_number(req.json())
        return 201, RawJson(self.store.add_number(trunk_id, number, self.config.number_visibility_delay_s))

    def list_numbers(self, req: ApiRequest) -> Reply:
        return 200, RawJson(self.store.list_numbers(req.params["trunk_id"]))

    def remove_number(self, req: ApiRequest) -> Reply:
        self.store.remove_number(req.params["trunk_id"], req.params["phone_number_id"])
        return 200, {"message": "Phone number removed successfully"}
