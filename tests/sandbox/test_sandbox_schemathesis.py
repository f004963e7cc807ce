"""Schemathesis against the sandbox: every response must conform to the shared OpenAPI spec.

Checks: no 5xx, every status code documented for the operation, JSON content type, response
bodies and headers valid against the documented schemas. Positive and negative examples,
bounded by ``max_examples`` per operation (the module takes well under 2 minutes).
Two passes: random path ids (mostly 404s), and ids of a real trunk and number (200s).

The spec is loaded at collection time from ``$BOLNA_SHARED_DIR`` or ``<repo>/../shared``
(the module is skipped when it is absent). The sandbox URL and key are given per call
(``schemathesis.pytest.from_fixture`` does not work with pytest 9 in schemathesis 4.32).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from airflow_provider_bolna.sandbox.testing import SandboxServer

from .conftest import SEED_USERPASS, TRUNKS
from .schemathesis_common import CHECKS, HYPOTHESIS, spec_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = spec_path("sip-trunks.openapi.yaml")

schema = schemathesis.openapi.from_path(SPEC)
# the pinned trunk must survive the run, so its DELETE is exercised only with random ids
schema_without_trunk_delete = schema.exclude(method="DELETE", path="/sip-trunks/trunks/{trunk_id}")


@pytest.fixture
def real_ids(sandbox: SandboxServer) -> dict[str, str]:
    """An existing trunk with one number, as path parameters."""
    with sandbox.client() as client:
        trunk = client.post(
            TRUNKS, json={**SEED_USERPASS, "phone_numbers": [{"phone_number": "+14155550100"}]}
        ).json()
    return {"trunk_id": trunk["id"], "phone_number_id": trunk["phone_numbers"][0]["id"]}


@schema.parametrize()
@HYPOTHESIS
def test_conforms_with_random_ids(case: Any, sandbox: SandboxServer) -> None:
    case.call_and_validate(base_url=sandbox.url, headers=sandbox.auth_headers, checks=CHECKS)


@schema_without_trunk_delete.parametrize()
@HYPOTHESIS
def test_conforms_with_real_ids(case: Any, sandbox: SandboxServer, real_ids: dict[str, str]) -> None:
    if case.path_parameters:
        case.path_parameters.update({k: v for k, v in real_ids.items() if k in case.path_parameters})
    case.call_and_validate(base_url=sandbox.url, headers=sandbox.auth_headers, checks=CHECKS)
