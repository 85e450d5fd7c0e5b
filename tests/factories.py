"""Tiny builders for model objects, shared by every test module.

Rules may be given as models or as the plain dicts the YAML holds::

    make_segment("Gmail", make_rule("email", "contains", "@gmail.com"), {"list": "VIP"})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

from reconciler.model import (
    FieldDef,
    FieldRule,
    Group,
    LiveField,
    LiveList,
    LiveSegment,
    LiveState,
    MailingList,
    Rule,
    Segment,
)

RuleLike: TypeAlias = "Rule | Mapping[str, Any]"
Match = Literal["all", "any"]

DEFAULT_RULE: dict[str, Any] = {"field": "email", "op": "contains", "value": "@example.com"}


def make_rule(field: str, op: str, value: Any = None) -> FieldRule:
    """``make_rule("email", "contains", "@gmail.com")``; lists become tuples."""
    if isinstance(value, list):
        value = tuple(value)
    return FieldRule.model_validate({"field": field, "op": op, "value": value})


def make_group(match: Match, *rules: RuleLike) -> Group:
    """``make_group("any", rule_a, rule_b)``: a nested group."""
    return Group.model_validate({match: list(rules)})


def _rules(rules: Iterable[RuleLike]) -> list[RuleLike]:
    return list(rules) or [DEFAULT_RULE]


def make_segment(
    name: str,
    *rules: RuleLike,
    match: Match = "all",
    options: Mapping[str, Any] | None = None,
    renamed_from: Iterable[str] = (),
) -> Segment:
    """A declared segment; without rules it gets one ``email contains`` rule."""
    return Segment.model_validate(
        {
            "name": name,
            "match": match,
            "rules": _rules(rules),
            "options": dict(options or {}),
            "renamed_from": tuple(renamed_from),
        }
    )


def make_live_segment(
    name: str,
    *rules: RuleLike,
    id: str = "1",
    match: Match = "all",
    options: Mapping[str, Any] | None = None,
) -> LiveSegment:
    """A live segment as a provider reports it; without rules it gets the default rule."""
    return LiveSegment.model_validate(
        {
            "id": id,
            "name": name,
            "match": match,
            "rules": _rules(rules),
            "options": dict(options or {}),
        }
    )


def make_list(
    name: str,
    *segments: Segment,
    target: str | None = None,
    prune: bool = False,
    ignore: Iterable[str] = (),
    fields: Iterable[FieldDef] = (),
) -> MailingList:
    """A declared list holding these segments."""
    return MailingList(
        name=name,
        target=target,
        prune=prune,
        ignore=tuple(ignore),
        fields=tuple(fields),
        segments=segments,
    )


def make_live_list(
    name: str,
    *segments: LiveSegment,
    target: str = "local",
    id: str | None = None,
    fields: Iterable[LiveField] = (),
) -> LiveList:
    """A live list; its id defaults to its name."""
    return LiveList(
        target=target, name=name, id=id or name, fields=tuple(fields), segments=segments
    )


def make_state(*lists: LiveList) -> LiveState:
    """The live state of these lists."""
    return LiveState(lists=lists)
