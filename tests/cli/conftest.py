"""CLI end-to-end fixtures: a project directory with a reference backend in tmp_path."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli

HEADER = """\
version: 1
targets:
  local:
    provider: reference
    path: state.db
"""


@dataclass
class Project:
    """A directory holding reconciler.yaml; ``run`` invokes the CLI inside it."""

    root: Path
    runner: CliRunner

    def write(self, body: str, name: str = "reconciler.yaml", header: bool = True) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((HEADER if header else "") + textwrap.dedent(body))
        return path

    def run(self, *args: str, config: str = "reconciler.yaml") -> Result:
        return self.runner.invoke(cli, ["-c", str(self.root / config), "--no-color", *args])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, CliRunner())


def segments_yaml(*names: str, rule: str = '{field: email, op: contains, value: "@x.com"}') -> str:
    return "".join(f"      - name: {n}\n        rules:\n          - {rule}\n" for n in names)
