"""``BolnaHook``: the only module that speaks HTTP to Bolna's ``/sip-trunks`` API.

It owns the connection (base URL, API key, timeouts, retry bounds, rate budget), the sync and
async httpx clients (one keep-alive pool each, reused across calls), retries with back-off,
the mapping of error responses to :mod:`airflow_provider_bolna.exceptions`, and the
idempotent ``ensure_*`` operations that resolve ambiguous failures by looking before writing.

Design: every endpoint is described once as a :class:`_Call` (request + parser). The sync
and async twins differ only in the driver that executes it. Operations that need several
calls (``ensure_trunk``, ``ensure_number``) are written once as generator *flows* that yield
calls and receive results; :meth:`BolnaHook._drive` and :meth:`BolnaHook._adrive` run them.
"""

from __future__ import annotations

import asyncio
import math
import platform
import random
import re
import time
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr, ValidationError
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_bolna import __version__
from airflow_provider_bolna.exceptions import (
    BolnaConflictError,
    BolnaError,
    BolnaNotFoundError,
    BolnaRateLimitError,
    BolnaResponseError,
    BolnaTransportError,
    BolnaValidationError,
    error_for_status,
)
from airflow_provider_bolna.models import (
    ErrorBody,
    MessageResponse,
    PhoneNumber,
    PhoneNumberRequest,
    SIPTrunk,
    SIPTrunkUpdateRequest,
    SpecError,
    TrunkSpec,
    number_key,
    parse_trunk_spec,
)
from airflow_provider_bolna.ratelimit import RateLimiter

__all__ = ["BolnaHook", "BolnaSettings", "TrunkResult", "NumberResult", "TrunkStatus", "IfExists", "evaluate_trunk"]

T = TypeVar("T")
IfExists = Literal["adopt", "update", "fail"]
TrunkAction = Literal["created", "adopted", "updated", "unchanged"]
NumberAction = Literal["created", "unchanged"]

DEFAULT_BASE_URL = "https://api.bolna.ai"
DEFAULT_DASHBOARD_URL = "https://platform.bolna.ai"
TRUNKS = "/sip-trunks/trunks"
#: Errors from which nothing reached the server: safe to resend any request.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True)
class BolnaSettings:
    """Everything the hook needs to call the API, read from an Airflow connection.

    :param api_key: the bearer key (a :class:`~pydantic.SecretStr`; never printed).
    :param base_url: API root, e.g. ``https://api.bolna.ai``.
    :param timeout: seconds for one request (read/write); connect uses ``min(timeout, 10)``.
    :param max_retries: retries after the first attempt for retryable failures.
    :param max_retry_seconds: bound on the total time spent retrying one call.
    :param requests_per_minute: client-side budget shared by all calls of one hook (0 = off).
    :param retry_base_delay: first back-off delay in seconds (doubles each retry, with jitter).
    :param retry_max_delay: cap of one back-off delay, and of an honoured ``Retry-After``.
    :param number_visibility_timeout: how long to wait for a just-added number to show in reads.
    :param dashboard_url: Bolna dashboard root for extra links.
    """

    api_key: SecretStr
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    max_retries: int = 5
    max_retry_seconds: float = 120.0
    requests_per_minute: float = 1000.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    number_visibility_timeout: float = 10.0
    dashboard_url: str = DEFAULT_DASHBOARD_URL

    @classmethod
    def from_connection(cls, conn: Any, extra: dict[str, Any] | None = None, **overrides: Any) -> BolnaSettings:
        """Build settings from a ``bolna`` (or ``http``) Airflow connection.

        ``host`` is the API base URL (a bare host gets the connection's ``schema`` or
        ``https``); the key is the ``password`` or the ``api_key`` extra. Extras:
        ``timeout``, ``max_retries``, ``max_retry_seconds``, ``requests_per_minute``,
        ``retry_base_delay``, ``retry_max_delay``, ``number_visibility_timeout``,
        ``dashboard_url``. Explicit ``overrides`` (not ``None``) win.
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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_NUMERIC_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "timeout": float,
    "max_retries": int,
    "max_retry_seconds": float,
    "requests_per_minute": float,
    "retry_base_delay": float,
    "retry_max_delay": float,
    "number_visibility_timeout": float,
}


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


@dataclass
class TrunkResult:
    """What :meth:`BolnaHook.ensure_trunk` did.

    :param action: ``created``, ``adopted`` (existed, left as is), ``updated`` (drift patched)
        or ``unchanged`` (existed and matched).
    :param trunk: the trunk as last seen.
    :param numbers_added: numbers this call registered (inline at creation or added after).
    :param patched_fields: fields sent in the PATCH, when ``action == "updated"``.
    """

    action: TrunkAction
    trunk: SIPTrunk
    numbers_added: list[str] = field(default_factory=list)
    patched_fields: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        """A small, secret-free summary for XCom."""
        return {
            "trunk_id": self.trunk.id,
            "name": self.trunk.name,
            "action": self.action,
            "numbers_added": list(self.numbers_added),
            "patched_fields": list(self.patched_fields),
        }


@dataclass
class NumberResult:
    """What :meth:`BolnaHook.ensure_number` did: ``created`` or ``unchanged`` (already there)."""

    action: NumberAction
    phone_number: str
    number: PhoneNumber | None = None

    def to_xcom(self) -> dict[str, Any]:
        """A small, secret-free summary for XCom."""
        return {
            "phone_number": self.phone_number,
            "action": self.action,
            "phone_number_id": self.number.id if self.number else None,
        }


@dataclass
class TrunkStatus:
    """Outcome of one readiness check.

    :param done: whether every condition holds.
    :param message: human-readable state (what is missing, or why it is ready).
    :param trunk_id: the trunk's id, when it was found.
    :param name: the trunk's name, when it was found.
    :param is_active: the trunk's ``is_active``, when it was found.
    :param numbers: numbers visible on the trunk (as stored).
    :param missing: expected numbers not (yet) visible.
    """

    done: bool
    message: str
    trunk_id: str | None = None
    name: str | None = None
    is_active: bool | None = None
    numbers: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        """Small, secret-free summary (the sensor's return value)."""
        return {
            "trunk_id": self.trunk_id,
            "name": self.name,
            "is_active": self.is_active,
            "numbers": list(self.numbers),
        }


def trunk_ref(trunk_id: str | None, trunk_name: str | None) -> str:
    return f"trunk {trunk_id}" if trunk_id else f"trunk named {trunk_name!r}"


def evaluate_trunk(
    trunk: SIPTrunk | None,
    numbers: Iterable[PhoneNumber] | None,
    *,
    expect_active: bool,
    expect_numbers: Sequence[str],
    ref: str = "trunk",
) -> TrunkStatus:
    """Decide readiness from what the API returned (pure; no I/O).

    :param trunk: the trunk, or ``None`` when it does not exist (yet).
    :param numbers: the trunk's numbers (``None``: use those embedded in ``trunk``).
    :param expect_active: require ``is_active``.
    :param expect_numbers: numbers that must be visible (matched with or without ``+``).
    :param ref: how to name the trunk in messages.
    """
    if trunk is None:
        return TrunkStatus(False, f"{ref} does not exist (yet)")
    seen = [n for n in (numbers if numbers is not None else trunk.phone_numbers) if not n.deleted]
    keys = {n.key for n in seen}
    missing = [n for n in expect_numbers if number_key(str(n)) not in keys]
    status = TrunkStatus(
        False, "", trunk_id=trunk.id, name=trunk.name, is_active=trunk.is_active,
        numbers=[n.phone_number for n in seen], missing=missing,
    )
    problems = []
    if expect_active and not trunk.is_active:
        problems.append("is not active")
    if missing:
        problems.append(f"does not show number(s) {', '.join(missing)} yet")
    if problems:
        status.message = f"trunk {trunk.id} ({trunk.name}) {' and '.join(problems)}"
    else:
        status.done = True
        status.message = f"trunk {trunk.id} ({trunk.name}) is ready" + (
            f" with {len(expect_numbers)} expected number(s)" if expect_numbers else ""
        )
    return status


#: words of a refusal that may be about the trunk name (Bolna documents names as unique per
#: account, not the status code of the refusal: 400, 409 and 422 are all plausible)
_NAME_TAKEN = re.compile(r"\bname\b|exist|duplicate|unique|taken", re.IGNORECASE)


def _may_be_name_taken(exc: BolnaError) -> bool:
    """Whether a refused create may mean the name is taken: any 409, or a 400/422 saying so."""
    return isinstance(exc, BolnaConflictError) or bool(_NAME_TAKEN.search(exc.message or ""))


def _needs_number_list(trunk: SIPTrunk | None, expect_numbers: Sequence[str]) -> bool:
    if trunk is None or not expect_numbers:
        return False
    keys = {n.key for n in trunk.active_numbers}
    return any(number_key(str(n)) not in keys for n in expect_numbers)


def _transient(exc: BolnaError) -> bool:
    return exc.retryable or isinstance(exc, BolnaNotFoundError)


def _not_ready_after(exc: BolnaError, ref: str) -> TrunkStatus:
    if isinstance(exc, BolnaNotFoundError):
        return TrunkStatus(False, f"{ref} does not exist (yet)")
    return TrunkStatus(False, f"could not check {ref} ({type(exc).__name__}: {exc}); will check again")


@dataclass(frozen=True)
class _Call:
    """One HTTP exchange: the request and how to read its success body."""

    method: str
    path: str
    parse: Callable[[Any], Any]
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    secrets: tuple[str, ...] = ()

    @property
    def idempotent(self) -> bool:
        """Whether resending after an ambiguous failure can do no harm (POST cannot)."""
        return self.method != "POST"


@dataclass(frozen=True)
class _Sleep:
    """A pause requested by a flow (the driver sleeps the sync or async way)."""

    seconds: float


Flow = Generator["_Call | _Sleep", Any, T]


class BolnaHook(BaseHook):
    """Talk to Bolna's SIP-trunk API.

    :param bolna_conn_id: Airflow connection of type ``bolna`` (or ``http``): host = API base
        URL, password = API key.
    :param settings: use these settings instead of reading a connection (tests, scripts).
    :param timeout: override the connection's request timeout (seconds).
    :param max_retries: override the connection's retry count.
    :param requests_per_minute: override the connection's rate budget.
    """

    conn_name_attr = "bolna_conn_id"
    default_conn_name = "bolna_default"
    conn_type = "bolna"
    hook_name = "Bolna"

    def __init__(
        self,
        bolna_conn_id: str = default_conn_name,
        *,
        settings: BolnaSettings | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        requests_per_minute: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bolna_conn_id = bolna_conn_id
        self._overrides = {"timeout": timeout, "max_retries": max_retries, "requests_per_minute": requests_per_minute}
        self._settings = settings
        self._limiter: RateLimiter | None = None
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bolna_conn_id={self.bolna_conn_id!r})"

    # ------------------------------------------------------------------ settings & clients

    @property
    def settings(self) -> BolnaSettings:
        """The connection's settings, loaded (and the key masked) on first use."""
        if self._settings is None:
            conn = self.get_connection(self.bolna_conn_id)
            self._settings = BolnaSettings.from_connection(conn, **self._overrides)
            _mask(self._settings.api_key.get_secret_value())
        return self._settings

    async def aget_settings(self) -> BolnaSettings:
        """Async twin of :attr:`settings`, safe on the triggerer's event loop."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            conn = await get_async_connection(self.bolna_conn_id, hook=self)
            self._settings = BolnaSettings.from_connection(conn, **self._overrides)
            await _amask(self._settings.api_key.get_secret_value())
        return self._settings

    @property
    def limiter(self) -> RateLimiter:
        """The token bucket shared by every call of this hook, sync and async."""
        if self._limiter is None:
            self._limiter = RateLimiter(self.settings.requests_per_minute)
        return self._limiter

    def _client_kwargs(self) -> dict[str, Any]:
        s = self.settings
        return {
            "base_url": s.base_url,
            "headers": {
                "Authorization": f"Bearer {s.api_key.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            "timeout": httpx.Timeout(s.timeout, connect=min(s.timeout, 10.0)),
            "limits": httpx.Limits(max_connections=100, max_keepalive_connections=50),
        }

    @property
    def client(self) -> httpx.Client:
        """The sync client (one keep-alive pool for the hook's lifetime)."""
        if self._client is None:
            self._client = httpx.Client(**self._client_kwargs())
        return self._client

    async def aclient(self) -> httpx.AsyncClient:
        """The async client of the running event loop (one pool per loop)."""
        await self.aget_settings()
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            self._aclient = httpx.AsyncClient(**self._client_kwargs())
            self._aclient_loop = loop
        return self._aclient

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client's connections."""
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

    def trunk_url(self, trunk_id: str) -> str:
        """The trunk's page in Bolna's dashboard."""
        from airflow_provider_bolna.dashboard import trunk_url

        return trunk_url(self.settings.dashboard_url, trunk_id)

    # ------------------------------------------------------------------ endpoint descriptions

    @staticmethod
    def _call_create_trunk(spec: TrunkSpec) -> _Call:
        secrets = (spec.auth_password.get_secret_value(),) if spec.auth_password else ()
        return _Call("POST", TRUNKS, _parse_trunk, json=spec.to_request_body(), secrets=secrets)

    @staticmethod
    def _call_list_trunks(is_active: bool | None = None, names: Collection[str] | None = None) -> _Call:
        params = None if is_active is None else {"is_active": "true" if is_active else "false"}
        wanted = None if names is None else set(names)
        return _Call("GET", TRUNKS, lambda data: _parse_trunk_list(data, wanted), params=params)

    @staticmethod
    def _call_get_trunk(trunk_id: str) -> _Call:
        return _Call("GET", _trunk_path(trunk_id), _parse_trunk)

    @staticmethod
    def _call_update_trunk(trunk_id: str, update: SIPTrunkUpdateRequest) -> _Call:
        secrets = (update.auth_password.get_secret_value(),) if update.auth_password else ()
        return _Call("PATCH", _trunk_path(trunk_id), _parse_trunk, json=update.to_request_body(), secrets=secrets)

    @staticmethod
    def _call_delete_trunk(trunk_id: str) -> _Call:
        return _Call("DELETE", _trunk_path(trunk_id), _parse_message)

    @staticmethod
    def _call_add_number(trunk_id: str, number: PhoneNumberRequest) -> _Call:
        body = number.model_dump(mode="json", exclude_none=True)
        return _Call("POST", f"{_trunk_path(trunk_id)}/numbers", _parse_number, json=body)

    @staticmethod
    def _call_list_numbers(trunk_id: str) -> _Call:
        return _Call("GET", f"{_trunk_path(trunk_id)}/numbers", _parse_number_list)

    @staticmethod
    def _call_remove_number(trunk_id: str, phone_number_id: str) -> _Call:
        number = _segment(phone_number_id, "phone_number_id")
        return _Call("DELETE", f"{_trunk_path(trunk_id)}/numbers/{number}", _parse_message)

    # ------------------------------------------------------------------ endpoints (sync)

    def create_trunk(self, spec: TrunkSpec | dict[str, Any]) -> SIPTrunk:
        """``POST /sip-trunks/trunks``. Prefer :meth:`ensure_trunk`, which is safe to retry.

        :param spec: the trunk (validated before sending).
        :raises BolnaValidationError: the spec breaks a rule (nothing is sent).
        """
        return self._request(self._call_create_trunk(_spec(spec)))

    def list_trunks(self, is_active: bool | None = None, names: Collection[str] | None = None) -> list[SIPTrunk]:
        """``GET /sip-trunks/trunks``.

        :param is_active: only active (``True``) or inactive (``False``) trunks; ``None`` = all.
        :param names: keep only trunks with these names (filtered before parsing, which keeps
            a large account's list cheap).
        """
        return self._request(self._call_list_trunks(is_active, names))

    def get_trunk(self, trunk_id: str) -> SIPTrunk:
        """``GET /sip-trunks/trunks/{trunk_id}``. :raises BolnaNotFoundError: no such trunk."""
        return self._request(self._call_get_trunk(trunk_id))

    def update_trunk(self, trunk_id: str, update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunk:
        """``PATCH /sip-trunks/trunks/{trunk_id}`` with only the fields set in ``update``."""
        return self._request(self._call_update_trunk(trunk_id, _update(update)))

    def delete_trunk(self, trunk_id: str, *, missing_ok: bool = True, deactivate_first: bool = False) -> bool:
        """``DELETE /sip-trunks/trunks/{trunk_id}`` (numbers are soft-deleted with it).

        :param missing_ok: a trunk that is already gone is success (returns ``False``).
        :param deactivate_first: ``PATCH is_active=false`` before deleting, as Bolna advises.
        :return: ``True`` if this call deleted it, ``False`` if it was already gone.
        """
        return self._drive(self._delete_trunk_flow(trunk_id, missing_ok, deactivate_first))

    def add_number(self, trunk_id: str, number: PhoneNumberRequest | dict[str, Any] | str) -> PhoneNumber:
        """``POST .../numbers``. Prefer :meth:`ensure_number`, which is safe to retry."""
        return self._request(self._call_add_number(trunk_id, _number(number)))

    def list_numbers(self, trunk_id: str) -> list[PhoneNumber]:
        """``GET .../numbers``: the trunk's numbers (just-added ones may take seconds to show)."""
        return self._request(self._call_list_numbers(trunk_id))

    def remove_number(self, trunk_id: str, phone_number_id: str, *, missing_ok: bool = True) -> bool:
        """``DELETE .../numbers/{phone_number_id}``.

        :return: ``True`` if removed now, ``False`` if it was already gone (``missing_ok``).
        """
        return self._drive(self._remove_number_flow(trunk_id, phone_number_id, missing_ok))

    def find_trunk(self, name: str) -> SIPTrunk | None:
        """The trunk named ``name``, or ``None`` (one list call)."""
        return self._drive(self._find_trunk_flow(name))

    def ensure_trunk(
        self,
        spec: TrunkSpec | dict[str, Any],
        *,
        if_exists: IfExists = "adopt",
        existing: SIPTrunk | None | object = ...,
    ) -> TrunkResult:
        """Make the trunk named ``spec.name`` exist, exactly once, whatever fails on the way.

        Looks the name up, creates the trunk (numbers inline) if absent; after an ambiguous
        failure (timeout, dropped connection, 5xx, 409) looks again before any new write.
        Numbers of ``spec`` missing from an existing trunk are added (extras are left alone).

        :param spec: the desired trunk.
        :param if_exists: ``adopt`` (keep its settings), ``update`` (PATCH drifted fields only)
            or ``fail`` (raise :class:`BolnaConflictError`).
        :param existing: the trunk already known to carry that name (or ``None`` if known to be
            absent), to skip the lookup; leave out to look it up.
        """
        return self._drive(self._ensure_trunk_flow(_spec(spec), if_exists, existing))

    def ensure_number(
        self,
        trunk_id: str,
        number: PhoneNumberRequest | dict[str, Any] | str,
        *,
        known_numbers: Iterable[PhoneNumber] | None = None,
    ) -> NumberResult:
        """Make ``number`` be on trunk ``trunk_id``, exactly once.

        :param known_numbers: the trunk's numbers if already fetched (skips one list call).
        :raises BolnaConflictError: the number is on another active trunk.
        """
        return self._drive(self._ensure_number_flow(trunk_id, _number(number), known_numbers))

    def check_trunk_ready(
        self,
        *,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
        expect_active: bool = True,
        expect_numbers: Sequence[str] = (),
    ) -> TrunkStatus:
        """Is the trunk ready: found (by id or name), active if asked, expected numbers visible?

        GET requests only. Transient errors (already retried) and "not found yet" mean not
        ready; other errors (bad key...) are raised.
        """
        return self._drive(self._trunk_status_flow(trunk_id, trunk_name, expect_active, expect_numbers))

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with one cheap read (active trunks); never raises."""
        try:
            trunks = self._request(self._call_list_trunks(is_active=True), retry=False)
        except Exception as exc:  # noqa: BLE001 - the UI wants a message, not a traceback
            return False, _redact(str(exc), self._secrets_or_empty())
        return True, f"Connected to Bolna at {self.settings.base_url} ({len(trunks)} active SIP trunk(s))."

    # ------------------------------------------------------------------ endpoints (async twins)

    async def acreate_trunk(self, spec: TrunkSpec | dict[str, Any]) -> SIPTrunk:
        """Async twin of :meth:`create_trunk`."""
        return await self._arequest(self._call_create_trunk(_spec(spec)))

    async def alist_trunks(self, is_active: bool | None = None, names: Collection[str] | None = None) -> list[SIPTrunk]:
        """Async twin of :meth:`list_trunks`."""
        return await self._arequest(self._call_list_trunks(is_active, names))

    async def aget_trunk(self, trunk_id: str) -> SIPTrunk:
        """Async twin of :meth:`get_trunk`."""
        return await self._arequest(self._call_get_trunk(trunk_id))

    async def aupdate_trunk(self, trunk_id: str, update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunk:
        """Async twin of :meth:`update_trunk`."""
        return await self._arequest(self._call_update_trunk(trunk_id, _update(update)))

    async def adelete_trunk(self, trunk_id: str, *, missing_ok: bool = True, deactivate_first: bool = False) -> bool:
        """Async twin of :meth:`delete_trunk`."""
        return await self._adrive(self._delete_trunk_flow(trunk_id, missing_ok, deactivate_first))

    async def aadd_number(self, trunk_id: str, number: PhoneNumberRequest | dict[str, Any] | str) -> PhoneNumber:
        """Async twin of :meth:`add_number`."""
        return await self._arequest(self._call_add_number(trunk_id, _number(number)))

    async def alist_numbers(self, trunk_id: str) -> list[PhoneNumber]:
        """Async twin of :meth:`list_numbers`."""
        return await self._arequest(self._call_list_numbers(trunk_id))

    async def aremove_number(self, trunk_id: str, phone_number_id: str, *, missing_ok: bool = True) -> bool:
        """Async twin of :meth:`remove_number`."""
        return await self._adrive(self._remove_number_flow(trunk_id, phone_number_id, missing_ok))

    async def afind_trunk(self, name: str) -> SIPTrunk | None:
        """Async twin of :meth:`find_trunk`."""
        return await self._adrive(self._find_trunk_flow(name))

    async def aensure_trunk(
        self,
        spec: TrunkSpec | dict[str, Any],
        *,
        if_exists: IfExists = "adopt",
        existing: SIPTrunk | None | object = ...,
    ) -> TrunkResult:
        """Async twin of :meth:`ensure_trunk`."""
        return await self._adrive(self._ensure_trunk_flow(_spec(spec), if_exists, existing))

    async def acheck_trunk_ready(
        self,
        *,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
        expect_active: bool = True,
        expect_numbers: Sequence[str] = (),
    ) -> TrunkStatus:
        """Async twin of :meth:`check_trunk_ready` (used by the trigger)."""
        return await self._adrive(self._trunk_status_flow(trunk_id, trunk_name, expect_active, expect_numbers))

    async def aensure_number(
        self,
        trunk_id: str,
        number: PhoneNumberRequest | dict[str, Any] | str,
        *,
        known_numbers: Iterable[PhoneNumber] | None = None,
    ) -> NumberResult:
        """Async twin of :meth:`ensure_number`."""
        return await self._adrive(self._ensure_number_flow(trunk_id, _number(number), known_numbers))

    # ------------------------------------------------------------------ flows (written once)

    def _find_trunk_flow(self, name: str) -> Flow[SIPTrunk | None]:
        trunks: list[SIPTrunk] = yield self._call_list_trunks(names=[name])
        if len(trunks) > 1:
            self.log.warning("%d trunks are named %r; using the oldest (%s)", len(trunks), name, trunks[0].id)
        return trunks[0] if trunks else None

    def _trunk_status_flow(
        self, trunk_id: str | None, trunk_name: str | None, expect_active: bool, expect_numbers: Sequence[str]
    ) -> Flow[TrunkStatus]:
        if not trunk_id and not trunk_name:
            raise BolnaValidationError("give trunk_id or trunk_name")
        ref = trunk_ref(trunk_id, trunk_name)
        try:
            if trunk_id:
                trunk = yield self._call_get_trunk(trunk_id)
            else:
                trunk = yield from self._find_trunk_flow(str(trunk_name))
            numbers = (yield self._call_list_numbers(trunk.id)) if _needs_number_list(trunk, expect_numbers) else None
        except BolnaError as exc:
            if not _transient(exc):
                raise
            return _not_ready_after(exc, ref)
        return evaluate_trunk(trunk, numbers, expect_active=expect_active, expect_numbers=expect_numbers, ref=ref)

    def _delete_trunk_flow(self, trunk_id: str, missing_ok: bool, deactivate_first: bool) -> Flow[bool]:
        try:
            if deactivate_first:
                yield self._call_update_trunk(trunk_id, SIPTrunkUpdateRequest(is_active=False))
            yield self._call_delete_trunk(trunk_id)
        except BolnaNotFoundError:
            if not missing_ok:
                raise
            self.log.info("Trunk %s is already gone", trunk_id)
            return False
        return True

    def _remove_number_flow(self, trunk_id: str, phone_number_id: str, missing_ok: bool) -> Flow[bool]:
        try:
            yield self._call_remove_number(trunk_id, phone_number_id)
        except BolnaNotFoundError:
            if not missing_ok:
                raise
            return False
        return True

    def _ensure_trunk_flow(self, spec: TrunkSpec, if_exists: IfExists, existing: Any) -> Flow[TrunkResult]:
        if if_exists not in ("adopt", "update", "fail"):
            raise BolnaValidationError(f"if_exists must be 'adopt', 'update' or 'fail', not {if_exists!r}")
        if existing is ...:
            existing = yield from self._find_trunk_flow(spec.name)
        how = "exists"
        if existing is None:
            how, existing = yield from self._create_once_flow(spec)
            if how == "posted":
                return TrunkResult("created", existing, numbers_added=[n.phone_number for n in spec.phone_numbers])
        if how == "exists" and if_exists == "fail":
            raise BolnaConflictError(f"a trunk named {spec.name!r} already exists (id {existing.id})")
        patched: list[str] = []
        if how == "exists" and if_exists == "update":
            patch = spec.drift(existing)
            if patch is not None:
                self.log.info("Trunk %s drifted in %s; patching", spec.name, ", ".join(patch.fields))
                existing = yield self._call_update_trunk(existing.id, patch)
                patched = patch.fields
        added: list[str] = []
        known = list(existing.active_numbers)
        for number in spec.phone_numbers:
            outcome = yield from self._ensure_number_flow(existing.id, number, known)
            if outcome.action == "created":
                added.append(outcome.phone_number)
        if how == "recovered":
            return TrunkResult("created", existing, numbers_added=[n.phone_number for n in spec.phone_numbers])
        action: TrunkAction = "adopted"
        if if_exists == "update":
            action = "updated" if (patched or added) else "unchanged"
        return TrunkResult(action, existing, numbers_added=added, patched_fields=patched)

    def _create_once_flow(self, spec: TrunkSpec) -> Flow[tuple[str, SIPTrunk]]:
        """POST the trunk, never twice: ``("posted" | "recovered" | "exists", trunk)``.

        ``recovered``: the POST failed ambiguously and a look-up found the trunk (our write
        landed; a 409 on the name after such a failure counts too). ``exists``: the API
        refused the create (409, or a 400/422 about the name) and a trunk of that name exists. After an ambiguous failure the name is
        always looked up (even with no retry left), and a POST is resent only when the trunk
        is verifiably absent.
        """
        attempts = self.settings.max_retries + 1
        uncertain = False  # an earlier POST of this call may have landed
        for attempt in range(1, attempts + 1):
            try:
                trunk: SIPTrunk = yield self._call_create_trunk(spec)
                return "posted", trunk
            except (BolnaConflictError, BolnaValidationError) as refused:
                if not _may_be_name_taken(refused):
                    raise
                found = yield from self._find_trunk_flow(spec.name)
                if found is None:
                    raise  # the conflict is not the name (e.g. a number on another trunk)
                self.log.info("Trunk %s already exists (id %s)", spec.name, found.id)
                return ("recovered" if uncertain else "exists"), found
            except BolnaError as exc:
                if not exc.ambiguous:
                    raise
                self.log.warning("Creating trunk %s may or may not have worked (%s); looking before retrying", spec.name, exc)
                found = yield from self._find_trunk_flow(spec.name)
                if found is not None:
                    return "recovered", found
                if attempt == attempts:
                    raise exc from None
                uncertain = True
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_number_flow(
        self, trunk_id: str, number: PhoneNumberRequest, known: Iterable[PhoneNumber] | None
    ) -> Flow[NumberResult]:
        if known is None:
            known = yield self._call_list_numbers(trunk_id)
        match = _find_number(known, number.key)
        if match is not None:
            return NumberResult("unchanged", number.phone_number, match)
        attempts = self.settings.max_retries + 1
        uncertain = False  # an earlier POST of this call may have landed: a conflict is then ours
        for attempt in range(1, attempts + 1):
            try:
                added: PhoneNumber = yield self._call_add_number(trunk_id, number)
                return NumberResult("created", number.phone_number, added)
            except BolnaConflictError as exc:
                action: NumberAction = "created" if uncertain else "unchanged"
                text = exc.message.lower()
                if "this trunk" in text:
                    return NumberResult(action, number.phone_number, None)
                # Bolna's documented "...already exists on another active trunk" needs one look,
                # not a wait; anything else may be our own invisible number: wait for it to show.
                patience = 0.0 if ("another" in text and not uncertain) else None
                found = yield from self._await_number_flow(trunk_id, number.key, patience)
                if found is not None:
                    return NumberResult(action, number.phone_number, found)
                raise BolnaConflictError(
                    f"phone number {number.phone_number} is already on another active trunk",
                    status_code=exc.status_code, method=exc.method, path=exc.path, request_id=exc.request_id,
                ) from None
            except BolnaError as exc:
                if not exc.ambiguous:
                    raise
                self.log.warning("Adding number %s may or may not have worked (%s); looking before retrying", number.phone_number, exc)
                found = yield from self._await_number_flow(trunk_id, number.key)
                if found is not None:
                    return NumberResult("created", number.phone_number, found)
                if attempt == attempts:
                    raise exc from None
                uncertain = True
        raise AssertionError("unreachable")  # pragma: no cover

    def _await_number_flow(self, trunk_id: str, key: str, timeout: float | None = None) -> Flow[PhoneNumber | None]:
        """Poll the trunk's numbers until ``key`` shows or ``timeout`` (default: the
        connection's number visibility timeout) passes; always looks at least once."""
        deadline = time.monotonic() + (self.settings.number_visibility_timeout if timeout is None else timeout)
        delay = 0.25
        while True:
            numbers = yield self._call_list_numbers(trunk_id)
            found = _find_number(numbers, key)
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                return found
            yield _Sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------ drivers

    def _drive(self, flow: Flow[T]) -> T:
        """Run a flow with the sync client."""
        step: Any = None
        error: BaseException | None = None
        while True:
            try:
                instruction = flow.throw(error) if error is not None else flow.send(step)
            except StopIteration as stop:
                return stop.value
            step, error = None, None
            if isinstance(instruction, _Sleep):
                time.sleep(instruction.seconds)
                continue
            try:
                step = self._request(instruction)
            except BolnaError as exc:
                error = exc

    async def _adrive(self, flow: Flow[T]) -> T:
        """Run a flow with the async client."""
        step: Any = None
        error: BaseException | None = None
        while True:
            try:
                instruction = flow.throw(error) if error is not None else flow.send(step)
            except StopIteration as stop:
                return stop.value
            step, error = None, None
            if isinstance(instruction, _Sleep):
                await asyncio.sleep(instruction.seconds)
                continue
            try:
                step = await self._arequest(instruction)
            except BolnaError as exc:
                error = exc

    def _request(self, call: _Call, *, retry: bool = True) -> Any:
        """Send ``call`` with the sync client, retrying what is safe to retry."""
        for attempt in Retrying(**self._retry_policy(call, retry)):
            with attempt:
                wait = self.limiter.reserve()
                if wait:
                    time.sleep(wait)
                try:
                    response = self.client.request(call.method, call.path, json=call.json, params=call.params)
                except httpx.HTTPError as exc:
                    raise self._transport_error(call, exc) from None
                return self._read(call, response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(self, call: _Call, *, retry: bool = True) -> Any:
        """Send ``call`` with the async client, retrying what is safe to retry."""
        client = await self.aclient()
        async for attempt in AsyncRetrying(**self._retry_policy(call, retry)):
            with attempt:
                wait = self.limiter.reserve()
                if wait:
                    await asyncio.sleep(wait)
                try:
                    response = await client.request(call.method, call.path, json=call.json, params=call.params)
                except httpx.HTTPError as exc:
                    raise self._transport_error(call, exc) from None
                return self._read(call, response)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ retry policy & errors

    def _retry_policy(self, call: _Call, retry: bool) -> dict[str, Any]:
        s = self.settings
        return {
            # stop_before_delay: never start a wait that would end past the time budget
            "stop": stop_after_attempt((s.max_retries + 1) if retry else 1) | stop_before_delay(s.max_retry_seconds),
            "wait": self._backoff,
            "retry": retry_if_exception(lambda exc: _should_retry(call, exc)),
            "before_sleep": lambda state: self._log_retry(call, state),
            "reraise": True,
        }

    def _backoff(self, state: RetryCallState) -> float:
        """Exponential back-off with full jitter; a server's ``Retry-After`` wins (capped)."""
        s = self.settings
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, BolnaRateLimitError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), s.retry_max_delay)
        ceiling = min(s.retry_max_delay, s.retry_base_delay * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _log_retry(self, call: _Call, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Bolna %s %s failed on attempt %d (%s); retrying in %.2fs",
            call.method, call.path, state.attempt_number, exc, delay,
        )

    def _secrets_or_empty(self) -> tuple[str, ...]:
        return (self._settings.api_key.get_secret_value(),) if self._settings else ()

    def _transport_error(self, call: _Call, exc: httpx.HTTPError) -> BolnaTransportError:
        sent = not isinstance(exc, _NOT_SENT)
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return BolnaTransportError(
            _redact(what, (*self._secrets_or_empty(), *call.secrets)),
            method=call.method, path=call.path, ambiguous=sent and not call.idempotent,
        )

    def _read(self, call: _Call, response: httpx.Response) -> Any:
        """Map the response to a parsed model or a :class:`BolnaError`; feed the rate limiter."""
        secrets = (*self._secrets_or_empty(), *call.secrets)
        # headers end up in messages too: redacted like the body (a proxy may echo the key)
        request_id = _header_text(response.headers.get("x-request-id") or response.headers.get("request-id"), secrets)
        if response.is_success:
            self.limiter.on_success()
            try:
                data = response.json() if response.content else None
                return call.parse(data)
            except (ValueError, ValidationError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                # RecursionError: a pathologically nested body (json and pydantic both recurse)
                kind = "is not JSON" if isinstance(exc, ValueError) and not isinstance(exc, ValidationError) else "has an unexpected shape"
                raise BolnaResponseError(
                    f"the {response.status_code} response body {kind} ({len(response.content)} bytes, "
                    f"content-type {_header_text(response.headers.get('content-type'), secrets) or 'unknown'!r})",
                    status_code=response.status_code, method=call.method, path=call.path, request_id=request_id,
                ) from None
        message = _error_text(response, secrets)
        cls = error_for_status(response.status_code)
        kwargs: dict[str, Any] = {
            "status_code": response.status_code, "method": call.method, "path": call.path, "request_id": request_id,
            "ambiguous": response.status_code >= 500 and not call.idempotent,
        }
        if cls is BolnaRateLimitError:
            retry_after = _parse_retry_after(response.headers.get("retry-after"))
            # the server's wait is honoured up to retry_max_delay, in the shared bucket too: an
            # absurd Retry-After (a day, "1e999") must not stall every call of the hook
            self.limiter.on_throttled(None if retry_after is None else min(retry_after, self.settings.retry_max_delay))
            raise BolnaRateLimitError(message, retry_after=retry_after, **kwargs)
        raise cls(message, **kwargs)


USER_AGENT = f"airflow-provider-bolna/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"


# ---------------------------------------------------------------------- helpers


def _should_retry(call: _Call, exc: BaseException) -> bool:
    """Retry what failed transiently, but never resend a POST whose effect is unknown."""
    return isinstance(exc, BolnaError) and exc.retryable and not exc.ambiguous


def _segment(value: Any, field: str) -> str:
    """One percent-encoded path segment for an id.

    ``.`` and ``..`` survive percent-encoding and are then removed by URL normalisation:
    ``remove_number(trunk, "..")`` would send ``DELETE /sip-trunks/trunks/{trunk}`` — delete the
    trunk. No API id looks like that, so they are refused before anything is sent.
    """
    if value is None or not str(value).strip():
        raise BolnaValidationError(f"{field}: must be a non-empty string")
    text = str(value)
    if text.strip() in (".", ".."):
        raise BolnaValidationError(f"{field}: must be an id, not a path segment such as '.' or '..'")
    return quote(text, safe="")


def _trunk_path(trunk_id: str) -> str:
    return f"{TRUNKS}/{_segment(trunk_id, 'trunk_id')}"


def _spec(spec: TrunkSpec | dict[str, Any]) -> TrunkSpec:
    try:
        return parse_trunk_spec(spec)
    except SpecError as exc:
        raise BolnaValidationError(f"invalid trunk spec: {exc}") from None


def _update(update: SIPTrunkUpdateRequest | dict[str, Any]) -> SIPTrunkUpdateRequest:
    if isinstance(update, SIPTrunkUpdateRequest):
        return update
    try:
        return SIPTrunkUpdateRequest.model_validate(update)
    except ValidationError as exc:
        raise BolnaValidationError(f"invalid trunk update: {SpecError.from_validation_error(exc)}") from None


def _number(number: PhoneNumberRequest | dict[str, Any] | str) -> PhoneNumberRequest:
    if isinstance(number, PhoneNumberRequest):
        return number
    try:
        return PhoneNumberRequest.model_validate({"phone_number": number} if isinstance(number, (str, int)) else number)
    except ValidationError as exc:
        raise BolnaValidationError(f"invalid phone number: {SpecError.from_validation_error(exc)}") from None


def _find_number(numbers: Iterable[PhoneNumber], key: str) -> PhoneNumber | None:
    return next((n for n in numbers if not n.deleted and n.key == key), None)


def _parse_trunk(data: Any) -> SIPTrunk:
    return SIPTrunk.model_validate(data)


def _parse_trunk_list(data: Any, names: set[str] | None) -> list[SIPTrunk]:
    if not isinstance(data, list):
        raise TypeError("expected a JSON array")
    if names is not None:
        data = [item for item in data if isinstance(item, dict) and item.get("name") in names]
    trunks = [SIPTrunk.model_validate(item) for item in data]
    trunks.sort(key=lambda t: (t.created_at is None, t.created_at or 0, t.id))
    return trunks


def _parse_number(data: Any) -> PhoneNumber:
    return PhoneNumber.model_validate(data)


def _parse_number_list(data: Any) -> list[PhoneNumber]:
    if not isinstance(data, list):
        raise TypeError("expected a JSON array")
    return [n for n in (PhoneNumber.model_validate(item) for item in data) if not n.deleted]


def _parse_message(data: Any) -> str:
    return MessageResponse.model_validate(data or {}).message


def _error_text(response: httpx.Response, secrets: Iterable[str] = ()) -> str:
    """The API's error message from any body shape, or a short excerpt of a non-JSON body.

    Secrets are redacted *before* anything is truncated, so a cut can never leave a
    fragment of a secret behind.
    """
    secrets = tuple(secrets)
    try:
        body = response.json()
    except (ValueError, RecursionError):
        text = _redact(response.text.strip(), secrets) or response.reason_phrase
    else:
        text = ""
        if isinstance(body, dict):
            try:
                text = ErrorBody.model_validate(_redact_strings(body, secrets)).text()
            except (ValidationError, TypeError, ValueError, AttributeError, RecursionError):
                text = ""  # an error body of an unexpected shape: the status line says enough
        text = _redact(text, secrets) or response.reason_phrase
    return (text[:_ERROR_TEXT_LIMIT] + "…") if len(text) > _ERROR_TEXT_LIMIT else text


def _header_text(value: str | None, secrets: Iterable[str], limit: int = 100) -> str | None:
    """A response header fit for a message: secrets redacted, then cut to ``limit``."""
    if not value:
        return None
    text = _redact(value, secrets)
    return (text[:limit] + "…") if len(text) > limit else text


def _redact_strings(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (decoded JSON) with every string redacted."""
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, list):
        return [_redact_strings(v, secrets) for v in value]
    if isinstance(value, dict):  # keys too: a cut of a rendered item must not leave a fragment
        return {_redact(str(k), secrets): _redact_strings(v, secrets) for k, v in value.items()}
    return value


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None  # "inf", "nan", "1e999"
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


_FRAGMENT_MIN = 8


def _redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``, and so is a piece of one cut off by the
    end or the start of ``text`` (a truncated response body that echoed it)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
            for size in range(len(secret) - 1, _FRAGMENT_MIN - 1, -1):
                if text.endswith(secret[:size]):
                    text = text[:-size] + "***"
                    break
            for size in range(len(secret) - 1, _FRAGMENT_MIN - 1, -1):
                if text.startswith(secret[-size:]):
                    text = "***" + text[size:]
                    break
    return text


def _mask(secret: str) -> None:
    try:
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(secret)
    except Exception:  # noqa: BLE001 - masking must never break a call
        pass


async def _amask(secret: str) -> None:
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # pragma: no cover - older task SDK
        _mask(secret)
        return
    try:
        await amask_secret(secret)
    except Exception:  # noqa: BLE001
        pass
