"""What ``airflow.providers.common.compat`` does not cover on every supported Airflow and Python.

Import Airflow names through ``airflow.providers.common.compat.sdk`` first; this module holds
only the rest:

* ``AIRFLOW_V_3_0_PLUS`` … ``AIRFLOW_V_3_3_PLUS``: the running Airflow's version (2.11 → 3.3),
  for behaviour no import can hide (provider info's ``conn-fields`` are read from 3.2 on; the
  hook's form methods before that).
* :data:`TRIGGERING_ASSET_EVENTS_KEY`: the task context's key for the events that triggered an
  asset-scheduled run (``triggering_dataset_events`` on Airflow 2).
* :func:`mask_secret`: ``common.compat.sdk.mask_secret`` exists from common-compat 1.22, which
  needs Python ≥ 3.11; on Python 3.10 the newest is 1.20, so the name is resolved here from the
  Airflow module that has it.
* :func:`amask_secret`: the async twin, Airflow 3.3+'s ``airflow.sdk.log.amask_secret``; older
  versions have none, so it falls back to the sync call there.
* :func:`secrets_masker_parts`: the process's ``SecretsMasker`` and what its ``add_mask``
  uses (skip list, minimum length, regex engine), for masking thousands of passwords with one
  compile; private in every Airflow, and in a different module in each of 2.x, 3.0 and 3.1+.

Like common.compat's own ``version_compat``, copied rather than imported from another provider.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "TRIGGERING_ASSET_EVENTS_KEY",
    "SecretsMaskerParts",
    "amask_secret",
    "get_base_airflow_version_tuple",
    "mask_secret",
    "secrets_masker_parts",
]

#: Where ``mask_secret`` lives, newest Airflow first (3.x task SDK, 3.0, 2.x).
_MASK_SECRET_HOMES = (
    "airflow.sdk.log",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.utils.log.secrets_masker",
)

#: Where the ``SecretsMasker`` class and the process's instance live: 3.1+, 3.0, 2.x.
_SECRETS_MASKER_HOMES = (
    "airflow.sdk._shared.secrets_masker.secrets_masker",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.utils.log.secrets_masker",
)


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """The running Airflow's ``(major, minor, micro)``, pre-release and local parts dropped."""
    from airflow import __version__
    from packaging.version import Version

    version = Version(__version__)
    return version.major, version.minor, version.micro


AIRFLOW_V_3_0_PLUS: bool = get_base_airflow_version_tuple() >= (3, 0, 0)
AIRFLOW_V_3_1_PLUS: bool = get_base_airflow_version_tuple() >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS: bool = get_base_airflow_version_tuple() >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = get_base_airflow_version_tuple() >= (3, 3, 0)

#: The context key of an asset-triggered run's events (Airflow 2 calls assets datasets).
TRIGGERING_ASSET_EVENTS_KEY = "triggering_asset_events" if AIRFLOW_V_3_0_PLUS else "triggering_dataset_events"


@functools.cache
def _resolve_mask_secret() -> Callable[..., None]:
    try:
        from airflow.providers.common.compat.sdk import mask_secret as compat_mask_secret
    except ImportError:  # common-compat < 1.22 (the newest on Python 3.10 is 1.20)
        pass
    else:
        return compat_mask_secret
    for module in _MASK_SECRET_HOMES:
        try:
            return importlib.import_module(module).mask_secret
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"no mask_secret in any of {', '.join(_MASK_SECRET_HOMES)}")


def mask_secret(secret: Any, name: str | None = None) -> None:
    """Mask ``secret`` in this process's logs (and, in a task, the supervisor's).

    :param secret: a string, or a dict/iterable of strings.
    :param name: the key it was found under (masked only if the name looks sensitive).
    """
    _resolve_mask_secret()(secret, name)


async def amask_secret(secret: Any, name: str | None = None) -> None:
    """Async :func:`mask_secret`, safe on an event loop (a trigger, an async task).

    :param secret: a string, or a dict/iterable of strings.
    :param name: the key it was found under.
    """
    try:
        from airflow.sdk.log import amask_secret as sdk_amask_secret
    except ImportError:  # Airflow < 3.3 has no async variant
        mask_secret(secret, name)
        return
    await sdk_amask_secret(secret, name)


@dataclass(frozen=True)
class SecretsMaskerParts:
    """The process's ``SecretsMasker`` and the rules its ``add_mask`` applies on this Airflow.

    :param masker: the instance (``patterns`` set, ``replacer``, ``_adaptations``).
    :param regex: the engine its patterns are escaped and compiled with (``re2`` on Airflow 2).
    :param skip: values never masked (lower case).
    :param min_length: shorter values are not masked (Airflow 2 has no minimum).
    """

    masker: Any
    regex: ModuleType
    skip: frozenset[str]
    min_length: int


def secrets_masker_parts() -> SecretsMaskerParts | None:
    """The process's ``SecretsMasker`` and its rules, or ``None`` if this Airflow has none we know."""
    for home in _SECRETS_MASKER_HOMES:
        try:
            module = importlib.import_module(home)
            masker = module._secrets_masker()
        except (ImportError, AttributeError):
            continue
        skip = getattr(module, "SECRETS_TO_SKIP_MASKING", ())  # 3.0+; 2.x skips {"airflow"} in test mode only
        if hasattr(masker, "min_length_to_mask"):  # 3.1+
            min_length = masker.min_length_to_mask
        else:  # 3.0: the [logging] setting; 2.x: none
            min_length = module.get_min_secret_length() if hasattr(module, "get_min_secret_length") else 0
        regex = getattr(module, "re2", re)  # Airflow 2 compiles the masker's patterns with re2
        return SecretsMaskerParts(masker, regex, frozenset(s.lower() for s in skip), int(min_length or 0))
    return None
