"""schema, providers and --version: the commands that need no configuration."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from reconciler import __version__
from reconciler.cli import cli


def test_schema_is_the_json_schema_of_the_yaml() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"version", "targets", "defaults", "include", "lists"} <= set(schema["properties"])
    assert schema["required"] == ["version"]


def test_providers_text_lists_each_provider_and_its_operators() -> None:
    result = CliRunner().invoke(cli, ["providers"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    for key in ("campaignmonitor", "mailwizz", "mautic", "reference"):
        assert key in lines
    assert "  shape: tree" in lines
    assert any(line.startswith("    text: contains, empty") for line in lines)
    assert "None" not in result.stdout and "True" not in result.stdout


def test_providers_json_describes_capabilities() -> None:
    result = CliRunner().invoke(cli, ["providers", "--format", "json"])
    assert result.exit_code == 0
    found = json.loads(result.stdout)
    assert found["reference"]["shape"] == "tree"
    assert found["campaignmonitor"]["shape"] == "cnf"
    assert "add_rule_group" in found["campaignmonitor"]["changes"]


def test_version_and_python_dash_m() -> None:
    assert __version__ in CliRunner().invoke(cli, ["--version"]).stdout
    ran = subprocess.run(
        [sys.executable, "-m", "reconciler", "--help"], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0 and "Exit codes" in ran.stdout
