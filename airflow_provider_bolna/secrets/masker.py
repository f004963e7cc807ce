"""Register many SIP passwords with Airflow's log masker at once.

``mask_secret`` recompiles the masker's one big regular expression for every new secret, so
masking a batch of N passwords one by one costs O(N²) (about 60 s for 1,000 passwords on a
2-core machine). :func:`mask_secrets` adds a whole page of passwords to the task process's
masker and compiles once, then tells the supervisor (which masks task logs in Airflow 3) with a
single message. When the masker's internals are not the expected ones it falls back to
``mask_secret`` per value: slower, never less safe.

:class:`BatchSecrets` does the same for one batch and takes the batch's passwords out of the
task process's masker when the batch ends. A process that runs many batches (``airflow dags
test``, the command line, the tests) would otherwise carry every password it ever read: at
65,000 passwords, compiling one more page takes 3 s and masking one log line 5 ms, so a
100,000-customer run in one process spends minutes in the masker. The supervisor, which masks
a real task's logs, keeps its copy until the task ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

__all__ = ["BatchSecrets", "mask_secrets"]

log = logging.getLogger(__name__)


def mask_secrets(values: Iterable[str]) -> int:
    """Mask every value in task logs for good; return how many distinct values were registered.

    :param values: secrets (empty and duplicate values are ignored).
    """
    return BatchSecrets().add(values)


class BatchSecrets:
    """The passwords of one batch in the log masker, taken out again by :meth:`release`.

    Only patterns that this object added are removed: a secret masked before (the API key, a
    connection password, another batch's) stays masked.
    """

    def __init__(self) -> None:
        self._added: set[str] = set()
        self._masker: Any = None

    def add(self, values: Iterable[str]) -> int:
        """Mask ``values`` (one compile, one message to the supervisor); return how many distinct values.

        :param values: secrets (empty and duplicate values are ignored).
        """
        secrets = [v for v in dict.fromkeys(values) if isinstance(v, str) and v]
        if not secrets:
            return 0
        masker = _sdk_masker()
        added: set[str] = set()
        if masker is None or not _bulk_add(masker, secrets, added):
            _one_by_one(secrets)
            return len(secrets)
        self._masker = masker
        self._added |= added
        _tell_supervisor(secrets)
        return len(secrets)

    def release(self) -> None:
        """Remove the patterns this batch added from the process's masker (compiling once)."""
        masker, added = self._masker, self._added
        self._masker, self._added = None, set()
        if masker is None or not added:
            return
        try:
            patterns = masker.patterns
            patterns.difference_update(added)
            masker.replacer = re.compile("|".join(patterns)) if patterns else None
        except Exception:  # noqa: BLE001 - a masker that keeps too much is safe, only slower
            log.debug("Could not release the batch's masks", exc_info=True)


def _sdk_masker() -> Any:
    try:
        from airflow.sdk._shared.secrets_masker import _secrets_masker
    except ImportError:  # pragma: no cover - other Airflow versions
        return None
    try:
        return _secrets_masker()
    except Exception:  # noqa: BLE001 - never break a task because of masking
        return None


def _bulk_add(masker: Any, secrets: list[str], added_patterns: set[str] | None = None) -> bool:
    """Add patterns the way ``SecretsMasker.add_mask`` does, compiling once. False if unsure.

    :param added_patterns: receives the patterns that were not in the masker before.
    """
    patterns = getattr(masker, "patterns", None)
    adaptations = getattr(masker, "_adaptations", None)
    if not isinstance(patterns, set) or not callable(adaptations) or not hasattr(masker, "replacer"):
        return False
    try:
        from airflow.sdk._shared.secrets_masker.secrets_masker import SECRETS_TO_SKIP_MASKING
    except ImportError:  # pragma: no cover
        return False
    min_length = int(getattr(masker, "min_length_to_mask", 0) or 0)
    added = False
    try:
        for secret in secrets:
            if len(secret) < min_length or secret.lower() in SECRETS_TO_SKIP_MASKING:
                continue
            for variant in adaptations(secret):
                if not variant or len(variant) < min_length or variant.lower() in SECRETS_TO_SKIP_MASKING:
                    continue
                pattern = re.escape(variant)
                if pattern not in patterns:
                    patterns.add(pattern)
                    added = True
                    if added_patterns is not None:
                        added_patterns.add(pattern)
        if added:
            masker.replacer = re.compile("|".join(patterns))
    except Exception:
        log.debug("Bulk masking failed; falling back to mask_secret per value", exc_info=True)
        return False
    return True


def _tell_supervisor(secrets: list[str]) -> None:
    """One ``MaskSecret`` message with the whole list (only inside a task process)."""
    with suppress(Exception):
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import MaskSecret

        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
        if comms is not None:
            comms.send(MaskSecret(value=secrets, name=None))


def _one_by_one(secrets: list[str]) -> None:
    try:
        from airflow.providers.common.compat.sdk import mask_secret
    except ImportError:  # pragma: no cover
        return
    for secret in secrets:
        with suppress(Exception):
            mask_secret(secret)
