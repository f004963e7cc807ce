"""The connection form a user sees for a ``bolna`` connection, on every supported Airflow.

Airflow 3.2+ builds it from provider info (``conn-fields``, ``ui-field-behaviour``). Airflow 3.0
and 3.1 (React UI, ``HookMetaService``) and 2.11 (FAB form, ``ProvidersManager``) read the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` instead, so the hook must offer the
same fields, labels and hidden fields as provider info. (Airflow 3.0 shows custom fields of any
provider only when the FAB provider brings wtforms; the test stands in for it as 3.1+ does.)

The form is read in a fresh interpreter, as the API server / webserver does: ``ProvidersManager``
is a process-wide singleton, and one initialised earlier in the test process (without the UI's
wtforms/FAB stand-ins on 3.0/3.1) would hide the hook's widgets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_bolna.get_provider_info import get_provider_info

READ_FORM = r"""
import json
import sys
from importlib.util import find_spec
from unittest.mock import MagicMock

from airflow_provider_bolna.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS

if AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_1_PLUS and not find_spec("wtforms"):
    # 3.0's HookMetaService stands in for wtforms/FAB only when they are installed (with the FAB
    # provider); without them no provider gets custom fields. Give it what 3.1+ does itself.
    for name in ["wtforms", "wtforms.fields", "wtforms.fields.simple", "wtforms.validators", "flask_babel",
                 "flask_appbuilder", "flask_appbuilder.fieldwidgets"]:
        sys.modules[name] = MagicMock()

PREFIX = "extra__bolna__"


def bare(name):
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


if AIRFLOW_V_3_0_PLUS:  # what the React UI gets from /ui/connections/hook_meta
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "bolna"]
    std = meta.standard_fields.model_dump() if meta.standard_fields else {}
    std["schema"] = std.pop("url_schema", None)
    form = {
        # 3.2+ sends the label as the JSON schema's title; 3.0/3.1 as the mocked field's title
        "extra": {bare(k): (v.get("schema") or {}).get("title") for k, v in (meta.extra_fields or {}).items()},
        "hidden": sorted(k for k, v in std.items() if v and v.get("hidden")),
        "titles": {k: v["title"] for k, v in std.items() if v and v.get("title")},
    }
else:  # what the FAB connection form of Airflow 2 is built from
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    widgets = {k: w for k, w in pm.connection_form_widgets.items() if k.startswith(PREFIX)}
    behaviour = pm.field_behaviours.get("bolna") or {}
    form = {
        "extra": {bare(k): str(w.field.args[0]) if w.field.args else None for k, w in widgets.items()},
        "hidden": sorted(behaviour.get("hidden_fields", [])),
        "titles": dict(behaviour.get("relabeling", {})),
    }
print("FORM=" + json.dumps(form))
"""


def _declared() -> dict[str, Any]:
    (conn,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "bolna"]
    return conn


@pytest.fixture(scope="module")
def form() -> dict[str, Any]:
    """What the UI gets: extra field names → label, hidden standard fields, relabelled ones."""
    proc = subprocess.run(
        [sys.executable, "-c", READ_FORM], check=False, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FORM=")]
    assert proc.returncode == 0 and lines, (
        f"reading the form failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return json.loads(lines[-1][len("FORM=") :])


def test_form_offers_every_declared_extra_field(form: dict[str, Any]) -> None:
    declared = {name: spec["label"] for name, spec in _declared()["conn-fields"].items()}
    assert form["extra"] == declared


def test_form_hides_and_relabels_the_standard_fields(form: dict[str, Any]) -> None:
    behaviour = _declared()["ui-field-behaviour"]
    assert set(form["hidden"]) == set(behaviour["hidden-fields"])
    assert form["titles"] == behaviour["relabeling"]
