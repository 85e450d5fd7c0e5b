"""Tests files as untrusted input: found by glob like includes, bounded, every problem one
located line, never a traceback."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from reconciler import segment_tests
from reconciler.config import load_config, segment_test_files
from reconciler.errors import ConfigError
from reconciler.registry import load_registry
from reconciler.segment_tests import check_tests, load_sample, load_suite
from reconciler.validation import validate_config

ROOT = """\
version: 1
targets:
  a: {provider: reference, path: a.db}
  b: {provider: reference, path: b.db}
defaults: {target: a}
tests: [tests/*.yaml]
lists:
  - name: Newsletter
    fields: [{name: Score, type: number}]
    segments:
      - {name: High, rules: [{field: Score, op: gt, value: 5}]}
  - {name: Shared, segments: [{name: S, rules: [{field: email, op: not_empty}]}]}
  - {name: Shared, target: b, segments: [{name: S, rules: [{field: email, op: empty}]}]}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reconciler.yaml").write_text(ROOT)
    (tmp_path / "tests").mkdir()
    return tmp_path


def _write(project: Path, text: str, name: str = "tests/t.yaml") -> None:
    (project / name).write_text(textwrap.dedent(text))


def _problems() -> list[str]:
    return [str(error) for error in check_tests(load_config("reconciler.yaml", {}))]


def test_a_valid_file_loads_its_subscribers_and_expectations(project: Path) -> None:
    _write(
        project,
        """\
        now: 2025-06-01
        subscribers:
          - {list: Newsletter, email: "${HOME}@x.org", fields: {Score: 7}}
          - {list: Shared, target: b, email: ann@x.org}
        expect:
          - {list: Newsletter, segment: High, members: ["${HOME}@X.org"]}
        """,
    )
    suite = load_suite(load_config("reconciler.yaml", {}))
    (found,) = suite.files
    assert found.file == os.path.join("tests", "t.yaml")
    assert [(s.email, s.target) for s in found.subscribers] == [
        ("${HOME}@x.org", "a"),  # data: no ${VAR} expansion
        ("ann@x.org", "b"),
    ]
    (expectation,) = found.expectations
    assert (expectation.where, expectation.members) == (
        os.path.join("tests", "t.yaml") + ":6:5",
        ("${HOME}@x.org",),
    )
    assert suite.sample().of_list("b", "Shared")[0][0].email == "ann@x.org"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["tests/t.yaml:1:1: a tests file is a mapping with now:, subscribers: and expect:"]),
        (
            "- a\n",
            ["tests/t.yaml:1:1: a tests file is a mapping with now:, subscribers: and expect:"],
        ),
        ("subscribers: []\n", ['tests/t.yaml:1:1: missing required key "now"']),
        (
            "now: 2025-06-01\nsubscriber: []\n",
            ['tests/t.yaml:2:1: unknown key "subscriber" (did you mean "subscribers"?)'],
        ),
        (
            "now: 2025-06-31\n",
            ['tests/t.yaml:1:1: now "2025-06-31" is not an ISO date (YYYY-MM-DD)'],
        ),
        ("now: [\n", ["tests/t.yaml:2:1: invalid YAML: did not find expected node content"]),
        (
            "now: 2025-06-01\nsubscribers:\n  - {list: Shared, email: a@x.org}\n",
            ['tests/t.yaml:3:6: list "Shared" is declared in targets a, b: say which with target:'],
        ),
        (
            "now: 2025-06-01\nsubscribers:\n  - {list: Shared, target: c, email: a@x.org}\n",
            ['tests/t.yaml:3:20: unknown target "c" (targets: a, b)'],
        ),
        (
            "now: 2025-06-01\nsubscribers:\n  - {list: Newsletter, target: b, email: a@x.org}\n",
            ['tests/t.yaml:3:6: unknown list "Newsletter" in target "b"'],
        ),
        (
            "now: 2025-06-01\nsubscribers:\n  - {list: Nope, email: a@x.org}\n",
            ['tests/t.yaml:3:6: unknown list "Nope" (lists: Newsletter, Shared)'],
        ),
        (
            "now: 2025-06-01\nsubscribers:\n  - {list: Newsletter, email: a@x.org}\n"
            "  - {list: Newsletter, email: A@x.org}\n",
            [
                'tests/t.yaml:4:24: subscriber "A@x.org" of list "Newsletter" is already given'
                " (subscribers[0])"
            ],
        ),
        (
            "now: 2025-06-01\nsubscribers:\n  - {list: Newsletter, email: 5}\n",
            ['tests/t.yaml:3:24: "email" must be text, not an integer'],
        ),
        (
            "now: 2025-06-01\nexpect:\n  - {list: Newsletter, segment: High, members: [a@x.org]}\n",
            [
                'tests/t.yaml:3:49: "a@x.org" is not a sample subscriber of list "Newsletter"'
                " in this file"
            ],
        ),
    ],
)
def test_every_problem_is_one_located_line(project: Path, text: str, expected: list[str]) -> None:
    _write(project, text)
    found = _problems()
    assert [line[: len(prefix)] for line, prefix in zip(found, expected, strict=True)] == [
        prefix.replace("tests/t.yaml", os.path.join("tests", "t.yaml")) for prefix in expected
    ]


def test_not_utf8_is_located(project: Path) -> None:
    (project / "tests" / "t.yaml").write_bytes(b"now: 2025-06-01\nx: \xff\n")
    assert _problems() == [
        "tests/t.yaml:2:4: not UTF-8 text: byte 20 of the file cannot be decoded".replace(
            "tests/t.yaml", os.path.join("tests", "t.yaml")
        )
    ]


def test_an_alias_bomb_and_deep_nesting_are_refused(project: Path) -> None:
    bomb = "now: 2025-06-01\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    _write(project, bomb)
    assert "aliases expand to too much data" in _problems()[0]
    _write(project, "now: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested more than 100 levels deep" in _problems()[0]


def test_a_fifo_is_refused_before_it_is_opened(project: Path) -> None:
    os.mkfifo(project / "tests" / "pipe.yaml")
    assert _problems() == [
        os.path.join("tests", "pipe.yaml")
        + ": cannot read file: it is a FIFO (named pipe), not a regular file"
    ]


def test_subscribers_are_bounded_per_file_and_in_all(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_tests, "MAX_SUBSCRIBERS", 2)
    monkeypatch.setattr(segment_tests, "MAX_SAMPLE", 3)
    three = "".join(f"  - {{list: Newsletter, email: {n}@x.org}}\n" for n in "abc")
    _write(project, "now: 2025-06-01\nsubscribers:\n" + three)
    assert _problems() == [
        os.path.join("tests", "t.yaml") + ":2:1: 3 subscribers: a tests file holds at most 2; "
        "split it into several files"
    ]
    two = "".join(f"  - {{list: Newsletter, email: {n}@x.org}}\n" for n in "ab")
    _write(project, "now: 2025-06-01\nsubscribers:\n" + two, "tests/t.yaml")
    _write(project, "now: 2025-06-01\nsubscribers:\n" + two, "tests/u.yaml")
    assert _problems() == [
        os.path.join("tests", "u.yaml") + ":2:1: 2 more subscribers: all tests files together "
        "hold at most 3 (2 before this file)"
    ]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ('["/etc/*.yaml"]', 'tests "/etc/*.yaml" is an absolute path; tests takes paths relative'),
        ('["../x.yaml"]', 'tests "../x.yaml" uses ".."; tests takes only files inside'),
        ('["nothing.yaml"]', 'tests "nothing.yaml" matches no file'),
    ],
)
def test_tests_globs_follow_the_include_rules(project: Path, patterns: str, expected: str) -> None:
    (project / "reconciler.yaml").write_text(ROOT.replace("[tests/*.yaml]", patterns))
    with pytest.raises(ConfigError) as caught:
        load_config("reconciler.yaml", {})
    assert expected in str(caught.value)
    assert str(caught.value).startswith("reconciler.yaml:6:")


def test_a_symbolic_link_out_of_the_directory_is_refused(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "t.yaml"
    outside.write_text("now: 2025-06-01\n")
    (project / "tests" / "t.yaml").symlink_to(outside)
    with pytest.raises(ConfigError, match="resolves outside the configuration's directory"):
        load_config("reconciler.yaml", {})


def test_tests_files_are_never_read_as_includes_nor_is_the_root_a_tests_file(
    project: Path,
) -> None:
    (project / "reconciler.yaml").write_text(
        ROOT.replace(
            "tests: [tests/*.yaml]", 'tests: ["*.yaml", "tests/*.yaml"]\ninclude: ["**/*.yaml"]'
        )
    )
    _write(project, "now: 2025-06-01\n")
    config = load_config("reconciler.yaml", {})
    assert segment_test_files(config) == (Path("tests/t.yaml"),)
    assert check_tests(config) == []


def test_configurations_without_tests_read_no_file(project: Path) -> None:
    (project / "reconciler.yaml").write_text(ROOT.replace("tests: [tests/*.yaml]\n", ""))
    config = load_config("reconciler.yaml", {})
    assert segment_test_files(config) == ()
    assert load_suite(config).files == ()


def test_load_sample_reads_one_file_for_plan_impact(project: Path) -> None:
    _write(
        project,
        """\
        now: 2025-06-01
        subscribers:
          - {list: Newsletter, email: a@x.org, fields: {Score: 9}}
          - {list: Newsletter, email: b@x.org, fields: {Score: 1}}
        """,
        "elsewhere.yaml",
    )
    config = load_config("reconciler.yaml", {})
    segment = config.lists[0].segments[0]
    sample = load_sample(config, Path("elsewhere.yaml"))
    found = sample.members("a", "Newsletter", segment.match, segment.rules, {"score": "number"})
    assert (found.members, found.total) == (frozenset({"a@x.org"}), 2)
    _write(project, "now: 2025-06-01\nsubscribers: [{list: Nope, email: a@x.org}]\n", "bad.yaml")
    with pytest.raises(ConfigError, match=r'bad\.yaml:2:16: unknown list "Nope"'):
        load_sample(config, Path("bad.yaml"))


def test_validate_checks_tests_files_only_when_asked(project: Path) -> None:
    """``validate`` and ``test`` check tests files; ``plan`` and ``apply`` never read them
    (a stale test must not stop a deployment)."""
    _write(project, "now: 2025-06-01\nexpect:\n  - {list: Newsletter, segment: Low, members: []}\n")
    config = load_config("reconciler.yaml", {})
    registry = load_registry()
    validate_config(config, registry)
    with pytest.raises(ConfigError) as caught:
        validate_config(config, registry, tests=True)
    assert str(caught.value) == (
        os.path.join("tests", "t.yaml") + ':3:24: unknown segment "Low" in list "Newsletter"'
        " (segments: High)"
    )
