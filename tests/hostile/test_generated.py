"""Every generated malformed configuration (tests/hostile/malformed.py), through ``validate``,
``plan`` and ``apply``: exit 1, one located error line, no traceback, nothing written, and
within 10 s and 500 MB each."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.registry import Registry, load_registry
from tests.hostile.malformed import CASES, OK, ROOT, Case

COMMANDS = (["validate"], ["plan", "-o", "plan.json"], ["apply", "--auto-approve"])
MAX_SECONDS = 10.0
MAX_BYTES = 500 * 1024 * 1024
TRACED = frozenset({"files", "limits", "scalars"})
"""The categories whose inputs are large (up to 16 MiB, 30,000 levels, 1 MB aliased): their
peak memory is measured with tracemalloc, which slows the rest of the table threefold."""


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The installed providers, looked up once: scanning entry points is most of a run."""
    return load_registry()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference store holding the list and segment of ``OK``: any write would show."""
    directory = tmp_path_factory.mktemp("store")
    (directory / ROOT).write_text(OK)
    result = CliRunner().invoke(cli, ["apply", "--auto-approve", "-c", str(directory / ROOT)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(directory / "state.db") as db:
        assert db.execute("select count(*) from segments").fetchone() == (1,)
    return directory / "state.db"


def _project(tmp_path: Path, case: Case, store: Path) -> Path:
    project = tmp_path / "project"
    (project / ".reconciler").mkdir(parents=True)
    shutil.copyfile(store, project / "state.db")  # the case's target
    shutil.copyfile(store, project / ".reconciler" / "state.db")  # the default target
    for name, text in case.files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name, data in case.raw.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for name, target in case.links.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.symlink_to(target)
    for name in case.fifos:
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
    return project


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root`` (links not followed): mode, size and modification time."""
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            found[os.path.relpath(path, root)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def _where(case: Case) -> str:
    if case.line is None:
        return f"Error: {case.file}: "
    return f"Error: {case.file}:{case.line}:"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_configuration_fails_cleanly_in_every_command(
    case: Case, store: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, case, store)
    monkeypatch.chdir(project)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    before = _snapshot(tmp_path)
    traced = case.category in TRACED
    for command in COMMANDS:
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            state = State(registry=registry)
            result = CliRunner().invoke(cli, [*command, "-c", ROOT], obj=state)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert isinstance(result.exception, SystemExit), result.exception  # no crash
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(_where(case)), lines[0]
        assert case.expected in lines[0], lines[0]
        for text in case.absent:
            assert text not in result.output
        assert _snapshot(tmp_path) == before, command
        assert elapsed < MAX_SECONDS, (command, elapsed)
        assert peak < MAX_BYTES, (command, peak)


def test_the_generated_table_covers_every_category_with_300_cases() -> None:
    assert len(CASES) >= 300
    assert len({case.id for case in CASES}) == len(CASES)
    per_category = Counter(case.category for case in CASES)
    assert set(per_category) == {
        "syntax",
        "structure",
        "scalars",
        "schema",
        "unknown-keys",
        "numbers",
        "rules",
        "references",
        "targets",
        "environment",
        "includes",
        "files",
        "limits",
    }
    assert min(per_category.values()) >= 5, per_category
