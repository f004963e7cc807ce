"""Old home of the provisioning task callables; they live in
:mod:`airflow_provider_bolna.provisioning.tasks` (and the DAGs in
:mod:`airflow_provider_bolna.dags`).

The callables now take the deployment (the DAG author's settings) as their first argument:
a run's params can no longer choose the query, connections, tables or limits.
"""

from __future__ import annotations

from airflow_provider_bolna.provisioning.tasks import *
from airflow_provider_bolna.provisioning.tasks import __all__  # noqa: F401
