"""Terminal safety (issue 11, item 7): names are user and platform data.

Control characters (C0, DEL, C1, ESC), bidirectional controls and line separators in a
name, value, id or message never reach the terminal, a pull-request page or a CI report
raw: text, Markdown and JUnit show them escaped (``\\x1b``, ``\\u202e``); JSON is ASCII.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import FieldDef, LiveSegment, Segment
from reconciler.plan import (
    Action,
    ApplyResult,
    Change,
    DriftItem,
    DriftReport,
    Outcome,
    Plan,
    SafetyLimit,
    SafetyReport,
    Unmanaged,
)
from reconciler.render import printable, render_apply_result, render_drift, render_plan
from tests.cli.conftest import Project, segments_yaml

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
"""What must never be shown raw (line breaks are checked apart: only the layout's own)."""
OUR_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE = [
    "\x1b[2J\x1b[31mred",  # clear the screen, colour
    "\x1b]0;title\x07",  # set the window title
    "evil\u202eexe.txt",  # right-to-left override
    "\u2066isolate\u2069",
    "\u200fmark\u200e",
    "c1\x85\x9bnext",  # NEL and the 8-bit CSI
    "line\nbreak\rreturn",
    "nul\x00del\x7f",
    "sep\u2028\u2029",
    "alm\u061c",
]


def unsafe_in(text: str) -> list[str]:
    """Raw unsafe characters of ``text`` besides its own line breaks and colour codes."""
    return UNSAFE.findall(OUR_COLOURS.sub("", text).replace("\n", ""))


def _rule(value: str) -> dict[str, Any]:
    return {"field": "email", "op": "contains", "value": value}


def _plan(name: str) -> Plan:
    after = Segment(name=name, rules=(_rule(name),), options={"note": name})
    before = LiveSegment(id=name, name=f"{name}-old", rules=(_rule(name),))
    changes = (
        Change(action=Action.CREATE_LIST, target=name, list=name),
        Change(action=Action.CREATE_FIELD, target=name, list=name, field=FieldDef(name=name)),
        Change(action=Action.CREATE_SEGMENT, target=name, list=name, segment=name, after=after),
        Change(
            action=Action.UPDATE_SEGMENT,
            target=name,
            list=name,
            segment=name,
            before=before,
            after=after,
            diff=(f"- name: {name}-old", f"+ name: {name}"),
        ),
        Change(action=Action.DELETE_SEGMENT, target=name, list=name, segment=name, before=before),
    )
    limit = SafetyLimit(target=name, list=name, reason=f"deleting all of {name}", deletes=(name,))
    return Plan(
        changes=changes,
        unmanaged=(Unmanaged(target=name, list=name, segment=name, segment_id=name, reason=name),),
        safety=SafetyReport(limits=(limit,)),
    )


def _drift(name: str) -> DriftReport:
    items = tuple(
        DriftItem(target=name, list=name, segment=name, status=status, diff=(f"~ {name}",))
        for status in ("changed", "missing", "unmanaged", "extra", "in_sync")
    )
    return DriftReport(items=items)


def _applied(name: str) -> ApplyResult:
    changes = _plan(name).changes
    statuses = ("applied", "failed", "skipped", "failed", "skipped")
    return ApplyResult(
        outcomes=tuple(
            Outcome(change=c, status=s, message="" if s == "applied" else f"{name}: no\n{name}")
            for c, s in zip(changes, statuses, strict=True)
        )
    )


def outputs(name: str) -> dict[str, str]:
    plan, drift, applied = _plan(name), _drift(name), _applied(name)
    return {
        "plan text": render_plan(plan, "text"),
        "plan text colour": render_plan(plan, "text", color=True),
        "plan markdown": render_plan(plan, "markdown"),
        "drift text": render_drift(drift, "text", color=True),
        "drift markdown": render_drift(drift, "markdown"),
        "drift junit": render_drift(drift, "junit"),
        "apply text": render_apply_result(applied, color=True),
    }


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_are_shown_escaped_in_every_human_format(name: str) -> None:
    for fmt, text in outputs(name).items():
        assert not unsafe_in(text), (fmt, unsafe_in(text))
        assert printable(name) in text or json.dumps(name)[1:-1] in text or fmt == "drift junit"


@given(name=st.text(min_size=1, max_size=20))
def test_no_name_can_put_a_control_character_on_the_terminal(name: str) -> None:
    for fmt, text in outputs(name).items():
        assert not unsafe_in(text), (fmt, unsafe_in(text))


def test_a_name_cannot_forge_lines_of_the_report() -> None:
    name = 'x" (L @ t)\n  - segment "FORGED'
    for fmt, text in outputs(name).items():
        for line in text.splitlines():
            if fmt == "apply text" and line.startswith(" " * 11):
                continue  # a message's own next line, indented under its change
            assert not line.lstrip().startswith('- segment "FORGED'), (fmt, line)


def test_escapes_are_readable() -> None:
    assert printable("a\x1b[31mb\u202ec\x85\u2066") == "a\\x1b[31mb\\u202ec\\x85\\u2066"
    assert printable("keep\nlines\tnot tabs", keep="\n") == "keep\nlines\\x09not tabs"
    assert printable("café ☕ 日本 \u200d") == "café ☕ 日本 \u200d"  # letters and joiners stay


def test_junit_shows_the_escaped_name_and_stays_well_formed() -> None:
    name = "\x1b[31mred\u202e\x00"
    root = ET.fromstring(render_drift(_drift(name), "junit"))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.attrib["name"] == "\\x1b[31mred\\u202e\\x00"
    assert case.attrib["classname"] == f"{printable(name)}.{printable(name)}"


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_json_reports_are_ascii_and_keep_the_name(name: str) -> None:
    planned = render_plan(_plan(name), "json")
    drifted = render_drift(_drift(name), "json")
    for text in (planned, drifted):
        assert text.isascii()  # ensure_ascii: bidi characters are \uXXXX escapes too
    assert json.loads(planned)["changes"][2]["segment"] == name
    assert json.loads(drifted)["items"][0]["segment"] == name


# -- end to end: the CLI's output and its error lines -------------------------------------------


def test_cli_plan_and_drift_show_hostile_names_escaped(project: Project) -> None:
    project.write(
        'lists:\n  - name: "News\\e[2J\\u202e"\n    prune: true\n    segments:\n'
        + segments_yaml('"Bad\\e]0;pwned\\a\\u2066name"')
    )
    for argv in (
        ["plan"],
        ["plan", "--format", "markdown"],
        ["drift"],
        ["drift", "--format", "junit"],
    ):
        result = project.run(*argv)
        assert result.exit_code in (0, 2), result.output
        assert not unsafe_in(result.output), (argv, unsafe_in(result.output))
        assert "\\x1b" in result.output and "\\u202e" in result.output
    applied = project.run("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert not unsafe_in(applied.output)


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--list", "\x1b[2Jgone\u202e"],
        ["plan", "--target", "x\x9b31m\u2067"],
        ["plan", "--format", "\x1b[31mjson"],
        ["plan", "--timeout", "\x1b[31m"],
    ],
)
def test_cli_error_lines_show_what_was_typed_escaped(project: Project, argv: list[str]) -> None:
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A"))
    result = project.run(*argv)
    assert result.exit_code == 1
    assert "Error" in result.stderr
    assert not unsafe_in(result.output), unsafe_in(result.output)
