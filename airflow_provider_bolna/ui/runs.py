"""What Airflow's metadata database knows of a deployment: its last runs and its last plan.

Read through the API server's own session (the page runs inside the API server). Every query
is bounded by ``LIMIT`` and served by one of Airflow's indexes (``dag_run``: ``dag_id``, unique
``(dag_id, run_id)``; ``xcom``: primary key ``(dag_run_id, task_id, map_index, key)``).

The pending deletions come from the last plan the bulk DAG made (its ``plan_batches`` task's
XComs: the batches with the churned keys each may delete, the keys gone from the query, the
deletion budget). The page does not run the customer query itself: see ``docs/ui.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_provider_bolna.provisioning.db import IN_CHUNK
from airflow_provider_bolna.provisioning.run import DeletionBudget
from airflow_provider_bolna.provisioning.tasks import BUDGET_XCOM_KEY, GONE_XCOM_KEY

__all__ = ["PLAN_LOOK_BACK", "PLAN_TASK_ID", "LastPlan", "RunInfo", "find_runs", "last_plan", "latest_run"]

log = logging.getLogger(__name__)

#: The bulk DAG's planning task (``dags/bulk.py``): its XComs are the plan.
PLAN_TASK_ID = "plan_batches"
#: How many of the bulk DAG's latest runs are searched for the last plan.
PLAN_LOOK_BACK = 25
_BUDGET_FIELDS = {f.name for f in fields(DeletionBudget)}


@dataclass(frozen=True)
class RunInfo:
    """One DAG run, as the page shows it."""

    dag_id: str
    run_id: str
    state: str | None
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None

    @classmethod
    def of(cls, run: Any) -> RunInfo:
        return cls(
            dag_id=run.dag_id,
            run_id=run.run_id,
            state=None if run.state is None else str(run.state),
            run_after=run.run_after,
            start_date=run.start_date,
            end_date=run.end_date,
        )

    @property
    def when(self) -> datetime | None:
        """When it ended, else started, else was due."""
        return self.end_date or self.start_date or self.run_after


@dataclass
class LastPlan:
    """The deletes the bulk DAG's latest plan made, and its budget.

    :param run: the run whose ``plan_batches`` made the plan.
    :param budget: the deletion budget (``None``: the plan kept none).
    :param churned: keys of churned customers the plan let its batches delete.
    :param gone: keys of customers gone from the query the plan let the sweep delete.
    :param withheld: the plan was over its budget: nothing was to be deleted, and the plan kept
        only the counts (the keys are known to a dry run).
    """

    run: RunInfo
    budget: DeletionBudget | None
    churned: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    withheld: bool = False

    @property
    def keys(self) -> list[str]:
        """Every key the plan would delete, churned first."""
        return list(dict.fromkeys([*self.churned, *self.gone]))


def latest_run(session: Session, dag_id: str) -> RunInfo | None:
    """The DAG's latest run (by ``run_after``), or ``None``."""
    run = session.scalars(
        select(DagRun)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(1)
    ).first()
    return None if run is None else RunInfo.of(run)


def find_runs(
    session: Session, dag_ids: tuple[str, ...], run_ids: Iterable[str | None]
) -> dict[str, RunInfo]:
    """The runs (of these DAGs) that wrote these state rows: ``run_id`` → run. Unknown ids are absent
    (a run Airflow no longer keeps, or a run of the engine outside Airflow)."""
    wanted = sorted({r for r in run_ids if r})
    found: dict[str, RunInfo] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        for run in session.scalars(
            select(DagRun)
            .where(DagRun.dag_id.in_(dag_ids), DagRun.run_id.in_(chunk))
            .order_by(DagRun.id)
            .limit(len(chunk) * len(dag_ids))
        ):
            found[run.run_id] = RunInfo.of(run)
    return found


def last_plan(session: Session, dag_id: str, look_back: int = PLAN_LOOK_BACK) -> LastPlan | None:
    """The plan of the latest of the DAG's last ``look_back`` runs that made one, or ``None``."""
    runs = session.scalars(
        select(DagRun)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(look_back)
    ).all()
    if not runs:
        return None
    by_id = {run.id: run for run in runs}
    rows = session.execute(
        select(XComModel.dag_run_id, XComModel.key, XComModel.value)
        .where(
            XComModel.dag_run_id.in_(list(by_id)),
            XComModel.task_id == PLAN_TASK_ID,
            XComModel.map_index == -1,
            XComModel.key.in_([BUDGET_XCOM_KEY, GONE_XCOM_KEY, "return_value"]),
        )
        .limit(3 * len(by_id))
    ).all()
    values: dict[int, dict[str, Any]] = {}
    for row in rows:
        values.setdefault(row.dag_run_id, {})[row.key] = XComModel.deserialize_value(row)
    for run in runs:  # newest first
        plan = values.get(run.id)
        if plan and BUDGET_XCOM_KEY in plan:
            return _plan(RunInfo.of(run), plan)
    return None


def _plan(run: RunInfo, xcoms: dict[str, Any]) -> LastPlan:
    budget = _budget(xcoms.get(BUDGET_XCOM_KEY))
    batches = xcoms.get("return_value")
    churned: list[str] = []
    withheld = bool(budget and budget.withheld)
    if isinstance(batches, list):
        for batch in batches:
            if isinstance(batch, dict):
                churned.extend(str(k) for k in batch.get("deletes") or ())
                withheld = withheld or bool(batch.get("deletes_withheld"))
    gone = xcoms.get(GONE_XCOM_KEY)
    return LastPlan(
        run=run,
        budget=budget,
        churned=churned,
        gone=[str(k) for k in gone] if isinstance(gone, list) else [],
        withheld=withheld,
    )


def _budget(value: Any) -> DeletionBudget | None:
    """The engine's :class:`DeletionBudget` back from its XCom form (derived keys dropped)."""
    if not isinstance(value, dict):
        return None
    try:
        return DeletionBudget(**{k: v for k, v in value.items() if k in _BUDGET_FIELDS})
    except TypeError:
        log.warning("The plan's deletion budget has an unexpected form; not shown")
        return None
