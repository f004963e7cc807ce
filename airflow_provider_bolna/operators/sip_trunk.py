"""Operators for Bolna SIP trunks (create, update, delete), and the import path of every Bolna
operator: the phone-number operators live in :mod:`~airflow_provider_bolna.operators.phone_numbers`,
the agent-binding ones in :mod:`~airflow_provider_bolna.operators.agents`, the shared base in
:mod:`~airflow_provider_bolna.operators.base`.

Every operator is safe to retry and to rerun (Airflow retries tasks, users clear them,
workers die mid-call): creation goes through :meth:`BolnaHook.ensure_trunk` /
:meth:`BolnaHook.ensure_number` (look before writing, adopt what already exists), updates
are PATCHes of the given fields (idempotent), and deletes treat "already gone" as success.

Failure policy (:mod:`airflow_provider_bolna.failures`, the same for every operator and the
sensor): errors a retry cannot fix (a refused key, an invalid spec/update/number, an
unreadable password reference, a conflict) raise ``AirflowFailException`` (no retries), chained
to the original; transient errors (429, 5xx, timeouts, already retried inside the hook)
propagate, so Airflow's own retries apply, and the rerun is safe.

Secrets: the XComs are small, secret-free dicts; password fields may be references
(``{"conn": id}`` / ``{"variable": key}``, see :mod:`airflow_provider_bolna.secrets_ref`)
resolved inside ``execute()`` only; plain passwords are masked right after rendering.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, conf

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.dag_input import json_object
from airflow_provider_bolna.exceptions import (
    BolnaPhoneNumbersError,
    BolnaTrunkNotReadyError,
    BolnaValidationError,
)

# PERMANENT_ERRORS and bolna_error_policy moved to failures: importable from here as before
from airflow_provider_bolna.failures import PERMANENT_ERRORS, bolna_error_policy, raise_for_error_event  # noqa: F401
from airflow_provider_bolna.hooks.bolna import IfExists
from airflow_provider_bolna.links import BolnaSIPTrunkLink
from airflow_provider_bolna.models import (
    SIPTrunkUpdateRequest,
    SpecError,
    TrunkSpec,
    number_key,
    parse_agent_ids,
    parse_number_agents,
    parse_trunk_spec,
)
from airflow_provider_bolna.operators.agents import (
    SetAgentTelephonyProviderOperator,
    SetInboundAgentOperator,
    UnlinkInboundAgentOperator,
    bind_agents,
    inbound_agents_of,
    split_number_agents,
)
from airflow_provider_bolna.operators.base import BolnaBaseOperator, trunk_id_of
from airflow_provider_bolna.operators.phone_numbers import AddPhoneNumbersOperator, RemovePhoneNumberOperator
from airflow_provider_bolna.readiness import DEFER_GRACE_SECONDS
from airflow_provider_bolna.secrets.refs import PasswordRefPolicy, mask_plain_secrets, resolve_secret_refs
from airflow_provider_bolna.triggers import sip_trunk_trigger, validate_event

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = [
    "AddPhoneNumbersOperator",
    "BolnaBaseOperator",
    "BolnaPhoneNumbersError",
    "CreateSIPTrunkOperator",
    "DeleteSIPTrunkOperator",
    "RemovePhoneNumberOperator",
    "SetAgentTelephonyProviderOperator",
    "SetInboundAgentOperator",
    "UnlinkInboundAgentOperator",
    "UpdateSIPTrunkOperator",
    "build_trunk_spec",
]


def _as_trunk_input(trunk: Any) -> TrunkSpec | dict[str, Any]:
    if isinstance(trunk, TrunkSpec):
        return trunk
    return json_object(
        trunk,
        "trunk",
        not_json="a string trunk must be a JSON object; pass a dict",
        expected="a dict or TrunkSpec",
    )


def build_trunk_spec(
    trunk: Any,
    context_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    password_refs: PasswordRefPolicy | None = None,
    number_agents: dict[str, str] | None = None,
) -> TrunkSpec:
    """Resolve password references, mask passwords, validate: the spec to send.

    :param trunk: a dict (possibly with password references), a JSON string or a :class:`TrunkSpec`.
    :param context_name: prefix for error messages.
    :param params: the run's params, for ``{"param": name}`` references.
    :param password_refs: which references a param's value (chosen by whoever triggers the run)
        may use; default: none.
    :param number_agents: receives the ``agent_id`` of each ``phone_numbers`` entry (``{number:
        agent_id}``), taken out of the spec; without it such an entry is refused as an unknown field.
    :raises SpecError: naming every invalid field (no values).
    :raises SecretRefError: a reference cannot be resolved or is refused.
    """
    raw = _as_trunk_input(trunk)
    if number_agents is not None:
        raw, found = split_number_agents(raw)
        number_agents.update(found)
    if isinstance(raw, TrunkSpec):
        mask_plain_secrets(raw)
        return raw
    data = resolve_secret_refs(raw, params=params, param_policy=password_refs)
    return parse_trunk_spec(data, context=context_name)


class CreateSIPTrunkOperator(BolnaBaseOperator):
    """Make a SIP trunk exist (get-or-create by name), bind it to voice agents, optionally wait
    until it is ready: the one-task path for one customer.

    Safe to retry and rerun: the trunk is looked up by name first; an existing trunk is
    adopted (``if_exists="adopt"``), patched where it drifted (``"update"``: one PATCH with
    only the differing fields) or refused (``"fail"``). Missing numbers of the spec are
    added, extra ones are left alone.

    Agents (optional): each number of the spec is mapped to its inbound agent (its own from
    ``inbound_agents`` or its spec entry's ``agent_id``, else ``inbound_agent_id``; a number with
    neither is left alone), and each agent of ``outbound_agent_ids`` is switched to place calls
    through the trunk (telephony provider ``sip-trunk``). A mapping the trunk's number list
    already shows is not sent again; every binding is tried, then the task fails listing the
    failed ones (without retries when each is permanent, e.g. an unknown agent). With
    ``wait_for_ready`` the wait also checks the mappings where the API shows them.

    Returns (XCom) ``{"trunk_id", "name", "action", "numbers_added", "patched_fields",
    "numbers"}`` where ``action`` is ``created``, ``adopted``, ``updated`` or ``unchanged``, plus
    ``"inbound_agents": [{"phone_number", "phone_number_id", "agent_id", "action", "verified",
    "previous_agent_id"}]`` and ``"outbound_agents": [{"agent_id", "provider", "action"}]`` when
    agents are given; also pushes XCom ``trunk_id`` (``task.output["trunk_id"]``) and
    ``bolna_trunk_url``.

    :param trunk: the trunk spec — a dict (templated; may come from XCom or params), a JSON
        string or a :class:`~airflow_provider_bolna.models.TrunkSpec`. Password fields may be
        references: ``{"conn": "carrier_acme"}`` (that connection's password),
        ``{"variable": "acme_sip_password"}`` or ``{"param": "sip_password"}`` (a run param
        holding either), resolved inside ``execute()`` only. ``phone_numbers`` entries may be
        plain strings.
    :param if_exists: ``adopt``, ``update`` or ``fail`` (templated).
    :param bolna_conn_id: the Bolna connection (templated).
    :param wait_for_ready: after creating, wait until the trunk is active and every spec
        number is visible (deferring to :class:`SIPTrunkTrigger` when ``deferrable``).
    :param deferrable: wait in the triggerer instead of on a worker slot.
    :param poll_interval: seconds between readiness checks.
    :param ready_timeout: seconds to wait for readiness before failing.
    :param password_refs: which password references a param may hold (its value is chosen by
        whoever triggers the run): a :class:`~airflow_provider_bolna.secrets.refs.PasswordRefPolicy`
        or its dict, e.g. ``{"conn_prefixes": ["carrier_"]}``; default: none. References written
        in the DAG file itself are the author's and always resolve. Not templated.
    :param inbound_agent_id: the agent that answers every number of the spec without one of its
        own (templated).
    :param inbound_agents: ``{number: agent_id}`` for numbers with their own agent (templated);
        a ``phone_numbers`` entry of the spec may instead carry ``agent_id``.
    :param outbound_agent_ids: agents that place calls through this trunk (templated).
    """

    template_fields: Sequence[str] = (
        "trunk",
        "if_exists",
        "bolna_conn_id",
        "inbound_agent_id",
        "inbound_agents",
        "outbound_agent_ids",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "trunk": "json",
        "inbound_agents": "json",
        "outbound_agent_ids": "json",
    }
    operator_extra_links = (BolnaSIPTrunkLink(),)

    def __init__(
        self,
        *,
        trunk: dict[str, Any] | TrunkSpec | str,
        if_exists: IfExists = "adopt",
        bolna_conn_id: str = DEFAULT_CONN_ID,
        wait_for_ready: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        ready_timeout: float = 300.0,
        password_refs: PasswordRefPolicy | Mapping[str, Any] | None = None,
        inbound_agent_id: str | None = None,
        inbound_agents: Mapping[str, str] | None = None,
        outbound_agent_ids: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(bolna_conn_id=bolna_conn_id, **kwargs)
        self.trunk = trunk
        self.password_refs = PasswordRefPolicy.of(password_refs)
        self.if_exists = if_exists
        self.wait_for_ready = wait_for_ready
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout
        self.inbound_agent_id = inbound_agent_id
        self.inbound_agents = inbound_agents
        self.outbound_agent_ids = outbound_agent_ids

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render, then mask plain-text passwords before Airflow stores the rendered fields."""
        super().render_template_fields(context, jinja_env)
        mask_plain_secrets(self.trunk)

    def execute(self, context: Context) -> dict[str, Any]:
        if self.if_exists not in ("adopt", "update", "fail"):
            raise AirflowFailException(
                f"if_exists must be 'adopt', 'update' or 'fail', not {self.if_exists!r}"
            )
        try:
            self._push_trunk(context, None)
            with bolna_error_policy(self.bolna_conn_id):
                entry_agents: dict[str, str] = {}
                spec = build_trunk_spec(
                    self.trunk,
                    params=context.get("params"),
                    password_refs=self.password_refs,
                    number_agents=entry_agents,
                )
                inbound, outbound = self._agents(spec, entry_agents)
                self.log.info("Ensuring SIP trunk %s exists (if_exists=%s)", spec.name, self.if_exists)
                result = self.hook.ensure_trunk(spec, if_exists=self.if_exists)
                xcom = result.to_xcom()
                xcom["numbers"] = _numbers_on(result, spec)
                self._push_trunk(context, result.trunk.id)
                self.log.info(
                    "SIP trunk %s (%s): %s; numbers added: %s; patched: %s",
                    result.trunk.name,
                    result.trunk.id,
                    result.action,
                    ", ".join(result.numbers_added) or "none",
                    ", ".join(result.patched_fields) or "none",
                )
                if inbound or outbound:
                    xcom["inbound_agents"], xcom["outbound_agents"] = bind_agents(
                        self.hook, result.trunk.id, inbound, outbound, result.trunk.active_numbers, self.log
                    )
                if not self.wait_for_ready:
                    return xcom
                expect = [n.phone_number for n in spec.phone_numbers]
                if self.deferrable:
                    deadline = time.time() + float(self.ready_timeout)
                    self.log.info(
                        "Deferring until trunk %s is ready (deadline in %ss)",
                        result.trunk.id,
                        self.ready_timeout,
                    )
                    self.defer(
                        trigger=sip_trunk_trigger(
                            trunk_id=result.trunk.id,
                            expect_active=True,
                            expect_numbers=expect,
                            expect_agents=inbound,
                            poll_interval=self.poll_interval,
                            deadline=deadline,
                            bolna_conn_id=self.bolna_conn_id,
                        ),
                        method_name="execute_complete",
                        kwargs={"result": xcom},
                        timeout=timedelta(seconds=float(self.ready_timeout) + DEFER_GRACE_SECONDS),
                    )
                self._wait_sync(result.trunk.id, expect, inbound)
                return xcom
        finally:
            self._close_hook()

    def _agents(self, spec: TrunkSpec, entry_agents: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """``({number: inbound agent}, outbound agent ids)`` from the arguments, checked."""
        default = self.inbound_agent_id or None  # a template that rendered empty: no default agent
        if default is not None and (not isinstance(default, str) or not default.strip()):
            raise BolnaValidationError("inbound_agent_id: must be a non-blank string")
        per_number = parse_number_agents(self.inbound_agents, "inbound_agents")
        inbound = inbound_agents_of(spec, default, per_number, entry_agents)
        return inbound, parse_agent_ids(self.outbound_agent_ids, "outbound_agent_ids")

    def _wait_sync(self, trunk_id: str, expect: list[str], agents: Mapping[str, str]) -> None:
        deadline = time.monotonic() + float(self.ready_timeout)
        while True:
            status = self.hook.check_trunk_ready(
                trunk_id=trunk_id, expect_active=True, expect_numbers=expect, expect_agents=agents
            )
            if status.done:
                self.log.info("%s", status.message)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BolnaTrunkNotReadyError(f"not ready after {self.ready_timeout}s: {status.message}")
            self.log.info("%s; checking again in %.1fs", status.message, min(self.poll_interval, remaining))
            time.sleep(min(float(self.poll_interval), remaining))

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after :class:`SIPTrunkTrigger`: return the creation result, or raise."""
        event = validate_event(event)
        if event["status"] == "success":
            self.log.info("%s", event["message"])
            return dict(result or {"trunk_id": event.get("trunk_id")})
        if event["status"] == "timeout":
            raise BolnaTrunkNotReadyError(f"not ready after {self.ready_timeout}s: {event['message']}")
        raise_for_error_event(event, self.bolna_conn_id)


def _numbers_on(result: Any, spec: TrunkSpec) -> list[str]:
    """Numbers known to be on the trunk: the spec's (all ensured) plus any others seen."""
    seen: dict[str, str] = {n.key: n.phone_number for n in spec.phone_numbers}
    for n in result.trunk.active_numbers:
        seen.setdefault(n.key, n.phone_number)
    return sorted(seen.values(), key=number_key)


class UpdateSIPTrunkOperator(BolnaBaseOperator):
    """PATCH the given fields of a SIP trunk (and nothing else).

    Validated before sending (unknown/immutable fields, ``sdes`` without TLS, ... fail the task
    without retries). PATCH is idempotent, so retries and reruns are safe. ``auth_password``
    may be a reference (``{"conn": ...}`` / ``{"variable": ...}``).

    Returns (XCom) ``{"trunk_id", "name", "updated_fields"}``; pushes ``bolna_trunk_url``.

    :param trunk_id: the trunk's id (templated).
    :param update: the fields to change (templated), e.g. ``{"qualify_frequency": 30}``.
    :param bolna_conn_id: the Bolna connection (templated).
    :param password_refs: which password references a param may hold (as for
        :class:`CreateSIPTrunkOperator`); default: none. Not templated.
    """

    template_fields: Sequence[str] = ("trunk_id", "update", "bolna_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"update": "json"}
    operator_extra_links = (BolnaSIPTrunkLink(),)

    def __init__(
        self,
        *,
        trunk_id: str,
        update: dict[str, Any] | SIPTrunkUpdateRequest,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        password_refs: PasswordRefPolicy | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(bolna_conn_id=bolna_conn_id, **kwargs)
        self.trunk_id = trunk_id
        self.update = update
        self.password_refs = PasswordRefPolicy.of(password_refs)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render, then mask plain-text passwords before Airflow stores the rendered fields."""
        super().render_template_fields(context, jinja_env)
        mask_plain_secrets(self.update)

    def _build_update(self, params: Mapping[str, Any] | None = None) -> SIPTrunkUpdateRequest:
        if isinstance(self.update, SIPTrunkUpdateRequest):
            mask_plain_secrets(self.update)
            return self.update
        update = json_object(
            self.update, "update", not_json="a string update must be a JSON object", expected="a dict"
        )
        from pydantic import ValidationError

        try:
            return SIPTrunkUpdateRequest.model_validate(
                resolve_secret_refs(update, params=params, param_policy=self.password_refs)
            )
        except ValidationError as exc:
            raise SpecError.from_validation_error(exc, context="update") from None

    def execute(self, context: Context) -> dict[str, Any]:
        trunk_id = trunk_id_of(self.trunk_id)
        try:
            with bolna_error_policy(self.bolna_conn_id):
                update = self._build_update(context.get("params"))
                self._push_trunk(context, trunk_id)
                self.log.info("Updating SIP trunk %s: %s", trunk_id, ", ".join(update.fields))
                trunk = self.hook.update_trunk(trunk_id, update)
                return {"trunk_id": trunk.id, "name": trunk.name, "updated_fields": update.fields}
        finally:
            self._close_hook()


class DeleteSIPTrunkOperator(BolnaBaseOperator):
    """Delete a SIP trunk (its numbers are soft-deleted with it). A missing trunk is success.

    Returns (XCom) ``{"trunk_id", "deleted"}``: ``deleted`` is ``False`` when the trunk was
    already gone (404), e.g. on a retry after a worker died right after the DELETE.

    :param trunk_id: the trunk's id (templated).
    :param deactivate_first: ``PATCH is_active=false`` before deleting, as Bolna advises, so
        new calls stop before the trunk disappears.
    :param bolna_conn_id: the Bolna connection (templated).
    """

    template_fields: Sequence[str] = ("trunk_id", "bolna_conn_id")

    def __init__(
        self,
        *,
        trunk_id: str,
        deactivate_first: bool = False,
        bolna_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(bolna_conn_id=bolna_conn_id, **kwargs)
        self.trunk_id = trunk_id
        self.deactivate_first = deactivate_first

    def execute(self, context: Context) -> dict[str, Any]:
        trunk_id = trunk_id_of(self.trunk_id)
        try:
            with bolna_error_policy(self.bolna_conn_id):
                deleted = self.hook.delete_trunk(
                    trunk_id, missing_ok=True, deactivate_first=self.deactivate_first
                )
        finally:
            self._close_hook()
        if deleted:
            self.log.info("Deleted SIP trunk %s", trunk_id)
        else:
            self.log.info("SIP trunk %s was already gone; nothing to delete", trunk_id)
        return {"trunk_id": trunk_id, "deleted": deleted}
