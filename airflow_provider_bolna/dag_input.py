"""Reading an argument as a DAG gives it: after templating, a dict may arrive as its JSON text.

One home for that decoding, used by the operators' ``trunk`` and ``update`` arguments and by
:func:`~airflow_provider_bolna.agent_binding.parse_number_agents`. Imports neither Airflow nor
httpx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_bolna.exceptions import BolnaValidationError

__all__ = ["json_object"]


def json_object(value: Any, field_name: str, *, not_json: str, expected: str) -> dict[str, Any]:
    """``value`` as a dict: a mapping, or a string holding a JSON object (a rendered template).

    :param value: the argument.
    :param field_name: its name, which starts every error message.
    :param not_json: the message (after the name) for a string that is not JSON.
    :param expected: what the argument may be, for the message about anything else.
    :raises BolnaValidationError: a string that is not JSON, or anything but a JSON object.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BolnaValidationError(f"{field_name}: {not_json}") from None
    if not isinstance(value, Mapping):
        raise BolnaValidationError(f"{field_name}: must be {expected}, not {type(value).__name__}")
    return dict(value)
