"""Sensor: wait until a SIP trunk exists, is active, shows the expected numbers and (where the API
shows it) maps them to the expected inbound agents."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.failures import bolna_error_policy, raise_for_error_event
from airflow_provider_bolna.hooks.bolna import BolnaHook
from airflow_provider_bolna.links import BolnaSIPTrunkLink, push_trunk
from airflow_provider_bolna.models import parse_number_agents
from airflow_provider_bolna.readiness import DEFER_GRACE_SECONDS, TrunkStatus
from airflow_provider_bolna.triggers import sip_trunk_trigger, validate_event

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["SIPTrunkSensor"]


class SIPTrunkSensor(BaseSensorOperator):
    """Wait until a SIP trunk exists, is active (if asked) and every expected number is on it.

    Poke mode and deferrable mode share one check
    (:meth:`~airflow_provider_bolna.hooks.bolna.BolnaHook.check_trunk_ready`) and one failure policy
    (:mod:`airflow_provider_bolna.failures`): transient API errors and "not found (yet)" mean *not
    ready yet*; a permanent error (refused key, invalid id, ...) fails the task without retries;
    any other error fails this try, so the task's retries apply.
    Deferrable: pokes once, then defers to :class:`SIPTrunkTrigger` with the absolute deadline
    ``start + timeout``; a passed deadline raises ``AirflowSensorTimeout`` (``soft_fail`` applies).

    Inbound agents (``expect_agents``): a number whose entry in the trunk's number list carries
    ``agent_id`` must show the expected agent (another one, or none, means not ready yet); where
    the list carries no ``agent_id`` the mapping cannot be read back and is reported as
    ``unverifiable`` (never waited for).

    Returns (XCom) ``{"trunk_id", "name", "is_active", "numbers"}``, plus ``"agents": {number:
    "verified" | "unverifiable"}`` when ``expect_agents`` is given; pushes XCom ``trunk_id`` and
    ``bolna_trunk_url`` as soon as the trunk is found.

    :param trunk_id: the trunk's id (templated), or give ``trunk_name``.
    :param trunk_name: the trunk's name (templated), looked up on every check.
    :param expect_active: require the trunk to be active.
    :param expect_numbers: numbers that must be visible on the trunk (templated).
    :param expect_agents: number → the agent id that must answer it (templated; the numbers must
        be visible too).
    :param bolna_conn_id: the Bolna connection (templated).
    :param deferrable: wait in the triggerer instead of on a worker slot.
    :param poll_interval: seconds between checks (sets ``poke_interval``).
    """

    template_fields: Sequence[str] = (
        "trunk_id",
        "trunk_name",
        "expect_numbers",
        "expect_agents",
        "bolna_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"expect_numbers": "json", "expect_agents": "json"}
    operator_extra_links = (BolnaSIPTrunkLink(),)

    def __init__(
        self,
        *,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
        expect_active: bool = True,
        expect_numbers: Sequence[str] | None = None,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        expect_agents: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        if trunk_id is None and trunk_name is None:
            raise ValueError("SIPTrunkSensor needs trunk_id or trunk_name")
        if trunk_id is not None and trunk_name is not None:
            raise ValueError("SIPTrunkSensor takes trunk_id or trunk_name, not both")
        self.trunk_id = trunk_id
        self.trunk_name = trunk_name
        self.expect_active = expect_active
        self.expect_numbers = expect_numbers if expect_numbers is not None else []
        self.expect_agents = expect_agents if expect_agents is not None else {}
        self.bolna_conn_id = bolna_conn_id
        self.deferrable = deferrable
        self._pushed_trunk_id: str | None = None

    @cached_property
    def hook(self) -> BolnaHook:
        """The Bolna hook for :attr:`bolna_conn_id`."""
        return BolnaHook(bolna_conn_id=self.bolna_conn_id)

    def _expect_numbers(self) -> list[str]:
        numbers = self.expect_numbers
        if isinstance(numbers, str):
            numbers = [numbers]
        return [str(n) for n in (numbers or [])]

    def _check(self, context: Context) -> TrunkStatus:
        with bolna_error_policy(self.bolna_conn_id):
            status = self.hook.check_trunk_ready(
                trunk_id=str(self.trunk_id) if self.trunk_id else None,
                trunk_name=str(self.trunk_name) if self.trunk_name else None,
                expect_active=self.expect_active,
                expect_numbers=self._expect_numbers(),
                expect_agents=parse_number_agents(self.expect_agents, "expect_agents"),
            )
        self.log.info("%s", status.message)
        if status.trunk_id and status.trunk_id != self._pushed_trunk_id:
            self._push_trunk(context, status.trunk_id)
        return status

    def _push_trunk(self, context: Context, trunk_id: str | None) -> None:
        """Push XCom ``trunk_id`` and ``bolna_trunk_url`` (blank while the trunk is unknown)."""
        self._pushed_trunk_id = trunk_id
        push_trunk(context, self.hook, trunk_id, self.log)

    def poke(self, context: Context) -> PokeReturnValue:
        """One check (GET requests only)."""
        status = self._check(context)
        return PokeReturnValue(is_done=status.done, xcom_value=status.to_xcom() if status.done else None)

    def execute(self, context: Context) -> Any:
        started = time.time()
        # the link is known before any check when waiting by id
        self._push_trunk(context, str(self.trunk_id) if self.trunk_id else None)
        if not self.deferrable:
            return super().execute(context)
        status = self._check(context)
        if status.done:
            return status.to_xcom()
        deadline = started + float(self.timeout)
        self.log.info("Deferring; deadline in %.0fs", deadline - time.time())
        self.defer(
            trigger=sip_trunk_trigger(
                trunk_id=str(self.trunk_id) if self.trunk_id else None,
                trunk_name=str(self.trunk_name) if self.trunk_name else None,
                expect_active=self.expect_active,
                expect_numbers=self._expect_numbers(),
                expect_agents=parse_number_agents(
                    self.expect_agents, "expect_agents"
                ),  # checked by the poke above
                poll_interval=float(self.poke_interval),
                deadline=deadline,
                bolna_conn_id=self.bolna_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + DEFER_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after :class:`SIPTrunkTrigger`: the trunk summary, or raise."""
        event = validate_event(event)
        if event.get("trunk_id"):
            self._push_trunk(context, str(event["trunk_id"]))
        if event["status"] == "success":
            self.log.info("%s", event["message"])
            xcom = {
                "trunk_id": event.get("trunk_id"),
                "name": event.get("name"),
                "is_active": event.get("is_active"),
                "numbers": list(event.get("numbers") or []),
            }
            if isinstance(event.get("agents"), dict):
                xcom["agents"] = dict(event["agents"])
            return xcom
        if event["status"] == "timeout":
            raise AirflowSensorTimeout(f"Sensor has timed out: {event['message']}")
        raise_for_error_event(event, self.bolna_conn_id)
