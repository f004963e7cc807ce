"""The sandbox's SQLite schema (and the upgrade of older database files), transactions, time stamps.

API state: ``trunks`` (existing trunks only; hard-deleted) with ``gateways`` and
``ip_identifiers``; ``phone_numbers`` (soft-deleted, ``agent_id`` = inbound mapping);
``agents``. Records for tests: ``trunk_history`` (every trunk ever created, with its last name
and when it was deleted) and ``write_attempts`` (every write request received, whatever became
of it).

No unique index enforces the API's conflict rules: they are checked in code, so that the
``unique_names`` / ``unique_numbers`` switches can let duplicates in (the audit reports them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS trunks_by_name ON trunks (name);
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
    updated_at TEXT NOT NULL,
    agent_id TEXT
);
CREATE INDEX IF NOT EXISTS numbers_trunk ON phone_numbers (trunk_id, deleted);
CREATE INDEX IF NOT EXISTS numbers_digits ON phone_numbers (digits);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    telephony_provider TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trunk_history (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS trunk_history_name ON trunk_history (name);
CREATE TABLE IF NOT EXISTS write_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    trunk_name TEXT,
    trunk_id TEXT,
    phone_number TEXT,
    digits TEXT,
    phone_number_id TEXT,
    agent_id TEXT,
    status TEXT,
    committed INTEGER NOT NULL DEFAULT 0,
    fault TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS write_attempts_kind ON write_attempts (kind);
"""

#: tables emptied by an admin reset, children first
TABLES = (
    "write_attempts",
    "trunk_history",
    "agents",
    "phone_numbers",
    "ip_identifiers",
    "gateways",
    "trunks",
)


def create_or_upgrade(conn: sqlite3.Connection) -> None:
    """Create missing tables; bring a database file of an older sandbox up to date."""
    had_history = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trunk_history'"
    ).fetchone()
    # the API rules are enforced in code now (switchable): drop the old unique indexes
    conn.executescript("DROP INDEX IF EXISTS trunks_name; DROP INDEX IF EXISTS numbers_active_digits;")
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(phone_numbers)")}
    if "agent_id" not in columns:
        conn.execute("ALTER TABLE phone_numbers ADD COLUMN agent_id TEXT")
    if not had_history:
        conn.execute(
            "INSERT INTO trunk_history (id, name, created_name, created_at) "
            "SELECT id, name, name, created_at FROM trunks"
        )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE ... COMMIT`` (rolled back on any exception)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def iso(ts: float) -> str:
    """UTC ISO-8601 timestamp with milliseconds and a ``Z`` suffix."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
