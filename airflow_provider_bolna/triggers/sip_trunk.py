"""Wait until a SIP trunk is ready: the shared check, and the deferrable trigger.

"Ready" means: the trunk exists (looked up by id or by name), is active when asked, and
every expected phone number is visible on it (new numbers can take seconds to show in
reads). :func:`evaluate_trunk` decides from what the API returned; :func:`check_trunk` and
:func:`acheck_trunk` fetch it with GET requests only (sync for the sensor's poke and the
create operator's synchronous wait, async for the trigger), so poke mode and deferrable mode
have the same semantics.

Errors while checking: transient ones (429, 5xx, timeouts — already retried by the hook)
and "not found yet" mean *not ready, keep polling*; anything else (bad key, malformed id)
is raised by the check and ends the wait with an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bolna.exceptions import BolnaAuthError, BolnaTrunkNotReadyError
from airflow_provider_bolna.hooks.bolna import TrunkStatus, evaluate_trunk, trunk_ref
from airflow_provider_bolna.triggers import validate_event

if TYPE_CHECKING:
    from airflow_provider_bolna.hooks.bolna import BolnaHook

__all__ = [
    "BolnaTrunkNotReadyError",
    "SIPTrunkTrigger",
    "TrunkStatus",
    "acheck_trunk",
    "check_trunk",
    "evaluate_trunk",
    "validate_event",
]



def check_trunk(hook: BolnaHook, **kwargs: Any) -> TrunkStatus:
    """Check readiness with GET requests (sync); see :meth:`BolnaHook.check_trunk_ready`."""
    return hook.check_trunk_ready(**kwargs)


async def acheck_trunk(hook: BolnaHook, **kwargs: Any) -> TrunkStatus:
    """Async twin of :func:`check_trunk` (GET requests only)."""
    return await hook.acheck_trunk_ready(**kwargs)


class SIPTrunkTrigger(BaseTrigger):
    """Poll a SIP trunk (GET only) until it is ready or ``deadline`` passes.

    Safe to restart at any time: it only reads, so a triggerer restart never re-sends a write.
    Yields exactly one event ``{"status": "success"|"timeout"|"error", "message": ...,
    "trunk_id": ...}`` (success/timeout also carry ``name``, ``is_active``, ``numbers``,
    ``missing``; error carries ``error_type`` and ``retryable``).

    :param trunk_id: the trunk's id (or give ``trunk_name``).
    :param trunk_name: the trunk's name, looked up on each check.
    :param expect_active: require ``is_active``.
    :param expect_numbers: numbers that must be visible on the trunk.
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
        bolna_conn_id: str = "bolna_default",
    ) -> None:
        super().__init__()
        if bool(trunk_id) == bool(trunk_name):
            raise ValueError("SIPTrunkTrigger needs exactly one of trunk_id and trunk_name")
        self.trunk_id = str(trunk_id) if trunk_id else None
        self.trunk_name = str(trunk_name) if trunk_name else None
        self.expect_active = bool(expect_active)
        self.expect_numbers = [str(n) for n in (expect_numbers or [])]
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
                    status = await acheck_trunk(
                        hook, trunk_id=self.trunk_id, trunk_name=self.trunk_name,
                        expect_active=self.expect_active, expect_numbers=self.expect_numbers,
                    )
                except Exception as exc:  # noqa: BLE001 - any non-transient failure ends the wait
                    self.log.error("Checking %s failed: %s", ref, exc)
                    yield TriggerEvent({
                        "status": "error",
                        "message": f"checking {ref} failed: {type(exc).__name__}: {exc}",
                        "trunk_id": self.trunk_id,
                        "error_type": type(exc).__name__,
                        "retryable": bool(getattr(exc, "retryable", False)) and not isinstance(exc, BolnaAuthError),
                    })
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
                self.log.info("%s; checking again in %.1fs", status.message, min(self.poll_interval, remaining))
                await asyncio.sleep(min(self.poll_interval, remaining))
        finally:
            try:
                await hook.aclose()
            except Exception as exc:  # noqa: BLE001 - closing must not replace the event
                self.log.debug("Closing the Bolna client failed: %s", exc)

    def _payload(self, kind: str, status: TrunkStatus, prefix: str = "") -> dict[str, Any]:
        return {
            "status": kind,
            "message": prefix + status.message,
            "trunk_id": status.trunk_id or self.trunk_id,
            "name": status.name,
            "is_active": status.is_active,
            "numbers": list(status.numbers),
            "missing": list(status.missing),
        }
