"""``BolnaSettings``: what the hook needs to reach the API, read from an Airflow connection.

Transport rule: the API key travels in a header of every request, so the API must be reached
over ``https://``. Plain ``http://`` is accepted only for a loopback host (127.0.0.0/8, ``::1``,
``localhost``: the sandbox) or when the connection's extra ``allow_insecure_http`` is true (the
hook then logs a warning). Anything else is refused before any request, naming the connection
and the field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from airflow_provider_bolna.exceptions import BolnaValidationError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_DASHBOARD_URL", "BolnaSettings", "is_loopback_url"]

DEFAULT_BASE_URL = "https://api.bolna.ai"
DEFAULT_DASHBOARD_URL = "https://platform.bolna.ai"


@dataclass(frozen=True)
class BolnaSettings:
    """Everything the hook needs to call the API, read from an Airflow connection.

    :param api_key: the bearer key (a :class:`~pydantic.SecretStr`; never printed).
    :param base_url: API root, e.g. ``https://api.bolna.ai`` (``https://`` unless loopback or
        ``allow_insecure_http``).
    :param timeout: seconds for one HTTP exchange, all of it (connect, send, wait, read).
    :param max_retries: retries after the first attempt for retryable failures.
    :param max_retry_seconds: bound on retrying and waiting in one public call (a flow such as
        ``ensure_trunk`` included): no retry, back-off or poll starts after it.
    :param requests_per_minute: client-side budget shared by all calls of one hook (0 = off),
        except the agent PATCH.
    :param agent_requests_per_minute: the agent PATCH's own budget (``/v2/agent/{agent_id}``:
        Bolna allows 500 a minute per organisation there; 0 = off).
    :param retry_base_delay: first back-off delay in seconds (doubles each retry, with jitter).
    :param retry_max_delay: cap of one back-off delay, and of an honoured ``Retry-After``.
    :param number_visibility_timeout: how long to wait for a just-added number to show in reads.
    :param late_commit_grace: after a create that got no answer at all (timeout, cut
        connection), how long to let it land before looking it up (``None``: the ``timeout``).
    :param dashboard_url: Bolna dashboard root for extra links.
    :param allow_insecure_http: accept an ``http://`` API host that is not loopback.
    """

    api_key: SecretStr
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    max_retries: int = 5
    max_retry_seconds: float = 120.0
    requests_per_minute: float = 1000.0
    agent_requests_per_minute: float = 500.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    number_visibility_timeout: float = 10.0
    late_commit_grace: float | None = None
    dashboard_url: str = DEFAULT_DASHBOARD_URL
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        _check_transport(self.base_url, self.allow_insecure_http, "base_url")

    @property
    def grace(self) -> float:
        """Seconds a write that got no answer may still take to land (``late_commit_grace``)."""
        return self.timeout if self.late_commit_grace is None else max(0.0, self.late_commit_grace)

    @property
    def insecure(self) -> bool:
        """Whether requests go over plain http to a host that is not loopback."""
        return urlsplit(self.base_url).scheme == "http" and not is_loopback_url(self.base_url)

    @classmethod
    def from_connection(
        cls, conn: Any, extra: dict[str, Any] | None = None, **overrides: Any
    ) -> BolnaSettings:
        """Build settings from a ``bolna`` (or ``http``) Airflow connection.

        ``host`` is the API base URL (a bare host gets the connection's ``schema`` or
        ``https``); the key is the ``password`` or the ``api_key`` extra. Extras:
        ``timeout``, ``max_retries``, ``max_retry_seconds``, ``requests_per_minute``,
        ``agent_requests_per_minute``, ``retry_base_delay``, ``retry_max_delay``, ``number_visibility_timeout``,
        ``late_commit_grace``,
        ``dashboard_url``, ``allow_insecure_http``. Explicit ``overrides`` (not ``None``) win.

        :raises BolnaValidationError: naming the connection and the field.
        """
        extra = dict(extra if extra is not None else (conn.extra_dejson or {}))

        def opt(name: str) -> Any:
            value = extra.get(name)
            if value in (None, ""):
                value = extra.get(f"extra__bolna__{name}")
            return None if value in (None, "") else value

        api_key = conn.password or opt("api_key")
        if not api_key:
            raise BolnaValidationError(
                f"connection {conn.conn_id!r} has no API key: set its password (or the 'api_key' extra)"
            )
        values: dict[str, Any] = {"api_key": SecretStr(str(api_key)), "base_url": _base_url(conn)}
        for name, kind in _NUMERIC_OPTIONS.items():
            raw = opt(name)
            if raw is not None:
                try:
                    values[name] = kind(raw)
                except (TypeError, ValueError):
                    raise BolnaValidationError(
                        f"connection {conn.conn_id!r}: extra {name!r} must be a number"
                    ) from None
        if opt("dashboard_url"):
            values["dashboard_url"] = str(opt("dashboard_url")).rstrip("/")
        values["allow_insecure_http"] = _flag(opt("allow_insecure_http"), conn.conn_id, "allow_insecure_http")
        values.update({k: v for k, v in overrides.items() if v is not None})
        _check_transport(
            values["base_url"], values["allow_insecure_http"], f"connection {conn.conn_id!r}: host"
        )
        return cls(**values)


_NUMERIC_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "timeout": float,
    "max_retries": int,
    "max_retry_seconds": float,
    "requests_per_minute": float,
    "agent_requests_per_minute": float,
    "retry_base_delay": float,
    "retry_max_delay": float,
    "number_visibility_timeout": float,
    "late_commit_grace": float,
}


def _flag(value: Any, conn_id: str, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise BolnaValidationError(f"connection {conn_id!r}: extra {name!r} must be true or false")


def _base_url(conn: Any) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    url = urlsplit(host.rstrip("/"))
    try:
        has_port = url.port is not None
    except ValueError:
        raise BolnaValidationError(f"connection {conn.conn_id!r}: the host has an invalid port") from None
    if conn.port and not has_port:  # as HttpHook: the port field applies to a full URL too
        url = url._replace(netloc=f"{url.netloc}:{conn.port}")
    return urlunsplit(url)


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_transport(url: str, allow_insecure_http: bool, where: str) -> None:
    """Refuse a base URL that would send the API key in clear text (see the module docstring)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https":
        return
    if scheme == "http":
        if is_loopback_url(url) or allow_insecure_http:
            return
        raise BolnaValidationError(
            f"{where}: the Bolna API must be reached over https:// (plain http:// would send the "
            "API key in clear text); http:// is accepted only for a loopback host or with the "
            "connection extra allow_insecure_http=true"
        )
    raise BolnaValidationError(f"{where}: the Bolna API URL must start with https://")
