"""The error of a request or trunk spec that breaks the API's rules, found before sending.

A :class:`SpecError` names every rejected field (one :class:`FieldError` each) and never the
rejected values. Import both from :mod:`airflow_provider_bolna.models`. Imports neither
Airflow nor httpx.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_bolna.exceptions import BolnaValidationError

__all__ = ["FieldError", "SpecError"]

_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class FieldError(BaseModel):
    """One rejected field: a dotted path such as ``gateways.0.port`` and why."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class SpecError(BolnaValidationError):
    """A request or spec that breaks the API's rules, found before anything is sent.

    A :class:`~airflow_provider_bolna.exceptions.BolnaValidationError` (so callers that catch
    ``BolnaError`` see it) and a ``ValueError``. Never contains input values.

    :param errors: one :class:`FieldError` per rejected field.
    :param context: optional prefix such as ``"row customer_id=42"``.
    """

    def __init__(self, errors: list[FieldError], context: str | None = None) -> None:
        self.errors = errors
        self.context = context
        detail = "; ".join(str(e) for e in errors)
        super().__init__(f"{context}: {detail}" if context else detail)

    def _render(self) -> str:
        return self.message

    @property
    def fields(self) -> list[str]:
        """The names of the rejected fields, in order."""
        return [e.field for e in self.errors]

    @classmethod
    def from_validation_error(cls, exc: ValidationError, context: str | None = None) -> SpecError:
        """Turn a pydantic error into field-named messages without the rejected values."""
        errors = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            msg = msg.removeprefix("Value error, ")
            # model-level rules put the field name at the front of the message: "field: why"
            head, sep, rest = msg.partition(": ")
            if sep and _FIELD_NAME.match(head):
                loc, msg = (f"{loc}.{head}" if loc else head), rest
            errors.append(FieldError(field=loc, message=msg))
        return cls(errors, context)
