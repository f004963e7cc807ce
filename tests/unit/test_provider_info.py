"""``get_provider_info()`` is what Airflow's provider discovery loads: it must pass Airflow's schema."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.metadata import distribution
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
from packaging.utils import canonicalize_name
from pydantic import SecretStr

from airflow_provider_bolna.get_provider_info import get_provider_info

DIST_NAME = "airflow-provider-bolna"
ENTRY_POINT_GROUP = "apache_airflow_provider"
ENTRY_POINT_VALUE = "airflow_provider_bolna.get_provider_info:get_provider_info"
#: Provider-info sections whose entries list ``python-modules``.
MODULE_SECTIONS = ("hooks", "operators", "sensors", "triggers")


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return get_provider_info()


def _airflow_schema(name: str) -> dict[str, Any]:
    return json.loads((files("airflow") / name).read_text())


def _connection_type(info: dict[str, Any]) -> dict[str, Any]:
    (conn_type,) = info["connection-types"]
    return conn_type


def test_valid_against_airflow_runtime_schema(info: dict[str, Any]) -> None:
    jsonschema.validate(info, _airflow_schema("provider_info.schema.json"))


def test_connection_types_valid_against_strict_provider_yaml_schema(info: dict[str, Any]) -> None:
    strict = _airflow_schema("provider.yaml.schema.json")
    validator = jsonschema.Draft7Validator(strict["properties"]["connection-types"])
    errors = [e.message for e in validator.iter_errors(info["connection-types"])]
    assert errors == []


def test_package_name_is_the_canonical_dist_name(info: dict[str, Any]) -> None:
    dist = distribution(DIST_NAME)
    assert info["package-name"] == canonicalize_name(dist.metadata["Name"])
    assert info["versions"][0] == dist.version


def test_entry_point_is_registered() -> None:
    eps = [ep for ep in distribution(DIST_NAME).entry_points if ep.group == ENTRY_POINT_GROUP]
    assert [ep.value for ep in eps] == [ENTRY_POINT_VALUE]
    assert eps[0].load() is get_provider_info


def _listed_modules(info: dict[str, Any]) -> list[str]:
    return [
        m for section in MODULE_SECTIONS for entry in info.get(section, []) for m in entry["python-modules"]
    ]


def _listed_classes(info: dict[str, Any]) -> list[str]:
    return [c["hook-class-name"] for c in info["connection-types"]] + list(info.get("extra-links", []))


def _import_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("module", _listed_modules(get_provider_info()))
def test_listed_module_is_importable(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize("class_path", _listed_classes(get_provider_info()))
def test_listed_class_is_importable(class_path: str) -> None:
    assert isinstance(_import_class(class_path), type)


def test_hook_class_matches_its_connection_type(info: dict[str, Any]) -> None:
    conn_type = _connection_type(info)
    hook_cls = _import_class(conn_type["hook-class-name"])
    assert hook_cls.conn_type == conn_type["connection-type"]
    assert hook_cls.hook_name == conn_type["hook-name"]
    assert f"{hook_cls.__module__}" in _listed_modules(info)


def test_extra_links_are_operator_links(info: dict[str, Any]) -> None:
    from airflow.providers.common.compat.sdk import BaseOperatorLink

    assert info["extra-links"], "no extra link listed"
    for path in info["extra-links"]:
        assert issubclass(_import_class(path), BaseOperatorLink), path


def test_conn_field_defaults_match_their_schema_and_the_hook(info: dict[str, Any]) -> None:
    """The form's defaults are valid and equal what the hook uses when the extra is absent."""
    from airflow_provider_bolna.hooks.bolna import BolnaSettings

    defaults = BolnaSettings(api_key=SecretStr("k"))
    for name, field in _connection_type(info)["conn-fields"].items():
        schema = {k: v for k, v in field["schema"].items() if k != "format"}
        jsonschema.validate(field["schema"]["default"], schema)
        assert getattr(defaults, name) == field["schema"]["default"], name


#: A value for each conn-field different from its default, and what the settings should hold.
CONN_FIELD_VALUES = {
    "timeout": (7, 7.0),
    "max_retries": (2, 2),
    "max_retry_seconds": (9.5, 9.5),
    "allow_insecure_http": (True, True),
    "requests_per_minute": (60, 60.0),
    "agent_requests_per_minute": (30, 30.0),
    "late_commit_grace": (4, 4.0),
    "dashboard_url": ("https://dash.example/", "https://dash.example"),
}


def test_every_conn_field_is_read_by_the_hook(info: dict[str, Any]) -> None:
    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_bolna.hooks.bolna import BolnaSettings

    fields = _connection_type(info)["conn-fields"]
    assert set(fields) == set(CONN_FIELD_VALUES)
    extra = {name: raw for name, (raw, _) in CONN_FIELD_VALUES.items()}
    conn = Connection(conn_id="c", conn_type="bolna", password="dummy-key", extra=json.dumps(extra))
    settings = BolnaSettings.from_connection(conn)
    for name, (_, expected) in CONN_FIELD_VALUES.items():
        assert getattr(settings, name) == expected, name


def test_module_imports_no_airflow() -> None:
    """Discovery imports this module while Airflow starts: it must not import Airflow itself."""
    code = (
        "import airflow_provider_bolna.get_provider_info, sys; "
        "print(any(m.startswith('airflow.') or m == 'airflow' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_airflow_providers_list_shows_the_provider(airflow_cli: Any) -> None:
    out = airflow_cli.run("providers", "list", "--output", "json").stdout
    listing, _ = json.JSONDecoder().raw_decode(out, out.index("[{"))  # log lines may surround it
    providers = {p["package_name"]: p for p in listing}
    assert DIST_NAME in providers
    assert providers[DIST_NAME]["version"] == distribution(DIST_NAME).version
