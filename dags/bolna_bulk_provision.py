"""The bulk provisioning DAG of this repository's deployment (``make demo`` runs it).

Every setting is the DAG author's, here; an admin may override them in the Variable
``bolna_provisioning`` (a JSON object). A run's conf may set only the params of the form.
"""

from airflow_provider_bolna.dags import bulk_provision_dag

bulk_provision_dag(
    "bolna_bulk_provision",
    scope="bolna",
    customers_conn_id="bolna_customers",
    settings_variable="bolna_provisioning",
)
