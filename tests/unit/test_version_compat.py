"""``version_compat``: the version flags agree with what the installed Airflow has, and
``mask_secret`` masks on every supported Airflow and common-compat (also without
``common.compat.sdk.mask_secret``, as on Python 3.10, where common-compat stops at 1.20)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator

import pytest
from airflow.providers.common.compat import sdk as compat_sdk
from airflow.providers.common.compat.sdk import BaseHook, redact

from airflow_provider_bolna import version_compat
from airflow_provider_bolna.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
    amask_secret,
    mask_secret,
)


def test_flags_match_what_the_installed_airflow_has() -> None:
    from airflow.triggers.base import BaseTrigger

    assert AIRFLOW_V_3_0_PLUS == (importlib.util.find_spec("airflow.sdk") is not None)
    assert AIRFLOW_V_3_1_PLUS == hasattr(BaseHook, "aget_connection")  # async connections: 3.1
    assert AIRFLOW_V_3_3_PLUS == hasattr(BaseTrigger, "on_kill")  # trigger on_kill: 3.3
    assert AIRFLOW_V_3_0_PLUS >= AIRFLOW_V_3_1_PLUS >= AIRFLOW_V_3_2_PLUS >= AIRFLOW_V_3_3_PLUS


@pytest.fixture(params=["compat", "fallback"])
def without_compat_mask_secret(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run once as installed and once as if common-compat had no ``sdk.mask_secret`` (< 1.22)."""
    version_compat._resolve_mask_secret.cache_clear()
    if request.param == "fallback":
        real_getattr = compat_sdk.__getattr__

        def getattr_without_mask_secret(name: str) -> object:
            if name == "mask_secret":
                raise AttributeError(name)
            return real_getattr(name)

        monkeypatch.setattr(compat_sdk, "__getattr__", getattr_without_mask_secret)
        if "mask_secret" in vars(compat_sdk):  # resolved once and cached as a module global
            monkeypatch.delattr(compat_sdk, "mask_secret")
        with pytest.raises(ImportError):
            from airflow.providers.common.compat.sdk import mask_secret as _  # noqa: F401
    yield request.param
    version_compat._resolve_mask_secret.cache_clear()


def test_mask_secret_masks(without_compat_mask_secret: str) -> None:
    secret = f"vc-sync-{without_compat_mask_secret}-5e1f0c7a9b"
    mask_secret(secret)
    assert secret not in str(redact(f"token {secret} end"))


def test_amask_secret_masks(without_compat_mask_secret: str) -> None:
    secret = f"vc-async-{without_compat_mask_secret}-8d2c4b6a1e"
    asyncio.run(amask_secret(secret))
    assert secret not in str(redact(f"token {secret} end"))
