"""The ``bolna`` connection type in the real UI and API: form fields, saving, the Test button.

``[core] test_connection = Enabled`` makes the API server call ``BolnaHook.test_connection()``
(``POST /api/v2/connections/test``), which does one authenticated, read-only call to the sandbox.

Airflow 3.3.2's Connections list sends ``port: Number(null) = 0`` when Test is clicked on a
connection without a port, and the API then answers 400 "The host or port to test differs from
the stored connection" — for *every* port-less connection type, Bolna included (fixed upstream
by apache/airflow#73298, which treats port 0 as "no port"). The UI tests therefore click the
real button twice: once as is (expecting success, or that known 400 on a release without the
fix), and once with the request's ``port: 0`` dropped in flight, which is exactly what the fixed
API server does, so the rest of the round trip — hook, sandbox, toast — is exercised for real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bolna.get_provider_info import get_provider_info
from tests.e2e import ui
from tests.e2e.conftest import DASHBOARD_URL
from tests.e2e.stack import AirflowREST

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

KNOWN_PORT_BUG = "The host or port to test differs from the stored connection"
#: The form of a ``bolna`` connection: label -> kind (our provider's relabelled/added fields).
BOLNA_FORM_FIELDS = {
    "API base URL": "standard",
    "API key": "standard",
    "Request timeout (seconds)": "extra",
    "Max retries": "extra",
    "Rate budget (requests per minute)": "extra",
    "Dashboard URL (for links)": "extra",
}


def conn_body(conn_id: str, sandbox: Any, api_key: str) -> dict[str, Any]:
    return {
        "connection_id": conn_id,
        "conn_type": "bolna",
        "host": sandbox.url,
        "password": api_key,
        "extra": json.dumps({"dashboard_url": DASHBOARD_URL, "timeout": 10, "max_retries": 1}),
    }


# ---------------------------------------------------------------------- REST
def test_rest_connection_test_succeeds_against_the_sandbox(rest: AirflowREST, e2e_sandbox: Any) -> None:
    response = rest.request(
        "POST",
        "/connections/test",
        expect=200,
        json=conn_body("bolna_rest_probe", e2e_sandbox, e2e_sandbox.api_key),
    ).json()
    assert response["status"] is True, response
    assert e2e_sandbox.url in response["message"], response


def test_rest_connection_test_reports_a_wrong_key(rest: AirflowREST, e2e_sandbox: Any) -> None:
    response = rest.request(
        "POST",
        "/connections/test",
        expect=200,
        json=conn_body("bolna_rest_probe", e2e_sandbox, "not-the-key"),
    ).json()
    assert response["status"] is False, response
    assert "403" in response["message"] and "Invalid API key" in response["message"], response
    assert "not-the-key" not in response["message"]


def test_rest_connection_test_reports_an_unreachable_host(rest: AirflowREST, e2e_sandbox: Any) -> None:
    body = conn_body("bolna_rest_probe", e2e_sandbox, e2e_sandbox.api_key)
    body["host"] = "http://127.0.0.1:9"  # discard port: nothing listens
    response = rest.request("POST", "/connections/test", expect=200, json=body).json()
    assert response["status"] is False, response
    assert response["message"], response


def test_rest_stored_connection_is_tested_with_its_stored_key(rest: AirflowREST, e2e_sandbox: Any) -> None:
    """A stored connection tested with the masked password the UI sends uses the stored key."""
    conn_id = "bolna_rest_stored"
    rest.http.delete(f"/connections/{conn_id}")
    rest.request(
        "POST", "/connections", expect=201, json=conn_body(conn_id, e2e_sandbox, e2e_sandbox.api_key)
    )
    try:
        body = {**conn_body(conn_id, e2e_sandbox, "***")}
        response = rest.request("POST", "/connections/test", expect=200, json=body).json()
        assert response["status"] is True, response
    finally:
        rest.http.delete(f"/connections/{conn_id}")


# ---------------------------------------------------------------------- UI
@pytest.fixture
def ui_page(admin_page: Any) -> Any:
    return admin_page


@pytest.fixture
def stored_connections(rest: AirflowREST, e2e_sandbox: Any) -> Iterator[dict[str, str]]:
    """Two stored ``bolna`` connections: a good one and one with a wrong key."""
    conns = {"good": "bolna_ui_good", "bad": "bolna_ui_wrong_key"}
    for kind, conn_id in conns.items():
        rest.http.delete(f"/connections/{conn_id}")
        key = e2e_sandbox.api_key if kind == "good" else "wrong-key-e2e"
        rest.request("POST", "/connections", expect=201, json=conn_body(conn_id, e2e_sandbox, key))
    yield conns
    for conn_id in conns.values():
        rest.http.delete(f"/connections/{conn_id}")


def test_connection_form_shows_bolna_fields(ui_page: Any, screenshots: Path) -> None:
    page = ui_page
    dialog = ui.open_new_connection_form(page, "Bolna")
    text = dialog.inner_text()
    # ui-field-behaviour: login, schema and port hidden; host/password relabelled with placeholders
    assert dialog.get_by_label("API base URL").get_attribute("placeholder") == "https://api.bolna.ai"
    assert "API key" in (dialog.get_by_label("API key").get_attribute("placeholder") or "")
    for hidden in ("Login", "Schema", "Port"):
        assert not dialog.get_by_label(hidden, exact=True).is_visible(), f"{hidden} should be hidden"
    dialog.screenshot(path=str(screenshots / "connection-form-standard.png"))
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for label, kind in BOLNA_FORM_FIELDS.items():
        if kind == "extra":
            dialog.get_by_text(label, exact=True).wait_for()
    assert dialog.get_by_label("Request timeout (seconds)").input_value() == "30"
    assert dialog.get_by_label("Max retries").input_value() == "5"
    assert dialog.get_by_label("Rate budget (requests per minute)").input_value() == "1000"
    assert "Connection type missing" in text  # the form's own hint: the type list comes from providers
    dialog.screenshot(path=str(screenshots / "connection-form-extra.png"))


def test_connection_saved_from_the_form_keeps_our_extra_fields(
    ui_page: Any, rest: AirflowREST, e2e_sandbox: Any, screenshots: Path
) -> None:
    page, conn_id = ui_page, "bolna_ui_form"
    rest.http.delete(f"/connections/{conn_id}")
    dialog = ui.open_new_connection_form(page, "Bolna")
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_label("API base URL").fill(e2e_sandbox.url)
    dialog.get_by_label("API key").fill(e2e_sandbox.api_key)
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.get_by_label("Request timeout (seconds)").fill("12")
    dialog.get_by_label("Max retries").fill("2")
    dialog.get_by_label("Rate budget (requests per minute)").fill("600")
    # the URL-format field's <label> is not linked to its <input> in Airflow 3.3.2's form
    dashboard = dialog.get_by_label("Dashboard URL (for links)")
    if not dashboard.count():
        dashboard = dialog.locator('input[name="element_dashboard_url"]')
    dashboard.fill(DASHBOARD_URL)
    dialog.screenshot(path=str(screenshots / "connection-form-filled.png"))
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    try:
        stored = rest.get(f"/connections/{conn_id}")
        assert stored["conn_type"] == "bolna" and stored["host"] == e2e_sandbox.url
        assert stored["password"] == "***"  # stored, and masked by the API
        # the 3.x form writes bare field names: what BolnaHook reads; the fields left alone are
        # stored with their defaults (the form's), which are the hook's own
        extra = json.loads(stored["extra"])
        typed = {"timeout": 12, "max_retries": 2, "requests_per_minute": 600, "dashboard_url": DASHBOARD_URL}
        assert {k: extra.get(k) for k in typed} == typed
        fields = get_provider_info()["connection-types"][0]["conn-fields"]
        left_alone = {k: v for k, v in extra.items() if k not in typed}
        assert left_alone == {k: fields[k]["schema"]["default"] for k in left_alone}, left_alone
        assert set(extra) <= set(fields)
    finally:
        rest.http.delete(f"/connections/{conn_id}")


def _click_test(page: Any, conn_id: str) -> dict[str, Any]:
    """Click the row's "Test Connection" button; return the API's answer to the UI."""
    page.goto("/connections")
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    response = answer.value
    return {"status": response.status, "body": response.json()}


def _drop_port_zero(route: Any, request: Any) -> None:
    body = json.loads(request.post_data or "{}")
    if body.get("port") in (0, "0"):
        body.pop("port")
    route.continue_(post_data=json.dumps(body))


def test_ui_test_button_as_shipped(ui_page: Any, stored_connections: dict[str, str]) -> None:
    """The unmodified button: success, or Airflow's known port-0 bug (apache/airflow#73298)."""
    answer = _click_test(ui_page, stored_connections["good"])
    if answer["status"] == 400 and KNOWN_PORT_BUG in json.dumps(answer["body"]):
        pytest.xfail(
            "Airflow's Connections list sends port 0 for a port-less connection and its API "
            "rejects it (apache/airflow#73298, not in this release)"
        )
    assert answer["status"] == 200 and answer["body"]["status"] is True, answer


def test_ui_test_button_success_and_wrong_key(
    ui_page: Any, stored_connections: dict[str, str], e2e_sandbox: Any, screenshots: Path
) -> None:
    """The button's full round trip (request fixed as apache/airflow#73298 does on the server)."""
    page = ui_page
    page.route("**/api/v2/connections/test", _drop_port_zero)

    good = _click_test(page, stored_connections["good"])
    assert good["status"] == 200 and good["body"]["status"] is True, good
    toast = ui.toast_text(page, r"Test Connection Successful")
    page.screenshot(path=str(screenshots / "connection-test-success.png"))
    assert "Successful" in toast

    bad = _click_test(page, stored_connections["bad"])
    assert bad["status"] == 200 and bad["body"]["status"] is False, bad
    assert re.search(r"403.*Invalid API key", bad["body"]["message"]), bad
    ui.toast_text(page, r"Test Connection Failed")
    ui.toast_text(page, r"Invalid API key")
    page.screenshot(path=str(screenshots / "connection-test-wrong-key.png"))
