"""The rule language: normal form, readable rendering and rule-level diffs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from reconciler import rules
from reconciler.model import Group, Rule, Segment
from reconciler.rules import (
    diff_lines,
    group_of,
    key,
    normalise,
    render,
    rule_data,
    scalar_text,
    segment_key,
    top_level,
)

_RULE = TypeAdapter(Rule)


def r(data: dict[str, Any]) -> Rule:
    """A rule from its YAML data."""
    return _RULE.validate_python(data)


def rs(*items: dict[str, Any]) -> tuple[Rule, ...]:
    return tuple(r(item) for item in items)


A = {"field": "email", "op": "contains", "value": "@gmail.com"}
B = {"field": "Frequency", "op": "equals", "value": "Weekly"}
C = {"campaign": "1234abcd", "event": "opened"}
D = {"list": "VIP", "op": "not_in"}


# --- normal form -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({"all": [A, {"all": [B, C]}]}, {"all": [A, B, C]}, id="flatten-all"),
        pytest.param({"any": [{"any": [A, B]}, C]}, {"any": [A, B, C]}, id="flatten-any"),
        pytest.param(
            {"all": [A, {"any": [{"any": [B]}, {"all": [{"all": [C, D]}]}]}]},
            {"all": [A, {"any": [B, {"all": [C, D]}]}]},
            id="flatten-deep",
        ),
        pytest.param({"any": [A]}, A, id="one-member-group"),
        pytest.param({"all": [{"any": [{"all": [A]}]}]}, A, id="nested-one-member"),
        pytest.param({"all": [A, {"any": [{"all": [B, C]}]}]}, {"all": [A, B, C]}, id="collapse"),
        pytest.param({"all": [A, A, B]}, {"all": [A, B]}, id="duplicates"),
        pytest.param({"any": [A, {"all": [A]}]}, A, id="duplicates-collapse"),
        pytest.param({"all": [A, B, C]}, {"all": [C, A, B]}, id="order-all"),
        pytest.param({"any": [A, {"all": [B, C]}]}, {"any": [{"all": [C, B]}, A]}, id="order-any"),
        pytest.param(
            {"field": "Score", "op": "equals", "value": 5},
            {"field": "Score", "op": "equals", "value": "5"},
            id="int-as-text",
        ),
        pytest.param(
            {"field": "Score", "op": "gt", "value": 5.0},
            {"field": "Score", "op": "gt", "value": 5},
            id="integral-float",
        ),
        pytest.param(
            {"field": "vip", "op": "equals", "value": True},
            {"field": "vip", "op": "equals", "value": "true"},
            id="bool-as-text",
        ),
        pytest.param(
            {"field": "Score", "op": "in", "value": [3, 1, 2, 1]},
            {"field": "Score", "op": "in", "value": ["1", "2", "3"]},
            id="in-list-as-set",
        ),
        pytest.param(
            {"field": "Score", "op": "not_in", "value": ["a", "b"]},
            {"field": "Score", "op": "not_in", "value": ["b", "a", "a"]},
            id="not-in-list-as-set",
        ),
        pytest.param(
            {"field": "EMAIL", "op": "contains", "value": "@gmail.com"}, A, id="field-case"
        ),
        pytest.param({"list": "vip", "op": "not_in"}, D, id="list-case"),
        pytest.param({"list": "VIP"}, {"list": "VIP", "op": "in"}, id="membership-default-op"),
        pytest.param({"campaign": 42, "event": "opened"}, {"campaign": "42", "event": "opened"}),
        pytest.param(
            {"native": {"a": 1, "b": [1, 2]}}, {"native": {"b": [1, 2], "a": 1}}, id="native-keys"
        ),
    ],
)
def test_key_equal_in_normal_form(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert key(r(left)) == key(r(right))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({"all": [A, B]}, {"any": [A, B]}, id="all-vs-any"),
        pytest.param({"all": [A, {"any": [B, C]}]}, {"all": [A, B, C]}, id="no-cross-flatten"),
        pytest.param(
            {"field": "email", "op": "contains", "value": "@Gmail.com"}, A, id="value-case"
        ),
        pytest.param(
            {"field": "Score", "op": "between", "value": [1, 5]},
            {"field": "Score", "op": "between", "value": [5, 1]},
            id="between-ordered",
        ),
        pytest.param(
            {"campaign": "abc", "event": "opened"},
            {"campaign": "ABC", "event": "opened"},
            id="campaign-id-case",
        ),
        pytest.param(
            {"campaign": "abc", "event": "opened", "within": {"days": 7}},
            {"campaign": "abc", "event": "opened"},
            id="within",
        ),
        pytest.param({"list": "VIP", "op": "in"}, {"list": "VIP", "op": "active_in"}),
        pytest.param({"native": {"a": 1}}, {"native": {"a": "1"}}, id="native-value-type"),
    ],
)
def test_key_differs(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert key(r(left)) != key(r(right))


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (5, "5"), (5.0, "5"), (2.5, "2.5"), ("x", "x")],
)
def test_scalar_text(value: Any, text: str) -> None:
    assert scalar_text(value) == text


def test_normalise_flattens_and_sorts() -> None:
    tree = r({"all": [B, {"all": [A, {"any": [D, C]}]}, B]})
    normal = normalise(tree)
    assert isinstance(normal, Group)
    assert normal.match == "all"
    assert [key(m) for m in normal.rules] == sorted(key(m) for m in rs(A, B, {"any": [C, D]}))
    inner = [m for m in normal.rules if isinstance(m, Group)]
    assert len(inner) == 1
    assert inner[0].match == "any"
    assert [key(m) for m in inner[0].rules] == sorted([key(r(C)), key(r(D))])


def test_normalise_one_member_group_is_the_member() -> None:
    assert normalise(r({"any": [{"all": [A, A]}]})) == r(A)


def test_normalise_leaf_is_unchanged() -> None:
    assert normalise(r(A)) == r(A)


def test_normalise_sorts_in_values() -> None:
    rule = r({"field": "Score", "op": "in", "value": ["b", "a", "b"]})
    assert normalise(rule) == r({"field": "Score", "op": "in", "value": ["a", "b"]})


def test_normalise_keeps_between_order() -> None:
    rule = r({"field": "Score", "op": "between", "value": [5, 1]})
    assert normalise(rule) == rule


def test_segment_key_single_rule_ignores_match() -> None:
    assert segment_key("all", rs(A)) == segment_key("any", rs(A))


def test_segment_key_compares_match_when_several() -> None:
    assert segment_key("all", rs(A, B)) != segment_key("any", rs(A, B))


def test_segment_key_equals_group_key() -> None:
    assert segment_key("any", rs(A, B)) == key(group_of("any", rs(B, A)))


@pytest.mark.parametrize(
    ("match", "rules", "expected_match", "expected_count"),
    [
        ("all", (A,), "all", 1),
        ("any", (A,), "all", 1),
        ("any", ({"all": [A, B]},), "all", 2),
        ("any", (A, B, A), "any", 2),
        ("all", (A, {"all": [B, C]}), "all", 3),
    ],
)
def test_top_level(
    match: str,
    rules: tuple[dict[str, Any], ...],
    expected_match: str,
    expected_count: int,
) -> None:
    got_match, got_rules = top_level(match, rs(*rules))
    assert (got_match, len(got_rules)) == (expected_match, expected_count)


# --- render ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (A, 'email contains "@gmail.com"'),
        ({"field": "email", "op": "equals", "value": "a@b.c"}, 'email equals "a@b.c"'),
        ({"field": "email", "op": "not_equals", "value": "x"}, 'email does not equal "x"'),
        ({"field": "email", "op": "not_contains", "value": "x"}, 'email does not contain "x"'),
        ({"field": "name", "op": "starts_with", "value": "J"}, 'name starts with "J"'),
        ({"field": "name", "op": "ends_with", "value": "n"}, 'name ends with "n"'),
        ({"field": "Score", "op": "gt", "value": 5}, "Score > 5"),
        ({"field": "Score", "op": "gte", "value": 5.5}, "Score >= 5.5"),
        ({"field": "Score", "op": "lt", "value": "5"}, 'Score < "5"'),
        ({"field": "Score", "op": "lte", "value": 5.0}, "Score <= 5"),
        ({"field": "date_subscribed", "op": "before", "value": "2024-01-01"}, None),
        ({"field": "date_subscribed", "op": "after", "value": "2024-01-01"}, None),
        (
            {"field": "Score", "op": "between", "value": [1, "9"]},
            'Score between 1 and "9"',
        ),
        ({"field": "Phone", "op": "empty"}, "Phone is empty"),
        ({"field": "Phone", "op": "not_empty"}, "Phone is not empty"),
        ({"field": "Plan", "op": "in", "value": ["a", 2]}, 'Plan in ["a", 2]'),
        ({"field": "Plan", "op": "not_in", "value": ["a"]}, 'Plan not in ["a"]'),
        ({"field": "vip", "op": "equals", "value": True}, "vip equals true"),
        ({"field": "city", "op": "equals", "value": "Zürich"}, 'city equals "Zürich"'),
        (C, "opened campaign 1234abcd"),
        (
            {"campaign": "x1", "event": "not_clicked", "within": {"days": 30}},
            "not clicked campaign x1 within 30 days",
        ),
        ({"list": "VIP"}, 'in list "VIP"'),
        (D, 'not in list "VIP"'),
        ({"list": "VIP", "op": "active_in"}, 'active in list "VIP"'),
        ({"list": "VIP", "op": "not_active_in"}, 'not active in list "VIP"'),
        ({"native": {"b": "é", "a": 1}}, 'native {"a": 1, "b": "é"}'),
        (
            {"any": [A, {"all": [C, D]}]},
            'any(email contains "@gmail.com", all(opened campaign 1234abcd, not in list "VIP"))',
        ),
    ],
)
def test_render(data: dict[str, Any], text: str | None) -> None:
    expected = text or f'date_subscribed {data["op"]} "2024-01-01"'
    assert render(r(data)) == expected


# --- rule_data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (A, A),
        ({"list": "VIP", "op": "in"}, {"list": "VIP"}),
        (D, D),
        ({"field": "Phone", "op": "empty"}, {"field": "Phone", "op": "empty"}),
        (
            {"campaign": 42, "event": "opened", "within": {"days": 7}},
            {"campaign": "42", "event": "opened", "within": {"days": 7}},
        ),
        ({"any": [A, {"all": [C, D]}]}, {"any": [A, {"all": [C, D]}]}),
        ({"field": "Plan", "op": "in", "value": ["a", 2]}, None),
    ],
)
def test_rule_data_is_the_yaml(data: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert rule_data(r(data)) == (expected or data)


# --- diff_lines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "lines"),
    [
        pytest.param(("all", (A, B)), ("all", (B, A)), [], id="same-set"),
        pytest.param(("all", (A,)), ("any", (A,)), [], id="match-of-one-rule"),
        pytest.param(("all", (A, {"all": [B]})), ("all", (A, B, B)), [], id="equal-in-normal-form"),
        pytest.param(
            ("all", (A,)),
            ("all", (A, C)),
            ["+ opened campaign 1234abcd"],
            id="added",
        ),
        pytest.param(
            ("all", (A, C)),
            ("all", (A,)),
            ["- opened campaign 1234abcd"],
            id="removed",
        ),
        pytest.param(
            ("all", (A, B)),
            ("any", (A, B)),
            ["~ match: all -> any"],
            id="match-changed",
        ),
        pytest.param(
            ("all", (A, B)),
            ("any", (A, C)),
            [
                "~ match: all -> any",
                '- Frequency equals "Weekly"',
                "+ opened campaign 1234abcd",
            ],
            id="match-and-members",
        ),
        pytest.param(
            ("all", (A, {"any": [B, C]})),
            ("all", (A, {"any": [B, D]})),
            [
                '- any(opened campaign 1234abcd, Frequency equals "Weekly")',
                '+ any(Frequency equals "Weekly", not in list "VIP")',
            ],
            id="nested-group-changed",
        ),
        pytest.param(
            ("all", (A,)),
            ("all", (B,)),
            ['- email contains "@gmail.com"', '+ Frequency equals "Weekly"'],
            id="single-rule-replaced",
        ),
    ],
)
def test_diff_lines(
    before: tuple[str, tuple[dict[str, Any], ...]],
    after: tuple[str, tuple[dict[str, Any], ...]],
    lines: list[str],
) -> None:
    assert diff_lines(before[0], rs(*before[1]), after[0], rs(*after[1])) == lines


def test_diff_lines_renders_in_normal_form() -> None:
    after = rs(A, {"any": [{"any": [D]}, C, C]})
    assert diff_lines("all", rs(A), "all", after) == [
        '+ any(opened campaign 1234abcd, not in list "VIP")'
    ]


def test_walk_yields_every_leaf_with_its_yaml_path() -> None:
    segment = Segment.model_validate(
        {
            "name": "S",
            "rules": [
                {"field": "email", "op": "empty"},
                {"any": [{"list": "VIP"}, {"all": [{"campaign": "c", "event": "opened"}]}]},
            ],
        }
    )
    assert [path for path, _ in rules.walk(segment.rules)] == [
        ("rules", 0),
        ("rules", 1, "any", 0),
        ("rules", 1, "any", 1, "all", 0),
    ]
    assert rules.path_text(("rules", 1, "any", 1, "all", 0)) == "rules[1].any[1].all[0]"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"field": "plan", "op": "in", "value": ["a", "b"]},
            'any(plan equals "a", plan equals "b")',
        ),
        (
            {"field": "plan", "op": "not_in", "value": ["a", "b"]},
            'all(plan does not equal "a", plan does not equal "b")',
        ),
        ({"field": "plan", "op": "in", "value": ["a"]}, 'plan equals "a"'),
        ({"field": "plan", "op": "equals", "value": "a"}, 'plan equals "a"'),
    ],
)
def test_in_as_equals_spells_out_list_operators(rule: dict[str, Any], expected: str) -> None:
    parsed = TypeAdapter(Rule).validate_python(rule)
    assert rules.render(rules.in_as_equals(parsed)) == expected


def test_map_leaves_keeps_the_tree_shape() -> None:
    tree = TypeAdapter(Rule).validate_python(
        {"any": [{"field": "a", "op": "in", "value": [1, 2]}, {"list": "VIP"}]}
    )
    assert rules.render(rules.map_leaves(tree, rules.in_as_equals)) == (
        'any(any(a equals 1, a equals 2), in list "VIP")'
    )


@given(st.text(max_size=12))
def test_quoted_is_json_text_with_non_ascii_kept(text: str) -> None:
    from reconciler.rules import quoted

    assert quoted(text) == json.dumps(text, ensure_ascii=False)
