"""What the hook's ``ensure_*`` operations did: small, secret-free results (``to_xcom()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_bolna.models import PhoneNumber, SIPTrunk

__all__ = [
    "BindingAction",
    "BindingResult",
    "NumberAction",
    "NumberResult",
    "ProviderAction",
    "TrunkAction",
    "TrunkResult",
]

TrunkAction = Literal["created", "adopted", "updated", "unchanged"]
NumberAction = Literal["created", "unchanged"]
BindingAction = Literal["bound", "rebound", "unchanged", "unlinked", "absent"]
ProviderAction = Literal["switched", "unchanged"]


@dataclass
class TrunkResult:
    """What :meth:`BolnaHook.ensure_trunk` did.

    :param action: ``created``, ``adopted`` (existed, left as is), ``updated`` (drift patched)
        or ``unchanged`` (existed and matched).
    :param trunk: the trunk as last seen.
    :param numbers_added: numbers this call registered (inline at creation or added after).
    :param patched_fields: fields sent in the PATCH, when ``action == "updated"``.
    """

    action: TrunkAction
    trunk: SIPTrunk
    numbers_added: list[str] = field(default_factory=list)
    patched_fields: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        """A small, secret-free summary for XCom."""
        return {
            "trunk_id": self.trunk.id,
            "name": self.trunk.name,
            "action": self.action,
            "numbers_added": list(self.numbers_added),
            "patched_fields": list(self.patched_fields),
        }


@dataclass
class NumberResult:
    """What :meth:`BolnaHook.ensure_number` did: ``created`` or ``unchanged`` (already there).

    ``number`` is ``None`` when the API confirmed the number is on the trunk (a 409 "on this
    trunk") but it was not visible in reads yet and its id was not asked for.
    """

    action: NumberAction
    phone_number: str
    number: PhoneNumber | None = None

    def to_xcom(self) -> dict[str, Any]:
        """A small, secret-free summary for XCom."""
        return {
            "phone_number": self.phone_number,
            "action": self.action,
            "phone_number_id": self.number.id if self.number else None,
        }


@dataclass
class BindingResult:
    """What :meth:`BolnaHook.ensure_inbound_agent` / :meth:`BolnaHook.unlink_inbound_agent` did.

    :param action: ``bound`` (setup sent; no other agent was known on the number),
        ``rebound`` (setup sent; the number's list entry or the recorded mapping showed another
        agent), ``unchanged`` (nothing sent: the recorded mapping is current, or the number list
        showed it), ``unlinked`` (unlink sent) or ``absent`` (nothing to unlink: the number, or
        its trunk, is gone).
    :param phone_number: the number as the caller gave it (``None`` when an unlink got only its id).
    :param phone_number_id: the number's id (``None`` when it is gone).
    :param agent_id: the agent now answering the number (``None`` after an unlink).
    :param verified: whether the number's agent could be read from the API in this call:
        ``True`` the trunk's number list showed it; ``False`` the list was read but carries no
        ``agent_id`` (the mapping is unverifiable, so it was applied: setup replaces); ``None``
        nothing was read (a recorded mapping was trusted, or the number's id was given).
    :param previous_agent_id: the other agent the number had, when known (``rebound``, an unlink).
    """

    action: BindingAction
    phone_number: str | None
    phone_number_id: str | None
    agent_id: str | None
    verified: bool | None = None
    previous_agent_id: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        """A small, secret-free summary for XCom (ids and numbers only)."""
        return {
            "phone_number": self.phone_number,
            "phone_number_id": self.phone_number_id,
            "agent_id": self.agent_id,
            "action": self.action,
            "verified": self.verified,
            "previous_agent_id": self.previous_agent_id,
        }
