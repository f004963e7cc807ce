"""The ``bolna`` connection form for Airflow before 3.2, built from provider info.

Airflow 3.2+ builds the form from provider info's ``conn-fields`` and ``ui-field-behaviour``
(:mod:`~airflow_provider_bolna.get_provider_info`). Airflow 2.11 (FAB form) and 3.0/3.1 (React
UI, whose ``HookMetaService`` stands in for wtforms and FAB) ask the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` instead; ``BolnaHook`` answers
with these functions, so both come from one declaration and cannot drift apart.

wtforms, flask_babel and flask_appbuilder are imported when the form is built, never at module
level: Airflow 3 installs them only with the FAB provider (``HookMetaService`` mocks them).
"""

from __future__ import annotations

from typing import Any

__all__ = ["connection_form_widgets", "ui_field_behaviour"]


def _bolna_connection_type() -> dict[str, Any]:
    from airflow_provider_bolna.get_provider_info import get_provider_info

    (conn,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "bolna"]
    return conn


def connection_form_widgets() -> dict[str, Any]:
    """One optional form field per ``conn-fields`` entry, with its label and default.

    Numbers are text fields (the hook parses them; ``HookMetaService`` knows no float field).
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in _bolna_connection_type()["conn-fields"].items():
        schema = spec["schema"]
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        label, default = lazy_gettext(spec["label"]), schema.get("default")
        if "boolean" in types:
            widgets[name] = BooleanField(label, default=default)
        elif "integer" in types:
            widgets[name] = IntegerField(
                label, widget=BS3TextFieldWidget(), validators=[Optional()], default=default
            )
        else:
            widgets[name] = StringField(
                label,
                widget=BS3TextFieldWidget(),
                validators=[Optional()],
                default=None if default is None else str(default),
            )
    return widgets


def ui_field_behaviour() -> dict[str, Any]:
    """Hidden, relabelled and placeholder standard fields (provider info's ``ui-field-behaviour``)."""
    behaviour = _bolna_connection_type()["ui-field-behaviour"]
    return {
        "hidden_fields": list(behaviour["hidden-fields"]),
        "relabeling": dict(behaviour["relabeling"]),
        "placeholders": dict(behaviour["placeholders"]),
    }
