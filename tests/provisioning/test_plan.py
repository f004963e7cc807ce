"""Plan: desired vs recorded vs actual, every diff case, and a printable secret-free plan."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bolna.models import SIPTrunk
from airflow_provider_bolna.provisioning.mapping import MappedCustomer, RowMapper
from airflow_provider_bolna.provisioning.plan import Action, Planner, hmac_key_for, secret_hash
from airflow_provider_bolna.provisioning.state import StateRow

KEY = hmac_key_for("api-key-for-tests")
PASSWORD = "Plan-Test-Pass-1"


def customer(cid: int = 1, **over: Any) -> MappedCustomer:
    row = {
        "customer_id": cid,
        "provider": "twilio",
        "auth_type": "userpass",
        "auth_username": f"u{cid}",
        "auth_password": PASSWORD,
        "gateways": "sip.acme.test:5060",
        "numbers": f"+1415555{cid:04d}",
        "inbound_enabled": "true",
    }
    row.update(over)
    return RowMapper().map_row(row)


def trunk_for(
    c: MappedCustomer, trunk_id: str = "T1", numbers: list[str] | None = None, **over: Any
) -> SIPTrunk:
    """The trunk the API would return for this customer's spec."""
    body = c.spec.model_dump(mode="json", exclude={"auth_password", "phone_numbers"})
    wanted = numbers if numbers is not None else [n.phone_number for n in c.spec.phone_numbers]
    body.update(
        id=trunk_id,
        is_active=True,
        phone_numbers=[{"id": f"N{i}", "phone_number": n} for i, n in enumerate(wanted)],
    )
    body.update(over)
    return SIPTrunk.model_validate(body)


def recorded(
    c: MappedCustomer,
    status: str = "provisioned",
    trunk_id: str | None = "T1",
    spec_hash: str | None = "same",
    secret: str | None = "same",
    error: str | None = None,
) -> StateRow:
    fp = c.spec.fingerprint(KEY) if (c.spec and spec_hash == "same") else spec_hash
    sh = secret_hash(c.spec, KEY) if (c.spec and secret == "same") else secret
    return StateRow(c.key, c.trunk_name, trunk_id, fp, sh, status, last_error=error)


def plan_one(c: MappedCustomer, state: StateRow | None = None, trunk: SIPTrunk | None = None, **opts: Any):
    if opts.pop("deprovision", False):
        opts["deletes"] = [c.key]  # the run's deletion plan lets this customer go
    planner = Planner(KEY, **opts)
    drafts = planner.prepare([c], {c.key: state} if state else {})
    names = planner.lookup_names(drafts)
    actual = {trunk.name: trunk} if trunk is not None else {}
    plan = planner.finish(drafts, actual if names else None)
    return plan.items[0], names


def test_new_customer_is_created_with_numbers_inline_without_a_lookup() -> None:
    c = customer()
    item, names = plan_one(c)
    assert names == []  # never attempted: no list call of the whole account
    assert item.action is Action.CREATE and item.add_numbers == ["+14155550001"]
    assert item.spec_hash == c.spec.fingerprint(KEY) and item.secret_hash is not None


@pytest.mark.parametrize("opts", [{"look_before_create": True}, {"drift_check": True}])
def test_new_customer_is_looked_up_when_asked(opts: dict[str, Any]) -> None:
    c = customer()
    item, names = plan_one(c, None, None, **opts)
    assert names == ["cust-1"] and item.action is Action.CREATE
    item, names = plan_one(c, None, trunk_for(c, trunk_id="T9"), **opts)
    assert names == ["cust-1"] and item.action is Action.ADOPT and item.trunk_id == "T9"


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_a_create_that_may_have_landed_is_looked_up(status: str) -> None:
    """A ``pending`` row (killed after the POST) or a failed one: the trunk may exist."""
    c = customer()
    item, names = plan_one(
        c, recorded(c, status=status, trunk_id=None, spec_hash=None, secret=None), trunk_for(c, trunk_id="T5")
    )
    assert names == ["cust-1"] and item.action is Action.ADOPT and item.trunk_id == "T5"
    item, names = plan_one(c, recorded(c, status=status, trunk_id=None, spec_hash=None, secret=None))
    assert names == ["cust-1"] and item.action is Action.CREATE


def test_unchanged_hash_needs_no_lookup() -> None:
    c = customer()
    item, names = plan_one(c, recorded(c))
    assert names == [] and item.action is Action.UNCHANGED and not item.needs_api and not item.record


def test_drift_check_looks_even_when_hash_is_unchanged() -> None:
    c = customer()
    item, names = plan_one(c, recorded(c), trunk_for(c, allow="ulaw"), drift_check=True)
    assert names == ["cust-1"] and item.action is Action.UPDATE and item.patch.fields == ["allow"]


def test_failed_status_is_retried_even_with_the_same_hash() -> None:
    c = customer()
    item, names = plan_one(c, recorded(c, status="failed"), trunk_for(c))
    assert names == ["cust-1"] and item.action is Action.UNCHANGED and item.record


def test_changed_spec_patches_only_drifted_fields() -> None:
    c = customer(allow="ulaw", gateways="sip.acme.test:5060;backup.acme.test:5060")
    actual = trunk_for(customer())
    item, _ = plan_one(c, recorded(c, spec_hash="old"), actual)
    assert item.action is Action.UPDATE and item.patch.fields == ["allow", "gateways"]
    assert item.add_numbers == [] and item.remove_numbers == []
    assert "patch allow, gateways" in item.details()


def test_missing_and_extra_numbers() -> None:
    c = customer(numbers="+14155550001, +14155550002")
    actual = trunk_for(c, numbers=["14155550001", "+14155559999"])  # same digits without '+' = same number
    item, _ = plan_one(c, recorded(c, spec_hash="old"), actual)
    assert item.action is Action.UPDATE and item.patch is None
    assert item.add_numbers == ["+14155550002"]
    assert [n.phone_number for n in item.remove_numbers] == ["+14155559999"]
    assert item.details() == "add +14155550002; remove +14155559999"  # each number once, as written
    item, _ = plan_one(c, recorded(c, spec_hash="old"), actual, remove_extra_numbers=False)
    assert item.remove_numbers == []


def test_existing_trunk_without_record_is_adopted() -> None:
    c = customer()
    item, _ = plan_one(c, None, trunk_for(c, trunk_id="T9"), look_before_create=True)
    assert item.action is Action.ADOPT and item.trunk_id == "T9" and not item.needs_api and item.record


def test_matching_trunk_with_new_hash_is_unchanged_but_recorded() -> None:
    c = customer()
    item, _ = plan_one(c, recorded(c, spec_hash="older-format"), trunk_for(c))
    assert item.action is Action.UNCHANGED and item.record and not item.needs_api


def test_recorded_but_deleted_outside_is_recreated() -> None:
    c = customer()
    item, _ = plan_one(c, recorded(c, spec_hash="old"), None)
    assert item.action is Action.CREATE


def test_immutable_change_is_reported_not_attempted() -> None:
    c = customer(provider="plivo")
    item, _ = plan_one(c, recorded(c, spec_hash="old"), trunk_for(customer()))
    assert item.action is Action.INVALID and not item.needs_api
    assert item.reason.startswith("customer 1: provider: cannot be changed")


def test_rotated_password_is_patched() -> None:
    c = customer(auth_password="New-Rotated-Pass-2")
    item, _ = plan_one(c, recorded(customer()), trunk_for(c))  # recorded hash/secret of the old password
    assert item.action is Action.UPDATE and item.patch.fields == ["auth_password", "auth_username"]
    assert item.patch.to_request_body()["auth_password"] == "New-Rotated-Pass-2"
    assert "New-Rotated-Pass-2" not in item.details() and "New-Rotated-Pass-2" not in repr(item)


def test_adopted_trunk_without_recorded_secret_keeps_its_password() -> None:
    c = customer()
    item, _ = plan_one(c, recorded(c, spec_hash="old", secret=None), trunk_for(c))
    assert item.action is Action.UNCHANGED


def test_invalid_row_is_recorded_once() -> None:
    c = customer(gateways="a.test:70000")
    item, names = plan_one(c)
    assert names == [] and item.action is Action.INVALID and item.record
    item, _ = plan_one(c, recorded(c, status="failed", spec_hash=None, error=c.error))
    assert item.action is Action.INVALID and not item.record


@pytest.mark.parametrize(
    ("deprovision", "state", "expected", "looks"),
    [
        (False, "provisioned", Action.SKIP, False),
        (True, None, Action.SKIP, False),
        (True, "deprovisioned", Action.UNCHANGED, False),
        (True, "provisioned", Action.DEPROVISION, False),
    ],
    ids=["off", "never-provisioned", "already-gone", "provisioned"],
)
def test_churned_customers(deprovision: bool, state: str | None, expected: Action, looks: bool) -> None:
    c = customer(status="churned")
    row = StateRow(c.key, c.trunk_name, "T1", "h", None, state) if state else None
    item, names = plan_one(c, row, deprovision=deprovision)
    assert item.action is expected and bool(names) is looks
    if expected is Action.DEPROVISION:
        assert item.trunk_id == "T1" and item.needs_api


def test_churned_without_known_trunk_id_is_looked_up() -> None:
    c = customer(status="churned")
    row = StateRow(c.key, c.trunk_name, None, None, None, "failed")
    active = customer()
    item, names = plan_one(c, row, trunk_for(active, trunk_id="T7"), deprovision=True)
    assert names == ["cust-1"] and item.action is Action.DEPROVISION and item.trunk_id == "T7"
    item, _ = plan_one(c, row, None, deprovision=True)
    assert item.action is Action.DEPROVISION and item.trunk_id is None and not item.needs_api


def test_plan_table_is_printable_and_secret_free() -> None:
    customers = [customer(1), customer(2, allow="ulaw"), customer(3, gateways="x:70000"), customer(4)]
    state = {
        customers[1].key: recorded(customers[1], spec_hash="old"),
        customers[3].key: recorded(customers[3]),
    }
    planner = Planner(KEY)
    drafts = planner.prepare(customers, state)
    assert planner.lookup_names(drafts) == ["cust-2"]
    plan = planner.finish(drafts, {"cust-2": trunk_for(customer(2))})
    table = plan.table()
    assert PASSWORD not in table
    lines = table.splitlines()
    assert lines[0].split() == ["customer", "trunk", "action", "details"]
    assert any(line.split()[:3] == ["1", "cust-1", "create"] for line in lines)
    assert any(line.split()[:3] == ["2", "cust-2", "update"] and "patch allow" in line for line in lines)
    assert any("gateways.0.port" in line for line in lines)
    assert "cust-4" not in table  # unchanged rows are summarised, not listed
    assert lines[-1] == "(4 customers: create 1, update 1, unchanged 1, invalid 1)"
    assert plan.counts()["create"] == 1 and plan.looked_up == 1


def test_finish_without_lookup_refuses_when_one_was_needed() -> None:
    planner = Planner(KEY, look_before_create=True)
    drafts = planner.prepare([customer()], {})
    with pytest.raises(ValueError, match="no lookup"):
        planner.finish(drafts, None)
