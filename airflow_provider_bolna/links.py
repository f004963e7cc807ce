"""Extra link from a task to the SIP trunk's page in Bolna's dashboard.

In Airflow 3 the worker computes links in ``finalize()`` (after success, failure *and*
deferral) and stores them as XCom ``_link_BolnaSIPTrunkLink``. Operators that know a trunk
push its URL to XCom key :data:`TRUNK_URL_XCOM_KEY` before they may defer, so the link is
there while the task waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

__all__ = ["TRUNK_ID_XCOM_KEY", "TRUNK_URL_XCOM_KEY", "BolnaSIPTrunkLink"]

#: XCom key holding the dashboard URL of the trunk a task works on.
TRUNK_URL_XCOM_KEY = "bolna_trunk_url"
#: XCom key holding the id of the trunk a task works on (``task.output["trunk_id"]``).
TRUNK_ID_XCOM_KEY = "trunk_id"


class BolnaSIPTrunkLink(BaseOperatorLink):
    """"Bolna trunk" button: opens the trunk in Bolna's dashboard (base = connection extra ``dashboard_url``)."""

    name = "Bolna trunk"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task pushed to XCom ``bolna_trunk_url``, or ``""`` when it has none yet."""
        url = XCom.get_value(key=TRUNK_URL_XCOM_KEY, ti_key=ti_key)
        return url if isinstance(url, str) else ""
