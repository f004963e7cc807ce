"""The state table: one row per (scope, customer), written as results arrive.

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

Writes go through :class:`StateWriter`: a background thread that upserts whatever results
have arrived (groups of up to 50) and commits, so a killed run loses at most the results of
the last few milliseconds — and those trunks are found by id or name, not duplicated, on the
next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna.provisioning.db import IN_CHUNK, DbSession
from airflow_provider_bolna.provisioning.settings import DEFAULT_STATE_TABLE, TABLE_NAME

__all__ = [
    "DEFAULT_SCOPE",
    "DEFAULT_STATE_TABLE",
    "StateRecord",
    "StateRow",
    "StateStore",
    "StateWriter",
    "StateWriterError",
]

log = logging.getLogger(__name__)

DEFAULT_SCOPE = "default"
Status = Literal["pending", "provisioned", "failed", "deprovisioned"]
_ERROR_LIMIT = 1000
_COLUMNS = ("scope", "customer_id", "trunk_name", "trunk_id", "spec_hash", "secret_hash", "status", "action",
            "last_error", "error_fields", "run_id", "bindings", "outbound_agents")
#: columns added after the first layout: added in place (nullable) when missing
_ADDED_COLUMNS = {"error_fields": "VARCHAR(255)", "run_id": "VARCHAR(250)", "verified_at": "{ts}",
                  "bindings": "TEXT", "outbound_agents": "TEXT"}
_WRITER_JOIN_SECONDS = 120.0


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


class StateStore(DbSession):
    """Read and write one scope's rows of the state table on one connection.

    :param conn: an Airflow connection id or a ``DbApiHook`` (SQLite, PostgreSQL).
    :param table: table name, optionally schema-qualified (``schema.table``).
    :param scope: the deployment whose rows this store reads and writes.
    :param run_id: recorded on every row written (the Airflow run, or a caller's label).
    :param statement_timeout: seconds any one statement may run.
    """

    def __init__(self, conn: Any, table: str = DEFAULT_STATE_TABLE, *, scope: str = DEFAULT_SCOPE,
                 run_id: str | None = None, statement_timeout: float = 300.0) -> None:
        if not TABLE_NAME.match(table):
            raise ValueError(f"state table {table!r} must be a plain (optionally schema-qualified) identifier")
        super().__init__(conn, statement_timeout)
        self.table = table
        self.scope = scope
        self.run_id = run_id
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
            ")",
            f"CREATE INDEX IF NOT EXISTS {n}_scope_status ON {t} (scope, status)",
            # the provisioning page lists one status in key order, page by page (keyset): without
            # customer_id in the index, each page of e.g. 100k failed rows would sort them all
            f"CREATE INDEX IF NOT EXISTS {n}_scope_status_key ON {t} (scope, status, customer_id)",
            f"CREATE INDEX IF NOT EXISTS {n}_trunk_name ON {t} (trunk_name)",
            f"CREATE INDEX IF NOT EXISTS {n}_trunk_id ON {t} (trunk_id)",
            f"CREATE TABLE IF NOT EXISTS {self.meta_table} (\n"
            "  scope VARCHAR(64) NOT NULL,\n"
            "  name VARCHAR(200) NOT NULL,\n"
            "  value TEXT NOT NULL,\n"
            "  PRIMARY KEY (scope, name)\n"
            ")",
            f"CREATE TABLE IF NOT EXISTS {self.leases_table} (\n"
            "  name VARCHAR(255) NOT NULL PRIMARY KEY,\n"
            "  holder VARCHAR(128) NOT NULL,\n"
            "  expires_at DOUBLE PRECISION NOT NULL\n"
            ")",
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
        log.warning("Migrating state table %s: adding the scope column (existing rows get scope %r)",
                    self.table, self.scope)
        copied = ", ".join(c for c in ("customer_id", "trunk_name", "trunk_id", "spec_hash", "secret_hash",
                                       "status", "action", "last_error", "created_at", "updated_at"))
        statements = [
            f"ALTER TABLE {self.table} RENAME TO {old}",
            self.ddl()[0],
            f"INSERT INTO {self.table} (scope, {copied}) SELECT {self.placeholder}, {copied} FROM {qualified_old}",
            f"DROP TABLE {qualified_old}",  # its old status index goes with it
        ]
        self._run(statements, conn, params={2: [self.scope]}, begin=True)

    def _run(self, statements: Sequence[str], conn: Any, params: dict[int, Sequence[Any]] | None = None,
             begin: bool = False) -> None:
        self.write([(sql, (params or {}).get(i, ())) for i, sql in enumerate(statements)], conn, immediate=begin)

    def exists(self) -> bool:
        """Whether the state table exists. Only a missing table answers ``False``; any other
        error (the database is down, a permission is missing) raises: treating it as "no state"
        would re-plan every customer."""
        return self.table_exists(self.table)

    def drop(self) -> None:
        """Drop the tables (tests)."""
        self._run([f"DROP TABLE IF EXISTS {t}" for t in (self.table, self.meta_table, self.leases_table)],
                  self.connection())

    # ------------------------------------------------------------------ per-scope settings

    def prepare(self, dry_run: bool = False) -> bool:
        """Make the tables ready for a run; return whether the state table exists.

        A real run creates missing tables and migrates an older layout. A dry run writes
        nothing: it creates nothing (no table = no state), but an older layout is still migrated
        (its rows are kept; only their shape changes) so that it can be read.
        """
        if not dry_run:
            self.ensure_table()
            return True
        if not self.exists():
            return False
        self.ensure_table()
        return True

    def fingerprint_key(self, create: bool = True) -> bytes:
        """The scope's key of spec and password hashes: a random salt kept in ``<table>_meta``.

        Not derived from the API key, so rotating the key sends nothing. Created on first use
        (the first writer wins; everyone reads the stored value). ``create=False`` (dry runs)
        answers a throw-away key when none is stored: nothing recorded can match it anyway.
        """
        value = self._meta("fingerprint_salt") if create or self.exists() else None
        if value is None and not create:
            return secrets.token_bytes(32)
        if value is None:
            candidate = secrets.token_hex(32)
            self._run([f"INSERT INTO {self.meta_table} (scope, name, value) VALUES "
                       f"({self.placeholder}, {self.placeholder}, {self.placeholder}) "
                       "ON CONFLICT (scope, name) DO NOTHING"],
                      self.connection(), params={0: [self.scope, "fingerprint_salt", candidate]})
            value = self._meta("fingerprint_salt")
        if value is None:  # pragma: no cover - the insert above guarantees a row
            raise StateWriterError("the fingerprint salt could not be stored")
        return hashlib.sha256(bytes.fromhex(value)).digest()

    def agent_providers(self, agent_ids: Iterable[str]) -> dict[str, str]:
        """The telephony provider this scope recorded for each of these agents (those recorded)."""
        names = [f"agent:{a}" for a in dict.fromkeys(agent_ids)]
        found: dict[str, str] = {}
        for start in range(0, len(names), IN_CHUNK):
            chunk = names[start : start + IN_CHUNK]
            marks = ", ".join([self.placeholder] * len(chunk))
            for name, value in self.query(f"SELECT name, value FROM {self.meta_table} WHERE scope = {self.placeholder} "
                                          f"AND name IN ({marks})", [self.scope, *chunk]):
                found[str(name).removeprefix("agent:")] = str(value)
        return found

    def record_agent_provider(self, agent_id: str, provider: str, conn: Any = None) -> None:
        """Record that ``agent_id`` now uses ``provider`` (so no run switches it again)."""
        ph = self.placeholder
        self.write([(f"INSERT INTO {self.meta_table} (scope, name, value) VALUES ({ph}, {ph}, {ph}) "
                     "ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value",
                     [self.scope, f"agent:{agent_id}", provider])], conn)

    def _meta(self, name: str) -> str | None:
        rows = self.query(f"SELECT value FROM {self.meta_table} WHERE scope = {self.placeholder} "
                          f"AND name = {self.placeholder}", [self.scope, name])
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ reads

    _SELECT = ("customer_id, trunk_name, trunk_id, spec_hash, secret_hash, status, action, last_error, "
               "verified_at, scope, bindings, outbound_agents")

    def _select(self, where: str, params: Sequence[Any], *, any_scope: bool = False) -> list[StateRow]:
        if not any_scope:
            where = f"scope = {self.placeholder} AND {where}"
            params = [self.scope, *params]
        rows = self.query(f"SELECT {self._SELECT} FROM {self.table} WHERE {where}", params)
        return [
            StateRow(customer_id=str(r[0]), trunk_name=r[1], trunk_id=r[2], spec_hash=r[3], secret_hash=r[4],
                     status=r[5], action=r[6], last_error=r[7], verified_at=_as_datetime(r[8]), scope=r[9],
                     bindings=_json(r[10], {}), outbound_agents=tuple(_json(r[11], [])))
            for r in rows
        ]

    def _in_chunks(self, column: str, values: Iterable[str], extra: str = "", *,
                   any_scope: bool = False) -> Iterator[StateRow]:
        wanted = list(dict.fromkeys(values))
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            marks = ", ".join([self.placeholder] * len(chunk))
            yield from self._select(f"{column} IN ({marks}){extra}", chunk, any_scope=any_scope)

    def get_many(self, keys: Iterable[str]) -> dict[str, StateRow]:
        """This scope's recorded state of these customers (text keys); missing ones are absent."""
        return {row.customer_id: row for row in self._in_chunks("customer_id", keys)}

    def get(self, key: str) -> StateRow | None:
        """One customer's state, or ``None``."""
        return self.get_many([key]).get(key)

    def owners(self, *, names: Iterable[str] = (), trunk_ids: Iterable[str] = ()) -> dict[str, str]:
        """Other scopes' live rows holding these trunk names or ids: name or id → owning scope."""
        found: dict[str, str] = {}
        other = f" AND scope <> {self.placeholder} AND status <> 'deprovisioned'"
        for column, values in (("trunk_name", names), ("trunk_id", trunk_ids)):
            wanted = [v for v in dict.fromkeys(values) if v]
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                marks = ", ".join([self.placeholder] * len(chunk))
                for row in self._select(f"{column} IN ({marks}){other}", [*chunk, self.scope], any_scope=True):
                    found[row.trunk_name if column == "trunk_name" else str(row.trunk_id)] = row.scope
        return found

    def iter_live(self, page_size: int = 500) -> Iterator[list[StateRow]]:
        """This scope's customers that may still have a trunk (not ``deprovisioned``), keyset-paged."""
        after: str | None = None
        while True:
            where = "status <> 'deprovisioned'"
            params: list[Any] = []
            if after is not None:
                where += f" AND customer_id > {self.placeholder}"
                params.append(after)
            rows = self._select(f"{where} ORDER BY customer_id LIMIT {self.placeholder}", [*params, page_size])
            if not rows:
                return
            yield rows
            if len(rows) < page_size:
                return
            after = rows[-1].customer_id

    def recorded_trunks(self) -> int:
        """How many trunks this scope has recorded (live rows with a trunk id): the base of the
        deletion budget's fraction."""
        rows = self.query(f"SELECT COUNT(*) FROM {self.table} WHERE scope = {self.placeholder} "
                          "AND status <> 'deprovisioned' AND trunk_id IS NOT NULL", [self.scope])
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[str, int]:
        """This scope's rows per status."""
        rows = self.query(f"SELECT status, COUNT(*) FROM {self.table} WHERE scope = {self.placeholder} "
                          "GROUP BY status", [self.scope])
        return {str(s): int(n) for s, n in rows}

    # ------------------------------------------------------------------ writes

    def upsert_sql(self) -> str:
        """The upsert; ``NULL`` trunk id, hashes and verification keep the stored values."""
        n = self._name
        ph = ", ".join([self.placeholder] * len(_COLUMNS))
        sets = [
            "trunk_name = excluded.trunk_name",
            f"trunk_id = COALESCE(excluded.trunk_id, {n}.trunk_id)",
            f"spec_hash = COALESCE(excluded.spec_hash, {n}.spec_hash)",
            f"secret_hash = COALESCE(excluded.secret_hash, {n}.secret_hash)",
            "status = excluded.status",
            "action = excluded.action",
            "last_error = excluded.last_error",
            "error_fields = excluded.error_fields",
            "run_id = excluded.run_id",
            f"verified_at = COALESCE(excluded.verified_at, {n}.verified_at)",
            f"bindings = COALESCE(excluded.bindings, {n}.bindings)",
            f"outbound_agents = COALESCE(excluded.outbound_agents, {n}.outbound_agents)",
            "updated_at = CURRENT_TIMESTAMP",
        ]
        return (
            f"INSERT INTO {self.table} ({', '.join(_COLUMNS)}, verified_at, created_at, updated_at) "
            f"VALUES ({ph}, CASE WHEN {self.placeholder} = 1 THEN CURRENT_TIMESTAMP END, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) "
            f"ON CONFLICT (scope, customer_id) DO UPDATE SET {', '.join(sets)}"
        )

    def upsert(self, records: Sequence[StateRecord], conn: Any = None) -> None:
        """Upsert ``records`` into this scope and commit (on ``conn``, default this store's connection)."""
        if not records:
            return
        self.write([(self.upsert_sql(), [self._params(r) for r in records])], conn, many=True)

    def _params(self, record: StateRecord) -> tuple[Any, ...]:
        error = record.last_error
        if error is not None and len(error) > _ERROR_LIMIT:
            error = error[: _ERROR_LIMIT - 1] + "…"
        fields = ",".join(record.error_fields)[:255] or None
        return (
            self.scope, record.customer_id, record.trunk_name, record.trunk_id, record.spec_hash,
            record.secret_hash, record.status, record.action, error, fields, self.run_id,
            None if record.bindings is None else json.dumps(record.bindings, sort_keys=True),
            None if record.outbound_agents is None else json.dumps(list(record.outbound_agents)),
            1 if record.verified else 0,
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


class StateWriter:
    """Upsert records from a background thread, in small committed groups, as they arrive.

    :param store: where to write (the thread opens its own DB connection).
    :param group: most records per transaction.
    :param join_timeout: how long :meth:`close` waits for the queue to drain.

    Use as a context manager; :meth:`close` flushes, stops the thread and raises
    :class:`StateWriterError` if a write failed or the flush did not finish in time (so a batch
    whose results could not be recorded fails loudly).
    """

    _STOP = object()

    def __init__(self, store: StateStore, group: int = 50, join_timeout: float = _WRITER_JOIN_SECONDS) -> None:
        self.store = store
        self.group = group
        self.join_timeout = join_timeout
        self.written = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bolna-state-writer", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> BaseException | None:
        """The write error, if a write failed."""
        return self._error

    def put(self, record: StateRecord) -> None:
        """Queue one record (returns at once)."""
        if self._error is not None:
            raise StateWriterError(f"the state writer failed: {self._error}") from self._error
        self._queue.put(record)

    def _run(self) -> None:
        conn = None
        try:
            conn = self.store.new_connection()
            while True:
                item = self._queue.get()
                if item is self._STOP:
                    return
                batch = [item]
                stop = False
                while len(batch) < self.group:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is self._STOP:
                        stop = True
                        break
                    batch.append(nxt)
                self.store.upsert(batch, conn=conn)
                self.written += len(batch)
                if stop:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self._error = exc
            log.error("Writing the provisioning state failed: %s", exc)
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    log.debug("closing the state writer's connection failed", exc_info=True)

    def close(self) -> None:
        """Flush everything queued, stop the thread, raise if a write failed or did not finish."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join(self.join_timeout)
            if self._thread.is_alive():
                raise StateWriterError(
                    f"the state writer did not finish within {self.join_timeout:g}s "
                    f"({self._queue.qsize()} result(s) not recorded); the database is too slow or unreachable"
                )
        if self._error is not None:
            raise StateWriterError(f"the state writer failed: {self._error}") from self._error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
