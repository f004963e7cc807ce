"""``BolnaHook``: Bolna's ``/sip-trunks`` API as methods, and the idempotent ``ensure_*`` flows;
the agent-binding calls come from :class:`~airflow_provider_bolna.hooks.binding.AgentBindingMixin`,
the flows of several calls from :class:`~airflow_provider_bolna.hooks.trunk_flows.TrunkFlowsMixin`.

Each endpoint is one line over :mod:`~airflow_provider_bolna.hooks.calls` (what is sent and how
the answer is read) and :class:`~airflow_provider_bolna.hooks.base.BolnaBaseHook` (the wire:
clients, deadlines, retries, errors), with an async twin. Operations of several calls
(``ensure_trunk``, ``ensure_number``, ``check_trunk_ready``, deletes that tolerate "already
gone") are written once as generator flows that both drivers run; they resolve ambiguous
failures by looking before writing again, so nothing is ever created twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_bolna.connection_form import connection_form_widgets, ui_field_behaviour
from airflow_provider_bolna.exceptions import BolnaNotFoundError
from airflow_provider_bolna.hooks import calls
from airflow_provider_bolna.hooks.base import USER_AGENT
from airflow_provider_bolna.hooks.binding import AgentBindingMixin
from airflow_provider_bolna.hooks.calls import TRUNKS
from airflow_provider_bolna.hooks.results import BindingResult, NumberResult, TrunkResult
from airflow_provider_bolna.hooks.settings import DEFAULT_BASE_URL, DEFAULT_DASHBOARD_URL, BolnaSettings
from airflow_provider_bolna.hooks.trunk_flows import IfExists
from airflow_provider_bolna.models import (
    PhoneNumber,
    PhoneNumberRequest,
    SIPTrunk,
    SIPTrunkUpdateRequest,
    TrunkSpec,
)
from airflow_provider_bolna.readiness import TrunkStatus, evaluate_trunk, trunk_ref
from airflow_provider_bolna.secrets.redaction import redact

# BolnaSettings, DEFAULT_*, TRUNKS, USER_AGENT, IfExists, TrunkStatus, evaluate_trunk and trunk_ref
# moved to hooks.settings, hooks.calls, hooks.base, hooks.trunk_flows and readiness: importable
# from here as before.
__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DASHBOARD_URL",
    "TRUNKS",
    "USER_AGENT",
    "AsyncFinder",
    "BindingResult",
    "BolnaHook",
    "BolnaSettings",
    "Finder",
    "IfExists",
    "NumberResult",
    "TrunkResult",
    "TrunkStatus",
    "evaluate_trunk",
    "trunk_ref",
]

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
        self,
        is_active: bool | None = None,
        names: Collection[str] | None = None,
        ids: Collection[str] | None = None,
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
        return self._drive(
            self._ensure_number_flow(trunk_id, calls.as_number(number), known_numbers, wait_for_id)
        )

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
        return self._drive(
            self._trunk_status_flow(trunk_id, trunk_name, expect_active, expect_numbers, expect_agents)
        )

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
        self,
        is_active: bool | None = None,
        names: Collection[str] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[SIPTrunk]:
        """Async twin of :meth:`list_trunks`."""
        return await self._arequest(calls.list_trunks(is_active, names, ids))

    async def aget_trunk(self, trunk_id: str) -> SIPTrunk:
        """Async twin of :meth:`get_trunk`."""
        return await self._arequest(calls.get_trunk(trunk_id))

    async def aupdate_trunk(self, trunk_id: str, update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunk:
        """Async twin of :meth:`update_trunk`."""
        return await self._arequest(calls.update_trunk(trunk_id, calls.as_update(update)))

    async def adelete_trunk(
        self, trunk_id: str, *, missing_ok: bool = True, deactivate_first: bool = False
    ) -> bool:
        """Async twin of :meth:`delete_trunk`."""
        return await self._adrive(self._delete_trunk_flow(trunk_id, missing_ok, deactivate_first))

    async def aadd_number(
        self, trunk_id: str, number: PhoneNumberRequest | dict[str, Any] | str
    ) -> PhoneNumber:
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
        return await self._adrive(
            self._ensure_trunk_flow(calls.as_spec(spec), if_exists, existing), finder=finder
        )

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
