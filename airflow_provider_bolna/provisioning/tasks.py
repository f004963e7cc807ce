"""The Airflow side of bulk provisioning: what each task of the provisioning DAGs does.

The DAG factories (:mod:`airflow_provider_bolna.dags`) call these with the deployment they were
built with. This module is the trust boundary in practice:

* the deployment's settings come from the DAG file, optionally overlaid by its settings
  Variable (admins only) — never from a run's conf;
* a run's conf may hold only :data:`~.settings.RUN_OPTION_KEYS` (the sign-up DAG: only
  ``customer_id``); anything else fails the task before a single request is sent;
* the author's query is the only text rendered by Jinja, with a context that holds nothing a
  trigger chose (no ``params``, ``dag_run``, ``run_id`` or asset events);
* XCom carries keys, counts and ids — never rows, passwords or the query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_bolna.provisioning.batch import provision_batch, provision_customers
from airflow_provider_bolna.provisioning.names import MAX_CUSTOMER_ID_LENGTH
from airflow_provider_bolna.provisioning.options import (
    RUN_OPTION_KEYS,
    ProvisionOptions,
    RunOptions,
    SettingsError,
)
from airflow_provider_bolna.provisioning.run import plan_run
from airflow_provider_bolna.provisioning.settings import Deployment
from airflow_provider_bolna.provisioning.summary import format_summary, summarize
from airflow_provider_bolna.provisioning.sweep import deprovision_gone
from airflow_provider_bolna.version_compat import TRIGGERING_ASSET_EVENTS_KEY

__all__ = [
    "BUDGET_XCOM_KEY",
    "GONE_XCOM_KEY",
    "MAX_CUSTOMER_ID_LENGTH",
    "ProvisioningBusy",
    "ProvisioningFailed",
    "RunRefused",
    "deprovision_gone_task",
    "plan_task",
    "provision_batch_task",
    "provision_signup_task",
    "render_query",
    "resolve_deployment",
    "resolve_signup_customers",
    "summarize_task",
]

log = logging.getLogger(__name__)

#: keys Airflow itself adds to an asset event's extra
_AIRFLOW_EVENT_KEYS = frozenset({"from_rest_api", "from_trigger"})
#: what the author's query template may use: dates and intervals, macros, Variables
_QUERY_CONTEXT = (
    "ds",
    "ds_nodash",
    "ts",
    "ts_nodash",
    "ts_nodash_with_tz",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "prev_data_interval_start_success",
    "prev_data_interval_end_success",
    "macros",
    "var",
)


class ProvisioningFailed(AirflowFailException):
    """Customers failed and ``fail_on_error`` is on, or the run's deletes were withheld (no retry:
    the summary says why)."""


class ProvisioningBusy(RuntimeError):
    """Another run holds a customer's writer lease (the task's retries apply)."""


class RunRefused(AirflowFailException):
    """A run asked for something a trigger may not choose (nothing was read or sent)."""


# ---------------------------------------------------------------------- settings


def resolve_deployment(deployment: Deployment, settings_variable: str | None) -> Deployment:
    """The deployment for this run: the DAG file's settings, overlaid by the settings Variable.

    :param deployment: the settings the DAG file was built with.
    :param settings_variable: the Variable (a JSON object) an admin may use to change them, or
        ``None``. A missing Variable changes nothing.
    :raises RunRefused: the Variable is not valid settings (every bad key named).
    """
    if not settings_variable:
        return deployment
    from airflow.providers.common.compat.sdk import Variable

    try:
        value = Variable.get(
            settings_variable, None, deserialize_json=True
        )  # default: positional on 2.x and 3.x
    except ValueError as exc:
        raise RunRefused(
            f"deployment variable {settings_variable!r} is not JSON ({type(exc).__name__})"
        ) from None
    try:
        return deployment.overlaid(value, settings_variable)
    except SettingsError as exc:
        raise RunRefused(str(exc)) from None


def _run_options(deployment: Deployment, context: Mapping[str, Any]) -> RunOptions:
    """The run's options: only what a trigger may set, checked against the deployment."""
    conf = _conf(context)
    unknown = sorted(str(k) for k in conf if k not in RUN_OPTION_KEYS)
    if unknown:
        raise RunRefused(
            str(
                SettingsError(
                    [
                        (
                            k,
                            (
                                "cannot be set when triggering a run (deployment settings are the DAG author's; a run may set "
                                f"only {', '.join(RUN_OPTION_KEYS)})"
                            ),
                        )
                        for k in unknown
                    ],
                    "run conf",
                )
            )
        )
    params = dict(context.get("params") or {})
    values = {k: params[k] for k in RUN_OPTION_KEYS if k in params}
    values.update({k: conf[k] for k in conf})
    try:
        return deployment.run_options(values)
    except SettingsError as exc:
        raise RunRefused(str(exc)) from None


def _conf(context: Mapping[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    return dict(conf) if isinstance(conf, Mapping) else {"conf": conf}


def _options(deployment: Deployment, context: Mapping[str, Any]) -> ProvisionOptions:
    return deployment.options(_run_options(deployment, context), run_id=_run_id(context))


def _run_id(context: Mapping[str, Any]) -> str | None:
    run_id = context.get("run_id")
    return str(run_id)[:250] if run_id else None


def render_query(deployment: Deployment, context: Mapping[str, Any]) -> str:
    """The author's query, rendered by Jinja if it is a template.

    The template context holds dates, macros and Variables only: nothing a trigger chose
    (``params``, ``dag_run``, ``run_id``, asset events) can reach the SQL.
    """
    query = deployment.query
    task = context.get("task")
    if task is None or ("{{" not in query and "{%" not in query):
        return query
    allowed = {k: context[k] for k in _QUERY_CONTEXT if k in context}
    return str(task.render_template(query, allowed))


def _connections(deployment: Deployment) -> dict[str, Any]:
    return {"bolna_conn_id": deployment.bolna_conn_id, "state_conn": deployment.state_conn}


# ---------------------------------------------------------------------- bulk DAG


#: XCom keys of the planning task besides its return value (the batches)
GONE_XCOM_KEY = "gone"
BUDGET_XCOM_KEY = "budget"


def plan_task(
    deployment: Deployment,
    settings_variable: str | None,
    context: Mapping[str, Any],
    max_batches: int | None = None,
) -> list[dict[str, Any]]:
    """The run's batches (returned: mapped over), its gone keys and its deletion budget (pushed
    under :data:`GONE_XCOM_KEY` and :data:`BUDGET_XCOM_KEY`). Keys and counts only."""
    deployment = resolve_deployment(deployment, settings_variable)
    run = _run_options(deployment, context)
    options = deployment.options(run, run_id=_run_id(context))
    cap = max_batches or max(1, min(_max_map_length() - 1, 1000))
    plan = plan_run(
        deployment.customers_conn_id,
        render_query(deployment, context),
        options=options,
        state_conn=deployment.state_conn_id,
        batch_size=run.batch_size,
        max_batches=cap,
    )
    log.info(
        "%d batch(es): %s",
        len(plan.batches),
        [(b["first"], b["last"], b["count"]) for b in plan.batches[:20]],
    )
    out = plan.to_xcom()
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=GONE_XCOM_KEY, value=out["gone"])
        ti.xcom_push(key=BUDGET_XCOM_KEY, value=out["budget"])
    return out["batches"]


def provision_batch_task(
    deployment: Deployment,
    settings_variable: str | None,
    batch: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Plan, apply and record one batch; return its secret-free summary."""
    from airflow_provider_bolna.failures import bolna_error_policy

    deployment = resolve_deployment(deployment, settings_variable)
    options = _options(deployment, context)
    with bolna_error_policy(deployment.bolna_conn_id):  # a refused key: no retries
        summary = provision_batch(
            deployment.customers_conn_id,
            render_query(deployment, context),
            batch,
            options=options,
            **_connections(deployment),
        )
    return summary.to_xcom()


def deprovision_gone_task(
    deployment: Deployment,
    settings_variable: str | None,
    gone: Iterable[str] | None,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Delete the trunks of the gone customers the run's plan allows (none when deletes are off)."""
    deployment = resolve_deployment(deployment, settings_variable)
    options = _options(deployment, context)
    keys = list(gone or [])
    if not options.deprovision or not keys:
        log.info("No customer gone from the source is to be deleted in this run")
        return {}
    summary = deprovision_gone(
        deployment.customers_conn_id,
        render_query(deployment, context),
        keys=keys,
        options=options,
        **_connections(deployment),
    )
    return summary.to_xcom()


def summarize_task(
    deployment: Deployment,
    settings_variable: str | None,
    results: Iterable[Any] | None,
    gone: Mapping[str, Any] | None,
    budget: Mapping[str, Any] | None,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Add the batch summaries up, print the table; fail on withheld deletes, or on any failed
    customer when ``fail_on_error`` is on."""
    deployment = resolve_deployment(deployment, settings_variable)
    run_options = _run_options(deployment, context)
    parts = [r for r in _materialize(results) if r]
    if gone:
        parts.append(gone)
    run = summarize(parts, budget=budget)
    log.info("\n%s", format_summary(run))
    if budget and budget.get("withheld"):
        raise ProvisioningFailed(str(budget.get("message")))
    if run_options.fail_on_error and run["failed_total"]:
        raise ProvisioningFailed(
            f"{run['failed_total']} customer(s) failed; first: "
            + "; ".join(str(r.get("reason")) for r in run["failed"][:5])
        )
    return run


def _max_map_length() -> int:
    try:
        from airflow.providers.common.compat.sdk import conf

        return conf.getint("core", "max_map_length", fallback=1024)
    except Exception:  # noqa: BLE001
        return 1024


def _materialize(results: Any) -> list[Any]:
    """Read a lazy XCom sequence by index (iterating it logs a spurious "XCom not found").

    A batch task that failed for good has no summary: it is logged and left out.
    """
    if results is None:
        return []
    try:
        size = len(results)
    except TypeError:
        return list(results)
    out = []
    for index in range(size):
        try:
            out.append(results[index])
        except Exception as exc:  # noqa: BLE001 - one missing summary must not hide the others
            log.warning("Batch %d has no summary (its task failed?): %s", index, exc)
    return out


# ---------------------------------------------------------------------- sign-up DAG


def resolve_signup_customers(context: Mapping[str, Any]) -> list[Any]:
    """The customers of a sign-up run: ``customer_id`` from the run's conf (REST / manual
    trigger) or from the extra of each triggering asset event, de-duplicated.

    Nothing else is accepted: a conf or an event with any other key is refused, so a trigger
    can never choose a query, a connection or a table.

    :raises RunRefused: another key, or a customer id that is not a string or integer of at
        most :data:`MAX_CUSTOMER_ID_LENGTH` characters.
    """
    ids: list[Any] = []
    conf = _conf(context)
    _only_customer_id(conf, "the run's conf")
    if conf.get("customer_id") is not None:
        ids.append(_customer_id(conf["customer_id"], "conf"))
    for asset_events in _event_lists(context.get(TRIGGERING_ASSET_EVENTS_KEY) or {}):
        for event in asset_events:
            extra = dict(getattr(event, "extra", None) or {})
            _only_customer_id(
                {k: v for k, v in extra.items() if k not in _AIRFLOW_EVENT_KEYS}, "an asset event"
            )
            if extra.get("customer_id") is not None:
                ids.append(_customer_id(extra["customer_id"], "asset event"))
    unique = list({str(i): i for i in ids}.values())
    if not unique:
        raise RunRefused(
            'no customer to provision: trigger with conf {"customer_id": ...} or emit an asset event '
            'whose extra is {"customer_id": ...}'
        )
    log.info("Signing up customer(s) %s", unique)
    return unique


def _only_customer_id(data: Mapping[str, Any], where: str) -> None:
    other = sorted(str(k) for k in data if k != "customer_id")
    if other:
        raise RunRefused(
            f"{where} may hold only customer_id; refused: {', '.join(k[:40] for k in other[:10])} "
            "(deployment settings are the DAG author's)"
        )


def _customer_id(value: Any, where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise RunRefused(f"customer_id ({where}) must be a string or an integer")
    if isinstance(value, str) and not 0 < len(value) <= MAX_CUSTOMER_ID_LENGTH:
        raise RunRefused(f"customer_id ({where}) must be 1-{MAX_CUSTOMER_ID_LENGTH} characters")
    return value


def _event_lists(events: Any) -> Iterable[Iterable[Any]]:
    try:
        return list(events.values())
    except AttributeError:
        return []


def provision_signup_task(
    deployment: Deployment, settings_variable: str | None, customer_ids: list[Any], context: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Provision the sign-up customers now (create, numbers inline) and record them.

    :return: ``[{"trunk_id", "expect_numbers", "bolna_conn_id", "expect_agents"}]`` — the
        sensor's arguments, one per customer (``expect_agents`` only where the customer's numbers
        have agents; ``bolna_conn_id`` as resolved with the settings Variable).
    :raises ProvisioningFailed: a customer could not be provisioned (reason in the message).
    """
    from airflow_provider_bolna.failures import bolna_error_policy

    deployment = resolve_deployment(deployment, settings_variable)
    # the deployment's run-option defaults apply, but a sign-up is never a dry run and never deletes
    run = deployment.defaults.model_copy(update={"dry_run": False})
    options = replace(deployment.options(run, run_id=_run_id(context)), deprovision=False)
    with bolna_error_policy(deployment.bolna_conn_id):
        summary = provision_customers(
            deployment.customers_conn_id,
            render_query(deployment, context),
            customer_ids,
            options=options,
            include_customers=True,
            **_connections(deployment),
        )
    log.info("Sign-up: %s", summary.counts)
    if summary.counts.get("busy"):
        raise ProvisioningBusy(
            f"{summary.counts['busy']} customer(s) are being provisioned by another run right now; "
            "retrying later"
        )
    found = {str(c["customer_id"]) for c in summary.customers}
    missing = [c for c in customer_ids if str(c) not in found]
    if summary.failed_total or missing:
        reasons = [str(r["reason"]) for r in summary.failed] + [
            f"customer {c}: not returned by the query" for c in missing
        ]
        raise ProvisioningFailed("; ".join(reasons))
    # the connection travels with each item: the settings Variable may have changed it since parse time
    return [
        {
            "trunk_id": c["trunk_id"],
            "expect_numbers": c["numbers"],
            "bolna_conn_id": deployment.bolna_conn_id,
            **({"expect_agents": c["agents"]} if c.get("agents") else {}),
        }
        for c in summary.customers
        if c["trunk_id"]
    ]
