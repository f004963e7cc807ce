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
    TRIGGERING_ASSET_EVENTS_KEY,
    amask_secret,
    mask_secret,
    secrets_masker_parts,
)


def test_flags_match_what_the_installed_airflow_has() -> None:
    from airflow.triggers.base import BaseTrigger

    assert AIRFLOW_V_3_0_PLUS == (importlib.util.find_spec("airflow.sdk") is not None)
    assert AIRFLOW_V_3_1_PLUS == hasattr(BaseHook, "aget_connection")  # async connections: 3.1
    assert AIRFLOW_V_3_3_PLUS == hasattr(BaseTrigger, "on_kill")  # trigger on_kill: 3.3
    assert AIRFLOW_V_3_0_PLUS >= AIRFLOW_V_3_1_PLUS >= AIRFLOW_V_3_2_PLUS >= AIRFLOW_V_3_3_PLUS


@pytest.fixture(params=["compat", "fallback"])
def without_compat_mask_secret(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
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


def test_triggering_events_key_is_a_context_key_of_the_installed_airflow() -> None:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.definitions.context import Context

        keys = set(Context.__annotations__)
    else:
        from airflow.utils.context import KNOWN_CONTEXT_KEYS as keys
    assert TRIGGERING_ASSET_EVENTS_KEY in keys


def test_the_process_masker_is_found_and_bulk_masking_matches_add_mask() -> None:
    """The bulk path (one compile for a whole batch) must add exactly what ``add_mask`` adds,
    escaped and compiled by the same engine (re2 on Airflow 2), with the same skip list and
    minimum length; otherwise batches fall back to one compile per password."""
    from airflow_provider_bolna.secrets.masker import BatchSecrets

    parts = secrets_masker_parts()
    assert parts is not None
    masker = parts.masker
    values = ["Bulk-Same-As-Add (1) $x.y*@!=", "airflow", "tiny", "p\\ath\ttab"]
    before = set(masker.patterns)
    batch = BatchSecrets()
    batch.add(values)
    bulk = set(masker.patterns) - before
    batch.release()
    assert set(masker.patterns) == before
    for value in values:
        masker.add_mask(value)
    one_by_one = set(masker.patterns) - before
    assert bulk == one_by_one and bulk, (bulk, one_by_one)
    assert "***" in str(redact("a Bulk-Same-As-Add (1) $x.y*@!= b"))
    masker.patterns.difference_update(one_by_one)
    masker.replacer = parts.regex.compile("|".join(masker.patterns)) if masker.patterns else None
