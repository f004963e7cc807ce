"""The deferrable wait for a SIP trunk to be ready: :class:`SIPTrunkTrigger`.

"Ready" is :mod:`airflow_provider_bolna.readiness`'s (exists, active when asked, expected
numbers visible, expected inbound agents mapped where the API shows them), checked with the hook's ``acheck_trunk_ready`` (GET requests only), exactly as
the sensor's poke mode does. Errors follow :mod:`airflow_provider_bolna.failures`: transient
ones and "not found yet" mean *not ready, keep polling*; anything else ends the wait with an
error event that the task turns into the same outcome as in poke mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.failures import error_event
from airflow_provider_bolna.models import parse_number_agents
from airflow_provider_bolna.readiness import TrunkStatus, trunk_ref

if TYPE_CHECKING:
    from airflow_provider_bolna.hooks.bolna import BolnaHook

__all__ = ["SIPTrunkTrigger"]


class SIPTrunkTrigger(BaseTrigger):
    """Poll a SIP trunk (GET only) until it is ready or ``deadline`` passes.

    Safe to restart at any time: it only reads, so a triggerer restart never re-sends a write.
    Yields exactly one event ``{"status": "success"|"timeout"|"error", "message": ...,
    "trunk_id": ...}`` (success/timeout also carry ``name``, ``is_active``, ``numbers``,
    ``missing``, and ``agents`` when ``expect_agents`` is given; error carries ``error_type`` and
    ``retryable``, false when no retry can fix it).

    :param trunk_id: the trunk's id (or give ``trunk_name``).
    :param trunk_name: the trunk's name, looked up on each check.
    :param expect_active: require ``is_active``.
    :param expect_numbers: numbers that must be visible on the trunk.
    :param expect_agents: number → the agent that must answer it (verified where the number list
        shows ``agent_id``, else reported as ``unverifiable``).
    :param poll_interval: seconds between checks.
    :param deadline: absolute deadline, epoch seconds (UTC). At least one check is made.
    :param bolna_conn_id: the Bolna connection.
    """

    def __init__(
        self,
        *,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
        expect_active: bool = True,
        expect_numbers: Sequence[str] | None = None,
        poll_interval: float = 5.0,
        deadline: float,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        expect_agents: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        if bool(trunk_id) == bool(trunk_name):
            raise ValueError("SIPTrunkTrigger needs exactly one of trunk_id and trunk_name")
        self.trunk_id = str(trunk_id) if trunk_id else None
        self.trunk_name = str(trunk_name) if trunk_name else None
        self.expect_active = bool(expect_active)
        self.expect_numbers = [str(n) for n in (expect_numbers or [])]
        self.expect_agents = parse_number_agents(expect_agents, "expect_agents")
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.bolna_conn_id = bolna_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-only kwargs; ``SIPTrunkTrigger(**kwargs)`` rebuilds it."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "trunk_id": self.trunk_id,
                "trunk_name": self.trunk_name,
                "expect_active": self.expect_active,
                "expect_numbers": list(self.expect_numbers),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "bolna_conn_id": self.bolna_conn_id,
                "expect_agents": dict(self.expect_agents),
            },
        )

    def _hook(self) -> BolnaHook:
        from airflow_provider_bolna.hooks.bolna import BolnaHook

        return BolnaHook(bolna_conn_id=self.bolna_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check, sleep ``poll_interval``, repeat; one event at the end."""
        hook = self._hook()
        ref = trunk_ref(self.trunk_id, self.trunk_name)
        try:
            while True:
                try:
                    status = await hook.acheck_trunk_ready(
                        trunk_id=self.trunk_id,
                        trunk_name=self.trunk_name,
                        expect_active=self.expect_active,
                        expect_numbers=self.expect_numbers,
                        expect_agents=self.expect_agents,
                    )
                except Exception as exc:  # noqa: BLE001 - what check_trunk_ready raises ends the wait
                    self.log.error("Checking %s failed: %s", ref, exc)
                    yield TriggerEvent(error_event(exc, ref, self.trunk_id))
                    return
                if status.done:
                    self.log.info("%s", status.message)
                    yield TriggerEvent(self._payload("success", status))
                    return
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    self.log.info("Deadline passed: %s", status.message)
                    yield TriggerEvent(self._payload("timeout", status, prefix="deadline passed: "))
                    return
                self.log.info(
                    "%s; checking again in %.1fs", status.message, min(self.poll_interval, remaining)
                )
                await asyncio.sleep(min(self.poll_interval, remaining))
        finally:
            try:
                await hook.aclose()
            except Exception as exc:  # noqa: BLE001 - closing must not replace the event
                self.log.debug("Closing the Bolna client failed: %s", exc)

    def _payload(self, kind: str, status: TrunkStatus, prefix: str = "") -> dict[str, Any]:
        payload = {
            "status": kind,
            "message": prefix + status.message,
            "trunk_id": status.trunk_id or self.trunk_id,
            "name": status.name,
            "is_active": status.is_active,
            "numbers": list(status.numbers),
            "missing": list(status.missing),
        }
        if status.agents is not None:
            payload["agents"] = dict(status.agents)
        return payload
