"""The agent-binding half of :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook`: the calls
that make a provisioned trunk a working phone line, and their idempotent ``ensure_*`` flows.

* outbound: ``PATCH /v2/agent/{agent_id}`` sets an agent's telephony provider (``sip-trunk``);
  it draws from the agent endpoint's own rate budget (500 requests/min per organisation);
* inbound: ``POST /inbound/setup`` maps a number (its id on the trunk) to the agent that answers
  it, ``POST /inbound/unlink`` removes the mapping.

Setup, unlink and the PATCH set state (a second send leaves the same state), so after an
ambiguous failure they are simply sent again. No endpoint answers "which agent is on number
X": the trunk's number list carries ``agent_id`` according to Bolna's trunk guide but not in its
published schema. The flows use it where it is present (a current mapping costs no write) and
otherwise re-apply the mapping, which is harmless because setup replaces.

Endpoints are one line over :mod:`~airflow_provider_bolna.hooks.calls`; flows are written once
as generators for both drivers (see :mod:`~airflow_provider_bolna.hooks.base`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from airflow_provider_bolna.exceptions import (
    BolnaAgentNotFoundError,
    BolnaNotFoundError,
    BolnaValidationError,
)
from airflow_provider_bolna.hooks import calls
from airflow_provider_bolna.hooks.base import Flow
from airflow_provider_bolna.hooks.calls import find_number
from airflow_provider_bolna.hooks.results import BindingResult, ProviderAction
from airflow_provider_bolna.hooks.trunk_flows import TrunkFlowsMixin
from airflow_provider_bolna.models import SIP_TRUNK_PROVIDER, InboundSetupRequest, InboundUnlinkRequest

if TYPE_CHECKING:
    from airflow_provider_bolna.models import (
        AccountPhoneNumber,
        AgentTelephonyUpdate,
        AgentUpdateResponse,
        InboundAgentResponse,
        InboundUnlinkResponse,
        PhoneNumber,
        PhoneNumberRequest,
        User,
    )

__all__ = ["AgentBindingMixin"]

#: a 404 of /inbound/setup is about the agent when it names the agent and not the number (the
#: documented number wordings: "SIP trunk phone number not found in database", "Phone number
#: doesn't exist.")
_AGENT = re.compile(r"\bagent", re.IGNORECASE)
_NUMBER = re.compile(r"\bnumber|\bphone", re.IGNORECASE)


class AgentBindingMixin(TrunkFlowsMixin):
    """Agent binding for :class:`~airflow_provider_bolna.hooks.bolna.BolnaHook`, on top of the
    trunk flows it uses (such as waiting for a just-added number to show)."""

    # ------------------------------------------------------------------ endpoints (sync)

    def get_user(self) -> User:
        """``GET /user/me``: the account behind the API key."""
        return self._request(calls.get_user())

    def update_agent_telephony(
        self, agent_id: str, provider: str = SIP_TRUNK_PROVIDER
    ) -> AgentUpdateResponse:
        """``PATCH /v2/agent/{agent_id}`` with only ``agent_config.telephony_provider``.

        Sets state, so it is resent after an ambiguous failure; draws from the agent budget
        (connection extra ``agent_requests_per_minute``). Prefer :meth:`ensure_outbound_provider`.

        :param agent_id: the agent (opaque id).
        :param provider: the telephony provider (``sip-trunk`` for a legacy SIP trunk).
        :raises BolnaAgentNotFoundError: no such agent (permanent).
        """
        return self._drive(self._update_agent_flow(agent_id, calls.as_provider(provider)))

    def setup_inbound(self, agent_id: str, phone_number_id: str) -> InboundAgentResponse:
        """``POST /inbound/setup``: ``agent_id`` answers the number's inbound calls.

        Replaces any earlier mapping of the number, so it is resent after an ambiguous failure.
        Never sends ``allow_multiple`` or ``ivr_config`` (Plivo numbers only). Both documented
        200 bodies are read (InboundAgentResponse, or ``{"message"}``). Prefer
        :meth:`ensure_inbound_agent`.

        :param agent_id: the agent (opaque id).
        :param phone_number_id: the number's ``id`` on its trunk (opaque).
        :raises BolnaAgentNotFoundError: the 404 names the agent (permanent).
        :raises BolnaNotFoundError: no such number (a just-added one shows after a few seconds).
        """
        return self._drive(self._setup_once_flow(agent_id, phone_number_id, number_visible=False))

    def unlink_inbound(self, phone_number_id: str, agent_id: str | None = None) -> InboundUnlinkResponse:
        """``POST /inbound/unlink``: the number has no inbound agent afterwards (calls to it are
        refused). Clears state, so it is resent after an ambiguous failure. Prefer
        :meth:`unlink_inbound_agent`.

        :param phone_number_id: the number's ``id`` on its trunk.
        :param agent_id: sent along when given (Bolna's own scripts do; the API ignores it).
        :raises BolnaNotFoundError: no such number.
        """
        return self._request(calls.unlink_inbound(_unlink_request(phone_number_id, agent_id)))

    def list_account_numbers(self) -> list[AccountPhoneNumber]:
        """``GET /phone-numbers/all``: the account's numbers with their ``agent_id`` (whether
        SIP-trunk numbers are listed there is unverified on the live API)."""
        return self._request(calls.list_account_numbers())

    def ensure_inbound_agent(
        self,
        trunk_id: str,
        phone_number: str,
        agent_id: str,
        *,
        phone_number_id: str | None = None,
        recorded_agent_id: str | None = None,
        known_numbers: Iterable[PhoneNumber] | None = None,
    ) -> BindingResult:
        """Make ``agent_id`` answer ``phone_number`` on trunk ``trunk_id``, sending nothing that is
        not needed.

        * ``recorded_agent_id == agent_id`` and ``phone_number_id`` given: ``unchanged``, no
          request (the caller's record is trusted);
        * otherwise the number's list entry is read (from ``known_numbers``, else one
          list-numbers call, waiting up to the connection's ``number_visibility_timeout`` for a
          just-added number) unless its id was given; if the entry carries ``agent_id`` equal to
          ``agent_id``: ``unchanged`` (verified);
        * else ``POST /inbound/setup``: ``bound``, or ``rebound`` when the entry or the record
          showed another agent. A 404 about the number (just added, or a stale id) waits for the
          number to show and sends once more with the id it shows.

        :param trunk_id: the trunk holding the number.
        :param phone_number: the number (matched with or without ``+``).
        :param agent_id: the agent that must answer it (opaque id).
        :param phone_number_id: the number's id, when known (skips the list call).
        :param recorded_agent_id: the agent the caller last mapped to this number (e.g. its state).
        :param known_numbers: the trunk's numbers as already listed (one listing for many numbers).
        :raises BolnaAgentNotFoundError: the agent does not exist (permanent for this customer).
        :raises BolnaNotFoundError: the number is not (yet) on the trunk.
        """
        flow = self._ensure_inbound_agent_flow(
            trunk_id, phone_number, agent_id, phone_number_id, recorded_agent_id, known_numbers
        )
        return self._drive(flow)

    def unlink_inbound_agent(
        self, trunk_id: str, phone_number: str | None, *, phone_number_id: str | None = None
    ) -> BindingResult:
        """Make ``phone_number`` have no inbound agent: ``unlinked``, or ``absent`` when the number
        (or its trunk) is gone, or ``unchanged`` when the number list shows it has no agent.

        Without ``phone_number_id`` the trunk's numbers are listed once (no waiting: a number
        not visible yet cannot have been mapped).

        :param trunk_id: the trunk holding the number.
        :param phone_number: the number (matched with or without ``+``); may be ``None`` when
            ``phone_number_id`` is given.
        :param phone_number_id: the number's id, when known (skips the list call).
        """
        return self._drive(self._unlink_inbound_agent_flow(trunk_id, phone_number, phone_number_id))

    def ensure_outbound_provider(
        self, agent_id: str, provider: str = SIP_TRUNK_PROVIDER, *, recorded_provider: str | None = None
    ) -> ProviderAction:
        """Make the agent place calls through ``provider``: ``unchanged`` (no request) when
        ``recorded_provider == provider``, else one PATCH: ``switched``.

        No endpoint reads an agent's provider back, so without a record the PATCH is sent (it
        sets state: harmless when already set).

        :param agent_id: the agent (opaque id).
        :param provider: the telephony provider (``sip-trunk`` for a legacy SIP trunk).
        :param recorded_provider: the provider the caller last set on this agent.
        :raises BolnaAgentNotFoundError: no such agent (permanent).
        """
        return self._drive(self._ensure_outbound_provider_flow(agent_id, provider, recorded_provider))

    # ------------------------------------------------------------------ endpoints (async twins)

    async def aget_user(self) -> User:
        """Async twin of :meth:`get_user`."""
        return await self._arequest(calls.get_user())

    async def aupdate_agent_telephony(
        self, agent_id: str, provider: str = SIP_TRUNK_PROVIDER
    ) -> AgentUpdateResponse:
        """Async twin of :meth:`update_agent_telephony`."""
        return await self._adrive(self._update_agent_flow(agent_id, calls.as_provider(provider)))

    async def asetup_inbound(self, agent_id: str, phone_number_id: str) -> InboundAgentResponse:
        """Async twin of :meth:`setup_inbound`."""
        return await self._adrive(self._setup_once_flow(agent_id, phone_number_id, number_visible=False))

    async def aunlink_inbound(
        self, phone_number_id: str, agent_id: str | None = None
    ) -> InboundUnlinkResponse:
        """Async twin of :meth:`unlink_inbound`."""
        return await self._arequest(calls.unlink_inbound(_unlink_request(phone_number_id, agent_id)))

    async def alist_account_numbers(self) -> list[AccountPhoneNumber]:
        """Async twin of :meth:`list_account_numbers`."""
        return await self._arequest(calls.list_account_numbers())

    async def aensure_inbound_agent(
        self,
        trunk_id: str,
        phone_number: str,
        agent_id: str,
        *,
        phone_number_id: str | None = None,
        recorded_agent_id: str | None = None,
        known_numbers: Iterable[PhoneNumber] | None = None,
    ) -> BindingResult:
        """Async twin of :meth:`ensure_inbound_agent`."""
        flow = self._ensure_inbound_agent_flow(
            trunk_id, phone_number, agent_id, phone_number_id, recorded_agent_id, known_numbers
        )
        return await self._adrive(flow)

    async def aunlink_inbound_agent(
        self, trunk_id: str, phone_number: str | None, *, phone_number_id: str | None = None
    ) -> BindingResult:
        """Async twin of :meth:`unlink_inbound_agent`."""
        return await self._adrive(self._unlink_inbound_agent_flow(trunk_id, phone_number, phone_number_id))

    async def aensure_outbound_provider(
        self, agent_id: str, provider: str = SIP_TRUNK_PROVIDER, *, recorded_provider: str | None = None
    ) -> ProviderAction:
        """Async twin of :meth:`ensure_outbound_provider`."""
        return await self._adrive(self._ensure_outbound_provider_flow(agent_id, provider, recorded_provider))

    # ------------------------------------------------------------------ flows (written once)

    def _update_agent_flow(self, agent_id: str, update: AgentTelephonyUpdate) -> Flow[AgentUpdateResponse]:
        try:
            response: AgentUpdateResponse = yield calls.update_agent(agent_id, update)
        except BolnaNotFoundError as exc:
            raise _agent_missing(agent_id, exc) from None
        return response

    def _setup_once_flow(
        self, agent_id: str, phone_number_id: str, *, number_visible: bool
    ) -> Flow[InboundAgentResponse]:
        """One setup (retried inside the driver like any call). A 404 naming the agent, or any
        404 not naming the number once the number is known to be visible, is the agent's."""
        request = calls.as_binding(InboundSetupRequest, agent_id=agent_id, phone_number_id=phone_number_id)
        try:
            response: InboundAgentResponse = yield calls.setup_inbound(request)
        except BolnaNotFoundError as exc:
            text = exc.message or ""
            if not _NUMBER.search(text) and (number_visible or _AGENT.search(text)):
                raise _agent_missing(agent_id, exc) from None
            raise
        return response

    def _setup_flow(
        self, trunk_id: str, number: PhoneNumberRequest, number_id: str, agent_id: str
    ) -> Flow[str]:
        """Setup, and after a 404 about the number wait for it to show and send once more with the
        id it shows (a just-added number, or a stale recorded id). Returns the id mapped."""
        try:
            yield from self._setup_once_flow(agent_id, number_id, number_visible=False)
            return number_id
        except BolnaAgentNotFoundError:
            raise
        except BolnaNotFoundError as exc:
            self.log.info(
                "Number %s (%s) is not known to /inbound/setup yet (%s); waiting for it on trunk %s",
                number.phone_number,
                number_id,
                exc.message,
                trunk_id,
            )
        found = yield from self._await_number_flow(trunk_id, number.key)
        if found is None:
            raise BolnaNotFoundError(
                f"phone number {number.phone_number} is not on trunk {trunk_id}", status_code=404
            )
        try:
            yield from self._setup_once_flow(agent_id, found.id, number_visible=True)
        except BolnaAgentNotFoundError:
            raise
        except BolnaNotFoundError as exc:
            raise BolnaNotFoundError(
                f"phone number {number.phone_number} ({found.id}) is on trunk {trunk_id} but /inbound/setup "
                f"does not find it (yet): {exc.message}",
                **exc.call_details,
            ) from None
        return found.id

    def _ensure_inbound_agent_flow(
        self,
        trunk_id: str,
        phone_number: str,
        agent_id: str,
        phone_number_id: str | None,
        recorded_agent_id: str | None,
        known_numbers: Iterable[PhoneNumber] | None,
    ) -> Flow[BindingResult]:
        number = calls.as_number(phone_number)
        agent_id = calls.opaque_id(agent_id, "agent_id")
        if phone_number_id is not None:
            phone_number_id = calls.opaque_id(phone_number_id, "phone_number_id")
            if recorded_agent_id == agent_id:
                return BindingResult(
                    "unchanged", number.phone_number, phone_number_id, agent_id, verified=None
                )
        listed = None if known_numbers is None else _listed(known_numbers, number.key, phone_number_id)
        if listed is None and phone_number_id is None:
            listed = yield from self._await_number_flow(trunk_id, number.key)
            if listed is None:
                raise BolnaNotFoundError(
                    f"phone number {number.phone_number} is not on trunk {trunk_id}", status_code=404
                )
        previous, verified = recorded_agent_id, None
        if listed is not None:
            verified = listed.agent_known
            if listed.agent_known:
                if listed.agent_id == agent_id:
                    return BindingResult("unchanged", number.phone_number, listed.id, agent_id, verified=True)
                previous = listed.agent_id
        number_id = phone_number_id or listed.id  # type: ignore[union-attr] - listed is set without an id
        number_id = yield from self._setup_flow(trunk_id, number, number_id, agent_id)
        if previous is not None and previous != agent_id:
            return BindingResult("rebound", number.phone_number, number_id, agent_id, verified, previous)
        return BindingResult("bound", number.phone_number, number_id, agent_id, verified)

    def _unlink_inbound_agent_flow(
        self, trunk_id: str, phone_number: str | None, phone_number_id: str | None
    ) -> Flow[BindingResult]:
        if phone_number_id is not None:
            phone_number_id = calls.opaque_id(phone_number_id, "phone_number_id")
        elif phone_number is None:
            raise BolnaValidationError("give phone_number or phone_number_id")
        number = None if phone_number is None else calls.as_number(phone_number)
        shown = None if number is None else number.phone_number
        previous, verified = None, None
        if phone_number_id is None:
            try:
                listed = find_number((yield calls.list_numbers(trunk_id)), number.key)  # type: ignore[union-attr]
            except BolnaNotFoundError:
                listed = None  # the trunk is gone, and its numbers' mappings with it
            if listed is None:
                return BindingResult("absent", shown, None, None)
            phone_number_id, verified = listed.id, listed.agent_known
            if listed.agent_known and listed.agent_id is None:
                return BindingResult("unchanged", shown, listed.id, None, verified=True)
            previous = listed.agent_id
        try:
            yield calls.unlink_inbound(_unlink_request(phone_number_id, None))
        except BolnaNotFoundError:
            self.log.info("Number %s (%s) is already gone; nothing to unlink", shown or "", phone_number_id)
            return BindingResult("absent", shown, phone_number_id, None, verified)
        return BindingResult("unlinked", shown, phone_number_id, None, verified, previous)

    def _ensure_outbound_provider_flow(
        self, agent_id: str, provider: str, recorded_provider: str | None
    ) -> Flow[ProviderAction]:
        update = calls.as_provider(provider)
        agent_id = calls.opaque_id(agent_id, "agent_id")
        if recorded_provider == provider:
            return "unchanged"
        yield from self._update_agent_flow(agent_id, update)
        return "switched"


def _unlink_request(phone_number_id: str, agent_id: str | None) -> InboundUnlinkRequest:
    return calls.as_binding(InboundUnlinkRequest, phone_number_id=phone_number_id, agent_id=agent_id)


def _listed(numbers: Iterable[PhoneNumber], key: str, number_id: str | None) -> PhoneNumber | None:
    """The number's entry among ``numbers``: by id when known, else by digits."""
    if number_id is None:
        return find_number(numbers, key)
    return next((n for n in numbers if not n.deleted and n.id == number_id), None)


def _agent_missing(agent_id: str, exc: BolnaNotFoundError) -> BolnaAgentNotFoundError:
    return BolnaAgentNotFoundError(
        f"agent {agent_id} does not exist (or belongs to another account): {exc.message}",
        agent_id=agent_id,
        **exc.call_details,
    )
