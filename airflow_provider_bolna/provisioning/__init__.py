"""Bulk provisioning of SIP trunks from a customer database: plan → apply → record.

Independent of Airflow's task API: the DAG factories (:mod:`airflow_provider_bolna.dags`) call
it through :mod:`.tasks`, and so can tests, benchmarks and
``python -m airflow_provider_bolna.provisioning``. :mod:`.engine` lists the layers.

Import-light on purpose: nothing is imported until a name is used.
"""

from __future__ import annotations

from typing import Any

#: public name → module that defines it
_EXPORTS = {
    "Deployment": "settings",
    "RunOptions": "settings",
    "SettingsError": "settings",
    "ProvisionOptions": "settings",
    "DeletionBudget": "run",
    "RunPlan": "run",
    "plan_run": "run",
    "plan_batches": "run",
    "provision_batch": "batch",
    "aprovision_batch": "batch",
    "provision_customers": "batch",
    "deprovision_gone": "sweep",
    "adeprovision_gone": "sweep",
    "GoneLimitExceeded": "sweep",
    "BatchSummary": "summary",
    "summarize": "summary",
    "format_summary": "summary",
}
__all__ = [
    "BatchSummary",
    "DeletionBudget",
    "Deployment",
    "GoneLimitExceeded",
    "ProvisionOptions",
    "RunOptions",
    "RunPlan",
    "SettingsError",
    "adeprovision_gone",
    "aprovision_batch",
    "deprovision_gone",
    "format_summary",
    "plan_batches",
    "plan_run",
    "provision_batch",
    "provision_customers",
    "summarize",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
