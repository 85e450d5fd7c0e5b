"""Shell completion: --target and --list values come from the configuration, offline, in
bounded time, and a broken configuration completes nothing without a word."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete

from reconciler.cli import cli
from reconciler.completion import Names, config_names
from reconciler.model import Config

CONFIG = """\
version: 1
targets:
  local: {provider: reference, path: state.db}
  news:
    provider: campaignmonitor
    api_key: ${UNSET_IN_TESTS_KEY}
    client_id: ${UNSET_IN_TESTS_CLIENT}
defaults: {target: local}
include: [lists/*.yaml]
lists:
  - name: Newsletter
    segments: []
  - name: Weekly
    target: news
    segments: []
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "vip.yaml").write_text("lists:\n  - name: VIP\n    target: news\n")
    path = tmp_path / "reconciler.yaml"
    path.write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return path


def _complete(args: list[str], incomplete: str) -> list[str]:
    completer = ShellComplete(cli, {}, "reconciler", "_RECONCILER_COMPLETE")
    return [item.value for item in completer.get_completions(args, incomplete)]


def test_target_completes_from_the_configuration_in_the_working_directory(config: Path) -> None:
    assert _complete(["plan", "--target"], "") == ["local", "news"]
    assert _complete(["plan", "--target"], "n") == ["news"]
    assert _complete(["--target"], "lo") == ["local"]  # before the command, too


def test_list_completes_every_list_including_included_files(config: Path) -> None:
    assert _complete(["drift", "--list"], "") == ["Newsletter", "Weekly", "VIP"]
    assert _complete(["drift", "--list"], "V") == ["VIP"]


def test_list_completes_only_lists_of_the_targets_given_before(config: Path) -> None:
    assert _complete(["plan", "--target", "news", "--list"], "") == ["Weekly", "VIP"]


def test_the_config_named_by_c_is_read(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "other.yaml").write_text(
        "version: 1\ntargets:\n  shop: {provider: reference, path: s.db}\n"
        "lists:\n  - name: Orders\n    segments: []\n"
    )
    monkeypatch.chdir(other)
    assert _complete(["-c", "other.yaml", "plan", "--target"], "") == ["shop"]
    assert _complete(["plan", "-c", "other.yaml", "--list"], "") == ["Orders"]


@pytest.mark.parametrize(
    "text",
    ["version: 1\nlists: [\n", "version: 2\n", "\x00", "targets: 3\n"],
    ids=["bad-yaml", "bad-version", "nul", "bad-schema"],
)
def test_a_broken_configuration_completes_nothing_silently(
    config: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(text)
    assert _complete(["plan", "--target"], "") == []
    assert _complete(["plan", "--list"], "") == []
    assert capsys.readouterr() == ("", "")


def test_no_configuration_completes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _complete(["plan", "--target"], "") == []


def test_completion_waits_a_bounded_time() -> None:
    release = threading.Event()

    def stuck(path: Path) -> Config:
        release.wait()
        raise OSError("a file system that never answers")

    try:
        assert config_names(Path("reconciler.yaml"), timeout=0.01, load=stuck) == Names()
    finally:
        release.set()


def test_the_default_target_is_completed_when_none_is_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "reconciler.yaml").write_text("version: 1\nlists:\n  - name: News\n")
    monkeypatch.chdir(tmp_path)
    assert _complete(["plan", "--target"], "") == ["local"]
    assert _complete(["plan", "--list"], "") == ["News"]
