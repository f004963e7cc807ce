"""The state writer: results recorded from a background thread as they arrive.

:class:`StateWriter` upserts whatever results have arrived (groups of up to 50) and commits, so
a killed run loses at most the results of the last few milliseconds — and those trunks are
found by id or name, not duplicated, on the next run.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from typing_extensions import Self  # typing.Self: Python 3.11+

from airflow_provider_bolna.provisioning.state_schema import StateRecord, StateWriterError

__all__ = ["RecordStore", "StateWriter", "StateWriterError"]

log = logging.getLogger(__name__)

_WRITER_JOIN_SECONDS = 120.0


class RecordStore(Protocol):
    """What the writer needs of a store (:class:`~.state.StateStore`, which sits above this)."""

    def new_connection(self) -> Any:
        """A DB-API connection of the writer's own."""

    def upsert(self, records: Sequence[StateRecord], conn: Any = None) -> None:
        """Upsert ``records`` on ``conn`` and commit."""


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

    def __init__(
        self, store: RecordStore, group: int = 50, join_timeout: float = _WRITER_JOIN_SECONDS
    ) -> None:
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
