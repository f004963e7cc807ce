"""Password references: keep SIP passwords out of DAG code, templates, XCom and logs.

A password field of a trunk spec (``auth_password``, or any key ending in ``password``) may
hold, instead of the password itself, a *reference* resolved at run time:

``{"conn": "carrier_acme"}``
    the ``password`` of Airflow connection ``carrier_acme``. ``"field"`` picks another part
    of it: ``"login"``, ``"password"`` (default) or ``"extra.<key>"``.
``{"variable": "acme_sip_password"}``
    the value of Airflow variable ``acme_sip_password``.
``{"param": "sip_password"}``
    the value of the run's param ``sip_password`` (pass ``params=context["params"]``): either a
    ``conn``/``variable`` reference itself, or — not recommended, the run's conf is stored in
    the metadata DB — a plain password. Lets one DAG take a reference or a password at trigger
    time without rendering templates as native objects.

Who wrote a reference decides what it may read. A reference in the DAG file is the author's
and may read any connection or variable. A reference that arrives from outside — the value of a
param (whoever triggers the run chooses it) or a customer row (tenant data) — is resolved only
under a :class:`PasswordRefPolicy`, off by default: then only ``{"conn": id}`` with an
allow-listed id prefix (that connection's password, nothing else of it) or ``{"variable": key}``
with an allow-listed key prefix. Anything else fails naming the field, without echoing the
reference.

:func:`resolve_secret_refs` returns a copy of the spec with every reference replaced by its
value and registers every password it sees (resolved or given in plain text) with Airflow's
secrets masker, so it is replaced by ``***`` in task logs. Call it inside ``execute()`` only,
after template rendering: the rendered template then shows only the reference.

:func:`mask_plain_secrets` masks plain-text passwords without resolving anything (operators
call it right after rendering, before Airflow stores the rendered fields).

Importing this module has no side effects and does not import Airflow; Airflow is imported
lazily when a reference is resolved or a secret is masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

__all__ = [
    "PasswordRefPolicy",
    "SecretRefError",
    "SecretResolver",
    "is_secret_field",
    "is_secret_ref",
    "mask_plain_secrets",
    "resolve_secret_refs",
]

#: Keys of a reference dict.
_REF_KINDS = ("conn", "variable", "param")
_REF_KEYS = frozenset({"conn", "variable", "param", "field"})
#: Parts of a connection a ``{"conn": ...}`` reference may read.
_CONN_FIELDS = ("password", "login")


_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


class PasswordRefPolicy(BaseModel):
    """Which password references from outside the DAG file (params, customer rows) may resolve.

    Off by default (both lists empty): every such reference fails. Otherwise only
    ``{"conn": id}`` with ``id`` starting with one of ``conn_prefixes`` (that connection's
    *password*, nothing else of it) and ``{"variable": key}`` with ``key`` starting with one of
    ``variable_prefixes``.

    :param conn_prefixes: allowed connection id prefixes, e.g. ``("carrier_",)``.
    :param variable_prefixes: allowed variable key prefixes, e.g. ``("sip_password_",)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    conn_prefixes: tuple[str, ...] = ()
    variable_prefixes: tuple[str, ...] = ()

    @field_validator("conn_prefixes", "variable_prefixes", mode="before")
    @classmethod
    def _prefixes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, str) or not _PREFIX.match(item):
                    raise ValueError(
                        "each prefix must be 1-100 characters of letters, digits, '_', '.', '-' "
                        "(an empty prefix would allow every connection or variable)"
                    )
        return value

    @classmethod
    def of(cls, value: PasswordRefPolicy | Mapping[str, Any] | None) -> PasswordRefPolicy:
        """A policy from itself, its dict, or ``None`` (none allowed)."""
        if isinstance(value, PasswordRefPolicy):
            return value
        return cls.model_validate(dict(value or {}))

    @property
    def enabled(self) -> bool:
        """Whether any reference may resolve."""
        return bool(self.conn_prefixes or self.variable_prefixes)

    def refusal(self, kind: str, name: str, field: Any) -> str | None:
        """Why this policy refuses the reference, or ``None`` when it allows it (never echoes it)."""
        if not self.enabled:
            return "password references are not enabled here (the DAG author's password_refs policy)"
        if kind == "conn":
            if field not in (None, "", "password"):
                return "a reference may read only a connection's password"
            if not any(name.startswith(p) for p in self.conn_prefixes):
                return "the connection is not one the password_refs policy allows"
            return None
        if kind == "variable":
            if not any(name.startswith(p) for p in self.variable_prefixes):
                return "the variable is not one the password_refs policy allows"
            return None
        return "only {'conn': ...} and {'variable': ...} references are allowed here"


class SecretRefError(ValueError):
    """A password reference is malformed or cannot be resolved. Never contains a secret.

    :param field: dotted path of the field holding the reference (e.g. ``auth_password``).
    :param message: what is wrong.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def is_secret_field(key: Any) -> bool:
    """Whether a spec key holds a secret (``auth_password``, ``password``, ``*_password``)."""
    return isinstance(key, str) and key.lower().endswith("password")


def is_secret_ref(value: Any) -> bool:
    """Whether ``value`` looks like a reference: a mapping with a ``conn``, ``variable`` or ``param`` key."""
    return isinstance(value, Mapping) and any(k in value for k in _REF_KINDS)


def resolve_secret_refs(
    spec: Mapping[str, Any] | str,
    *,
    get_connection: Callable[[str], Any] | None = None,
    get_variable: Callable[[str], Any] | None = None,
    mask: Callable[[str], None] | None = None,
    params: Mapping[str, Any] | None = None,
    policy: PasswordRefPolicy | None = None,
    param_policy: PasswordRefPolicy | None = None,
) -> dict[str, Any]:
    """Return a copy of ``spec`` with password references replaced by their values.

    Walks nested dicts and lists. Every reference found (under any key) is resolved; values
    read for a password field or from a connection's password are masked, and so are plain
    passwords given directly. The input is not modified.

    :param spec: a trunk spec (or any JSON-like dict); a JSON string is parsed first.
    :param get_connection: ``conn_id -> Connection`` (default: Airflow's ``BaseHook.get_connection``).
    :param get_variable: ``key -> str`` (default: Airflow's ``Variable.get``).
    :param mask: registers a secret with the log masker (default: Airflow's ``mask_secret``).
    :param params: the run's params, for ``{"param": name}`` references (``context["params"]``).
    :param policy: the spec itself is untrusted (a customer row): every reference in it must
        pass this policy. ``None``: the spec is the DAG author's; its references are trusted.
    :param param_policy: references found in a param's value (chosen by whoever triggers the
        run) must pass this policy; default: none may resolve.
    :raises SecretRefError: a malformed or refused reference, or a connection/variable/param
        that cannot be read.
    """
    resolver = SecretResolver(
        get_connection=get_connection,
        get_variable=get_variable,
        mask=mask,
        params=params,
        policy=policy,
        param_policy=param_policy,
    )
    return resolver.resolve_spec(spec)


def mask_plain_secrets(spec: Any, *, mask: Callable[[str], None] | None = None) -> None:
    """Register every plain-text password in ``spec`` with the log masker; resolve nothing.

    Accepts a dict, a list, a JSON string of those, or an object with a ``SecretStr``
    ``auth_password`` (a :class:`~airflow_provider_bolna.models.TrunkSpec`). Never raises.
    """
    mask = mask or _mask_secret
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            return
    password = getattr(spec, "auth_password", None)
    if isinstance(password, SecretStr):
        _safe_mask(mask, password.get_secret_value())
        return
    _mask_walk(spec, mask)


# ---------------------------------------------------------------------- internals


def _as_dict(spec: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            raise SecretRefError("", "the spec is a string but not JSON; pass a dict") from None
    if not isinstance(spec, Mapping):
        raise SecretRefError("", f"the spec must be a dict, not {type(spec).__name__}")
    return dict(spec)


class SecretResolver:
    """Resolves password references, caching every connection and variable it reads.

    One resolver serves a whole batch of rows: each connection or variable is read once.
    Arguments as for :func:`resolve_secret_refs`.
    """

    def __init__(
        self,
        *,
        get_connection: Callable[[str], Any] | None = None,
        get_variable: Callable[[str], Any] | None = None,
        mask: Callable[[str], None] | None = None,
        params: Mapping[str, Any] | None = None,
        policy: PasswordRefPolicy | None = None,
        param_policy: PasswordRefPolicy | None = None,
    ) -> None:
        self._get_connection = get_connection or _airflow_get_connection
        self._get_variable = get_variable or _airflow_get_variable
        self._mask = mask or _mask_secret
        self._params = params
        self._policy = policy
        self._param_policy = param_policy if param_policy is not None else PasswordRefPolicy()
        self._connections: dict[str, Any] = {}
        self._variables: dict[str, Any] = {}

    def resolve_spec(self, spec: Mapping[str, Any] | str) -> dict[str, Any]:
        """A copy of ``spec`` with its references resolved (see :func:`resolve_secret_refs`)."""
        return self.walk(_as_dict(spec), "")

    def _connection(self, conn_id: str) -> Any:
        if conn_id not in self._connections:
            self._connections[conn_id] = self._get_connection(conn_id)
        return self._connections[conn_id]

    def _variable(self, key: str) -> Any:
        if key not in self._variables:
            self._variables[key] = self._get_variable(key)
        return self._variables[key]

    def walk(self, value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                sub = f"{path}.{key}" if path else str(key)
                if is_secret_ref(item):
                    out[key] = self.resolve(item, sub, secret=is_secret_field(key))
                elif is_secret_field(key) and isinstance(item, (dict, list)):
                    raise SecretRefError(
                        sub,
                        "must be a string or a reference {'conn': '<conn_id>'} / {'variable': '<key>'} "
                        "/ {'param': '<name>'}",
                    )
                else:
                    if is_secret_field(key):
                        _mask_value(item, self._mask)
                    out[key] = self.walk(item, sub)
            return out
        if isinstance(value, (list, tuple)):
            return [self.walk(item, f"{path}.{i}" if path else str(i)) for i, item in enumerate(value)]
        return value

    def resolve(self, ref: Mapping[str, Any], path: str, *, secret: bool, via_param: bool = False) -> str:
        unknown = sorted(str(k) for k in ref if k not in _REF_KEYS)
        kinds = [k for k in _REF_KINDS if k in ref]
        if unknown or len(kinds) != 1:
            raise SecretRefError(
                path,
                "a reference is {'conn': '<conn_id>'[, 'field': 'password'|'login'|'extra.<key>']}, "
                "{'variable': '<key>'} or {'param': '<name>'}"
                + (f"; unknown key(s) {', '.join(map(repr, unknown))}" if unknown else ""),
            )
        kind = kinds[0]
        name = ref[kind]
        if not isinstance(name, str) or not name.strip():
            raise SecretRefError(path, f"'{kind}' must be a non-empty string")
        name = name.strip()
        if kind == "param" and via_param:
            raise SecretRefError(path, f"param {name!r}: a param reference cannot point to another param")
        policy = self._policy if self._policy is not None else (self._param_policy if via_param else None)
        if policy is not None:
            refusal = policy.refusal(kind, name, ref.get("field"))
            if refusal is not None:
                raise SecretRefError(path, refusal)
        if kind == "param":
            if via_param:
                raise SecretRefError(path, f"param {name!r}: a param reference cannot point to another param")
            if ref.get("field") is not None:
                raise SecretRefError(path, "'field' only applies to {'conn': ...} references")
            return self._from_param(name, path, secret=secret)
        if kind == "conn":
            value, reads_secret = self._from_connection(name, ref.get("field"), path)
        else:
            if ref.get("field") is not None:
                raise SecretRefError(path, "'field' only applies to {'conn': ...} references")
            value, reads_secret = self._from_variable(name, path), True
        if secret or reads_secret:
            _safe_mask(self._mask, value)
        return value

    def _from_connection(self, conn_id: str, field: Any, path: str) -> tuple[str, bool]:
        field = "password" if field in (None, "") else field
        if not isinstance(field, str) or not (field in _CONN_FIELDS or field.startswith("extra.")):
            raise SecretRefError(path, "'field' must be 'password', 'login' or 'extra.<key>'")
        try:
            conn = self._connection(conn_id)
        except Exception as exc:  # noqa: BLE001 - any lookup failure is reported the same way
            raise SecretRefError(path, f"cannot read connection {conn_id!r} ({type(exc).__name__})") from None
        if field.startswith("extra."):
            key = field[len("extra.") :]
            extra = getattr(conn, "extra_dejson", None) or {}
            value = extra.get(key)
            reads_secret = True
        else:
            value = getattr(conn, field, None)
            reads_secret = field == "password"
        if value is None or value == "":
            raise SecretRefError(path, f"connection {conn_id!r} has no {field}")
        return str(value), reads_secret

    def _from_param(self, name: str, path: str, *, secret: bool) -> str:
        if self._params is None or name not in self._params:
            raise SecretRefError(
                path, f"param {name!r} is not set (references to params need the run's params)"
            )
        value = self._params[name]
        if is_secret_ref(value):
            return self.resolve(value, path, secret=secret, via_param=True)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str) or not value:
            raise SecretRefError(path, f"param {name!r} must be a non-empty string or a reference")
        if secret:
            _safe_mask(self._mask, value)
        return value

    def _from_variable(self, key: str, path: str) -> str:
        try:
            value = self._variable(key)
        except Exception as exc:  # noqa: BLE001
            raise SecretRefError(path, f"cannot read variable {key!r} ({type(exc).__name__})") from None
        if value is None or value == "":
            raise SecretRefError(path, f"variable {key!r} is empty")
        return str(value)


def _mask_walk(value: Any, mask: Callable[[str], None]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if is_secret_field(key):
                _mask_value(item, mask)
            else:
                _mask_walk(item, mask)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _mask_walk(item, mask)


def _mask_value(value: Any, mask: Callable[[str], None]) -> None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str) and value:
        _safe_mask(mask, value)


def _safe_mask(mask: Callable[[str], None], value: str) -> None:
    try:
        mask(value)
    except Exception:  # noqa: BLE001, S110 - masking must never break a task (and must not log the value)
        pass


def _mask_secret(value: str) -> None:
    from airflow_provider_bolna.version_compat import mask_secret

    mask_secret(value)


def _airflow_get_connection(conn_id: str) -> Any:
    from airflow.providers.common.compat.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _airflow_get_variable(key: str) -> Any:
    from airflow.providers.common.compat.sdk import Variable

    return Variable.get(key)
