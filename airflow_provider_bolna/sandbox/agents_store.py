"""Agents and inbound mappings (SIP-trunk number → agent) in the sandbox's SQLite database.

Agents exist only through the admin API (Bolna's agent creation is out of scope); the API
can switch an agent's telephony provider and map numbers to it. A number holds at most one
agent (``phone_numbers.agent_id``): a new setup replaces the mapping, unlink clears it, and so
do removing the number and deleting its trunk (in :mod:`.store`).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .db import iso, transaction
from .errors import ApiError, not_found
from .shapes import ACCOUNT_NUMBER_JSON, VISIBLE

_AGENT_COLUMNS = ("id", "name", "telephony_provider", "created_at", "updated_at")


class AgentStore:
    """Agent and mapping reads and writes on the store's one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # ------------------------------------------------------------------ agents (admin)
    def create_agents(self, specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create agents from validated ``{"id"?, "name"?, "telephony_provider"?}`` specs, all or
        nothing (409 on an id that exists); ids default to 32 hex characters."""
        stamp = iso(time.time())
        created = []
        with transaction(self._conn) as conn:
            for spec in specs:
                agent_id = spec.get("id") or uuid.uuid4().hex
                if conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone():
                    raise ApiError(409, f"agent '{agent_id}' already exists")
                name = spec.get("name") or f"sandbox-agent-{agent_id[:8]}"
                conn.execute(
                    "INSERT INTO agents VALUES (?, ?, ?, ?, ?)",
                    (agent_id, name, spec.get("telephony_provider"), stamp, stamp),
                )
                created.append(agent_id)
        return [self._agents("id = ?", (agent_id,))[0] for agent_id in created]

    def _agents(self, where: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        agents = [
            dict(zip(_AGENT_COLUMNS, row))
            for row in self._conn.execute(
                f"SELECT {', '.join(_AGENT_COLUMNS)} FROM agents WHERE {where} ORDER BY rowid", params
            )
        ]
        mapped: dict[str, list[str]] = {}
        for number_id, agent_id in self._conn.execute(
            "SELECT id, agent_id FROM phone_numbers WHERE agent_id IS NOT NULL AND deleted = 0 ORDER BY id"
        ):
            mapped.setdefault(agent_id, []).append(number_id)
        for agent in agents:
            agent["phone_number_ids"] = mapped.get(agent["id"], [])
        return agents

    def list_agents(self) -> list[dict[str, Any]]:
        """Every agent with its provider and the ids of the numbers mapped to it."""
        return self._agents("1")

    def count(self) -> int:
        """How many agents exist."""
        return int(self._conn.execute("SELECT COUNT(*) FROM agents").fetchone()[0])

    def require(self, agent_id: str) -> None:
        """Raise ApiError 404 unless the agent exists."""
        if self._conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone() is None:
            raise not_found("agent")

    # ------------------------------------------------------------------ API writes
    def set_provider(self, agent_id: str, provider: str) -> None:
        """Store the agent's telephony provider (404 for an unknown agent)."""
        with transaction(self._conn) as conn:
            self.require(agent_id)
            conn.execute(
                "UPDATE agents SET telephony_provider = ?, updated_at = ? WHERE id = ?",
                (provider, iso(time.time()), agent_id),
            )

    def _visible_number(self, number_id: str, missing: str) -> dict[str, Any]:
        row = self._conn.execute(
            f"SELECT id, trunk_id, phone_number, agent_id FROM phone_numbers WHERE id = :id AND {VISIBLE}",
            {"id": number_id, "cutoff": time.time()},
        ).fetchone()
        if row is None:
            raise ApiError(404, missing)
        return dict(zip(("id", "trunk_id", "phone_number", "agent_id"), row))

    def map_number(self, number_id: str, agent_id: str, missing: str) -> dict[str, Any]:
        """Map a visible SIP-trunk number to an agent, replacing any previous mapping.

        404 with ``missing`` for an unknown (or not yet visible, or removed) number, then 404
        for an unknown agent. Returns the number's ``id, trunk_id, phone_number, agent_id``
        (the previous agent).
        """
        with transaction(self._conn) as conn:
            number = self._visible_number(number_id, missing)
            self.require(agent_id)
            conn.execute(
                "UPDATE phone_numbers SET agent_id = ?, updated_at = ? WHERE id = ?",
                (agent_id, iso(time.time()), number_id),
            )
            return number

    def unmap_number(self, number_id: str, missing: str) -> dict[str, Any]:
        """Clear a visible number's mapping (no change if it has none); 404 like :meth:`map_number`."""
        with transaction(self._conn) as conn:
            number = self._visible_number(number_id, missing)
            if number["agent_id"] is not None:
                conn.execute(
                    "UPDATE phone_numbers SET agent_id = NULL, updated_at = ? WHERE id = ?",
                    (iso(time.time()), number_id),
                )
            return number

    # ------------------------------------------------------------------ reads
    def account_numbers(self, include_sip: bool) -> str:
        """JSON array for ``GET /phone-numbers/all``: the account holds no rented numbers, so
        it lists the visible SIP-trunk numbers when ``include_sip``, else nothing."""
        if not include_sip:
            return "[]"
        rows = self._conn.execute(
            f"SELECT {ACCOUNT_NUMBER_JSON} FROM phone_numbers AS n WHERE {VISIBLE} ORDER BY n.id",
            {"cutoff": time.time()},
        )
        return f"[{','.join(row[0] for row in rows)}]"

    def mappings(self) -> list[dict[str, Any]]:
        """Every mapped, non-deleted number: ``phone_number_id, phone_number, trunk_id, agent_id``."""
        keys = ("phone_number_id", "phone_number", "trunk_id", "agent_id")
        return [
            dict(zip(keys, row))
            for row in self._conn.execute(
                "SELECT id, phone_number, trunk_id, agent_id FROM phone_numbers "
                "WHERE agent_id IS NOT NULL AND deleted = 0 ORDER BY id"
            )
        ]
