"""Apache Airflow provider for Bolna SIP trunks.

Kept import-light on purpose: Airflow imports this package while it discovers providers, and
the sandbox starts from it. Import what you need from the submodules
(``airflow_provider_bolna.hooks.bolna`` ...).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_CONN_ID", "__version__"]

#: The Bolna connection every hook, operator, DAG and engine call uses unless told otherwise.
DEFAULT_CONN_ID = "bolna_default"


def __getattr__(name: str) -> Any:
    """Resolve ``__version__`` lazily (reading package metadata costs tens of milliseconds)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("airflow-provider-bolna")
        except PackageNotFoundError:  # pragma: no cover - source tree without install
            value = "0.0.0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
