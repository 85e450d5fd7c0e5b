"""``reconciler test`` end to end, on the reference backend and offline providers."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, ClassVar

import click
import pytest
from click.testing import CliRunner, Result

from providers.reference import ReferenceProvider
from reconciler import cli_test
from reconciler.cli import ReconcilerGroup, cli
from reconciler.cli_state import State
from reconciler.model import Rule
from reconciler.provider import Capabilities
from reconciler.registry import load_registry

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WRONG = HERE / "fixtures" / "wrong_expectation"
QUICKSTART = ROOT / "examples" / "quickstart"
WRONG_LINE = 'bob@example.org: not a member, because email contains "@gmail.com" is false'


def _group() -> click.Group:
    """The CLI with ``test`` (the real one once ``cli.py`` registers it)."""
    if "test" in cli.commands:
        return cli
    return ReconcilerGroup(
        name=cli.name,
        commands={**cli.commands, "test": cli_test.test_command},
        params=cli.params,
        callback=cli.callback,
        context_settings=cli.context_settings,
    )


def _copy(source: Path, tmp_path: Path) -> Path:
    copied = tmp_path / source.name
    shutil.copytree(source, copied, ignore=shutil.ignore_patterns(".reconciler", "state.db"))
    return copied / "reconciler.yaml"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where the projects are, so that files show as relative paths."""
    monkeypatch.chdir(tmp_path)


def _run(config: Path, *args: str, obj: State | None = None) -> Result:
    here = Path.cwd()
    shown = config.relative_to(here) if config.is_relative_to(here) else config
    return CliRunner().invoke(_group(), ["-c", str(shown), "--no-color", *args], obj=obj or State())


def test_the_quickstart_tests_pass(tmp_path: Path) -> None:
    result = _run(_copy(QUICKSTART, tmp_path), "test")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Tests: 6 passed, 0 failed, 0 undecided. Stored forms: 6 agree, 0 differ.\n"
    )


def test_a_wrong_expectation_fails_naming_the_subscriber_and_the_rule(tmp_path: Path) -> None:
    result = _run(_copy(WRONG, tmp_path), "test")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        'FAIL segment "Gmail 2024 signups" (Newsletter @ local)'
        "  (wrong_expectation/tests/segments.yaml:8:5)",
        "    expected: ann@gmail.com, bob@example.org",
        "    selected: ann@gmail.com",
        f"    {WRONG_LINE}",
        "",
        "Tests: 2 passed, 1 failed, 0 undecided. Stored forms: 3 agree, 0 differ.",
    ]


def test_verbose_lists_the_passing_checks_too(tmp_path: Path) -> None:
    result = _run(_copy(WRONG, tmp_path), "-v", "test")
    lines = result.stdout.splitlines()
    assert (
        'ok segment "Weekly readers" (Newsletter @ local)'
        "  (wrong_expectation/tests/segments.yaml:11:5)" in lines
    )
    assert 'ok stored form of segment "Everyone active" (VIP @ local) on provider "reference"' in (
        lines
    )


def test_list_narrows_the_run(tmp_path: Path) -> None:
    result = _run(_copy(WRONG, tmp_path), "test", "--list", "VIP")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Tests: 1 passed, 0 failed, 0 undecided. Stored forms: 1 agree, 0 differ.\n"
    )
    unknown = _run(_copy(WRONG, tmp_path / "b"), "test", "--list", "Nope")
    assert unknown.exit_code == 1
    assert 'Error: --list "Nope": no such list in the configuration' in unknown.stderr


def test_json_report(tmp_path: Path) -> None:
    result = _run(_copy(WRONG, tmp_path), "test", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["format_version"] == 1
    assert document["passed"] is False
    assert document["summary"] == {
        "passed": 2,
        "failed": 1,
        "undecided": 0,
        "agrees": 3,
        "differs": 0,
        "unchecked": 0,
    }
    failed = document["expectations"][0]
    assert (failed["segment"], failed["status"], failed["line"]) == (
        "Gmail 2024 signups",
        "failed",
        8,
    )
    assert failed["differences"] == [
        {
            "email": "bob@example.org",
            "expected": True,
            "verdict": False,
            "explanation": WRONG_LINE,
            "stored_verdict": None,
            "stored_explanation": "",
        }
    ]


def test_junit_report_to_a_file(tmp_path: Path) -> None:
    config = _copy(WRONG, tmp_path)
    out = tmp_path / "report.xml"
    result = _run(config, "test", "--format", "junit", "-o", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    expectations, stored = root.findall("testsuite")
    assert (expectations.get("tests"), expectations.get("failures")) == ("3", "1")
    assert (stored.get("tests"), stored.get("failures")) == ("3", "0")
    failure = expectations.find("testcase/failure")
    assert failure is not None and failure.text == WRONG_LINE


def _project(tmp_path: Path, config: str, tests: str) -> Path:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(textwrap.dedent(config))
    (root / "tests" / "t.yaml").write_text(textwrap.dedent(tests))
    return root / "reconciler.yaml"


NATIVE_CONFIG = """\
    version: 1
    targets: {local: {provider: reference, path: state.db}}
    tests: [tests/*.yaml]
    lists:
      - name: Newsletter
        segments:
          - name: Natives
            rules:
              - {field: email, op: contains, value: "@gmail.com"}
              - native: {RuleType: Custom}
"""


def test_an_expectation_a_native_rule_decides_is_undecided_and_fails(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        NATIVE_CONFIG,
        """\
        now: 2025-06-01
        subscribers:
          - {list: Newsletter, email: ann@gmail.com}
          - {list: Newsletter, email: bob@example.org}
        expect:
          - {list: Newsletter, segment: Natives, members: []}
        """,
    )
    result = _run(config, "test")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:4] == [
        'UNDECIDED segment "Natives" (Newsletter @ local)  (project/tests/t.yaml:6:5)',
        "    expected: nobody",
        "    selected: nobody",
        '    ann@gmail.com: undecided, because native {"RuleType": "Custom"} cannot be'
        " evaluated here (it is the platform's own)",
    ]
    assert result.stdout.splitlines()[-1] == (
        "Tests: 0 passed, 0 failed, 1 undecided. Stored forms: 1 agree, 0 differ."
    )


def test_no_tests_files_is_a_note_and_success(tmp_path: Path) -> None:
    config = _project(tmp_path, NATIVE_CONFIG.replace("    tests: [tests/*.yaml]\n", ""), "")
    result = _run(config, "test")
    assert result.exit_code == 0
    assert (
        result.stdout
        == "Tests: 0 passed, 0 failed, 0 undecided. Stored forms: 0 agree, 0 differ.\n"
    )
    assert "Note: no segment tests" in result.stderr


def test_an_invalid_tests_file_is_an_error_with_its_position(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        NATIVE_CONFIG,
        """\
        now: 2025-06-01
        subscribers:
          - {list: Newsletter, email: ann@gmail.com, date_subscribed: 2024-02-30}
        expect:
          - {list: Newsletter, segment: Native, members: [ann@gmail.com]}
        """,
    )
    result = _run(config, "test")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'Error: project/tests/t.yaml:3:46: date_subscribed "2024-02-30" is not an ISO date'
        " (YYYY-MM-DD)",
        'Error: project/tests/t.yaml:5:24: unknown segment "Native" in list "Newsletter"'
        ' (did you mean "Natives"?)',
    ]


MAILWIZZ_CONFIG = """\
    version: 1
    targets:
      mw:
        provider: mailwizz
        base_url: ${MW_URL}
        api_key: ${MW_KEY}
    tests: [tests/*.yaml]
    lists:
      - name: Newsletter
        fields:
          - {name: Score, type: number}
        segments:
          - name: Picked
            match: any
            rules:
              - {field: email, op: in, value: ["ann@x.org", "bob@x.org"]}
              - {field: Score, op: gt, value: 5}
"""
MAILWIZZ_TESTS = """\
    now: 2025-06-01
    subscribers:
      - {list: Newsletter, email: ann@x.org}
      - {list: Newsletter, email: cy@x.org, fields: {Score: 7}}
      - {list: Newsletter, email: dee@x.org, fields: {Score: "5"}}
    expect:
      - {list: Newsletter, segment: Picked, members: [ann@x.org, cy@x.org]}
"""


def test_offline_with_unset_variables_and_a_provider_that_rewrites_rules(
    tmp_path: Path,
) -> None:
    """No variable set, no request made (the guard fails any), the stored form (MailWizz
    expands ``in`` into one condition per value) selects as declared."""
    config = _project(tmp_path, MAILWIZZ_CONFIG, MAILWIZZ_TESTS)
    result = _run(config, "-v", "test")
    assert result.exit_code == 0, result.output
    assert 'ok stored form of segment "Picked" (Newsletter @ mw) on provider "mailwizz"' in (
        result.stdout
    )
    assert result.stdout.endswith(
        "Tests: 1 passed, 0 failed, 0 undecided. Stored forms: 1 agree, 0 differ.\n"
    )


class _Lossy(ReferenceProvider):
    """A provider whose stored form drops every rule but the first: a bug to catch."""

    key: ClassVar[str] = "lossy"
    capabilities: ClassVar[Capabilities] = ReferenceProvider.capabilities

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return match, rules[:1]


def test_a_stored_form_that_selects_differently_fails(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        """\
        version: 1
        targets: {lossy: {provider: lossy, path: state.db}}
        tests: [tests/*.yaml]
        lists:
          - name: Newsletter
            segments:
              - name: Gmail weekly
                rules:
                  - {field: email, op: contains, value: "@gmail.com"}
                  - {field: first_name, op: equals, value: Ann}
        """,
        """\
        now: 2025-06-01
        subscribers:
          - {list: Newsletter, email: ann@gmail.com, first_name: Ann}
          - {list: Newsletter, email: bob@gmail.com, first_name: Bob}
        """,
    )
    registry: dict[str, Any] = {**load_registry(), "lossy": _Lossy}
    result = _run(config, "test", obj=State(registry=registry))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        'FAIL stored form of segment "Gmail weekly" (Newsletter @ lossy) on provider "lossy"',
        '    declared: bob@gmail.com: not a member, because first_name equals "Ann" is false'
        ' (first_name is "Bob")',
        '    stored:   bob@gmail.com: a member, because email contains "@gmail.com" is true',
        "",
        "Tests: 0 passed, 0 failed, 0 undecided. Stored forms: 0 agree, 1 differ.",
    ]


@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
def test_every_format_escapes_control_characters(tmp_path: Path, fmt: str) -> None:
    config = _project(
        tmp_path,
        NATIVE_CONFIG,
        """\
        now: 2025-06-01
        subscribers:
          - {list: Newsletter, email: "ann\\e[31m@gmail.com"}
        expect:
          - {list: Newsletter, segment: Natives, members: []}
        """,
    )
    result = _run(config, "test", "--format", fmt)
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout
    assert ("\\u001b" if fmt == "json" else "\\x1b") in result.stdout
