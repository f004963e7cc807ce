"""Schemathesis against the sandbox: every agent-binding response must conform to the shared
``agent-binding.openapi.yaml`` (same checks and style as ``test_sandbox_schemathesis.py``).

Checks: no 5xx, every status code documented for the operation, JSON content type, response
bodies and headers valid against the documented schemas; positive and negative examples.
Three passes: random ids (mostly 404s); real ids (an agent, a SIP-trunk number) with the
InboundAgentResponse style of ``/inbound/setup``; real ids with the ``{"message"}`` style.

The agent endpoint's own rate limit (500/min by default) is switched off: a 429 is a fault the
sandbox injects on purpose, not a conformance question, and the spec does not list it.

Two gaps of the spec itself are read the way its description states them (each pinned below
as a strict xfail, so a fixed spec tells us to drop the reading):

* a bad key answers 403 ``{"detail": ...}`` on the live API ("treat both as an auth
  failure"), but only ``/user/me`` lists the 403; schemathesis's negative cases send bad
  ``Authorization`` headers, so the 403 is added to every operation;
* the 200 of ``/inbound/setup`` and ``/inbound/unlink`` is a ``oneOf`` whose first
  alternative (all properties optional) also matches ``{"message": ...}``, so the documented
  message body is invalid against the document's own schema; the ``message`` pass reads those
  two ``oneOf`` as ``anyOf`` ("a client must accept either").
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import schemathesis
import yaml

from airflow_provider_bolna.sandbox.testing import SandboxServer

from .conftest import SEED_USERPASS, TRUNKS
from .schemathesis_common import CHECKS, HYPOTHESIS, spec_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = spec_path("agent-binding.openapi.yaml")
RAW = yaml.safe_load(SPEC.read_text())
EITHER_SHAPE = ("/inbound/setup", "/inbound/unlink")
OPERATIONS = [(path, method) for path, item in RAW["paths"].items() for method in item]


def as_described(spec: dict[str, Any], *, either_shape: bool = False) -> dict[str, Any]:
    """The spec with the 403 of a bad key on every operation and, with ``either_shape``, the
    200 ``oneOf`` of setup / unlink read as ``anyOf``."""
    spec = copy.deepcopy(spec)
    for path, method in OPERATIONS:
        spec["paths"][path][method]["responses"].setdefault("403", {"$ref": "#/components/responses/Detail"})
    if either_shape:
        for path in EITHER_SHAPE:
            media = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
            media["schema"] = {"anyOf": media["schema"].pop("oneOf")}
    return spec


schema = schemathesis.openapi.from_dict(as_described(RAW))
schema_either_shape = schemathesis.openapi.from_dict(as_described(RAW, either_shape=True))


@pytest.fixture
def binding_sandbox(sandbox: SandboxServer) -> SandboxServer:
    sandbox.admin.config(agent_rate_limit_per_min=0, phone_numbers_all_includes_sip=True)
    return sandbox


@pytest.fixture
def real_ids(binding_sandbox: SandboxServer) -> dict[str, str]:
    """An agent and a SIP-trunk number mapped to it."""
    agent = binding_sandbox.admin.create_agent()
    with binding_sandbox.client() as client:
        trunk = client.post(
            TRUNKS, json={**SEED_USERPASS, "phone_numbers": [{"phone_number": "+14155550100"}]}
        ).json()
        number_id = trunk["phone_numbers"][0]["id"]
        client.post(
            "/inbound/setup", json={"agent_id": agent["id"], "phone_number_id": number_id}
        ).raise_for_status()
    return {"agent_id": agent["id"], "phone_number_id": number_id}


def with_real_ids(case: Any, ids: dict[str, str]) -> None:
    """Put the real ids wherever the case names them (path or JSON body)."""
    if case.path_parameters:
        case.path_parameters.update({k: v for k, v in ids.items() if k in case.path_parameters})
    if isinstance(case.body, dict):
        case.body.update({k: v for k, v in ids.items() if k in case.body})


@schema.parametrize()
@HYPOTHESIS
def test_conforms_with_random_ids(case: Any, binding_sandbox: SandboxServer) -> None:
    case.call_and_validate(base_url=binding_sandbox.url, headers=binding_sandbox.auth_headers, checks=CHECKS)


@schema.parametrize()
@HYPOTHESIS
def test_conforms_with_real_ids_agent_style(
    case: Any, binding_sandbox: SandboxServer, real_ids: dict[str, str]
) -> None:
    binding_sandbox.admin.config(inbound_setup_response="agent")
    with_real_ids(case, real_ids)
    case.call_and_validate(base_url=binding_sandbox.url, headers=binding_sandbox.auth_headers, checks=CHECKS)


@schema_either_shape.parametrize()
@HYPOTHESIS
def test_conforms_with_real_ids_message_style(
    case: Any, binding_sandbox: SandboxServer, real_ids: dict[str, str]
) -> None:
    with_real_ids(case, real_ids)
    case.call_and_validate(base_url=binding_sandbox.url, headers=binding_sandbox.auth_headers, checks=CHECKS)


@pytest.mark.xfail(
    strict=True, reason="agent-binding.openapi.yaml lists the live API's 403 for a bad key on /user/me only"
)
def test_spec_lists_the_bad_key_403_everywhere() -> None:
    assert all("403" in RAW["paths"][path][method]["responses"] for path, method in OPERATIONS)


@pytest.mark.xfail(
    strict=True,
    reason="agent-binding.openapi.yaml: the 200 oneOf of /inbound/setup also "
    "matches its first, all-optional alternative; should be anyOf",
)
@pytest.mark.parametrize("path", EITHER_SHAPE)
def test_spec_accepts_the_documented_message_body(path: str) -> None:
    media = RAW["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    resolver_schema = {**media["schema"], "components": RAW["components"]}
    jsonschema.validate({"message": "SIP trunk number successfully mapped to agent"}, resolver_schema)
