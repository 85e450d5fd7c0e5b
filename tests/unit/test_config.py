"""Loading the YAML: scalars, includes, environment variables, positions and messages."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler import yamlio
from reconciler.config import DEFAULT_CONFIG, load_config, locate_source, root_file
from reconciler.errors import ConfigError
from reconciler.model import Config, SourceRef
from reconciler.validation import validate_config
from tests.cli.malformed_cases import ENVIRON, ERROR_FILE, MALFORMED, OK

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Write:
    """Write files relative to a fresh working directory and return the root's path."""
    monkeypatch.chdir(tmp_path)
    yamlio.clear_cache()

    def write_files(**files: str) -> Path:
        for name, text in files.items():
            path = tmp_path / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return Path(DEFAULT_CONFIG)

    return write_files


def error_lines(
    root: Path, environ: Mapping[str, str] | None = None, validate: bool = False
) -> list[str]:
    from providers.reference import ReferenceProvider

    try:
        config = load_config(root, environ or {})
        if validate:
            validate_config(config, {"reference": ReferenceProvider})
    except ConfigError as exc:
        return exc.lines()
    return []


def load(text: str) -> Any:
    return yamlio.load_text(text, "t.yaml").data


# -- scalars: the YAML 1.2 core schema ------------------------------------------------------

SCALARS: list[tuple[str, object]] = [
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("~", None),
    ("", None),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("12", 12),
    ("-3", -3),
    ("+4", 4),
    ("0o17", 15),
    ("0x1F", 31),
    ("1.5", 1.5),
    ("1e3", 1000.0),
    ("-.5", -0.5),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    ("2024-01-01", "2024-01-01"),
    ("12:30", "12:30"),
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("'12'", "12"),
    ('"true"', "true"),
    ("'null'", "null"),
    ("!!str 12", "12"),
    ("!!int '7'", 7),
    ("!!float 3", 3.0),
    ('"@gmail.com"', "@gmail.com"),
    ("plain text", "plain text"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS)
def test_scalar_follows_yaml_1_2_core_schema(text: str, expected: object) -> None:
    value = load(f"v: {text}\n")["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_scalar_nan_is_a_float() -> None:
    assert math.isnan(load("v: .nan\n")["v"])


def test_scalar_in_pure_python_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "_compose", yamlio._compose_pure)
    data = load("a: [1, '1', true, ~, 2024-01-01, !!int '3']\nb: &x {c: 1}\nd: *x\n")
    assert data == {"a": [1, "1", True, None, "2024-01-01", 3], "b": {"c": 1}, "d": {"c": 1}}


# -- structure errors found while constructing ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb: 2\na: 3\n", 't.yaml:3:1: duplicate key "a"'),
        ("a: 1\n1: 2\n", "t.yaml:2:1: keys must be text; quote this key"),
        ("a: !custom x\n", 't.yaml:1:4: unsupported tag "!custom"'),
        ("a: !!int x\n", 't.yaml:1:4: "x" is not a valid int'),
        ("a: &a [*a]\n", "t.yaml:1:4: an alias refers to a collection that contains it"),
    ],
)
def test_load_text_reports_structure_errors(text: str, expected: str) -> None:
    assert [str(e) for e in yamlio.load_text(text, "t.yaml").errors] == [expected]


def test_load_text_refuses_alias_bombs() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    loaded = yamlio.load_text("\n".join(levels) + "\n", "bomb.yaml")
    assert loaded.data is None
    # located at the anchored node its aliases repeat most: a5, on line 6
    assert [str(e) for e in loaded.errors] == ["bomb.yaml:6:5: aliases expand to too much data"]


def test_load_text_shares_small_aliases() -> None:
    assert load("a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: [1\nb: 2\n",
            "t.yaml:2:2: invalid YAML: did not find expected ',' or ']' "
            "(while parsing a flow sequence)",
        ),
        ("a: 'x\n", "t.yaml:2:1: invalid YAML: found unexpected end of stream"),
        ("a: *nope\n", "t.yaml:1:4: invalid YAML: found undefined alias"),
    ],
)
def test_syntax_error_is_one_located_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        yamlio.load_text(text, "t.yaml")
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


# -- locate ---------------------------------------------------------------------------------


def test_locate_points_at_keys_items_and_the_deepest_existing_node(write: Write) -> None:
    write(**{"f.yaml": "lists:\n  - name: A\n    segments:\n      - {name: S, rules: []}\n"})
    assert yamlio.locate("f.yaml", ("lists", 0, "name")) == (2, 5)
    assert yamlio.locate("f.yaml", ("lists", 0, "segments", 0, "rules")) == (4, 19)
    assert yamlio.locate("f.yaml", ("lists", 0, "segments", 5, "x")) == (3, 5)
    assert yamlio.locate("f.yaml", ()) == (1, 1)
    assert yamlio.locate("missing.yaml", ("a",)) == (1, 1)


def test_locate_source_formats_file_line_column(write: Write) -> None:
    write(**{"f.yaml": "lists:\n  - name: A\n"})
    source = SourceRef(file="f.yaml", path=("lists", 0))
    assert locate_source(source, ("name",)) == "f.yaml:2:5"


# -- includes, defaults, sources ------------------------------------------------------------


def test_load_config_merges_included_lists_in_sorted_order(write: Write) -> None:
    root = write(
        **{
            "reconciler.yaml": "version: 1\ninclude: ['lists/*.yaml', 'lists/b.yaml', '*.yaml']\n",
            "lists__b.yaml": "lists: [{name: B}]\n",
            "lists__a.yaml": "lists: [{name: A}, {name: A2}]\n",
            "lists__empty.yaml": "",
        }
    )
    config = load_config(root, {})
    assert [item.name for item in config.lists] == ["A", "A2", "B"]


def test_load_config_wildcard_include_may_match_an_empty_directory(write: Write) -> None:
    # a directory waiting for the first ``reconciler import -o`` is not a typo
    root = write(**{"reconciler.yaml": OK + "include: [imported/*.yaml]\n"})
    Path("imported").mkdir()
    assert [item.name for item in load_config(root, {}).lists] == ["News"]


@pytest.mark.parametrize(
    ("pattern", "extra"),
    [
        ("imported/*.yaml", {}),  # no such directory: a typo
        ("lists/*.yml", {"lists__a.yaml": "lists: []\n"}),  # the directory has other files
        ("**/*.yml", {}),
    ],
)
def test_load_config_wildcard_include_matching_nothing_is_an_error(
    write: Write, pattern: str, extra: dict[str, str]
) -> None:
    root = write(**{"reconciler.yaml": OK + f"include: ['{pattern}']\n", **extra})
    assert error_lines(root) == [f'reconciler.yaml:8:11: include "{pattern}" matches no file']


def test_load_config_include_naming_a_directory_is_an_error(write: Write) -> None:
    root = write(**{"reconciler.yaml": OK + "include: [lists]\n", "lists__a.yaml": "lists: []\n"})
    with pytest.raises(ConfigError, match='include "lists" matches no file'):
        load_config(root, {})


def test_load_config_defaults_to_the_local_reference_target(write: Write) -> None:
    config = load_config(write(**{"reconciler.yaml": OK}), {})
    assert list(config.targets) == ["local"]
    assert config.targets["local"].provider == "reference"
    assert config.targets["local"].settings == {"path": ".reconciler/state.db"}
    assert config.defaults.target == "local"
    assert config.lists[0].target == "local"


def test_load_config_single_target_becomes_the_default(write: Write) -> None:
    text = OK + "targets:\n  main: {provider: reference}\n"
    config = load_config(write(**{"reconciler.yaml": text}), {})
    assert config.defaults.target == "main"
    assert config.lists[0].target == "main"


def test_load_config_list_without_target_needs_a_default_when_targets_are_many(
    write: Write,
) -> None:
    text = OK + "targets:\n  a: {provider: reference}\n  b: {provider: reference}\n"
    assert error_lines(write(**{"reconciler.yaml": text})) == [
        'reconciler.yaml:3:5: list "News" names no target and defaults.target is not set '
        "(targets: a, b)"
    ]


def test_load_config_attaches_sources_to_lists_and_segments(write: Write) -> None:
    root = write(
        **{
            "reconciler.yaml": "version: 1\ninclude: [lists/*.yaml]\n",
            "lists__a.yaml": OK.removeprefix("version: 1\n"),
        }
    )
    config = load_config(root, {})
    assert isinstance(config, Config)
    assert root_file(config) == "reconciler.yaml"
    news = config.lists[0]
    assert news.source == SourceRef(file="lists/a.yaml", path=("lists", 0))
    segment = news.segments[0]
    assert segment.source == SourceRef(file="lists/a.yaml", path=("lists", 0, "segments", 0))
    assert locate_source(segment.source, ("rules", 0)) == "lists/a.yaml:6:13"


def test_load_config_parses_each_file_once(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_YAML", "reference")  # the fast path: test_yamlfast.py
    root = write(
        **{
            "reconciler.yaml": "version: 1\ninclude: [lists/*.yaml]\n",
            "lists__a.yaml": OK.removeprefix("version: 1\n"),
            "lists__b.yaml": "lists: [{name: Other}]\n",
        }
    )
    calls: list[str] = []
    real = yamlio._compose

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(yamlio, "_compose", counting)
    load_config(root, {})
    assert len(calls) == 3


def test_load_config_paths_outside_the_working_directory_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "elsewhere").mkdir()
    root = tmp_path / "conf" / "reconciler.yaml"
    root.write_text("version: 1\nfoo: 1\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert error_lines(root) == [f'{root}:2:1: unknown key "foo" (allowed: ' + _ROOT_KEYS + ")"]


_ROOT_KEYS = "version, targets, defaults, include, tests, lists"


def test_load_config_missing_root_file_is_a_config_error(write: Write) -> None:
    write()
    assert error_lines(Path("nope.yaml")) == [
        "nope.yaml: cannot read file: No such file or directory"
    ]


# -- environment variables ------------------------------------------------------------------


def test_env_vars_expand_in_every_string_scalar(write: Write) -> None:
    text = OK.replace("value: x", "value: '@${DOMAIN}'") + (
        "targets:\n  local: {provider: reference, path: '${DIR}/state.db'}\n"
    )
    config = load_config(write(**{"reconciler.yaml": text}), {"DOMAIN": "d.com", "DIR": "/s"})
    assert config.lists[0].segments[0].rules[0].value == "@d.com"  # type: ignore[union-attr]
    assert config.targets["local"].settings["path"] == "/s/state.db"


def test_env_var_escape_keeps_a_literal(write: Write) -> None:
    text = OK.replace("value: x", "value: 'a $${HOME} b $$ c'")
    config = load_config(write(**{"reconciler.yaml": text}), {})
    assert config.lists[0].segments[0].rules[0].value == "a ${HOME} b $$ c"  # type: ignore[union-attr]


def test_env_var_missing_names_the_variable_never_a_value(write: Write) -> None:
    text = OK + "targets:\n  local:\n    provider: reference\n    path: ${A}-${B}\n"
    lines = error_lines(write(**{"reconciler.yaml": text}), {"A": "secret-value"})
    assert lines == ["reconciler.yaml:11:11: environment variable B is not set"]


def test_env_vars_default_to_os_environ(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_TEST_DOMAIN", "d.org")
    text = OK.replace("value: x", "value: '${RECONCILER_TEST_DOMAIN}'")
    config = load_config(write(**{"reconciler.yaml": text}))
    assert config.lists[0].segments[0].rules[0].value == "d.org"  # type: ignore[union-attr]


# -- messages -------------------------------------------------------------------------------


def test_every_error_in_every_file_is_reported_at_once(write: Write) -> None:
    root = write(
        **{
            "reconciler.yaml": "version: 1\ninclude: [lists/*.yaml]\nfoo: 1\n",
            "lists__a.yaml": "lists:\n  - name: A\n    prun: true\n",
            "lists__b.yaml": "lists:\n  - name: B\n    segments: [{name: S, rules: []}]\n",
        }
    )
    assert error_lines(root) == [
        f'reconciler.yaml:3:1: unknown key "foo" (allowed: {_ROOT_KEYS})',
        'lists/a.yaml:3:5: unknown key "prun" (did you mean "prune"?)',
        'lists/b.yaml:3:26: "rules" must not be empty',
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{field: email, op: equals, value: x, vlaue: y}", 'unknown key "vlaue"'),
        (
            "{campaign: c, event: opened, within: {days: 3, dys: 3}}",
            'unknown key "dys" (did you mean',
        ),
        ("{campaign: c, event: opened, within: {days: 0}}", '"days" must be greater than 0'),
        ("{list: VIP, op: out}", '"out" is not one of: in, not_in, active_in, not_active_in'),
        ("{native: {}}", '"native" must not be empty'),
        ("{any: [{field: email, op: in, value: []}]}", "needs a non-empty list value"),
        ("{all: [{field: 3, op: empty}]}", '"field" must be text, not an integer'),
        ("{any: [{field: email, op: empty}], all: [{field: name, op: empty}]}", "exactly one"),
        ("[1]", "a rule needs one of the keys"),
    ],
)
def test_rule_errors_are_plain_located_messages(write: Write, rule: str, expected: str) -> None:
    text = OK.replace("{field: email, op: contains, value: x}", rule)
    lines = error_lines(write(**{"reconciler.yaml": text}))
    assert len(lines) == 1
    assert lines[0].startswith("reconciler.yaml:7:")
    assert expected in lines[0]
    assert "Traceback" not in lines[0]
    assert "Value error" not in lines[0]


# -- the malformed table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected", "line"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_config_reports_one_located_line(
    write: Write, files: dict[str, str], expected: str, line: int, request: pytest.FixtureRequest
) -> None:
    case_id = request.node.callspec.id
    root = write(**{name.replace("/", "__"): text for name, text in files.items()})
    lines = error_lines(root, ENVIRON, validate=True)
    assert len(lines) == 1, lines
    file = ERROR_FILE.get(case_id, "reconciler.yaml")
    assert lines[0].startswith(f"{file}:{line}:"), lines
    assert expected in lines[0]
    assert ENVIRON["CM_KEY"] not in lines[0]


# -- identical declared rules validated once (``sharing.py``) -------------------------------

SHARED_RULES = """\
version: 1
targets: {main: {provider: reference, path: state.db}}
defaults: {target: main}
include: [lists/*.yaml]
lists:
  - name: News
    segments:
      - name: A
        rules:
          - {field: status, op: equals, value: active}
          - any: [{field: email, op: contains, value: "@x.com"}, {field: Age, op: gt, value: 1}]
      - name: B
        rules:
          - any: [{field: email, op: contains, value: "@x.com"}, {field: Age, op: gt, value: 1}]
          - {field: status, op: equals, value: active}
          - {field: Age, op: gt, value: 1.0}
"""


def test_identical_declared_rules_are_one_shared_instance(write: Write) -> None:
    other = "lists:\n  - name: Other\n    segments:\n      - name: C\n        rules:\n"
    other += "          - {field: status, op: equals, value: active}\n"
    config = load_config(write(**{"reconciler.yaml": SHARED_RULES, "lists__o.yaml": other}))

    news, other_list = config.lists
    (a, b), (c,) = news.segments, other_list.segments
    assert a.rules[0] is b.rules[1] is c.rules[0]  # across segments, lists and files
    assert a.rules[1] is b.rules[0]
    assert b.rules[2] is not a.rules[1].rules[1]  # type: ignore[union-attr]  # 1.0 is not 1
    assert b.rules[2] == a.rules[1].rules[1]  # type: ignore[union-attr]
    assert [segment.source for segment in (a, b, c)] == [
        SourceRef(file="reconciler.yaml", path=("lists", 0, "segments", 0)),
        SourceRef(file="reconciler.yaml", path=("lists", 0, "segments", 1)),
        SourceRef(file=str(Path("lists/o.yaml")), path=("lists", 0, "segments", 0)),
    ]


def test_a_list_with_a_shared_rule_and_a_bad_one_reports_only_the_bad_one(write: Write) -> None:
    text = SHARED_RULES.replace("value: 1.0}", "value: 1.0, extra: 2}").replace(
        "include: [lists/*.yaml]\n", ""
    )
    assert error_lines(write(**{"reconciler.yaml": text})) == [
        'reconciler.yaml:15:46: unknown key "extra" (allowed: field, op, value)'
    ]
