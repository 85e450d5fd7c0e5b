"""Includes stay inside the configuration, only regular files are read, and nothing of a
file that is not a configuration file is ever repeated (issue 11, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import config as config_module
from reconciler.config import load_config
from reconciler.errors import ConfigError

SHADOW = "root:$6$kDx9.hashed.password.value:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
KEYS = "password: hunter2-secret\napi_token: tok-123-secret\n"
LISTS = "lists:\n  - name: {name}\n    segments: []\n"


def _errors(root: Path) -> list[str]:
    try:
        load_config(root, {})
    except ConfigError as exc:
        return exc.lines()
    return []


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/conf`` holds the configuration; ``tmp_path/outside`` is elsewhere."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "shadow").write_text(SHADOW)
    (tmp_path / "outside" / "keys.yaml").write_text(KEYS)
    monkeypatch.chdir(tmp_path / "conf")
    return tmp_path / "conf"


def _root(project: Path, *patterns: str) -> Path:
    quoted = ", ".join(f"'{p}'" for p in patterns)
    (project / "reconciler.yaml").write_text(f"version: 1\ninclude: [{quoted}]\n")
    return Path("reconciler.yaml")


def _assert_nothing_quoted(lines: list[str]) -> None:
    text = "\n".join(lines)
    for secret in ("hashed.password", "hunter2", "tok-123", "daemon", "password", "api_token"):
        assert secret not in text


def test_an_absolute_include_is_refused_naming_the_pattern(project: Path) -> None:
    target = str(project.parent / "outside" / "shadow")
    lines = _errors(_root(project, target))
    assert lines == [
        f'reconciler.yaml:2:11: include "{target}" is an absolute path; include takes paths '
        "relative to the root file's directory"
    ]
    _assert_nothing_quoted(lines)


@pytest.mark.parametrize(
    "pattern", ["../outside/keys.yaml", "../outside/*", "lists/../../outside/keys.yaml", ".."]
)
def test_an_include_using_dotdot_is_refused(project: Path, pattern: str) -> None:
    lines = _errors(_root(project, pattern))
    assert lines == [
        f'reconciler.yaml:2:11: include "{pattern}" uses ".."; include takes only files '
        "inside the root file's directory"
    ]


def test_a_symbolic_link_to_a_file_outside_is_refused_and_never_read(project: Path) -> None:
    (project / "lists").mkdir()
    (project / "lists" / "a.yaml").write_text(LISTS.format(name="A"))
    (project / "lists" / "b.yaml").symlink_to(project.parent / "outside" / "keys.yaml")
    lines = _errors(_root(project, "lists/*.yaml"))
    assert lines == [
        'reconciler.yaml:2:11: include "lists/*.yaml" matches lists/b.yaml, which resolves '
        "outside the configuration's directory (a symbolic link?)"
    ]
    _assert_nothing_quoted(lines)


def test_a_symbolic_link_to_a_directory_outside_is_refused(project: Path) -> None:
    (project / "shared").symlink_to(project.parent / "outside", target_is_directory=True)
    lines = _errors(_root(project, "shared/*"))
    assert len(lines) == 2  # shadow and keys.yaml, each named, neither read
    assert all("resolves outside the configuration's directory" in line for line in lines)
    _assert_nothing_quoted(lines)


def test_a_symbolic_link_inside_the_configuration_is_followed(project: Path) -> None:
    (project / "shared").mkdir()
    (project / "shared" / "a.yaml").write_text(LISTS.format(name="Shared"))
    (project / "lists").mkdir()
    (project / "lists" / "current.yaml").symlink_to(project / "shared" / "a.yaml")
    config = load_config(_root(project, "lists/*.yaml"), {})
    assert [item.name for item in config.lists] == ["Shared"]


def test_a_glob_from_the_file_system_root_walks_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned: list[object] = []
    real_scandir = os.scandir

    def counting(path: object = ".") -> object:
        scanned.append(path)
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(config_module.os, "scandir", counting)
    lines = _errors(_root(project, "/**/*.yaml"))
    assert lines == [
        'reconciler.yaml:2:11: include "/**/*.yaml" is an absolute path; include takes paths '
        "relative to the root file's directory"
    ]
    assert scanned == []


def test_double_star_never_enters_a_symbolic_link_to_a_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "lists" / "deep").mkdir(parents=True)
    (project / "lists" / "deep" / "a.yaml").write_text(LISTS.format(name="Deep"))
    for name in ("loop1", "loop2"):  # two links back up: 2**depth paths if followed
        (project / "lists" / name).symlink_to(project, target_is_directory=True)
    scanned: list[object] = []
    real_scandir = os.scandir

    def counting(path: object = ".") -> object:
        scanned.append(path)
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(config_module.os, "scandir", counting)
    config = load_config(_root(project, "**/*.yaml"), {})
    assert [item.name for item in config.lists] == ["Deep"]
    assert {str(path) for path in scanned} == {".", "lists", "lists/deep"}  # not the links


def test_a_file_that_is_not_a_configuration_is_one_error_quoting_nothing(project: Path) -> None:
    (project / "lists").mkdir()
    (project / "lists" / "keys.yaml").write_text(KEYS)
    (project / "lists" / "shadow.yaml").write_text(SHADOW)
    lines = _errors(_root(project, "lists/*.yaml"))
    assert lines == [
        "lists/keys.yaml:1:1: an included file must be a mapping holding lists: "
        '(it has no "lists")',
        # its lines end in ":::", so YAML reads it as a mapping: a key per line, each
        # holding a password hash, once echoed as "unknown key"
        "lists/shadow.yaml:1:1: an included file must be a mapping holding lists: "
        '(it has no "lists")',
    ]
    _assert_nothing_quoted(lines)


def test_a_configuration_file_with_an_extra_key_keeps_its_hint(project: Path) -> None:
    (project / "lists").mkdir()
    (project / "lists" / "a.yaml").write_text(LISTS.format(name="A") + "targets: {}\n")
    lines = _errors(_root(project, "lists/*.yaml"))
    assert lines == [
        'lists/a.yaml:4:1: unknown key "targets" (an included file holds only "lists")'
    ]


def test_an_included_fifo_is_refused_without_blocking(project: Path) -> None:
    (project / "lists").mkdir()
    os.mkfifo(project / "lists" / "pipe.yaml")  # no writer: reading it would block forever
    lines = _errors(_root(project, "lists/pipe.yaml"))
    assert lines == [
        "lists/pipe.yaml: cannot read file: it is a FIFO (named pipe), not a regular file"
    ]


def test_an_included_file_over_the_size_limit_is_refused(project: Path) -> None:
    (project / "lists").mkdir()
    with open(project / "lists" / "big.yaml", "wb") as handle:
        handle.truncate(16 * 1024 * 1024 + 1)  # sparse: nothing is actually written
    lines = _errors(_root(project, "lists/big.yaml"))
    assert lines == [
        "lists/big.yaml: the file is larger than 16 MiB, the limit for a configuration file"
    ]


def test_a_file_of_exactly_the_size_limit_is_read(project: Path) -> None:
    text = "version: 1\nlists: []\n"
    padding = 16 * 1024 * 1024 - len(text)
    (project / "reconciler.yaml").write_text(text + "#" * (padding - 1) + "\n")
    assert load_config(Path("reconciler.yaml"), {}).lists == ()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: os.mkfifo(path), "it is a FIFO (named pipe), not a regular file"),
        (lambda path: path.symlink_to("/dev/zero"), "it is a character device"),
    ],
    ids=["fifo", "dev-zero"],
)
def test_a_root_file_that_is_not_regular_is_refused_before_reading(
    tmp_path: Path, make: object, message: str
) -> None:
    """In a child process with a timeout: reading would block (FIFO) or never end."""
    root = tmp_path / "reconciler.yaml"
    make(root)  # type: ignore[operator]
    child = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-c", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert child.returncode == 1, child.stderr
    assert child.stderr.startswith(f"Error: reconciler.yaml: cannot read file: {message}")
    assert "Traceback" not in child.stderr


def test_wildcards_match_hidden_names_only_when_asked(project: Path) -> None:
    (project / "lists").mkdir()
    (project / "lists" / "a.yaml").write_text(LISTS.format(name="A"))
    (project / "lists" / ".draft.yaml").write_text(LISTS.format(name="Draft"))
    assert [item.name for item in load_config(_root(project, "lists/*.yaml"), {}).lists] == ["A"]
    config = load_config(_root(project, "lists/.*.yaml"), {})
    assert [item.name for item in config.lists] == ["Draft"]


def test_a_root_file_that_is_not_a_configuration_is_one_error_quoting_nothing(
    project: Path,
) -> None:
    (project / "reconciler.yaml").write_text(SHADOW)
    lines = _errors(Path("reconciler.yaml"))
    assert lines == [
        "reconciler.yaml:1:1: this is not a configuration file: it has none of the keys "
        "version, targets, defaults, include, tests, lists"
    ]
    _assert_nothing_quoted(lines)
