"""The state store: one scope's rows of the state table, read and written on one connection.

One row per (scope, customer), written as results arrive. The table's layout (columns, DDL,
migrations) and the row types are in :mod:`.state_schema`; the background writer is
:class:`~.writer.StateWriter`. Their names are re-exported here (the old import path).

Portable SQL for SQLite (3.24+) and PostgreSQL (9.5+): ``INSERT ... ON CONFLICT DO UPDATE``
with ``excluded.*``, ``CURRENT_TIMESTAMP``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_bolna.provisioning.db import in_lists
from airflow_provider_bolna.provisioning.state_schema import (
    COLUMNS,
    DEFAULT_SCOPE,
    DEFAULT_STATE_TABLE,
    StateRecord,
    StateRow,
    StateTable,
    StateWriterError,
    _as_datetime,
    _json,
)
from airflow_provider_bolna.provisioning.writer import StateWriter

if TYPE_CHECKING:
    from airflow_provider_bolna.provisioning.options import ProvisionOptions

__all__ = [
    "DEFAULT_SCOPE",
    "DEFAULT_STATE_TABLE",
    "StateRecord",
    "StateRow",
    "StateStore",
    "StateWriter",
    "StateWriterError",
]

_ERROR_LIMIT = 1000


class StateStore(StateTable):
    """Read and write one scope's rows of the state table on one connection.

    Takes :class:`~.state_schema.StateTable`'s ``conn``, ``table`` and ``statement_timeout``.

    :param scope: the deployment whose rows this store reads and writes.
    :param run_id: recorded on every row written (the Airflow run, or a caller's label).
    """

    def __init__(
        self,
        conn: Any,
        table: str = DEFAULT_STATE_TABLE,
        *,
        scope: str = DEFAULT_SCOPE,
        run_id: str | None = None,
        statement_timeout: float = 300.0,
    ) -> None:
        super().__init__(conn, table, scope=scope, statement_timeout=statement_timeout)
        self.run_id = run_id

    @classmethod
    def for_run(cls, conn: Any, options: ProvisionOptions) -> StateStore:
        """The store of one run: its table, scope, run id and statement timeout.

        :param conn: the state connection id or ``DbApiHook``.
        :param options: the run's options.
        """
        return cls(
            conn,
            options.state_table,
            scope=options.scope,
            run_id=options.run_id,
            statement_timeout=options.statement_timeout_seconds,
        )

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
            self._run(
                [
                    (
                        f"INSERT INTO {self.meta_table} (scope, name, value) VALUES "
                        f"({self.placeholder}, {self.placeholder}, {self.placeholder}) "
                        "ON CONFLICT (scope, name) DO NOTHING"
                    )
                ],
                self.connection(),
                params={0: [self.scope, "fingerprint_salt", candidate]},
            )
            value = self._meta("fingerprint_salt")
        if value is None:  # pragma: no cover - the insert above guarantees a row
            raise StateWriterError("the fingerprint salt could not be stored")
        return hashlib.sha256(bytes.fromhex(value)).digest()

    def agent_providers(self, agent_ids: Iterable[str]) -> dict[str, str]:
        """The telephony provider this scope recorded for each of these agents (those recorded)."""
        names = [f"agent:{a}" for a in dict.fromkeys(agent_ids)]
        found: dict[str, str] = {}
        for marks, chunk in in_lists(names, self.placeholder):
            for name, value in self.query(
                f"SELECT name, value FROM {self.meta_table} WHERE scope = {self.placeholder} "
                f"AND name IN ({marks})",
                [self.scope, *chunk],
            ):
                found[str(name).removeprefix("agent:")] = str(value)
        return found

    def record_agent_provider(self, agent_id: str, provider: str, conn: Any = None) -> None:
        """Record that ``agent_id`` now uses ``provider`` (so no run switches it again)."""
        ph = self.placeholder
        self.write(
            [
                (
                    (
                        f"INSERT INTO {self.meta_table} (scope, name, value) VALUES ({ph}, {ph}, {ph}) "
                        "ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value"
                    ),
                    [self.scope, f"agent:{agent_id}", provider],
                )
            ],
            conn,
        )

    def _meta(self, name: str) -> str | None:
        rows = self.query(
            f"SELECT value FROM {self.meta_table} WHERE scope = {self.placeholder} "
            f"AND name = {self.placeholder}",
            [self.scope, name],
        )
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ reads

    _SELECT = (
        "customer_id, trunk_name, trunk_id, spec_hash, secret_hash, status, action, last_error, "
        "verified_at, scope, bindings, outbound_agents"
    )

    def _select(self, where: str, params: Sequence[Any], *, any_scope: bool = False) -> list[StateRow]:
        if not any_scope:
            where = f"scope = {self.placeholder} AND {where}"
            params = [self.scope, *params]
        rows = self.query(f"SELECT {self._SELECT} FROM {self.table} WHERE {where}", params)
        return [
            StateRow(
                customer_id=str(r[0]),
                trunk_name=r[1],
                trunk_id=r[2],
                spec_hash=r[3],
                secret_hash=r[4],
                status=r[5],
                action=r[6],
                last_error=r[7],
                verified_at=_as_datetime(r[8]),
                scope=r[9],
                bindings=_json(r[10], {}),
                outbound_agents=tuple(_json(r[11], [])),
            )
            for r in rows
        ]

    def _in_chunks(
        self, column: str, values: Iterable[str], extra: str = "", *, any_scope: bool = False
    ) -> Iterator[StateRow]:
        wanted = list(dict.fromkeys(values))
        for marks, chunk in in_lists(wanted, self.placeholder):
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
            for marks, chunk in in_lists(wanted, self.placeholder):
                for row in self._select(
                    f"{column} IN ({marks}){other}", [*chunk, self.scope], any_scope=True
                ):
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
            rows = self._select(
                f"{where} ORDER BY customer_id LIMIT {self.placeholder}", [*params, page_size]
            )
            if not rows:
                return
            yield rows
            if len(rows) < page_size:
                return
            after = rows[-1].customer_id

    def recorded_trunks(self) -> int:
        """How many trunks this scope has recorded (live rows with a trunk id): the base of the
        deletion budget's fraction."""
        rows = self.query(
            f"SELECT COUNT(*) FROM {self.table} WHERE scope = {self.placeholder} "
            "AND status <> 'deprovisioned' AND trunk_id IS NOT NULL",
            [self.scope],
        )
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[str, int]:
        """This scope's rows per status."""
        rows = self.query(
            f"SELECT status, COUNT(*) FROM {self.table} WHERE scope = {self.placeholder} GROUP BY status",
            [self.scope],
        )
        return {str(s): int(n) for s, n in rows}

    # ------------------------------------------------------------------ writes

    def upsert_sql(self) -> str:
        """The upsert; ``NULL`` trunk id, hashes and verification keep the stored values."""
        n = self._name
        ph = ", ".join([self.placeholder] * len(COLUMNS))
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
            f"INSERT INTO {self.table} ({', '.join(COLUMNS)}, verified_at, created_at, updated_at) "
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
            self.scope,
            record.customer_id,
            record.trunk_name,
            record.trunk_id,
            record.spec_hash,
            record.secret_hash,
            record.status,
            record.action,
            error,
            fields,
            self.run_id,
            None if record.bindings is None else json.dumps(record.bindings, sort_keys=True),
            None if record.outbound_agents is None else json.dumps(list(record.outbound_agents)),
            1 if record.verified else 0,
        )
