"""Extra link from a task to the SIP trunk's page in Bolna's dashboard.

In Airflow 3 the worker computes links in ``finalize()`` (after success, failure *and*
deferral) and stores them as XCom ``_link_BolnaSIPTrunkLink``. Operators that know a trunk
push its URL to XCom key :data:`TRUNK_URL_XCOM_KEY` before they may defer, so the link is
there while the task waits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

    from airflow_provider_bolna.hooks.bolna import BolnaHook

__all__ = ["TRUNK_ID_XCOM_KEY", "TRUNK_URL_XCOM_KEY", "BolnaSIPTrunkLink", "push_trunk"]

#: XCom key holding the dashboard URL of the trunk a task works on.
TRUNK_URL_XCOM_KEY = "bolna_trunk_url"
#: XCom key holding the id of the trunk a task works on (``task.output["trunk_id"]``).
TRUNK_ID_XCOM_KEY = "trunk_id"


class BolnaSIPTrunkLink(BaseOperatorLink):
    """ "Bolna trunk" button: opens the trunk in Bolna's dashboard (base = connection extra ``dashboard_url``)."""

    name = "Bolna trunk"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task pushed to XCom ``bolna_trunk_url``, or ``""`` when it has none yet."""
        url = XCom.get_value(key=TRUNK_URL_XCOM_KEY, ti_key=ti_key)
        return url if isinstance(url, str) else ""


def push_trunk(
    context: Mapping[str, Any], hook: BolnaHook, trunk_id: str | None, log: logging.Logger | Any
) -> None:
    """Push XCom ``trunk_id`` and the trunk's dashboard URL (``bolna_trunk_url``, the link's).

    Without an id, pushes an empty URL: the link is then blank instead of the worker logging
    "XCom not found" when it computes links after a failure or while the task is deferred. A
    URL that cannot be built is logged, never raised (a link must never fail the task).

    :param context: the task context (its ``ti`` pushes).
    :param hook: the Bolna hook (its connection's ``dashboard_url``).
    :param trunk_id: the trunk, or ``None`` while it is unknown.
    :param log: where to warn.
    """
    ti = context["ti"]
    if not trunk_id:
        ti.xcom_push(key=TRUNK_URL_XCOM_KEY, value="")
        return
    ti.xcom_push(key=TRUNK_ID_XCOM_KEY, value=trunk_id)
    try:
        url = hook.trunk_url(trunk_id)
    except Exception as exc:  # noqa: BLE001 - a link must never fail the task
        log.warning("Could not build the dashboard link of trunk %s: %s", trunk_id, exc)
        return
    ti.xcom_push(key=TRUNK_URL_XCOM_KEY, value=url)
