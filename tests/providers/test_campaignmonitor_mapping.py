"""Campaign Monitor translation, pure: verb tables, clause text, CNF, checks, 277 mapping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.campaignmonitor import CAPABILITIES, checks, mapping
from providers.campaignmonitor.api import (
    CustomField,
    RuleResult,
    RulesRejected,
    WireGroup,
    WireRule,
)
from providers.campaignmonitor.clauses import canonical_clause
from providers.campaignmonitor.rejections import SegmentRulesRejected, rejected
from reconciler import shapes
from reconciler.model import BehaviourRule, NativeRule, Rule
from reconciler.rules import path_text, segment_key
from tests.factories import make_group, make_rule, make_segment

FIELDS = mapping.FieldIndex(
    [
        CustomField(
            name="Frequency",
            key="[Frequency]",
            data_type="MultiSelectOne",
            options=("Weekly", "Monthly"),
        ),
        CustomField(name="Signup Source", key="[SignupSource]", data_type="Text"),
        CustomField(name="Age", key="[Age]", data_type="Number"),
        CustomField(name="Birthday", key="[Birthday]", data_type="Date"),
        CustomField(name="Hobbies", key="[Hobbies]", data_type="MultiSelectMany"),
        CustomField(name="Country", key="[Country]", data_type="Country"),
        CustomField(name="Status", key="[Status]", data_type="Text"),
    ]
)


def behaviour(event: str, campaign: str = "c0ffee") -> BehaviourRule:
    return BehaviourRule.model_validate({"campaign": campaign, "event": event})


def native(rule_type: str, clause: str) -> NativeRule:
    return NativeRule(native={"RuleType": rule_type, "Clause": clause})


TO_WIRE: list[tuple[Rule, tuple[str, str]]] = [
    (make_rule("email", "contains", "@gmail.com"), ("EmailAddress", "CONTAINS @gmail.com")),
    (make_rule("Name", "equals", "Gertrude Gainforth"), ("Name", "EQUALS Gertrude Gainforth")),
    (make_rule("name", "not_empty"), ("Name", "PROVIDED")),
    (make_rule("name", "empty"), ("Name", "NOT_PROVIDED")),
    (make_rule("date_subscribed", "after", "2024-01-01"), ("DateSubscribed", "AFTER 2024-01-01")),
    (make_rule("date_subscribed", "before", "2024-1-5"), ("DateSubscribed", "BEFORE 2024-01-05")),
    (make_rule("date_subscribed", "equals", "2024-02-29"), ("DateSubscribed", "EQUALS 2024-02-29")),
    (
        make_rule("date_subscribed", "between", ["2024-01-01", "2024-06-30"]),
        ("DateSubscribed", "BETWEEN 2024-01-01 AND 2024-06-30"),
    ),
    (make_rule("frequency", "not_equals", "Weekly"), ("[Frequency]", "NOT_EQUALS Weekly")),
    (make_rule("Frequency", "equals", "Weekly"), ("[Frequency]", "EQUALS Weekly")),
    (make_rule("Signup Source", "equals", "webinar"), ("[SignupSource]", "EQUALS webinar")),
    (make_rule("Signup Source", "not_empty"), ("[SignupSource]", "PROVIDED")),
    (make_rule("Age", "between", [18, 65.5]), ("[Age]", "BETWEEN 18 AND 65.5")),
    (
        make_rule("Birthday", "between", ["2000-01-01", "2000-12-31"]),
        ("[Birthday]", "BETWEEN 2000-01-01 AND 2000-12-31"),
    ),
    (behaviour("opened", "1234abcd"), ("CampaignOpened", "1234abcd")),
    (behaviour("not_opened"), ("CampaignNotOpened", "c0ffee")),
    (behaviour("clicked"), ("CampaignClickedAny", "c0ffee")),
    (native("campaignopenednoclick", " abc "), ("CampaignOpenedNoClick", "abc")),
    (native("Frequency", "equals  Weekly"), ("[Frequency]", "EQUALS Weekly")),
]


@pytest.mark.parametrize(("rule", "wire"), TO_WIRE, ids=[" ".join(w[1]) for w in TO_WIRE])
def test_mapping_to_wire(rule: Rule, wire: tuple[str, str]) -> None:
    assert mapping.to_wire(rule, FIELDS) == WireRule(rule_type=wire[0], clause=wire[1])


@pytest.mark.parametrize(("rule", "wire"), TO_WIRE, ids=[" ".join(w[1]) for w in TO_WIRE])
def test_mapping_wire_reads_back_to_the_same_rule(rule: Rule, wire: tuple[str, str]) -> None:
    back = mapping.from_wire(WireRule(rule_type=wire[0], clause=wire[1]), FIELDS)
    assert segment_key("all", [back]) == segment_key(*mapping.canonicalise("all", (rule,), FIELDS))


REFUSED: list[tuple[Rule, str]] = [
    (
        make_rule("email", "equals", "a@x.com"),
        "operator 'equals' is not supported for field 'email'",
    ),
    (
        make_rule("first_name", "equals", "Ann"),
        "field 'first_name' has no Campaign Monitor rule type",
    ),
    (make_rule("status", "equals", "active"), "field 'status' has no Campaign Monitor rule type"),
    (make_rule("Age", "gt", 3), "operator 'gt' is not supported for Number field 'Age'"),
    (make_rule("Birthday", "equals", "2000-01-01"), "not supported for Date field 'Birthday'"),
    (
        make_rule("Hobbies", "equals", "x"),
        "rules on the MultiSelectMany field 'Hobbies' cannot be written",
    ),
    (make_rule("Country", "equals", "Wales"), "rules on the Country field 'Country' cannot be"),
    (make_rule("date_subscribed", "after", "01/02/2024"), "is not a date written yyyy-mm-dd"),
    (make_rule("Age", "between", ["a", 3]), "'a' is not a number"),
    (make_rule("Nope", "equals", "x"), "the list has no custom field named 'Nope'"),
    (
        make_rule("Frequency", "equals", "Daily"),
        "'Daily' is not an option of the MultiSelectOne field 'Frequency' "
        "(its options: Weekly, Monthly)",
    ),
    (
        native("[Gone]", "EQUALS x"),
        "native RuleType '[Gone]' is neither a Campaign Monitor rule type nor the Key",
    ),
    (make_rule("name", "equals", ""), "an empty value cannot be written"),
    (behaviour("not_clicked"), "event 'not_clicked' has no Campaign Monitor rule type"),
    (
        BehaviourRule.model_validate({"campaign": "c", "event": "opened", "within": {"days": 3}}),
        "'within' time window is not supported",
    ),
    (NativeRule(native={"RuleType": "Name"}), "a native rule is {RuleType: text, Clause: text}"),
    (native("Name", " "), "a native rule needs a non-empty RuleType and Clause"),
]


@pytest.mark.parametrize(("rule", "reason"), REFUSED, ids=[r[1][:40] for r in REFUSED])
def test_mapping_refuses_what_the_facts_do_not_show(rule: Rule, reason: str) -> None:
    with pytest.raises(mapping.Untranslatable) as caught:
        mapping.to_wire(rule, FIELDS)
    assert reason in caught.value.reason


def test_mapping_options_and_keys_are_not_checked_when_unknown() -> None:
    """Offline (declared types only) neither options nor Keys are known: not refused."""
    declared = checks.declared_index({"frequency": "select"})
    assert mapping.to_wire(make_rule("Frequency", "equals", "Daily"), declared).clause == (
        "EQUALS Daily"
    )
    assert mapping.to_wire(native("[Gone]", "EQUALS x"), None).rule_type == "[Gone]"


FROM_WIRE: list[tuple[tuple[str, str], dict[str, Any]]] = [
    (
        ("EmailAddress", " contains   @x.com "),
        {"field": "email", "op": "contains", "value": "@x.com"},
    ),
    (("Name", "provided"), {"field": "name", "op": "not_empty"}),
    (
        ("DateSubscribed", "between 2024-1-1 and 2024-2-1"),
        {"field": "date_subscribed", "op": "between", "value": ["2024-01-01", "2024-02-01"]},
    ),
    (("[age]", "BETWEEN 1 AND 2"), {"field": "Age", "op": "between", "value": ["1", "2"]}),
    (("Frequency", "EQUALS Weekly"), {"field": "Frequency", "op": "equals", "value": "Weekly"}),
    (("CampaignNotOpened", " c0ffee "), {"campaign": "c0ffee", "event": "not_opened"}),
    (("Name", "CONTAINS bob"), {"native": {"RuleType": "Name", "Clause": "CONTAINS bob"}}),
    (("Name", "PROVIDED yes"), {"native": {"RuleType": "Name", "Clause": "PROVIDED yes"}}),
    (
        ("DateSubscribed", "AFTER soon"),
        {"native": {"RuleType": "DateSubscribed", "Clause": "AFTER soon"}},
    ),
    (("[Age]", "BETWEEN 1 AND x"), {"native": {"RuleType": "[Age]", "Clause": "BETWEEN 1 AND x"}}),
    (
        ("[Country]", "EQUALS Wales"),
        {"native": {"RuleType": "[Country]", "Clause": "EQUALS Wales"}},
    ),
    (("[Gone]", "EQUALS x"), {"native": {"RuleType": "[Gone]", "Clause": "EQUALS x"}}),
    (("CampaignOpened", "a b"), {"native": {"RuleType": "CampaignOpened", "Clause": "a b"}}),
    (("Location", "EQUALS x"), {"native": {"RuleType": "Location", "Clause": "EQUALS x"}}),
    (
        ("[Frequency]", "EQUALS Daily"),
        {"native": {"RuleType": "[Frequency]", "Clause": "EQUALS Daily"}},
    ),
    (("[Status]", "EQUALS gold"), {"native": {"RuleType": "[Status]", "Clause": "EQUALS gold"}}),
    (("Status", "PROVIDED"), {"native": {"RuleType": "[Status]", "Clause": "PROVIDED"}}),
]


@pytest.mark.parametrize(("wire", "rule"), FROM_WIRE, ids=[f"{w[0]} {w[1]}" for w, _ in FROM_WIRE])
def test_mapping_from_wire(wire: tuple[str, str], rule: dict[str, Any]) -> None:
    read = mapping.from_wire(WireRule(rule_type=wire[0], clause=wire[1]), FIELDS)
    expected = make_segment("x", rule).rules
    assert segment_key("all", [read]) == segment_key("all", expected)


@pytest.mark.parametrize(
    ("rule_type", "clause", "canonical"),
    [
        ("Name", "  equals   Ann  Lee ", "EQUALS Ann Lee"),
        ("Name", "provided", "PROVIDED"),
        (
            "DateSubscribed",
            "between 2024-01-01   and 2024-02-01",
            "BETWEEN 2024-01-01 AND 2024-02-01",
        ),
        ("[Age]", "Between 1 AND 2", "BETWEEN 1 AND 2"),
        ("CampaignOpened", " abcDEF ", "abcDEF"),
        ("EmailAddress", "CONTAINS @X.com", "CONTAINS @X.com"),
    ],
)
def test_mapping_canonical_clause(rule_type: str, clause: str, canonical: str) -> None:
    assert canonical_clause(rule_type, clause) == canonical


def test_mapping_groups_are_cnf_with_in_lowered() -> None:
    rules = (
        make_rule("email", "contains", "@x.com"),
        make_rule("Frequency", "not_in", ["Weekly", "Monthly"]),
        make_group("any", make_rule("name", "in", ["Ann", "Bob"]), behaviour("opened")),
    )
    groups, leaves = mapping.to_groups("all", rules, FIELDS)
    as_sets = {frozenset((r.rule_type, r.clause) for r in g.rules) for g in groups}
    assert as_sets == {
        frozenset({("EmailAddress", "CONTAINS @x.com")}),
        frozenset({("[Frequency]", "NOT_EQUALS Weekly")}),
        frozenset({("[Frequency]", "NOT_EQUALS Monthly")}),
        frozenset({("Name", "EQUALS Ann"), ("Name", "EQUALS Bob"), ("CampaignOpened", "c0ffee")}),
    }
    assert len(leaves) == sum(len(g.rules) for g in groups)


def test_mapping_match_any_distributes_into_groups() -> None:
    rules = (
        make_group("all", make_rule("name", "not_empty"), behaviour("opened")),
        behaviour("clicked"),
    )
    groups, _ = mapping.to_groups("any", rules, FIELDS)
    assert len(groups) == 2 and all(len(g.rules) == 2 for g in groups)


def test_mapping_reports_every_untranslatable_rule() -> None:
    rules = (make_rule("first_name", "equals", "A"), make_rule("email", "equals", "b"))
    with pytest.raises(mapping.Untranslatable) as caught:
        mapping.to_groups("all", rules, FIELDS)
    assert "first_name" in caught.value.reason and "'email'" in caught.value.reason


def g(*rules: tuple[str, str]) -> WireGroup:
    return WireGroup(rules=tuple(WireRule(rule_type=t, clause=c) for t, c in rules))


A, B, C = ("Name", "PROVIDED"), ("EmailAddress", "CONTAINS x"), ("CampaignOpened", "c1")


@pytest.mark.parametrize(
    ("live", "desired", "added"),
    [
        ([g(A)], [g(A), g(B)], [g(B)]),
        ([g(A, B)], [g(B, A), g(C)], [g(C)]),
        ([g(A)], [g(A), g(A)], [g(A)]),
        ([g(A), g(B)], [g(A), g(C)], None),
        ([g(A)], [g(A)], []),
    ],
    ids=["one new", "rule order ignored", "multiset", "a live group removed", "nothing new"],
)
def test_mapping_new_groups(
    live: list[WireGroup], desired: list[WireGroup], added: list[WireGroup] | None
) -> None:
    result = mapping.new_groups(live, desired)
    assert (list(result) if result is not None else None) == added


DECLARED = {"note": "text", "score": "number", "joined": "date", "frequency": "select"}
OFFLINE: list[tuple[list[Any], dict[str, Any], list[tuple[str, str]]]] = [
    ([make_rule("email", "contains", "@x.com")], {}, []),
    (
        [make_rule("email", "contains", " @x.com")],
        {},
        [("rules[0].value", "value ' @x.com' has leading")],
    ),
    # what the core's capability check refuses is not reported twice
    ([make_group("any", make_rule("first_name", "empty"))], {}, []),
    ([make_rule("email", "in", ["a", "b"])], {}, []),
    ([make_rule("Note", "contains", "a")], {}, []),
    ([make_rule("Joined", "equals", "2024-01-01")], {}, []),
    ([{"list": "VIP"}, {"campaign": "c", "event": "not_clicked"}], {}, []),
    ([make_rule("Undeclared", "equals", "a")], {}, []),
    # declared types decide the value formats
    (
        [make_rule("Joined", "between", ["2024-01-01", "soon"])],
        {},
        [("rules[0].value", "'soon' is not a date written yyyy-mm-dd")],
    ),
    ([make_rule("Score", "between", ["1", "x"])], {}, [("rules[0].value", "'x' is not a number")]),
    ([make_rule("Score", "between", [1, 2.5])], {}, []),
    ([make_rule("Note", "in", ["a", "b"])], {}, []),
    ([make_rule("Frequency", "not_in", ["Weekly", "Daily"])], {}, []),
    (
        [make_rule("date_subscribed", "after", "2015-12-31")],
        {},
        [("rules[0].value", "date_subscribed 2015-12-31 is outside 2016-2025")],
    ),
    ([make_rule("date_subscribed", "after", "2016-01-01")], {}, []),
    ([make_rule("date_subscribed", "before", "2025-12-31")], {}, []),
    (
        [make_rule("date_subscribed", "between", ["2025-01-01", "2026-01-01"])],
        {},
        [("rules[0].value", "date_subscribed 2026-01-01 is outside 2016-2025")],
    ),
    ([{"native": {"RuleType": "Name"}}], {}, [("rules[0].native", "a native rule is")]),
    (
        [{"campaign": "a b", "event": "opened"}],
        {},
        [("rules[0].campaign", "'a b' is not a campaign id")],
    ),
    ([make_rule("email", "contains", "x")], {"options": {"a": 1}}, [("options", "no options")]),
]


@pytest.mark.parametrize(("rules", "extra", "problems"), OFFLINE)
def test_checks_offline_problems(
    rules: list[Any], extra: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    """Each problem once, at the part of the rule at fault (the fake's year is 2025)."""
    found = checks.offline_problems(
        make_segment("S", *rules, **extra), DECLARED, CAPABILITIES, 2025
    )
    assert len(found) == len(problems), found
    for problem, (where, expected) in zip(found, problems, strict=True):
        assert path_text(problem.path) == where and expected in problem.message


@pytest.mark.parametrize("title", [" Alpha", "Alpha ", "Al\tpha", "Alpha\n"])
def test_checks_refuse_a_title_that_may_not_be_kept(title: str) -> None:
    segment = make_segment(title, make_rule("email", "contains", "@x.com"))
    (problem,) = checks.offline_problems(segment, {}, CAPABILITIES, 2025)
    assert problem.path == ("name",) and "may not keep as given" in problem.message
    assert (
        checks.offline_problems(make_segment("Al pha", *segment.rules), {}, CAPABILITIES, 2025)
        == []
    )


def test_capabilities_count_in_as_one_rule_per_value_for_the_size_limit() -> None:
    """``in`` is sent as one rule per value, so the CNF size the core checks counts them."""
    rules = [
        make_group(
            "all", make_rule("name", "equals", f"a{i}"), make_rule("name", "in", ["b", "c", "d"])
        )
        for i in range(4)
    ]
    segment = make_segment("S", *rules, match="any")
    (problem,) = shapes.check_segment(segment, CAPABILITIES, {})
    assert problem.path == ("rules",)
    assert problem.message.startswith("converting to AND-of-OR groups needs")
    assert (
        shapes.check_segment(segment, CAPABILITIES.model_copy(update={"expands_in": False}), {})
        == []
    )


def test_rejection_names_declared_rules_and_paths() -> None:
    segment = make_segment(
        "S",
        make_rule("email", "contains", "@x.com"),
        make_group("any", make_rule("name", "in", ["Ann", "Bob"]), behaviour("opened")),
    )
    _, leaves = mapping.to_groups(segment.match, segment.rules, FIELDS)
    results = [RuleResult.model_validate({"RuleType": "x", "Code": 0})] * len(leaves)
    bad = leaves.index(next(r for r in leaves if getattr(r, "value", None) == "Bob"))
    results[bad] = RuleResult.model_validate(
        {
            "RuleType": "Name",
            "Code": 2703,
            "ClauseResults": [{"Clause": "EQUALS Bob", "Code": 2712, "Message": "Verb is illegal"}],
        }
    )
    error = rejected(
        RulesRejected("277", results, method="POST", url="/segments/l.json", status=400),
        segment,
        leaves,
    )
    assert isinstance(error, SegmentRulesRejected)
    assert error.rule_paths == (("rules", 1, "any", 0),)
    assert 'rules[1].any[0] (name in ["Ann", "Bob"]): Verb is illegal (code 2712)' in str(error)


# -- properties --------------------------------------------------------------------------------

LEAVES = st.sampled_from(
    [
        make_rule("email", "contains", "@x.com"),
        make_rule("name", "equals", "Ann"),
        make_rule("NAME", "not_empty"),
        make_rule("date_subscribed", "between", ["2024-01-01", "2024-02-01"]),
        make_rule("Frequency", "in", ["Weekly", "Monthly"]),
        make_rule("Frequency", "not_in", ["Weekly"]),
        make_rule("Age", "between", [1, 2.5]),
        behaviour("opened"),
        behaviour("clicked", "c2"),
        native("CampaignOpenedNoClick", "c3"),
        native("Name", "equals Bob"),
    ]
)
TREES = st.recursive(
    LEAVES,
    lambda inner: st.builds(
        lambda match, members: make_group(match, *members),
        st.sampled_from(["all", "any"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@given(st.sampled_from(["all", "any"]), st.lists(TREES, min_size=1, max_size=3))
def test_mapping_stored_rules_read_back_as_canonicalised(match: str, rules: list[Rule]) -> None:
    try:
        groups, _ = mapping.to_groups(match, tuple(rules), FIELDS)
    except mapping.Untranslatable:
        return  # too large to store: validation refuses it
    read = mapping.from_groups(groups, FIELDS)
    want = mapping.canonicalise(match, tuple(rules), FIELDS)
    assert segment_key(*mapping.canonicalise(*read, FIELDS)) == segment_key(*want)
    assert segment_key(*mapping.canonicalise(*want, FIELDS)) == segment_key(*want)  # idempotent
    offline = mapping.canonicalise(match, tuple(rules), None)
    assert segment_key(*offline) == segment_key(*want)  # without field types too
