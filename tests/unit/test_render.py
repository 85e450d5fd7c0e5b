"""Renderers: plans, drift reports and apply results as text, JSON, markdown and JUnit."""

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
    DriftStatus,
    Outcome,
    Plan,
    SafetyLimit,
    SafetyReport,
    Unmanaged,
)
from reconciler.render import render_apply_result, render_drift, render_plan

ANSI = re.compile(r"\x1b\[[0-9;]*m")
GMAIL = {"field": "email", "op": "contains", "value": "@gmail.com"}
RECENT = {
    "any": [
        {"field": "date_subscribed", "op": "after", "value": "2024-01-01"},
        {"list": "VIP", "op": "not_in"},
    ]
}


def segment(name: str, *rules: dict[str, Any], **extra: Any) -> Segment:
    return Segment(name=name, rules=rules, **extra)


def live(name: str, *rules: dict[str, Any], id: str = "1", **extra: Any) -> LiveSegment:
    return LiveSegment(id=id, name=name, rules=rules, **extra)


def change(action: Action, list_: str = "Newsletter", **fields: Any) -> Change:
    return Change(action=action, target="local", list=list_, **fields)


def create(seg: Segment, list_: str = "Newsletter") -> Change:
    return change(Action.CREATE_SEGMENT, list_, segment=seg.name, after=seg)


def delete(seg: LiveSegment, list_: str = "Newsletter") -> Change:
    return change(Action.DELETE_SEGMENT, list_, segment=seg.name, before=seg)


def update(before: LiveSegment, after: Segment, *diff: str, list_: str = "Newsletter") -> Change:
    return change(
        Action.UPDATE_SEGMENT, list_, segment=after.name, before=before, after=after, diff=diff
    )


@pytest.fixture
def plan() -> Plan:
    """One change of each kind across two lists, an unmanaged segment and a tripped limit."""
    gmail = segment("Gmail 2024 signups", GMAIL, RECENT)
    old = live("Old", {"field": "email", "op": "ends_with", "value": ".org"}, id="7")
    new = segment("New", {"field": "email", "op": "ends_with", "value": ".com"})
    gone = live(
        "Gone",
        {"field": "status", "op": "equals", "value": "bounced"},
        {"campaign": "c1", "event": "opened"},
        id="9",
        match="any",
    )
    limit = SafetyLimit(
        target="local",
        list="Promo",
        reason='deleting all 1 segments of list "Promo" would leave it with no segments',
        deletes=("Gone", "Old promo"),
    )
    return Plan(
        changes=(
            change(Action.CREATE_LIST),
            change(Action.CREATE_FIELD, field=FieldDef(name="Frequency", type="select")),
            create(gmail),
            update(
                old,
                new,
                '~ name: "Old" -> "New"',
                '- email ends with ".org"',
                '+ email ends with ".com"',
                list_="Promo",
            ),
            delete(gone, "Promo"),
        ),
        unmanaged=(
            Unmanaged(target="local", list="Newsletter", segment="Legacy", segment_id="42"),
        ),
        safety=SafetyReport(limits=(limit,)),
    )


PLAN_TEXT = """\
  + list "Newsletter" (local)
  + field "Frequency" (select) in list "Newsletter"
  + segment "Gmail 2024 signups" (Newsletter @ local)
      + email contains "@gmail.com"
      + any(date_subscribed after "2024-01-01", not in list "VIP")

  ~ segment "Old" -> "New" (Promo @ local)
      ~ name: "Old" -> "New"
      - email ends with ".org"
      + email ends with ".com"
  - segment "Gone" (Promo @ local)
      - match: any
      - status equals "bounced"
      - opened campaign c1

Unmanaged (not declared, left alone because the list does not prune):
  segment "Legacy" (Newsletter @ local), id 42

! Safety limit: deleting all 1 segments of list "Promo" would leave it with no segments.
  Segments to delete: "Gone", "Old promo".
  Acknowledge with --allow-delete Gone --allow-delete 'Old promo', or all with --allow-deletes.

Plan: 3 to create, 1 to update, 1 to delete.
"""


def test_render_plan_text_is_terraform_style(plan: Plan) -> None:
    assert render_plan(plan, "text") == PLAN_TEXT


def test_render_plan_text_empty_plan_says_no_changes() -> None:
    assert render_plan(Plan(), "text") == (
        "No changes. The live state matches the configuration.\n"
    )


def test_render_plan_text_empty_plan_still_lists_unmanaged() -> None:
    plan = Plan(unmanaged=(Unmanaged(target="t", list="L", segment="S", segment_id="3"),))
    assert render_plan(plan, "text") == (
        "Unmanaged (not declared, left alone because the list does not prune):\n"
        '  segment "S" (L @ t), id 3\n'
        "\n"
        "No changes. The live state matches the configuration.\n"
    )


@pytest.mark.parametrize(
    ("actions", "summary"),
    [
        ([Action.CREATE_SEGMENT] * 2 + [Action.UPDATE_SEGMENT], "2 to create, 1 to update, 0 to"),
        ([Action.CREATE_LIST, Action.CREATE_FIELD], "2 to create, 0 to update, 0 to"),
        ([Action.ADD_RULE_GROUP, Action.DELETE_SEGMENT], "0 to create, 1 to update, 1 to"),
    ],
)
def test_render_plan_text_summary_line(actions: list[Action], summary: str) -> None:
    changes = tuple(change(a, segment=f"s{i}") for i, a in enumerate(actions))
    text = render_plan(Plan(changes=changes), "text")
    assert text.splitlines()[-1] == f"Plan: {summary} delete."


@pytest.mark.parametrize(
    ("before", "after", "header"),
    [
        ("Same", "Same", '  ~ segment "Same" (Newsletter @ local)'),
        ("Old", "New", '  ~ segment "Old" -> "New" (Newsletter @ local)'),
        ('Say "hi"', 'Say "hi"', '  ~ segment "Say \\"hi\\"" (Newsletter @ local)'),
    ],
)
def test_render_plan_text_update_header_shows_rename(before: str, after: str, header: str) -> None:
    diff = "+ email is not empty"
    plan = Plan(changes=(update(live(before, GMAIL), segment(after, GMAIL), diff),))
    assert render_plan(plan, "text").splitlines()[:2] == [header, f"      {diff}"]


def test_render_plan_text_create_shows_match_and_options() -> None:
    seg = segment("Either", GMAIL, RECENT, match="any", options={"isPublished": False})
    lines = render_plan(Plan(changes=(create(seg),)), "text").splitlines()
    assert lines[1:5] == [
        "      + match: any",
        '      + email contains "@gmail.com"',
        '      + any(date_subscribed after "2024-01-01", not in list "VIP")',
        '      + options: {"isPublished": false}',
    ]


def test_render_plan_text_acknowledged_limit_is_not_a_warning() -> None:
    limit = SafetyLimit(target="t", list="L", reason="too many", deletes=("A",), acknowledged=True)
    text = render_plan(Plan(safety=SafetyReport(limits=(limit,))), "text")
    assert "!" not in text
    assert '  Safety limit acknowledged: too many.\n  Deleting: "A".\n' in text


def test_render_plan_text_has_no_ansi_without_color(plan: Plan) -> None:
    assert "\x1b" not in render_plan(plan, "text")
    assert "\x1b" not in render_plan(plan, "text", color=False)


def test_render_plan_text_colours_symbols_when_asked(plan: Plan) -> None:
    text = render_plan(plan, "text", color=True)
    assert ANSI.sub("", text) == PLAN_TEXT
    assert "\x1b[32m+\x1b[0m \x1b[1msegment" in text  # green +, bold header
    assert "\x1b[33m~ name:" in text  # yellow ~
    assert "\x1b[31m- email ends with" in text  # red -
    assert '\x1b[32m+ email ends with ".com"' in text
    assert "\x1b[31m\x1b[1m! Safety limit" in text  # bold red
    assert "\x1b[1mPlan: 3 to create" in text


def test_render_plan_json_is_the_plan_document(plan: Plan) -> None:
    text = render_plan(plan, "json")
    assert text.endswith("}\n")
    document = json.loads(text)
    assert document == json.loads(json.dumps(plan.to_document()))
    assert document["format_version"] == 1
    assert document["summary"] == {"create": 3, "update": 1, "delete": 1}
    assert document["safety"]["limits"][0]["deletes"] == ["Gone", "Old promo"]
    updated = document["changes"][3]
    assert list(updated)[:7] == ["action", "target", "list", "segment", "before", "after", "diff"]
    assert updated["action"] == "update_segment"
    assert updated["before"]["id"] == "7"
    assert updated["diff"][0] == '~ name: "Old" -> "New"'


def test_render_plan_json_is_stable(plan: Plan) -> None:
    assert render_plan(plan, "json") == render_plan(plan.model_copy(), "json")


PLAN_MARKDOWN = """\
### Reconciler plan

**Plan: 1 to create, 0 to update, 1 to delete.**

| action | target | list | segment |
| --- | --- | --- | --- |
| create\\_segment | local | A\\|B | Gmail \\| Yahoo |
| delete\\_segment | local | A\\|B | Old |

`+ segment "Gmail | Yahoo" (A|B @ local)`

```diff
+ email contains "@gmail.com"
```

`- segment "Old" (A|B @ local)`

```diff
- email contains "@gmail.com"
```

#### Unmanaged

Not declared, left alone because the list does not prune:

- `segment "Legacy" (A|B @ local), id 42`

#### Safety limits

- **Refused:** deleting 4 of 10 segments (40%) from list "A\\|B" exceeds the limit of 30%. \
Segments to delete: "Old". Acknowledge with --allow-delete Old, or all with --allow-deletes.
"""


def test_render_plan_markdown_escapes_table_cells() -> None:
    reason = 'deleting 4 of 10 segments (40%) from list "A|B" exceeds the limit of 30%'
    plan = Plan(
        changes=(create(segment("Gmail | Yahoo", GMAIL), "A|B"), delete(live("Old", GMAIL), "A|B")),
        unmanaged=(Unmanaged(target="local", list="A|B", segment="Legacy", segment_id="42"),),
        safety=SafetyReport(
            limits=(SafetyLimit(target="local", list="A|B", reason=reason, deletes=("Old",)),)
        ),
    )
    assert render_plan(plan, "markdown") == PLAN_MARKDOWN


def test_render_plan_markdown_empty_plan() -> None:
    assert render_plan(Plan(), "markdown") == (
        "### Reconciler plan\n\n**No changes. The live state matches the configuration.**\n"
    )


def test_render_plan_markdown_fences_survive_backticks() -> None:
    seg = segment("Ticks", {"field": "name", "op": "equals", "value": "a```b"})
    text = render_plan(Plan(changes=(create(seg),)), "markdown")
    assert '````diff\n+ name equals "a```b"\n````\n' in text


def test_render_plan_rejects_unknown_format(plan: Plan) -> None:
    with pytest.raises(ValueError, match="unknown plan format 'html'"):
        render_plan(plan, "html")  # type: ignore[arg-type]


# --- drift -----------------------------------------------------------------------------


def item(segment: str, status: DriftStatus, *diff: str, list_: str = "Newsletter") -> DriftItem:
    return DriftItem(target="local", list=list_, segment=segment, status=status, diff=diff)


@pytest.fixture
def report() -> DriftReport:
    return DriftReport(
        items=(
            item("In sync", "in_sync"),
            item(
                "Gmail", "changed", '- email contains "@yahoo.com"', '+ email contains "@gmail.com"'
            ),
            item("New <&>", "missing"),
            item("Legacy", "unmanaged"),
            item("Stale", "extra", list_="Promo"),
        )
    )


DRIFT_TEXT = """\
  ~ segment "Gmail" (Newsletter @ local): differs from the configuration
      - email contains "@yahoo.com"
      + email contains "@gmail.com"
  + segment "New <&>" (Newsletter @ local): declared but missing from the platform
  ? segment "Legacy" (Newsletter @ local): not declared; left alone because the list does not prune

  - segment "Stale" (Promo @ local): not declared; apply would delete it because the list prunes

Drift: 4 segments differ (1 changed, 1 missing, 1 unmanaged, 1 extra); 1 in sync.
"""


def test_render_drift_text_lists_each_drifted_segment(report: DriftReport) -> None:
    assert render_drift(report, "text") == DRIFT_TEXT


@pytest.mark.parametrize(
    ("statuses", "summary"),
    [
        ([], "No drift. 0 segments in sync."),
        (["in_sync"], "No drift. 1 segment in sync."),
        (["in_sync"] * 3, "No drift. 3 segments in sync."),
        (
            ["changed", "in_sync"],
            "Drift: 1 segment differs (1 changed, 0 missing, 0 unmanaged, 0 extra); 1 in sync.",
        ),
        (
            ["missing", "extra"],
            "Drift: 2 segments differ (0 changed, 1 missing, 0 unmanaged, 1 extra); 0 in sync.",
        ),
    ],
)
def test_render_drift_text_summary_line(statuses: list[DriftStatus], summary: str) -> None:
    report = DriftReport(items=tuple(item(f"s{i}", s) for i, s in enumerate(statuses)))
    assert render_drift(report, "text").splitlines()[-1] == summary


def test_render_drift_text_colour_only_when_asked(report: DriftReport) -> None:
    assert "\x1b" not in render_drift(report, "text")
    coloured = render_drift(report, "text", color=True)
    assert "\x1b[33m~\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == DRIFT_TEXT


def test_render_drift_json_document(report: DriftReport) -> None:
    document = json.loads(render_drift(report, "json"))
    assert list(document) == ["format_version", "items", "summary"]
    assert document["format_version"] == 1
    assert document["items"][1] == {
        "target": "local",
        "list": "Newsletter",
        "segment": "Gmail",
        "status": "changed",
        "diff": ['- email contains "@yahoo.com"', '+ email contains "@gmail.com"'],
    }
    assert document["summary"] == {
        "in_sync": 1,
        "changed": 1,
        "missing": 1,
        "unmanaged": 1,
        "extra": 1,
        "drifted": 4,
    }


def test_render_drift_markdown_table(report: DriftReport) -> None:
    report = DriftReport(items=(*report.items, item("A|B", "unmanaged")))
    assert render_drift(report, "markdown") == (
        "### Reconciler drift\n"
        "\n"
        "**Drift: 5 segments differ (1 changed, 1 missing, 2 unmanaged, 1 extra); 1 in sync.**\n"
        "\n"
        "| status | target | list | segment |\n"
        "| --- | --- | --- | --- |\n"
        "| changed | local | Newsletter | Gmail |\n"
        "| missing | local | Newsletter | New \\<&\\> |\n"
        "| unmanaged | local | Newsletter | Legacy |\n"
        "| unmanaged | local | Newsletter | A\\|B |\n"
        "| extra | local | Promo | Stale |\n"
        "\n"
        '`~ segment "Gmail" (Newsletter @ local)`\n'
        "\n"
        "```diff\n"
        '- email contains "@yahoo.com"\n'
        '+ email contains "@gmail.com"\n'
        "```\n"
    )


def test_render_drift_markdown_without_drift() -> None:
    report = DriftReport(items=(item("A", "in_sync"),))
    assert render_drift(report, "markdown") == (
        "### Reconciler drift\n\n**No drift. 1 segment in sync.**\n"
    )


def test_render_drift_junit_is_parseable_with_counts(report: DriftReport) -> None:
    root = ET.fromstring(render_drift(report, "junit"))
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.attrib["name"] == "reconciler drift"
    assert (suite.attrib["tests"], suite.attrib["failures"]) == ("5", "4")
    cases = suite.findall("testcase")
    assert [(c.attrib["classname"], c.attrib["name"]) for c in cases] == [
        ("local.Newsletter", "In sync"),
        ("local.Newsletter", "Gmail"),
        ("local.Newsletter", "New <&>"),
        ("local.Newsletter", "Legacy"),
        ("local.Promo", "Stale"),
    ]
    assert cases[0].find("failure") is None
    failures = [c.find("failure") for c in cases[1:]]
    assert [f.attrib["type"] for f in failures if f is not None] == [
        "changed",
        "missing",
        "unmanaged",
        "extra",
    ]
    changed = failures[0]
    assert changed is not None
    assert changed.attrib["message"] == (
        'segment "Gmail" (Newsletter @ local): differs from the configuration'
    )
    assert changed.text == '- email contains "@yahoo.com"\n+ email contains "@gmail.com"'


def test_render_drift_junit_survives_characters_xml_forbids() -> None:
    # control characters are shown escaped, not replaced (issue 11, item 7)
    report = DriftReport(items=(item("Bell\x07 ]]> &", "changed", "- a\x00\ufffe"),))
    root = ET.fromstring(render_drift(report, "junit"))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.attrib["name"] == "Bell\\x07 ]]> &"
    failure = case.find("failure")
    assert failure is not None and failure.text == "- a\\x00\ufffd"


def test_render_drift_rejects_unknown_format(report: DriftReport) -> None:
    with pytest.raises(ValueError, match="unknown drift format"):
        render_drift(report, "csv")  # type: ignore[arg-type]


# --- apply results ---------------------------------------------------------------------


@pytest.fixture
def result() -> ApplyResult:
    old, new = live("Y", GMAIL), segment("Y", GMAIL)
    return ApplyResult(
        outcomes=(
            Outcome(change=create(segment("X", GMAIL)), status="applied"),
            Outcome(
                change=update(old, new, "+ a"),
                status="failed",
                message="lists/news.yaml:4:3: HTTP 400\nfield unknown",
            ),
            Outcome(change=change(Action.CREATE_LIST, "L"), status="applied"),
            Outcome(change=delete(live("Z", GMAIL), "L"), status="skipped", message="list failed"),
        )
    )


def test_render_apply_result_one_line_per_outcome(result: ApplyResult) -> None:
    assert render_apply_result(result) == (
        'applied  + segment "X" (Newsletter @ local)\n'
        'failed   ~ segment "Y" (Newsletter @ local): lists/news.yaml:4:3: HTTP 400\n'
        "           field unknown\n"
        'applied  + list "L" (local)\n'
        'skipped  - segment "Z" (L @ local): list failed\n'
        "Apply: 2 applied, 1 failed, 1 skipped.\n"
    )


def test_render_apply_result_empty() -> None:
    assert render_apply_result(ApplyResult()) == "Apply: 0 applied, 0 failed, 0 skipped.\n"


def test_render_apply_result_colour_only_when_asked(result: ApplyResult) -> None:
    assert "\x1b" not in render_apply_result(result)
    coloured = render_apply_result(result, color=True)
    assert "\x1b[32mapplied\x1b[0m" in coloured
    assert "\x1b[31mfailed\x1b[0m" in coloured
    assert "\x1b[33mskipped\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == render_apply_result(result)


def test_render_plan_markdown_never_mentions_anyone() -> None:
    """A name read from a platform (``@org/team``) must not ping people from a PR comment."""
    seg = segment("@org/team", {"field": "email", "op": "contains", "value": "@"})
    text = render_plan(Plan(changes=(create(seg),)), "markdown")
    table = [line for line in text.splitlines() if line.startswith("| create")]
    assert table and "@\u200b" not in table[0]
    assert "@&#8203;org/team" in table[0]
    assert "@org" not in table[0]


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
def test_printable_takes_plain_ascii_as_is_and_escapes_as_before(text: str) -> None:
    from reconciler.render import _UNSAFE, _escaped, printable

    shown = printable(text)
    assert shown == _UNSAFE.sub(_escaped, text)
    assert printable(text, keep="\n") == "\n".join(
        _UNSAFE.sub(_escaped, p) for p in text.split("\n")
    )
    if text.isascii() and text.isprintable():
        assert shown is text
