"""Every malformed configuration: exit 1, one line with file and line, no traceback, and
nothing written, through each command that reads the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.cli.malformed_cases import ENVIRON, ERROR_FILE, MALFORMED, MalformedCase


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    "command", [["validate"], ["plan", "-o", "plan.json"], ["apply", "--auto-approve"]]
)
@pytest.mark.parametrize("case", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_config_is_one_located_line(
    case: MalformedCase, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, files, expected, line = case
    _write(tmp_path, files)
    for key, value in ENVIRON.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(cli, [*command, "-c", "reconciler.yaml"])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    error_file = ERROR_FILE.get(name, next(iter(files)))
    assert lines[0].startswith(f"Error: {error_file}:{line}:"), lines[0]
    assert expected in lines[0]
    for secret in ENVIRON.values():
        assert secret not in result.stderr
    assert _snapshot(tmp_path) == before


def test_the_table_has_at_least_twenty_cases() -> None:
    assert len({case[0] for case in MALFORMED}) >= 20
