"""What both DAG factories share: turning arguments into a validated deployment."""

from __future__ import annotations

from typing import Any

from airflow_provider_bolna.provisioning.settings import Deployment

__all__ = ["DEFAULT_POOL", "build_deployment"]

#: the pool every provisioning task that sends requests takes a slot of
DEFAULT_POOL = "bolna_api"


def build_deployment(factory: str, dag_id: str, scope: str | None, settings: dict[str, Any]) -> Deployment:
    """The deployment of a DAG factory call, validated at parse time.

    :param factory: the factory's name, for messages.
    :param dag_id: the DAG id (the default scope).
    :param scope: the ownership scope (default: ``dag_id``).
    :param settings: the remaining keyword arguments: deployment settings.
    :raises SettingsError: a bad or unknown argument, named.
    """
    return Deployment.build({"scope": scope or dag_id, **settings}, source=f"{factory}({dag_id!r}) argument")
