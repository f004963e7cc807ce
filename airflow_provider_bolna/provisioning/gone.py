"""Old home of the gone-customer sweep; it lives in :mod:`.sweep`."""

from __future__ import annotations

from airflow_provider_bolna.provisioning.sweep import *
from airflow_provider_bolna.provisioning.sweep import __all__  # noqa: F401
