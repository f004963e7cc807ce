"""What ``airflow.providers.common.compat`` does not cover on every supported Airflow and Python.

Import Airflow names through ``airflow.providers.common.compat.sdk`` first; this module holds
only the rest:

* ``AIRFLOW_V_3_0_PLUS`` … ``AIRFLOW_V_3_3_PLUS``: the running Airflow's version (2.11 → 3.3),
  for behaviour no import can hide (provider info's ``conn-fields`` are read from 3.2 on; the
  hook's form methods before that).
* :func:`mask_secret`: ``common.compat.sdk.mask_secret`` exists from common-compat 1.22, which
  needs Python ≥ 3.11; on Python 3.10 the newest is 1.20, so the name is resolved here from the
  Airflow module that has it.
* :func:`amask_secret`: the async twin, Airflow 3.3+'s ``airflow.sdk.log.amask_secret``; older
  versions have none, so it falls back to the sync call there.

Like common.compat's own ``version_compat``, copied rather than imported from another provider.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "amask_secret",
    "get_base_airflow_version_tuple",
    "mask_secret",
]

#: Where ``mask_secret`` lives, newest Airflow first (3.x task SDK, 3.0, 2.x).
_MASK_SECRET_HOMES = (
    "airflow.sdk.log",
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
