"""Hypothesis strategies for rules, rule trees and segments, built as valid models.

Leaves are drawn from small pools so that generated trees repeat rules, differ only in
ways the normal form ignores (field-name case, ``5`` versus ``"5"``, order of ``in``
values) and so exercise de-duplication.
"""

from __future__ import annotations

from hypothesis import strategies as st

from reconciler.model import (
    FIELD_OPERATORS,
    BehaviourRule,
    FieldRule,
    Group,
    MembershipRule,
    NativeRule,
    Rule,
    Segment,
)

__all__ = [
    "behaviour_rules",
    "field_rules",
    "groups",
    "matches",
    "membership_rules",
    "native_rules",
    "rule_trees",
    "rules",
    "segments",
]

matches = st.sampled_from(["all", "any"])

_FIELD_NAMES = st.sampled_from(["email", "Email", "first_name", "Frequency", "Score"])
_SCALARS = st.one_of(
    st.sampled_from(["5", "@gmail.com", "Weekly", "2024-01-01", "true"]),
    st.sampled_from([5, 7, 5.0]),
    st.booleans(),
)
_SINGLE_OPS = [
    op for op in FIELD_OPERATORS if op not in ("empty", "not_empty", "between", "in", "not_in")
]


@st.composite
def field_rules(draw: st.DrawFn) -> FieldRule:
    """A valid field rule: the value always fits the operator."""
    name = draw(_FIELD_NAMES)
    kind = draw(st.sampled_from(["single", "none", "between", "list"]))
    if kind == "single":
        op, value = draw(st.sampled_from(_SINGLE_OPS)), draw(_SCALARS)
    elif kind == "none":
        op, value = draw(st.sampled_from(["empty", "not_empty"])), None
    elif kind == "between":
        op, value = "between", draw(st.tuples(_SCALARS, _SCALARS))
    else:
        op = draw(st.sampled_from(["in", "not_in"]))
        value = tuple(draw(st.lists(_SCALARS, min_size=1, max_size=3)))
    return FieldRule.model_validate({"field": name, "op": op, "value": value})


@st.composite
def behaviour_rules(draw: st.DrawFn) -> BehaviourRule:
    data: dict[str, object] = {
        "campaign": draw(st.sampled_from(["1234abcd", "42", 42])),
        "event": draw(st.sampled_from(["opened", "clicked", "not_opened", "not_clicked"])),
    }
    days = draw(st.none() | st.sampled_from([7, 30]))
    if days is not None:
        data["within"] = {"days": days}
    return BehaviourRule.model_validate(data)


@st.composite
def membership_rules(draw: st.DrawFn) -> MembershipRule:
    return MembershipRule.model_validate(
        {
            "list": draw(st.sampled_from(["VIP", "vip", "Customers"])),
            "op": draw(st.sampled_from(["in", "not_in", "active_in", "not_active_in"])),
        }
    )


@st.composite
def native_rules(draw: st.DrawFn) -> NativeRule:
    native = draw(
        st.sampled_from(
            [
                {"RuleType": "CampaignOpenedNoClick", "Clause": "1234abcd"},
                {"Clause": "1234abcd", "RuleType": "CampaignOpenedNoClick"},
                {"RuleType": "EmailAddress", "Clause": ["CONTAINS", "@example.com"]},
            ]
        )
    )
    return NativeRule.model_validate({"native": native})


def rules() -> st.SearchStrategy[Rule]:
    """One leaf rule of any kind (no groups)."""
    return st.one_of(field_rules(), behaviour_rules(), membership_rules(), native_rules())


def groups(members: st.SearchStrategy[Rule], max_size: int = 4) -> st.SearchStrategy[Group]:
    """A validated ``{any: [...]}`` or ``{all: [...]}`` group of the given members."""
    return st.builds(
        lambda match, items: Group.model_validate({match: items}),
        matches,
        st.lists(members, min_size=1, max_size=max_size),
    )


def rule_trees(max_leaves: int = 8) -> st.SearchStrategy[Rule]:
    """A leaf or a nested tree of all/any groups with at most about ``max_leaves`` leaves."""
    return st.recursive(rules(), lambda children: groups(children, 3), max_leaves=max_leaves)


def segments(max_leaves: int = 8) -> st.SearchStrategy[Segment]:
    """A valid segment whose top-level rules are trees."""
    return st.builds(
        lambda name, match, items: Segment.model_validate(
            {"name": name, "match": match, "rules": items}
        ),
        # no NUL: the loader refuses it in any text (issue 11)
        st.text(min_size=1, max_size=12).filter(lambda name: name.strip() and "\x00" not in name),
        matches,
        st.lists(rule_trees(max_leaves), min_size=1, max_size=3),
    )
