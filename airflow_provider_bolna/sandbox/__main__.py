"""``python -m airflow_provider_bolna.sandbox`` runs the sandbox CLI."""

from airflow_provider_bolna.sandbox.cli import main

main()
