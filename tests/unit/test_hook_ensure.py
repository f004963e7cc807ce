"""The idempotent operations: ``ensure_trunk``, ``ensure_number``, ``delete_trunk``, ``remove_number``.

Each test scripts the API's answers in order and asserts the exact sequence of calls, so a
duplicate POST (the one thing these operations exist to prevent) cannot go unnoticed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_bolna.exceptions import (
    BolnaConflictError,
    BolnaNotFoundError,
    BolnaServerError,
    BolnaValidationError,
)
from airflow_provider_bolna.hooks.bolna import NumberResult, TrunkResult
from airflow_provider_bolna.models import PhoneNumber, SIPTrunk, SpecError
from tests.unit.helpers import (
    NUMBER_ID,
    TRUNK_ID,
    TRUNKS_PATH,
    USERPASS_SPEC,
    Runner,
    calls_of,
    make_hook,
    number_json,
    spec,
    trunk_json,
)

TRUNK_PATH = f"{TRUNKS_PATH}/{TRUNK_ID}"
NUMBERS_PATH = f"{TRUNK_PATH}/numbers"
PHONE = "+919876543210"
PHONE_2 = "+14155550100"
SPEC_WITH_NUMBERS = spec(phone_numbers=[{"phone_number": PHONE}, {"phone_number": PHONE_2}])

LIST = ("GET", TRUNKS_PATH)
CREATE = ("POST", TRUNKS_PATH)
PATCH = ("PATCH", TRUNK_PATH)
DELETE = ("DELETE", TRUNK_PATH)
LIST_NUMBERS = ("GET", NUMBERS_PATH)
ADD_NUMBER = ("POST", NUMBERS_PATH)

AMBIGUOUS_CREATE_FAILURES = [
    pytest.param(httpx.Response(503, json={"message": "upstream timeout"}), id="503"),
    pytest.param(httpx.Response(500), id="500"),
    pytest.param(httpx.ReadTimeout("read timed out"), id="ReadTimeout"),
    pytest.param(httpx.RemoteProtocolError("peer closed connection"), id="RemoteProtocolError"),
]


def _body(call: Any) -> Any:
    return json.loads(call.request.content)


def _listing(*trunks: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=list(trunks))


# ---------------------------------------------------------------------------- ensure_trunk: creation


def test_creates_when_absent(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing(trunk_json(spec(name="someone else"), trunk_id="x")))
    create = api.post(TRUNKS_PATH).respond(201, json=trunk_json(SPEC_WITH_NUMBERS))
    result = run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS))
    assert isinstance(result, TrunkResult)
    assert (result.action, result.trunk.id, result.numbers_added) == ("created", TRUNK_ID, [PHONE, PHONE_2])
    assert calls_of(api) == [LIST, CREATE]
    assert [n["phone_number"] for n in _body(create.calls.last)["phone_numbers"]] == [PHONE, PHONE_2]
    assert result.to_xcom() == {
        "trunk_id": TRUNK_ID,
        "name": USERPASS_SPEC["name"],
        "action": "created",
        "numbers_added": [PHONE, PHONE_2],
        "patched_fields": [],
    }


def test_known_absent_skips_the_lookup(api: respx.MockRouter, run: Runner) -> None:
    api.post(TRUNKS_PATH).respond(201, json=trunk_json())
    assert run(make_hook(), "ensure_trunk", spec(), existing=None).action == "created"
    assert calls_of(api) == [CREATE]


@pytest.mark.parametrize("failure", AMBIGUOUS_CREATE_FAILURES)
def test_ambiguous_create_adopts_what_landed(api: respx.MockRouter, run: Runner, failure: Any) -> None:
    """The POST may have worked: look by name, and never POST again if the trunk is there."""
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing(trunk_json())])
    api.post(TRUNKS_PATH).mock(side_effect=[failure, httpx.Response(201, json=trunk_json())])
    result = run(make_hook(), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST]
    assert (result.action, result.trunk.id) == ("created", TRUNK_ID)


@pytest.mark.parametrize("failure", AMBIGUOUS_CREATE_FAILURES)
def test_ambiguous_create_posts_again_only_when_verifiably_absent(
    api: respx.MockRouter, run: Runner, failure: Any
) -> None:
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing()])
    api.post(TRUNKS_PATH).mock(side_effect=[failure, httpx.Response(201, json=trunk_json())])
    result = run(make_hook(), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST, CREATE]
    assert result.action == "created"


def test_ambiguous_create_still_looks_when_no_retries_are_left(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing(trunk_json())])
    api.post(TRUNKS_PATH).respond(503)
    result = run(make_hook(max_retries=0), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST]
    assert result.action == "created"


def test_ambiguous_create_gives_up_after_max_retries(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing())
    api.post(TRUNKS_PATH).respond(503)
    with pytest.raises(BolnaServerError):
        run(make_hook(max_retries=1), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST, CREATE, LIST]


def test_ambiguous_create_then_name_conflict_is_our_own_trunk(api: respx.MockRouter, run: Runner) -> None:
    """First POST landed but was not yet listed; the second one hits the unique name."""
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing(), _listing(trunk_json())])
    api.post(TRUNKS_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(409, json={"message": "Trunk name already exists"})]
    )
    result = run(make_hook(), "ensure_trunk", spec(), if_exists="fail")
    assert calls_of(api) == [LIST, CREATE, LIST, CREATE, LIST]
    assert result.action == "created"


def test_ambiguous_create_adds_numbers_missing_from_the_found_trunk(
    api: respx.MockRouter, run: Runner
) -> None:
    landed = trunk_json(spec(SPEC_WITH_NUMBERS, phone_numbers=[{"phone_number": PHONE}]))
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing(landed)])
    api.post(TRUNKS_PATH).respond(503)
    add = api.post(NUMBERS_PATH).respond(201, json=number_json(PHONE_2))
    result = run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS))
    assert calls_of(api) == [LIST, CREATE, LIST, ADD_NUMBER]
    assert _body(add.calls.last)["phone_number"] == PHONE_2
    assert result.action == "created" and set(result.numbers_added) == {PHONE, PHONE_2}


def test_name_conflict_adopts_the_existing_trunk(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing(trunk_json())])
    api.post(TRUNKS_PATH).respond(409, json={"message": "Trunk name already exists"})
    result = run(make_hook(), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST]
    assert result.action == "adopted"


@pytest.mark.parametrize("status", [400, 422])
def test_a_taken_name_refused_with_a_validation_status_is_adopted(
    api: respx.MockRouter, run: Runner, status: int
) -> None:
    """Bolna documents unique names, not the status of the refusal: 400/422 about the name count too."""
    api.get(TRUNKS_PATH).mock(side_effect=[_listing(), _listing(trunk_json())])
    api.post(TRUNKS_PATH).respond(
        status, json={"error": status, "message": "A trunk with this name already exists"}
    )
    result = run(make_hook(), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST]
    assert result.action == "adopted"


def test_a_validation_refusal_about_the_name_with_no_such_trunk_is_raised(
    api: respx.MockRouter, run: Runner
) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing())
    api.post(TRUNKS_PATH).respond(400, json={"error": 400, "message": "name must be at most 100 characters"})
    with pytest.raises(BolnaValidationError, match="at most 100"):
        run(make_hook(), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE, LIST]


def test_conflict_not_about_the_name_is_raised(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing())
    api.post(TRUNKS_PATH).respond(
        409, json={"message": "Phone number already exists on another active trunk"}
    )
    with pytest.raises(BolnaConflictError, match="another active trunk"):
        run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS))
    assert calls_of(api) == [LIST, CREATE, LIST]


def test_validation_error_on_create_is_not_retried(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing())
    api.post(TRUNKS_PATH).respond(400, json={"error": 400, "message": "At least one gateway is required"})
    with pytest.raises(BolnaValidationError):
        run(make_hook(), "ensure_trunk", spec())
    assert calls_of(api) == [LIST, CREATE]


# ---------------------------------------------------------------------------- ensure_trunk: existing trunk


def test_adopt_leaves_settings_alone_and_adds_missing_numbers(api: respx.MockRouter, run: Runner) -> None:
    drifted = trunk_json(
        spec(SPEC_WITH_NUMBERS, phone_numbers=[{"phone_number": "919876543210"}]), inbound_enabled=False
    )
    api.get(TRUNKS_PATH).mock(return_value=_listing(drifted))
    add = api.post(NUMBERS_PATH).respond(201, json=number_json(PHONE_2))
    result = run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS), if_exists="adopt")
    assert calls_of(api) == [LIST, ADD_NUMBER]  # PHONE is on it without "+": same number
    assert _body(add.calls.last) == {"phone_number": PHONE_2, "e164_check_enabled": False}
    assert (result.action, result.numbers_added, result.patched_fields) == ("adopted", [PHONE_2], [])


def test_adopt_with_everything_present_writes_nothing(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing(trunk_json(SPEC_WITH_NUMBERS)))
    result = run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS))
    assert calls_of(api) == [LIST]
    assert (result.action, result.numbers_added) == ("adopted", [])


def test_update_patches_exactly_the_drifted_fields(api: respx.MockRouter, run: Runner) -> None:
    actual = trunk_json(
        inbound_enabled=False,
        allow="ulaw",
        gateways=[{"gateway_address": "sip.zadarma.com", "port": 5080, "priority": 1}],
    )
    api.get(TRUNKS_PATH).mock(return_value=_listing(actual))
    patch = api.patch(TRUNK_PATH).respond(200, json=trunk_json())
    result = run(make_hook(), "ensure_trunk", spec(), if_exists="update")
    assert calls_of(api) == [LIST, PATCH]
    assert _body(patch.calls.last) == {
        "allow": "ulaw,alaw",
        "inbound_enabled": True,
        "gateways": [{"gateway_address": "sip.zadarma.com", "port": 5060, "priority": 1}],
    }
    assert (result.action, result.patched_fields) == ("updated", ["allow", "gateways", "inbound_enabled"])
    assert result.trunk.inbound_enabled is True


def test_update_when_equal_is_unchanged(api: respx.MockRouter, run: Runner) -> None:
    reordered = trunk_json(
        spec(gateways=[{"gateway_address": "b.example", "priority": 2}, {"gateway_address": "a.example"}])
    )
    api.get(TRUNKS_PATH).mock(return_value=_listing(reordered))
    result = run(
        make_hook(),
        "ensure_trunk",
        spec(gateways=[{"gateway_address": "a.example"}, {"gateway_address": "b.example", "priority": 2}]),
        if_exists="update",
    )
    assert calls_of(api) == [LIST]
    assert (result.action, result.patched_fields) == ("unchanged", [])


def test_update_with_only_numbers_missing_is_updated(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing(trunk_json()))
    api.post(NUMBERS_PATH).mock(
        side_effect=[
            httpx.Response(201, json=number_json(PHONE)),
            httpx.Response(201, json=number_json(PHONE_2)),
        ]
    )
    result = run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS), if_exists="update")
    assert calls_of(api) == [LIST, ADD_NUMBER, ADD_NUMBER]
    assert (result.action, result.numbers_added, result.patched_fields) == ("updated", [PHONE, PHONE_2], [])


def test_update_refuses_immutable_drift_without_writing(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing(trunk_json(provider="twilio")))
    with pytest.raises(SpecError) as info:
        run(make_hook(), "ensure_trunk", spec(), if_exists="update")
    assert info.value.fields == ["provider"]
    assert calls_of(api) == [LIST]


def test_fail_refuses_an_existing_trunk(api: respx.MockRouter, run: Runner) -> None:
    api.get(TRUNKS_PATH).mock(return_value=_listing(trunk_json()))
    with pytest.raises(BolnaConflictError, match=TRUNK_ID):
        run(make_hook(), "ensure_trunk", spec(SPEC_WITH_NUMBERS), if_exists="fail")
    assert calls_of(api) == [LIST]


def test_existing_trunk_given_skips_the_lookup(api: respx.MockRouter, run: Runner) -> None:
    existing = SIPTrunk.model_validate(trunk_json())
    result = run(make_hook(), "ensure_trunk", spec(), existing=existing)
    assert calls_of(api) == [] and result.action == "adopted"


def test_unknown_if_exists_is_refused(api: respx.MockRouter, run: Runner) -> None:
    with pytest.raises(BolnaValidationError, match="if_exists"):
        run(make_hook(), "ensure_trunk", spec(), if_exists="replace")
    assert calls_of(api) == []


# ---------------------------------------------------------------------------- ensure_number


def test_number_already_on_trunk_is_unchanged_without_post(api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).respond(200, json=[number_json("919876543210", number_id=NUMBER_ID)])
    result = run(make_hook(), "ensure_number", TRUNK_ID, PHONE)
    assert isinstance(result, NumberResult)
    assert calls_of(api) == [LIST_NUMBERS]
    assert (result.action, result.phone_number, result.number.id) == ("unchanged", PHONE, NUMBER_ID)
    assert result.to_xcom() == {"phone_number": PHONE, "action": "unchanged", "phone_number_id": NUMBER_ID}


def test_known_numbers_skip_the_listing(api: respx.MockRouter, run: Runner) -> None:
    known = [PhoneNumber.model_validate(number_json(PHONE))]
    assert run(make_hook(), "ensure_number", TRUNK_ID, PHONE, known_numbers=known).action == "unchanged"
    assert calls_of(api) == []


def test_absent_number_is_added_once(api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).respond(200, json=[number_json(PHONE, deleted=True), number_json(PHONE_2)])
    add = api.post(NUMBERS_PATH).respond(201, json=number_json(PHONE, number_id=NUMBER_ID))
    result = run(make_hook(), "ensure_number", TRUNK_ID, {"phone_number": PHONE, "name": "Mumbai"})
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER]
    assert _body(add.calls.last) == {"phone_number": PHONE, "name": "Mumbai", "e164_check_enabled": False}
    assert (result.action, result.number.id) == ("created", NUMBER_ID)


def test_conflict_on_this_trunk_is_unchanged(api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).respond(200, json=[])
    api.post(NUMBERS_PATH).respond(409, json={"message": "Phone number already exists on this trunk"})
    result = run(make_hook(), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER]
    assert result.action == "unchanged"


def test_conflict_elsewhere_names_the_number(api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).respond(200, json=[])
    api.post(NUMBERS_PATH).respond(
        409,
        json={"message": "Phone number already exists on another active trunk"},
        headers={"x-request-id": "r-9"},
    )
    with pytest.raises(BolnaConflictError) as info:
        run(make_hook(), "ensure_number", TRUNK_ID, PHONE)
    assert PHONE in str(info.value) and info.value.status_code == 409 and info.value.request_id == "r-9"
    calls = calls_of(api)
    assert calls[:2] == [LIST_NUMBERS, ADD_NUMBER]
    assert calls.count(ADD_NUMBER) == 1
    assert calls[2:] and set(calls[2:]) == {LIST_NUMBERS}, "must wait for the number to show before giving up"


def test_conflict_then_visible_is_unchanged(api: respx.MockRouter, run: Runner) -> None:
    """A just-added number can take seconds to be listed (observed live by Bolna's MCP authors)."""
    api.get(NUMBERS_PATH).mock(
        side_effect=[httpx.Response(200, json=[]), httpx.Response(200, json=[number_json(PHONE)])]
    )
    api.post(NUMBERS_PATH).respond(409, json={"message": "Phone number already exists"})
    result = run(make_hook(number_visibility_timeout=2.0), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER, LIST_NUMBERS]
    assert result.action == "unchanged"


@pytest.mark.parametrize("failure", AMBIGUOUS_CREATE_FAILURES)
def test_ambiguous_add_then_visible_is_created(api: respx.MockRouter, run: Runner, failure: Any) -> None:
    api.get(NUMBERS_PATH).mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[number_json(PHONE, number_id=NUMBER_ID)]),
        ]
    )
    api.post(NUMBERS_PATH).mock(side_effect=[failure, httpx.Response(201, json=number_json(PHONE))])
    result = run(make_hook(), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER, LIST_NUMBERS]
    assert (result.action, result.number.id) == ("created", NUMBER_ID)


def test_ambiguous_add_looks_once_then_posts_again_without_waiting(
    api: respx.MockRouter, run: Runner, sleeps: list[float]
) -> None:
    """A 503 costs one look and one more POST, not the visibility window."""
    api.get(NUMBERS_PATH).respond(200, json=[])
    api.post(NUMBERS_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json=number_json(PHONE, number_id=NUMBER_ID))]
    )
    result = run(make_hook(number_visibility_timeout=30.0), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER, LIST_NUMBERS, ADD_NUMBER]
    assert (result.action, result.number.id) == ("created", NUMBER_ID)
    assert sleeps == []


def test_ambiguous_add_then_conflict_on_this_trunk_is_ours_at_once(
    api: respx.MockRouter, run: Runner, sleeps: list[float]
) -> None:
    """The first add landed but is not visible yet: the second one's 409 "on this trunk" settles it."""
    api.get(NUMBERS_PATH).respond(200, json=[])
    api.post(NUMBERS_PATH).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(409, json={"message": "Phone number already exists on this trunk"}),
        ]
    )
    result = run(make_hook(number_visibility_timeout=30.0), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER, LIST_NUMBERS, ADD_NUMBER]
    assert (result.action, result.number) == ("created", None)
    assert sleeps == []


def test_wait_for_id_waits_for_a_confirmed_number_to_show(
    api: respx.MockRouter, run: Runner, sleeps: list[float]
) -> None:
    empty = httpx.Response(200, json=[])
    api.get(NUMBERS_PATH).mock(
        side_effect=[empty, empty, empty, httpx.Response(200, json=[number_json(PHONE, number_id=NUMBER_ID)])]
    )
    api.post(NUMBERS_PATH).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(409, json={"message": "Phone number already exists on this trunk"}),
        ]
    )
    result = run(make_hook(number_visibility_timeout=5.0), "ensure_number", TRUNK_ID, PHONE, wait_for_id=True)
    assert calls_of(api) == [LIST_NUMBERS, ADD_NUMBER, LIST_NUMBERS, ADD_NUMBER, LIST_NUMBERS, LIST_NUMBERS]
    assert (result.action, result.number.id) == ("created", NUMBER_ID)
    assert len(sleeps) == 1


def test_ambiguous_add_never_visible_posts_again(api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).respond(200, json=[])
    api.post(NUMBERS_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json=number_json(PHONE))]
    )
    result = run(make_hook(), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api).count(ADD_NUMBER) == 2
    assert result.action == "created"


def test_ambiguous_add_then_conflict_is_our_own_number(api: respx.MockRouter, run: Runner) -> None:
    api.get(NUMBERS_PATH).mock(
        side_effect=[httpx.Response(200, json=[])] * 3 + [httpx.Response(200, json=[number_json(PHONE)])]
    )
    api.post(NUMBERS_PATH).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(409, json={"message": "Phone number already exists"}),
        ]
    )
    result = run(make_hook(number_visibility_timeout=0.01), "ensure_number", TRUNK_ID, PHONE)
    assert calls_of(api).count(ADD_NUMBER) == 2
    assert result.action == "created"


# ---------------------------------------------------------------------------- deletes


def test_delete_missing_trunk_is_false(api: respx.MockRouter, run: Runner) -> None:
    api.delete(TRUNK_PATH).respond(404, json={"error": 404, "message": "trunk not found"})
    assert run(make_hook(), "delete_trunk", TRUNK_ID) is False
    assert calls_of(api) == [DELETE]


def test_delete_missing_trunk_raises_when_not_missing_ok(api: respx.MockRouter, run: Runner) -> None:
    api.delete(TRUNK_PATH).respond(404, json={"message": "trunk not found"})
    with pytest.raises(BolnaNotFoundError):
        run(make_hook(), "delete_trunk", TRUNK_ID, missing_ok=False)


def test_delete_deactivates_first(api: respx.MockRouter, run: Runner) -> None:
    patch = api.patch(TRUNK_PATH).respond(200, json=trunk_json(is_active=False))
    api.delete(TRUNK_PATH).respond(200, json={"message": "deleted"})
    assert run(make_hook(), "delete_trunk", TRUNK_ID, deactivate_first=True) is True
    assert calls_of(api) == [PATCH, DELETE]
    assert _body(patch.calls.last) == {"is_active": False}


def test_delete_deactivate_of_missing_trunk_is_false(api: respx.MockRouter, run: Runner) -> None:
    api.patch(TRUNK_PATH).respond(404)
    assert run(make_hook(), "delete_trunk", TRUNK_ID, deactivate_first=True) is False
    assert calls_of(api) == [PATCH]


def test_remove_missing_number(api: respx.MockRouter, run: Runner) -> None:
    route = api.delete(f"{NUMBERS_PATH}/{NUMBER_ID}").respond(404)
    assert run(make_hook(), "remove_number", TRUNK_ID, NUMBER_ID) is False
    with pytest.raises(BolnaNotFoundError):
        run(make_hook(), "remove_number", TRUNK_ID, NUMBER_ID, missing_ok=False)
    assert route.call_count == 2


# ---------------------------------------------------------------------------- ensure_trunk with a finder


class Finder:
    """A look-up by name shared by a batch (here: a dict), sync or async; records the names asked."""

    def __init__(self, run: Runner, trunks: dict[str, dict[str, Any]] | None = None) -> None:
        self.trunks = dict(trunks or {})
        self.asked: list[str] = []
        self.is_async = run.is_async

    def _find(self, name: str) -> SIPTrunk | None:
        self.asked.append(name)
        found = self.trunks.get(name)
        return SIPTrunk.model_validate(found) if found else None

    def __call__(self, name: str) -> Any:
        if not self.is_async:
            return self._find(name)

        async def find() -> SIPTrunk | None:
            return self._find(name)

        return find()


@pytest.mark.parametrize("failure", AMBIGUOUS_CREATE_FAILURES)
def test_finder_settles_an_ambiguous_create_without_a_listing(
    api: respx.MockRouter, run: Runner, failure: Any
) -> None:
    listing = api.get(TRUNKS_PATH).respond(200, json=[])
    api.post(TRUNKS_PATH).mock(side_effect=[failure])
    finder = Finder(run, {USERPASS_SPEC["name"]: trunk_json()})
    result = run(make_hook(), "ensure_trunk", spec(), existing=None, finder=finder)
    assert (result.action, result.trunk.id) == ("created", TRUNK_ID)
    assert calls_of(api) == [CREATE] and listing.call_count == 0
    assert finder.asked == [USERPASS_SPEC["name"]]


def test_finder_absent_after_an_ambiguous_create_posts_again(api: respx.MockRouter, run: Runner) -> None:
    api.post(TRUNKS_PATH).mock(side_effect=[httpx.Response(503), httpx.Response(201, json=trunk_json())])
    finder = Finder(run)
    result = run(make_hook(), "ensure_trunk", spec(), existing=None, finder=finder)
    assert calls_of(api) == [CREATE, CREATE] and result.action == "created"
    assert finder.asked == [USERPASS_SPEC["name"]]


def test_finder_settles_a_refused_create(api: respx.MockRouter, run: Runner) -> None:
    api.post(TRUNKS_PATH).respond(409, json={"message": "Trunk name already exists"})
    finder = Finder(run, {USERPASS_SPEC["name"]: trunk_json()})
    result = run(make_hook(), "ensure_trunk", spec(), existing=None, finder=finder)
    assert calls_of(api) == [CREATE] and result.action == "adopted"


def test_finder_answers_the_first_look_up_too(api: respx.MockRouter, run: Runner) -> None:
    finder = Finder(run, {USERPASS_SPEC["name"]: trunk_json()})
    result = run(make_hook(), "ensure_trunk", spec(), finder=finder)
    assert calls_of(api) == [] and result.action == "adopted"


def test_finder_errors_reach_the_flow(api: respx.MockRouter, run: Runner) -> None:
    """A finder whose listing failed ambiguously leaves the create unsettled: raised, not re-sent."""
    api.post(TRUNKS_PATH).respond(503)

    def failing(name: str) -> Any:
        error = BolnaServerError("listing failed", status_code=503)
        if not run.is_async:
            raise error

        async def fail() -> None:
            raise error

        return fail()

    with pytest.raises(BolnaServerError, match="listing failed"):
        run(make_hook(), "ensure_trunk", spec(), existing=None, finder=failing)
    assert calls_of(api) == [CREATE]


@pytest.mark.parametrize(
    ("failure", "waits"),
    [
        (httpx.ReadTimeout("no answer"), True),  # may still be in flight: let it land first
        (httpx.Response(503), False),  # answered: the server is done with it
        (httpx.RemoteProtocolError("cut"), False),  # the other side closed: done with it
    ],
    ids=["timeout", "503", "cut"],
)
def test_a_timed_out_create_is_given_time_to_land_before_the_look_up(
    api: respx.MockRouter, run: Runner, failure: Any, waits: bool
) -> None:
    """A proxy may deliver a POST after the client gave up: looking at once would find nothing,
    and the second POST would make a duplicate where the API accepts duplicate names."""
    looked_at: list[float] = []

    def listing(request: httpx.Request) -> httpx.Response:
        looked_at.append(time.monotonic())
        return _listing(trunk_json())

    api.post(TRUNKS_PATH).mock(side_effect=[failure])
    api.get(TRUNKS_PATH).mock(side_effect=listing)
    started = time.monotonic()
    result = run(make_hook(late_commit_grace=0.4), "ensure_trunk", spec(), existing=None)
    assert (result.action, calls_of(api)) == ("created", [CREATE, LIST])
    assert (looked_at[0] - started >= 0.4) is waits
