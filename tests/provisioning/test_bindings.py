"""A provisioned customer is a working phone line: the bulk engine binds every number to its
agent and switches every outbound agent to the SIP trunk, over real HTTP against the sandbox.

Promises: one setup per number and one provider switch per distinct agent on the first run, no
request at all on a rerun, a changed agent rebinds only its numbers, a removed agent is
unlinked, a deprovision unlinks before it deletes, and faults (5xx, lost responses, 429s on the
agent endpoint's own budget) still end in exactly the intended mappings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_bolna.models import number_key
from airflow_provider_bolna.provisioning import (
    ProvisionOptions,
    deprovision_gone,
    plan_run,
    provision_batch,
    summarize,
)
from airflow_provider_bolna.provisioning.mapping import RowMapper
from airflow_provider_bolna.sandbox.seed import agent_ids
from tests.provisioning.conftest import CustomerDB, total_requests

pytestmark = pytest.mark.integration

AGENTS = 12


def run(db: CustomerDB, **opts: Any) -> dict[str, Any]:
    options = ProvisionOptions(state_table=db.state_table, requests_per_minute=0, **opts)
    plan = plan_run(db.conn_id, db.query, options=options, batch_size=50)
    summaries = [provision_batch(db.conn_id, db.query, b, options=options) for b in plan.batches]
    if options.deprovision:
        summaries.append(deprovision_gone(db.conn_id, db.query, keys=plan.gone, options=options))
    return summarize(summaries, budget=plan.budget)


def desired(db: CustomerDB) -> tuple[dict[str, str], set[str]]:
    """What the rows ask for: number digits → agent, and the outbound agents."""
    mapper = RowMapper()
    columns = [c[1] for c in db.execute("PRAGMA table_info({t})")]
    numbers: dict[str, str] = {}
    outbound: set[str] = set()
    for values in db.execute("SELECT * FROM {t}"):
        customer = mapper.map_row(dict(zip(columns, values)))
        if customer.valid and customer.status == "active":
            numbers.update(customer.agents)
            outbound.update(customer.outbound_agents)
    return numbers, outbound


def mapped(server: Any) -> dict[str, str]:
    """What the sandbox maps: number digits → agent."""
    return {number_key(m["phone_number"]): m["agent_id"] for m in server.admin.mappings()}


@pytest.fixture
def agents_api(bolna_api: Any) -> Any:
    bolna_api.admin.create_agents([{"id": a} for a in agent_ids(AGENTS)])
    return bolna_api


@pytest.mark.parametrize("count", [pytest.param(1000, marks=pytest.mark.slow), 120], ids=["1000", "120"])
def test_every_number_is_bound_once_and_every_outbound_agent_switched_once(
    sqlite_db: CustomerDB, agents_api: Any, count: int
) -> None:
    sqlite_db.seed(count, seed=5, agents=AGENTS)
    want, outbound = desired(sqlite_db)
    first = run(sqlite_db)
    assert first["counts"]["created"] == count and first["failed_total"] == 0
    assert mapped(agents_api) == want
    setups = agents_api.inbound_setup_attempts_by_number()
    assert sum(setups.values()) == len(want) and set(setups.values()) == {1}  # one setup per number
    switches = agents_api.agent_update_attempts_by_agent()
    assert set(switches) == outbound and set(switches.values()) == {1}  # once per agent, however shared
    assert {a: p for a, p in agents_api.agent_providers().items() if a in outbound} == dict.fromkeys(
        outbound, "sip-trunk"
    )
    assert first["bindings"] == {"bound": len(want), "switched": len(outbound)}
    lines = sum(
        1
        for row in sqlite_db.execute("SELECT bindings FROM {s}")
        for b in json.loads(row[0] or "{}").values()
        if b.get("agent") and b.get("id")
    )
    assert lines == len(want)  # every line recorded with its Bolna id and agent

    before = total_requests(agents_api)
    second = run(sqlite_db)
    assert second["counts"]["unchanged"] == count and total_requests(agents_api) == before


def test_a_changed_agent_rebinds_only_its_numbers_and_a_removed_one_is_unlinked(
    sqlite_db: CustomerDB, agents_api: Any
) -> None:
    sqlite_db.seed(30, seed=6, agents=AGENTS)
    run(sqlite_db)
    agents_api.admin.reset_attempts()
    new_agent = agent_ids(AGENTS)[-1]
    numbers = [
        n.strip() for n in sqlite_db.execute("SELECT numbers FROM {t} WHERE customer_id = 7")[0][0].split(",")
    ]
    sqlite_db.execute("UPDATE {t} SET inbound_agent_id = ? WHERE customer_id = 7", (new_agent,))
    sqlite_db.execute("UPDATE {t} SET inbound_agent_id = NULL WHERE customer_id = 8")
    before = total_requests(agents_api)
    summary = run(sqlite_db)
    assert summary["counts"]["updated"] == 2 and summary["counts"]["unchanged"] == 28
    assert summary["bindings"]["rebound"] == len(numbers) and summary["bindings"]["unlinked"] >= 1
    assert summary["requests"]["total"] == total_requests(agents_api) - before
    assert sum(agents_api.inbound_setup_attempts_by_number().values()) == len(numbers)  # no other number
    want, _ = desired(sqlite_db)
    assert mapped(agents_api) == want


def test_deprovision_unlinks_before_it_deletes(sqlite_db: CustomerDB, agents_api: Any) -> None:
    sqlite_db.seed(20, seed=7, agents=AGENTS)
    run(sqlite_db)
    bound = [
        n.strip() for n in sqlite_db.execute("SELECT numbers FROM {t} WHERE customer_id = 4")[0][0].split(",")
    ]
    sqlite_db.execute("UPDATE {t} SET status = 'churned' WHERE customer_id = 4")
    agents_api.admin.reset_attempts()
    summary = run(sqlite_db, deprovision=True)
    assert summary["counts"]["deprovisioned"] == 1 and summary["bindings"]["unlinked"] == len(bound)
    kinds = [
        a["kind"] for a in agents_api.write_attempts() if a["kind"] in ("inbound_unlink", "delete_trunk")
    ]
    assert kinds == ["inbound_unlink"] * len(bound) + ["delete_trunk"]


def test_faults_still_end_in_exactly_the_intended_mappings(sqlite_db: CustomerDB, agents_api: Any) -> None:
    sqlite_db.seed(80, seed=8, agents=AGENTS)
    want, outbound = desired(sqlite_db)
    agents_api.admin.config(fail_rate=0.1, drop_after_commit_rate=0.1, agent_rate_limit_per_min=30, seed=8)
    run(sqlite_db)
    agents_api.admin.config(fail_rate=0.0, drop_after_commit_rate=0.0, agent_rate_limit_per_min=0)
    run(sqlite_db)  # whatever a fault left undone
    faults = agents_api.admin.counters()["faults"]
    assert faults["fail_before"] and faults["drop_after_commit_502"] + faults["drop_after_commit_conn"]
    assert mapped(agents_api) == want
    assert {a for a, p in agents_api.agent_providers().items() if p == "sip-trunk"} == outbound
    before = total_requests(agents_api)
    assert run(sqlite_db)["requests"]["total"] == 0 and total_requests(agents_api) == before


def test_a_dry_run_shows_the_binding_work(sqlite_db: CustomerDB, agents_api: Any) -> None:
    sqlite_db.seed(10, seed=9, agents=AGENTS)
    options = ProvisionOptions(dry_run=True, requests_per_minute=0)
    summary = provision_batch(
        sqlite_db.conn_id, sqlite_db.query, {"first": None, "last": None}, options=options
    )
    assert "bind +" in summary.plan and "→a9e" in summary.plan and "switch agent" in summary.plan
    assert agents_api.admin.counters()["binding_writes"] == {
        "update_agent": 0,
        "inbound_setup": 0,
        "inbound_unlink": 0,
    }


def test_agent_switches_draw_from_the_shared_agent_budget(
    sqlite_db: CustomerDB, agents_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent endpoint's own 500/min (here 120/min) is shared through the state DB like the
    trunk calls' budget: every batch's provider switch is a slot of the ``<conn>/agent`` row."""
    import threading

    from airflow_provider_bolna.provisioning.budget import BudgetTable, budget_key, budget_table_beside

    monkeypatch.setenv(
        "AIRFLOW_CONN_BOLNA_DEFAULT",
        agents_api.airflow_conn_json(requests_per_minute=6000, agent_requests_per_minute=120),
    )
    agents_api.admin.config(agent_rate_limit_per_min=120)
    sqlite_db.seed(60, seed=10, agents=AGENTS)
    options = ProvisionOptions(state_table=sqlite_db.state_table)
    batches = plan_run(sqlite_db.conn_id, sqlite_db.query, options=options, batch_size=30).batches
    threads = [
        threading.Thread(
            target=provision_batch, args=(sqlite_db.conn_id, sqlite_db.query, b), kwargs={"options": options}
        )
        for b in batches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    switches = sum(agents_api.agent_update_attempts_by_agent().values())
    assert (
        switches == len(desired(sqlite_db)[1])
        and agents_api.admin.counters()["faults"]["agent_rate_limited"] == 0
    )
    row = BudgetTable(sqlite_db.conn_id, budget_table_beside(sqlite_db.state_table)).read(
        budget_key("bolna_default", "agent")
    )
    assert row is not None and row.granted >= switches
