"""What the sandbox records for tests: every write attempt, every trunk ever created, the audit.

These let a test assert the *client's* behaviour rather than lean on the API's conflict
rules: how many create POSTs a name received (refused, failed by an injected fault, or with
their response lost after commit, all included), how many trunks of that name were ever
created, how many add-number / delete / setup requests each target got. They live in the
database, so they survive a restart or a SIGKILL of the sandbox; an admin reset clears them.

A write attempt is recorded when it arrives (after the latency, before auth) and completed
with its final status when it ends; one whose status stays ``null`` never finished (the
server died while handling it).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from .db import iso

#: columns of ``write_attempts`` a request (or its handler) may fill in
ATTEMPT_FIELDS = ("trunk_name", "trunk_id", "phone_number", "digits", "phone_number_id", "agent_id")
_ATTEMPT_COLUMNS = ("seq", "kind", "endpoint", *ATTEMPT_FIELDS, "status", "committed", "fault", "received_at")


class Records:
    """Write attempts, trunk and number histories and the audit, on the store's connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # ------------------------------------------------------------------ write attempts
    def begin_attempt(self, kind: str, endpoint: str, fields: Mapping[str, str | None]) -> int:
        """Record an arriving write request; return its sequence number."""
        known = {k: v for k, v in fields.items() if k in ATTEMPT_FIELDS}
        columns = ", ".join(("kind", "endpoint", "received_at", *known))
        marks = ", ".join("?" * (3 + len(known)))
        cursor = self._conn.execute(
            f"INSERT INTO write_attempts ({columns}) VALUES ({marks})",
            (kind, endpoint, iso(time.time()), *known.values()),
        )
        return int(cursor.lastrowid or 0)

    def finish_attempt(
        self,
        seq: int,
        status: int | str,
        *,
        committed: bool,
        fault: str | None,
        learned: Mapping[str, str | None],
    ) -> None:
        """Complete an attempt: final status, whether its write committed, the injected fault
        (if any), and fields learned while handling it (e.g. the created trunk's id)."""
        known = {k: v for k, v in learned.items() if k in ATTEMPT_FIELDS and v is not None}
        assignments = "".join(f", {k} = ?" for k in known)
        self._conn.execute(
            f"UPDATE write_attempts SET status = ?, committed = ?, fault = ?{assignments} WHERE seq = ?",
            (str(status), int(committed), fault, *known.values(), seq),
        )

    def attempts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every recorded attempt (of one ``kind``), in arrival order."""
        where, params = ("kind = ?", (kind,)) if kind else ("1", ())
        rows = self._conn.execute(
            f"SELECT {', '.join(_ATTEMPT_COLUMNS)} FROM write_attempts WHERE {where} ORDER BY seq", params
        )
        out = [dict(zip(_ATTEMPT_COLUMNS, row)) for row in rows]
        for record in out:
            record["committed"] = bool(record["committed"])
        return out

    def clear_attempts(self) -> int:
        """Forget every recorded attempt; return how many there were."""
        return int(self._conn.execute("DELETE FROM write_attempts").rowcount)

    # ------------------------------------------------------------------ histories
    def trunk_history(self) -> list[dict[str, Any]]:
        """Every trunk ever created: ``id, name`` (current or last), ``created_name``,
        ``created_at``, ``deleted_at`` (null while it exists), oldest first."""
        keys = ("id", "name", "created_name", "created_at", "deleted_at")
        return [
            dict(zip(keys, row))
            for row in self._conn.execute(f"SELECT {', '.join(keys)} FROM trunk_history ORDER BY id")
        ]

    def number_history(self) -> list[dict[str, Any]]:
        """Every number ever added, removed ones included (``deleted: true``), oldest first."""
        keys = (
            "id",
            "trunk_id",
            "phone_number",
            "digits",
            "name",
            "agent_id",
            "deleted",
            "created_at",
            "updated_at",
        )
        out = [
            dict(zip(keys, row))
            for row in self._conn.execute(f"SELECT {', '.join(keys)} FROM phone_numbers ORDER BY id")
        ]
        for record in out:
            record["deleted"] = bool(record["deleted"])
        return out

    # ------------------------------------------------------------------ audit
    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql))

    def _scalar(self, sql: str) -> int:
        return int(self._conn.execute(sql).fetchone()[0])

    def audit(self, trunks: int, numbers: int) -> dict[str, Any]:
        """Invariants and client-behaviour summaries straight from the tables.

        The lists are empty on a clean run: existing trunks sharing a name, active numbers on
        several trunks, names created more than once (deleted trunks included), names that
        received more than one create attempt; mappings must not point at unknown agents or
        sit on removed numbers.
        """
        dup_names = [
            {"name": name, "count": count}
            for name, count in self._rows(
                "SELECT name, COUNT(*) FROM trunks GROUP BY name HAVING COUNT(*) > 1"
            )
        ]
        multi = [
            {"digits": digits, "trunk_ids": trunk_ids.split(","), "count": count}
            for digits, trunk_ids, count in self._rows(
                "SELECT n.digits, GROUP_CONCAT(n.trunk_id), COUNT(*) FROM phone_numbers AS n "
                "JOIN trunks AS t ON t.id = n.trunk_id WHERE n.deleted = 0 "
                "GROUP BY n.digits HAVING COUNT(*) > 1"
            )
        ]
        recreated = [
            {"name": name, "count": count, "deleted": deleted}
            for name, count, deleted in self._rows(
                "SELECT name, COUNT(*), COUNT(deleted_at) FROM trunk_history GROUP BY name HAVING COUNT(*) > 1 "
                "ORDER BY name"
            )
        ]
        repeated = [
            {"name": name, "attempts": attempts, "trunks": created}
            for name, attempts, created in self._rows(
                "SELECT a.trunk_name, COUNT(*), (SELECT COUNT(*) FROM trunk_history AS h WHERE h.name = a.trunk_name) "
                "FROM write_attempts AS a WHERE a.kind = 'create_trunk' AND a.trunk_name IS NOT NULL "
                "GROUP BY a.trunk_name HAVING COUNT(*) > 1 ORDER BY a.trunk_name"
            )
        ]
        return {
            "duplicate_trunk_names": dup_names,
            "numbers_on_multiple_active_trunks": multi,
            "active_numbers_without_trunk": self._scalar(
                "SELECT COUNT(*) FROM phone_numbers WHERE deleted = 0 AND trunk_id NOT IN (SELECT id FROM trunks)"
            ),
            "trunks": trunks,
            "numbers": numbers,
            "deleted_trunks": self._scalar("SELECT COUNT(*) FROM trunk_history WHERE deleted_at IS NOT NULL"),
            "trunk_names_created_more_than_once": recreated,
            "repeated_create_attempts": repeated,
            "write_attempts": dict(
                self._rows("SELECT kind, COUNT(*) FROM write_attempts GROUP BY kind ORDER BY kind")
            ),
            "unfinished_write_attempts": self._scalar(
                "SELECT COUNT(*) FROM write_attempts WHERE status IS NULL"
            ),
            "agents": self._scalar("SELECT COUNT(*) FROM agents"),
            "inbound_mappings": self._scalar(
                "SELECT COUNT(*) FROM phone_numbers WHERE agent_id IS NOT NULL AND deleted = 0"
            ),
            "mappings_to_unknown_agents": self._scalar(
                "SELECT COUNT(*) FROM phone_numbers WHERE agent_id IS NOT NULL "
                "AND agent_id NOT IN (SELECT id FROM agents)"
            ),
            "mappings_on_removed_numbers": self._scalar(
                "SELECT COUNT(*) FROM phone_numbers WHERE agent_id IS NOT NULL AND deleted = 1"
            ),
        }
