"""DAG factories: one short DAG file per deployment.

::

    # dags/crm_bolna.py
    from airflow_provider_bolna.dags import bulk_provision_dag, customer_signup_dag

    settings = {"scope": "crm", "customers_conn_id": "crm_db", "query": "SELECT * FROM bolna_customers"}
    bulk_provision_dag("crm_bolna_bulk", **settings)
    customer_signup_dag("crm_bolna_signup", **settings)

Every deployment setting is an argument (see
:class:`~airflow_provider_bolna.provisioning.settings.Deployment`), validated when the file is
parsed — without any I/O — each error naming the argument. Several deployments are several
calls with different scopes.
"""

from __future__ import annotations

from airflow_provider_bolna.dags.bulk import bulk_provision_dag
from airflow_provider_bolna.dags.signup import SIGNUP_ASSET_URI, customer_signup_dag

__all__ = ["SIGNUP_ASSET_URI", "bulk_provision_dag", "customer_signup_dag"]
