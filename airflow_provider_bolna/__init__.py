"""Apache Airflow provider for Bolna SIP trunks.

Kept import-light on purpose: Airflow imports this package while it discovers providers.
Import what you need from the submodules (``airflow_provider_bolna.hooks.bolna`` ...).
"""

from __future__ import annotations

__all__ = ["__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("airflow-provider-bolna")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
