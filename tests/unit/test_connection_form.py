"""The connection form a user sees for a ``bolna`` connection, on every supported Airflow.

Airflow 3.2+ builds it from provider info (``conn-fields``, ``ui-field-behaviour``). Airflow 3.0
and 3.1 (React UI, ``HookMetaService``) and 2.11 (FAB form, ``ProvidersManager``) read the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` instead, so the hook must offer the
same fields, labels and hidden fields as provider info.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bolna.get_provider_info import get_provider_info
from airflow_provider_bolna.version_compat import AIRFLOW_V_3_0_PLUS

PREFIX = "extra__bolna__"


def _declared() -> dict[str, Any]:
    (conn,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "bolna"]
    return conn


def _bare(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def _label(field: dict[str, Any]) -> str | None:
    """The label of one extra field as the 3.x UI API sends it (a JSON-schema ``title``)."""
    return (field.get("schema") or {}).get("title") or field.get("label")


@pytest.fixture(scope="module")
def form() -> dict[str, Any]:
    """What the UI gets: extra field names → label, hidden standard fields, relabelled ones."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

        (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "bolna"]
        std = meta.standard_fields.model_dump() if meta.standard_fields else {}
        std["schema"] = std.pop("url_schema", None)
        return {
            "extra": {_bare(k): _label(v) for k, v in (meta.extra_fields or {}).items()},
            "hidden": {k for k, v in std.items() if v and v.get("hidden")},
            "titles": {k: v["title"] for k, v in std.items() if v and v.get("title")},
        }
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    widgets = {k: w for k, w in pm.connection_form_widgets.items() if w.connection_type == "bolna"}
    behaviour = pm.field_behaviours.get("bolna") or {}
    return {
        "extra": {_bare(k): str(w.field.args[0]) if w.field.args else None for k, w in widgets.items()},
        "hidden": set(behaviour.get("hidden_fields", [])),
        "titles": dict(behaviour.get("relabeling", {})),
    }


def test_form_offers_every_declared_extra_field(form: dict[str, Any]) -> None:
    declared = {name: spec["label"] for name, spec in _declared()["conn-fields"].items()}
    assert form["extra"] == declared


def test_form_hides_and_relabels_the_standard_fields(form: dict[str, Any]) -> None:
    behaviour = _declared()["ui-field-behaviour"]
    assert form["hidden"] == set(behaviour["hidden-fields"])
    assert form["titles"] == behaviour["relabeling"]
