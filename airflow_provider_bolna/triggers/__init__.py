"""Triggers. The event contract lives here so that operators can read trigger events without
importing core Airflow's trigger machinery at DAG-parse time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_bolna.exceptions import BolnaError

if TYPE_CHECKING:
    from airflow_provider_bolna.triggers.sip_trunk import SIPTrunkTrigger

__all__ = ["EVENT_STATUSES", "sip_trunk_trigger", "validate_event"]

#: The statuses a :class:`~airflow_provider_bolna.triggers.sip_trunk.SIPTrunkTrigger` event carries.
EVENT_STATUSES = ("success", "timeout", "error")


def validate_event(event: Any) -> dict[str, Any]:
    """Check a :class:`SIPTrunkTrigger` event payload; raise :class:`BolnaError` if malformed."""
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise BolnaError(f"unexpected event from SIPTrunkTrigger: {event!r}")
    return event


def sip_trunk_trigger(**kwargs: Any) -> SIPTrunkTrigger:
    """Build a :class:`~airflow_provider_bolna.triggers.sip_trunk.SIPTrunkTrigger`.

    The import happens only when a task defers: the trigger module pulls in core Airflow's
    trigger machinery, which parsing a DAG does not need.
    """
    from airflow_provider_bolna.triggers.sip_trunk import SIPTrunkTrigger

    return SIPTrunkTrigger(**kwargs)
