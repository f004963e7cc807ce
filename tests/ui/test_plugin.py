"""The plugin as Airflow loads it: the entry point, a cheap import, and the real API server app
(``airflow.api_fastapi.app.create_app``) mounting the page under ``/bolna`` behind its own auth."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.state import StateRecord
from tests.ui.conftest import DASHBOARD, StateTable

ENTRY_POINT = "airflow_provider_bolna.ui.plugin:BolnaProvisioningPlugin"


def test_registered_through_the_airflow_plugins_entry_point() -> None:
    eps = [ep for ep in distribution("airflow-provider-bolna").entry_points if ep.group == "airflow.plugins"]
    assert [(ep.name, ep.value) for ep in eps] == [("bolna_provisioning", ENTRY_POINT)]


def test_airflow_accepts_the_plugin_and_its_ui_entries() -> None:
    from airflow._shared.plugins_manager import is_valid_plugin

    from airflow_provider_bolna.ui.plugin import BolnaProvisioningPlugin, ProvisioningApp

    assert is_valid_plugin(BolnaProvisioningPlugin)
    (app,) = BolnaProvisioningPlugin.fastapi_apps
    assert app["url_prefix"] == "/bolna" and isinstance(app["app"], ProvisioningApp)
    (view,) = BolnaProvisioningPlugin.external_views
    # no url_route: a nav entry that opens the page itself (see the plugin's docstring)
    assert view == {
        "name": "Bolna provisioning",
        "href": "/bolna/",
        "destination": "nav",
        "category": "browse",
    }
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    ExternalViewResponse.model_validate(view)


def test_importing_the_plugin_builds_nothing() -> None:
    """Every Airflow process imports plugins: the page's app, FastAPI and the engine stay unloaded."""
    code = (
        "import json, sys; import airflow_provider_bolna.ui.plugin; "
        "print(json.dumps({m: m in sys.modules for m in ('fastapi', 'airflow_provider_bolna.ui.app', "
        "'airflow_provider_bolna.provisioning.state', 'airflow.api_fastapi.app')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == dict.fromkeys(
        (
            "fastapi",
            "airflow_provider_bolna.ui.app",
            "airflow_provider_bolna.provisioning.state",
            "airflow.api_fastapi.app",
        ),
        False,
    )


def test_the_base_url_prefixes_the_nav_link(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_bolna.ui import plugin

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")
    assert plugin._external_views()[0]["href"] == "/team-a/bolna/"


@pytest.fixture(scope="module")
def api_server(airflow_cli: Any) -> Any:
    """Airflow's own API server app (core: public API, UI, auth manager, plugins), in-process."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(apps="core")) as http:
        yield http


def _admin_token() -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin")))


def test_the_api_server_mounts_the_page_behind_airflow_auth(
    api_server: Any, state: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.write(
        "bolna",
        [
            StateRecord("7", "cust-7", "provisioned", "created", trunk_id="TR-7"),
            StateRecord(
                "8",
                "cust-8",
                "failed",
                "failed",
                last_error="customer 8: transport: bad",
                error_fields=("transport",),
            ),
        ],
    )
    monkeypatch.setenv(
        "AIRFLOW__BOLNA__UI_DEPLOYMENTS",
        json.dumps(
            [
                {
                    "dag_id": "bolna_bulk_provision",
                    "scope": "bolna",
                    "state_conn_id": "ui_state",
                    "bolna_conn_id": "ui_bolna",
                }
            ]
        ),
    )
    anonymous = api_server.get("/bolna/deployments/bolna")
    assert anonymous.status_code == 401 and "cust-" not in anonymous.text
    assert api_server.get("/bolna/", cookies={"_token": "forged"}).status_code == 403

    page = api_server.get("/bolna/deployments/bolna", cookies={"_token": _admin_token()})
    assert page.status_code == 200
    assert (
        'href="/bolna/deployments/bolna/customers?status=failed"' in page.text
    )  # the page's links stay under /bolna
    assert 'href="/dags/bolna_bulk_provision"' in page.text  # Airflow's links go to Airflow's UI
    customer = api_server.get(
        "/bolna/deployments/bolna/customer",
        params={"id": "7"},
        headers={"Authorization": f"Bearer {_admin_token()}"},
    )
    assert f'href="{DASHBOARD}/sip-trunks/TR-7"' in customer.text
    css = api_server.get("/bolna/static/bolna.css")
    assert css.status_code == 200 and "font" in css.text


def test_the_plugins_api_lists_the_page(api_server: Any) -> None:
    plugins = api_server.get("/api/v2/plugins", headers={"Authorization": f"Bearer {_admin_token()}"}).json()
    (ours,) = [p for p in plugins["plugins"] if p["name"] == "bolna_provisioning"]
    assert ours["fastapi_apps"] == [
        {
            "app": "airflow_provider_bolna.ui.plugin.ProvisioningApp",
            "url_prefix": "/bolna",
            "name": "Bolna provisioning",
        }
    ]
    assert [(v["name"], v["href"], v["url_route"]) for v in ours["external_views"]] == [
        ("Bolna provisioning", "/bolna/", None)
    ]
