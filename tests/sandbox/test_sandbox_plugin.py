"""The pytest11 plugin: only ``bolna_``-prefixed fixtures, knobs per test by marker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PLUGIN_FIXTURES = {"bolna_sandbox", "bolna_sandbox_clean", "bolna_sandbox_factory"}


def test_plugin_registers_only_prefixed_fixtures(tmp_path: Path) -> None:
    """Where the package is merely installed (a project of its own), the plugin adds its three
    ``bolna_`` fixtures and nothing else: ``sandbox`` stays free for the project's own use."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--confcutdir",
            str(tmp_path),
            "--fixtures",
            "-v",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    fixtures = {
        line.split()[0]: line.rsplit(" -- ", 1)[1]
        for line in listing.splitlines()
        if " -- " in line and not line.startswith(" ")
    }
    assert {
        name
        for name, where in fixtures.items()
        if "pytest_plugin.py:" in where and "airflow_provider_bolna" in where
    } == PLUGIN_FIXTURES
    assert "sandbox" not in fixtures


@pytest.mark.bolna_sandbox_knobs(unique_names=False, inbound_setup_response="agent")
def test_knobs_marker(bolna_sandbox_clean: Any) -> None:
    config = bolna_sandbox_clean.admin.config()
    assert config["unique_names"] is False and config["inbound_setup_response"] == "agent"


def test_knobs_are_back_to_defaults_after_a_marked_test(bolna_sandbox_clean: Any) -> None:
    config = bolna_sandbox_clean.admin.config()
    assert config["unique_names"] is True and config["inbound_setup_response"] == "message"


@pytest.mark.bolna_sandbox_knobs(unique_namez=False)
def test_a_misspelt_knob_fails_the_set_up(request: pytest.FixtureRequest) -> None:
    with pytest.raises(TypeError, match="unique_namez"):
        request.getfixturevalue("bolna_sandbox_clean")


def test_sandbox_is_an_alias_of_the_clean_fixture(
    sandbox: Any, bolna_sandbox_clean: Any, bolna_sandbox: Any
) -> None:
    assert sandbox is bolna_sandbox_clean is bolna_sandbox


def test_factory_takes_knobs(bolna_sandbox_factory: Any) -> None:
    server = bolna_sandbox_factory(
        unique_numbers=False, agent_rate_limit_per_min=0, phone_numbers_all_includes_sip=True
    )
    config = server.admin.config()
    assert (
        config["unique_numbers"],
        config["agent_rate_limit_per_min"],
        config["phone_numbers_all_includes_sip"],
    ) == (False, 0.0, True)
