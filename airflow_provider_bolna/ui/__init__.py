"""The provisioning page: an Airflow plugin showing each deployment's customers, trunks, failures
and pending deletions, read-only (see ``docs/ui.md``).

Nothing is imported here: Airflow loads :mod:`.plugin` through the ``airflow.plugins`` entry
point in every process, and only the API server builds the web app (:mod:`.app`).
"""
