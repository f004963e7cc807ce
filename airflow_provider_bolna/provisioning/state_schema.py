"""The state table's layout: its row types, columns, DDL and in-place migrations.

Portable SQL for SQLite (3.24+) and PostgreSQL (9.5+): ``CREATE TABLE IF NOT EXISTS``,
``INSERT ... ON CONFLICT DO UPDATE`` with ``excluded.*``, ``CURRENT_TIMESTAMP``.

======================== ==================================================================
column                   meaning
======================== ==================================================================
``scope``                the deployment that owns the row (its trunk); plans, sweeps and
                         deletes read only their own scope's rows
``customer_id``          the customer key as text (primary key with ``scope``)
``trunk_name``           the derived trunk name (idempotency key)
``trunk_id``             Bolna's trunk id (kept after a deprovision, for the record)
``spec_hash``            ``TrunkSpec.fingerprint`` keyed with the scope's salt (see
                         :meth:`StateStore.fingerprint_key`): unchanged hash + ``provisioned``
                         = nothing to do, no API call; rotating the API key changes nothing
``secret_hash``          HMAC-SHA256 of the SIP password (same key): detects a rotation,
                         which the API cannot show; never the password
``status``               ``provisioned`` / ``failed`` / ``deprovisioned``, or ``pending``:
                         written just before a create is sent, so that a run killed between
                         the POST and its result leaves a mark (the next run looks the name
                         up instead of trusting the absence of a row)
``action``               what the last run did (created, adopted, updated, unchanged, ...)
``last_error``           why it failed (secret-free, field named), ``NULL`` on success
``error_fields``         the fields at fault, comma-separated (``NULL`` on success)
``run_id``               the Airflow run (or other caller) that wrote the row last
``verified_at``          last time the trunk was seen on Bolna (self-healing checks)
``bindings``             JSON: per number (its digits) ``{"number", "id", "agent"}``: the
                         number's Bolna id and the inbound agent it was mapped to — the
                         record Bolna cannot be asked for
``outbound_agents``      JSON list: the customer's outbound agents
``created_at``           first time the customer was recorded
``updated_at``           last time its row changed
======================== ==================================================================

A table of the first layout (no ``scope``) is migrated in place, its rows given the scope of
the deployment that first opens it.

Beside it, two small tables share its name as a prefix: ``<table>_meta`` (per-scope settings
such as the fingerprint salt) and ``<table>_leases`` (one writer per trunk name, see
:mod:`.leases`).

Reading and writing one scope's rows is :class:`~.state.StateStore`'s (above this);
writing them from a background thread is :class:`~.writer.StateWriter`'s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_provider_bolna.provisioning.db import DbSession
from airflow_provider_bolna.provisioning.names import DEFAULT_STATE_TABLE, TABLE_NAME

__all__ = [
    "COLUMNS",
    "DEFAULT_SCOPE",
    "DEFAULT_STATE_TABLE",
    "StateRecord",
    "StateRow",
    "StateTable",
    "StateWriterError",
    "Status",
]

log = logging.getLogger(__name__)

DEFAULT_SCOPE = "default"
Status = Literal["pending", "provisioned", "failed", "deprovisioned"]
#: the columns an upsert writes (``verified_at``, ``created_at``, ``updated_at`` are set in SQL)
COLUMNS = (
    "scope",
    "customer_id",
    "trunk_name",
    "trunk_id",
    "spec_hash",
    "secret_hash",
    "status",
    "action",
    "last_error",
    "error_fields",
    "run_id",
    "bindings",
    "outbound_agents",
)
#: columns added after the first layout: added in place (nullable) when missing
_ADDED_COLUMNS = {
    "error_fields": "VARCHAR(255)",
    "run_id": "VARCHAR(250)",
    "verified_at": "{ts}",
    "bindings": "TEXT",
    "outbound_agents": "TEXT",
}
#: the columns of the first layout (no scope): those a migration copies
_FIRST_LAYOUT = (
    *(c for c in COLUMNS if c != "scope" and c not in _ADDED_COLUMNS),
    "created_at",
    "updated_at",
)


class StateWriterError(RuntimeError):
    """Results could not be recorded in the state table (the batch fails loudly)."""


@dataclass(frozen=True)
class StateRow:
    """A customer's recorded state.

    :param customer_id: the key as text.
    :param trunk_name: the trunk name when recorded.
    :param trunk_id: Bolna's id, if known.
    :param spec_hash: fingerprint of the spec last applied successfully.
    :param secret_hash: keyed hash of the password last applied.
    :param status: ``pending``, ``provisioned``, ``failed`` or ``deprovisioned``.
    :param action: last action.
    :param last_error: last failure reason.
    :param verified_at: last time the trunk was seen on Bolna (UTC), if ever.
    :param scope: the owning deployment.
    :param bindings: per number key, ``{"number", "id", "agent"}`` as last recorded.
    :param outbound_agents: the outbound agents last recorded.
    """

    customer_id: str
    trunk_name: str
    trunk_id: str | None
    spec_hash: str | None
    secret_hash: str | None
    status: str
    action: str | None = None
    last_error: str | None = None
    verified_at: datetime | None = None
    scope: str = DEFAULT_SCOPE
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbound_agents: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        """Whether the row may stand for an existing trunk (anything but deprovisioned)."""
        return self.status != "deprovisioned"


@dataclass(frozen=True)
class StateRecord:
    """One result to upsert.

    ``trunk_id``, ``spec_hash`` and ``secret_hash`` set to ``None`` keep the stored values
    (a failure does not forget the trunk it knows, nor the last good hash).

    :param verified: the trunk was just seen on Bolna (sets ``verified_at``).
    :param bindings: the numbers' bindings now (``None`` keeps the stored ones).
    :param outbound_agents: the outbound agents now (``None`` keeps the stored ones).
    """

    customer_id: str
    trunk_name: str
    status: Status
    action: str
    trunk_id: str | None = None
    spec_hash: str | None = None
    secret_hash: str | None = None
    last_error: str | None = None
    error_fields: tuple[str, ...] = ()
    verified: bool = False
    bindings: dict[str, dict[str, Any]] | None = None
    outbound_agents: tuple[str, ...] | None = None


class StateTable(DbSession):
    """The state table and its side tables on one connection: create, migrate, drop.

    :param conn: an Airflow connection id or a ``DbApiHook`` (SQLite, PostgreSQL).
    :param table: table name, optionally schema-qualified (``schema.table``).
    :param scope: the deployment whose rows a first-layout table's rows are given on migration.
    :param statement_timeout: seconds any one statement may run.
    """

    def __init__(
        self,
        conn: Any,
        table: str = DEFAULT_STATE_TABLE,
        *,
        scope: str = DEFAULT_SCOPE,
        statement_timeout: float = 300.0,
    ) -> None:
        if not TABLE_NAME.match(table):
            raise ValueError(
                f"state table {table!r} must be a plain (optionally schema-qualified) identifier"
            )
        super().__init__(conn, statement_timeout)
        self.table = table
        self.scope = scope
        self._name = table.split(".")[-1]
        self.meta_table = f"{table}_meta"
        self.leases_table = f"{table}_leases"

    # ------------------------------------------------------------------ schema

    @property
    def _ts(self) -> str:
        return "TIMESTAMP WITH TIME ZONE" if self.dialect == "postgresql" else "TIMESTAMP"

    def ddl(self) -> list[str]:
        """``CREATE TABLE/INDEX IF NOT EXISTS`` statements for the state and its side tables."""
        ts, t, n = self._ts, self.table, self._name
        return [
            (
                f"CREATE TABLE IF NOT EXISTS {t} (\n"
                "  scope VARCHAR(64) NOT NULL,\n"
                "  customer_id VARCHAR(255) NOT NULL,\n"
                "  trunk_name VARCHAR(255) NOT NULL,\n"
                "  trunk_id VARCHAR(255),\n"
                "  spec_hash VARCHAR(64),\n"
                "  secret_hash VARCHAR(64),\n"
                "  status VARCHAR(32) NOT NULL,\n"
                "  action VARCHAR(32),\n"
                "  last_error TEXT,\n"
                "  error_fields VARCHAR(255),\n"
                "  run_id VARCHAR(250),\n"
                f"  verified_at {ts},\n"
                "  bindings TEXT,\n"
                "  outbound_agents TEXT,\n"
                f"  created_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,\n"
                f"  updated_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,\n"
                "  PRIMARY KEY (scope, customer_id)\n"
                ")"
            ),
            f"CREATE INDEX IF NOT EXISTS {n}_scope_status ON {t} (scope, status)",
            # the provisioning page lists one status in key order, page by page (keyset): without
            # customer_id in the index, each page of e.g. 100k failed rows would sort them all
            f"CREATE INDEX IF NOT EXISTS {n}_scope_status_key ON {t} (scope, status, customer_id)",
            f"CREATE INDEX IF NOT EXISTS {n}_trunk_name ON {t} (trunk_name)",
            f"CREATE INDEX IF NOT EXISTS {n}_trunk_id ON {t} (trunk_id)",
            (
                f"CREATE TABLE IF NOT EXISTS {self.meta_table} (\n"
                "  scope VARCHAR(64) NOT NULL,\n"
                "  name VARCHAR(200) NOT NULL,\n"
                "  value TEXT NOT NULL,\n"
                "  PRIMARY KEY (scope, name)\n"
                ")"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {self.leases_table} (\n"
                "  name VARCHAR(255) NOT NULL PRIMARY KEY,\n"
                "  holder VARCHAR(128) NOT NULL,\n"
                "  expires_at DOUBLE PRECISION NOT NULL\n"
                ")"
            ),
        ]

    def ensure_table(self) -> None:
        """Create the tables if missing, migrate an older layout. Safe from parallel batches."""
        conn = self.connection()
        if self.table_exists(self.table):
            self._migrate(conn)
        for sql in self.ddl():
            cur = conn.cursor()
            try:
                self.execute(cur, sql)
                conn.commit()
            except Exception:
                conn.rollback()
                if not self.table_exists(self.table):  # a parallel batch may have created it meanwhile
                    raise
            finally:
                cur.close()

    def _migrate(self, conn: Any) -> None:
        columns = self.columns(self.table)
        if "scope" not in columns:
            self._add_scope(conn)
            columns = self.columns(self.table)
        for column, kind in _ADDED_COLUMNS.items():
            if column not in columns:
                self._run([f"ALTER TABLE {self.table} ADD COLUMN {column} {kind.format(ts=self._ts)}"], conn)

    def _add_scope(self, conn: Any) -> None:
        """Rebuild a first-layout table (primary key ``customer_id``) with ``scope`` in the key."""
        old = f"{self._name}_v1"
        qualified_old = f"{self.table.rpartition('.')[0]}.{old}" if "." in self.table else old
        log.warning(
            "Migrating state table %s: adding the scope column (existing rows get scope %r)",
            self.table,
            self.scope,
        )
        copied = ", ".join(_FIRST_LAYOUT)
        statements = [
            f"ALTER TABLE {self.table} RENAME TO {old}",
            self.ddl()[0],
            f"INSERT INTO {self.table} (scope, {copied}) SELECT {self.placeholder}, {copied} FROM {qualified_old}",
            f"DROP TABLE {qualified_old}",  # its old status index goes with it
        ]
        self._run(statements, conn, params={2: [self.scope]}, begin=True)

    def _run(
        self,
        statements: Sequence[str],
        conn: Any,
        params: dict[int, Sequence[Any]] | None = None,
        begin: bool = False,
    ) -> None:
        self.write(
            [(sql, (params or {}).get(i, ())) for i, sql in enumerate(statements)], conn, immediate=begin
        )

    def exists(self) -> bool:
        """Whether the state table exists. Only a missing table answers ``False``; any other
        error (the database is down, a permission is missing) raises: treating it as "no state"
        would re-plan every customer."""
        return self.table_exists(self.table)

    def drop(self) -> None:
        """Drop the tables (tests)."""
        self._run(
            [f"DROP TABLE IF EXISTS {t}" for t in (self.table, self.meta_table, self.leases_table)],
            self.connection(),
        )


def _json(value: Any, default: Any) -> Any:
    """A JSON column's value (``default`` when empty or not JSON of the expected kind)."""
    if not value:
        return default
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return default
    return parsed if isinstance(parsed, type(default)) else default


def _as_datetime(value: Any) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite returns text)."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
