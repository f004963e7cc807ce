"""Operators for the phone numbers of a SIP trunk: add (each exactly once) and remove.

Failure policy: :mod:`airflow_provider_bolna.failures`, as for every operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_bolna import DEFAULT_CONN_ID
from airflow_provider_bolna.exceptions import (
    BolnaAuthError,
    BolnaError,
    BolnaNotFoundError,
    BolnaPhoneNumbersError,
    BolnaValidationError,
)
from airflow_provider_bolna.failures import bolna_error_policy, is_permanent
from airflow_provider_bolna.models import PhoneNumberRequest, SpecError, number_key
from airflow_provider_bolna.operators.base import BolnaBaseOperator, BolnaNumberOperator, trunk_id_of

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["AddPhoneNumbersOperator", "RemovePhoneNumberOperator"]


class AddPhoneNumbersOperator(BolnaBaseOperator):
    """Put phone numbers on a SIP trunk, each exactly once.

    A number already on the trunk is ``unchanged`` (not an error). A number on another trunk
    (or otherwise refused) does not stop the others: every number is tried, then the task
    fails listing the failed ones (without retries when every failure is a conflict or a
    validation error; with retries when one was transient). Rerunning adds only what is missing.

    Mappable: ``AddPhoneNumbersOperator.partial(task_id=..., trunk_id=...).expand(numbers=[...])``
    (each mapped value may be one number or a list of numbers), or expand over ``trunk_id``.

    Returns (XCom) ``{"trunk_id", "numbers": [{"phone_number", "action", "phone_number_id"}]}``
    where ``action`` is ``created`` or ``unchanged``.

    :param trunk_id: the trunk's id (templated).
    :param numbers: numbers (strings, or dicts ``{"phone_number", "name", "e164_check_enabled"}``),
        or a single number (templated).
    :param bolna_conn_id: the Bolna connection (templated).
    """

    template_fields: Sequence[str] = ("trunk_id", "numbers", "bolna_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"numbers": "json"}

    def __init__(
        self,
        *,
        trunk_id: str,
        numbers: Sequence[str | dict[str, Any]] | str | dict[str, Any],
        bolna_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(bolna_conn_id=bolna_conn_id, **kwargs)
        self.trunk_id = trunk_id
        self.numbers = numbers

    def _requests(self) -> list[PhoneNumberRequest]:
        numbers = self.numbers
        if isinstance(numbers, (str, int, Mapping, PhoneNumberRequest)):
            numbers = [numbers]
        if not isinstance(numbers, (list, tuple)):
            raise BolnaValidationError(
                f"numbers: must be a list of phone numbers, not {type(numbers).__name__}"
            )
        from pydantic import ValidationError

        requests: list[PhoneNumberRequest] = []
        errors: list[str] = []
        seen: set[str] = set()
        for i, number in enumerate(numbers):
            try:
                if isinstance(number, PhoneNumberRequest):
                    req = number
                elif isinstance(number, Mapping):
                    req = PhoneNumberRequest.model_validate(dict(number))
                else:
                    req = PhoneNumberRequest.model_validate({"phone_number": number})
            except ValidationError as exc:
                errors.append(str(SpecError.from_validation_error(exc, context=f"numbers.{i}")))
                continue
            if req.key in seen:
                self.log.info("Number %s is listed twice; adding it once", req.phone_number)
                continue
            seen.add(req.key)
            requests.append(req)
        if errors:
            raise BolnaValidationError("invalid phone number(s): " + "; ".join(errors))
        return requests

    def execute(self, context: Context) -> dict[str, Any]:
        trunk_id = trunk_id_of(self.trunk_id)
        try:
            with bolna_error_policy(self.bolna_conn_id):
                requests = self._requests()
                results, failures, permanent = self._add_all(trunk_id, requests)
                if failures:
                    listing = "; ".join(f"{num}: {why}" for num, why in failures.items())
                    raise BolnaPhoneNumbersError(
                        f"{len(failures)} of {len(requests)} number(s) could not be added to trunk "
                        f"{trunk_id} (the other {len(results)} are on it): {listing}",
                        failures=failures,
                        permanent=permanent,
                    )
                return {"trunk_id": trunk_id, "numbers": results}
        finally:
            self._close_hook()

    def _add_all(
        self, trunk_id: str, requests: list[PhoneNumberRequest]
    ) -> tuple[list[dict[str, Any]], dict[str, str], bool]:
        known = self.hook.list_numbers(trunk_id) if requests else []
        results: list[dict[str, Any]] = []
        failures: dict[str, str] = {}
        permanent = True
        for req in requests:
            try:
                # the XCom carries each number's id (needed to bind it to an agent)
                outcome = self.hook.ensure_number(trunk_id, req, known_numbers=known, wait_for_id=True)
            except BolnaAuthError:
                raise
            except BolnaError as exc:
                self.log.error(
                    "Number %s could not be added to trunk %s: %s", req.phone_number, trunk_id, exc
                )
                failures[req.phone_number] = exc.message
                permanent = permanent and is_permanent(exc)
                continue
            self.log.info("Number %s on trunk %s: %s", req.phone_number, trunk_id, outcome.action)
            results.append(outcome.to_xcom())
        return results, failures, permanent


class RemovePhoneNumberOperator(BolnaNumberOperator):
    """Remove one phone number from a SIP trunk. Already gone (or trunk gone) is success.

    Give the number (resolved to its id with one list call, matched with or without ``+``)
    or its ``phone_number_id``.

    Returns (XCom) ``{"trunk_id", "phone_number", "phone_number_id", "removed"}``;
    ``removed`` is ``False`` when there was nothing to remove.

    :param trunk_id: the trunk's id (templated).
    :param phone_number: the number to remove (templated).
    :param phone_number_id: the number's id on the trunk, instead of ``phone_number`` (templated).
    :param bolna_conn_id: the Bolna connection (templated).
    """

    def execute(self, context: Context) -> dict[str, Any]:
        trunk_id = trunk_id_of(self.trunk_id)
        if bool(self.phone_number) == bool(self.phone_number_id):
            raise AirflowFailException("give exactly one of phone_number and phone_number_id")
        number_id = str(self.phone_number_id) if self.phone_number_id else None
        phone_number = str(self.phone_number) if self.phone_number else None
        try:
            with bolna_error_policy(self.bolna_conn_id):
                if number_id is None:
                    try:
                        numbers = self.hook.list_numbers(trunk_id)
                    except BolnaNotFoundError:
                        self.log.info("Trunk %s is gone, and number %s with it", trunk_id, phone_number)
                        return _removed(trunk_id, phone_number, None, False)
                    key = number_key(str(phone_number))
                    match = next((n for n in numbers if n.key == key), None)
                    if match is None:
                        self.log.info(
                            "Number %s is not on trunk %s; nothing to remove", phone_number, trunk_id
                        )
                        return _removed(trunk_id, phone_number, None, False)
                    number_id = match.id
                removed = self.hook.remove_number(trunk_id, number_id, missing_ok=True)
        finally:
            self._close_hook()
        self.log.info(
            "Number %s (%s) %s trunk %s",
            phone_number or "",
            number_id,
            "removed from" if removed else "was already gone from",
            trunk_id,
        )
        return _removed(trunk_id, phone_number, number_id, removed)


def _removed(trunk_id: str, phone_number: str | None, number_id: str | None, removed: bool) -> dict[str, Any]:
    return {
        "trunk_id": trunk_id,
        "phone_number": phone_number,
        "phone_number_id": number_id,
        "removed": removed,
    }
