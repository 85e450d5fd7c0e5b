"""The README documents every command and option, and its quickstart is what CI runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.registry import load_registry
from reconciler.render import render_operator_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI_SCRIPT = (ROOT / ".ci" / "run").read_text(encoding="utf-8")

COMMANDS = sorted(cli.commands)


def _long_options(command: click.Command) -> list[str]:
    return sorted(
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    )


OPTIONS = sorted(
    {(name, opt) for name in COMMANDS for opt in _long_options(cli.commands[name])}
    | {("", opt) for opt in _long_options(cli)}
)


def _section(title: str) -> str:
    """The README text under the level-2 heading ``title``, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f'README has no "## {title}" section'
    return match.group(1)


def _fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def _quickstart_commands() -> list[str]:
    blocks = _fenced_blocks(_section("Quickstart"), "sh")
    assert blocks, "the Quickstart section has no ```sh block"
    return [line for line in blocks[0].splitlines() if line and not line.startswith("#")]


def _ci_commands() -> list[str]:
    """.ci/run's commands, with pip's --quiet dropped (it changes nothing but output)."""
    return [
        " ".join(word for word in shlex.split(line) if word != "--quiet")
        for line in CI_SCRIPT.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _steps(command: str) -> list[str]:
    """One ``&&`` chain as its steps, each without the ``.venv/bin/`` prefix."""
    return [
        " ".join(shlex.split(step.strip().removeprefix(".venv/bin/")))
        for step in command.split("&&")
    ]


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_text(name: str) -> None:
    assert (cli.commands[name].help or "").strip(), f"{name} has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_readme(name: str) -> None:
    assert f"reconciler {name}" in README


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_option_is_in_readme(name: str, option: str) -> None:
    where = f"reconciler {name}".strip()
    assert re.search(rf"{re.escape(option)}(?![\w-])", README), f"{where}: {option} undocumented"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_runs(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], prog_name="reconciler")
    assert result.exit_code == 0, result.output
    assert f"reconciler {name}" in result.output


def test_quickstart_is_exactly_two_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    install_and_run, install_and_test = commands
    assert install_and_run.startswith("python3 -m venv .venv && ")
    assert install_and_test.startswith("python3 -m venv .venv && ")
    assert "examples/quickstart/reconciler.yaml plan" in install_and_run
    assert install_and_run.endswith("apply --auto-approve")


def test_quickstart_test_command_is_what_ci_runs() -> None:
    steps = _steps(_quickstart_commands()[1])
    assert steps[1:] == ["pip install -e .[test]", "python -m pytest -q"], steps
    ci = _ci_commands()
    assert "pip install -e .[test]" in ci
    assert "python -m pytest -q" in ci


def test_quickstart_plan_and_apply_are_what_ci_runs() -> None:
    steps = _steps(_quickstart_commands()[0])
    runs = [step for step in steps if step.startswith("reconciler ")]
    assert [step.split()[-1] for step in runs] == ["plan", "--auto-approve"], runs
    ci = _ci_commands()
    for step in runs:
        assert step in ci, f"{step!r} is not in .ci/run"


def _configurations() -> list[str]:
    return [block for block in _fenced_blocks(README, "yaml") if block.startswith("version: 1")]


def test_readme_has_a_complete_configuration() -> None:
    assert _configurations()


@pytest.mark.parametrize("text", _configurations())
def test_readme_configuration_validates_and_plans(text: str, tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "more.yaml").write_text("lists: []\n", encoding="utf-8")
    for command in ("validate", "plan"):
        result = CliRunner().invoke(cli, ["-c", str(tmp_path / "reconciler.yaml"), command])
        assert result.exit_code == 0, result.output


def test_exit_codes_are_documented() -> None:
    text = _section("Exit codes")
    for code in ("0", "1", "2", "3"):
        assert re.search(rf"^\| \*\*{code}\*\* \|", text, re.M), f"exit code {code} missing"


def test_readme_names_no_local_paths() -> None:
    for marker in ("/tmp/", "/work/", "/home/", "/root/"):
        assert marker not in README


@pytest.mark.parametrize("key", sorted(load_registry()))
def test_readme_carries_each_providers_operator_table(key: str) -> None:
    """The tables under "Providers" are what the code stores: regenerate them with
    ``reconciler providers --format markdown`` when capabilities change."""
    provider = load_registry()[key]
    assert render_operator_table(provider.capabilities) in _section("Providers"), key
