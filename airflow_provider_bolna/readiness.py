"""What "a SIP trunk is ready" means, decided from what the API returned (pure: no I/O).

Ready: the trunk exists (looked up by id or by name), is active when asked, and every expected
phone number is visible on it (a just-added number can take seconds to show in reads). The
hook's ``check_trunk_ready`` fetches with GET requests only and decides with
:func:`evaluate_trunk`; the sensor's poke, the trigger and the create operator's wait all use it,
so every way of waiting has the same meaning. Which errors mean "not ready yet" is the failure
policy's: :func:`airflow_provider_bolna.failures.means_not_ready`.

Imports neither Airflow nor httpx.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bolna.exceptions import BolnaNotFoundError
from airflow_provider_bolna.models import PhoneNumber, SIPTrunk, number_key

__all__ = ["DEFER_GRACE_SECONDS", "TrunkStatus", "evaluate_trunk", "needs_number_list", "not_ready", "trunk_ref"]

#: Extra seconds the scheduler waits past a trigger's own deadline before timing the deferral out.
DEFER_GRACE_SECONDS = 120.0


@dataclass
class TrunkStatus:
    """Outcome of one readiness check.

    :param done: whether every condition holds.
    :param message: human-readable state (what is missing, or why it is ready).
    :param trunk_id: the trunk's id, when it was found.
    :param name: the trunk's name, when it was found.
    :param is_active: the trunk's ``is_active``, when it was found.
    :param numbers: numbers visible on the trunk (as stored).
    :param missing: expected numbers not (yet) visible.
    """

    done: bool
    message: str
    trunk_id: str | None = None
    name: str | None = None
    is_active: bool | None = None
    numbers: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        """Small, secret-free summary (the sensor's return value)."""
        return {
            "trunk_id": self.trunk_id,
            "name": self.name,
            "is_active": self.is_active,
            "numbers": list(self.numbers),
        }


def trunk_ref(trunk_id: str | None, trunk_name: str | None) -> str:
    """How messages name a trunk: ``trunk <id>`` or ``trunk named '<name>'``."""
    return f"trunk {trunk_id}" if trunk_id else f"trunk named {trunk_name!r}"


def evaluate_trunk(
    trunk: SIPTrunk | None,
    numbers: Iterable[PhoneNumber] | None,
    *,
    expect_active: bool,
    expect_numbers: Sequence[str],
    ref: str = "trunk",
) -> TrunkStatus:
    """Decide readiness from what the API returned.

    :param trunk: the trunk, or ``None`` when it does not exist (yet).
    :param numbers: the trunk's numbers (``None``: use those embedded in ``trunk``).
    :param expect_active: require ``is_active``.
    :param expect_numbers: numbers that must be visible (matched with or without ``+``).
    :param ref: how to name the trunk in messages.
    """
    if trunk is None:
        return TrunkStatus(False, f"{ref} does not exist (yet)")
    seen = [n for n in (numbers if numbers is not None else trunk.phone_numbers) if not n.deleted]
    keys = {n.key for n in seen}
    missing = [n for n in expect_numbers if number_key(str(n)) not in keys]
    status = TrunkStatus(
        False, "", trunk_id=trunk.id, name=trunk.name, is_active=trunk.is_active,
        numbers=[n.phone_number for n in seen], missing=missing,
    )
    problems = []
    if expect_active and not trunk.is_active:
        problems.append("is not active")
    if missing:
        problems.append(f"does not show number(s) {', '.join(missing)} yet")
    if problems:
        status.message = f"trunk {trunk.id} ({trunk.name}) {' and '.join(problems)}"
    else:
        status.done = True
        status.message = f"trunk {trunk.id} ({trunk.name}) is ready" + (
            f" with {len(expect_numbers)} expected number(s)" if expect_numbers else ""
        )
    return status


def needs_number_list(trunk: SIPTrunk | None, expect_numbers: Sequence[str]) -> bool:
    """Whether the trunk's own ``phone_numbers`` miss an expected number (then list them)."""
    if trunk is None or not expect_numbers:
        return False
    keys = {n.key for n in trunk.active_numbers}
    return any(number_key(str(n)) not in keys for n in expect_numbers)


def not_ready(exc: BaseException, ref: str) -> TrunkStatus:
    """The status after an error that means "not ready yet" (a 404, or a transient failure).

    :param exc: the error (already retried by the hook).
    :param ref: how to name the trunk.
    """
    if isinstance(exc, BolnaNotFoundError):
        return TrunkStatus(False, f"{ref} does not exist (yet)")
    return TrunkStatus(False, f"could not check {ref} ({type(exc).__name__}: {exc}); will check again")
