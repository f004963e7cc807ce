"""Operators that make a SIP trunk a working phone line: map its numbers to the voice agents that
answer them (inbound), unlink them, and switch agents to the trunk (outbound).

Every one is safe to retry and rerun: ``POST /inbound/setup`` and the agent PATCH set state (a
second send leaves the same state), a mapping the trunk's number list already shows is not sent
again, and an unlink of a number that is gone is success. Failure policy:
:mod:`airflow_provider_bolna.failures` (an unknown agent is permanent: no retries). XComs are
small and secret-free (numbers, ids, actions).

:func:`bind_agents` is the binding step of
:class:`~airflow_provider_bolna.operators.sip_trunk.CreateSIPTrunkOperator`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.exceptions import (
    BolnaAuthError,
    BolnaBindingError,
    BolnaError,
    BolnaValidationError,
)
from airflow_provider_bolna.failures import bolna_error_policy, is_permanent
from airflow_provider_bolna.links import BolnaSIPTrunkLink
from airflow_provider_bolna.models import (
    SIP_TRUNK_PROVIDER,
    PhoneNumber,
    TrunkSpec,
    number_key,
)
from airflow_provider_bolna.operators.base import BolnaBaseOperator, BolnaNumberOperator, trunk_id_of

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_bolna.hooks.bolna import BolnaHook

__all__ = [
    "SetAgentTelephonyProviderOperator",
    "SetInboundAgentOperator",
    "UnlinkInboundAgentOperator",
    "bind_agents",
    "inbound_agents_of",
    "split_number_agents",
]


def _text(value: Any, field: str) -> str:
    """A rendered argument that must be a non-blank string (ids are opaque: kept as given)."""
    if not isinstance(value, str) or not value.strip():
        raise AirflowFailException(f"{field} is empty or not a string (did the upstream task push it?)")
    return value


class SetInboundAgentOperator(BolnaNumberOperator):
    """Make a voice agent answer one number of a SIP trunk (``POST /inbound/setup``).

    Sends nothing when the trunk's number list shows the mapping already (where the API shows
    ``agent_id``); otherwise sends the setup, which replaces any earlier mapping. A number added
    a moment ago is waited for (the connection's ``number_visibility_timeout``).

    Mappable: ``SetInboundAgentOperator.partial(task_id=..., trunk_id=..., agent_id=...)
    .expand(phone_number=[...])``, or ``.partial(trunk_id=...).expand_kwargs([{"phone_number":
    ..., "agent_id": ...}, ...])`` for an agent per number.

    Returns (XCom) ``{"trunk_id", "phone_number", "phone_number_id", "agent_id", "action",
    "verified", "previous_agent_id"}`` where ``action`` is ``bound``, ``rebound`` or
    ``unchanged``, and ``verified`` tells whether the API showed the number's agent (``False``:
    unverifiable, the mapping was applied blind).

    :param trunk_id: the trunk holding the number (templated).
    :param phone_number: the number (templated; with or without ``+``).
    :param agent_id: the agent that must answer it (templated; an opaque id).
    :param phone_number_id: the number's id on the trunk, when known (templated; skips a list call).
    :param bolna_conn_id: the Bolna connection (templated).
    """

    template_fields: Sequence[str] = (
        "trunk_id",
        "phone_number",
        "agent_id",
        "phone_number_id",
        "bolna_conn_id",
    )
    operator_extra_links = (BolnaSIPTrunkLink(),)

    def __init__(self, *, trunk_id: str, phone_number: str, agent_id: str, **kwargs: Any) -> None:
        super().__init__(trunk_id=trunk_id, phone_number=phone_number, **kwargs)
        self.agent_id = agent_id

    def execute(self, context: Context) -> dict[str, Any]:
        trunk_id = trunk_id_of(self.trunk_id)
        agent_id = _text(self.agent_id, "agent_id")
        try:
            self._push_trunk(context, trunk_id)
            with bolna_error_policy(self.bolna_conn_id):
                result = self.hook.ensure_inbound_agent(
                    trunk_id, str(self.phone_number), agent_id, phone_number_id=self.phone_number_id or None
                )
        finally:
            self._close_hook()
        self.log.info(
            "Number %s (%s) on trunk %s -> agent %s: %s",
            result.phone_number,
            result.phone_number_id,
            trunk_id,
            agent_id,
            result.action,
        )
        return {"trunk_id": trunk_id, **result.to_xcom()}


class UnlinkInboundAgentOperator(BolnaNumberOperator):
    """Remove the inbound agent of one number of a SIP trunk (``POST /inbound/unlink``): its
    inbound calls are refused afterwards. A number (or trunk) that is gone is success.

    Give the number (its id is found with one list call) or its ``phone_number_id`` (or both).

    Returns (XCom) ``{"trunk_id", "phone_number", "phone_number_id", "agent_id": None, "action",
    "verified", "previous_agent_id"}`` where ``action`` is ``unlinked``, ``absent`` (nothing to
    unlink) or ``unchanged`` (the number list shows it has no agent).

    :param trunk_id: the trunk holding the number (templated).
    :param phone_number: the number (templated).
    :param phone_number_id: the number's id on the trunk (templated).
    :param bolna_conn_id: the Bolna connection (templated).
    """

    operator_extra_links = (BolnaSIPTrunkLink(),)

    def execute(self, context: Context) -> dict[str, Any]:
        trunk_id = trunk_id_of(self.trunk_id)
        if not self.phone_number and not self.phone_number_id:
            raise AirflowFailException("give phone_number or phone_number_id")
        try:
            self._push_trunk(context, trunk_id)
            with bolna_error_policy(self.bolna_conn_id):
                result = self.hook.unlink_inbound_agent(
                    trunk_id,
                    str(self.phone_number) if self.phone_number else None,
                    phone_number_id=str(self.phone_number_id) if self.phone_number_id else None,
                )
        finally:
            self._close_hook()
        self.log.info(
            "Number %s (%s) on trunk %s: %s",
            result.phone_number or "",
            result.phone_number_id,
            trunk_id,
            result.action,
        )
        return {"trunk_id": trunk_id, **result.to_xcom()}


class SetAgentTelephonyProviderOperator(BolnaBaseOperator):
    """Make a voice agent place its calls through the SIP trunk (``PATCH /v2/agent/{agent_id}``
    with only ``agent_config.telephony_provider``; Bolna then switches its audio to ulaw).

    The PATCH sets state, so retries and reruns are safe; it draws from the agent endpoint's own
    budget (connection extra ``agent_requests_per_minute``, 500 by default). Mappable over
    ``agent_id``.

    Returns (XCom) ``{"agent_id", "provider", "action": "switched"}``.

    :param agent_id: the agent (templated; an opaque id).
    :param provider: the telephony provider (templated): ``sip-trunk`` for a legacy SIP trunk.
    :param bolna_conn_id: the Bolna connection (templated).
    """

    template_fields: Sequence[str] = ("agent_id", "provider", "bolna_conn_id")

    def __init__(
        self,
        *,
        agent_id: str,
        provider: str = SIP_TRUNK_PROVIDER,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(bolna_conn_id=bolna_conn_id, **kwargs)
        self.agent_id = agent_id
        self.provider = provider

    def execute(self, context: Context) -> dict[str, Any]:
        agent_id = _text(self.agent_id, "agent_id")
        try:
            with bolna_error_policy(self.bolna_conn_id):
                action = self.hook.ensure_outbound_provider(agent_id, str(self.provider))
        finally:
            self._close_hook()
        self.log.info("Agent %s places calls through %s (%s)", agent_id, self.provider, action)
        return {"agent_id": agent_id, "provider": str(self.provider), "action": action}


# ---------------------------------------------------------------------- CreateSIPTrunkOperator's binding step


def split_number_agents(
    trunk: TrunkSpec | dict[str, Any],
) -> tuple[TrunkSpec | dict[str, Any], dict[str, str]]:
    """Take the ``agent_id`` of each ``phone_numbers`` entry out of a trunk dict (the trunk API has
    no such field): ``(trunk without them, {number: agent_id})``.

    :param trunk: a trunk spec dict (a :class:`TrunkSpec` cannot carry agents: returned as is).
    :raises BolnaValidationError: an entry's ``agent_id`` is not a non-blank string.
    """
    numbers = trunk.get("phone_numbers") if isinstance(trunk, dict) else None
    if not isinstance(numbers, list):
        return trunk, {}
    agents: dict[str, str] = {}
    entries: list[Any] = []
    for i, entry in enumerate(numbers):
        if isinstance(entry, Mapping) and "agent_id" in entry:
            entry = dict(entry)
            agent = entry.pop("agent_id")
            if agent is not None:
                if not isinstance(agent, str) or not agent.strip():
                    raise BolnaValidationError(
                        f"trunk.phone_numbers.{i}.agent_id: must be a non-blank string"
                    )
                agents[str(entry.get("phone_number"))] = agent
        entries.append(entry)
    return {**trunk, "phone_numbers": entries}, agents


def inbound_agents_of(
    spec: TrunkSpec, default_agent: str | None, per_number: Mapping[str, str], entry_agents: Mapping[str, str]
) -> dict[str, str]:
    """Which agent answers each number of ``spec``: its own (``per_number`` or its spec entry's
    ``agent_id``), else ``default_agent``; numbers with neither are left alone.

    :raises BolnaValidationError: a number outside the spec, or two different agents for one number.
    """
    in_spec = {n.key: n.phone_number for n in spec.phone_numbers}
    own: dict[str, str] = {}
    for source, mapping in (("trunk.phone_numbers", entry_agents), ("inbound_agents", per_number)):
        for number, agent in mapping.items():
            key = number_key(number)
            if key not in in_spec:
                raise BolnaValidationError(f"{source}: number {number} is not in the trunk's phone_numbers")
            if own.get(key, agent) != agent:
                raise BolnaValidationError(f"{source}: number {number} is given two different agents")
            own[key] = agent
    bindings: dict[str, str] = {}
    for key, number in in_spec.items():
        agent = own.get(key, default_agent)
        if agent:
            bindings[number] = agent
    return bindings


def bind_agents(
    hook: BolnaHook,
    trunk_id: str,
    inbound: Mapping[str, str],
    outbound: Sequence[str],
    known_numbers: Iterable[PhoneNumber],
    log: logging.Logger | Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Map each number of ``inbound`` to its agent and switch each ``outbound`` agent to the trunk,
    trying all of them: ``(inbound XComs, outbound XComs)``.

    The trunk's numbers are listed once when ``known_numbers`` misses one of them (a number added
    a moment ago is then waited for by the hook).

    :raises BolnaBindingError: listing every failure; permanent when each one is (unknown agent).
    :raises BolnaAuthError: the key was refused (nothing else can work).
    """
    known = list(known_numbers)
    if any(number_key(n) not in {k.key for k in known} for n in inbound):
        known = hook.list_numbers(trunk_id)
    failures: dict[str, BolnaError] = {}
    mapped: list[dict[str, Any]] = []
    for number, agent in inbound.items():
        try:
            result = hook.ensure_inbound_agent(trunk_id, number, agent, known_numbers=known)
        except BolnaAuthError:
            raise
        except BolnaError as exc:
            failures[number] = exc
            continue
        log.info("Number %s (%s) -> agent %s: %s", number, result.phone_number_id, agent, result.action)
        mapped.append(result.to_xcom())
    switched: list[dict[str, Any]] = []
    for agent in outbound:
        try:
            switched.append(
                {
                    "agent_id": agent,
                    "provider": SIP_TRUNK_PROVIDER,
                    "action": hook.ensure_outbound_provider(agent),
                }
            )
        except BolnaAuthError:
            raise
        except BolnaError as exc:
            failures[agent] = exc
    if failures:
        for what, exc in failures.items():
            log.error("Binding %s on trunk %s failed: %s", what, trunk_id, exc)
        listing = "; ".join(f"{what}: {exc.message}" for what, exc in failures.items())
        raise BolnaBindingError(
            f"{len(failures)} of {len(inbound) + len(outbound)} binding(s) on trunk {trunk_id} failed "
            f"(the others were made): {listing}",
            failures={what: exc.message for what, exc in failures.items()},
            permanent=all(is_permanent(exc) for exc in failures.values()),
        )
    return mapped, switched
