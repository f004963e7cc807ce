"""What "a SIP trunk is ready" means, decided from what the API returned (pure: no I/O).

Ready: the trunk exists (looked up by id or by name), is active when asked, every expected
phone number is visible on it (a just-added number can take seconds to show in reads), and every
expected inbound mapping (number → agent) holds where the API shows it: a number whose entry
carries ``agent_id`` must show the expected agent (another agent, or none, is "not ready yet");
an entry without ``agent_id`` makes the mapping *unverifiable*, reported in the status and never
waited for (the published schema of the number list has no such field). The
hook's ``check_trunk_ready`` fetches with GET requests only and decides with
:func:`evaluate_trunk`; the sensor's poke, the trigger and the create operator's wait all use it,
so every way of waiting has the same meaning. Which errors mean "not ready yet" is the failure
policy's: :func:`airflow_provider_bolna.failures.means_not_ready`.

Imports neither Airflow nor httpx.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_bolna.exceptions import BolnaNotFoundError
from airflow_provider_bolna.models import PhoneNumber, SIPTrunk, number_key

__all__ = [
    "DEFER_GRACE_SECONDS",
    "AgentCheck",
    "TrunkStatus",
    "evaluate_trunk",
    "needs_number_list",
    "not_ready",
    "trunk_ref",
]

#: How an expected mapping looked: shown and right, not shown at all, or shown and wrong (yet).
AgentCheck = Literal["verified", "unverifiable", "mismatch"]

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
    :param agents: for each visible number of ``expect_agents``: ``verified``, ``unverifiable``
        (its entry carries no ``agent_id``) or ``mismatch`` (another agent, or none, for now);
        ``None`` when no mapping was expected.
    """

    done: bool
    message: str
    trunk_id: str | None = None
    name: str | None = None
    is_active: bool | None = None
    numbers: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    agents: dict[str, AgentCheck] | None = None

    def to_xcom(self) -> dict[str, Any]:
        """Small, secret-free summary (the sensor's return value; ``agents`` when expected)."""
        xcom: dict[str, Any] = {
            "trunk_id": self.trunk_id,
            "name": self.name,
            "is_active": self.is_active,
            "numbers": list(self.numbers),
        }
        if self.agents is not None:
            xcom["agents"] = dict(self.agents)
        return xcom


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
    expect_agents: Mapping[str, str] | None = None,
) -> TrunkStatus:
    """Decide readiness from what the API returned.

    :param trunk: the trunk, or ``None`` when it does not exist (yet).
    :param numbers: the trunk's numbers (``None``: use those embedded in ``trunk``).
    :param expect_active: require ``is_active``.
    :param expect_numbers: numbers that must be visible (matched with or without ``+``).
    :param ref: how to name the trunk in messages.
    :param expect_agents: number → the agent that must answer it (the numbers must be visible;
        each mapping is checked where the number's entry carries ``agent_id``).
    """
    if trunk is None:
        return TrunkStatus(False, f"{ref} does not exist (yet)")
    expect_agents = expect_agents or {}
    seen = [n for n in (numbers if numbers is not None else trunk.phone_numbers) if not n.deleted]
    by_key = {n.key: n for n in seen}
    missing = [n for n in _expected_numbers(expect_numbers, expect_agents) if number_key(n) not in by_key]
    agents = {
        n: _agent_check(by_key[number_key(n)], agent)
        for n, agent in expect_agents.items()
        if number_key(n) in by_key
    }
    status = TrunkStatus(
        False,
        "",
        trunk_id=trunk.id,
        name=trunk.name,
        is_active=trunk.is_active,
        numbers=[n.phone_number for n in seen],
        missing=missing,
        agents=agents if expect_agents else None,
    )
    problems = []
    if expect_active and not trunk.is_active:
        problems.append("is not active")
    if missing:
        problems.append(f"does not show number(s) {', '.join(missing)} yet")
    wrong = [
        f"{n} ({_agent_of(by_key[number_key(n)])}, expected {expect_agents[n]})"
        for n, check in agents.items()
        if check == "mismatch"
    ]
    if wrong:
        problems.append(f"does not map number(s) {', '.join(wrong)} to their agent yet")
    if problems:
        status.message = f"trunk {trunk.id} ({trunk.name}) {' and '.join(problems)}"
    else:
        status.done = True
        expected = (
            len(_expected_numbers(expect_numbers, expect_agents)) if expect_agents else len(expect_numbers)
        )
        status.message = (
            f"trunk {trunk.id} ({trunk.name}) is ready"
            + (f" with {expected} expected number(s)" if expected else "")
            + _agents_summary(agents)
        )
    return status


def needs_number_list(
    trunk: SIPTrunk | None, expect_numbers: Sequence[str], expect_agents: Mapping[str, str] | None = None
) -> bool:
    """Whether the trunk's own ``phone_numbers`` miss an expected number, or show an expected
    mapping's number without ``agent_id`` (then list the numbers: that list may carry it)."""
    if trunk is None:
        return False
    by_key = {n.key: n for n in trunk.active_numbers}
    if any(number_key(str(n)) not in by_key for n in _expected_numbers(expect_numbers, expect_agents or {})):
        return True
    return any(not by_key[number_key(n)].agent_known for n in (expect_agents or {}))


def _expected_numbers(expect_numbers: Sequence[str], expect_agents: Mapping[str, str]) -> list[str]:
    """The numbers that must be visible: ``expect_numbers``, then the mapped ones (once each)."""
    keys: set[str] = set()
    out = []
    for n in [*map(str, expect_numbers), *expect_agents]:
        if number_key(n) not in keys:
            keys.add(number_key(n))
            out.append(n)
    return out


def _agent_check(number: PhoneNumber, agent_id: str) -> AgentCheck:
    if not number.agent_known:
        return "unverifiable"
    return "verified" if number.agent_id == agent_id else "mismatch"


def _agent_of(number: PhoneNumber) -> str:
    return f"agent {number.agent_id}" if number.agent_id else "no agent"


def _agents_summary(agents: Mapping[str, AgentCheck]) -> str:
    if not agents:
        return ""
    verified = sum(1 for c in agents.values() if c == "verified")
    unverifiable = len(agents) - verified
    text = f"; inbound agents: {verified} verified"
    if unverifiable:
        text += f", {unverifiable} unverifiable (the number list does not show agent_id)"
    return text


def not_ready(exc: BaseException, ref: str) -> TrunkStatus:
    """The status after an error that means "not ready yet" (a 404, or a transient failure).

    :param exc: the error (already retried by the hook).
    :param ref: how to name the trunk.
    """
    if isinstance(exc, BolnaNotFoundError):
        return TrunkStatus(False, f"{ref} does not exist (yet)")
    return TrunkStatus(False, f"could not check {ref} ({type(exc).__name__}: {exc}); will check again")
