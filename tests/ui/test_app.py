"""The page's app under FastAPI's TestClient, with a real auth manager and real JWTs: who sees
what (401 / 403 / 404), what each page shows of the state table, escaping, no secret."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest

from airflow_provider_bolna.provisioning.state import StateRecord
from tests.ui.conftest import BULK, DASHBOARD, OTHER, READ, READ_PLAN, SIGNUP, Auth, StateTable

PAGES = [
    "/",
    "/deployments/bolna",
    "/deployments/bolna/customers",
    "/deployments/bolna/customer?id=1",
    "/deployments/bolna/deletions",
]
API_KEY = "ui-secret-api-key-123"


def seed(state: StateTable) -> None:
    state.write(
        "bolna",
        [
            StateRecord(
                "1",
                "cust-1",
                "provisioned",
                "created",
                trunk_id="TR-1",
                spec_hash="a" * 64,
                secret_hash="b" * 64,
                verified=True,
            ),
            StateRecord(
                "2",
                "cust-2",
                "failed",
                "failed",
                last_error="customer 2: gateways.0.port: must be <= 65535",
                error_fields=("gateways",),
            ),
            StateRecord("3", "cust-3", "pending", "create"),
            StateRecord("4", "cust-4", "deprovisioned", "deprovisioned", trunk_id="TR-4"),
            StateRecord("5", "cust-5", "provisioned", "adopted", trunk_id="a/b?c"),
        ],
        run_id="manual__2026-01-01T00:00:00+00:00",
    )
    state.write(
        "other",
        [
            StateRecord(str(i), f"cust-{i}", "failed", "failed", last_error="x", error_fields=("z",))
            for i in range(1, 9)
        ],
        run_id="other-run",
    )


def reader(auth: Auth, user: str = "ops", entities: tuple[str | None, ...] = READ) -> dict[str, str]:
    auth.grants.grant(user, BULK, entities)
    auth.grants.grant(user, SIGNUP, entities)
    return auth.headers(user)


def text(response: Any) -> str:
    """The page's visible text, tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.text))).strip()


# ---------------------------------------------------------------------- who sees what


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_refused_with_401_and_a_way_to_sign_in(
    client: Any, state: StateTable, path: str
) -> None:
    seed(state)
    response = client.get(path)
    assert response.status_code == 401
    assert "Sign in to Airflow" in response.text and "/auth/login" in response.text
    assert "cust-" not in response.text and "TR-1" not in response.text


@pytest.mark.parametrize("path", PAGES)
def test_a_forged_token_is_refused_with_403(client: Any, auth: Auth, path: str) -> None:
    reader(auth)
    good = auth.token("ops")
    head, payload, signature = good.split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code == 403
    assert client.get(path, cookies={"_token": "not-a-jwt"}).status_code == 403


def test_an_expired_token_is_refused_with_401(client: Any, auth: Auth) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    reader(auth)
    token = auth.manager.generate_jwt(
        SimpleAuthManagerUser(username="ops", role="viewer"),
        expiration_time_in_seconds=-int(timedelta(minutes=5).total_seconds()),
    )
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("path", PAGES)
def test_a_user_who_may_not_read_the_dags_gets_403(
    client: Any, auth: Auth, state: StateTable, path: str
) -> None:
    seed(state)
    auth.grants.grant("stranger", "some_other_dag", READ_PLAN)
    response = client.get(path, headers=auth.headers("stranger"))
    assert response.status_code == 403
    assert "cust-" not in response.text and "gateways" not in response.text


@pytest.mark.parametrize(
    ("grants", "code"),
    [
        ({BULK: READ_PLAN}, 403),  # the sign-up DAG is part of the deployment too
        ({BULK: (None,), SIGNUP: (None,)}, 403),  # the DAGs, but not their runs
        ({BULK: ("RUN",), SIGNUP: ("RUN",)}, 403),  # runs without the DAG
        ({BULK: READ, SIGNUP: READ}, 200),
    ],
    ids=["bulk-only", "no-runs", "no-dag", "both"],
)
def test_every_dag_of_the_deployment_must_be_readable(
    client: Any, auth: Auth, state: StateTable, grants: dict[str, tuple[str | None, ...]], code: int
) -> None:
    seed(state)
    for dag_id, entities in grants.items():
        auth.grants.grant("u", dag_id, entities)
    assert client.get("/deployments/bolna", headers=auth.headers("u")).status_code == code


def test_cookie_and_bearer_are_the_same_user(client: Any, auth: Auth, state: StateTable) -> None:
    seed(state)
    reader(auth)
    by_cookie = client.get("/deployments/bolna", cookies={"_token": auth.token("ops")})
    by_header = client.get("/deployments/bolna", headers=auth.headers("ops"))
    assert by_cookie.status_code == by_header.status_code == 200


def test_each_user_sees_only_the_deployments_whose_dags_they_may_read(
    client: Any, auth: Auth, state: StateTable
) -> None:
    seed(state)
    auth.grants.grant("other-team", OTHER, READ)
    response = client.get("/", headers=auth.headers("other-team"))
    assert response.status_code == 200
    assert (
        'data-testid="deployment-other"' in response.text
        and 'data-testid="deployment-bolna"' not in response.text
    )
    assert client.get("/deployments/bolna", headers=auth.headers("other-team")).status_code == 403
    assert client.get("/deployments/other", headers=auth.headers("other-team")).status_code == 200
    assert client.get("/deployments/nope", headers=auth.headers("other-team")).status_code == 404


def test_the_pending_deletions_need_the_right_to_read_the_plan(
    client: Any, auth: Auth, state: StateTable
) -> None:
    seed(state)
    headers = reader(auth)  # DAGs and runs, no XComs
    assert client.get("/deployments/bolna/deletions", headers=headers).status_code == 403
    overview = client.get("/deployments/bolna", headers=headers)
    assert "takes the right to read the XComs" in overview.text
    headers = reader(auth, "planner", READ_PLAN)
    response = client.get("/deployments/bolna/deletions", headers=headers)
    assert response.status_code == 200 and 'data-testid="no-plan"' in response.text


# ---------------------------------------------------------------------- what the pages show


def test_totals_count_this_scope_by_status(client: Any, auth: Auth, state: StateTable) -> None:
    seed(state)
    page = client.get("/deployments/bolna", headers=reader(auth))
    counts = {
        s: int(re.search(rf'data-testid="total-{s}">\s*<div class="n">(\d+)', page.text).group(1))  # type: ignore[union-attr]
        for s in ("provisioned", "failed", "pending", "deprovisioned", "all")
    }
    expected = dict(
        state.execute(
            "SELECT status, COUNT(*) FROM bolna_provisioning_state WHERE scope = 'bolna' GROUP BY status"
        )
    )
    assert counts == {
        **{s: expected.get(s, 0) for s in ("provisioned", "failed", "pending", "deprovisioned")},
        "all": 5,
    }
    index = client.get("/", headers=reader(auth))
    assert re.search(
        r'data-testid="deployment-bolna">.*?<td class="num">2</td><td class="num">1</td>'
        r'<td class="num">1</td><td class="num">1</td>',
        index.text,
        re.DOTALL,
    )


def test_failed_customers_show_the_field_at_fault_and_the_reason(
    client: Any, auth: Auth, state: StateTable
) -> None:
    seed(state)
    page = client.get("/deployments/bolna", headers=reader(auth))
    row = re.search(r'<tr data-testid="failed-2">(.*?)</tr>', page.text, re.DOTALL)
    assert row, page.text
    assert '<span class="field">gateways</span>' in row.group(1)
    assert "customer 2: gateways.0.port: must be &lt;= 65535" in row.group(1)
    assert "manual__2026-01-01T00:00:00+00:00" in row.group(
        1
    )  # the run (unknown to Airflow here: shown as text)
    assert 'data-testid="failed-1"' not in page.text  # another scope's failed customer 1 is not ours


def test_the_search_finds_a_customer_with_its_trunk_link(client: Any, auth: Auth, state: StateTable) -> None:
    seed(state)
    headers = reader(auth)
    page = client.get("/deployments/bolna/customer", params={"id": "1"}, headers=headers)
    assert page.status_code == 200
    link = re.search(
        r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer" data-testid="trunk-link">Bolna trunk',
        page.text,
    )
    assert link and link.group(1) == f"{DASHBOARD}/sip-trunks/TR-1"
    shown = text(page)
    assert "Last action created" in shown and "By the run manual__2026-01-01T00:00:00+00:00" in shown
    escaped = client.get("/deployments/bolna/customer", params={"id": "5"}, headers=headers)
    assert f'href="{DASHBOARD}/sip-trunks/a%2Fb%3Fc"' in escaped.text  # the id is one path segment
    deleted = client.get("/deployments/bolna/customer", params={"id": "4"}, headers=headers)
    assert "TR-4" in deleted.text and "(deleted)" in deleted.text and "sip-trunks/TR-4" not in deleted.text


def test_a_search_without_match_is_404_and_lists_from_there(
    client: Any, auth: Auth, state: StateTable
) -> None:
    seed(state)
    response = client.get("/deployments/bolna/customer", params={"id": "25"}, headers=reader(auth))
    assert response.status_code == 404
    assert 'data-testid="not-found"' in response.text
    assert [m for m in re.findall(r'<tr data-testid="customer-(\w+)">', response.text)] == ["3", "4", "5"]


@pytest.mark.parametrize("params", [{"id": "x" * 256}, {"id": ""}, {}])
def test_search_input_is_bounded(client: Any, auth: Auth, state: StateTable, params: dict[str, str]) -> None:
    seed(state)
    assert client.get("/deployments/bolna/customer", params=params, headers=reader(auth)).status_code == 422


@pytest.mark.parametrize("query", ["status=unknown", "after=" + "x" * 256, "start=" + "y" * 300])
def test_list_input_is_bounded(client: Any, auth: Auth, state: StateTable, query: str) -> None:
    seed(state)
    assert client.get(f"/deployments/bolna/customers?{query}", headers=reader(auth)).status_code == 422


def test_the_customer_list_pages_through_everyone_once(client: Any, auth: Auth, state: StateTable) -> None:
    state.write(
        "bolna",
        [
            StateRecord(f"k{i:03d}", f"cust-k{i:03d}", "provisioned", "created", trunk_id=f"T{i}")
            for i in range(120)
        ],
    )
    headers = reader(auth)
    seen: list[str] = []
    url = "/deployments/bolna/customers"
    pages = 0
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        seen += re.findall(r'<tr data-testid="customer-(k\d+)">', response.text)
        nxt = re.search(r'<a href="([^"]+)" data-testid="next-page">', response.text)
        url = unescape(nxt.group(1)) if nxt else ""
        pages += 1
    assert pages == 3 and seen == [f"k{i:03d}" for i in range(120)]


def test_everything_from_the_table_is_escaped(client: Any, auth: Auth, state: StateTable) -> None:
    evil_key = '<img src=x onerror="alert(1)">'
    state.write(
        "bolna",
        [
            StateRecord(
                evil_key,
                "cust-evil",
                "failed",
                "failed",
                trunk_id='"><script>t()</script>',
                last_error="customer <b>x</b>: transport: <script>alert(2)</script>",
                error_fields=("<i>transport</i>",),
            )
        ],
        run_id='"><svg onload=r()>',
    )
    headers = reader(auth)
    pages = [
        client.get("/deployments/bolna", headers=headers),
        client.get("/deployments/bolna/customers", params={"status": "failed"}, headers=headers),
        client.get("/deployments/bolna/customer", params={"id": evil_key}, headers=headers),
    ]
    for page in pages:
        assert page.status_code == 200
        for raw in ("<script>", "<img src=x", "<svg", "<b>x</b>", "<i>transport"):
            assert raw not in page.text, (page.url, raw)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in pages[0].text
    assert "&lt;i&gt;transport&lt;/i&gt;" in pages[0].text


def test_no_secret_or_hash_is_shown(client: Any, auth: Auth, state: StateTable) -> None:
    seed(state)
    headers = reader(auth, entities=READ_PLAN)
    for path in PAGES[1:] + [
        "/deployments/bolna/customer?id=5",
        "/deployments/bolna/customers?status=failed",
    ]:
        body = client.get(path, headers=headers).text
        assert API_KEY not in body and "a" * 64 not in body and "b" * 64 not in body, path


def test_a_bindings_column_shows_numbers_and_agents(client: Any, auth: Auth, state: StateTable) -> None:
    seed(state)
    state.execute(
        "UPDATE bolna_provisioning_state SET bindings = ? WHERE scope = 'bolna' AND customer_id = '1'",
        (json.dumps({"919876543210": {"number": "+919876543210", "id": "n1", "agent": "agent-sales"}}),),
    )
    page = client.get("/deployments/bolna/customer", params={"id": "1"}, headers=reader(auth))
    assert "+919876543210" in page.text and "agent-sales" in page.text
    without = client.get("/deployments/bolna/customer", params={"id": "3"}, headers=reader(auth))
    assert 'data-testid="no-bindings"' in without.text


def test_security_headers(client: Any, auth: Auth, state: StateTable) -> None:
    seed(state)
    for response in (client.get("/deployments/bolna", headers=reader(auth)), client.get("/")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
    css = client.get("/static/bolna.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


# ---------------------------------------------------------------------- configuration and failures


def test_no_deployment_configured_says_how(auth: Auth, state: StateTable) -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_bolna.ui.app import create_app

    with TestClient(create_app(list)) as http:
        page = http.get("/", headers=auth.headers("anyone"))
    assert page.status_code == 200 and "[bolna] ui_deployments" in page.text


def test_a_bad_configuration_is_reported_by_key_to_signed_in_users(
    auth: Auth, state: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_bolna.ui.app import create_app

    monkeypatch.setenv(
        "AIRFLOW__BOLNA__UI_DEPLOYMENTS",
        json.dumps(
            [
                {
                    "dag_id": BULK,
                    "scope": "bolna",
                    "state_conn_id": "ui_state",
                    "state_table": "t; DROP TABLE x",
                }
            ]
        ),
    )
    with TestClient(create_app()) as http:
        assert http.get("/").status_code == 401  # who you are comes first
        page = http.get("/", headers=auth.headers("ops"))
    assert page.status_code == 500
    assert "ui_deployments.0.state_table" in page.text and "DROP TABLE" not in page.text


def test_an_unreadable_state_table_is_reported_on_the_page(
    client: Any, auth: Auth, state: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = reader(auth)
    page = client.get("/deployments/bolna", headers=headers)
    assert page.status_code == 200 and "no state table yet" in page.text
    monkeypatch.delenv("AIRFLOW_CONN_UI_STATE")
    page = client.get("/deployments/bolna", headers=headers)
    assert "the connection &#39;ui_state&#39; is not defined" in page.text
    assert client.get("/deployments/bolna/customer", params={"id": "1"}, headers=headers).status_code == 503


def test_a_dashboard_url_that_is_not_http_falls_back_to_bolna(
    client: Any, auth: Auth, state: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(state)
    monkeypatch.setenv(
        "AIRFLOW_CONN_UI_BOLNA",
        json.dumps(
            {"conn_type": "bolna", "password": API_KEY, "extra": {"dashboard_url": "javascript:alert(1)//"}}
        ),
    )
    page = client.get("/deployments/bolna/customer", params={"id": "1"}, headers=reader(auth))
    assert 'href="https://platform.bolna.ai/sip-trunks/TR-1"' in page.text and "javascript:" not in page.text
