"""The flows of :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook`'s trunk and number
operations: each written once as a generator that both drivers of
:class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook` run (sync and async).

They make ``ensure_trunk`` and ``ensure_number`` safe to retry: an ambiguous failure (timeout,
dropped connection, 5xx, 409) is resolved by looking before writing again, so nothing is ever
created twice. Also here: the readiness check's reads and the deletes that tolerate "already
gone". The agent-binding flows (:mod:`~airflow_provider_bolna.hooks.binding`) build on these.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from airflow_provider_bolna.exceptions import (
    BolnaConflictError,
    BolnaError,
    BolnaNotFoundError,
    BolnaTimeoutError,
    BolnaValidationError,
)
from airflow_provider_bolna.failures import means_not_ready
from airflow_provider_bolna.hooks import calls
from airflow_provider_bolna.hooks.base import TIME_LEFT, BolnaBaseHook, Flow
from airflow_provider_bolna.hooks.calls import find_number
from airflow_provider_bolna.hooks.instructions import _Find, _Sleep
from airflow_provider_bolna.hooks.results import NumberAction, NumberResult, TrunkAction, TrunkResult
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

__all__ = ["IfExists", "TrunkFlowsMixin"]

IfExists = Literal["adopt", "update", "fail"]


class TrunkFlowsMixin(BolnaBaseHook):
    """The trunk and number flows (each a generator; run by ``_drive`` or ``_adrive``)."""

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
        self,
        trunk_id: str | None,
        trunk_name: str | None,
        expect_active: bool,
        expect_numbers: Sequence[str],
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
        return evaluate_trunk(
            trunk,
            numbers,
            expect_active=expect_active,
            expect_numbers=expect_numbers,
            ref=ref,
            expect_agents=expect_agents,
        )

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
                return TrunkResult(
                    "created", existing, numbers_added=[n.phone_number for n in spec.phone_numbers]
                )
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
            return TrunkResult(
                "created", existing, numbers_added=[n.phone_number for n in spec.phone_numbers]
            )
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
                self.log.warning(
                    "Creating trunk %s may or may not have worked (%s); looking before retrying",
                    spec.name,
                    exc,
                )
                yield from self._late_commit_flow(exc)
                found = yield from self._lookup_flow(spec.name)
                if found is not None:
                    return "recovered", found
                if not (yield from self._may_retry_flow(attempt)):
                    raise exc from None
                uncertain = True

    def _ensure_number_flow(
        self,
        trunk_id: str,
        number: PhoneNumberRequest,
        known: Iterable[PhoneNumber] | None,
        wait_for_id: bool,
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
                self.log.warning(
                    "Adding number %s may or may not have worked (%s); looking once", number.phone_number, exc
                )
                yield from self._late_commit_flow(exc)
                found = find_number((yield calls.list_numbers(trunk_id)), number.key)
                if found is not None:
                    return NumberResult("created", number.phone_number, found)
                if not (yield from self._may_retry_flow(attempt)):
                    raise exc from None
                uncertain = True

    def _number_conflict_flow(
        self,
        trunk_id: str,
        number: PhoneNumberRequest,
        exc: BolnaConflictError,
        uncertain: bool,
        wait_for_id: bool,
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
            **exc.call_details,
        ) from None

    def _await_number_flow(
        self, trunk_id: str, key: str, timeout: float | None = None
    ) -> Flow[PhoneNumber | None]:
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
