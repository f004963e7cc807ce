"""Bulk provisioning of SIP trunks from a customer database: plan → apply → record.

Independent of Airflow's task API: the DAGs in ``dags/`` and the operators in
:mod:`airflow_provider_bolna.operators.provisioning` call it, and so can tests, benchmarks and
``python -m airflow_provider_bolna.provisioning``. Modules:

* :mod:`.mapping` — the column contract: one customer row → a :class:`~..models.TrunkSpec`;
* :mod:`.source` — keyset-paged reading of the customer query through common-sql;
* :mod:`.state` — the ``bolna_provisioning_state`` table (SQLite and PostgreSQL);
* :mod:`.plan` — desired vs recorded vs actual → a printable, secret-free plan;
* :mod:`.apply` — the plan on the async hook, bounded concurrency, one rate budget;
* :mod:`.engine` — the glue: :func:`~.engine.plan_batches`, :func:`~.engine.provision_batch`;
* :mod:`.gone` — :func:`~.gone.deprovision_gone`: customers no longer returned by the query;
* :mod:`.summary` — batch and run summaries, :func:`~.summary.format_summary`;
* :mod:`.masking` — registering many passwords with the log masker at once;
* :mod:`.seed` — a realistic demo/test customer table.

Import-light on purpose: nothing is imported until a name is used.
"""

from __future__ import annotations

from typing import Any

#: public name → module that defines it
_EXPORTS = {
    "ProvisionOptions": "engine",
    "plan_batches": "engine",
    "provision_batch": "engine",
    "aprovision_batch": "engine",
    "provision_customers": "engine",
    "deprovision_gone": "gone",
    "adeprovision_gone": "gone",
    "GoneLimitExceeded": "gone",
    "BatchSummary": "summary",
    "summarize": "summary",
    "format_summary": "summary",
}
__all__ = [
    "BatchSummary",
    "GoneLimitExceeded",
    "ProvisionOptions",
    "adeprovision_gone",
    "aprovision_batch",
    "deprovision_gone",
    "format_summary",
    "plan_batches",
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
