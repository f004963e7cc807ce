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

:meth:`Plan.table` prints the plan without secrets (it is the output of a dry run).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_bolna.models import (
    PhoneNumber,
    SIPTrunk,
    SIPTrunkUpdateRequest,
    SpecError,
    TrunkSpec,
    number_key,
)
from airflow_provider_bolna.provisioning.mapping import MappedCustomer
from airflow_provider_bolna.provisioning.state import StateRow

__all__ = ["Action", "Draft", "Plan", "PlanItem", "Planner", "hmac_key_for", "secret_hash"]


class Action(str, Enum):
    """What the plan does for one customer."""

    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    UNCHANGED = "unchanged"
    DEPROVISION = "deprovision"
    SKIP = "skip"
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value


def hmac_key_for(api_key: str) -> bytes:
    """The key of spec and password hashes: sha256 of the API key (another account, other hashes)."""
    return hashlib.sha256(api_key.encode()).digest()


def secret_hash(spec: TrunkSpec, key: bytes) -> str | None:
    """HMAC-SHA256 of the spec's password, or ``None`` when it has none."""
    if spec.auth_password is None:
        return None
    return hmac.new(key, spec.auth_password.get_secret_value().encode(), hashlib.sha256).hexdigest()


@dataclass
class PlanItem:
    """One customer's planned action. Never holds a password outside ``spec`` (a SecretStr).

    :param customer: the mapped row.
    :param action: what to do.
    :param trunk_id: the trunk concerned, when one exists.
    :param patch: the PATCH for an update (drifted fields, rotated password).
    :param add_numbers: numbers to register.
    :param remove_numbers: numbers to remove (the API's number objects).
    :param existing: the trunk as listed (``None`` when absent or not looked up).
    :param spec_hash: fingerprint of the spec (``None`` for churned/invalid rows).
    :param secret_hash: keyed hash of the password.
    :param reason: why (invalid rows, skips, refused updates).
    :param record: whether the state table must be written even if no API call is made.
    """

    customer: MappedCustomer
    action: Action
    trunk_id: str | None = None
    patch: SIPTrunkUpdateRequest | None = field(default=None, repr=False)
    add_numbers: list[str] = field(default_factory=list)
    remove_numbers: list[PhoneNumber] = field(default_factory=list, repr=False)
    existing: SIPTrunk | None = field(default=None, repr=False)
    spec_hash: str | None = None
    secret_hash: str | None = field(default=None, repr=False)
    reason: str | None = None
    record: bool = True

    @property
    def customer_id(self) -> Any:
        """The customer key (as read)."""
        return self.customer.customer_id

    @property
    def key(self) -> str:
        """The customer key as text."""
        return self.customer.key

    @property
    def trunk_name(self) -> str:
        """The trunk name."""
        return self.customer.trunk_name

    @property
    def needs_api(self) -> bool:
        """Whether applying this item sends requests."""
        if self.action in (Action.CREATE, Action.UPDATE):
            return True
        return self.action is Action.DEPROVISION and self.trunk_id is not None

    def details(self) -> str:
        """A one-line, secret-free description of the action."""
        spec = self.customer.spec
        if self.action is Action.CREATE and spec is not None:
            n = len(spec.phone_numbers)
            return f"{spec.provider}, {spec.auth_type.value}, {n} number{'s' if n != 1 else ''} inline"
        if self.action is Action.UPDATE:
            parts = []
            if self.patch is not None:
                parts.append("patch " + ", ".join(self.patch.fields))
            if self.add_numbers:
                parts.append("+" + " +".join(self.add_numbers))
            if self.remove_numbers:
                parts.append("-" + " -".join(n.phone_number for n in self.remove_numbers))
            return "; ".join(parts)
        if self.action is Action.DEPROVISION:
            return f"delete trunk {self.trunk_id}" if self.trunk_id else "trunk already gone"
        if self.action is Action.ADOPT:
            return f"existing trunk {self.trunk_id} matches"
        return self.reason or ""


@dataclass
class Plan:
    """The actions for one batch.

    :param items: one per customer, in key order.
    :param looked_up: how many trunk names were looked up (0 = no list call was needed).
    """

    items: list[PlanItem]
    looked_up: int = 0

    def counts(self) -> dict[str, int]:
        """Customers per action."""
        counts = Counter(item.action.value for item in self.items)
        return {a.value: counts.get(a.value, 0) for a in Action}

    def table(self, max_rows: int | None = 200, include_unchanged: bool = False) -> str:
        """A fixed-width table of the plan (no secrets), changes first.

        :param max_rows: cut after this many rows (``None`` = all).
        :param include_unchanged: list ``unchanged`` customers too.
        """
        rows = [i for i in self.items if include_unchanged or i.action is not Action.UNCHANGED]
        header = ("customer", "trunk", "action", "details")
        body = [(i.key, i.trunk_name, i.action.value, i.details()) for i in rows]
        shown = body if max_rows is None else body[:max_rows]
        widths = [max([len(header[c])] + [len(r[c]) for r in shown]) for c in range(3)]
        lines = [
            "  ".join(h.ljust(w) for h, w in zip(header[:3], widths)) + "  " + header[3],
            "  ".join("-" * w for w in widths) + "  " + "-" * 7,
        ]
        for r in shown:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r[:3], widths)) + "  " + r[3])
        if len(body) > len(shown):
            lines.append(f"... {len(body) - len(shown)} more")
        counts = ", ".join(f"{k} {v}" for k, v in self.counts().items() if v)
        lines.append(f"({len(self.items)} customers: {counts or 'none'})")
        return "\n".join(lines)


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

    :param hmac_key: key of spec/password hashes (:func:`hmac_key_for`).
    :param deprovision: churned customers' trunks are deleted (else they are skipped).
    :param drift_check: look at the API even for customers whose spec hash is unchanged.
    :param remove_extra_numbers: remove numbers on the trunk that the spec does not list.
    :param look_before_create: look up customers the state table has never seen too (one list
        call per batch) instead of creating them directly; a dry run does, to tell ``create``
        from ``adopt``.
    """

    def __init__(
        self,
        hmac_key: bytes,
        *,
        deprovision: bool = False,
        drift_check: bool = False,
        remove_extra_numbers: bool = True,
        look_before_create: bool = False,
    ) -> None:
        self.hmac_key = hmac_key
        self.deprovision = deprovision
        self.drift_check = drift_check
        self.remove_extra_numbers = remove_extra_numbers
        self.look_before_create = look_before_create

    # ------------------------------------------------------------------ step 1

    def prepare(self, customers: Iterable[MappedCustomer], state: Mapping[str, StateRow]) -> list[Draft]:
        """Decide what the state table alone can decide; the rest needs the actual trunk."""
        drafts = []
        for customer in customers:
            recorded = state.get(customer.key)
            drafts.append(self._prepare_one(customer, recorded))
        return drafts

    def _prepare_one(self, customer: MappedCustomer, recorded: StateRow | None) -> Draft:
        if not customer.valid:
            same = recorded is not None and recorded.status == "failed" and recorded.last_error == customer.error
            item = PlanItem(customer, Action.INVALID, trunk_id=recorded.trunk_id if recorded else None,
                            reason=customer.error, record=not same)
            return Draft(customer, recorded, None, decided=item)
        if customer.status == "churned":
            return Draft(customer, recorded, None, decided=self._churned(customer, recorded))
        spec = customer.spec
        assert spec is not None
        fp = spec.fingerprint(self.hmac_key)
        sh = secret_hash(spec, self.hmac_key)
        draft = Draft(customer, recorded, fp, sh)
        if (
            not self.drift_check
            and recorded is not None
            and recorded.status == "provisioned"
            and recorded.spec_hash == fp
        ):
            draft.decided = PlanItem(customer, Action.UNCHANGED, trunk_id=recorded.trunk_id, spec_hash=fp,
                                     secret_hash=sh, reason="spec hash unchanged", record=False)
        elif recorded is None and not (self.look_before_create or self.drift_check):
            draft.decided = self._create(draft, spec)  # never attempted: nothing of ours to find
        return draft

    @staticmethod
    def _create(draft: Draft, spec: TrunkSpec) -> PlanItem:
        return PlanItem(draft.customer, Action.CREATE, add_numbers=[n.phone_number for n in spec.phone_numbers],
                        spec_hash=draft.spec_hash, secret_hash=draft.secret_hash)

    def _churned(self, customer: MappedCustomer, recorded: StateRow | None) -> PlanItem | None:
        if not self.deprovision:
            return PlanItem(customer, Action.SKIP, reason="churned; deprovision is off", record=False)
        if recorded is None:
            return PlanItem(customer, Action.SKIP, reason="churned; never provisioned", record=False)
        if recorded.status == "deprovisioned":
            return PlanItem(customer, Action.UNCHANGED, trunk_id=recorded.trunk_id,
                            reason="already deprovisioned", record=False)
        if recorded.trunk_id is None:
            return None  # a trunk may exist without our record of its id: look it up
        return PlanItem(customer, Action.DEPROVISION, trunk_id=recorded.trunk_id, reason="churned")

    @staticmethod
    def lookup_names(drafts: Iterable[Draft]) -> list[str]:
        """Trunk names whose actual state is needed (empty = no list call)."""
        return [d.customer.trunk_name for d in drafts if d.needs_lookup]

    # ------------------------------------------------------------------ step 2

    def finish(self, drafts: list[Draft], actual: Mapping[str, SIPTrunk] | None) -> Plan:
        """Complete the plan with the actual trunks (by name) of the customers that need them.

        :param drafts: from :meth:`prepare`.
        :param actual: trunk name → trunk, for the names of :meth:`lookup_names`; ``None`` if
            no lookup was made (only valid when no draft needs one).
        """
        items: list[PlanItem] = []
        looked_up = 0
        for draft in drafts:
            if draft.decided is not None:
                items.append(draft.decided)
                continue
            if actual is None:
                raise ValueError(f"customer {draft.customer.key} needs the actual trunk but no lookup was made")
            looked_up += 1
            items.append(self._diff(draft, actual.get(draft.customer.trunk_name)))
        return Plan(items, looked_up)

    def _diff(self, draft: Draft, trunk: SIPTrunk | None) -> PlanItem:
        customer, recorded = draft.customer, draft.state
        if customer.status == "churned":
            if trunk is None:
                return PlanItem(customer, Action.DEPROVISION, trunk_id=None, reason="churned; trunk already gone")
            return PlanItem(customer, Action.DEPROVISION, trunk_id=trunk.id, existing=trunk, reason="churned")
        spec = customer.spec
        assert spec is not None
        base = {"spec_hash": draft.spec_hash, "secret_hash": draft.secret_hash}
        if trunk is None:
            return self._create(draft, spec)
        try:
            patch = spec.drift(trunk)
        except SpecError as exc:
            reason = f"customer {customer.key}: {'; '.join(str(e) for e in exc.errors)}"
            return PlanItem(customer, Action.INVALID, trunk_id=trunk.id, existing=trunk, reason=reason, **base)
        patch = self._with_rotated_password(spec, patch, recorded, draft.secret_hash)
        have = {n.key: n for n in trunk.active_numbers}
        want = {number_key(n.phone_number): n.phone_number for n in spec.phone_numbers}
        add = [phone for key, phone in want.items() if key not in have]
        remove = [n for key, n in have.items() if key not in want] if self.remove_extra_numbers else []
        if patch is not None or add or remove:
            return PlanItem(customer, Action.UPDATE, trunk_id=trunk.id, patch=patch, add_numbers=add,
                            remove_numbers=remove, existing=trunk, **base)
        known = recorded is not None and recorded.trunk_id == trunk.id  # ours already: not an adoption
        action = Action.UNCHANGED if known else Action.ADOPT
        return PlanItem(customer, action, trunk_id=trunk.id, existing=trunk,
                        reason="matches" if known else None, **base)

    @staticmethod
    def _with_rotated_password(
        spec: TrunkSpec, patch: SIPTrunkUpdateRequest | None, recorded: StateRow | None, new_hash: str | None
    ) -> SIPTrunkUpdateRequest | None:
        """Add the password to the PATCH when its keyed hash differs from the recorded one.

        The API never returns passwords, so a rotation is only visible in the state table; a
        trunk adopted without a recorded hash keeps its password.
        """
        if new_hash is None or recorded is None or recorded.secret_hash in (None, new_hash):
            return patch
        fields: dict[str, Any] = {}
        if patch is not None:
            fields.update({name: getattr(patch, name) for name in patch.model_fields_set})
        fields["auth_password"] = spec.auth_password
        fields["auth_username"] = spec.auth_username
        return SIPTrunkUpdateRequest.model_validate(fields)
