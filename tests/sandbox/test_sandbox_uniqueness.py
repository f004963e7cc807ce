"""The uniqueness switches: with ``unique_names`` / ``unique_numbers`` off the API really stores
duplicates (and lists them, with distinct ids), so "no duplicate" tests can fail."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_bolna.sandbox.cli import build_parser, config_from_args
from airflow_provider_bolna.sandbox.store import Store
from airflow_provider_bolna.sandbox.validation import validate_create

from .conftest import SEED_USERPASS, TRUNKS, BodyFactory

pytestmark = pytest.mark.integration


def numbers_url(trunk: dict[str, Any]) -> str:
    return f"{TRUNKS}/{trunk['id']}/numbers"


def test_both_switches_default_on(sandbox: Any) -> None:
    config = sandbox.admin.config()
    assert config["unique_names"] is True and config["unique_numbers"] is True


@pytest.mark.bolna_sandbox_knobs(unique_names=False)
def test_duplicate_names_are_stored_when_not_unique(
    api: httpx.Client, sandbox: Any, trunk_body: BodyFactory
) -> None:
    assert sandbox.admin.config()["unique_names"] is False
    first, second = (api.post(TRUNKS, json=trunk_body(name="Acme")) for _ in range(2))
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    listed = api.get(TRUNKS).json()
    assert [(t["id"], t["name"]) for t in listed] == [
        (first.json()["id"], "Acme"),
        (second.json()["id"], "Acme"),
    ]
    assert sandbox.admin.audit()["duplicate_trunk_names"] == [{"name": "Acme", "count": 2}]
    assert sandbox.trunks_by_name() == {"Acme": 2}
    assert sandbox.admin.counters()["duplicate_names_attempted"] == 0


def test_rename_onto_a_taken_name_follows_the_switch(
    api: httpx.Client, sandbox: Any, make_trunk: Any
) -> None:
    taken, renamed = make_trunk(name="taken"), make_trunk(name="other")
    assert api.patch(f"{TRUNKS}/{renamed['id']}", json={"name": "taken"}).status_code == 409
    sandbox.admin.config(unique_names=False)
    response = api.patch(f"{TRUNKS}/{renamed['id']}", json={"name": "taken"})
    assert response.status_code == 200 and response.json()["name"] == "taken"
    assert sorted(t["id"] for t in api.get(TRUNKS).json() if t["name"] == "taken") == sorted(
        [taken["id"], renamed["id"]]
    )
    sandbox.admin.config(unique_names=True)  # back on: a third one is refused again
    assert api.post(TRUNKS, json={**SEED_USERPASS, "name": "taken"}).status_code == 409


def test_duplicate_numbers_are_stored_when_not_unique(
    api: httpx.Client, sandbox: Any, make_trunk: Any
) -> None:
    sandbox.admin.config(unique_numbers=False)
    first, second = make_trunk(), make_trunk()
    one = api.post(numbers_url(first), json={"phone_number": "+14155550100"})
    two = api.post(numbers_url(second), json={"phone_number": "14155550100"})  # same digits
    assert one.status_code == two.status_code == 201 and one.json()["id"] != two.json()["id"]
    assert [n["id"] for n in api.get(numbers_url(first)).json()] == [one.json()["id"]]
    assert [n["id"] for n in api.get(numbers_url(second)).json()] == [two.json()["id"]]
    # inline numbers of a create too
    third = make_trunk(phone_numbers=[{"phone_number": "14155550100"}])
    [multi] = sandbox.admin.audit()["numbers_on_multiple_active_trunks"]
    assert multi["digits"] == "14155550100" and multi["count"] == 3
    assert sorted(multi["trunk_ids"]) == sorted([first["id"], second["id"], third["id"]])
    assert sandbox.numbers_by_trunk() == {(t["id"], "14155550100"): 1 for t in (first, second, third)}


def test_same_number_twice_on_one_trunk_is_always_refused(
    api: httpx.Client, sandbox: Any, make_trunk: Any, trunk_body: BodyFactory
) -> None:
    sandbox.admin.config(unique_numbers=False)
    trunk = make_trunk()
    assert api.post(numbers_url(trunk), json={"phone_number": "14155550100"}).status_code == 201
    response = api.post(numbers_url(trunk), json={"phone_number": "+14155550100"})
    assert response.status_code == 409
    assert response.json()["message"] == "Phone number already exists on this trunk"
    inline_twice = trunk_body(phone_numbers=[{"phone_number": "1555"}, {"phone_number": "+1555"}])
    assert api.post(TRUNKS, json=inline_twice).status_code == 409


def test_switches_from_the_factory_and_the_cli(bolna_sandbox_factory: Any) -> None:
    server = bolna_sandbox_factory(unique_names=False, unique_numbers=False)
    config = server.admin.config()
    assert config["unique_names"] is False and config["unique_numbers"] is False
    assert "--no-unique-names" in server.command() and "--no-unique-numbers" in server.command()
    with server.client() as client:
        ids = {
            client.post(TRUNKS, json={**SEED_USERPASS, "phone_numbers": [{"phone_number": "1555"}]}).json()[
                "id"
            ]
            for _ in range(2)
        }
        assert len(ids) == 2 and len(client.get(TRUNKS).json()) == 2
    server.restart(unique_names=True)  # restart keeps the other knob
    config = server.admin.config()
    assert config["unique_names"] is True and config["unique_numbers"] is False


def test_cli_flags() -> None:
    parse = build_parser().parse_args
    assert config_from_args(parse([])).unique_names is True
    config = config_from_args(parse(["--no-unique-names", "--no-unique-numbers"]))
    assert (config.unique_names, config.unique_numbers) == (False, False)
    assert config_from_args(parse(["--no-unique-names", "--unique-names"])).unique_names is True


@pytest.mark.parametrize("knob", ["unique_names", "unique_numbers"])
def test_switches_must_be_booleans(sandbox: Any, knob: str) -> None:
    response = httpx.patch(f"{sandbox.url}/__sandbox__/config", json={knob: "false"}, trust_env=False)
    assert response.status_code == 400 and knob in response.json()["message"]


def test_database_of_an_older_sandbox_is_upgraded(bolna_sandbox_factory: Any, tmp_path: Path) -> None:
    """A file written before the switches had unique indexes, no agent_id, no history."""
    db_path = tmp_path / "old.db"
    store = Store(str(db_path))
    store.import_trunks([validate_create({**SEED_USERPASS, "phone_numbers": [{"phone_number": "1555"}]})])
    store.close()
    conn = sqlite3.connect(db_path)
    conn.executescript(
        "CREATE UNIQUE INDEX trunks_name ON trunks (name);"
        "CREATE UNIQUE INDEX numbers_active_digits ON phone_numbers (digits) WHERE deleted = 0;"
        "DROP TABLE trunk_history; ALTER TABLE phone_numbers DROP COLUMN agent_id;"
    )
    conn.close()
    server = bolna_sandbox_factory(db_path, unique_names=False, unique_numbers=False)
    with server.client() as client:
        again = client.post(TRUNKS, json={**SEED_USERPASS, "phone_numbers": [{"phone_number": "1555"}]})
        assert again.status_code == 201
    assert server.trunks_by_name() == {SEED_USERPASS["name"]: 2}  # the old trunk is in the history
    assert server.admin.audit()["numbers_on_multiple_active_trunks"][0]["count"] == 2
