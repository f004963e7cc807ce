"""Plan: desired (customer rows) vs recorded (state table) vs actual (one list call) → actions.

Planning is two pure steps so that the caller decides whether to spend a request:

1. :meth:`Planner.prepare` hashes every spec and compares it with the state table. A customer
   whose spec hash is unchanged and whose status is ``provisioned`` is ``unchanged`` without
   looking at the API (unless ``drift_check``). :attr:`Draft.needs_lookup` tells which
   customers need the actual trunk; when none do, no list call is made at all.
2. :meth:`Planner.finish` diffs each remaining spec with the actual trunk of its name (from one
   ``GET /sip-trunks/trunks`` per batch): create / update (drifted fields, missing numbers,
   extra numbers) / adopt / unchanged / deprovision / skip / invalid.

A customer the state table has never seen is planned as a create without a look-up (unless
``look_before_create``): the API's list call returns the whole account (no name filter, no
paging), so listing it for every batch of new customers costs O(account) per batch and
O(N²) for a bulk run. Such a create cannot duplicate a trunk: a run that dies after sending
it leaves a ``pending`` state row (written before the POST), which makes the next run look
the name up; a trunk made outside this provider holds its name, which the API refuses to
reuse, and the apply step then adopts it (:class:`~.apply.TakenNames`).

The plan's types (:class:`Action`, :class:`PlanItem`, :class:`Plan`) are in :mod:`.plan_items`
(re-exported here); :meth:`Plan.table` prints the plan without secrets (it is the output of a
dry run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_bolna.models import SIPTrunk, SIPTrunkUpdateRequest, SpecError, TrunkSpec, number_key
from airflow_provider_bolna.provisioning.bindings import BindingWork, plan_bindings
from airflow_provider_bolna.provisioning.mapping import MappedCustomer
from airflow_provider_bolna.provisioning.plan_items import Action, Plan, PlanItem
from airflow_provider_bolna.provisioning.state_schema import StateRow

__all__ = ["Action", "Draft", "Plan", "PlanItem", "Planner", "hmac_key_for", "secret_hash"]


def hmac_key_for(api_key: str) -> bytes:
    """The hash key of earlier versions: sha256 of the API key. Hashes made with it are still
    recognised (see ``Planner.legacy_keys``) but no longer written: rotating the API key must
    not make every customer look changed."""
    return hashlib.sha256(api_key.encode()).digest()


def secret_hash(spec: TrunkSpec, key: bytes) -> str | None:
    """HMAC-SHA256 of the spec's password, or ``None`` when it has none
    (:meth:`~airflow_provider_bolna.models.TrunkSpec.password_hash`)."""
    return spec.password_hash(key)


@dataclass
class Draft:
    """A customer after the state comparison, before the API is consulted."""

    customer: MappedCustomer
    state: StateRow | None
    spec_hash: str | None
    secret_hash: str | None = field(default=None, repr=False)
    decided: PlanItem | None = None

    @property
    def needs_lookup(self) -> bool:
        """True when the actual trunk must be read to decide."""
        return self.decided is None


class Planner:
    """Diff desired customers against the state table and the API.

    :param hmac_key: key of spec/password hashes (the scope's salt, see
        :meth:`~.state.StateStore.fingerprint_key`).
    :param legacy_keys: keys earlier versions hashed with (:func:`hmac_key_for` of the API key):
        a row hashed with one of them still counts as unchanged, and is re-recorded with
        ``hmac_key`` (an upgrade sends nothing).
    :param deletes: the customer keys (text) this batch may deprovision: the run's deletion
        plan, within its budget. Churned customers outside it are skipped with the reason.
        ``None``: this batch deletes nothing.
    :param drift_check: look at the API even for customers whose spec hash is unchanged.
    :param remove_extra_numbers: remove numbers on the trunk that the spec does not list.
    :param look_before_create: look up customers the state table has never seen too (one list
        call per batch) instead of creating them directly; a dry run does, to tell ``create``
        from ``adopt``.
    :param verify_before: rows last verified before this instant (or never) are looked up too,
        so that a trunk deleted on Bolna's side is recreated; ``None`` = no such check.
    :param adopt_existing: adopt a trunk holding a customer's name that no scope recorded.
    :param skip_reason: why churned customers outside ``deletes`` are skipped.
    :param switched: agents this scope already switched to the SIP trunk (their outbound
        provider is not sent again).
    """

    def __init__(
        self,
        hmac_key: bytes,
        *,
        legacy_keys: Iterable[bytes] = (),
        deletes: Iterable[str] | None = None,
        drift_check: bool = False,
        remove_extra_numbers: bool = True,
        look_before_create: bool = False,
        verify_before: datetime | None = None,
        adopt_existing: bool = True,
        skip_reason: str = "churned; not among the run's planned deletes",
        switched: Iterable[str] = (),
    ) -> None:
        self.hmac_key = hmac_key
        self.legacy_keys = tuple(legacy_keys)
        self.deletes = None if deletes is None else {str(k) for k in deletes}
        self.drift_check = drift_check
        self.remove_extra_numbers = remove_extra_numbers
        self.look_before_create = look_before_create
        self.verify_before = verify_before
        self.adopt_existing = adopt_existing
        self.skip_reason = skip_reason
        self.switched = set(switched)

    # ------------------------------------------------------------------ step 1

    def prepare(self, customers: Iterable[MappedCustomer], state: Mapping[str, StateRow]) -> list[Draft]:
        """Decide what the state table alone can decide; the rest needs the actual trunk."""
        drafts = []
        for customer in customers:
            recorded = state.get(customer.key)
            draft = self._prepare_one(customer, recorded)
            if draft.decided is not None:
                draft.decided = self._bind(draft.decided, recorded)
            drafts.append(draft)
        return drafts

    def _prepare_one(self, customer: MappedCustomer, recorded: StateRow | None) -> Draft:
        if not customer.valid:
            same = (
                recorded is not None and recorded.status == "failed" and recorded.last_error == customer.error
            )
            item = PlanItem(
                customer,
                Action.INVALID,
                trunk_id=recorded.trunk_id if recorded else None,
                reason=customer.error,
                record=not same,
                fields=customer.fields,
            )
            return Draft(customer, recorded, None, decided=item)
        if customer.status == "churned":
            return Draft(customer, recorded, None, decided=self._churned(customer, recorded))
        spec = customer.spec
        assert spec is not None
        fp = spec.fingerprint(self.hmac_key)
        sh = secret_hash(spec, self.hmac_key)
        draft = Draft(customer, recorded, fp, sh)
        if (
            recorded is not None
            and recorded.status == "provisioned"
            and not self.drift_check
            and not self._due(recorded)
        ):
            rekeyed = recorded.spec_hash != fp  # recorded under an older hash: record the new one
            if not rekeyed or self._legacy_match(spec, recorded):
                draft.decided = PlanItem(
                    customer,
                    Action.UNCHANGED,
                    trunk_id=recorded.trunk_id,
                    spec_hash=fp,
                    secret_hash=sh,
                    reason="spec hash unchanged (re-keyed)" if rekeyed else "spec hash unchanged",
                    record=rekeyed,
                )
        elif recorded is None and not (self.look_before_create or self.drift_check):
            draft.decided = self._create(draft, spec)  # never attempted: nothing of ours to find
        return draft

    def _due(self, recorded: StateRow) -> bool:
        """Whether the row's trunk is due for a check on Bolna (self-healing)."""
        if self.verify_before is None:
            return False
        return recorded.verified_at is None or recorded.verified_at < self.verify_before

    def _legacy_match(self, spec: TrunkSpec, recorded: StateRow) -> bool:
        """Whether the row was hashed by an earlier version, with a key derived from the API key."""
        return any(recorded.spec_hash == spec.fingerprint(key) for key in self.legacy_keys)

    @staticmethod
    def _create(draft: Draft, spec: TrunkSpec) -> PlanItem:
        return PlanItem(
            draft.customer,
            Action.CREATE,
            add_numbers=[n.phone_number for n in spec.phone_numbers],
            spec_hash=draft.spec_hash,
            secret_hash=draft.secret_hash,
        )

    def _churned(self, customer: MappedCustomer, recorded: StateRow | None) -> PlanItem | None:
        if recorded is None:
            return PlanItem(customer, Action.SKIP, reason="churned; never provisioned here", record=False)
        if recorded.status == "deprovisioned":
            return PlanItem(
                customer,
                Action.UNCHANGED,
                trunk_id=recorded.trunk_id,
                reason="already deprovisioned",
                record=False,
            )
        if self.deletes is None or customer.key not in self.deletes:
            return PlanItem(
                customer, Action.SKIP, trunk_id=recorded.trunk_id, reason=self.skip_reason, record=False
            )
        if recorded.trunk_id is None:
            return None  # a trunk may exist without our record of its id: look it up
        return PlanItem(customer, Action.DEPROVISION, trunk_id=recorded.trunk_id, reason="churned")

    @staticmethod
    def busy(draft: Draft) -> None:
        """Another run holds this customer's writer lease: leave it to that run (nothing recorded)."""
        draft.decided = PlanItem(
            draft.customer,
            Action.BUSY,
            record=False,
            reason=f"customer {draft.customer.key}: another run is provisioning it right now "
            "(its writer lease is held); left to that run",
        )

    @staticmethod
    def lookup_names(drafts: Iterable[Draft]) -> list[str]:
        """Trunk names whose actual state is needed (empty = no list call)."""
        return [d.customer.trunk_name for d in drafts if d.needs_lookup]

    @staticmethod
    def lookup_ids(drafts: Iterable[Draft]) -> list[str]:
        """Recorded trunk ids of the customers being looked up: a trunk renamed on Bolna's side
        is found by its id, not duplicated under its old name."""
        return [
            d.state.trunk_id for d in drafts if d.needs_lookup and d.state is not None and d.state.trunk_id
        ]

    # ------------------------------------------------------------------ step 2

    def finish(
        self,
        drafts: list[Draft],
        actual: Mapping[str, SIPTrunk] | None,
        *,
        by_id: Mapping[str, SIPTrunk] | None = None,
        owners: Mapping[str, str] | None = None,
    ) -> Plan:
        """Complete the plan with the actual trunks of the customers that need them.

        :param drafts: from :meth:`prepare`.
        :param actual: trunk name → trunk, for the names of :meth:`lookup_names`; ``None`` if
            no lookup was made (only valid when no draft needs one).
        :param by_id: trunk id → trunk, for the ids of :meth:`lookup_ids` (found first).
        :param owners: trunk name or id → the *other* scope that recorded it: such a trunk is
            not ours to adopt or change.
        """
        items: list[PlanItem] = []
        looked_up = 0
        owners = owners or {}
        for draft in drafts:
            if draft.decided is not None:
                items.append(self._refuse_foreign(draft.decided, owners))
                continue
            if actual is None:
                raise ValueError(
                    f"customer {draft.customer.key} needs the actual trunk but no lookup was made"
                )
            looked_up += 1
            trunk, renamed = self._find(draft, actual, by_id or {})
            owner = self._owner(draft.customer.trunk_name, trunk, owners)
            if owner is not None:
                items.append(self._foreign(draft.customer, owner, trunk))
                continue
            items.append(self._bind(self._diff(draft, trunk, renamed), draft.state))
        return Plan(items, looked_up)

    def _bind(self, item: PlanItem, recorded: StateRow | None) -> PlanItem:
        """Add the binding work: numbers to (re)bind or unlink, agents to switch.

        Against what the state records for this very trunk; a trunk created, or adopted from
        outside, gets every desired binding (setup replaces a mapping: harmless if current).
        An unchanged customer whose bindings are not all recorded becomes a ``bind`` item.
        """
        customer = item.customer
        if item.action is Action.DEPROVISION:
            if recorded is not None and item.trunk_id == recorded.trunk_id:
                item.bindings = BindingWork(
                    unlink=[
                        (b.get("number") or key, key, b.get("id"))
                        for key, b in recorded.bindings.items()
                        if b.get("agent")
                    ]
                )
            return item
        if customer.spec is None or item.action not in (
            Action.CREATE,
            Action.UPDATE,
            Action.ADOPT,
            Action.UNCHANGED,
        ):
            return item
        ours = (
            item.action is not Action.CREATE and recorded is not None and recorded.trunk_id == item.trunk_id
        )
        numbers = [(n.phone_number, n.key) for n in customer.spec.phone_numbers]
        work = plan_bindings(
            numbers,
            customer.agents,
            recorded.bindings if ours and recorded else {},
            customer.outbound_agents,
            self.switched,
            everything=not ours,
        )
        item.bindings = work
        if item.action is Action.UNCHANGED and work and item.trunk_id is not None:
            item.action, item.record = Action.BIND, True
        return item

    @staticmethod
    def _find(
        draft: Draft, by_name: Mapping[str, SIPTrunk], by_id: Mapping[str, SIPTrunk]
    ) -> tuple[SIPTrunk | None, bool]:
        """The customer's trunk: by its recorded id first, else by name; and whether it was renamed."""
        recorded = draft.state
        if recorded is not None and recorded.trunk_id and recorded.trunk_id in by_id:
            trunk = by_id[recorded.trunk_id]
            return trunk, trunk.name != draft.customer.trunk_name
        return by_name.get(draft.customer.trunk_name), False

    @staticmethod
    def _owner(name: str, trunk: SIPTrunk | None, owners: Mapping[str, str]) -> str | None:
        if trunk is not None and trunk.id in owners:
            return owners[trunk.id]
        return owners.get(name)

    def _refuse_foreign(self, item: PlanItem, owners: Mapping[str, str]) -> PlanItem:
        """A create (decided without a look-up) of a name another scope recorded is refused."""
        if item.action is Action.CREATE and item.trunk_name in owners:
            return self._foreign(item.customer, owners[item.trunk_name], None)
        return item

    @staticmethod
    def _foreign(customer: MappedCustomer, owner: str, trunk: SIPTrunk | None) -> PlanItem:
        what = f"trunk {customer.trunk_name!r}" + (f" (id {trunk.id})" if trunk is not None else "")
        reason = (
            f"customer {customer.key}: {what} belongs to deployment scope {owner!r}; "
            "not adopted (two deployments must not share a trunk)"
        )
        return PlanItem(customer, Action.INVALID, reason=reason, fields=("trunk_name",))

    def _diff(self, draft: Draft, trunk: SIPTrunk | None, renamed: bool = False) -> PlanItem:
        customer, recorded = draft.customer, draft.state
        if customer.status == "churned":
            if trunk is None:
                return PlanItem(
                    customer, Action.DEPROVISION, trunk_id=None, reason="churned; trunk already gone"
                )
            return PlanItem(
                customer,
                Action.DEPROVISION,
                trunk_id=trunk.id,
                existing=trunk,
                reason="churned",
                verified=True,
            )
        spec = customer.spec
        assert spec is not None
        base = {"spec_hash": draft.spec_hash, "secret_hash": draft.secret_hash}
        if trunk is None:
            return self._create(draft, spec)
        known = recorded is not None and recorded.trunk_id == trunk.id  # ours already: not an adoption
        if not known and not self.adopt_existing:
            reason = (
                f"customer {customer.key}: a trunk named {customer.trunk_name!r} (id {trunk.id}) already "
                "exists and adopt_existing is off"
            )
            return PlanItem(customer, Action.INVALID, reason=reason, fields=("trunk_name",))
        try:
            patch = spec.drift(trunk)
        except SpecError as exc:
            reason = f"customer {customer.key}: {'; '.join(str(e) for e in exc.errors)}"
            return PlanItem(
                customer,
                Action.INVALID,
                trunk_id=trunk.id,
                existing=trunk,
                reason=reason,
                fields=tuple(exc.fields),
                **base,
            )
        patch = self._with_rotated_password(spec, patch, recorded, draft.secret_hash, self.legacy_keys)
        note = None
        if renamed:
            patch = _with_fields(patch, name=spec.name)
            note = f"renamed on Bolna to {trunk.name!r}: name restored"
        have = {n.key: n for n in trunk.active_numbers}
        want = {number_key(n.phone_number): n.phone_number for n in spec.phone_numbers}
        add = [phone for key, phone in want.items() if key not in have]
        remove = [n for key, n in have.items() if key not in want] if self.remove_extra_numbers else []
        if patch is not None or add or remove:
            return PlanItem(
                customer,
                Action.UPDATE,
                trunk_id=trunk.id,
                patch=patch,
                add_numbers=add,
                remove_numbers=remove,
                existing=trunk,
                reason=note,
                verified=True,
                **base,
            )
        action = Action.UNCHANGED if known else Action.ADOPT
        return PlanItem(
            customer,
            action,
            trunk_id=trunk.id,
            existing=trunk,
            reason="matches" if known else None,
            verified=True,
            **base,
        )

    @staticmethod
    def _with_rotated_password(
        spec: TrunkSpec,
        patch: SIPTrunkUpdateRequest | None,
        recorded: StateRow | None,
        new_hash: str | None,
        legacy_keys: Iterable[bytes] = (),
    ) -> SIPTrunkUpdateRequest | None:
        """Add the password to the PATCH when its keyed hash differs from the recorded one.

        The API never returns passwords, so a rotation is only visible in the state table; a
        trunk adopted without a recorded hash keeps its password. A hash made with a legacy key
        that still matches is no rotation.
        """
        if new_hash is None or recorded is None or recorded.secret_hash in (None, new_hash):
            return patch
        if any(recorded.secret_hash == secret_hash(spec, key) for key in legacy_keys):
            return patch
        return _with_fields(patch, auth_password=spec.auth_password, auth_username=spec.auth_username)


def _with_fields(patch: SIPTrunkUpdateRequest | None, **extra: Any) -> SIPTrunkUpdateRequest:
    """``patch`` (or an empty one) with ``extra`` fields set."""
    fields: dict[str, Any] = {}
    if patch is not None:
        fields.update({name: getattr(patch, name) for name in patch.model_fields_set})
    fields.update(extra)
    return SIPTrunkUpdateRequest.model_validate(fields)
