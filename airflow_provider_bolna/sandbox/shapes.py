"""Response shapes, built by SQLite's JSON functions.

C speed: listing 100k trunks is one query and no Python object per trunk. Each shape is
defined exactly once, here; a number's ``agent_id`` is in the shape only when the
``number_list_shows_agent_id`` switch asks for it (the published schema does not have it).
"""

from __future__ import annotations

from collections.abc import Sequence

USER_ID = "sandbox-user"

#: trunk columns that map 1:1 to API fields, in response order around the nested lists
HEAD_FIELDS = ("name", "provider", "description", "auth_type", "auth_username")
TAIL_FIELDS = (
    "allow",
    "disallow",
    "transport",
    "direct_media",
    "rtp_symmetric",
    "force_rport",
    "media_encryption",
    "media_encryption_optimistic",
    "qualify_frequency",
    "inbound_enabled",
    "outbound_leading_plus_enabled",
    "is_active",
)
FIELDS = HEAD_FIELDS + TAIL_FIELDS
#: 0/1 columns served as JSON booleans
_BOOLS = frozenset(
    {
        "direct_media",
        "rtp_symmetric",
        "force_rport",
        "media_encryption_optimistic",
        "inbound_enabled",
        "outbound_leading_plus_enabled",
        "is_active",
        "deleted",
    }
)
TRUNK_COLUMNS = f"id, user_id, {', '.join(FIELDS)}, auth_password_hash, created_at, updated_at"

Pair = tuple[str, str]  # (JSON key, SQL expression)


def _columns(alias: str, names: Sequence[str]) -> list[Pair]:
    """``(name, sql)`` pairs for columns of ``alias``; 0/1 columns become JSON booleans."""
    return [
        (
            name,
            f"json(CASE WHEN {alias}.{name} THEN 'true' ELSE 'false' END)"
            if name in _BOOLS
            else f"{alias}.{name}",
        )
        for name in names
    ]


def _json_object(pairs: Sequence[Pair]) -> str:
    """``json_object('key', sql, ...)``."""
    args = ", ".join(f"'{key}', {sql}" for key, sql in pairs)
    return f"json_object({args})"


def _json_array(item: str, alias: str, source: str) -> str:
    """``json_group_array`` of ``item`` over the ordered sub-select ``source``.

    Wrapped in ``json()`` so the JSON subtype survives the scalar subquery on every SQLite.
    """
    return f"json((SELECT json_group_array({item}) FROM ({source}) AS {alias}))"


VISIBLE = "deleted = 0 AND visible_at <= :cutoff"
"""Non-deleted numbers added at least ``number_visibility_delay_s`` before ``:cutoff``."""
SHOW_ALL = 1e300
"""A visibility cutoff beyond every ``visible_at`` (a create's own 201 body shows its numbers)."""


def _number_json(show_agent_id: bool) -> str:
    return _json_object(
        [
            *_columns("n", ("id", "phone_number", "name", "user_id")),
            ("byot_trunk_id", "n.trunk_id"),
            ("telephony_provider", "'sip-trunk'"),
            *([("agent_id", "n.agent_id")] if show_agent_id else []),
            *_columns("n", ("deleted", "created_at", "updated_at")),
        ]
    )


_GATEWAY_JSON = _json_object(_columns("g", ("id", "gateway_address", "port", "priority", "created_at")))


def _trunk_json(show_agent_id: bool) -> str:
    return _json_object(
        [
            *_columns("t", ("id", "user_id", *HEAD_FIELDS)),
            (
                "gateways",
                _json_array(
                    _GATEWAY_JSON, "g", "SELECT * FROM gateways WHERE trunk_id = t.id ORDER BY position"
                ),
            ),
            (
                "ip_identifiers",
                _json_array(
                    "json_object('ip_address', i.ip_address)",
                    "i",
                    "SELECT * FROM ip_identifiers WHERE trunk_id = t.id ORDER BY position",
                ),
            ),
            (
                "phone_numbers",
                _json_array(
                    _number_json(show_agent_id),
                    "n",
                    f"SELECT * FROM phone_numbers WHERE trunk_id = t.id AND {VISIBLE} ORDER BY id",
                ),
            ),
            *_columns("t", (*TAIL_FIELDS, "created_at", "updated_at")),
        ]
    )


#: ``{show_agent_id: SQL}`` of a SIP-trunk number (alias ``n``) and of a trunk (alias ``t``)
NUMBER_JSON = {flag: _number_json(flag) for flag in (False, True)}
TRUNK_JSON = {flag: _trunk_json(flag) for flag in (False, True)}
#: an item of ``GET /phone-numbers/all`` (the documented PhoneNumber) for a SIP-trunk number
ACCOUNT_NUMBER_JSON = _json_object(
    [
        *_columns("n", ("id", "phone_number", "agent_id")),
        ("telephony_provider", "'sip-trunk'"),
        ("rented", "json('false')"),
        *_columns("n", ("created_at", "updated_at")),
    ]
)
