"""Secrets in one home: redaction of known secrets in text, the log masker, password
references in specs and rows (and the policy that allows them), and per-batch masks.

Import-light: nothing here imports Airflow at module level.
"""

from __future__ import annotations

# redaction of known secrets in text, and the log masker
from .redaction import amask_secret, excerpt, mask_secret, redact, redact_strings  # noqa: F401
