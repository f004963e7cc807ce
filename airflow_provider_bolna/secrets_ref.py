"""Old home of password references; they live in :mod:`airflow_provider_bolna.secrets.refs`."""

from __future__ import annotations

from airflow_provider_bolna.secrets.refs import *
from airflow_provider_bolna.secrets.refs import __all__  # noqa: F401
