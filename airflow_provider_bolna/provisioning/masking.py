"""Old home of bulk masking; it lives in :mod:`airflow_provider_bolna.secrets.masker`."""

from __future__ import annotations

from airflow_provider_bolna.secrets.masker import *
from airflow_provider_bolna.secrets.masker import __all__, _bulk_add  # noqa: F401
