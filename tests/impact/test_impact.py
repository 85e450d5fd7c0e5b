"""Impact of a plan's changes on sample subscribers, and --max-shrink, on plain data."""

from __future__ import annotations

import json

import pytest

from reconciler.impact import change_impact, shrink_limits, with_impact
from reconciler.model import LiveSegment
from reconciler.plan import Action, Change, Impact, Plan, SafetyReport, ShrinkLimit
from reconciler.planning import SafetyPolicy, acknowledge, plan, plan_differences
from tests.impact.support import (
    GMAIL,
    MONTHLY,
    NATIVE,
    PROVIDERS,
    WEEKLY,
    WEEKLY_3_MONTHLY_1,
    config,
    live,
    person,
    sample,
    seg,
)


def _impacts(current: Plan) -> dict[tuple[str, str | None], Impact | None]:
    return {(c.action.value, c.segment): c.impact for c in current.changes}


def test_impact_of_create_update_and_delete_counts_members_before_and_after() -> None:
    declared = config(seg("Weekly", MONTHLY), seg("Gmail", GMAIL))
    current = plan(
        declared,
        live(("Weekly", [WEEKLY]), ("Old", [GMAIL])),
        PROVIDERS,
        SafetyPolicy(sample=WEEKLY_3_MONTHLY_1),
    )
    assert _impacts(current) == {
        ("update_segment", "Weekly"): Impact(sample=4, before=3, after=1, left=3, joined=1),
        ("create_segment", "Gmail"): Impact(sample=4, before=0, after=2, joined=2),
        ("delete_segment", "Old"): Impact(sample=4, before=2, after=0, left=2),
    }


def test_without_a_sample_no_change_has_an_impact_and_the_evaluator_is_not_needed() -> None:
    current = plan(config(seg("Weekly", MONTHLY)), live(("Weekly", [WEEKLY])), PROVIDERS)
    assert [c.impact for c in current.changes] == [None]
    assert current.safety.shrink_limits is None and current.safety.max_shrink_fraction is None


def test_a_list_without_sample_subscribers_and_list_changes_have_no_impact() -> None:
    declared = config(seg("Weekly", MONTHLY), name="Fresh")
    others = sample(person("z@x.org", "Weekly", list_name="Elsewhere"))
    current = plan(declared, live(), PROVIDERS, SafetyPolicy(sample=others))
    assert [(c.action, c.impact) for c in current.changes] == [
        (Action.CREATE_LIST, None),
        (Action.CREATE_FIELD, None),
        (Action.CREATE_SEGMENT, None),
    ]
    fresh = sample(person("z@x.org", "Monthly", list_name="Fresh"))
    current = plan(declared, live(), PROVIDERS, SafetyPolicy(sample=fresh))
    assert [c.impact for c in current.changes] == [
        None,
        None,
        Impact(sample=1, before=0, after=1, joined=1),
    ]


def test_subscribers_a_native_rule_decides_are_counted_apart() -> None:
    changes = plan(
        config(seg("Weekly", {"any": [WEEKLY, NATIVE]})),
        live(("Weekly", [WEEKLY])),
        PROVIDERS,
        SafetyPolicy(sample=WEEKLY_3_MONTHLY_1),
    ).changes
    # Weekly ones stay members (any with a true member is true); the Monthly one is undecided.
    assert changes[0].impact == Impact(sample=4, before=3, after=3, undecided=1)


def test_change_impact_is_none_for_a_field_change() -> None:
    change = Change(action=Action.CREATE_FIELD, target="t", list="News")
    assert change_impact(change, WEEKLY_3_MONTHLY_1, {}) is None


def test_with_impact_keeps_the_order_and_the_changes() -> None:
    current = plan(
        config(seg("Weekly", MONTHLY), seg("Gmail", GMAIL)), live(("Weekly", [WEEKLY])), PROVIDERS
    )
    declared = config(seg("Weekly", MONTHLY), seg("Gmail", GMAIL))
    lists = {("t", item.name): item for item in declared.lists}
    found = with_impact(current.changes, WEEKLY_3_MONTHLY_1, lists)
    assert [c.model_copy(update={"impact": None}) for c in found] == list(current.changes)
    assert all(c.impact is not None for c in found)


@pytest.mark.parametrize(
    ("limit", "tripped"),
    [(0.99, True), (0.5, True), (1.0, False)],  # Weekly loses 3 of its 3 members (100 %)
)
def test_max_shrink_trips_when_a_segment_loses_more_than_the_share(
    limit: float, tripped: bool
) -> None:
    current = plan(
        config(seg("Weekly", MONTHLY)),
        live(("Weekly", [WEEKLY])),
        PROVIDERS,
        SafetyPolicy(sample=WEEKLY_3_MONTHLY_1, max_shrink=limit),
    )
    assert current.safety.max_shrink_fraction == limit
    assert bool(current.safety.tripped) is tripped
    if tripped:
        (found,) = current.safety.shrink_limits or ()
        assert (found.segment, found.before, found.lost) == ("Weekly", 3, 3)
        assert found.reason == (
            'segment "Weekly" in list "News" would lose 3 of its 3 sample members (100 %), '
            f"more than --max-shrink {limit * 100:g} %"
        )


def test_max_shrink_counts_members_who_leave_not_the_count() -> None:
    # Two of three leave and two others join: the count holds, the members do not.
    people = sample(
        person("a@x.org", "Weekly"),
        person("b@x.org", "Weekly"),
        person("c@x.org", "Weekly Daily"),
        person("d@x.org", "Monthly"),
        person("e@x.org", "Monthly"),
    )
    rule = {"field": "Frequency", "op": "contains", "value": "ly"}
    changed = {"any": [{"field": "Frequency", "op": "contains", "value": "Daily"}, MONTHLY]}
    current = plan(
        config(seg("S", changed)),
        live(("S", [rule])),
        PROVIDERS,
        SafetyPolicy(sample=people, max_shrink=0.5),
    )
    assert current.changes[0].impact == Impact(sample=5, before=5, after=3, left=2, joined=0)
    assert not current.safety.tripped  # 2 of 5 = 40 %
    current = plan(
        config(seg("S", {"any": [MONTHLY, {"field": "email", "op": "equals", "value": "x"}]})),
        live(("S", [WEEKLY])),
        PROVIDERS,
        SafetyPolicy(sample=people, max_shrink=0.5),
    )
    assert current.changes[0].impact == Impact(sample=5, before=2, after=2, left=2, joined=2)
    assert [t.reason.split(" (")[0] for t in current.safety.tripped] == [
        'segment "S" in list "News" would lose 2 of its 2 sample members'
    ]


def test_max_shrink_leaves_deletions_to_the_deletion_limits() -> None:
    current = plan(
        config(seg("Keep", GMAIL)),
        live(("Keep", [GMAIL]), ("Old", [WEEKLY])),
        PROVIDERS,
        SafetyPolicy(sample=WEEKLY_3_MONTHLY_1, max_shrink=0.0),
    )
    assert [c.action for c in current.changes] == [Action.DELETE_SEGMENT]
    assert current.changes[0].impact == Impact(sample=4, before=3, after=0, left=3)
    assert current.safety.shrink_limits == ()
    assert not current.safety.tripped


@pytest.mark.parametrize(
    ("policy", "acknowledged"),
    [
        (SafetyPolicy(allow_delete=frozenset({"Weekly"})), True),
        (SafetyPolicy(allow_all=True), True),
        (SafetyPolicy(allow_delete=frozenset({"weekly"})), False),
        (SafetyPolicy(), False),
    ],
)
def test_shrink_is_acknowledged_with_the_deletion_flags(
    policy: SafetyPolicy, acknowledged: bool
) -> None:
    sampled = SafetyPolicy(
        allow_delete=policy.allow_delete,
        allow_all=policy.allow_all,
        sample=WEEKLY_3_MONTHLY_1,
        max_shrink=0.1,
    )
    current = plan(config(seg("Weekly", MONTHLY)), live(("Weekly", [WEEKLY])), PROVIDERS, sampled)
    (found,) = current.safety.shrink_limits or ()
    assert found.acknowledged is acknowledged
    assert bool(current.safety.tripped) is not acknowledged
    unacknowledged = plan(
        config(seg("Weekly", MONTHLY)),
        live(("Weekly", [WEEKLY])),
        PROVIDERS,
        SafetyPolicy(sample=WEEKLY_3_MONTHLY_1, max_shrink=0.1),
    )
    assert bool(acknowledge(unacknowledged, policy).safety.tripped) is not acknowledged


def test_shrink_limits_skip_changes_without_impact() -> None:
    change = Change(action=Action.UPDATE_SEGMENT, target="t", list="News", segment="S")
    assert shrink_limits([change], 0.0, lambda name: False) == ()


def test_a_saved_plans_impact_and_live_counts_are_not_compared() -> None:
    declared = config(seg("Weekly", MONTHLY))
    saved = plan(
        declared,
        live(("Weekly", [WEEKLY]), count=12_345),
        PROVIDERS,
        SafetyPolicy(sample=WEEKLY_3_MONTHLY_1, max_shrink=0.1),
    )
    fresh = plan(declared, live(("Weekly", [WEEKLY]), count=12_999), PROVIDERS)
    assert saved.fingerprint == fresh.fingerprint  # counts move; the live state did not
    assert plan_differences(saved, fresh) == []
    edited = saved.model_copy(
        update={
            "changes": tuple(
                c.model_copy(update={"impact": Impact(sample=1, before=0, after=0)})
                for c in saved.changes
            )
        }
    )
    assert plan_differences(edited, fresh) == []
    rules_changed = plan(config(seg("Weekly", GMAIL)), live(("Weekly", [WEEKLY])), PROVIDERS)
    assert plan_differences(saved, rules_changed) == [
        "update_segment t/News/Weekly differs from what is planned now"
    ]


def test_the_plan_document_gains_keys_only_when_a_sample_is_given() -> None:
    declared, state = config(seg("Weekly", MONTHLY)), live(("Weekly", [WEEKLY]))
    plain = plan(declared, state, PROVIDERS).to_document()
    text = json.dumps(plain)
    for key in ("impact", "member_count", "max_shrink_fraction", "shrink_limits"):
        assert f'"{key}"' not in text
    sampled = plan(
        declared, state, PROVIDERS, SafetyPolicy(sample=WEEKLY_3_MONTHLY_1, max_shrink=0.5)
    ).to_document()
    assert sampled["changes"][0]["impact"] == {  # type: ignore[index,call-overload]
        "sample": 4,
        "before": 3,
        "after": 1,
        "left": 3,
        "joined": 1,
        "undecided": 0,
    }
    assert sampled["safety"]["max_shrink_fraction"] == 0.5  # type: ignore[index,call-overload]
    assert sampled["format_version"] == 1
    again = Plan.from_document(json.dumps(sampled))
    assert again.changes[0].impact == Impact(sample=4, before=3, after=1, left=3, joined=1)
    assert Plan.from_document(json.dumps(plain)).changes[0].impact is None


def test_tripped_lists_deletion_and_shrink_limits_not_acknowledged() -> None:
    shrink = ShrinkLimit(target="t", list="L", segment="S", before=2, lost=2, reason="r")
    report = SafetyReport(shrink_limits=(shrink, shrink.model_copy(update={"acknowledged": True})))
    assert report.tripped == (shrink,)


@pytest.mark.parametrize(
    ("given", "count"),
    [
        (12345, 12345),
        ("12345", 12345),
        (" 7 ", 7),
        (0, 0),
        (-1, None),
        (True, None),
        (1.5, None),
        ("n/a", None),
        ("١٢", None),  # digits, but not ASCII ones
        ("9" * 16, None),
        (10**15, None),
        ([3], None),
        ({"count": 3}, None),
        (None, None),
    ],
)
def test_a_live_count_is_a_plain_non_negative_number_or_unknown(
    given: object, count: int | None
) -> None:
    segment = LiveSegment.model_validate({"id": "1", "name": "S", "member_count": given})
    assert segment.member_count == count
