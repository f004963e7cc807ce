"""The engine's public API in one import (the modules below it each hold one step).

Everything takes connection ids or hooks; nothing needs an Airflow task context::

    from airflow_provider_bolna.provisioning import (
        ProvisionOptions, deprovision_gone, format_summary, plan_run, provision_batch, summarize)

    options = ProvisionOptions(scope="crm", deprovision=True)
    run = plan_run("bolna_customers", "SELECT * FROM customers", options=options, batch_size=500)
    summaries = [provision_batch("bolna_customers", query, b, options=options) for b in run.batches]
    summaries.append(deprovision_gone("bolna_customers", query, keys=run.gone, options=options))
    print(format_summary(summarize(summaries, budget=run.budget)))

Layers, each calling only downwards:

* :mod:`.settings` — deployment settings, run options, the engine's options;
* :mod:`.db` → :mod:`.source` (customer query), :mod:`.state` (state table), :mod:`.leases`;
* :mod:`.mapping` (rows → specs) → :mod:`.plan` (specs vs state vs API) → :mod:`.results`;
* :mod:`.apply` (the plan on the async hook) → :mod:`.record` (results → state rows);
* :mod:`.summary` (batch and run summaries);
* :mod:`.batch` (one batch), :mod:`.run` (batches and the deletion budget), :mod:`.sweep`
  (customers gone from the query);
* :mod:`.tasks` — the Airflow task adapters the DAG factories call.
"""

from __future__ import annotations

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.provisioning.apply import abatch_hook
from airflow_provider_bolna.provisioning.batch import aprovision_batch, provision_batch, provision_customers
from airflow_provider_bolna.provisioning.options import ProvisionOptions
from airflow_provider_bolna.provisioning.record import apply_and_record, mark_pending
from airflow_provider_bolna.provisioning.run import DeletionBudget, RunPlan, plan_batches, plan_run
from airflow_provider_bolna.provisioning.summary import BatchSummary, format_summary, summarize

__all__ = [
    "DEFAULT_BOLNA_CONN_ID",
    "BatchSummary",
    "DeletionBudget",
    "ProvisionOptions",
    "RunPlan",
    "abatch_hook",
    "apply_and_record",
    "aprovision_batch",
    "format_summary",
    "mark_pending",
    "plan_batches",
    "plan_run",
    "provision_batch",
    "provision_customers",
    "summarize",
]

#: old name of :data:`airflow_provider_bolna.DEFAULT_CONN_ID`
DEFAULT_BOLNA_CONN_ID = DEFAULT_CONN_ID
