"""The sign-up DAG of this repository's deployment: one customer per REST trigger or asset event."""

from airflow_provider_bolna.dags import customer_signup_dag

customer_signup_dag(
    "bolna_customer_signup",
    scope="bolna",
    customers_conn_id="bolna_customers",
    settings_variable="bolna_provisioning",
)
