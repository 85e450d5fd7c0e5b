"""Resource limits: aliases count what they expand to, a file holds a bounded number of
nodes, and error collection is linear (issue 11, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from reconciler import errormap, yamlguard, yamlio
from reconciler.cli import cli
from reconciler.config import load_config
from reconciler.errors import ConfigError, ConfigErrors
from reconciler.model import Config

MIB = 1024 * 1024


def _run(tmp_path: Path, text: str, *command: str) -> tuple[Any, float, int]:
    """Invoke the CLI on ``text``: the result, seconds taken and peak traced bytes."""
    root = tmp_path / "reconciler.yaml"
    root.write_text(text)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = CliRunner().invoke(cli, [*command, "-c", str(root)])
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


def _aliased(copies: int) -> str:
    """A 1 MB text anchored once and aliased ``copies`` times, as segment names' rules."""
    big = "x" * 1_000_000
    lines = [
        "version: 1",
        "targets: {local: {provider: reference, path: state.db}}",
        "lists:",
        "  - name: News",
        "    segments:",
        f"      - {{name: S0, rules: [{{field: email, op: contains, value: &big {big}}}]}}",
    ]
    lines += [
        f"      - {{name: S{i}, rules: [{{field: email, op: contains, value: *big}}]}}"
        for i in range(1, copies + 1)
    ]
    return "\n".join(lines) + "\n"


def test_a_large_text_aliased_many_times_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """200 aliases of 1 MB planned 200 MB of rules (823 MB peak RSS); now refused at load."""
    result, elapsed, peak = _run(tmp_path, _aliased(200), "plan")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: "
        + str(tmp_path / "reconciler.yaml")
        + ":6:64: aliases expand to too much text (more than 16 MiB)\n"
    )
    assert elapsed < 10
    assert peak < 50 * MIB, peak
    assert not (tmp_path / "state.db").exists()


def test_aliases_within_the_text_budget_load(tmp_path: Path) -> None:
    root = tmp_path / "reconciler.yaml"
    root.write_text(_aliased(10))  # 11 MB of text once expanded: under 16 MiB
    config = load_config(root, {})
    assert len(config.lists[0].segments) == 11


def test_the_alias_node_budget_counts_expanded_nodes() -> None:
    ten = "[" + ", ".join(["x"] * 10) + "]"
    text = f"a: &a {ten}\nb: &b [" + ", ".join(["*a"] * 10) + "]\n"
    text += "c: &c [" + ", ".join(["*b"] * 10) + "]\nd: &d [" + ", ".join(["*c"] * 10) + "]\n"
    assert yamlio.load_text(text, "t.yaml").errors == []  # about 12,000 nodes
    text += "e: [" + ", ".join(["*d"] * 10) + "]\n"  # about 120,000
    assert [str(e) for e in yamlio.load_text(text, "t.yaml").errors] == [
        "t.yaml:4:4: aliases expand to too much data"
    ]


def test_a_file_holds_at_most_the_node_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlguard, "MAX_NODES", 10)
    # the mapping, "a", the list and its items
    assert yamlio.load_text("a: [1, 2, 3, 4, 5, 6, 7]\n", "t.yaml").data is not None
    with pytest.raises(ConfigError) as caught:
        yamlio.load_text("a: [1, 2, 3, 4, 5, 6, 7, 8]\n", "t.yaml")
    assert str(caught.value) == (
        "t.yaml:1:26: the file holds more than 10 YAML nodes (the limit for one file); "
        "split it into several files with include:"
    )


def test_a_file_past_the_node_budget_stops_within_the_bounds(tmp_path: Path) -> None:
    """A 1.2 MB file of 600,000 one-letter items (at 16 MiB: 2 GB and 100 s before), in a
    child process whose own peak RSS is measured."""
    root = tmp_path / "reconciler.yaml"
    root.write_text("version: 1\nlists: [" + "a," * 600_000 + "a]\n")
    command = [sys.executable, "-m", "reconciler", "validate", "-c", str(root)]
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        err.seek(0)
        stderr = err.read().decode()
    assert child.returncode == 1, stderr
    assert stderr.startswith("Error: reconciler.yaml:2:")
    assert "the file holds more than 500,000 YAML nodes" in stderr
    assert elapsed < 10
    assert usage.ru_maxrss * 1024 < 500 * MIB  # KiB on Linux


def test_nothing_past_the_depth_limit_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml's scanner spends time per token in proportion to the depth: it must stop at
    the first node too deep, not read the rest of the file."""
    created: list[int] = []
    real = yamlio._Node.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        created.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(yamlio._Node, "__init__", counting)
    with pytest.raises(ConfigError, match="nested more than 100 levels deep"):
        yamlio.load_text("a: " + "[" * 200_000 + "]" * 200_000 + "\n", "t.yaml")
    assert len(created) == 102  # the root mapping, "a", and 100 levels of "["


def _rules_empty(segments: int) -> str:
    lines = ["version: 1", "lists:", "  - name: News", "    segments:"]
    lines += [f"      - {{name: S{i}, rules: []}}" for i in range(segments)]
    return "\n".join(lines) + "\n"


def test_twenty_thousand_errors_are_collected_in_seconds(tmp_path: Path) -> None:
    """49 s before (a quadratic search among the errors); the first 100 are listed."""
    result, elapsed, _ = _run_untraced(tmp_path, _rules_empty(20_000))
    lines = result.stderr.splitlines()
    assert len(lines) == 101
    assert lines[0] == f'Error: {tmp_path / "reconciler.yaml"}:5:20: "rules" must not be empty'
    assert lines[99].startswith(f"Error: {tmp_path / 'reconciler.yaml'}:104:")
    assert lines[100] == "Error: ... and 19,900 more problems (the first 100 are shown)"
    assert elapsed < 10, elapsed


def _run_untraced(tmp_path: Path, text: str) -> tuple[Any, float, int]:
    root = tmp_path / "reconciler.yaml"
    root.write_text(text)
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["validate", "-c", str(root)])
    return result, time.perf_counter() - started, 0


def test_translating_errors_is_linear_in_their_number() -> None:
    """The part that was quadratic, alone: 20,000 validation errors, no file to locate."""
    segments = [{"name": f"S{i}", "rules": []} for i in range(20_000)]
    data = {"version": 1, "lists": [{"name": "News", "segments": segments}]}
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(data)
    details = caught.value.errors()
    started = time.perf_counter()
    found = errormap.translate(details, data=data, file=None, root=Config)
    assert time.perf_counter() - started < 2
    assert len(found) == 20_000


def test_only_the_first_hundred_problems_are_listed() -> None:
    errors = ConfigErrors([ConfigError(f"problem {i}", file="f.yaml", line=i) for i in range(250)])
    lines = errors.lines()
    assert lines[:2] == ["f.yaml:0: problem 0", "f.yaml:1: problem 1"]
    assert len(lines) == 101
    assert lines[-1] == "... and 150 more problems (the first 100 are shown)"
    assert len(errors.errors) == 250


def test_without_the_c_parser_the_same_limits_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pure-Python composer recurses: the event walk holds it to the limits first."""
    monkeypatch.setattr(yamlio, "_compose", yamlio._compose_pure)
    with pytest.raises(ConfigError) as caught:
        yamlio.load_text("a: " + "[" * 1_000 + "\n", "t.yaml")
    assert str(caught.value) == (
        "t.yaml:1:103: nested more than 100 levels deep (the limit for a configuration file)"
    )
    monkeypatch.setattr(yamlguard, "MAX_NODES", 10)
    with pytest.raises(ConfigError, match=r"t\.yaml:1:26: the file holds more than 10 YAML"):
        yamlio.load_text("a: [1, 2, 3, 4, 5, 6, 7, 8]\n", "t.yaml")
    assert yamlio.load_text("a: [1, 2, 3, 4, 5, 6, 7]\n", "t.yaml").data == {
        "a": [1, 2, 3, 4, 5, 6, 7]
    }
