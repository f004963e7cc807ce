"""Old home of the demo customer table; it lives in :mod:`airflow_provider_bolna.sandbox.seed`
(demo data, kept apart from the product with the sandbox)."""

from __future__ import annotations

from airflow_provider_bolna.sandbox.seed import *
from airflow_provider_bolna.sandbox.seed import __all__, number_for  # noqa: F401
