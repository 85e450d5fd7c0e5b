"""The stored form: a provider's canonical rules, then its shape."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model import FieldRule, Rule, Segment
from reconciler.plan import Action
from reconciler.provider import Capabilities
from reconciler.rules import render
from reconciler.stored import NotStorable, shaped, stored_form

A = {"field": "email", "op": "contains", "value": "a"}
B = {"field": "email", "op": "contains", "value": "b"}
C = {"field": "email", "op": "contains", "value": "c"}
D = {"field": "email", "op": "contains", "value": "d"}


def _rules(*items: dict[str, Any], match: str = "all") -> tuple[str, tuple[Rule, ...]]:
    segment = Segment.model_validate({"name": "S", "match": match, "rules": list(items)})
    return segment.match, segment.rules


def _shown(found: tuple[str, tuple[Rule, ...]]) -> str:
    return found[0] + ": " + "; ".join(render(rule) for rule in found[1])


NESTED = _rules({"any": [A, {"all": [B, C]}]}, D)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            "tree",
            'all: email contains "d";'
            ' any(email contains "a", all(email contains "b", email contains "c"))',
        ),
        (
            "cnf",
            'all: email contains "d"; any(email contains "a", email contains "b");'
            ' any(email contains "a", email contains "c")',
        ),
        (
            "dnf",
            'any: all(email contains "a", email contains "d");'
            ' all(email contains "b", email contains "c", email contains "d")',
        ),
    ],
)
def test_shaped_converts_to_the_providers_shape(shape: str, expected: str) -> None:
    assert _shown(shaped(shape, *NESTED)) == expected


def test_shaped_flat_and_two_level() -> None:
    assert _shown(shaped("flat", *_rules(A, B, match="any"))) == (
        'any: email contains "a"; email contains "b"'
    )
    assert _shown(shaped("two_level", *_rules({"all": [A, B]}, C, match="any"))) == (
        'any: email contains "c"; all(email contains "a", email contains "b")'
    )
    with pytest.raises(NotStorable, match="one flat list"):
        shaped("flat", *NESTED)
    with pytest.raises(NotStorable, match="two levels"):
        shaped("two_level", *_rules({"any": [A, {"all": [B, {"any": [C, D]}]}]}))


def test_shaped_expands_in_where_the_platform_stores_one_condition_per_value() -> None:
    match, found = shaped(
        "flat", *_rules({"field": "email", "op": "in", "value": ["a", "b"]}), True
    )
    assert match == "any"
    assert [rule.op for rule in found if isinstance(rule, FieldRule)] == ["equals", "equals"]


def test_shaped_refuses_a_conversion_past_the_limit() -> None:
    wide = [{"all": [{**A, "value": f"a{i}"}, {**B, "value": f"b{i}"}]} for i in range(8)]
    with pytest.raises(NotStorable, match="limit"):
        shaped("cnf", *_rules(*wide, match="any"))


class _Dropping:
    """A provider whose canonical form loses every rule but the first (a bug to catch)."""

    capabilities = Capabilities(
        shape="cnf", operators={}, changes=frozenset({Action.CREATE_SEGMENT})
    )

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return match, rules[:1]


def test_stored_form_is_the_canonical_rules_then_the_shape() -> None:
    match, found = stored_form(_Dropping(), *_rules({"any": [A, B]}, C), "Newsletter")
    assert _shown((match, found)) == 'all: any(email contains "a", email contains "b")'
