"""``BolnaHook``: Bolna's ``/sip-trunks`` API as methods, and the idempotent ``ensure_*`` flows;
the agent-binding calls come from :class:`~airflow_provider_bolna.hooks.binding.AgentBindingMixin`.

Each endpoint is one line over :mod:`~airflow_provider_bolna.hooks.calls` (what is sent and how
the answer is read) and :class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook` (the wire:
clients, deadlines, retries, errors), with an async twin. Operations of several calls
(``ensure_trunk``, ``ensure_number``, ``check_trunk_ready``, deletes that tolerate "already
gone") are written once as generator flows that both drivers run; they resolve ambiguous
failures by looking before writing again, so nothing is ever created twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from airflow_provider_bolna.connection_form import connection_form_widgets, ui_field_behaviour
from airflow_provider_bolna.exceptions import (
    BolnaConflictError,
    BolnaError,
    BolnaNotFoundError,
    BolnaTimeoutError,
    BolnaValidationError,
)
from airflow_provider_bolna.failures import means_not_ready
from airflow_provider_bolna.hooks import calls
from airflow_provider_bolna.hooks.base import TIME_LEFT, USER_AGENT, Flow, _Find, _Sleep
from airflow_provider_bolna.hooks.binding import AgentBindingMixin
from airflow_provider_bolna.hooks.calls import TRUNKS, find_number
from airflow_provider_bolna.hooks.results import BindingResult, NumberAction, NumberResult, TrunkAction, TrunkResult
from airflow_provider_bolna.hooks.settings import DEFAULT_BASE_URL, DEFAULT_DASHBOARD_URL, BolnaSettings
from airflow_provider_bolna.models import (
    PhoneNumber,
    PhoneNumberRequest,
    SIPTrunk,
    SIPTrunkUpdateRequest,
    TrunkSpec,
)
from airflow_provider_bolna.readiness import (
    TrunkStatus,
    evaluate_trunk,
    needs_number_list,
    not_ready,
    trunk_ref,
)
from airflow_provider_bolna.secrets.redaction import redact

# BolnaSettings, DEFAULT_*, TRUNKS, USER_AGENT, TrunkStatus, evaluate_trunk and trunk_ref moved
# to hooks.settings, hooks.calls, hooks.base and readiness: importable from here as before.
__all__ = [
    "DEFAULT_BASE_URL", "DEFAULT_DASHBOARD_URL", "TRUNKS", "USER_AGENT", "AsyncFinder", "BindingResult", "BolnaHook",
    "BolnaSettings", "Finder", "IfExists", "NumberResult", "TrunkResult", "TrunkStatus", "evaluate_trunk", "trunk_ref",
]

IfExists = Literal["adopt", "update", "fail"]
#: Looks a trunk up by name for ``ensure_trunk`` (sync), e.g. from a listing a batch shares.
Finder = Callable[[str], "SIPTrunk | None"]
#: Async twin of :data:`Finder`.
AsyncFinder = Callable[[str], Awaitable["SIPTrunk | None"]]


class BolnaHook(AgentBindingMixin):
    """Talk to Bolna's SIP-trunk API and bind trunks to voice agents (constructor: see
    :class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook`).

    ``BolnaHook()`` reads connection ``bolna_default``; ``BolnaHook("my_bolna", timeout=10)``
    another one, with an override.
    """

    # The connection form before Airflow 3.2 (3.2+ reads provider info). Defined on this class:
    # Airflow looks for them in the registered hook class's own __dict__.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow < 3.2), from provider info's ``conn-fields``."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden and relabelled standard fields (Airflow < 3.2), from provider info."""
        return ui_field_behaviour()

    def trunk_url(self, trunk_id: str) -> str:
        """The trunk's page in Bolna's dashboard."""
        from airflow_provider_bolna.dashboard import trunk_url

        return trunk_url(self.settings.dashboard_url, trunk_id)

    # ------------------------------------------------------------------ endpoints (sync)

    def create_trunk(self, spec: TrunkSpec | dict[str, Any]) -> SIPTrunk:
        """``POST /sip-trunks/trunks``. Prefer :meth:`ensure_trunk`, which is safe to retry.

        :param spec: the trunk (validated before sending).
        :raises BolnaValidationError: the spec breaks a rule (nothing is sent).
        """
        return self._request(calls.create_trunk(calls.as_spec(spec)))

    def list_trunks(
        self, is_active: bool | None = None, names: Collection[str] | None = None, ids: Collection[str] | None = None
    ) -> list[SIPTrunk]:
        """``GET /sip-trunks/trunks``, oldest first.

        The body is read item by item and only the trunks asked for are validated and kept, so
        a large account's listing costs one pass and little memory.

        :param is_active: only active (``True``) or inactive (``False``) trunks; ``None`` = all.
        :param names: keep the trunks with one of these names.
        :param ids: keep the trunks with one of these ids (with ``names``: either matches).
        """
        return self._request(calls.list_trunks(is_active, names, ids))

    def get_trunk(self, trunk_id: str) -> SIPTrunk:
        """``GET /sip-trunks/trunks/{trunk_id}``. :raises BolnaNotFoundError: no such trunk."""
        return self._request(calls.get_trunk(trunk_id))

    def update_trunk(self, trunk_id: str, update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunk:
        """``PATCH /sip-trunks/trunks/{trunk_id}`` with only the fields set in ``update``."""
        return self._request(calls.update_trunk(trunk_id, calls.as_update(update)))

    def delete_trunk(self, trunk_id: str, *, missing_ok: bool = True, deactivate_first: bool = False) -> bool:
        """``DELETE /sip-trunks/trunks/{trunk_id}`` (numbers are soft-deleted with it).

        :param missing_ok: a trunk that is already gone is success (returns ``False``).
        :param deactivate_first: ``PATCH is_active=false`` before deleting, as Bolna advises.
        :return: ``True`` if this call deleted it, ``False`` if it was already gone.
        """
        return self._drive(self._delete_trunk_flow(trunk_id, missing_ok, deactivate_first))

    def add_number(self, trunk_id: str, number: PhoneNumberRequest | dict[str, Any] | str) -> PhoneNumber:
        """``POST .../numbers``. Prefer :meth:`ensure_number`, which is safe to retry."""
        return self._request(calls.add_number(trunk_id, calls.as_number(number)))

    def list_numbers(self, trunk_id: str) -> list[PhoneNumber]:
        """``GET .../numbers``: the trunk's numbers (just-added ones may take seconds to show)."""
        return self._request(calls.list_numbers(trunk_id))

    def remove_number(self, trunk_id: str, phone_number_id: str, *, missing_ok: bool = True) -> bool:
        """``DELETE .../numbers/{phone_number_id}``.

        :return: ``True`` if removed now, ``False`` if it was already gone (``missing_ok``).
        """
        return self._drive(self._remove_number_flow(trunk_id, phone_number_id, missing_ok))

    def find_trunk(self, name: str) -> SIPTrunk | None:
        """The trunk named ``name``, or ``None`` (one list call)."""
        return self._drive(self._find_trunk_flow(name))

    def ensure_trunk(
        self,
        spec: TrunkSpec | dict[str, Any],
        *,
        if_exists: IfExists = "adopt",
        existing: SIPTrunk | None | object = ...,
        finder: Finder | None = None,
    ) -> TrunkResult:
        """Make the trunk named ``spec.name`` exist, exactly once, whatever fails on the way.

        Looks the name up, creates the trunk (numbers inline) if absent; after an ambiguous
        failure (timeout, dropped connection, 5xx, 409) looks again before any new write.
        Numbers of ``spec`` missing from an existing trunk are added (extras are left alone).

        :param spec: the desired trunk.
        :param if_exists: ``adopt`` (keep its settings), ``update`` (PATCH drifted fields only)
            or ``fail`` (raise :class:`BolnaConflictError`).
        :param existing: the trunk already known to carry that name (or ``None`` if known to be
            absent), to skip the first look-up; leave out to look it up.
        :param finder: answers the name look-ups instead of a list call of the hook's own (e.g.
            one listing shared by a batch); it must see trunks created up to the moment it is
            asked, since it settles whether an ambiguous create landed.
        """
        return self._drive(self._ensure_trunk_flow(calls.as_spec(spec), if_exists, existing), finder=finder)

    def ensure_number(
        self,
        trunk_id: str,
        number: PhoneNumberRequest | dict[str, Any] | str,
        *,
        known_numbers: Iterable[PhoneNumber] | None = None,
        wait_for_id: bool = False,
    ) -> NumberResult:
        """Make ``number`` be on trunk ``trunk_id``, exactly once.

        After an ambiguous failure it looks once (no waiting), then sends again; a 409 "already
        on this trunk" then means the number is ours.

        :param known_numbers: the trunk's numbers if already fetched (skips one list call).
        :param wait_for_id: when the API confirms the number without showing it yet, wait (up to
            the connection's ``number_visibility_timeout``) to learn its id.
        :raises BolnaConflictError: the number is on another active trunk.
        """
        return self._drive(self._ensure_number_flow(trunk_id, calls.as_number(number), known_numbers, wait_for_id))

    def check_trunk_ready(
        self,
        *,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
        expect_active: bool = True,
        expect_numbers: Sequence[str] = (),
        expect_agents: Mapping[str, str] | None = None,
    ) -> TrunkStatus:
        """Is the trunk ready: found (by id or name), active if asked, expected numbers visible,
        expected inbound agents mapped where the number list shows them?

        GET requests only. Transient errors (already retried) and "not found yet" mean not
        ready; other errors (bad key...) are raised.

        :param expect_agents: number → agent id; a mapping the API does not show is reported as
            ``unverifiable`` in :attr:`TrunkStatus.agents` (never waited for), one it shows wrong
            means not ready (see :func:`~airflow_provider_bolna.readiness.evaluate_trunk`).
        """
        return self._drive(self._trunk_status_flow(trunk_id, trunk_name, expect_active, expect_numbers, expect_agents))

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with ``GET /user/me`` (one list call where that answers 404); never raises."""
        try:
            try:
                self._request(calls.get_user(), retry=False)
                seen = "API key accepted"
            except BolnaNotFoundError:
                seen = f"{self._request(calls.count_trunks(is_active=True), retry=False)} active SIP trunk(s)"
        except Exception as exc:  # noqa: BLE001 - the UI wants a message, not a traceback
            return False, redact(str(exc), self._secrets_or_empty())
        return True, f"Connected to Bolna at {self.settings.base_url} ({seen})."

    # ------------------------------------------------------------------ endpoints (async twins)

    async def acreate_trunk(self, spec: TrunkSpec | dict[str, Any]) -> SIPTrunk:
        """Async twin of :meth:`create_trunk`."""
        return await self._arequest(calls.create_trunk(calls.as_spec(spec)))

    async def alist_trunks(
        self, is_active: bool | None = None, names: Collection[str] | None = None, ids: Collection[str] | None = None
    ) -> list[SIPTrunk]:
        """Async twin of :meth:`list_trunks`."""
        return await self._arequest(calls.list_trunks(is_active, names, ids))

    async def aget_trunk(self, trunk_id: str) -> SIPTrunk:
        """Async twin of :meth:`get_trunk`."""
        return await self._arequest(calls.get_trunk(trunk_id))

    async def aupdate_trunk(self, trunk_id: str, update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunk:
        """Async twin of :meth:`update_trunk`."""
        return await self._arequest(calls.update_trunk(trunk_id, calls.as_update(update)))

    async def adelete_trunk(self, trunk_id: str, *, missing_ok: bool = True, deactivate_first: bool = False) -> bool:
        """Async twin of :meth:`delete_trunk`."""
        return await self._adrive(self._delete_trunk_flow(trunk_id, missing_ok, deactivate_first))

    async def aadd_number(self, trunk_id: str, number: PhoneNumberRequest | dict[str, Any] | str) -> PhoneNumber:
        """Async twin of :meth:`add_number`."""
        return await self._arequest(calls.add_number(trunk_id, calls.as_number(number)))

    async def alist_numbers(self, trunk_id: str) -> list[PhoneNumber]:
        """Async twin of :meth:`list_numbers`."""
        return await self._arequest(calls.list_numbers(trunk_id))

    async def aremove_number(self, trunk_id: str, phone_number_id: str, *, missing_ok: bool = True) -> bool:
        """Async twin of :meth:`remove_number`."""
        return await self._adrive(self._remove_number_flow(trunk_id, phone_number_id, missing_ok))

    async def afind_trunk(self, name: str) -> SIPTrunk | None:
        """Async twin of :meth:`find_trunk`."""
        return await self._adrive(self._find_trunk_flow(name))

    async def aensure_trunk(
        self,
        spec: TrunkSpec | dict[str, Any],
        *,
        if_exists: IfExists = "adopt",
        existing: SIPTrunk | None | object = ...,
        finder: AsyncFinder | None = None,
    ) -> TrunkResult:
        """Async twin of :meth:`ensure_trunk` (``finder`` is a coroutine function)."""
        return await self._adrive(self._ensure_trunk_flow(calls.as_spec(spec), if_exists, existing), finder=finder)

    async def aensure_number(
        self,
        trunk_id: str,
        number: PhoneNumberRequest | dict[str, Any] | str,
        *,
        known_numbers: Iterable[PhoneNumber] | None = None,
        wait_for_id: bool = False,
    ) -> NumberResult:
        """Async twin of :meth:`ensure_number`."""
        flow = self._ensure_number_flow(trunk_id, calls.as_number(number), known_numbers, wait_for_id)
        return await self._adrive(flow)

    async def acheck_trunk_ready(
        self,
        *,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
        expect_active: bool = True,
        expect_numbers: Sequence[str] = (),
        expect_agents: Mapping[str, str] | None = None,
    ) -> TrunkStatus:
        """Async twin of :meth:`check_trunk_ready` (used by the trigger)."""
        flow = self._trunk_status_flow(trunk_id, trunk_name, expect_active, expect_numbers, expect_agents)
        return await self._adrive(flow)

    # ------------------------------------------------------------------ flows (written once)

    def _find_trunk_flow(self, name: str) -> Flow[SIPTrunk | None]:
        trunks: list[SIPTrunk] = yield calls.list_trunks(names=[name])
        if len(trunks) > 1:
            self.log.warning("%d trunks are named %r; using the oldest (%s)", len(trunks), name, trunks[0].id)
        return trunks[0] if trunks else None

    def _lookup_flow(self, name: str) -> Flow[SIPTrunk | None]:
        """The trunk named ``name``: from the public call's finder, or one list call."""
        found: SIPTrunk | None = yield _Find(name, self._find_trunk_flow(name))
        return found

    def _late_commit_flow(self, exc: BolnaError) -> Flow[None]:
        """After a write that timed out (no answer: the request may still be in flight), give it
        time to land before looking: a proxy that held it would otherwise deliver it after our
        look-up found nothing and we wrote again. An answer (a 5xx) or a cut connection means
        the other side is done with it: no wait."""
        if isinstance(exc, BolnaTimeoutError):
            left: float = yield TIME_LEFT
            grace = min(self.settings.grace, max(0.0, left))
            if grace > 0:
                yield _Sleep(grace)

    def _may_retry_flow(self, attempts_made: int) -> Flow[bool]:
        """Whether a flow may send a write again: retries and time budget left."""
        left: float = yield TIME_LEFT
        return attempts_made <= self.settings.max_retries and left > 0

    def _trunk_status_flow(
        self, trunk_id: str | None, trunk_name: str | None, expect_active: bool, expect_numbers: Sequence[str],
        expect_agents: Mapping[str, str] | None = None,
    ) -> Flow[TrunkStatus]:
        if not trunk_id and not trunk_name:
            raise BolnaValidationError("give trunk_id or trunk_name")
        ref = trunk_ref(trunk_id, trunk_name)
        try:
            if trunk_id:
                trunk = yield calls.get_trunk(trunk_id)
            else:
                trunk = yield from self._find_trunk_flow(str(trunk_name))
            listing = needs_number_list(trunk, expect_numbers, expect_agents)
            numbers = (yield calls.list_numbers(trunk.id)) if listing else None
        except BolnaError as exc:
            if not means_not_ready(exc):
                raise
            return not_ready(exc, ref)
        return evaluate_trunk(trunk, numbers, expect_active=expect_active, expect_numbers=expect_numbers, ref=ref,
                              expect_agents=expect_agents)

    def _delete_trunk_flow(self, trunk_id: str, missing_ok: bool, deactivate_first: bool) -> Flow[bool]:
        try:
            if deactivate_first:
                yield calls.update_trunk(trunk_id, SIPTrunkUpdateRequest(is_active=False))
            yield calls.delete_trunk(trunk_id)
        except BolnaNotFoundError:
            if not missing_ok:
                raise
            self.log.info("Trunk %s is already gone", trunk_id)
            return False
        return True

    def _remove_number_flow(self, trunk_id: str, phone_number_id: str, missing_ok: bool) -> Flow[bool]:
        try:
            yield calls.remove_number(trunk_id, phone_number_id)
        except BolnaNotFoundError:
            if not missing_ok:
                raise
            return False
        return True

    def _ensure_trunk_flow(self, spec: TrunkSpec, if_exists: IfExists, existing: Any) -> Flow[TrunkResult]:
        if if_exists not in ("adopt", "update", "fail"):
            raise BolnaValidationError(f"if_exists must be 'adopt', 'update' or 'fail', not {if_exists!r}")
        if existing is ...:
            existing = yield from self._lookup_flow(spec.name)
        how = "exists"
        if existing is None:
            how, existing = yield from self._create_once_flow(spec)
            if how == "posted":
                return TrunkResult("created", existing, numbers_added=[n.phone_number for n in spec.phone_numbers])
        if how == "exists" and if_exists == "fail":
            raise BolnaConflictError(f"a trunk named {spec.name!r} already exists (id {existing.id})")
        patched: list[str] = []
        if how == "exists" and if_exists == "update":
            patch = spec.drift(existing)
            if patch is not None:
                self.log.info("Trunk %s drifted in %s; patching", spec.name, ", ".join(patch.fields))
                existing = yield calls.update_trunk(existing.id, patch)
                patched = patch.fields
        added: list[str] = []
        known = list(existing.active_numbers)
        for number in spec.phone_numbers:
            outcome = yield from self._ensure_number_flow(existing.id, number, known, False)
            if outcome.action == "created":
                added.append(outcome.phone_number)
        if how == "recovered":
            return TrunkResult("created", existing, numbers_added=[n.phone_number for n in spec.phone_numbers])
        action: TrunkAction = "adopted"
        if if_exists == "update":
            action = "updated" if (patched or added) else "unchanged"
        return TrunkResult(action, existing, numbers_added=added, patched_fields=patched)

    def _create_once_flow(self, spec: TrunkSpec) -> Flow[tuple[str, SIPTrunk]]:
        """POST the trunk, never twice: ``("posted" | "recovered" | "exists", trunk)``.

        ``recovered``: the POST failed ambiguously and a look-up found the trunk (our write
        landed; a 409 on the name after such a failure counts too). ``exists``: the API refused
        the create (409, or a 400/422 about the name) and a trunk of that name exists. After an
        ambiguous failure the name is always looked up (even with no retry or time left), and a
        POST is resent only when the trunk is verifiably absent.
        """
        uncertain = False  # an earlier POST of this call may have landed
        attempt = 0
        while True:
            attempt += 1
            try:
                trunk: SIPTrunk = yield calls.create_trunk(spec)
                return "posted", trunk
            except (BolnaConflictError, BolnaValidationError) as refused:
                if not _may_be_name_taken(refused):
                    raise
                found = yield from self._lookup_flow(spec.name)
                if found is None:
                    raise  # the conflict is not the name (e.g. a number on another trunk)
                self.log.info("Trunk %s already exists (id %s)", spec.name, found.id)
                return ("recovered" if uncertain else "exists"), found
            except BolnaError as exc:
                if not exc.ambiguous:
                    raise
                self.log.warning("Creating trunk %s may or may not have worked (%s); looking before retrying", spec.name, exc)
                yield from self._late_commit_flow(exc)
                found = yield from self._lookup_flow(spec.name)
                if found is not None:
                    return "recovered", found
                if not (yield from self._may_retry_flow(attempt)):
                    raise exc from None
                uncertain = True

    def _ensure_number_flow(
        self, trunk_id: str, number: PhoneNumberRequest, known: Iterable[PhoneNumber] | None, wait_for_id: bool
    ) -> Flow[NumberResult]:
        if known is None:
            known = yield calls.list_numbers(trunk_id)
        match = find_number(known, number.key)
        if match is not None:
            return NumberResult("unchanged", number.phone_number, match)
        uncertain = False  # an earlier POST of this call may have landed: a conflict is then ours
        attempt = 0
        while True:
            attempt += 1
            try:
                added: PhoneNumber = yield calls.add_number(trunk_id, number)
                return NumberResult("created", number.phone_number, added)
            except BolnaConflictError as exc:
                return (yield from self._number_conflict_flow(trunk_id, number, exc, uncertain, wait_for_id))
            except BolnaError as exc:
                if not exc.ambiguous:
                    raise
                # one look, no waiting: if the add landed but is not visible yet, sending it
                # again gets a 409 "on this trunk", which settles it at once
                self.log.warning("Adding number %s may or may not have worked (%s); looking once", number.phone_number, exc)
                yield from self._late_commit_flow(exc)
                found = find_number((yield calls.list_numbers(trunk_id)), number.key)
                if found is not None:
                    return NumberResult("created", number.phone_number, found)
                if not (yield from self._may_retry_flow(attempt)):
                    raise exc from None
                uncertain = True

    def _number_conflict_flow(
        self, trunk_id: str, number: PhoneNumberRequest, exc: BolnaConflictError, uncertain: bool, wait_for_id: bool
    ) -> Flow[NumberResult]:
        """Settle a 409 on add-number: ours (``created`` after an ambiguous add, else
        ``unchanged``), or on another trunk (raised)."""
        action: NumberAction = "created" if uncertain else "unchanged"
        text = exc.message.lower()
        if "this trunk" in text:
            found = (yield from self._await_number_flow(trunk_id, number.key)) if wait_for_id else None
            return NumberResult(action, number.phone_number, found)
        # Bolna's documented "...already exists on another active trunk" needs one look, not a
        # wait; anything else (or that, when our own earlier add may be the holder) may be our
        # own number not visible yet: wait for it to show.
        patience = 0.0 if ("another" in text and not uncertain) else None
        found = yield from self._await_number_flow(trunk_id, number.key, patience)
        if found is not None:
            return NumberResult(action, number.phone_number, found)
        raise BolnaConflictError(
            f"phone number {number.phone_number} is already on another active trunk",
            status_code=exc.status_code, method=exc.method, path=exc.path, request_id=exc.request_id,
        ) from None

    def _await_number_flow(self, trunk_id: str, key: str, timeout: float | None = None) -> Flow[PhoneNumber | None]:
        """Poll the trunk's numbers until ``key`` shows or ``timeout`` (default: the
        connection's number visibility timeout, and never past the time budget) passes;
        always looks at least once."""
        window = self.settings.number_visibility_timeout if timeout is None else timeout
        left: float = yield TIME_LEFT
        deadline = time.monotonic() + max(0.0, min(window, left))
        delay = 0.25
        while True:
            found = find_number((yield calls.list_numbers(trunk_id)), key)
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                return found
            yield _Sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)


#: words of a refusal that may be about the trunk name (Bolna documents names as unique per
#: account, not the status code of the refusal: 400, 409 and 422 are all plausible)
_NAME_TAKEN = re.compile(r"\bname\b|exist|duplicate|unique|taken", re.IGNORECASE)


def _may_be_name_taken(exc: BolnaError) -> bool:
    """Whether a refused create may mean the name is taken: any 409, or a 400/422 saying so."""
    return isinstance(exc, BolnaConflictError) or bool(_NAME_TAKEN.search(exc.message or ""))
