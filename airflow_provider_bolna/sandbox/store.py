"""SQLite state of the sandbox: trunks, gateways, IP identifiers and phone numbers.

One connection, used only from the event-loop thread, so every request sees a consistent
state and every write is exactly one ``BEGIN IMMEDIATE ... COMMIT`` transaction. Trunks (with
their gateways and IP identifiers) are hard-deleted (``trunk_history`` remembers them);
numbers are soft-deleted (``deleted = 1``), which also clears their inbound agent. The
conflict rules (trunk ``name``; digits of every non-deleted number) are checked here, each
behind its switch (:class:`Rules`). File databases use WAL mode. Agents and inbound mappings
live in :mod:`.agents_store`, the records for tests in :mod:`.records`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .agents_store import AgentStore
from .db import TABLES, create_or_upgrade, iso, transaction
from .errors import ApiError, not_found
from .ids import new_id
from .records import Records
from .shapes import FIELDS, NUMBER_JSON, SHOW_ALL, TRUNK_COLUMNS, TRUNK_JSON, USER_ID, VISIBLE


@dataclass(frozen=True)
class Rules:
    """The knobs a store call depends on, read from the live config for each request."""

    unique_names: bool = True
    unique_numbers: bool = True
    show_agent_id: bool = False
    visibility_delay_s: float = 0.0


def hash_password(password: str) -> str:
    """Salted SHA-256; the plain password is never stored or returned."""
    salt = os.urandom(16)
    return f"sha256${salt.hex()}${hashlib.sha256(salt + password.encode()).hexdigest()}"


class Store:
    """All reads and writes of the sandbox state. Not thread-safe by design (one loop).

    Reads return ready-to-send JSON text (shapes in :mod:`.shapes`). ``agents`` holds the
    agents and inbound mappings, ``records`` the write attempts, histories and the audit.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if path != ":memory:" and not path.startswith("file::memory:"):
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA busy_timeout = 5000")
        create_or_upgrade(self._conn)
        self.agents = AgentStore(self._conn)
        self.records = Records(self._conn)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self._conn.close()

    # ------------------------------------------------------------------ reads
    def require_trunk(self, trunk_id: str) -> None:
        """Raise ApiError 404 unless the trunk exists."""
        if self._conn.execute("SELECT 1 FROM trunks WHERE id = ?", (trunk_id,)).fetchone() is None:
            raise not_found("trunk")

    def _trunks_json(self, where: str, params: dict[str, Any], show_agent_id: bool) -> list[str]:
        """JSON text of every trunk matching ``where``, oldest first (one query)."""
        params.setdefault("cutoff", time.time())
        sql = f"SELECT {TRUNK_JSON[show_agent_id]} FROM trunks AS t WHERE {where} ORDER BY t.id"
        return [row[0] for row in self._conn.execute(sql, params)]

    def list_trunks(self, is_active: bool | None, show_agent_id: bool = False) -> str:
        """JSON array of all trunks (optionally filtered) with their visible numbers."""
        if is_active is None:
            rows = self._trunks_json("1", {}, show_agent_id)
        else:
            rows = self._trunks_json("t.is_active = :active", {"active": int(is_active)}, show_agent_id)
        return f"[{','.join(rows)}]"

    def get_trunk(self, trunk_id: str, *, all_numbers: bool = False, show_agent_id: bool = False) -> str:
        """JSON of one trunk or ApiError 404; ``all_numbers`` ignores the visibility delay."""
        params: dict[str, Any] = {"id": trunk_id}
        if all_numbers:
            params["cutoff"] = SHOW_ALL
        found = self._trunks_json("t.id = :id", params, show_agent_id)
        if not found:
            raise not_found("trunk")
        return found[0]

    def rule_view(self, trunk_id: str) -> dict[str, Any]:
        """The stored trunk as a dict, ``auth_password`` a truthy marker when one is set."""
        trunk: dict[str, Any] = json.loads(self.get_trunk(trunk_id))
        row = self._conn.execute("SELECT auth_password_hash FROM trunks WHERE id = ?", (trunk_id,)).fetchone()
        trunk["auth_password"] = "<stored>" if row[0] else None
        return trunk

    def _numbers_json(self, where: str, params: dict[str, Any], show_agent_id: bool) -> list[str]:
        sql = f"SELECT {NUMBER_JSON[show_agent_id]} FROM phone_numbers AS n WHERE {where} ORDER BY n.id"
        return [row[0] for row in self._conn.execute(sql, params)]

    def list_numbers(self, trunk_id: str, show_agent_id: bool = False) -> str:
        """JSON array of visible, non-deleted numbers of a trunk (404 if no such trunk)."""
        self.require_trunk(trunk_id)
        rows = self._numbers_json(
            f"n.trunk_id = :trunk AND {VISIBLE}", {"trunk": trunk_id, "cutoff": time.time()}, show_agent_id
        )
        return f"[{','.join(rows)}]"

    def counts(self) -> tuple[int, int]:
        """(existing trunks, non-deleted numbers)."""
        trunks = self._conn.execute("SELECT COUNT(*) FROM trunks").fetchone()[0]
        numbers = self._conn.execute("SELECT COUNT(*) FROM phone_numbers WHERE deleted = 0").fetchone()[0]
        return trunks, numbers

    def audit(self) -> dict[str, Any]:
        """Invariants straight from the tables (see :meth:`.records.Records.audit`)."""
        return self.records.audit(*self.counts())

    # ------------------------------------------------------------------ writes
    def _check_name_free(self, name: str, trunk_id: str = "") -> None:
        if self._conn.execute("SELECT 1 FROM trunks WHERE name = ? AND id != ?", (name, trunk_id)).fetchone():
            raise ApiError(409, f"A trunk named '{name}' already exists", tag="duplicate_name")

    def _write_children(self, trunk_id: str, trunk: Mapping[str, Any], stamp: str) -> None:
        """(Re)write the gateways and/or IP identifiers present in ``trunk``."""
        if "gateways" in trunk:
            self._conn.execute("DELETE FROM gateways WHERE trunk_id = ?", (trunk_id,))
            self._conn.executemany(
                "INSERT INTO gateways VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (new_id(), trunk_id, i, g["gateway_address"], g["port"], g["priority"], stamp)
                    for i, g in enumerate(trunk["gateways"])
                ],
            )
        if "ip_identifiers" in trunk:
            self._conn.execute("DELETE FROM ip_identifiers WHERE trunk_id = ?", (trunk_id,))
            self._conn.executemany(
                "INSERT INTO ip_identifiers VALUES (?, ?, ?)",
                [(trunk_id, i, ip["ip_address"]) for i, ip in enumerate(trunk["ip_identifiers"])],
            )

    def _insert_number(self, trunk_id: str, number: Mapping[str, Any], now: float, rules: Rules) -> str:
        """Insert one number (409 if its digits are taken, see :class:`Rules`); return its id.

        The same digits twice on one trunk are always refused; on another trunk only while
        ``unique_numbers`` is on.
        """
        holders = {
            row[0]
            for row in self._conn.execute(
                "SELECT trunk_id FROM phone_numbers WHERE digits = ? AND deleted = 0", (number["digits"],)
            )
        }
        if trunk_id in holders:
            raise ApiError(409, "Phone number already exists on this trunk", tag="duplicate_number")
        if holders and rules.unique_numbers:
            raise ApiError(409, "Phone number already exists on another active trunk", tag="duplicate_number")
        number_id, stamp = new_id(), iso(now)
        self._conn.execute(
            "INSERT INTO phone_numbers (id, trunk_id, phone_number, digits, name, user_id, deleted, "
            "visible_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (
                number_id,
                trunk_id,
                number["phone_number"],
                number["digits"],
                number["name"],
                USER_ID,
                now + rules.visibility_delay_s,
                stamp,
                stamp,
            ),
        )
        return number_id

    def _insert_trunk(
        self, trunk: Mapping[str, Any], numbers: Sequence[Mapping[str, Any]], now: float, rules: Rules
    ) -> str:
        """Insert a validated trunk, its children and inline numbers (inside a transaction)."""
        stamp = iso(now)
        trunk_id = new_id()
        password = trunk.get("auth_password")
        if rules.unique_names:
            self._check_name_free(trunk["name"])
        self._conn.execute(
            f"INSERT INTO trunks ({TRUNK_COLUMNS}) VALUES ({', '.join('?' * (len(FIELDS) + 5))})",
            (
                trunk_id,
                USER_ID,
                *(trunk[f] for f in FIELDS),
                hash_password(password) if password is not None else None,
                stamp,
                stamp,
            ),
        )
        self._conn.execute(
            "INSERT INTO trunk_history (id, name, created_name, created_at) VALUES (?, ?, ?, ?)",
            (trunk_id, trunk["name"], trunk["name"], stamp),
        )
        self._write_children(trunk_id, trunk, stamp)
        for number in numbers:
            self._insert_number(trunk_id, number, now, rules)
        return trunk_id

    def create_trunk(
        self, trunk: Mapping[str, Any], numbers: Sequence[Mapping[str, Any]], rules: Rules = Rules()
    ) -> tuple[str, str]:
        """Insert a validated trunk and its inline numbers atomically; return (id, 201 body)."""
        with transaction(self._conn):
            trunk_id = self._insert_trunk(trunk, numbers, time.time(), rules)
            return trunk_id, self.get_trunk(trunk_id, all_numbers=True, show_agent_id=rules.show_agent_id)

    def import_trunks(self, items: Iterable[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> int:
        """Bulk-load validated ``(trunk, numbers)`` pairs in ONE transaction (benchmarks, scale
        tests); same rules as :meth:`create_trunk`, all or nothing. Returns the count."""
        count = 0
        with transaction(self._conn):
            for trunk, numbers in items:
                self._insert_trunk(trunk, numbers, time.time(), Rules())
                count += 1
        return count

    def update_trunk(self, trunk_id: str, changes: Mapping[str, Any], rules: Rules = Rules()) -> str:
        """Apply validated PATCH ``changes`` (lists replaced wholesale); return the trunk."""
        stamp = iso(time.time())
        columns = {k: v for k, v in changes.items() if k in FIELDS}
        if "auth_password" in changes:
            columns["auth_password_hash"] = hash_password(changes["auth_password"])
        columns["updated_at"] = stamp
        with transaction(self._conn) as conn:
            self.require_trunk(trunk_id)
            if "name" in changes:
                if rules.unique_names:
                    self._check_name_free(changes["name"], trunk_id)
                conn.execute("UPDATE trunk_history SET name = ? WHERE id = ?", (changes["name"], trunk_id))
            assignments = ", ".join(f"{column} = ?" for column in columns)
            conn.execute(f"UPDATE trunks SET {assignments} WHERE id = ?", (*columns.values(), trunk_id))
            self._write_children(trunk_id, changes, stamp)
            return self.get_trunk(trunk_id, show_agent_id=rules.show_agent_id)

    def delete_trunk(self, trunk_id: str) -> tuple[int, str]:
        """Hard-delete a trunk, its gateways and IPs; soft-delete its numbers (clearing their
        inbound agents); return (number count, the trunk's name)."""
        stamp = iso(time.time())
        with transaction(self._conn) as conn:
            row = conn.execute("SELECT name FROM trunks WHERE id = ?", (trunk_id,)).fetchone()
            if row is None:
                raise not_found("trunk")
            removed = conn.execute(
                "UPDATE phone_numbers SET deleted = 1, agent_id = NULL, updated_at = ? "
                "WHERE trunk_id = ? AND deleted = 0",
                (stamp, trunk_id),
            ).rowcount
            for table, column in (("gateways", "trunk_id"), ("ip_identifiers", "trunk_id"), ("trunks", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (trunk_id,))
            conn.execute("UPDATE trunk_history SET deleted_at = ? WHERE id = ?", (stamp, trunk_id))
            return int(removed), str(row[0])

    def add_number(self, trunk_id: str, number: Mapping[str, Any], rules: Rules = Rules()) -> tuple[str, str]:
        """Add one validated number to an existing trunk; return (its id, the 201 body)."""
        with transaction(self._conn):
            self.require_trunk(trunk_id)
            number_id = self._insert_number(trunk_id, number, time.time(), rules)
            return number_id, self._numbers_json("n.id = :id", {"id": number_id}, rules.show_agent_id)[0]

    def remove_number(self, trunk_id: str, number_id: str) -> None:
        """Soft-delete a visible number of the trunk and clear its inbound agent (404 for an
        unknown trunk or number)."""
        now = time.time()
        with transaction(self._conn) as conn:
            self.require_trunk(trunk_id)
            removed = conn.execute(
                f"UPDATE phone_numbers SET deleted = 1, agent_id = NULL, updated_at = :stamp "
                f"WHERE id = :id AND trunk_id = :trunk AND {VISIBLE}",
                {"stamp": iso(now), "id": number_id, "trunk": trunk_id, "cutoff": now},
            ).rowcount
            if not removed:
                raise not_found("phone number")

    def reset(self) -> None:
        """Delete all state, agents and records."""
        with transaction(self._conn) as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")
