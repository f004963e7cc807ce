"""SQLite state of the sandbox: trunks, gateways, IP identifiers and phone numbers.

One connection, used only from the event-loop thread, so every request sees a consistent
state and every write is exactly one ``BEGIN IMMEDIATE ... COMMIT`` transaction. Trunks (with
their gateways and IP identifiers) are hard-deleted; numbers are soft-deleted
(``deleted = 1``). Two unique indexes back the API's conflict rules: trunk ``name`` and the
digits of every non-deleted number. File databases use WAL mode.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
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

#: trunk columns that map 1:1 to API fields, in response order around the nested lists
_HEAD_FIELDS = ("name", "provider", "description", "auth_type", "auth_username")
_TAIL_FIELDS = (
    "allow", "disallow", "transport", "direct_media", "rtp_symmetric", "force_rport",
    "media_encryption", "media_encryption_optimistic", "qualify_frequency", "inbound_enabled",
    "outbound_leading_plus_enabled", "is_active",
)
_FIELDS = _HEAD_FIELDS + _TAIL_FIELDS
#: 0/1 columns served as JSON booleans
_BOOLS = frozenset({
    "direct_media", "rtp_symmetric", "force_rport", "media_encryption_optimistic",
    "inbound_enabled", "outbound_leading_plus_enabled", "is_active", "deleted",
})
_TRUNK_COLUMNS = f"id, user_id, {', '.join(_FIELDS)}, auth_password_hash, created_at, updated_at"

# Response shapes are built by SQLite's JSON functions (C speed: listing 100k trunks is one
# query and no Python object per trunk). Each shape is defined exactly once, here.
Pair = tuple[str, str]  # (JSON key, SQL expression)


def _columns(alias: str, names: Sequence[str]) -> list[Pair]:
    """``(name, sql)`` pairs for columns of ``alias``; 0/1 columns become JSON booleans."""
    return [(name, f"json(CASE WHEN {alias}.{name} THEN 'true' ELSE 'false' END)"
             if name in _BOOLS else f"{alias}.{name}") for name in names]


def _json_object(pairs: Sequence[Pair]) -> str:
    """``json_object('key', sql, ...)``."""
    args = ", ".join(f"'{key}', {sql}" for key, sql in pairs)
    return f"json_object({args})"


def _json_array(item: str, alias: str, source: str) -> str:
    """``json_group_array`` of ``item`` over the ordered sub-select ``source``.

    Wrapped in ``json()`` so the JSON subtype survives the scalar subquery on every SQLite.
    """
    return f"json((SELECT json_group_array({item}) FROM ({source}) AS {alias}))"


_VISIBLE = "deleted = 0 AND visible_at <= :cutoff"
"""Non-deleted numbers added at least ``number_visibility_delay_s`` before ``:cutoff``."""
_NUMBER_JSON = _json_object([
    *_columns("n", ("id", "phone_number", "name", "user_id")),
    ("byot_trunk_id", "n.trunk_id"),
    ("telephony_provider", "'sip-trunk'"),
    *_columns("n", ("deleted", "created_at", "updated_at")),
])
_GATEWAY_JSON = _json_object(_columns("g", ("id", "gateway_address", "port", "priority", "created_at")))
_TRUNK_JSON = _json_object([
    *_columns("t", ("id", "user_id", *_HEAD_FIELDS)),
    ("gateways", _json_array(_GATEWAY_JSON, "g",
                             "SELECT * FROM gateways WHERE trunk_id = t.id ORDER BY position")),
    ("ip_identifiers", _json_array("json_object('ip_address', i.ip_address)", "i",
                                   "SELECT * FROM ip_identifiers WHERE trunk_id = t.id "
                                   "ORDER BY position")),
    ("phone_numbers", _json_array(_NUMBER_JSON, "n",
                                  f"SELECT * FROM phone_numbers WHERE trunk_id = t.id AND {_VISIBLE} "
                                  "ORDER BY id")),
    *_columns("t", (*_TAIL_FIELDS, "created_at", "updated_at")),
])
_SHOW_ALL = 1e300
"""A visibility cutoff beyond every ``visible_at`` (a create's own 201 body shows its numbers)."""


def iso(ts: float) -> str:
    """UTC ISO-8601 timestamp with milliseconds and a ``Z`` suffix."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def hash_password(password: str) -> str:
    """Salted SHA-256; the plain password is never stored or returned."""
    salt = os.urandom(16)
    return f"sha256${salt.hex()}${hashlib.sha256(salt + password.encode()).hexdigest()}"


class Store:
    """All reads and writes of the sandbox state. Not thread-safe by design (one loop).

    Reads return ready-to-send JSON text (see the shape definitions above).
    """

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

    def _trunks_json(self, where: str, params: dict[str, Any]) -> list[str]:
        """JSON text of every trunk matching ``where``, oldest first (one query)."""
        params.setdefault("cutoff", time.time())
        sql = f"SELECT {_TRUNK_JSON} FROM trunks AS t WHERE {where} ORDER BY t.id"
        return [row[0] for row in self._conn.execute(sql, params)]

    def list_trunks(self, is_active: bool | None) -> str:
        """JSON array of all trunks (optionally filtered) with their visible numbers."""
        if is_active is None:
            rows = self._trunks_json("1", {})
        else:
            rows = self._trunks_json("t.is_active = :active", {"active": int(is_active)})
        return f"[{','.join(rows)}]"

    def get_trunk(self, trunk_id: str, *, all_numbers: bool = False) -> str:
        """JSON of one trunk or ApiError 404; ``all_numbers`` ignores the visibility delay."""
        params: dict[str, Any] = {"id": trunk_id}
        if all_numbers:
            params["cutoff"] = _SHOW_ALL
        found = self._trunks_json("t.id = :id", params)
        if not found:
            raise not_found("trunk")
        return found[0]

    def rule_view(self, trunk_id: str) -> dict[str, Any]:
        """The stored trunk as a dict, ``auth_password`` a truthy marker when one is set."""
        trunk: dict[str, Any] = json.loads(self.get_trunk(trunk_id))
        row = self._conn.execute(
            "SELECT auth_password_hash FROM trunks WHERE id = ?", (trunk_id,)).fetchone()
        trunk["auth_password"] = "<stored>" if row[0] else None
        return trunk

    def _numbers_json(self, where: str, params: dict[str, Any]) -> list[str]:
        sql = f"SELECT {_NUMBER_JSON} FROM phone_numbers AS n WHERE {where} ORDER BY n.id"
        return [row[0] for row in self._conn.execute(sql, params)]

    def list_numbers(self, trunk_id: str) -> str:
        """JSON array of visible, non-deleted numbers of a trunk (404 if no such trunk)."""
        self.require_trunk(trunk_id)
        rows = self._numbers_json(f"n.trunk_id = :trunk AND {_VISIBLE}",
                                  {"trunk": trunk_id, "cutoff": time.time()})
        return f"[{','.join(rows)}]"

    def counts(self) -> tuple[int, int]:
        """(existing trunks, non-deleted numbers)."""
        trunks = self._conn.execute("SELECT COUNT(*) FROM trunks").fetchone()[0]
        numbers = self._conn.execute(
            "SELECT COUNT(*) FROM phone_numbers WHERE deleted = 0").fetchone()[0]
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
                "SELECT n.digits, GROUP_CONCAT(n.trunk_id), COUNT(*) FROM phone_numbers AS n "
                "JOIN trunks AS t ON t.id = n.trunk_id WHERE n.deleted = 0 "
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
        """(Re)write the gateways and/or IP identifiers present in ``trunk``."""
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
                       visibility_delay_s: float) -> str:
        """Insert one number (409 if its digits are taken); return its id."""
        holder = self._conn.execute(
            "SELECT trunk_id FROM phone_numbers WHERE digits = ? AND deleted = 0",
            (number["digits"],)).fetchone()
        if holder:
            where = "this trunk" if holder[0] == trunk_id else "another active trunk"
            raise ApiError(409, f"Phone number already exists on {where}", tag="duplicate_number")
        number_id, stamp = new_id(), iso(now)
        self._conn.execute(
            "INSERT INTO phone_numbers (id, trunk_id, phone_number, digits, name, user_id, deleted, "
            "visible_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (number_id, trunk_id, number["phone_number"], number["digits"], number["name"], USER_ID,
             now + visibility_delay_s, stamp, stamp))
        return number_id

    def _insert_trunk(self, trunk: Mapping[str, Any], numbers: Sequence[Mapping[str, Any]],
                      now: float, visibility_delay_s: float) -> str:
        """Insert a validated trunk, its children and inline numbers (inside a transaction)."""
        stamp = iso(now)
        trunk_id = new_id()
        password = trunk.get("auth_password")
        self._check_name_free(trunk["name"])
        self._conn.execute(
            f"INSERT INTO trunks ({_TRUNK_COLUMNS}) VALUES ({', '.join('?' * (len(_FIELDS) + 5))})",
            (trunk_id, USER_ID, *(trunk[f] for f in _FIELDS),
             hash_password(password) if password is not None else None, stamp, stamp))
        self._write_children(trunk_id, trunk, stamp)
        for number in numbers:
            self._insert_number(trunk_id, number, now, visibility_delay_s)
        return trunk_id

    def create_trunk(self, trunk: Mapping[str, Any], numbers: Sequence[Mapping[str, Any]],
                     visibility_delay_s: float) -> str:
        """Insert a validated trunk and its inline numbers atomically; return the 201 body."""
        with self._transaction():
            trunk_id = self._insert_trunk(trunk, numbers, time.time(), visibility_delay_s)
            return self.get_trunk(trunk_id, all_numbers=True)

    def import_trunks(self, items: Iterable[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> int:
        """Bulk-load validated ``(trunk, numbers)`` pairs in ONE transaction (benchmarks, scale
        tests); same rules as :meth:`create_trunk`, all or nothing. Returns the count."""
        count = 0
        with self._transaction():
            for trunk, numbers in items:
                self._insert_trunk(trunk, numbers, time.time(), 0.0)
                count += 1
        return count

    def update_trunk(self, trunk_id: str, changes: Mapping[str, Any]) -> str:
        """Apply validated PATCH ``changes`` (lists replaced wholesale); return the trunk."""
        stamp = iso(time.time())
        columns = {k: v for k, v in changes.items() if k in _FIELDS}
        if "auth_password" in changes:
            columns["auth_password_hash"] = hash_password(changes["auth_password"])
        columns["updated_at"] = stamp
        with self._transaction() as conn:
            self.require_trunk(trunk_id)
            if "name" in changes:
                self._check_name_free(changes["name"], trunk_id)
            assignments = ", ".join(f"{column} = ?" for column in columns)
            conn.execute(f"UPDATE trunks SET {assignments} WHERE id = ?", (*columns.values(), trunk_id))
            self._write_children(trunk_id, changes, stamp)
            return self.get_trunk(trunk_id)

    def delete_trunk(self, trunk_id: str) -> int:
        """Hard-delete a trunk, its gateways and IPs; soft-delete its numbers; return their count."""
        stamp = iso(time.time())
        with self._transaction() as conn:
            self.require_trunk(trunk_id)
            removed = conn.execute(
                "UPDATE phone_numbers SET deleted = 1, updated_at = ? WHERE trunk_id = ? AND deleted = 0",
                (stamp, trunk_id)).rowcount
            for table, column in (("gateways", "trunk_id"), ("ip_identifiers", "trunk_id"),
                                  ("trunks", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (trunk_id,))
            return int(removed)

    def add_number(self, trunk_id: str, number: Mapping[str, Any], visibility_delay_s: float) -> str:
        """Add one validated number to an existing trunk; return the 201 body."""
        with self._transaction():
            self.require_trunk(trunk_id)
            number_id = self._insert_number(trunk_id, number, time.time(), visibility_delay_s)
            return self._numbers_json("n.id = :id", {"id": number_id})[0]

    def remove_number(self, trunk_id: str, number_id: str) -> None:
        """Soft-delete a visible number of the trunk (404 for an unknown trunk or number)."""
        now = time.time()
        with self._transaction() as conn:
            self.require_trunk(trunk_id)
            removed = conn.execute(
                f"UPDATE phone_numbers SET deleted = 1, updated_at = :stamp "
                f"WHERE id = :id AND trunk_id = :trunk AND {_VISIBLE}",
                {"stamp": iso(now), "id": number_id, "trunk": trunk_id, "cutoff": now}).rowcount
            if not removed:
                raise not_found("phone number")

    def reset(self) -> None:
        """Delete all state."""
        with self._transaction() as conn:
            for table in ("phone_numbers", "ip_identifiers", "gateways", "trunks"):
                conn.execute(f"DELETE FROM {table}")
