"""Properties of the rule normal form and of the CNF/DNF conversions (hypothesis).

The example budget comes from the hypothesis profile that ``tests/conftest.py`` loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import Group, Rule, Segment
from reconciler.rules import Key, group_of, key, normalise, segment_key, top_level
from reconciler.shapes import flat, from_cnf, from_dnf, to_cnf, to_dnf, two_level
from tests.strategies import matches, rule_trees, segments

# Large enough that no generated tree hits it: these properties are about meaning, not size.
NO_LIMIT = 1_000_000


def leaf_keys(rules: Sequence[Rule]) -> list[Key]:
    """Every distinct leaf key in the trees, in a fixed order."""
    found: set[Key] = set()
    stack = list(rules)
    while stack:
        rule = stack.pop()
        if isinstance(rule, Group):
            stack.extend(rule.rules)
        else:
            found.add(key(rule))
    return sorted(found)


def evaluate(rule: Rule, truth: Mapping[Key, bool]) -> bool:
    """The rule as a boolean formula whose variables are the leaves' keys."""
    if not isinstance(rule, Group):
        return truth[key(rule)]
    results = (evaluate(member, truth) for member in rule.rules)
    return all(results) if rule.match == "all" else any(results)


def evaluate_groups(
    clauses: tuple[tuple[Rule, ...], ...], outer: str, truth: Mapping[Key, bool]
) -> bool:
    inner = [
        all(truth[key(r)] for r in c) if outer == "any" else any(truth[key(r)] for r in c)
        for c in clauses
    ]
    return all(inner) if outer == "all" else any(inner)


@st.composite
def assigned(draw: st.DrawFn) -> tuple[Segment, dict[Key, bool]]:
    """A segment and a truth value for each of its distinct leaves."""
    segment = draw(segments(max_leaves=5))
    keys = leaf_keys(segment.rules)
    values = draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
    return segment, dict(zip(keys, values, strict=True))


def shuffled_tree(rule: Rule, data: st.DataObject) -> Rule:
    """The same tree with every group's members permuted."""
    if not isinstance(rule, Group):
        return rule
    members = [shuffled_tree(member, data) for member in rule.rules]
    return Group.of(rule.match, tuple(data.draw(st.permutations(members))))


def wrapped_tree(rule: Rule, data: st.DataObject) -> Rule:
    """The same tree with some members wrapped in groups of their parent's kind."""
    if not isinstance(rule, Group):
        return rule
    members = []
    for member in rule.rules:
        inner = wrapped_tree(member, data)
        if data.draw(st.booleans()):
            inner = Group.of(rule.match, (inner,))
        members.append(inner)
    return Group.of(rule.match, tuple(members))


# --- normal form -------------------------------------------------------------------------


@given(rule_trees())
def test_normalise_is_idempotent(rule: Rule) -> None:
    once = normalise(rule)
    assert normalise(once) == once


@given(rule_trees())
def test_normalise_keeps_the_key(rule: Rule) -> None:
    assert key(normalise(rule)) == key(rule)


@given(rule_trees())
def test_normalise_preserves_meaning(rule: Rule) -> None:
    keys = leaf_keys((rule,))
    for bits in range(min(2 ** len(keys), 64)):
        truth = {k: bool(bits >> i & 1) for i, k in enumerate(keys)}
        assert evaluate(normalise(rule), truth) == evaluate(rule, truth)


@given(rule_trees(), st.data())
def test_key_ignores_member_order(rule: Rule, data: st.DataObject) -> None:
    assert key(shuffled_tree(rule, data)) == key(rule)


@given(rule_trees(), st.data())
def test_key_ignores_same_kind_wrapping(rule: Rule, data: st.DataObject) -> None:
    assert key(wrapped_tree(rule, data)) == key(rule)


@given(rule_trees(), matches)
def test_key_ignores_one_member_group(rule: Rule, match: str) -> None:
    assert key(group_of(match, (rule,))) == key(rule)


@given(segments())
def test_segment_key_is_the_key_of_its_top_group(segment: Segment) -> None:
    assert segment_key(segment.match, segment.rules) == key(group_of(segment.match, segment.rules))


# --- CNF and DNF -------------------------------------------------------------------------


@given(assigned())
def test_cnf_means_the_same_as_the_tree(case: tuple[Segment, dict[Key, bool]]) -> None:
    segment, truth = case
    clauses = to_cnf(segment.match, segment.rules, NO_LIMIT)
    tree = group_of(segment.match, segment.rules)
    assert evaluate_groups(clauses, "all", truth) == evaluate(tree, truth)


@given(assigned())
def test_dnf_means_the_same_as_the_tree(case: tuple[Segment, dict[Key, bool]]) -> None:
    segment, truth = case
    terms = to_dnf(segment.match, segment.rules, NO_LIMIT)
    tree = group_of(segment.match, segment.rules)
    assert evaluate_groups(terms, "any", truth) == evaluate(tree, truth)


@given(segments(max_leaves=5))
def test_conversions_hold_distinct_sorted_leaves(segment: Segment) -> None:
    for convert in (to_cnf, to_dnf):
        groups = convert(segment.match, segment.rules, NO_LIMIT)
        group_keys = [frozenset(key(r) for r in group) for group in groups]
        assert len(set(group_keys)) == len(groups)
        for group in groups:
            keys = [key(r) for r in group]
            assert keys == sorted(set(keys))


@given(segments(max_leaves=5))
def test_cnf_is_a_fixpoint_in_normal_form(segment: Segment) -> None:
    clauses = to_cnf(segment.match, segment.rules, NO_LIMIT)
    match, rules = from_cnf(clauses)
    assert to_cnf(match, rules, NO_LIMIT) == clauses
    if len(clauses) > 1:
        assert top_level(match, rules) == (match, rules)


@given(segments(max_leaves=5))
def test_dnf_is_a_fixpoint_in_normal_form(segment: Segment) -> None:
    terms = to_dnf(segment.match, segment.rules, NO_LIMIT)
    match, rules = from_dnf(terms)
    assert to_dnf(match, rules, NO_LIMIT) == terms
    if len(terms) > 1:
        assert top_level(match, rules) == (match, rules)


@given(segments(max_leaves=5))
def test_flat_and_two_level_keep_the_key(segment: Segment) -> None:
    original = segment_key(segment.match, segment.rules)
    flat_form = flat(segment.match, segment.rules)
    if flat_form is not None:
        assert segment_key(*flat_form) == original
    levels = two_level(segment.match, segment.rules)
    if levels is not None:
        outer, groups = levels
        rebuilt = tuple(group_of(inner, leaves) for inner, leaves in groups)
        assert segment_key(outer, rebuilt) == original
