"""The provisioning page: a small read-only FastAPI app, rendered on the server (Jinja2, no script).

Mounted by the API server under ``/bolna`` (see :mod:`.plugin`). Pages, all ``GET``:

===================================== ===========================================================
``/``                                 the deployments the user may see, totals and last run
``/deployments/{scope}``              totals by status, last runs, failed customers, search,
                                      pending deletions in short
``/deployments/{scope}/customers``    every customer, or one status, 50 a page (keyset)
``/deployments/{scope}/customer?id=`` one customer: trunk and its "Bolna trunk" link, numbers,
                                      last action and the run that did it
``/deployments/{scope}/deletions``    what the last plan would delete and what became of it
===================================== ===========================================================

Security: the user is Airflow's (``GetUserDep``: bearer header or the UI's cookie); a deployment
is shown only to users its DAGs are readable by (:mod:`.access`); request values reach SQL only
as bound parameters and are length-bounded; every value is escaped by Jinja2's autoescape; the
state connection is read-only; no hash or secret is selected. Responses carry a strict CSP
(no script, styles from here only), ``no-store`` and ``no-referrer``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from functools import partial
from importlib.resources import files
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote, urlencode

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_bolna.dashboard import dashboard_url_of, trunk_url
from airflow_provider_bolna.provisioning.settings import ProvisionOptions, SettingsError
from airflow_provider_bolna.ui.access import can_read, readable
from airflow_provider_bolna.ui.config import UIDeployment, ui_deployments
from airflow_provider_bolna.ui.runs import PLAN_LOOK_BACK, LastPlan, find_runs, last_plan, latest_run
from airflow_provider_bolna.ui.state_view import (
    STATUSES,
    UI_STATEMENT_TIMEOUT,
    Page,
    StateUnavailable,
    StateView,
    describe_db_error,
)

__all__ = ["MAX_KEY_LENGTH", "PAGE_SIZE", "create_app"]

log = logging.getLogger(__name__)

#: Customers per page.
PAGE_SIZE = 50
#: Failed customers on a deployment's overview.
FAILED_ON_OVERVIEW = 20
#: Longest customer id a request may carry (the state table's ``customer_id VARCHAR(255)``).
MAX_KEY_LENGTH = 255
#: Most keys the pending deletions page lists.
MAX_DELETIONS_SHOWN = 500

Status = Literal["pending", "provisioned", "failed", "deprovisioned"]
Key = Annotated[str, Query(min_length=1, max_length=MAX_KEY_LENGTH)]
T = TypeVar("T")
OptionalKey = Annotated[str | None, Query(min_length=1, max_length=MAX_KEY_LENGTH)]

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# ---------------------------------------------------------------------- rendering


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("airflow_provider_bolna.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["seg"] = lambda value: quote(str(value), safe="")
    return env


def _render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    nav: Iterable[UIDeployment] = (),
    current: str | None = None,
    **context: Any,
) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    airflow_root = request.scope.get("app_root_path", "")

    def url(path: str, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"{root}{path}" + (f"?{query}" if query else "")

    html = request.app.state.templates.get_template(template).render(
        url=url,
        airflow_url=lambda path: f"{airflow_root}{path}",
        nav=list(nav),
        current=current,
        generated_at=datetime.now(timezone.utc),
        statuses=STATUSES,
        max_key=MAX_KEY_LENGTH,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


# ---------------------------------------------------------------------- dependencies


def _configured(request: Request) -> list[UIDeployment]:
    return request.app.state.load_deployments()


Configured = Annotated[list[UIDeployment], Depends(_configured)]


def _deployment(
    user: GetUserDep, scope: Annotated[str, Path(max_length=64)], session: SessionDep, configured: Configured
) -> UIDeployment:
    """The deployment of the path, if the user may read its DAGs (401 / 404 / 403 otherwise)."""
    deployment = next((d for d in configured if d.scope == scope), None)
    if deployment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such deployment.")
    if not can_read(user, deployment, session):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not read this deployment's DAGs.")
    return deployment


DeploymentDep = Annotated[UIDeployment, Depends(_deployment)]


def _dashboard(deployment: UIDeployment) -> Callable[[str], str]:
    """Trunk id → its page on Bolna's dashboard (the Bolna connection's ``dashboard_url`` extra)."""
    from airflow.providers.common.compat.sdk import BaseHook

    try:
        extra = BaseHook.get_connection(deployment.bolna_conn_id).extra_dejson
    except Exception:  # noqa: BLE001 - a missing connection only costs the custom dashboard root
        log.info("Bolna connection %r not found: trunk links use Bolna's dashboard", deployment.bolna_conn_id)
        extra = None
    base = dashboard_url_of(extra)
    return partial(trunk_url, base)


def _state_error(deployment: UIDeployment, exc: Exception) -> str:
    if isinstance(exc, StateUnavailable):
        return str(exc)
    if type(exc).__name__ == "AirflowNotFoundException":
        return f"the connection {deployment.state_conn_id!r} is not defined"
    log.warning(
        "Reading the state table %s of scope %r failed",
        deployment.state_table,
        deployment.scope,
        exc_info=exc,
    )
    return describe_db_error(exc, UI_STATEMENT_TIMEOUT)


def _view(deployment: UIDeployment) -> StateView:
    return StateView(deployment.state_conn_id, deployment.state_table, deployment.scope)


def _read_state(deployment: UIDeployment, read: Callable[[StateView], T]) -> tuple[T | None, str | None]:
    """``read`` on the deployment's state table: ``(its value, None)`` or ``(None, what the page
    says)`` when the table cannot be read (shown on the page, one deployment at a time)."""
    try:
        with _view(deployment) as view:
            return read(view), None
    except Exception as exc:  # noqa: BLE001 - shown on the page
        return None, _state_error(deployment, exc)


def _render_deployment(
    request: Request,
    template: str,
    d: UIDeployment,
    user: Any,
    session: Any,
    configured: list[UIDeployment],
    **context: Any,
) -> HTMLResponse:
    """A page of one deployment: the navigation the user may see, the deployment and its trunk links."""
    return _render(
        request,
        template,
        nav=readable(user, configured, session),
        current=d.scope,
        d=d,
        dashboard=_dashboard(d),
        **context,
    )


def _runs_of(session: Any, d: UIDeployment, page: Page | None) -> Callable[[str | None], Any]:
    """The runs that last wrote the page's rows, by run id."""
    return (find_runs(session, d.dag_ids, [r.run_id for r in page.rows]) if page else {}).get


# ---------------------------------------------------------------------- pages


def index(request: Request, user: GetUserDep, session: SessionDep, configured: Configured) -> HTMLResponse:
    """The deployments the user may see."""
    visible = readable(user, configured, session)
    if configured and not visible:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not read the DAGs of any Bolna deployment.")
    items = []
    for deployment in visible:
        item: dict[str, Any] = {
            "deployment": deployment,
            "totals": None,
            "error": None,
            "last_run": latest_run(session, deployment.dag_id),
        }
        item["totals"], item["error"] = _read_state(deployment, StateView.totals)
        items.append(item)
    return _render(
        request, "index.html", title="Provisioning", nav=visible, configured=bool(configured), items=items
    )


def deployment_page(
    request: Request, d: DeploymentDep, user: GetUserDep, session: SessionDep, configured: Configured
) -> HTMLResponse:
    """One deployment at a glance."""
    runs = [(dag_id, latest_run(session, dag_id)) for dag_id in d.dag_ids]
    plan, may_read_plan = _plan(user, d, session)
    read, error = _read_state(
        d, lambda view: (view.totals(), view.page(status="failed", limit=FAILED_ON_OVERVIEW))
    )
    totals, failed = read or (None, None)
    return _render_deployment(
        request,
        "deployment.html",
        d,
        user,
        session,
        configured,
        title=f"Scope {d.scope}",
        runs=runs,
        totals=totals,
        failed=failed,
        error=error,
        plan=plan,
        may_read_plan=may_read_plan,
        look_back=PLAN_LOOK_BACK,
        run_of=_runs_of(session, d, failed),
    )


def customers_page(
    request: Request,
    d: DeploymentDep,
    user: GetUserDep,
    session: SessionDep,
    configured: Configured,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    after: OptionalKey = None,
    start: OptionalKey = None,
) -> HTMLResponse:
    """Customers in key order, a page at a time."""
    return _customers(request, d, user, session, configured, status_=status_, after=after, start=start)


def _customers(
    request: Request,
    d: UIDeployment,
    user: Any,
    session: Any,
    configured: list[UIDeployment],
    *,
    status_: str | None = None,
    after: str | None = None,
    start: str | None = None,
    missing: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page, error = _read_state(
        d, lambda view: view.page(status=status_, after=after, start=start, limit=PAGE_SIZE)
    )
    return _render_deployment(
        request,
        "customers.html",
        d,
        user,
        session,
        configured,
        status_code=status_code,
        title=f"Customers of {d.scope}",
        status=status_,
        after=after,
        start=start,
        missing=missing,
        page=page,
        error=error,
        page_size=PAGE_SIZE,
        run_of=_runs_of(session, d, page),
    )


def customer_page(
    request: Request,
    d: DeploymentDep,
    user: GetUserDep,
    session: SessionDep,
    configured: Configured,
    customer_id: Annotated[str, Query(alias="id", min_length=1, max_length=MAX_KEY_LENGTH)],
) -> HTMLResponse:
    """One customer (the search): its trunk, numbers, last action and run. Not found: 404 and the
    customers from that key on."""
    key = customer_id.strip() or customer_id
    row, error = _read_state(d, lambda view: view.customer(key))
    if error is not None:
        return _render(
            request,
            "error.html",
            status_code=503,
            title="State table unavailable",
            nav=readable(user, configured, session),
            current=d.scope,
            message=error,
            details=[],
            login_url=None,
        )
    if row is None:
        return _customers(request, d, user, session, configured, start=key, missing=key, status_code=404)
    run = find_runs(session, d.dag_ids, [row.run_id]).get(row.run_id or "")
    return _render_deployment(
        request,
        "customer.html",
        d,
        user,
        session,
        configured,
        title=f"Customer {row.customer_id}",
        row=row,
        run=run,
    )


def deletions_page(
    request: Request, d: DeploymentDep, user: GetUserDep, session: SessionDep, configured: Configured
) -> HTMLResponse:
    """What the last plan would delete, and what became of each."""
    plan, may_read_plan = _plan(user, d, session)
    if not may_read_plan:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "The plan is in the XComs of this deployment's bulk DAG, which you may not read.",
        )
    keys: list[tuple[str, str]] = []
    states, recorded, next_limit, error = {}, None, None, None
    if plan is not None and plan.budget is not None and plan.budget.enabled:
        churned = set(plan.churned)
        keys = [(k, "churned" if k in churned else "gone from the query") for k in plan.keys]
        read, error = _read_state(
            d, lambda view: (view.customers(k for k, _ in keys[:MAX_DELETIONS_SHOWN]), view.recorded_trunks())
        )
        states, recorded = read or ({}, None)
        if recorded is not None:
            next_limit = ProvisionOptions(
                max_deletes=plan.budget.max_deletes, max_delete_fraction=plan.budget.max_delete_fraction
            ).delete_limit(recorded)
    return _render_deployment(
        request,
        "deletions.html",
        d,
        user,
        session,
        configured,
        title=f"Pending deletions of {d.scope}",
        plan=plan,
        may_read_plan=True,
        look_back=PLAN_LOOK_BACK,
        keys=keys[:MAX_DELETIONS_SHOWN],
        hidden=max(0, len(keys) - MAX_DELETIONS_SHOWN),
        states=states,
        recorded=recorded,
        next_limit=next_limit,
        error=error,
    )


def _plan(user: Any, d: UIDeployment, session: Any) -> tuple[LastPlan | None, bool]:
    if not can_read(user, d, session, entities=(DagAccessEntity.XCOM,), bulk_only=True):
        return None, False
    return last_plan(session, d.dag_id), True


def stylesheet() -> Response:
    """The page's only style sheet (the CSP allows no inline style)."""
    css = files("airflow_provider_bolna.ui").joinpath("static/bolna.css").read_text()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# ---------------------------------------------------------------------- the app


def create_app(load_deployments: Callable[[], list[UIDeployment]] = ui_deployments) -> FastAPI:
    """The page's app.

    :param load_deployments: the deployments to show (default: ``[bolna] ui_deployments``, read on
        every request, so a bad value is reported on the page rather than failing the API server).
    """
    app = FastAPI(title="Bolna provisioning", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.templates = _environment()
    app.state.load_deployments = load_deployments
    app.add_api_route("/", index, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/deployments/{scope}", deployment_page, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route(
        "/deployments/{scope}/customers", customers_page, methods=["GET"], response_class=HTMLResponse
    )
    app.add_api_route(
        "/deployments/{scope}/customer", customer_page, methods=["GET"], response_class=HTMLResponse
    )
    app.add_api_route(
        "/deployments/{scope}/deletions", deletions_page, methods=["GET"], response_class=HTMLResponse
    )
    app.add_api_route("/static/bolna.css", stylesheet, methods=["GET"])

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        login = None
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            try:
                login = get_auth_manager().get_url_login()
            except Exception:  # noqa: BLE001 - the page still says what is wrong
                login = None
        titles = {401: "Sign in first", 403: "Not allowed", 404: "Not found"}
        return _render(
            request,
            "error.html",
            status_code=exc.status_code,
            title=titles.get(exc.status_code, "Error"),
            message=str(exc.detail),
            details=[],
            login_url=login,
        )

    @app.exception_handler(SettingsError)
    async def settings_error(request: Request, exc: SettingsError) -> Response:
        log.error("The provisioning page's configuration is invalid: %s", exc)
        return _render(
            request,
            "error.html",
            status_code=500,
            title="Misconfigured",
            message=f"The Airflow option {exc.source} is invalid; an admin must fix it.",
            details=[f"{key}: {why}" if key else why for key, why in exc.errors],
            login_url=None,
        )

    return app
