"""The commands on a reference store that does not exist yet: only ``apply`` creates it.

``plan``, ``drift``, ``validate`` and ``import`` leave no file and no directory behind; the
reading commands say, on stderr, where ``apply`` will create the store, so a mistyped
``path:`` shows before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli

LISTS = """\
lists:
  - name: News
    segments:
      - name: Gmail
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
"""


def write_config(root: Path, path: str | None) -> Path:
    setting = "" if path is None else f"    path: {path}\n"
    config = root / "reconciler.yaml"
    config.write_text(
        f"version: 1\ntargets:\n  local:\n    provider: reference\n{setting}{LISTS}",
        encoding="utf-8",
    )
    return config


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config), "--no-color", *args])


def entries(root: Path) -> list[str]:
    """Every file and directory under ``root`` but the test's HOME."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*") if path.parts[-1] != "home"
    )


def note(path: str, root: Path) -> str:
    return (
        f"local: the reference store {path!r} does not exist yet (at {root / path}); "
        "reading it as empty, and apply will create it there"
    )


READING_COMMANDS = {
    "plan": ("plan",),
    "plan --detailed-exitcode": ("plan", "--detailed-exitcode"),
    "drift": ("drift",),
    "drift json": ("drift", "--format", "json"),
    "import": ("import", "--target", "local"),
}


@pytest.mark.parametrize(
    "path", ["state.db", "data/state.db", None], ids=["file", "dir", "default"]
)
@pytest.mark.parametrize(
    "command", list(READING_COMMANDS.values()), ids=list(READING_COMMANDS.keys())
)
def test_reading_a_missing_store_creates_nothing_and_says_where(
    tmp_path: Path, path: str | None, command: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, path)

    result = run(config, *command)

    assert result.exit_code in (0, 2), result.output
    assert entries(tmp_path) == ["reconciler.yaml"]
    assert note(path or ".reconciler/state.db", tmp_path) in result.stderr


def test_plan_of_a_missing_store_plans_everything_as_new(tmp_path: Path) -> None:
    result = run(write_config(tmp_path, "stat.db"), "plan", "--detailed-exitcode")

    assert result.exit_code == 2, result.output
    assert "Plan: 2 to create" in result.stdout
    assert "'stat.db' does not exist yet" in result.stderr


def test_import_of_a_missing_store_writes_no_lists(tmp_path: Path) -> None:
    result = run(write_config(tmp_path, "state.db"), "import", "--target", "local")

    assert result.exit_code == 0, result.output
    assert "Gmail" not in result.stdout
    assert entries(tmp_path) == ["reconciler.yaml"]


def test_validate_opens_no_store(tmp_path: Path) -> None:
    result = run(write_config(tmp_path, "data/state.db"), "validate")

    assert result.exit_code == 0, result.output
    assert entries(tmp_path) == ["reconciler.yaml"]
    assert "does not exist" not in result.stderr


def test_apply_creates_the_store_and_the_next_plan_reads_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, "data/state.db")

    applied = run(config, "apply", "--auto-approve")
    planned = run(config, "plan", "--detailed-exitcode")

    assert applied.exit_code == 0, applied.output
    assert (tmp_path / "data" / "state.db").is_file()
    assert planned.exit_code == 0, planned.output
    assert note("data/state.db", tmp_path) in applied.stderr  # its plan, before it wrote
    assert "does not exist" not in planned.stderr


def test_quiet_plan_of_a_missing_store_says_nothing(tmp_path: Path) -> None:
    result = run(write_config(tmp_path, "state.db"), "plan", "-q")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert entries(tmp_path) == ["reconciler.yaml"]
