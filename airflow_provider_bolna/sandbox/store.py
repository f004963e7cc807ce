"""SQLite state of the sandbox: trunks, gateways, IP identifiers and phone numbers.

One connection, used only from the event-loop thread, so every request sees a consistent
state and every write is exactly one ``BEGIN IMMEDIATE ... COMMIT`` transaction. Trunks (with
their gateways and IP identifiers) are hard-deleted; numbers are soft-deleted
(``deleted = 1``). Two unique indexes back the API's conflict rules: trunk ``name`` and the
digits of every non-deleted number. File databases use WAL mode.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from .errors import ApiError, not_found
from .ids import new_id

USER_ID = "sandbox-user"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trunks (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT,
    auth_type TEXT NOT NULL,
    auth_username TEXT,
    auth_password_hash TEXT,
    allow TEXT NOT NULL,
    disallow TEXT NOT NULL,
    transport TEXT NOT NULL,
    direct_media INTEGER NOT NULL,
    rtp_symmetric INTEGER NOT NULL,
    force_rport INTEGER NOT NULL,
    media_encryption TEXT NOT NULL,
    media_encryption_optimistic INTEGER NOT NULL,
    qualify_frequency INTEGER NOT NULL,
    inbound_enabled INTEGER NOT NULL,
    outbound_leading_plus_enabled INTEGER NOT NULL,
    is_active INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS trunks_name ON trunks (name);
CREATE INDEX IF NOT EXISTS trunks_active ON trunks (is_active);
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    trunk_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    gateway_address TEXT NOT NULL,
    port INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gateways_trunk ON gateways (trunk_id, position);
CREATE TABLE IF NOT EXISTS ip_identifiers (
    trunk_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    ip_address TEXT NOT NULL,
    PRIMARY KEY (trunk_id, position)
);
CREATE TABLE IF NOT EXISTS phone_numbers (
    id TEXT PRIMARY KEY,
    trunk_id TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    digits TEXT NOT NULL,
    name TEXT,
    user_id TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS numbers_trunk ON phone_numbers (trunk_id, deleted);
CREATE INDEX IF NOT EXISTS numbers_digits ON phone_numbers (digits);
CREATE UNIQUE INDEX IF NOT EXISTS numbers_active_digits ON phone_numbers (digits) WHERE deleted = 0;
"""

#: trunk columns that map 1:1 to API fields (besides id/user_id/timestamps)
_FIELDS = (
    "name", "provider", "description", "auth_type", "auth_username", "allow", "disallow",
    "transport", "direct_media", "rtp_symmetric", "force_rport", "media_encryption",
    "media_encryption_optimistic", "qualify_frequency", "inbound_enabled",
    "outbound_leading_plus_enabled", "is_active",
)
_BOOLS = frozenset({
    "direct_media", "rtp_symmetric", "force_rport", "media_encryption_optimistic",
    "inbound_enabled", "outbound_leading_plus_enabled", "is_active",
})
_TRUNK_SELECT = f"id, user_id, {', '.join(_FIELDS)}, auth_password_hash, created_at, updated_at"
_NUMBER_SELECT = "id, phone_number, name, user_id, trunk_id, deleted, created_at, updated_at"
_VISIBLE = "deleted = 0 AND visible_at <= ?"


def iso(ts: float) -> str:
    """UTC ISO-8601 timestamp with milliseconds and a ``Z`` suffix."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def hash_password(password: str) -> str:
    """Salted SHA-256; the plain password is never stored or returned."""
    salt = os.urandom(16)
    return f"sha256${salt.hex()}${hashlib.sha256(salt + password.encode()).hexdigest()}"


def _number_json(row: Sequence[Any]) -> dict[str, Any]:
    num_id, phone, name, user_id, trunk_id, deleted, created, updated = row
    return {
        "id": num_id, "phone_number": phone, "name": name, "user_id": user_id,
        "byot_trunk_id": trunk_id, "telephony_provider": "sip-trunk", "deleted": bool(deleted),
        "created_at": created, "updated_at": updated,
    }


def _gateway_json(row: Sequence[Any]) -> dict[str, Any]:
    gw_id, address, port, priority, created = row
    return {"id": gw_id, "gateway_address": address, "port": port, "priority": priority,
            "created_at": created}


def _trunk_json(row: Sequence[Any], gateways: list[dict[str, Any]],
                ips: list[dict[str, Any]], numbers: list[dict[str, Any]]) -> dict[str, Any]:
    fields = dict(zip(_FIELDS, row[2:-3]))
    for key in _BOOLS:
        fields[key] = bool(fields[key])
    return {
        "id": row[0], "user_id": row[1],
        **{k: fields.pop(k) for k in ("name", "provider", "description", "auth_type",
                                      "auth_username")},
        "gateways": gateways, "ip_identifiers": ips, "phone_numbers": numbers,
        **fields,
        "created_at": row[-2], "updated_at": row[-1],
    }


class Store:
    """All reads and writes of the sandbox state. Not thread-safe by design (one loop)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if path != ":memory:" and not path.startswith("file::memory:"):
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ reads
    def require_trunk(self, trunk_id: str) -> None:
        """Raise ApiError 404 unless the trunk exists."""
        if self._conn.execute("SELECT 1 FROM trunks WHERE id = ?", (trunk_id,)).fetchone() is None:
            raise not_found("trunk")

    def _group(self, sql: str, args: Sequence[Any],
               to_json: Callable[[Sequence[Any]], dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Run ``sql`` (first column = trunk id) and group the converted rows by trunk."""
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self._conn.execute(sql, args):
            grouped[row[0]].append(to_json(row[1:]))
        return grouped

    def _trunks(self, where: str, args: Sequence[Any], now: float,
                numbers: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Load trunks matching ``where`` with 4 queries in total (one per table)."""
        rows = self._conn.execute(
            f"SELECT {_TRUNK_SELECT} FROM trunks WHERE {where} ORDER BY id", args).fetchall()
        if not rows:
            return []
        scope = "1" if where == "1" else f"trunk_id IN (SELECT id FROM trunks WHERE {where})"
        gateways = self._group(
            "SELECT trunk_id, id, gateway_address, port, priority, created_at FROM gateways "
            f"WHERE {scope} ORDER BY trunk_id, position", args, _gateway_json)
        ips = self._group(
            f"SELECT trunk_id, ip_address FROM ip_identifiers WHERE {scope} "
            "ORDER BY trunk_id, position", args, lambda r: {"ip_address": r[0]})
        if numbers is None:
            visible = self._group(
                f"SELECT trunk_id, {_NUMBER_SELECT} FROM phone_numbers "
                f"WHERE {_VISIBLE} AND {scope} ORDER BY trunk_id, id", (now, *args), _number_json)
        empty: list[dict[str, Any]] = []
        return [
            _trunk_json(row, gateways.get(row[0], empty), ips.get(row[0], empty),
                        numbers if numbers is not None else visible.get(row[0], empty))
            for row in rows
        ]

    def list_trunks(self, is_active: bool | None) -> list[dict[str, Any]]:
        """All trunks (optionally filtered), oldest first, with their visible numbers."""
        if is_active is None:
            return self._trunks("1", (), time.time())
        return self._trunks("is_active = ?", (int(is_active),), time.time())

    def get_trunk(self, trunk_id: str, *, numbers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """One trunk or ApiError 404. ``numbers`` overrides the (visible) phone numbers."""
        found = self._trunks("id = ?", (trunk_id,), time.time(), numbers)
        if not found:
            raise not_found("trunk")
        return found[0]

    def rule_view(self, trunk_id: str) -> dict[str, Any]:
        """The stored fields the cross-field rules need (password as a truthy marker)."""
        trunk = self.get_trunk(trunk_id, numbers=[])
        row = self._conn.execute(
            "SELECT auth_password_hash FROM trunks WHERE id = ?", (trunk_id,)).fetchone()
        return {**trunk, "auth_password": "<stored>" if row[0] else None}

    def list_numbers(self, trunk_id: str) -> list[dict[str, Any]]:
        """Visible, non-deleted numbers of a trunk, oldest first (404 if no such trunk)."""
        self.require_trunk(trunk_id)
        rows = self._conn.execute(
            f"SELECT {_NUMBER_SELECT} FROM phone_numbers WHERE trunk_id = ? AND {_VISIBLE} "
            "ORDER BY id", (trunk_id, time.time()))
        return [_number_json(r) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(existing trunks, non-deleted numbers)."""
        trunks = self._conn.execute("SELECT COUNT(*) FROM trunks").fetchone()[0]
        numbers = self._conn.execute("SELECT COUNT(*) FROM phone_numbers WHERE deleted = 0").fetchone()[0]
        return trunks, numbers

    def audit(self) -> dict[str, Any]:
        """Invariant check straight from the tables (used by chaos tests)."""
        dup_names = [
            {"name": name, "count": count} for name, count in self._conn.execute(
                "SELECT name, COUNT(*) FROM trunks GROUP BY name HAVING COUNT(*) > 1")
        ]
        multi = [
            {"digits": digits, "trunk_ids": trunk_ids.split(","), "count": count}
            for digits, trunk_ids, count in self._conn.execute(
                "SELECT n.digits, GROUP_CONCAT(n.trunk_id), COUNT(*) FROM phone_numbers n "
                "JOIN trunks t ON t.id = n.trunk_id WHERE n.deleted = 0 "
                "GROUP BY n.digits HAVING COUNT(*) > 1")
        ]
        orphans = self._conn.execute(
            "SELECT COUNT(*) FROM phone_numbers WHERE deleted = 0 "
            "AND trunk_id NOT IN (SELECT id FROM trunks)").fetchone()[0]
        trunks, numbers = self.counts()
        return {"duplicate_trunk_names": dup_names, "numbers_on_multiple_active_trunks": multi,
                "active_numbers_without_trunk": orphans, "trunks": trunks, "numbers": numbers}

    # ------------------------------------------------------------------ writes
    def _check_name_free(self, name: str, trunk_id: str = "") -> None:
        if self._conn.execute("SELECT 1 FROM trunks WHERE name = ? AND id != ?",
                              (name, trunk_id)).fetchone():
            raise ApiError(409, f"A trunk named '{name}' already exists", tag="duplicate_name")

    def _write_children(self, trunk_id: str, trunk: Mapping[str, Any], stamp: str) -> None:
        """(Re)write gateways and/or IP identifiers present in ``trunk``."""
        if "gateways" in trunk:
            self._conn.execute("DELETE FROM gateways WHERE trunk_id = ?", (trunk_id,))
            self._conn.executemany(
                "INSERT INTO gateways VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(new_id(), trunk_id, i, g["gateway_address"], g["port"], g["priority"], stamp)
                 for i, g in enumerate(trunk["gateways"])])
        if "ip_identifiers" in trunk:
            self._conn.execute("DELETE FROM ip_identifiers WHERE trunk_id = ?", (trunk_id,))
            self._conn.executemany(
                "INSERT INTO ip_identifiers VALUES (?, ?, ?)",
                [(trunk_id, i, ip["ip_address"]) for i, ip in enumerate(trunk["ip_identifiers"])])

    def _insert_number(self, trunk_id: str, number: Mapping[str, Any], now: float,
                       visibility_delay_s: float) -> dict[str, Any]:
        holder = self._conn.execute(
            "SELECT trunk_id FROM phone_numbers WHERE digits = ? AND deleted = 0",
            (number["digits"],)).fetchone()
        if holder:
            where = "this trunk" if holder[0] == trunk_id else "another active trunk"
            raise ApiError(409, f"Phone number already exists on {where}", tag="duplicate_number")
        stamp = iso(now)
        row = (new_id(), number["phone_number"], number["name"], USER_ID, trunk_id, 0, stamp, stamp)
        self._conn.execute(
            "INSERT INTO phone_numbers (id, phone_number, name, user_id, trunk_id, deleted, "
            "created_at, updated_at, digits, visible_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, number["digits"], now + visibility_delay_s))
        return _number_json(row)

    def create_trunk(self, trunk: Mapping[str, Any], numbers: Sequence[Mapping[str, Any]],
                     visibility_delay_s: float) -> dict[str, Any]:
        """Insert a validated trunk and its inline numbers atomically; return the 201 body."""
        now = time.time()
        stamp = iso(now)
        trunk_id = new_id()
        password = trunk.get("auth_password")
        with self._transaction() as conn:
            self._check_name_free(trunk["name"])
            conn.execute(
                f"INSERT INTO trunks ({_TRUNK_SELECT}) VALUES ({', '.join('?' * (len(_FIELDS) + 5))})",
                (trunk_id, USER_ID, *(trunk[f] for f in _FIELDS),
                 hash_password(password) if password is not None else None, stamp, stamp))
            self._write_children(trunk_id, trunk, stamp)
            created = [self._insert_number(trunk_id, n, now, visibility_delay_s) for n in numbers]
            return self.get_trunk(trunk_id, numbers=created)

    def update_trunk(self, trunk_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply validated PATCH ``changes``; lists are replaced wholesale. Returns the trunk."""
        stamp = iso(time.time())
        columns = {k: v for k, v in changes.items() if k in _FIELDS}
        if "auth_password" in changes:
            columns["auth_password_hash"] = hash_password(changes["auth_password"])
        columns["updated_at"] = stamp
        with self._transaction() as conn:
            self.require_trunk(trunk_id)
            if "name" in changes:
                self._check_name_free(changes["name"], trunk_id)
            conn.execute(f"UPDATE trunks SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?",
                         (*columns.values(), trunk_id))
            self._write_children(trunk_id, changes, stamp)
            return self.get_trunk(trunk_id)

    def delete_trunk(self, trunk_id: str) -> int:
        """Hard-delete a trunk with gateways and IPs, soft-delete its numbers; return their count."""
        stamp = iso(time.time())
        with self._transaction() as conn:
            self.require_trunk(trunk_id)
            removed = conn.execute(
                "UPDATE phone_numbers SET deleted = 1, updated_at = ? WHERE trunk_id = ? AND deleted = 0",
                (stamp, trunk_id)).rowcount
            for table, column in (("gateways", "trunk_id"), ("ip_identifiers", "trunk_id"),
                                  ("trunks", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (trunk_id,))
            return removed

    def add_number(self, trunk_id: str, number: Mapping[str, Any],
                   visibility_delay_s: float) -> dict[str, Any]:
        """Add one validated number to an existing trunk; return the 201 body."""
        with self._transaction():
            self.require_trunk(trunk_id)
            return self._insert_number(trunk_id, number, time.time(), visibility_delay_s)

    def remove_number(self, trunk_id: str, number_id: str) -> None:
        """Soft-delete a visible number of the trunk (404 for an unknown trunk or number)."""
        now = time.time()
        with self._transaction() as conn:
            self.require_trunk(trunk_id)
            removed = conn.execute(
                f"UPDATE phone_numbers SET deleted = 1, updated_at = ? "
                f"WHERE id = ? AND trunk_id = ? AND {_VISIBLE}",
                (iso(now), number_id, trunk_id, now)).rowcount
            if not removed:
                raise not_found("phone number")

    def reset(self) -> None:
        """Delete all state."""
        with self._transaction() as conn:
            for table in ("phone_numbers", "ip_identifiers", "gateways", "trunks"):
                conn.execute(f"DELETE FROM {table}")
