"""What the hook's ``ensure_*`` operations did: small, secret-free results (``to_xcom()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_bolna.models import PhoneNumber, SIPTrunk

__all__ = ["NumberAction", "NumberResult", "TrunkAction", "TrunkResult"]

TrunkAction = Literal["created", "adopted", "updated", "unchanged"]
NumberAction = Literal["created", "unchanged"]


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
