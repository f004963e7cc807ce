"""What the account holds, for a batch: one listing by name or id, and the shared listing the
creates of a batch adopt from (:class:`AccountListing`).

One :class:`AccountListing` per batch serves every look-up the creates need: once one create
finds its name taken, the account probably holds more of the batch's names (trunks made by hand,
or before the state table existed), so the creates not yet sent adopt what one listing shows
instead of each POSTing into a refusal; and the hook's recovery after an ambiguous failure (did
our POST land?) asks the same object, which coalesces concurrent look-ups into one listing taken
after all of them failed, instead of one whole-account listing each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bolna.exceptions import BolnaAuthError, BolnaError
from airflow_provider_bolna.models import SIPTrunk

__all__ = ["AccountListing", "Listing", "lookup_trunks"]

log = logging.getLogger(__name__)


@dataclass
class Listing:
    """The trunks of one account listing that a batch asked about, by name and by id."""

    by_name: dict[str, SIPTrunk] = field(default_factory=dict)
    by_id: dict[str, SIPTrunk] = field(default_factory=dict)

    def get(self, name: str) -> SIPTrunk | None:
        """The trunk holding ``name`` (the oldest, if several do)."""
        return self.by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> SIPTrunk:
        return self.by_name[name]


async def lookup_trunks(hook: Any, names: Sequence[str], ids: Sequence[str] = ()) -> Listing:
    """One list call, kept to these names and ids; the oldest trunk wins when a name is taken twice."""
    wanted_ids = set(ids)
    trunks = await hook.alist_trunks(names=names, ids=sorted(wanted_ids) or None)
    listing = Listing()
    for trunk in trunks:
        if trunk.id in wanted_ids:
            listing.by_id[trunk.id] = trunk
        if trunk.name not in set(names):
            continue
        if trunk.name in listing.by_name:
            log.warning(
                "Two trunks are named %s (%s, %s); using the oldest",
                trunk.name,
                listing.by_name[trunk.name].id,
                trunk.id,
            )
            continue
        listing.by_name[trunk.name or ""] = trunk
    return listing


class AccountListing:
    """Account listings of a batch's create names, taken on demand and shared.

    * :meth:`existing`: until :meth:`noticed` is called it answers ``None`` at once (create);
      after, it answers from one listing (the name was taken by someone else: adopt).
    * :meth:`find`: the hook's look-up after an ambiguous or refused create (did our POST land?).
      It needs a listing *started after* the failure, and one listing serves every create of
      the batch that needs one: a caller waits until every create in progress is waiting too
      (or ``max_wait`` seconds have passed since the first waiter), then one listing answers all
      of them. Under 30 % of lost responses a batch lists the account about
      ``failures / concurrency`` times, not once per failure.

    A failed listing is logged and ignored by :meth:`existing` (the creates fall back on the
    hook's own conflict handling), except a refused key, which stops the batch.

    :param hook: the batch's hook.
    :param names: the trunk names the batch creates.
    :param max_wait: longest wait for the other creates before listing anyway.
    """

    def __init__(self, hook: Any, names: Sequence[str], max_wait: float = 1.0) -> None:
        self._hook = hook
        self._names = list(names)
        self._max_wait = max_wait
        self._taken: asyncio.Future[Listing] | None = None
        self._noticed = False
        self._active = 0  # creates in progress
        self._waiters = 0  # of which, waiting for a fresh listing
        self._next: asyncio.Future[Listing] | None = None  # the listing the current waiters share
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[Listing]] = set()
        self.listings = 0

    def _list(self) -> asyncio.Future[Listing]:
        task = asyncio.ensure_future(lookup_trunks(self._hook, self._names))
        self._tasks.add(task)
        self.listings += 1
        return task

    # ------------------------------------------------------------------ recovery look-ups

    def entered(self) -> None:
        """A create starts."""
        self._active += 1

    def left(self) -> None:
        """A create ends (its waiters may now be the only creates left)."""
        self._active -= 1
        self._maybe_fire()

    async def find(self, name: str) -> SIPTrunk | None:
        """The trunk named ``name`` per a listing started after this call."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._timer = asyncio.get_running_loop().call_later(self._max_wait, self._fire)
        shared = self._next
        self._waiters += 1
        self._maybe_fire()
        try:
            listing = await asyncio.shield(shared)
        finally:
            self._waiters -= 1
        return listing.get(name)

    def _maybe_fire(self) -> None:
        if self._next is not None and self._waiters >= self._active:
            self._fire()

    def _fire(self) -> None:
        shared, self._next = self._next, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if shared is None or shared.done():
            return

        def settle(task: asyncio.Future[Listing]) -> None:
            if shared.done():
                return
            if task.cancelled():
                shared.cancel()
            elif task.exception() is not None:
                shared.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                shared.set_result(task.result())

        self._list().add_done_callback(settle)

    # ------------------------------------------------------------------ taken names

    def noticed(self) -> None:
        """A create found its name taken: the other creates look first."""
        if not self._noticed:
            log.info(
                "A trunk name of this batch was already taken; listing the account once for the other %d",
                len(self._names),
            )
            self._noticed = True
            self._taken = self._list()

    async def existing(self, name: str) -> SIPTrunk | None:
        """The trunk holding ``name`` per the shared listing, or ``None`` (absent, or not noticed)."""
        if self._taken is None:
            return None
        try:
            listing = await asyncio.shield(self._taken)
        except BolnaAuthError:
            raise
        except BolnaError as exc:
            log.warning("Listing the account failed (%s); creating without it", exc)
            return None
        return listing.get(name)

    async def aclose(self) -> None:
        """Collect the listings (so that no task is left pending)."""
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
