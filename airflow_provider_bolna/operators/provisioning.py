"""Thin Airflow adapters of the provisioning engine, used by the ``bolna_bulk_provision`` and
``bolna_customer_signup`` DAGs (and usable from your own TaskFlow tasks).

Each function takes the task ``context`` (for params and Jinja rendering) and returns what goes
to XCom: batch descriptors (key ranges), secret-free summaries, trunk ids. SIP passwords are
read inside the batch task that sends them and never leave it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_bolna.operators.sip_trunk import bolna_error_policy
from airflow_provider_bolna.provisioning.engine import (
    DEFAULT_BOLNA_CONN_ID,
    ProvisionOptions,
    format_summary,
    plan_batches,
    provision_batch,
    provision_customers,
    summarize,
)
from airflow_provider_bolna.provisioning.gone import deprovision_gone
from airflow_provider_bolna.provisioning.mapping import DEFAULT_NAME_TEMPLATE
from airflow_provider_bolna.provisioning.state import DEFAULT_STATE_TABLE

__all__ = [
    "BULK_PARAM_DEFAULTS",
    "ProvisioningFailed",
    "deprovision_gone_task",
    "options_from_params",
    "plan_batches_task",
    "provision_batch_task",
    "provision_signup_task",
    "render_query",
    "resolve_signup_customers",
    "summarize_task",
]

log = logging.getLogger(__name__)

#: Defaults of the DAG params (the DAG files repeat them as ``Param`` objects for the UI form).
BULK_PARAM_DEFAULTS: dict[str, Any] = {
    "dry_run": False,
    "batch_size": 500,
    "concurrency": 8,
    "parallel_batches": 4,
    "requests_per_minute": None,
    "deprovision": False,
    "max_deprovision": 100,
    "drift_check": False,
    "fail_on_error": False,
    "customers_conn_id": "bolna_customers",
    "query": "SELECT * FROM customers",
    "state_conn_id": None,
    "state_table": DEFAULT_STATE_TABLE,
    "bolna_conn_id": DEFAULT_BOLNA_CONN_ID,
    "name_template": DEFAULT_NAME_TEMPLATE,
}


class ProvisioningFailed(AirflowFailException):
    """Customers failed and ``fail_on_error`` is on (no retry: the summary lists why)."""


def _params(context: Mapping[str, Any]) -> dict[str, Any]:
    params = dict(BULK_PARAM_DEFAULTS)
    params.update({k: v for k, v in dict(context.get("params") or {}).items()})
    return params


def render_query(context: Mapping[str, Any]) -> str:
    """The ``query`` param rendered with Jinja (``{{ ds }}``, ``{{ var.value.x }}`` ...)."""
    query = str(_params(context)["query"])
    task = context.get("task")
    if task is not None and ("{{" in query or "{%" in query):
        query = task.render_template(query, context)
    return query


def options_from_params(params: Mapping[str, Any]) -> ProvisionOptions:
    """:class:`ProvisionOptions` from DAG params."""
    return ProvisionOptions.from_dict(params)


def _conns(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "bolna_conn_id": params.get("bolna_conn_id") or DEFAULT_BOLNA_CONN_ID,
        "state_conn": params.get("state_conn_id") or None,
    }


def _max_map_length() -> int:
    try:
        from airflow.providers.common.compat.sdk import conf

        return conf.getint("core", "max_map_length", fallback=1024)
    except Exception:  # noqa: BLE001
        return 1024


def plan_batches_task(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Read customer keys (keyset pages) and cut them into key-range batch descriptors.

    The number of batches stays below ``[core] max_map_length`` by growing the batch size.
    Also creates the state table up front (so parallel batches do not race to create it).
    """
    params = _params(context)
    options = options_from_params(params)
    if not options.dry_run:
        from airflow_provider_bolna.provisioning.state import StateStore

        with StateStore(params.get("state_conn_id") or params["customers_conn_id"], options.state_table) as store:
            store.ensure_table()
    cap = max(1, min(_max_map_length() - 1, 1000))
    batches = plan_batches(params["customers_conn_id"], render_query(context),
                           batch_size=int(params["batch_size"]), max_batches=cap)
    log.info("%d batch(es): %s", len(batches), [(b["first"], b["last"], b["count"]) for b in batches[:20]])
    return batches


def provision_batch_task(batch: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Plan, apply and record one batch; return its secret-free summary."""
    params = _params(context)
    with bolna_error_policy(params.get("bolna_conn_id") or "bolna_default"):  # a refused key: no retries
        summary = provision_batch(params["customers_conn_id"], render_query(context), batch,
                                  options=options_from_params(params), **_conns(params))
    return summary.to_xcom()


def deprovision_gone_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """When ``deprovision`` is on: delete the trunks of customers gone from the source."""
    params = _params(context)
    if not params.get("deprovision"):
        log.info("deprovision is off: customers gone from the source are left alone")
        return {}
    summary = deprovision_gone(params["customers_conn_id"], render_query(context),
                               options=options_from_params(params), **_conns(params))
    return summary.to_xcom()


def summarize_task(results: Iterable[Mapping[str, Any] | None], gone: Mapping[str, Any] | None,
                   context: Mapping[str, Any]) -> dict[str, Any]:
    """Add the batch summaries up, print the table, fail if asked to on any failure."""
    params = _params(context)
    parts = [r for r in _materialize(results) if r]
    if gone:
        parts.append(gone)
    run = summarize(parts)
    log.info("\n%s", format_summary(run))
    if params.get("fail_on_error") and run["failed_total"]:
        raise ProvisioningFailed(
            f"{run['failed_total']} customer(s) failed; first: "
            + "; ".join(str(r.get("reason")) for r in run["failed"][:5])
        )
    return run


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


# ---------------------------------------------------------------------- sign-up


def resolve_signup_customers(context: Mapping[str, Any]) -> list[Any]:
    """The customers of a sign-up run: ``params.customer_id`` (REST/manual trigger) or the
    ``customer_id`` (or ``customer_ids``) in the extra of the triggering asset events."""
    params = dict(context.get("params") or {})
    ids: list[Any] = []
    if params.get("customer_id") not in (None, ""):
        ids.append(params["customer_id"])
    events = context.get("triggering_asset_events") or {}
    for asset_events in _event_lists(events):
        for event in asset_events:
            extra = getattr(event, "extra", None) or {}
            if extra.get("customer_id") not in (None, ""):
                ids.append(extra["customer_id"])
            ids += list(extra.get("customer_ids") or [])
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ValueError(
            "no customer to provision: trigger with conf {\"customer_id\": ...} or emit an asset event "
            "whose extra has \"customer_id\""
        )
    log.info("Signing up customer(s) %s", ids)
    return ids


def _event_lists(events: Any) -> Iterable[Iterable[Any]]:
    try:
        return list(events.values())
    except AttributeError:
        return []


def provision_signup_task(customer_ids: list[Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Provision the sign-up customers now (create, numbers inline) and record them.

    :return: ``[{"trunk_id", "expect_numbers"}]`` — the sensor's arguments, one per customer.
    :raises ProvisioningFailed: a customer could not be provisioned (reason in the message).
    """
    params = _params(context)
    options = ProvisionOptions.from_dict({**params, "dry_run": False, "deprovision": False})
    summary = provision_customers(params["customers_conn_id"], render_query(context), customer_ids,
                                  options=options, include_customers=True, **_conns(params))
    log.info("Sign-up: %s", summary.counts)
    found = {str(c["customer_id"]) for c in summary.customers}
    missing = [c for c in customer_ids if str(c) not in found]
    if summary.failed_total or missing:
        reasons = [str(r["reason"]) for r in summary.failed] + [f"customer {c}: not returned by the query" for c in missing]
        raise ProvisioningFailed("; ".join(reasons))
    return [{"trunk_id": c["trunk_id"], "expect_numbers": c["numbers"]} for c in summary.customers if c["trunk_id"]]
