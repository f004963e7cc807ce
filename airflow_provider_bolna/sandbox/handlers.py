"""The eight ``/sip-trunks`` endpoints: parse, validate, call the store, shape the reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs

from .asgi import RawJson, parse_json
from .config import SandboxConfig
from .store import Rules, Store
from .validation import parse_is_active, validate_create, validate_number, validate_update

Reply = tuple[int, Any]
_PATH_FIELDS = ("trunk_id", "phone_number_id", "agent_id")


@dataclass(frozen=True)
class ApiRequest:
    """What a handler may look at: decoded path parameters, raw query string, raw body.

    ``learned`` is where a handler notes what the write attempt's record should say that
    the request did not (e.g. the id of the trunk it created).
    """

    params: dict[str, str]
    query_string: bytes = b""
    body: bytes = b""
    learned: dict[str, str | None] = field(default_factory=dict)

    def query(self, name: str) -> str | None:
        """Last value of a query parameter, or None."""
        values = parse_qs(self.query_string.decode("latin-1"), keep_blank_values=True).get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The parsed JSON body (400 if missing or malformed)."""
        return parse_json(self.body)

    @cached_property
    def lenient_json(self) -> dict[str, Any]:
        """The body if it is a JSON object, else ``{}`` (never raises; for the records)."""
        try:
            body = parse_json(self.body)
        except Exception:  # noqa: BLE001 - any unparsable body just records nothing
            return {}
        return body if isinstance(body, dict) else {}

    def attempt_fields(self) -> dict[str, str | None]:
        """What a write attempt's record says about its target, from the path and the body:
        ``trunk_id`` / ``phone_number_id`` / ``agent_id`` path parameters, then the body's
        ``name`` (as ``trunk_name``), ``phone_number`` (+ its ``digits``), ``agent_id`` and
        ``phone_number_id`` when they are strings."""
        fields: dict[str, str | None] = {k: v for k, v in self.params.items() if k in _PATH_FIELDS}
        body = self.lenient_json
        for key, column in (
            ("name", "trunk_name"),
            ("phone_number", "phone_number"),
            ("agent_id", "agent_id"),
            ("phone_number_id", "phone_number_id"),
        ):
            value = body.get(key)
            if isinstance(value, str):
                fields.setdefault(column, value)
        number = fields.get("phone_number")
        if number is not None:
            fields["digits"] = number.lstrip("+")
        return fields


def rules(config: SandboxConfig) -> Rules:
    """The store rules the live knobs ask for."""
    return Rules(
        unique_names=config.unique_names,
        unique_numbers=config.unique_numbers,
        show_agent_id=config.number_list_shows_agent_id,
        visibility_delay_s=config.number_visibility_delay_s,
    )


class SipTrunksApi:
    """Handlers for Bolna's legacy SIP-trunk endpoints; errors are raised as ApiError."""

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self.store = store
        self.config = config

    def create_trunk(self, req: ApiRequest) -> Reply:
        trunk, numbers = validate_create(req.json())
        trunk_id, body = self.store.create_trunk(trunk, numbers, rules(self.config))
        req.learned["trunk_id"] = trunk_id
        return 201, RawJson(body)

    def list_trunks(self, req: ApiRequest) -> Reply:
        return 200, RawJson(
            self.store.list_trunks(
                parse_is_active(req.query("is_active")), self.config.number_list_shows_agent_id
            )
        )

    def get_trunk(self, req: ApiRequest) -> Reply:
        return 200, RawJson(
            self.store.get_trunk(req.params["trunk_id"], show_agent_id=self.config.number_list_shows_agent_id)
        )

    def update_trunk(self, req: ApiRequest) -> Reply:
        trunk_id = req.params["trunk_id"]
        current = self.store.rule_view(trunk_id)  # 404 before looking at the body
        changes = validate_update(req.json(), current)
        return 200, RawJson(self.store.update_trunk(trunk_id, changes, rules(self.config)))

    def delete_trunk(self, req: ApiRequest) -> Reply:
        removed, name = self.store.delete_trunk(req.params["trunk_id"])
        req.learned["trunk_name"] = name
        return 200, {"message": f"Trunk deleted successfully. {removed} phone number(s) removed."}

    def add_number(self, req: ApiRequest) -> Reply:
        trunk_id = req.params["trunk_id"]
        self.store.require_trunk(trunk_id)  # 404 before looking at the body
        number = validate_number(req.json())
        number_id, body = self.store.add_number(trunk_id, number, rules(self.config))
        req.learned["phone_number_id"] = number_id
        return 201, RawJson(body)

    def list_numbers(self, req: ApiRequest) -> Reply:
        return 200, RawJson(
            self.store.list_numbers(req.params["trunk_id"], self.config.number_list_shows_agent_id)
        )

    def remove_number(self, req: ApiRequest) -> Reply:
        self.store.remove_number(req.params["trunk_id"], req.params["phone_number_id"])
        return 200, {"message": "Phone number removed successfully"}
