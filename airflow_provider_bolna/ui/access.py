"""Who may see a deployment: Airflow's own auth manager decides, per DAG.

A user sees a deployment only when the auth manager lets them read each of its DAGs (the bulk
DAG and, when configured, the sign-up DAG) and those DAGs' runs — the same rights the Airflow UI
asks before it shows a DAG's grid. The pending deletions (read from the plan's XComs) also need
the right to read the bulk DAG's XComs. Multi-team deployments pass each DAG's team, as
Airflow's own ``requires_access_dag`` does.

The user comes from Airflow's ``get_user`` dependency (``GetUserDep``): the ``Authorization:
Bearer`` header, else the UI's ``_token`` cookie. No token: 401; a bad token: 403.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.models.dag import DagModel
from sqlalchemy.orm import Session

from airflow_provider_bolna.ui.config import UIDeployment

__all__ = ["can_read", "readable"]

#: What reading a deployment takes, per DAG: the DAG itself and its runs.
_DEPLOYMENT_ACCESS: tuple[DagAccessEntity | None, ...] = (None, DagAccessEntity.RUN)


def _requests(
    dag_ids: Sequence[str], entities: Sequence[DagAccessEntity | None], teams: dict[str, str | None]
) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = []
    for dag_id in dag_ids:
        for entity in entities:
            request: dict[str, Any] = {
                "method": "GET",
                "details": DagDetails(id=dag_id, team_name=teams.get(dag_id)),
            }
            if entity is not None:
                request["access_entity"] = entity
            requests.append(request)
    return requests


def _teams(session: Session, dag_ids: Sequence[str]) -> dict[str, str | None]:
    return DagModel.get_dag_id_to_team_name_mapping(list(dag_ids), session=session)


def can_read(
    user: Any,
    deployment: UIDeployment,
    session: Session,
    *,
    entities: Sequence[DagAccessEntity | None] = _DEPLOYMENT_ACCESS,
    bulk_only: bool = False,
) -> bool:
    """Whether ``user`` may read every DAG of ``deployment`` (and these entities of it).

    :param entities: what must be readable on each DAG (``None`` = the DAG itself).
    :param bulk_only: ask about the bulk DAG only (its XComs hold the plan).
    """
    dag_ids = (deployment.dag_id,) if bulk_only else deployment.dag_ids
    requests = _requests(dag_ids, entities, _teams(session, dag_ids))
    return bool(get_auth_manager().batch_is_authorized_dag(requests, user=user))  # type: ignore[arg-type]


def readable(user: Any, deployments: Sequence[UIDeployment], session: Session) -> list[UIDeployment]:
    """The deployments ``user`` may see, in configuration order."""
    if not deployments:
        return []
    teams = _teams(session, [d for dep in deployments for d in dep.dag_ids])
    manager = get_auth_manager()
    return [
        dep
        for dep in deployments
        if manager.batch_is_authorized_dag(
            _requests(dep.dag_ids, _DEPLOYMENT_ACCESS, teams),  # type: ignore[arg-type]
            user=user,
        )
    ]
