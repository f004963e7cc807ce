"""What the schemathesis modules share: where the specs are, the checks, hypothesis settings.

The specs are read from ``$BOLNA_SHARED_DIR`` or ``<repo>/../shared`` (CI lays ``shared/``
beside the checkout); a module whose spec is absent is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

#: no 5xx, every status code documented, JSON content type, bodies and headers as documented
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
HYPOTHESIS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def spec_path(name: str) -> Path:
    """``bolna-api/<name>`` of the shared directory; skips the calling module when absent."""
    shared = Path(os.environ.get("BOLNA_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
    path = shared / "bolna-api" / name
    if not path.exists():
        pytest.skip(f"OpenAPI spec not found at {path}", allow_module_level=True)
    return path
