"""The Airflow plugin that mounts the provisioning page (entry point ``airflow.plugins``).

Airflow imports plugins in many processes (API server, scheduler, DAG processor, every task), so
this module imports nothing heavy and does nothing on import: the page's FastAPI app is built by
:class:`ProvisioningApp` on the first request the API server routes to it.

* Airflow 3.1+: the app is mounted under ``/bolna`` and a "Bolna provisioning" entry appears in
  the UI's *Browse* menu (``external_views``). The entry opens the page in a new tab rather than
  in the UI's frame: Airflow sandboxes plugin frames without ``allow-popups`` and
  ``allow-top-navigation``, so the page's links to Bolna's dashboard and to Airflow's runs could
  not work there.
* Airflow 3.0: the app is mounted (``fastapi_apps`` exists since 3.0) but 3.0 has no
  ``external_views``; the page is a plain link, ``<airflow>/bolna/``. (``appbuilder_menu_items``
  would make the API server build a Flask app and require the FAB provider.)
* Airflow 2.x: nothing (no FastAPI apps); the plugin registers nothing.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import AirflowPlugin, conf
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS

__all__ = ["PAGE_NAME", "URL_PREFIX", "BolnaProvisioningPlugin", "ProvisioningApp"]

#: Where the API server mounts the page (also in :mod:`.app`, which this module must not import).
URL_PREFIX = "/bolna"
PAGE_NAME = "Bolna provisioning"


class ProvisioningApp:
    """An ASGI app that builds the page's FastAPI app (:func:`.app.create_app`) on first use."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _build(self) -> Any:
        with self._lock:
            if self._app is None:
                from airflow_provider_bolna.ui.app import create_app

                self._app = create_app()
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        app = self._app if self._app is not None else self._build()
        await app(scope, receive, send)


def _base_path() -> str:
    """The path Airflow is served under (``[api] base_url``), without a trailing slash."""
    base_url = conf.get("api", "base_url", fallback="/") or "/"
    path = urlsplit(base_url).path if "://" in base_url else base_url
    return path.rstrip("/")


def _external_views() -> list[dict[str, Any]]:
    if not AIRFLOW_V_3_1_PLUS:
        return []
    return [
        {
            "name": PAGE_NAME,
            "href": f"{_base_path()}{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
        }
    ]


class BolnaProvisioningPlugin(AirflowPlugin):
    """Bolna provisioning at a glance: customers, trunks, failures and pending deletions."""

    name = "bolna_provisioning"
    fastapi_apps = (
        [{"app": ProvisioningApp(), "url_prefix": URL_PREFIX, "name": PAGE_NAME}]
        if AIRFLOW_V_3_0_PLUS
        else []
    )
    external_views = _external_views()
