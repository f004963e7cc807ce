"""URLs of Bolna's dashboard: a trunk's page, and the dashboard a Bolna connection names.

Used by the hook (the "Bolna trunk" extra link) and by the provisioning page. Pure functions,
nothing imported at module level beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["dashboard_url_of", "trunk_url"]


def trunk_url(dashboard_url: str, trunk_id: str) -> str:
    """The trunk's page in Bolna's dashboard (the id is one path segment: ``a/b`` → ``a%2Fb``).

    :param dashboard_url: the dashboard root, e.g. ``https://platform.bolna.ai``.
    :param trunk_id: Bolna's trunk id.
    """
    return f"{dashboard_url.rstrip('/')}/sip-trunks/{quote(trunk_id, safe='')}"


def dashboard_url_of(extra: Mapping[str, Any] | None) -> str:
    """The dashboard root a Bolna connection's extras name (``dashboard_url``), else Bolna's.

    Only an ``http(s)://`` URL is taken: the value ends up in an ``href``, and a ``javascript:``
    URL there would run in whoever clicks it.

    :param extra: the connection's ``extra_dejson``.
    """
    from airflow_provider_bolna.hooks.bolna import DEFAULT_DASHBOARD_URL

    extra = extra or {}
    value = extra.get("dashboard_url") or extra.get("extra__bolna__dashboard_url")
    if isinstance(value, str) and urlsplit(value.strip()).scheme in ("http", "https"):
        return value.strip().rstrip("/")
    return DEFAULT_DASHBOARD_URL
