"""The failure policy (:mod:`airflow_provider_bolna.failures`) and redaction helpers, directly."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_bolna.exceptions import (
    BolnaAuthError,
    BolnaConflictError,
    BolnaError,
    BolnaNotFoundError,
    BolnaPhoneNumbersError,
    BolnaRateLimitError,
    BolnaResponseError,
    BolnaServerError,
    BolnaTransportError,
    BolnaValidationError,
)
from airflow_provider_bolna.failures import (
    bolna_error_policy,
    error_event,
    is_permanent,
    means_not_ready,
    raise_for_error_event,
)
from airflow_provider_bolna.models import FieldError, SpecError
from airflow_provider_bolna.secrets import excerpt, redact, redact_strings
from airflow_provider_bolna.secrets_ref import SecretRefError

#: (error, permanent, means "not ready yet" while waiting)
CLASSES = [
    pytest.param(BolnaAuthError("bad key", status_code=403), True, False, id="auth"),
    pytest.param(BolnaValidationError("bad id", status_code=400), True, False, id="validation"),
    pytest.param(SpecError([FieldError(field="gateways", message="required")]), True, False, id="spec"),
    pytest.param(SecretRefError("auth_password", "cannot read"), True, False, id="secret-ref"),
    pytest.param(BolnaConflictError("taken", status_code=409), True, False, id="conflict"),
    pytest.param(
        BolnaPhoneNumbersError("2 failed", failures={}, permanent=True), True, False, id="numbers-permanent"
    ),
    pytest.param(
        BolnaPhoneNumbersError("2 failed", failures={}, permanent=False), False, False, id="numbers-transient"
    ),
    pytest.param(BolnaNotFoundError("gone", status_code=404), False, True, id="not-found"),
    pytest.param(BolnaServerError("busy", status_code=503), False, True, id="server"),
    pytest.param(BolnaRateLimitError("slow down", status_code=429), False, True, id="rate-limit"),
    pytest.param(BolnaTransportError("timed out"), False, True, id="transport"),
    pytest.param(BolnaResponseError("not JSON", status_code=200), False, False, id="response"),
    pytest.param(BolnaError("405", status_code=405), False, False, id="other-status"),
    pytest.param(RuntimeError("bug"), False, False, id="not-bolna"),
]


@pytest.mark.parametrize(("exc", "permanent", "not_ready"), CLASSES)
def test_classification(exc: BaseException, permanent: bool, not_ready: bool) -> None:
    assert is_permanent(exc) is permanent
    assert means_not_ready(exc) is not_ready


@pytest.mark.parametrize(("exc", "permanent", "not_ready"), CLASSES)
def test_the_error_policy_and_the_trigger_event_agree(
    exc: BaseException, permanent: bool, not_ready: bool
) -> None:
    """What a task raises in poke mode is what it raises after the trigger's error event."""
    with pytest.raises(BaseException) as direct, bolna_error_policy("bolna_x"):
        raise exc
    event = json.loads(json.dumps(error_event(exc, "trunk T1", "T1")))  # events travel as JSON
    with pytest.raises(BaseException) as via_event:
        raise_for_error_event(event, "bolna_x")
    assert isinstance(direct.value, AirflowFailException) is permanent
    assert isinstance(via_event.value, AirflowFailException) is permanent
    if permanent:
        assert direct.value.__cause__ is exc
        assert ("refused the API key of connection 'bolna_x'" in str(direct.value)) == isinstance(
            exc, BolnaAuthError
        )
        assert ("refused the API key of connection 'bolna_x'" in str(via_event.value)) == isinstance(
            exc, BolnaAuthError
        )
    else:
        assert direct.value is exc and isinstance(via_event.value, BolnaError)
    assert event["trunk_id"] == "T1" and event["error_type"] == type(exc).__name__


def test_an_event_from_before_the_retryable_flag_fails_the_task() -> None:
    with pytest.raises(AirflowFailException, match="not retried"):
        raise_for_error_event({"status": "error", "message": "m", "error_type": "BolnaError"}, "c")


# ---------------------------------------------------------------------------- redaction

SECRET = "sk-0123456789abcdef"


def test_redact_removes_secrets_and_cut_fragments() -> None:
    assert redact(f"key={SECRET}; again {SECRET}", [SECRET]) == "key=***; again ***"
    assert redact(f"tail {SECRET[:10]}", [SECRET]) == "tail ***"
    assert redact(f"{SECRET[-9:]} head", [SECRET]) == "*** head"
    assert redact("short ab", ["ab"]) == "short ab", "secrets under 3 characters are not searched"


def test_excerpt_redacts_before_cutting() -> None:
    """Cut first, a 300-character limit would leave ``sk-01`` of the key behind."""
    cut = excerpt("x" * 295 + SECRET + "y" * 20, [SECRET], 300)
    assert cut == "x" * 295 + "***" + "yy…"


def test_redact_strings_walks_json() -> None:
    data = {"a": [SECRET, {"k": f"v {SECRET}"}], SECRET: 1, "n": 2}
    assert SECRET not in json.dumps(redact_strings(data, (SECRET,)))
