"""The fast YAML path (``yaml_rs``) builds exactly what the reference loader builds.

Differential: for every text, ``yamlio.load_text`` (fast path first) and
``yamlio.load_reference`` (the ruamel.yaml loader alone) give the same data, with the same
types, and the same errors with the same file, line and column: over the malformed-config
table, the examples and generated documents. Then: the fast path is really taken for
ordinary files, and the switches and bounds around it hold.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml_rs
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler import yamlfast, yamlguard, yamlio
from reconciler.config import expander, load_config
from reconciler.errors import ConfigError
from tests.benchmarks.bench_noop_plan import list_yaml, root_yaml
from tests.cli.malformed_cases import ENVIRON, MALFORMED

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))
EXAMPLE_TEXTS = [path.read_text(encoding="utf-8") for path in EXAMPLES]
EXPAND = expander({"SET": "value", "EMPTY": "", "DOLLAR": "$", **ENVIRON})
"""Some variables set; ``${UNSET}`` is not."""
EXPAND_ALL = expander(
    {name: f"<{name}>" for text in EXAMPLE_TEXTS for name in re.findall(r"\$\{(\w+)\}", text)}
)
"""Every variable the examples name is set."""

Outcome = tuple[Any, ...]


def _outcome(load: Callable[[], yamlio.Loaded]) -> Outcome:
    try:
        loaded = load()
    except ConfigError as exc:
        return ("raised", str(exc), exc.line, exc.column)
    errors = [(str(e), e.line, e.column) for e in loaded.errors]
    return ("loaded", loaded.file, _typed(loaded.data), errors)


def _typed(value: Any) -> Any:
    """``value`` with every type made visible: ``True`` differs from ``1``, ``-0.0`` from
    ``0.0``, a tuple from a list, and NaN equals NaN."""
    if isinstance(value, dict):
        return ("map", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("seq", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def assert_same(text: str, expand: yamlio.Expander | None = EXPAND) -> bool:
    """Fast and reference results are equal; returns whether the fast path answered."""
    fast = _outcome(lambda: yamlio.load_text(text, "f.yaml", expand))
    reference = _outcome(lambda: yamlio.load_reference(text, "f.yaml", expand))
    assert fast == reference, text
    return yamlfast.load(text, expand) is not None


# -- the malformed-config table and the examples ------------------------------------------


@pytest.mark.parametrize("text", [text for case in MALFORMED for text in case[1].values()], ids=str)
def test_malformed_cases_load_alike(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize("expand", [EXPAND, EXPAND_ALL], ids=["some-unset", "all-set"])
@pytest.mark.parametrize("text", EXAMPLE_TEXTS, ids=[f"{p.parent.name}/{p.name}" for p in EXAMPLES])
def test_examples_load_alike(text: str, expand: yamlio.Expander) -> None:
    assert_same(text, expand)


def test_ordinary_configurations_take_the_fast_path() -> None:
    """Not vacuous: the benchmark's files and most examples take the fast path."""
    for text in (root_yaml(), list_yaml(3, 20)):
        assert assert_same(text)
    taken = [text for text in EXAMPLE_TEXTS if assert_same(text, EXPAND_ALL)]
    assert len(taken) >= len(EXAMPLES) // 2


# -- generated documents -------------------------------------------------------------------

_LOOKALIKES = (
    "0 -0 +0 012 0x1F 0X1F 0x1f_2 0o17 0O17 0o19 0b101 -0x1F +0o7 1_000 _1 1__0 1e5 1E+5 1e "
    "1. .5 .5e3 -.5 +.5e-3 1.5e 1.e5 ._5 1e1_0 .inf -.Inf +.INF .iNf .nan .NaN .NAN .nAn "
    "-.nan +.nan ~ null Null NULL nUll true True TRUE tRue false FALSE yes no on off y n "
    "9223372036854775807 9223372036854775808 -9223372036854775808 -9223372036854775809 "
    "0x8000000000000000 1e400 -1e400 1e-400 0.1 00.5 -0.0 3.14159265358979323846 2024-01-01 "
    "2024-01-01T10:00:00Z 12:30:00 1:20 190:20:30 1,000 + - . _ = << 0x 0o"
)
"""Numbers and look-alikes: where yaml_rs and the YAML 1.2 core schema may disagree."""
_NUMBERISH = st.sampled_from(_LOOKALIKES.split())
_WORDS = st.sampled_from(
    [
        "a", "Weekly", "email", "x y", "a:b", "a: b", "a #b", "a#b", "http://x.org/a?b=c#d",
        "-a", "?a", ":a", "a:", "a?", "@x", "`x", "%x", "é", "日本", "😀", "a\u00a0b", "$x",
        "${SET}", "${UNSET}", "$${SET}", "a${SET}b", "${EMPTY}", "${DOLLAR}{SET}", "${",
        "not_equals", "date_subscribed", "List 001", "name7", "a'b", 'a"b', "a\\b", "|", ">",
    ]
)  # fmt: skip
_SAFE_WORDS = st.sampled_from(["a", "News", "x y", "first_name", "0", "12", "1.5", "true", "~"])
_CHARS = st.sampled_from(list("0123456789abcdefxXoObBeE_.+-:#?,[]{}!&*%@`|>'\" \t\\$"))
_PLAIN = st.one_of(
    _SAFE_WORDS, _SAFE_WORDS, _NUMBERISH, _WORDS, st.text(_CHARS, min_size=1, max_size=6)
)
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029"),
    max_size=8,
)
_ESCAPE_LIST = [
    "\\n", "\\t", "\\\\", '\\"', "\\x41", "\\xe9", "\\u00e9", "\\U0001F600", "\\0", "\\/",
    "\\ ", "\\_", "\\N", "\\L", "\\P", "\\e", "\\a", "\\b", "\\v", "\\f", "\\r", "\\\t",
    "\\\n  ", "\\q", "\\x4", "\\u12", "\n", "\n\n", " \n ", "\\u0000", "\\x00", "\\x24{SET}", "#",
]  # fmt: skip
"""Escapes in double-quoted text (some invalid), and line breaks that fold."""


@st.composite
def _single_quoted(draw: st.DrawFn) -> str:
    body = draw(st.one_of(_TEXT, _PLAIN, st.sampled_from(["", "a\n  b", "a\n\n b", "${SET}"])))
    return "'" + body.replace("'", "''") + "'"


@st.composite
def _double_quoted(draw: st.DrawFn) -> str:
    texts = st.one_of(_TEXT, _PLAIN).map(lambda p: p.replace("\\", "\\\\").replace('"', '\\"'))
    parts = draw(st.lists(st.one_of(texts, st.sampled_from(_ESCAPE_LIST)), max_size=4))
    return '"' + "".join(parts) + '"'


_SCALAR = st.one_of(_PLAIN, _PLAIN, _PLAIN, _single_quoted(), _double_quoted())
_KEY = st.one_of(
    st.sampled_from(["a", "b", "name", "a b", "rules", "first_name", "é"]),
    st.sampled_from(["a", "b", "1", "true", "null", "~", "", "'1'", '"a"', "'a'", "0X1F"]),
    st.sampled_from(["? x", "[a]", "{a: b}", "-1", ".5", "a:b", "|", "'\\n'", '"\\n"', '"\\0"']),
    st.sampled_from(["first\n  name", "a\n\n  b", "'a\n  b'", '"a\\\n  b"', "k" * 1030]),
    _PLAIN,
)


@st.composite
def _flow(draw: st.DrawFn, depth: int = 0) -> str:
    mapping = draw(st.booleans())
    rendered = []
    for _ in range(draw(st.integers(0, 3))):
        item = draw(_flow(depth + 1)) if depth < 2 and draw(st.booleans()) else draw(_SCALAR)
        if mapping:
            colon = draw(st.sampled_from([": ", ": ", ":", " : ", ":\n  ", ""]))
            rendered.append(draw(_KEY) + colon + item)
        else:
            rendered.append(item)
    separator = draw(st.sampled_from([", ", ", ", ",", " , ", ",\n  ", ", # c\n  "]))
    body = separator.join(rendered) + draw(st.sampled_from(["", "", ",", " "]))
    return "{" + body + "}" if mapping else "[" + body + "]"


@st.composite
def _block_scalar(draw: st.DrawFn, indent: int) -> str:
    header = draw(st.sampled_from(["|", ">", "|-", ">-", "|+", ">+", "|2", ">1-", "| # c"]))
    line = st.one_of(_TEXT, _PLAIN, st.sampled_from(["", " ", "  more", "#x", "${SET}", "> q"]))
    lines = draw(st.lists(line, max_size=4))
    pad = " " * (indent + 2)
    return header + "\n" + "".join(pad + text.replace("\n", " ") + "\n" for text in lines)


@st.composite
def _folded(draw: st.DrawFn, pad: str) -> str:
    """A plain or quoted scalar over several lines (their breaks fold into spaces)."""
    lines = draw(st.lists(st.one_of(_SAFE_WORDS, _PLAIN, st.just("")), min_size=2, max_size=4))
    quote = draw(st.sampled_from(["", "", "'", '"']))
    if quote:
        lines = [line.replace("\\", "/").replace(quote, "") for line in lines]
    return quote + ("\n" + pad).join(lines) + quote


_COMMENT = st.sampled_from(["", "", "", " # c", "  #c:d", " #", " # a: [x, y]"])


@st.composite
def _block(draw: st.DrawFn, indent: int = 0, depth: int = 0) -> str:
    """A block mapping or sequence at ``indent``; every line ends with a line feed."""
    pad = " " * indent
    sequence = draw(st.booleans())
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        lead = pad + ("-" if sequence else draw(_KEY) + ":")
        kind = draw(st.sampled_from(["scalar", "scalar", "flow", "block", "lines", "nested", ""]))
        if kind == "nested" and depth < 3:
            step = 2 if sequence else draw(st.sampled_from([0, 1, 2, 4]))
            lines.append(lead + draw(_COMMENT) + "\n" + draw(_block(indent + step, depth + 1)))
            continue
        value = {
            "flow": lambda: " " + draw(_flow()),
            "block": lambda: " " + draw(_block_scalar(indent)),
            "lines": lambda: " " + draw(_folded(pad + "  ")),
            "": lambda: "",
        }.get(kind, lambda: " " + draw(_SCALAR))()
        line = lead + value
        lines.append(line if line.endswith("\n") else line + draw(_COMMENT) + "\n")
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["\n", "# own line\n", pad + "# indented\n"])))
    return "".join(lines)


_DOCUMENT = st.one_of(
    _block(),
    _block(),
    _flow().map(lambda text: text + "\n"),
    _SCALAR.map(lambda text: text + "\n"),
    st.sampled_from(["", "# only a comment\n", "\n\n"]),
)
_QUICK = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@_QUICK
@given(_DOCUMENT)
@example("a: 0X1F\nb: 1_000\nc: 0b101\nd: 9223372036854775808\ne: .iNf\n")
@example("a: {url: http://x.org}\n")
@example("{ ?foo: bar }\n")
@example("a: ${UNSET}\nb: ${SET}\n")
@example("a: 1\na: 2\n")
@example("1: a\n")
@example('a: "\\0"\n')
@example("a: [|]\nb: {c: >}\n")
@example("a: |\n")
@example('a: "\\x24{SET}"\nb: "\\x24{UNSET}"\n')
@example("a: &x 1\nb: *x\n")
@example("--- a\n")
@example("a: |+\n  x")
@example("{first\n  name: 8}\n")
@example("{a\n: b}\n")
@example('{"a\\\n b": 1}\n')
@example("? |\n")
@example('"a\\0": 1\n')
def test_generated_documents_load_alike(text: str) -> None:
    assert_same(text)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.one_of(_NUMBERISH, st.text(_CHARS, min_size=1, max_size=8)))
def test_plain_scalars_resolve_alike(token: str) -> None:
    for text in (f"v: {token}\n", f"- [{token}]\n", f"{token}: v\n", f"{{{token}: v}}\n"):
        assert_same(text)


@pytest.mark.parametrize(
    ("limit", "value"), [("MAX_DEPTH", 3), ("MAX_NODES", 12), ("MAX_NODES", 40)]
)
@settings(_QUICK, max_examples=40)
@given(text=_block())
def test_the_limits_hold_alike(limit: str, value: int, text: str) -> None:
    """With low limits (the walk over yaml_rs's result checks them, after the scan's bound
    on the nodes), both paths still agree."""
    saved = getattr(yamlguard, limit)
    setattr(yamlguard, limit, value)
    try:
        assert_same(text)
    finally:
        setattr(yamlguard, limit, saved)


@pytest.mark.parametrize("levels", [100, 101])
def test_nesting_past_the_limit_goes_to_the_reference(levels: int) -> None:
    """yaml_rs reads 101 levels (it stops at 255): the walk over its result refuses them."""
    text = "a: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"
    assert assert_same(text) is (levels == 100)


# -- what takes the fast path, and what does not ---------------------------------------------

_ORDINARY = "version: 1\nlists:\n  - {name: News, value: '${SET}', n: 0x1F, f: .5}\n"


def test_ordinary_text_takes_the_fast_path() -> None:
    assert yamlfast.load(_ORDINARY, EXPAND) == (
        {"version": 1, "lists": [{"name": "News", "value": "value", "n": 31, "f": 0.5}]},
    )


def test_the_walk_changes_what_yaml_rs_built_in_place() -> None:
    parsed = {"a": ["xy", {"b": "xy"}], "c": "${X}"}
    inner, nested = parsed["a"], parsed["a"][1]  # type: ignore[index]
    data, built = yamlfast._rebuild(parsed, "\nc: ${X}\n", lambda text: text.replace("$", "!"))
    assert data is parsed and data["a"] is inner and data["a"][1] is nested
    assert data == {"a": ["xy", {"b": "xy"}], "c": "!{X}"}
    assert built.nodes == 1 + 2 * 2 + 2 + 2 * 1


def test_each_file_is_parsed_once_by_yaml_rs_and_never_by_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "reconciler.yaml").write_text(root_yaml().replace("state.db", "s.db"))
    (tmp_path / "lists" / "a.yaml").write_text(list_yaml(1, 2))
    (tmp_path / "lists" / "b.yaml").write_text(list_yaml(2, 2))
    fast: list[str] = []
    parse = yamlfast._parser()
    assert parse is not None
    monkeypatch.setattr(yamlfast, "_parse", lambda text: fast.append(text) or parse(text))
    monkeypatch.setattr(yamlio, "_compose", lambda text: pytest.fail("the reference ran"))
    config = load_config(tmp_path / "reconciler.yaml", {})
    assert len(fast) == 3 and len(config.lists) == 2


@pytest.mark.parametrize(
    "text",
    [
        "- " * 200 + "x\n",  # block nesting past what the scan lets yaml_rs see
        "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 80)),
        "- [" + "a," * 200_000 + "a]\n",  # more nodes than the limit could allow
        "a: \t1\n",
        "a: b\r\n",
        "\ufeffa: 1\n",
        "a: x\x85y\n",
        "a: &x 1\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: [x]\nb: c:d\n",
        "a: |+\n  x",  # no line feed at the end
    ],
    ids=lambda text: repr(text[:24]),
)
def test_the_scan_keeps_risky_texts_from_yaml_rs(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_yaml_rs(monkeypatch)
    assert yamlfast.load(text) is None


def test_yaml_rs_stops_flow_nesting_itself() -> None:
    """The scan leaves flow nesting to yaml_rs's own limit (255 levels); pinned here."""
    with pytest.raises(yaml_rs.YAMLDecodeError):
        yaml_rs.loads("a: " + "[" * 300 + "]" * 300)
    assert yamlfast.load("a: " + "[" * 300 + "]" * 300 + "\n") is None


def test_other_threads_take_the_reference_path() -> None:
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(yamlfast.load(_ORDINARY, EXPAND)))
    thread.start()
    thread.join()
    assert results == [None]


def _forbid_yaml_rs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert yamlfast._parser() is not None  # imported now: it stays replaced
    monkeypatch.setattr(yamlfast, "_parse", lambda text: pytest.fail("yaml_rs ran"))


# -- the switches ---------------------------------------------------------------------------


def test_the_environment_forces_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_YAML", "reference")
    _forbid_yaml_rs(monkeypatch)
    assert yamlfast.load(_ORDINARY, EXPAND) is None
    assert_same(_ORDINARY)


@pytest.mark.parametrize("module", [None, "untested"], ids=["missing", "untested-version"])
def test_without_a_usable_yaml_rs_the_reference_runs(
    module: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if module is None:
        monkeypatch.setitem(sys.modules, "yaml_rs", None)  # importing it raises ImportError
    else:
        monkeypatch.setattr(yaml_rs, "__version__", "0.2.0")
    monkeypatch.setattr(yamlfast, "_imported", False)
    monkeypatch.setattr(yamlfast, "_parse", None)
    assert yamlfast.load(_ORDINARY, EXPAND) is None
    assert_same(_ORDINARY)


def test_the_allocator_option_does_not_outlive_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIMALLOC_ARENA_EAGER_COMMIT", raising=False)
    monkeypatch.setattr(yamlfast, "_imported", False)
    monkeypatch.setattr(yamlfast, "_parse", None)
    assert yamlfast._parser() is not None
    assert "MIMALLOC_ARENA_EAGER_COMMIT" not in os.environ
