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
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING

from airflow_provider_bolna.secrets.redaction import mask_secret

if TYPE_CHECKING:
    from airflow_provider_bolna.version_compat import SecretsMaskerParts

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
        self._parts: SecretsMaskerParts | None = None

    def add(self, values: Iterable[str]) -> int:
        """Mask ``values`` (one compile, one message to the supervisor); return how many distinct values.

        :param values: secrets (empty and duplicate values are ignored).
        """
        secrets = [v for v in dict.fromkeys(values) if isinstance(v, str) and v]
        if not secrets:
            return 0
        parts = _masker_parts()
        added: set[str] = set()
        if parts is None or not _bulk_add(parts, secrets, added):
            _one_by_one(secrets)
            return len(secrets)
        self._parts = parts
        self._added |= added
        _tell_supervisor(secrets)
        return len(secrets)

    def release(self) -> None:
        """Remove the patterns this batch added from the process's masker (compiling once)."""
        parts, added = self._parts, self._added
        self._parts, self._added = None, set()
        if parts is None or not added:
            return
        try:
            patterns = parts.masker.patterns
            patterns.difference_update(added)
            parts.masker.replacer = parts.regex.compile("|".join(patterns)) if patterns else None
        except Exception:
            log.debug("Could not release the batch's masks", exc_info=True)


def _masker_parts() -> SecretsMaskerParts | None:
    try:
        from airflow_provider_bolna.version_compat import secrets_masker_parts

        return secrets_masker_parts()
    except Exception:  # noqa: BLE001 - never break a task because of masking
        return None


def _bulk_add(parts: SecretsMaskerParts, secrets: list[str], added_patterns: set[str] | None = None) -> bool:
    """Add patterns the way ``SecretsMasker.add_mask`` does, compiling once. False if unsure.

    :param added_patterns: receives the patterns that were not in the masker before.
    """
    masker, regex, skip, min_length = parts.masker, parts.regex, parts.skip, parts.min_length
    patterns = getattr(masker, "patterns", None)
    adaptations = getattr(masker, "_adaptations", None)
    if not isinstance(patterns, set) or not callable(adaptations) or not hasattr(masker, "replacer"):
        return False
    added = False
    try:
        for secret in secrets:
            if len(secret) < min_length or secret.lower() in skip:
                continue
            for variant in adaptations(secret):
                if not variant or len(variant) < min_length or variant.lower() in skip:
                    continue
                pattern = regex.escape(variant)
                if pattern not in patterns:
                    patterns.add(pattern)
                    added = True
                    if added_patterns is not None:
                        added_patterns.add(pattern)
        if added:
            masker.replacer = regex.compile("|".join(patterns))
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
    for secret in secrets:
        mask_secret(secret)  # never raises
