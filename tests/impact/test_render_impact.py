"""Impact and live counts in the text, Markdown and JSON plan."""

from __future__ import annotations

import json

import pytest

from reconciler.plan import Action, Change, Impact, Plan, SafetyReport, ShrinkLimit
from reconciler.render import render_plan
from tests.factories import make_live_segment, make_segment

WEEKLY = make_segment("Weekly readers")
LIVE = make_live_segment("Weekly readers").model_copy(update={"member_count": 12_345})


def _change(action: Action, impact: Impact | None = None, counted: bool = True) -> Change:
    before = LIVE if counted else LIVE.model_copy(update={"member_count": None})
    return Change(
        action=action,
        target="news",
        list="Newsletter",
        segment="Weekly readers",
        before=None if action is Action.CREATE_SEGMENT else before,
        after=None if action is Action.DELETE_SEGMENT else WEEKLY,
        diff=("~ x",) if action is Action.UPDATE_SEGMENT else (),
        impact=impact,
    )


def _first_line(change: Change) -> str:
    return render_plan(Plan(changes=(change,)), "text").splitlines()[0]


def test_an_update_shows_the_sample_before_and_after_and_the_live_count() -> None:
    impact = Impact(sample=500, before=412, after=97, left=315)
    assert _first_line(_change(Action.UPDATE_SEGMENT, impact)) == (
        '  ~ segment "Weekly readers" (Newsletter @ news)  sample: 412 → 97 (-76 %); '
        "12,345 members now"
    )


@pytest.mark.parametrize(
    ("action", "impact", "counted", "suffix"),
    [
        (
            Action.UPDATE_SEGMENT,
            Impact(sample=5, before=2, after=2, left=1, joined=1),
            False,
            "  sample: 2 → 2 (0 %), 1 leave, 1 join",
        ),
        (
            Action.UPDATE_SEGMENT,
            Impact(sample=5, before=3, after=4, joined=1, undecided=2),
            False,
            "  sample: 3 → 4 (+33 %), 2 undecided",
        ),
        (Action.UPDATE_SEGMENT, None, True, "  12,345 members now"),
        (Action.UPDATE_SEGMENT, None, False, ""),
        (
            Action.CREATE_SEGMENT,
            Impact(sample=9, before=0, after=4, joined=4),
            True,
            "  sample: 0 → 4",
        ),
        (
            Action.DELETE_SEGMENT,
            Impact(sample=9, before=4, after=0, left=4),
            True,
            "  sample: 4 → 0 (-100 %); 12,345 members now",
        ),
        (
            Action.ADD_RULE_GROUP,
            Impact(sample=9, before=1000, after=4, left=996),
            True,
            "  sample: 1,000 → 4 (-99.6 %); 12,345 members now",
        ),
    ],
)
def test_the_header_line_ends_with_what_is_known(
    action: Action, impact: Impact | None, counted: bool, suffix: str
) -> None:
    line = _first_line(_change(action, impact, counted))
    symbol = {Action.CREATE_SEGMENT: "+", Action.DELETE_SEGMENT: "-"}.get(action, "~")
    head = f'  {symbol} segment "Weekly readers" (Newsletter @ news)'
    assert line == head + suffix


def test_one_member_now_is_singular() -> None:
    change = _change(Action.DELETE_SEGMENT).model_copy(
        update={"before": LIVE.model_copy(update={"member_count": 1})}
    )
    assert _first_line(change).endswith("  1 member now")


def test_markdown_gains_a_column_only_for_what_is_known() -> None:
    plain = render_plan(Plan(changes=(_change(Action.UPDATE_SEGMENT, counted=False),)), "markdown")
    assert "| action | target | list | segment |\n" in plain
    impact = Impact(sample=500, before=412, after=97, left=315)
    both = render_plan(Plan(changes=(_change(Action.UPDATE_SEGMENT, impact),)), "markdown")
    assert (
        "| action | target | list | segment | sample | members now |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        "| update\\_segment | news | Newsletter | Weekly readers | 412 → 97 (-76 %) | 12,345 |\n"
    ) in both
    counts = render_plan(Plan(changes=(_change(Action.UPDATE_SEGMENT),)), "markdown")
    assert "| action | target | list | segment | members now |\n" in counts


def test_json_carries_the_impact_per_change_and_the_count_in_before() -> None:
    impact = Impact(sample=500, before=412, after=97, left=315)
    document = json.loads(
        render_plan(Plan(changes=(_change(Action.UPDATE_SEGMENT, impact),)), "json")
    )
    (change,) = document["changes"]
    assert change["impact"] == {
        "sample": 500,
        "before": 412,
        "after": 97,
        "left": 315,
        "joined": 0,
        "undecided": 0,
    }
    assert change["before"]["member_count"] == 12_345


def test_a_shrink_limit_is_shown_with_the_flag_that_acknowledges_it() -> None:
    limit = ShrinkLimit(
        target="news",
        list="Newsletter",
        segment="Weekly readers",
        before=412,
        lost=315,
        reason='segment "Weekly readers" in list "Newsletter" would lose 315 of its 412 '
        "sample members (76.5 %), more than --max-shrink 50 %",
    )
    safety = SafetyReport(max_shrink_fraction=0.5, shrink_limits=(limit,))
    text = render_plan(Plan(changes=(_change(Action.UPDATE_SEGMENT),), safety=safety), "text")
    assert (
        '! Safety limit: segment "Weekly readers" in list "Newsletter" would lose 315 of its '
        "412 sample members (76.5 %), more than --max-shrink 50 %.\n"
        "  Acknowledge with --allow-delete 'Weekly readers', or all with --allow-deletes.\n"
    ) in text
    done = safety.model_copy(
        update={"shrink_limits": (limit.model_copy(update={"acknowledged": True}),)}
    )
    text = render_plan(Plan(changes=(_change(Action.UPDATE_SEGMENT),), safety=done), "text")
    assert '  Safety limit acknowledged: segment "Weekly readers"' in text
    assert "Acknowledge with" not in text
    markdown = render_plan(
        Plan(changes=(_change(Action.UPDATE_SEGMENT),), safety=safety), "markdown"
    )
    assert '- **Refused:** segment "Weekly readers"' in markdown


def test_names_in_a_shrink_limit_are_printable() -> None:
    limit = ShrinkLimit(
        target="t", list="L", segment="x\x1b[31m", before=1, lost=1, reason="r \x1b[31m"
    )
    text = render_plan(Plan(safety=SafetyReport(shrink_limits=(limit,))), "text")
    assert "\x1b" not in text and "\\x1b[31m" in text
