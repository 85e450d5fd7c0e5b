"""Properties of the evaluator, on generated rule trees and generated subscribers.

- Every provider's stored form (its ``canonical_rules``, then its shape) selects exactly the
  subscribers the declared segment selects, for every segment its ``validate`` accepts.
- Every shape conversion (tree, CNF, DNF, flat, two levels; ``in`` expanded or not) keeps
  the three-valued verdicts of any tree, ``native:`` rules included.
- Each ``not_*`` operator is the exact negation of its positive one.
- On simple text and number rules, the evaluator agrees with a tiny reference written
  directly in Python.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from reconciler import shapes
from reconciler.errors import ReconcilerError
from reconciler.evaluate import NEGATIONS, compile_rule, compile_segment, explain
from reconciler.model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    Group,
    MembershipRule,
    Rule,
    Segment,
)
from reconciler.provider import Capabilities, Provider, ProviderContext
from reconciler.registry import load_registry
from reconciler.rules import render
from reconciler.stored import NotStorable, shaped, stored_form
from reconciler.subscriber import Event, Subscriber, Typed, typed_value
from tests.strategies import matches, rule_trees

NOW = date(2025, 6, 1)
FIELDS = {
    "Source": "text",
    "Frequency": "select",
    "Score": "number",
    "Joined": "date",
    "Tags": "multiselect",
    "Flag": "boolean",
}
POOLS: dict[str, list[Any]] = {
    "text": ["@gmail.com", "Weekly", "web", "", "A b", "5", "ÄRGER"],
    "select": ["Weekly", "weekly", "Monthly", "5"],
    "number": [5, 7, "5", 5.5, -1, 0, "x"],
    "date": ["2024-01-01", "2023-12-31", "2025-05-20", "2024-06-30", "soon"],
    "multiselect": ["Weekly", "Monthly", "News"],
    "boolean": [True, False, "yes"],
}
STATUSES = ["active", "unsubscribed", "bounced"]
CAMPAIGNS = ["42", "43"]
DAYS = [date(2025, 5, 30), date(2025, 5, 1), date(2024, 1, 1), date(2025, 6, 1)]

REGISTRY = load_registry()
PROVIDERS = sorted(REGISTRY)
PER_PROVIDER = settings(max_examples=max(10, settings.default.max_examples // 2))
"""Examples per provider: half the profile's (the suite stays fast; the CI profile
still tries 100 per provider)."""


def _pool(name: str, kind: str) -> list[Any]:
    if name == "status":
        return STATUSES
    return POOLS["date"] if name == "date_subscribed" else POOLS[kind]


@st.composite
def _field_rule(draw: st.DrawFn, caps: Capabilities, types: dict[str, str]) -> FieldRule | None:
    usable = [
        (name, kind, ops)
        for name, kind in [*STANDARD_FIELDS.items(), *types.items()]
        if (ops := sorted(caps.operators_for(name, kind if name in types else None)))
    ]
    if not usable:
        return None
    name, kind, ops = draw(st.sampled_from(usable))
    op = draw(st.sampled_from(ops))
    pool = _pool(name, kind)
    data: dict[str, Any] = {"field": draw(st.sampled_from([name, name.upper()])), "op": op}
    if op == "between":
        data["value"] = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2))
    elif op in ("in", "not_in"):
        data["value"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif op not in ("empty", "not_empty"):
        data["value"] = draw(st.sampled_from(pool))
    return FieldRule.model_validate(data)


@st.composite
def _leaf(draw: st.DrawFn, caps: Capabilities, types: dict[str, str]) -> Rule:
    kinds = ["field", "field", "field"]
    kinds += ["behaviour"] if caps.events else []
    kinds += ["membership"] if caps.membership else []
    kind = draw(st.sampled_from(kinds))
    if kind == "behaviour":
        data: dict[str, Any] = {
            "campaign": draw(st.sampled_from(CAMPAIGNS)),
            "event": draw(st.sampled_from(sorted(caps.events))),
        }
        if caps.within and draw(st.booleans()):
            data["within"] = {"days": draw(st.sampled_from([7, 30]))}
        return BehaviourRule.model_validate(data)
    if kind == "membership":
        return MembershipRule.model_validate(
            {
                "list": draw(st.sampled_from(["VIP", "vip", "Newsletter"])),
                "op": draw(st.sampled_from(sorted(caps.membership))),
            }
        )
    found = draw(_field_rule(caps, types))
    return found if found is not None else MembershipRule.model_validate({"list": "VIP"})


def _trees(caps: Capabilities, types: dict[str, str]) -> st.SearchStrategy[Rule]:
    return st.recursive(
        _leaf(caps, types),
        lambda children: st.builds(
            lambda match, items: Group.model_validate({match: items}),
            matches,
            st.lists(children, min_size=1, max_size=3),
        ),
        max_leaves=6,
    )


_EVENTS = st.lists(
    st.builds(
        Event,
        st.sampled_from(CAMPAIGNS),
        st.sampled_from(["opened", "clicked"]),
        st.sampled_from(DAYS),
    ),
    max_size=3,
)
_LISTS = st.dictionaries(st.sampled_from(["vip", "other"]), st.sampled_from(STATUSES))


def _value(name: str, kind: str) -> st.SearchStrategy[Typed | None]:
    """Values of one field as the subscriber holds them (parsed; None: empty)."""
    if kind == "multiselect":
        raw: st.SearchStrategy[Any] = st.lists(st.sampled_from(POOLS["multiselect"]), max_size=2)
    else:
        raw = st.sampled_from([v for v in _pool(name, kind) if v not in ("x", "soon")])
    return st.none() | raw.map(lambda value: typed_value(kind, value))


def subscribers(types: dict[str, str]) -> st.SearchStrategy[Subscriber]:
    """Subscribers of list "Newsletter" with values for ``types`` (some empty)."""
    optional = {"first_name": "text", "date_subscribed": "date", **types}
    values = st.fixed_dictionaries(
        {
            "email": st.sampled_from(["ann@gmail.com", "bob@x.org", "weekly@web.com"]),
            "status": st.sampled_from(STATUSES),
            **{name.casefold(): _value(name, kind) for name, kind in optional.items()},
        }
    )
    return st.builds(
        lambda found, lists, events: Subscriber(
            str(found["email"]),
            "Newsletter",
            str(found["status"]),
            {k: v for k, v in found.items() if v is not None},
            lists,
            tuple(events),
        ),
        values,
        _LISTS,
        _EVENTS,
    )


def _provider(key: str) -> Provider:
    cls = REGISTRY[key]
    return cls("t", cls.settings_model.model_construct(), ProviderContext())


def _same(
    declared: tuple[str, tuple[Rule, ...]],
    stored: tuple[str, tuple[Rule, ...]],
    people: list[Subscriber],
    types: dict[str, str],
    three_valued: bool = False,
) -> None:
    want = compile_segment(*declared, types, NOW)
    have = compile_segment(*stored, types, NOW)
    for person in people:
        a, b = want.verdict(person), have.verdict(person)
        if not three_valued and (a is None or b is None):
            continue
        if a != b:
            note("declared: " + "; ".join(render(r) for r in declared[1]))
            note("stored: " + "; ".join(render(r) for r in stored[1]))
            note(
                explain(person, want.decide(person)) + " / " + explain(person, have.decide(person))
            )
        assert a == b


@pytest.mark.parametrize("key", PROVIDERS)
def test_each_providers_stored_form_selects_as_declared(key: str) -> None:
    provider = _provider(key)
    caps = provider.capabilities
    types = {name: kind for name, kind in FIELDS.items() if kind in caps.field_types}
    folded = {name.casefold(): kind for name, kind in types.items()}
    checked: list[int] = []

    @PER_PROVIDER
    @given(
        matches,
        st.lists(_trees(caps, types), min_size=1, max_size=3),
        st.lists(subscribers(types), min_size=1, max_size=4),
    )
    def check(match: str, rules: list[Rule], people: list[Subscriber]) -> None:
        segment = Segment.model_validate({"name": "S", "match": match, "rules": rules})
        try:
            refused = shapes.check_segment(segment, caps, folded)
            refused += list(type(provider).check_segment(segment, folded))
        except ReconcilerError:
            return
        if refused:
            return  # validate refuses it: nothing is ever stored
        stored = stored_form(provider, segment.match, segment.rules, "Newsletter")
        checked.append(1)
        _same((segment.match, segment.rules), stored, people, folded)

    check()
    assert checked, f"no generated segment was storable by {key}"


@given(
    matches,
    st.lists(rule_trees(6), min_size=1, max_size=2),
    st.lists(subscribers({"Frequency": "select", "Score": "number"}), min_size=1, max_size=4),
    st.booleans(),
)
def test_every_shape_conversion_keeps_three_valued_verdicts(
    match: str, rules: list[Rule], people: list[Subscriber], expands_in: bool
) -> None:
    types = {"frequency": "select", "score": "number"}
    declared = (match, tuple(rules))
    for shape in ("tree", "cnf", "dnf", "flat", "two_level"):
        try:
            converted = shaped(shape, match, rules, expands_in)
        except NotStorable:
            continue
        _same(declared, converted, people, types, three_valued=True)


@given(
    st.sampled_from(sorted(FIELDS.items())),
    st.sampled_from(sorted(NEGATIONS)),
    st.lists(
        st.sampled_from(POOLS["text"] + POOLS["number"] + POOLS["date"]), min_size=1, max_size=2
    ),
    subscribers(FIELDS),
)
def test_negative_operators_are_exact_negations(
    field: tuple[str, str], op: str, values: list[Any], person: Subscriber
) -> None:
    name, _ = field
    data: dict[str, Any] = {"field": name}
    if op not in ("not_empty",):
        data["value"] = values if op == "not_in" else values[0]
    negative = FieldRule.model_validate({**data, "op": op})
    positive = FieldRule.model_validate({**data, "op": NEGATIONS[op]})
    types = {n.casefold(): kind for n, kind in FIELDS.items()}
    assert compile_rule(negative, types, NOW).verdict(person) is not compile_rule(
        positive, types, NOW
    ).verdict(person)


# --- a tiny independent reference, for text and number rules ---------------------------------

_ASCII = st.sampled_from(["", "a", "ab", "Ab", "ba", "B", "abc", "5", "10", "-2", "2.5"])
_TEXT_OPS = ["equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with"]
_TEXT_OPS += ["in", "not_in", "empty", "not_empty"]
_NUMBER_OPS = ["equals", "gt", "gte", "lt", "lte", "between", "not_equals"]


def _reference(rule: dict[str, Any], person: dict[str, str]) -> bool:
    """What the rule means, written out directly: text lowercased, numbers as floats."""
    if "all" in rule:
        return all(_reference(member, person) for member in rule["all"])
    if "any" in rule:
        return any(_reference(member, person) for member in rule["any"])
    op, raw = rule["op"], person.get(rule["field"].lower(), "")
    if rule["field"].lower() == "score":
        number = float(raw) if raw != "" else None
        value = rule.get("value")
        if op == "not_equals":
            return not (number is not None and number == float(value))
        if number is None:
            return False
        if op == "between":
            return float(value[0]) <= number <= float(value[1])
        other = float(value)
        return {
            "equals": number == other,
            "gt": number > other,
            "gte": number >= other,
            "lt": number < other,
            "lte": number <= other,
        }[op]
    text, value = raw.lower(), rule.get("value")
    results = {
        "equals": lambda: text == str(value).lower(),
        "contains": lambda: str(value).lower() in text,
        "starts_with": lambda: text.startswith(str(value).lower()),
        "ends_with": lambda: text.endswith(str(value).lower()),
        "in": lambda: text in [str(v).lower() for v in value],
        "empty": lambda: text == "",
    }
    if op.startswith("not_"):
        return not results[op[4:]]()
    return results[op]()


@st.composite
def _simple_rule(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        op = draw(st.sampled_from(_TEXT_OPS))
        rule: dict[str, Any] = {
            "field": draw(st.sampled_from(["Source", "source", "first_name"])),
            "op": op,
        }
        if op in ("in", "not_in"):
            rule["value"] = draw(st.lists(_ASCII, min_size=1, max_size=3))
        elif op not in ("empty", "not_empty"):
            rule["value"] = draw(_ASCII)
        return rule
    op = draw(st.sampled_from(_NUMBER_OPS))
    numbers = st.sampled_from([-2, 0, 2.5, 5, 10])
    value = draw(st.lists(numbers, min_size=2, max_size=2)) if op == "between" else draw(numbers)
    return {"field": draw(st.sampled_from(["Score", "score"])), "op": op, "value": value}


_SIMPLE_TREES = st.recursive(
    _simple_rule(),
    lambda children: st.builds(
        lambda match, items: {match: items}, matches, st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=6,
)


@given(
    _SIMPLE_TREES,
    st.fixed_dictionaries(
        {},
        optional={
            "source": _ASCII,
            "first_name": _ASCII,
            "score": st.sampled_from(["-2", "0", "2.5", "5", "10"]),
        },
    ),
)
def test_the_evaluator_agrees_with_a_direct_reference(
    tree: dict[str, Any], person: dict[str, str]
) -> None:
    types = {"source": "text", "score": "number"}
    values: dict[str, Typed] = {"email": "ann@x.org"}
    for name, raw in person.items():
        value = typed_value(types.get(name, "text"), raw)
        if value is not None:
            values[name] = value
    subscriber = Subscriber("ann@x.org", "Newsletter", values=values)
    rule = Segment.model_validate({"name": "S", "rules": [tree]}).rules[0]
    assert compile_rule(rule, types, NOW).verdict(subscriber) is _reference(tree, person)
