"""What a plan says: the :class:`Action` for each customer, as :class:`PlanItem` rows of a :class:`Plan`.

The plan's vocabulary, below everything that makes a plan (:class:`~.plan.Planner`), carries it
out (:mod:`.apply`, :mod:`.binder`) or records and counts its results (:mod:`.record`,
:mod:`.results`, :mod:`.summary`). :meth:`Plan.table` prints it without secrets (the output of
a dry run).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_bolna.models import PhoneNumber, SIPTrunk, SIPTrunkUpdateRequest
from airflow_provider_bolna.provisioning.bindings import BindingWork
from airflow_provider_bolna.provisioning.mapping import MappedCustomer

__all__ = ["Action", "Plan", "PlanItem"]


class Action(str, Enum):
    """What the plan does for one customer."""

    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    UNCHANGED = "unchanged"
    DEPROVISION = "deprovision"
    BIND = "bind"
    SKIP = "skip"
    BUSY = "busy"
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value


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
    :param verified: the trunk was just seen on Bolna (its row's ``verified_at`` is refreshed).
    :param fields: the fields at fault, for a failure.
    :param bindings: numbers to (re)bind or unlink, outbound agents to switch.
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
    verified: bool = False
    fields: tuple[str, ...] = ()
    bindings: BindingWork = field(default_factory=BindingWork)

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
        if self.action in (Action.CREATE, Action.UPDATE, Action.BIND):
            return True
        if self.action is Action.DEPROVISION:
            return self.trunk_id is not None
        return bool(self.bindings) and self.trunk_id is not None

    def details(self) -> str:
        """A one-line, secret-free description of the action (bindings included)."""
        parts = [self._trunk_details(), self.bindings.describe()]
        return "; ".join(p for p in parts if p)

    def _trunk_details(self) -> str:
        spec = self.customer.spec
        if self.action is Action.CREATE and spec is not None:
            n = len(spec.phone_numbers)
            return f"{spec.provider}, {spec.auth_type.value}, {n} number{'s' if n != 1 else ''} inline"
        if self.action is Action.UPDATE:
            parts = []
            if self.reason:
                parts.append(self.reason)
            if self.patch is not None:
                parts.append("patch " + ", ".join(self.patch.fields))
            # "add" / "remove", not "+" / "-": numbers carry their own leading "+"
            if self.add_numbers:
                parts.append("add " + ", ".join(self.add_numbers))
            if self.remove_numbers:
                parts.append("remove " + ", ".join(n.phone_number for n in self.remove_numbers))
            return "; ".join(parts)
        if self.action is Action.DEPROVISION:
            return f"delete trunk {self.trunk_id}" if self.trunk_id else "trunk already gone"
        if self.action is Action.ADOPT:
            return f"existing trunk {self.trunk_id} matches"
        if self.action is Action.BIND:
            return ""
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
