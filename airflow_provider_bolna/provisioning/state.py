"""The ``bolna_provisioning_state`` table: one row per customer, written as results arrive.

Portable SQL for SQLite (3.24+) and PostgreSQL (9.5+): ``CREATE TABLE IF NOT EXISTS``,
``INSERT ... ON CONFLICT (customer_id) DO UPDATE`` with ``excluded.*``, ``CURRENT_TIMESTAMP``.

======================== ==================================================================
column                   meaning
======================== ==================================================================
``customer_id``          the customer key as text (primary key)
``trunk_name``           the derived trunk name (idempotency key)
``trunk_id``             Bolna's trunk id (kept after a deprovision, for the record)
``spec_hash``            ``TrunkSpec.fingerprint`` keyed with sha256(API key): unchanged hash
                         + ``provisioned`` = nothing to do, no API call
``secret_hash``          HMAC-SHA256 of the SIP password (same key): detects a rotation,
                         which the API cannot show; never the password
``status``               ``provisioned`` / ``failed`` / ``deprovisioned``, or ``pending``:
                         written just before a create is sent, so that a run killed between
                         the POST and its result leaves a mark (the next run looks the name
                         up instead of trusting the absence of a row)
``action``               what the last run did (created, adopted, updated, unchanged, ...)
``last_error``           why it failed (secret-free, field named), ``NULL`` on success
``created_at``           first time the customer was recorded
``updated_at``           last time its row changed
======================== ==================================================================

Writes go through :class:`StateWriter`: a background thread that upserts whatever results
have arrived (groups of up to 50) and commits, so a killed run loses at most the results of
the last few milliseconds — and those trunks are adopted, not duplicated, on the next run.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from airflow_provider_bolna.provisioning.source import IN_CHUNK, DbSession, get_db_hook, placeholder_of

__all__ = ["DEFAULT_STATE_TABLE", "StateRecord", "StateRow", "StateStore", "StateWriter"]

log = logging.getLogger(__name__)

DEFAULT_STATE_TABLE = "bolna_provisioning_state"
Status = Literal["pending", "provisioned", "failed", "deprovisioned"]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_ERROR_LIMIT = 1000
_COLUMNS = ("customer_id", "trunk_name", "trunk_id", "spec_hash", "secret_hash", "status", "action", "last_error")


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
    """

    customer_id: str
    trunk_name: str
    trunk_id: str | None
    spec_hash: str | None
    secret_hash: str | None
    status: str
    action: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class StateRecord:
    """One result to upsert.

    ``trunk_id``, ``spec_hash`` and ``secret_hash`` set to ``None`` keep the stored values
    (a failure does not forget the trunk it knows, nor the last good hash).
    """

    customer_id: str
    trunk_name: str
    status: Status
    action: str
    trunk_id: str | None = None
    spec_hash: str | None = None
    secret_hash: str | None = None
    last_error: str | None = None


class StateStore(DbSession):
    """Read and write the state table on one connection.

    :param conn: an Airflow connection id or a ``DbApiHook`` (SQLite, PostgreSQL).
    :param table: table name, optionally schema-qualified (``schema.table``).
    """

    def __init__(self, conn: Any, table: str = DEFAULT_STATE_TABLE) -> None:
        if not _IDENT.match(table):
            raise ValueError(f"state table {table!r} must be a plain (optionally schema-qualified) identifier")
        self.conn_ref = conn
        self.hook = get_db_hook(conn)
        self.table = table
        self.placeholder = placeholder_of(self.hook)

    # ------------------------------------------------------------------ schema

    def ddl(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for this table (portable types)."""
        ts = "TIMESTAMP WITH TIME ZONE" if self.dialect == "postgresql" else "TIMESTAMP"
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
            "  customer_id VARCHAR(255) NOT NULL PRIMARY KEY,\n"
            "  trunk_name VARCHAR(255) NOT NULL,\n"
            "  trunk_id VARCHAR(255),\n"
            "  spec_hash VARCHAR(64),\n"
            "  secret_hash VARCHAR(64),\n"
            "  status VARCHAR(32) NOT NULL,\n"
            "  action VARCHAR(32),\n"
            "  last_error TEXT,\n"
            f"  created_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,\n"
            f"  updated_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL\n"
            ")"
        )

    @property
    def dialect(self) -> str:
        """``postgresql``, ``sqlite`` or the connection type."""
        conn_type = str(getattr(self.hook, "conn_type", "") or "")
        return "postgresql" if conn_type in ("postgres", "postgresql") else conn_type or "unknown"

    def ensure_table(self) -> None:
        """Create the table (and its status index) if missing. Safe to call from parallel batches."""
        conn = self.connection()
        statements = [
            self.ddl(),
            f"CREATE INDEX IF NOT EXISTS {self.table.split('.')[-1]}_status ON {self.table} (status)",
        ]
        for sql in statements:
            cur = conn.cursor()
            try:
                cur.execute(sql)
                conn.commit()
            except Exception:
                conn.rollback()
                if not self.exists():  # a parallel batch may have created it meanwhile
                    raise
            finally:
                cur.close()

    def exists(self) -> bool:
        """Whether the table can be read."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(f"SELECT 1 FROM {self.table} WHERE 1 = 0")
            return True
        except Exception:  # noqa: BLE001 - any error means "cannot read it"
            conn.rollback()
            return False
        finally:
            cur.close()

    def drop(self) -> None:
        """Drop the table (tests)."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")
            conn.commit()
        finally:
            cur.close()

    # ------------------------------------------------------------------ reads

    def _select(self, where: str, params: Sequence[Any]) -> list[StateRow]:
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE {where}", tuple(params))
            rows = cur.fetchall()
        finally:
            cur.close()
        conn.rollback()
        return [
            StateRow(
                customer_id=str(r[0]), trunk_name=r[1], trunk_id=r[2], spec_hash=r[3], secret_hash=r[4],
                status=r[5], action=r[6], last_error=r[7],
            )
            for r in rows
        ]

    def get_many(self, keys: Iterable[str]) -> dict[str, StateRow]:
        """Recorded state of these customers (text keys); missing ones are absent."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, StateRow] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            marks = ", ".join([self.placeholder] * len(chunk))
            for row in self._select(f"customer_id IN ({marks})", chunk):
                found[row.customer_id] = row
        return found

    def get(self, key: str) -> StateRow | None:
        """One customer's state, or ``None``."""
        return self.get_many([key]).get(key)

    def iter_live(self, page_size: int = 500) -> Iterator[list[StateRow]]:
        """Customers that may still have a trunk (``provisioned`` or ``failed``), keyset-paged."""
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

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            cur.execute(f"SELECT status, COUNT(*) FROM {self.table} GROUP BY status")
            out = {str(s): int(n) for s, n in cur.fetchall()}
        finally:
            cur.close()
        conn.rollback()
        return out

    # ------------------------------------------------------------------ writes

    def upsert_sql(self, keep_known: bool) -> str:
        """The upsert statement; ``keep_known`` keeps stored trunk id and hashes when ``NULL``."""
        ph = ", ".join([self.placeholder] * len(_COLUMNS))
        name = self.table.split(".")[-1]
        if keep_known:
            sets = [
                "trunk_name = excluded.trunk_name",
                f"trunk_id = COALESCE(excluded.trunk_id, {name}.trunk_id)",
                f"spec_hash = COALESCE(excluded.spec_hash, {name}.spec_hash)",
                f"secret_hash = COALESCE(excluded.secret_hash, {name}.secret_hash)",
                "status = excluded.status",
                "action = excluded.action",
                "last_error = excluded.last_error",
            ]
        else:
            sets = [f"{c} = excluded.{c}" for c in _COLUMNS[1:]]
        sets.append("updated_at = CURRENT_TIMESTAMP")
        return (
            f"INSERT INTO {self.table} ({', '.join(_COLUMNS)}, created_at, updated_at) "
            f"VALUES ({ph}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) "
            f"ON CONFLICT (customer_id) DO UPDATE SET {', '.join(sets)}"
        )

    def upsert(self, records: Sequence[StateRecord], conn: Any = None) -> None:
        """Upsert ``records`` and commit (on ``conn``, default this store's connection)."""
        if not records:
            return
        conn = conn if conn is not None else self.connection()
        cur = conn.cursor()
        try:
            cur.executemany(self.upsert_sql(keep_known=True), [_params(r) for r in records])
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            cur.close()


def _params(record: StateRecord) -> tuple[Any, ...]:
    error = record.last_error
    if error is not None and len(error) > _ERROR_LIMIT:
        error = error[: _ERROR_LIMIT - 1] + "…"
    return (
        record.customer_id, record.trunk_name, record.trunk_id, record.spec_hash, record.secret_hash,
        record.status, record.action, error,
    )


class StateWriter:
    """Upsert records from a background thread, in small committed groups, as they arrive.

    :param store: where to write (the thread opens its own DB connection).
    :param group: most records per transaction.

    Use as a context manager; :meth:`close` flushes, stops the thread and re-raises a write
    error (so a batch whose results could not be recorded fails loudly).
    """

    _STOP = object()

    def __init__(self, store: StateStore, group: int = 50) -> None:
        self.store = store
        self.group = group
        self.written = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bolna-state-writer", daemon=True)
        self._thread.start()

    def put(self, record: StateRecord) -> None:
        """Queue one record (returns at once)."""
        if self._error is not None:
            raise RuntimeError(f"the state writer failed: {self._error}") from self._error
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
        """Flush everything queued, stop the thread, raise if a write failed."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"the state writer failed: {self._error}") from self._error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
