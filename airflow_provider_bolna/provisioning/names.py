"""Names and identifiers: what a trunk name, a scope, a connection id and a table name may be.

* :class:`NameTemplate` — the trunk name template (literal text and ``{customer_id}``): the
  trunk name is the idempotency key, derived from the customer key alone;
* :func:`check_trunk_name` — why a rendered name cannot be a trunk name;
* :func:`check_scope`, :func:`check_conn_id`, :func:`check_table_name` — the identifiers a
  deployment names (a table name is put in SQL, so only plain identifiers pass).

The bottom layer of the settings: plain text rules, no I/O, nothing of Airflow.
"""

from __future__ import annotations

import re
import string

__all__ = [
    "DEFAULT_NAME_TEMPLATE",
    "DEFAULT_STATE_TABLE",
    "MAX_CUSTOMER_ID_LENGTH",
    "MAX_TRUNK_NAME_LENGTH",
    "SCOPE_NAME",
    "TABLE_NAME",
    "NameTemplate",
    "check_conn_id",
    "check_scope",
    "check_table_name",
    "check_trunk_name",
]

DEFAULT_STATE_TABLE = "bolna_provisioning_state"
DEFAULT_NAME_TEMPLATE = "cust-{customer_id}"
#: the longest customer id a sign-up trigger may send
MAX_CUSTOMER_ID_LENGTH = 128

#: Bolna documents no rule for legacy trunk names; the newer /trunk family caps them at 100.
MAX_TRUNK_NAME_LENGTH = 100
#: Characters a trunk name may hold: what Bolna's own examples use, nothing a URL, a shell or
#: a dashboard would treat specially.
_NAME_CHARS = re.compile(r"^[A-Za-z0-9 ._:@+\-]*$")
SCOPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


class NameTemplate:
    """A trunk name template: literal text and ``{customer_id}``, nothing else.

    No format specs (``{customer_id:>9}``), conversions (``!r``), attribute or index access,
    and no other placeholder: the name is the idempotency key, derived from the customer key
    alone, and a template must not be able to build huge or surprising names.

    :param template: e.g. ``"cust-{customer_id}"``.
    :raises ValueError: anything else (the message says what).
    """

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):  # ValueError: pydantic reports it against the field
            raise ValueError("must be text such as 'cust-{customer_id}'")  # noqa: TRY004
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc})") from None
        literals: list[str] = []
        fields = 0
        for literal, name, spec, conversion in parts:
            literals.append(literal)
            if name is None:
                continue
            if name != "customer_id":
                raise ValueError(
                    "may contain only the placeholder {customer_id} (no other name, no attribute "
                    "or index access)"
                )
            if spec or conversion:
                raise ValueError("{customer_id} takes no format spec or conversion")
            fields += 1
        if fields == 0:
            raise ValueError("must contain {customer_id}")
        literal_text = "".join(literals)
        if not _NAME_CHARS.match(literal_text):
            raise ValueError("literal text may hold letters, digits, spaces and . _ : @ + - only")
        if len(literal_text) + fields > MAX_TRUNK_NAME_LENGTH:
            raise ValueError(f"leaves no room for the customer key within {MAX_TRUNK_NAME_LENGTH} characters")
        self.template = template
        self._parts = [(literal, name is not None) for literal, name, _, _ in parts]

    def render(self, key: str) -> str:
        """The trunk name of the customer whose key (as text) is ``key``; not checked."""
        return "".join(literal + (key if has_field else "") for literal, has_field in self._parts)

    def __repr__(self) -> str:
        return f"NameTemplate({self.template!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NameTemplate) and other.template == self.template

    def __hash__(self) -> int:
        return hash(self.template)


def check_scope(value: str) -> str:
    """``value`` if it can be a deployment's scope. :raises ValueError: why not."""
    if not SCOPE_NAME.match(value):
        raise ValueError(
            "must be 1-64 characters: letters, digits and _ . : - (starting with a letter or digit)"
        )
    return value


def check_conn_id(value: str) -> str:
    """``value`` if it can be an Airflow connection id. :raises ValueError: why not."""
    if not _CONN_ID.match(value):
        raise ValueError("must be an Airflow connection id (letters, digits, _ . -)")
    return value


def check_table_name(value: str) -> str:
    """``value`` if it is a plain, optionally schema-qualified table name (it is put in SQL).

    :raises ValueError: why not.
    """
    if not TABLE_NAME.match(value):
        raise ValueError("must be a plain table name, optionally schema-qualified (schema.table)")
    return value


def check_trunk_name(name: str) -> str | None:
    """Why ``name`` cannot be a trunk name, or ``None`` when it can."""
    if not name or name != name.strip():
        return "a trunk name must not be empty or start or end with a space"
    if len(name) > MAX_TRUNK_NAME_LENGTH:
        return f"the trunk name would be {len(name)} characters long (at most {MAX_TRUNK_NAME_LENGTH})"
    if not _NAME_CHARS.match(name):
        return "the trunk name would hold characters other than letters, digits, spaces and . _ : @ + -"
    return None
