"""No input crashes the tool: each is a clean, located error (issue 11, item 2)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from providers.reference import ReferenceProvider
from reconciler import yamlio
from reconciler.cli import cli
from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.registry import load_registry
from reconciler.validation import validate_config

HEAD = "version: 1\ntargets:\n  local: {provider: reference, path: state.db}\n"
SEGMENT = "lists:\n  - name: News\n    segments:\n      - name: S\n        rules: [{rule}]\n"


def _validate(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    root = tmp_path / "reconciler.yaml"
    root.write_text(text)
    yamlio.clear_cache()
    try:
        config = load_config(root, environ or {})
        validate_config(config, load_registry())
    except ConfigError as exc:
        return [line.replace(str(tmp_path) + "/", "") for line in exc.lines()]
    return []


@pytest.mark.parametrize(
    "body",
    ["[" * 30_000, "[ ']]]', " * 30_000],  # more shapes in-process: tests/hostile/malformed.py
    ids=["open", "fake-closers"],
)
def test_deep_nesting_is_refused_in_a_child_process_without_a_crash(
    tmp_path: Path, body: str
) -> None:
    """30,000 levels overflowed libyaml's recursive composer (a segfault, exit -11); brackets
    inside quoted text must not hide the depth either."""
    root = tmp_path / "reconciler.yaml"
    root.write_text("version: 1\nlists: " + body + "\n")
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-c", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert time.perf_counter() - started < 10
    assert child.returncode == 1, (child.returncode, child.stderr[-500:])
    assert child.stderr.startswith("Error: reconciler.yaml:2:"), child.stderr
    assert "nested more than 100 levels deep" in child.stderr
    assert "Traceback" not in child.stderr


@pytest.mark.parametrize("levels", [100, 101])
def test_nesting_is_allowed_to_exactly_one_hundred_levels(tmp_path: Path, levels: int) -> None:
    # the root mapping is level 1; each "[" adds one
    text = "version: 1\nx: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"
    lines = _validate(tmp_path, text)
    if levels == 100:
        assert lines == ['reconciler.yaml:2:1: unknown key "x" (allowed: ' + _ROOT_KEYS + ")"]
    else:
        assert lines == [
            "reconciler.yaml:2:103: nested more than 100 levels deep "
            "(the limit for a configuration file)"
        ]


_ROOT_KEYS = "version, targets, defaults, include, tests, lists"


def test_a_nul_in_the_config_path_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["validate", "-c", "a\x00b.yaml"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "the path contains a NUL character" in result.stderr
    assert "Traceback" not in result.output


def test_a_config_path_too_long_for_the_os_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "-c", str(tmp_path / ("a" * 5000))])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "cannot read file: File name too long" in result.stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (HEAD + 'lists:\n  - name: "Ne\\0ws"\n', "5:11"),
        ('version: 1\ntargets:\n  local: {provider: reference, path: "s\\0.db"}\n', "3:38"),
        ('version: 1\ninclude: ["a\\0.yaml"]\n', "2:11"),
    ],
    ids=["name", "path", "include"],
)
def test_a_nul_in_a_name_or_path_is_one_located_error(
    tmp_path: Path, text: str, where: str
) -> None:
    assert _validate(tmp_path, text) == [
        f"reconciler.yaml:{where}: text must not contain the NUL character (\\0)"
    ]


@pytest.mark.parametrize(
    "value", ["9" * 5000, "0x" + "f" * 5000, "9223372036854775808", "-9223372036854775809"]
)
def test_an_integer_past_64_bits_is_an_error_never_silently_text(
    tmp_path: Path, value: str
) -> None:
    text = HEAD + SEGMENT.format(rule=f"{{field: email, op: equals, value: {value}}}")
    assert _validate(tmp_path, text) == [
        "reconciler.yaml:8:51: integer out of range (integers are 64-bit: -2^63 to 2^63-1); "
        "quote it for text"
    ]


def test_the_largest_64_bit_integers_load(tmp_path: Path) -> None:
    assert yamlio.load_text("a: [9223372036854775807, -9223372036854775808]\n", "t").data == {
        "a": [2**63 - 1, -(2**63)]
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: true\n", 'reconciler.yaml:1:1: "version" must be 1, not true'),
        ("version: 1.0\n", 'reconciler.yaml:1:1: "version" must be 1, not 1.0'),
        (
            "version: 1\nlists: [{name: News, target: ''}]\n",
            'reconciler.yaml:2:22: "target" must not be empty',
        ),
        (
            "version: 1\ntargets: {local: {provider: reference, requests_per_second: .inf}}\n",
            'reconciler.yaml:2:40: "requests_per_second" must be a finite number',
        ),
        (
            "version: 1\ntargets: {local: {provider: reference, requests_per_second: 1e-300}}\n",
            'reconciler.yaml:2:40: "requests_per_second" must be greater than or equal to 0.01',
        ),
        (
            HEAD
            + SEGMENT.format(rule="{field: email, op: empty}")
            + "        options: {a: .nan}\n",
            "reconciler.yaml:9:9: NaN and infinity are not allowed (at a)",
        ),
        (
            HEAD
            + SEGMENT.format(rule="{field: email, op: empty}")
            + "        options: {a: {b: [1, .NaN]}}\n",
            "reconciler.yaml:9:9: NaN and infinity are not allowed (at a.b[1])",
        ),
    ],
    ids=["version-true", "version-float", "empty-target", "rps-inf", "rps-tiny", "nan", "deep-nan"],
)
def test_values_the_issue_names_are_refused_by_validate(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert _validate(tmp_path, text) == [expected]


CM = (
    "version: 1\ntargets:\n  news:\n    provider: campaignmonitor\n    client_id: c1\n"
    "    api_key: ${CM_KEY}\n"
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("k3y-value\n", "holds a line break or another control character (copied with its"),
        ("k3y-value\r", "holds a line break or another control character"),
        ("k3y\tvalue", "holds a line break or another control character"),
        ("k3y-välue", "holds a non-ASCII character, which no HTTP header can carry"),
        ("k3y-value\u200b", "holds a non-ASCII character, which no HTTP header can carry"),
    ],
    ids=["newline", "carriage-return", "tab", "accent", "zero-width-space"],
)
def test_a_credential_no_header_can_carry_is_refused_without_quoting_it(
    tmp_path: Path, value: str, problem: str
) -> None:
    (line,) = _validate(tmp_path, CM, {"CM_KEY": value})
    assert line.startswith(f'reconciler.yaml:6:5: "api_key" of target "news" {problem}')
    assert line.endswith("; the value is not shown")
    assert "k3y" not in line


def test_a_password_may_hold_any_printable_text(tmp_path: Path) -> None:
    """Passwords are the user's choice and travel in Basic auth or a form body (UTF-8)."""
    text = (
        "version: 1\ntargets:\n  crm:\n    provider: mautic\n"
        "    base_url: https://crm.example.test\n    username: åsa\n    password: ${PW}\n"
    )
    assert _validate(tmp_path, text, {"PW": "pässwörd-ü"}) == []


@pytest.mark.parametrize(
    "second",
    ["state.db", "./state.db", "sub/../state.db", "{root}/state.db", "link.db"],
    ids=["same", "dot", "dotdot", "absolute", "symlink"],
)
def test_two_targets_with_one_reference_store_are_refused(tmp_path: Path, second: str) -> None:
    (tmp_path / "state.db").write_bytes(b"")
    (tmp_path / "link.db").symlink_to(tmp_path / "state.db")
    text = (
        "version: 1\ntargets:\n  a: {provider: reference, path: state.db}\n"
        f"  b: {{provider: reference, path: '{second.format(root=tmp_path)}'}}\n"
        "defaults: {target: a}\n"
    )
    assert _validate(tmp_path, text) == [
        'reconciler.yaml:4:3: target "b" uses the same store as target "a": each would plan '
        "against, and prune, the other's segments; give each its own"
    ]


def test_two_in_memory_stores_are_two_stores(tmp_path: Path) -> None:
    text = (
        "version: 1\ntargets:\n  a: {provider: reference, path: ':memory:'}\n"
        "  b: {provider: reference, path: ':memory:'}\ndefaults: {target: a}\n"
    )
    assert _validate(tmp_path, text) == []


def test_the_store_identity_hook_of_the_reference_provider(tmp_path: Path) -> None:
    settings = ReferenceProvider.settings_model.model_validate({"path": "x/../s.db"})
    assert ReferenceProvider.store_identity(settings, tmp_path) == str(tmp_path / "s.db")
    memory = ReferenceProvider.settings_model.model_validate({"path": ":memory:"})
    assert ReferenceProvider.store_identity(memory, tmp_path) is None


def test_a_path_from_an_unknown_home_directory_is_a_clean_error(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  a: {provider: reference, path: ~no-such-user-zz/s.db}\n"
    assert _validate(tmp_path, text) == [
        "reconciler.yaml:3:28: the home directory this path starts from is unknown"
    ]
