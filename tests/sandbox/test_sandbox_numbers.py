"""Number endpoints of the sandbox: add / list / remove, conflicts, E.164, visibility delay."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .conftest import ISO, TRUNKS, ULID, assert_error

pytestmark = pytest.mark.integration


@pytest.fixture
def trunk(make_trunk: Any) -> dict[str, Any]:
    return make_trunk()


def numbers_url(trunk: dict[str, Any]) -> str:
    return f"{TRUNKS}/{trunk['id']}/numbers"


def test_add_list_remove(api: httpx.Client, sandbox: Any, trunk: dict[str, Any]) -> None:
    response = api.post(
        numbers_url(trunk),
        json={"phone_number": "919876543210", "name": "Mumbai", "e164_check_enabled": False},
    )
    assert response.status_code == 201
    number = response.json()
    assert set(number) == {
        "id",
        "phone_number",
        "name",
        "user_id",
        "byot_trunk_id",
        "telephony_provider",
        "deleted",
        "created_at",
        "updated_at",
    }
    assert number["phone_number"] == "919876543210" and number["name"] == "Mumbai"
    assert number["byot_trunk_id"] == trunk["id"] and number["telephony_provider"] == "sip-trunk"
    assert number["deleted"] is False and ULID.fullmatch(number["id"]) and ISO.fullmatch(number["created_at"])
    assert api.get(numbers_url(trunk)).json() == [number]
    assert api.get(f"{TRUNKS}/{trunk['id']}").json()["phone_numbers"] == [number]

    removed = api.delete(f"{numbers_url(trunk)}/{number['id']}")
    assert removed.status_code == 200
    assert removed.json() == {"message": "Phone number removed successfully"}
    assert api.get(numbers_url(trunk)).json() == []
    assert api.delete(f"{numbers_url(trunk)}/{number['id']}").status_code == 404
    writes = sandbox.admin.counters()["writes"]
    assert writes["add_number"] == 1 and writes["remove_number"] == 1


def test_number_stored_verbatim_and_name_optional(api: httpx.Client, trunk: dict[str, Any]) -> None:
    number = api.post(numbers_url(trunk), json={"phone_number": "+442071838750"}).json()
    assert number["phone_number"] == "+442071838750" and number["name"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"phone_number": ""},
        {"phone_number": "+"},
        {"phone_number": "12 34"},
        {"phone_number": "12-34"},
        {"phone_number": "++123"},
        {"phone_number": "١٢٣"},
        {"phone_number": 919876543210},
        {"phone_number": "919876543210\n"},
        {"phone_number": "1" * 33},
        {"phone_number": "919876543210", "e164_check_enabled": True},
        {"phone_number": "+0123456789", "e164_check_enabled": True},
        {"phone_number": "+12345", "e164_check_enabled": True},
        {"phone_number": "+1234567890123456", "e164_check_enabled": True},
        {},
        {"name": "x"},
    ],
)
def test_invalid_number(api: httpx.Client, trunk: dict[str, Any], body: dict[str, Any]) -> None:
    assert_error(api.post(numbers_url(trunk), json=body), 400, "phone_number")


@pytest.mark.parametrize(
    "body,field",
    [
        ({"phone_number": "123", "e164_check_enabled": "yes"}, "e164_check_enabled"),
        ({"phone_number": "123", "extra": 1}, "extra"),
        ({"phone_number": "123", "name": 5}, "name"),
        ([], "body"),
    ],
)
def test_invalid_number_fields(api: httpx.Client, trunk: dict[str, Any], body: Any, field: str) -> None:
    assert_error(api.post(numbers_url(trunk), json=body), 400, field)


def test_e164_accepted_when_checked(api: httpx.Client, trunk: dict[str, Any]) -> None:
    body = {"phone_number": "+919876543210", "e164_check_enabled": True}
    assert api.post(numbers_url(trunk), json=body).status_code == 201


def test_duplicate_on_this_trunk(api: httpx.Client, trunk: dict[str, Any]) -> None:
    assert api.post(numbers_url(trunk), json={"phone_number": "+919876543210"}).status_code == 201
    response = api.post(numbers_url(trunk), json={"phone_number": "919876543210"})  # same digits
    assert response.status_code == 409
    assert response.json() == {"error": 409, "message": "Phone number already exists on this trunk"}


def test_duplicate_on_another_trunk(api: httpx.Client, make_trunk: Any) -> None:
    first, second = make_trunk(), make_trunk()
    assert api.post(numbers_url(first), json={"phone_number": "919876543210"}).status_code == 201
    response = api.post(numbers_url(second), json={"phone_number": "+919876543210"})
    assert response.status_code == 409
    assert response.json() == {"error": 409, "message": "Phone number already exists on another active trunk"}


def test_duplicate_on_deactivated_trunk_still_conflicts(api: httpx.Client, make_trunk: Any) -> None:
    first, second = make_trunk(), make_trunk()
    api.post(numbers_url(first), json={"phone_number": "15550001111"}).raise_for_status()
    api.patch(f"{TRUNKS}/{first['id']}", json={"is_active": False}).raise_for_status()
    assert api.post(numbers_url(second), json={"phone_number": "15550001111"}).status_code == 409


def test_removed_number_can_move(api: httpx.Client, make_trunk: Any) -> None:
    first, second = make_trunk(), make_trunk()
    number = api.post(numbers_url(first), json={"phone_number": "15550001111"}).json()
    api.delete(f"{numbers_url(first)}/{number['id']}").raise_for_status()
    assert api.post(numbers_url(second), json={"phone_number": "15550001111"}).status_code == 201


def test_unknown_trunk_or_number(api: httpx.Client, trunk: dict[str, Any]) -> None:
    not_found = {"error": 404, "message": "trunk not found"}
    assert api.post(f"{TRUNKS}/nope/numbers", json={"phone_number": "123"}).json() == not_found
    assert api.post(f"{TRUNKS}/nope/numbers", json={"phone_number": ""}).status_code == 404
    assert api.get(f"{TRUNKS}/nope/numbers").json() == not_found
    assert api.delete(f"{TRUNKS}/nope/numbers/x").json() == not_found
    assert api.delete(f"{numbers_url(trunk)}/x").json() == {"error": 404, "message": "phone number not found"}


def test_number_of_other_trunk_cannot_be_removed_here(api: httpx.Client, make_trunk: Any) -> None:
    first, second = make_trunk(), make_trunk()
    number = api.post(numbers_url(first), json={"phone_number": "15550001111"}).json()
    assert api.delete(f"{numbers_url(second)}/{number['id']}").status_code == 404
    assert len(api.get(numbers_url(first)).json()) == 1


def test_inline_numbers_created_with_trunk(api: httpx.Client, make_trunk: Any) -> None:
    trunk = make_trunk(
        phone_numbers=[
            {"phone_number": "+14155550100", "name": "SF"},
            {"phone_number": "14155550101", "e164_check_enabled": False},
        ]
    )
    assert [n["phone_number"] for n in trunk["phone_numbers"]] == ["+14155550100", "14155550101"]
    assert trunk["phone_numbers"][0]["name"] == "SF"
    assert all(n["byot_trunk_id"] == trunk["id"] for n in trunk["phone_numbers"])
    assert api.get(numbers_url(trunk)).json() == trunk["phone_numbers"]


@pytest.mark.parametrize(
    "numbers,status",
    [
        ([{"phone_number": "14155550100"}, {"phone_number": "bad"}], 400),
        ([{"phone_number": "14155550100"}, {"phone_number": "+14155550100"}], 409),
        (
            [
                {"phone_number": "14155550100"},
                {"phone_number": "+919876543210", "e164_check_enabled": True},
                {"phone_number": "15550009999"},
            ],
            409,
        ),  # the last one is taken by another trunk
    ],
)
def test_inline_numbers_all_or_nothing(
    api: httpx.Client,
    sandbox: Any,
    make_trunk: Any,
    trunk_body: Any,
    numbers: list[dict[str, Any]],
    status: int,
) -> None:
    make_trunk(name="holder", phone_numbers=[{"phone_number": "15550009999"}])
    response = api.post(TRUNKS, json=trunk_body(name="new", phone_numbers=numbers))
    assert response.status_code == status
    assert [t["name"] for t in api.get(TRUNKS).json()] == ["holder"]
    assert sandbox.admin.audit()["numbers"] == 1


def test_visibility_delay(api: httpx.Client, sandbox: Any, make_trunk: Any) -> None:
    delay = 3.0  # generous: the invisible-phase checks below must finish within it
    sandbox.admin.config(number_visibility_delay_s=delay)
    trunk = make_trunk(phone_numbers=[{"phone_number": "14155550100"}])
    assert len(trunk["phone_numbers"]) == 1  # the 201 body shows inline numbers at once
    number = api.post(numbers_url(trunk), json={"phone_number": "14155550101"}).json()
    added = time.monotonic()

    # invisible to list-numbers, GET / list trunks, and DELETE (404) ...
    assert api.get(numbers_url(trunk)).json() == []
    assert api.get(f"{TRUNKS}/{trunk['id']}").json()["phone_numbers"] == []
    assert api.get(TRUNKS).json()[0]["phone_numbers"] == []
    assert api.delete(f"{numbers_url(trunk)}/{number['id']}").status_code == 404
    # ... but it blocks duplicates immediately
    assert api.post(numbers_url(trunk), json={"phone_number": "+14155550101"}).status_code == 409
    assert (
        api.post(
            TRUNKS,
            json={
                **trunk_body_for(trunk),
                "name": "other",
                "phone_numbers": [{"phone_number": "14155550100"}],
            },
        ).status_code
        == 409
    )
    assert sandbox.admin.counters()["numbers"] == 2

    assert time.monotonic() - added < delay, "machine too slow for this check"
    time.sleep(max(0.0, delay + 0.05 - (time.monotonic() - added)))
    assert len(api.get(numbers_url(trunk)).json()) == 2
    assert len(api.get(f"{TRUNKS}/{trunk['id']}").json()["phone_numbers"]) == 2
    assert api.delete(f"{numbers_url(trunk)}/{number['id']}").status_code == 200


def trunk_body_for(trunk: dict[str, Any]) -> dict[str, Any]:
    """A create body equivalent to an existing trunk (credentials re-supplied)."""
    return {
        "name": trunk["name"],
        "provider": trunk["provider"],
        "auth_type": "userpass",
        "auth_username": "u",
        "auth_password": "p",
        "gateways": [{"gateway_address": g["gateway_address"]} for g in trunk["gateways"]],
    }
