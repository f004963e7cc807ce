"""One writer per trunk name, across runs, processes and machines: leases in the state DB.

A lease is a row of ``<state table>_leases`` (trunk name, holder, expiry in the database's
clock). A batch takes the leases of the customers it will write to before it looks them up and
keeps them until their results are recorded, so that two overlapping runs (an hourly bulk run
and a sign-up, two sign-ups for one customer) never both create the same trunk, even where the
API would accept a duplicate name.

* Leases are short (``ttl``, 30 s by default) and renewed by a keeper thread every ``ttl / 6``:
  a process that dies frees its names within ``ttl``. A holder on this machine whose process is
  gone is taken over at once.
* If renewal fails (the database is unreachable, a lease was taken over after an expiry),
  :attr:`LeaseSet.lost` is set and the batch sends no further writes.

Portable SQL: an ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE expired or ours`` takes
free and expired names in one statement; a ``SELECT`` then tells which names are ours.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from airflow_provider_bolna.provisioning.db import IN_CHUNK

__all__ = ["LeaseLost", "LeaseSet", "new_holder"]

log = logging.getLogger(__name__)

DEFAULT_TTL = 30.0


class LeaseLost(RuntimeError):
    """A lease this batch held could not be renewed: another writer may now hold the name."""


def new_holder(label: str | None = None) -> str:
    """A holder id: ``<label>@<host>:<pid>:<random>`` (host and pid let a dead holder be detected)."""
    prefix = (label or "bolna")[:60]
    return f"{prefix}@{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_dead(holder: str) -> bool:
    """Whether ``holder`` is a process of this machine that no longer runs."""
    try:
        where = holder.rsplit("@", 1)[1]
        host, pid, _ = where.rsplit(":", 2)
    except (IndexError, ValueError):
        return False
    if host != socket.gethostname()[:40] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


class LeaseSet:
    """The leases one batch holds, with a keeper thread that renews them.

    :param store: the state store (its connection reference and table names are used; the lease
        set opens its own connections: one for the caller's thread, one for the keeper's).
    :param holder: this batch's holder id (:func:`new_holder`).
    :param ttl: seconds a lease lives without renewal.
    """

    def __init__(self, store: Any, holder: str, ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.holder = holder
        self.ttl = float(ttl)
        self.table = store.leases_table
        self.held: set[str] = set()
        self.lost: BaseException | None = None
        self._local = threading.local()  # one DB connection per thread (SQLite's are thread-bound)
        self._connections: list[Any] = []
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        ph = store.placeholder
        now = (
            "EXTRACT(EPOCH FROM clock_timestamp())"
            if store.dialect == "postgresql"
            else "((julianday('now') - 2440587.5) * 86400.0)"
        )
        self._now = now
        self._ph = ph

    # ------------------------------------------------------------------ SQL

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.store.new_connection()
            self._connections.append(conn)
        return conn

    def _cursor_run(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self.store.write([(sql, params)], self._connection())

    def _take(self, names: list[str]) -> set[str]:
        ph, t, now = self._ph, self.table, self._now
        short = t.split(".")[-1]
        taken: set[str] = set()
        for start in range(0, len(names), IN_CHUNK):
            chunk = names[start : start + IN_CHUNK]
            values = ", ".join([f"({ph}, {ph}, {now} + {ph})"] * len(chunk))
            params: list[Any] = []
            for name in chunk:
                params += [name, self.holder, self.ttl]
            self._cursor_run(
                f"INSERT INTO {t} (name, holder, expires_at) VALUES {values} "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                f"WHERE {short}.expires_at < {now} OR {short}.holder = excluded.holder",
                params,
            )
            marks = ", ".join([ph] * len(chunk))
            rows = self._cursor_run(f"SELECT name, holder FROM {t} WHERE name IN ({marks})", list(chunk))
            dead = []
            for name, holder in rows:
                if holder == self.holder:
                    taken.add(name)
                elif _holder_is_dead(str(holder)):
                    dead.append((name, holder))
            for name, holder in dead:  # a crashed process of this machine: take over at once
                self._cursor_run(
                    f"UPDATE {t} SET holder = {ph}, expires_at = {now} + {ph} "
                    f"WHERE name = {ph} AND holder = {ph}",
                    [self.holder, self.ttl, name, holder],
                )
                log.info("Took over the lease of %s from %s (its process is gone)", name, holder)
                taken.add(name)
        return taken

    # ------------------------------------------------------------------ public

    def acquire(self, names: Iterable[str], wait: float = 0.0, poll: float = 1.0) -> set[str]:
        """Take the leases of ``names``, waiting up to ``wait`` seconds for busy ones.

        While it waits it holds none of them (all or nothing): two batches that each held part
        of what the other wants would wait on each other, and their unrenewed leases would
        expire under them. When the wait runs out it keeps what it could take.

        :return: the names that could not be taken (another writer holds them).
        """
        wanted = [n for n in dict.fromkeys(names) if n not in self.held]
        deadline = time.monotonic() + max(0.0, wait)
        missing: list[str] = []
        while wanted:
            got = self._take(wanted)
            missing = [n for n in wanted if n not in got]
            if not missing or time.monotonic() >= deadline:
                self.held |= got
                break
            self._free(got)
            log.info("%d trunk name(s) are being provisioned by another run; waiting", len(missing))
            # jitter: two batches that collide must not retry in step
            time.sleep(min(poll * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))
        if self.held and self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="bolna-lease-keeper", daemon=True)
            self._keeper.start()
        return set(missing)

    def _free(self, names: Iterable[str]) -> None:
        """Give back leases taken by this holder that it does not keep."""
        names = sorted(names)
        for start in range(0, len(names), IN_CHUNK):
            chunk = names[start : start + IN_CHUNK]
            marks = ", ".join([self._ph] * len(chunk))
            self._cursor_run(
                f"DELETE FROM {self.table} WHERE holder = {self._ph} AND name IN ({marks})",
                [self.holder, *chunk],
            )

    def renew(self) -> None:
        """Extend every held lease by ``ttl``; record (and raise) :class:`LeaseLost` on failure."""
        if not self.held:
            return
        ph, t, now = self._ph, self.table, self._now
        try:
            rows = self._cursor_run(
                f"UPDATE {t} SET expires_at = {now} + {ph} WHERE holder = {ph}", [self.ttl, self.holder]
            )
            del rows
            count = self._cursor_run(f"SELECT COUNT(*) FROM {t} WHERE holder = {ph}", [self.holder])[0][0]
        except Exception as exc:
            self.lost = LeaseLost(f"renewing the writer leases failed: {type(exc).__name__}: {exc}")
            raise self.lost from exc
        if int(count) < len(self.held):
            self.lost = LeaseLost(
                f"{len(self.held) - int(count)} writer lease(s) expired and were taken over"
            )
            raise self.lost

    def _keep(self) -> None:
        try:
            while not self._stop.wait(self.ttl / 6):
                try:
                    self.renew()
                except LeaseLost as exc:
                    log.error("%s; this batch sends no further writes", exc)
                    return
        finally:
            self._close_own()

    def _close_own(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            try:
                conn.close()
            except Exception:
                log.debug("closing a lease connection failed", exc_info=True)

    def check(self) -> None:
        """Raise :class:`LeaseLost` if renewal failed: no write may be sent then."""
        if self.lost is not None:
            raise self.lost

    def release(self) -> None:
        """Stop renewing and free every lease held (best effort: they expire anyway)."""
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(self.ttl)
        try:
            if self.held:
                self._cursor_run(f"DELETE FROM {self.table} WHERE holder = {self._ph}", [self.holder])
        except Exception as exc:  # noqa: BLE001 - they expire within ttl
            log.warning("Could not release the writer leases (%s); they expire within %.0fs", exc, self.ttl)
        finally:
            self.held.clear()
            self._close_own()
