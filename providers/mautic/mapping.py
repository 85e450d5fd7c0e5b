"""Canonical segments <-> Mautic segments: filters with glue, options, and the form to compare.

Mautic evaluates a segment's filters as an OR of AND-groups: every filter whose ``glue`` is
``or`` opens a new group (fact file 6.6). A segment's rules are lowered to what Mautic can
say (``between`` as ``gte`` AND ``lte``; ``in``/``not_in`` on a type without them as OR-ed
``=`` / AND-ed ``!=``), converted with ``shapes.to_dnf``, and written group after group with
``glue: or`` on the first filter of every group but the first and ``glue: and`` everywhere
else (the first filter's glue is always ``and``, G6). Reading back splits at each ``or``.
``canonicalise`` is that round trip without the network, so the declared side compares
exactly as fetch will return it once stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reconciler.errors import RuleSyntaxError
from reconciler.model import FieldRule, Group, JSONValue, Rule
from reconciler.rules import in_as_equals, render, top_level
from reconciler.shapes import from_dnf, to_dnf

from . import operators as ops
from .api import WireFilter, WireSegment
from .leaves import FieldIndex, Segments, Untranslatable, from_filter, resolve, to_filter

__all__ = [
    "OPTION_DEFAULTS",
    "OPTION_KEYS",
    "canonicalise",
    "from_filters",
    "generated_alias",
    "generated_options",
    "live_options",
    "lower",
    "to_filters",
]

OPTION_KEYS = (
    "alias",
    "description",
    "isPublished",
    "isGlobal",
    "isPreferenceCenter",
    "publicName",
)
"""Segment attributes ``options:`` may set (fact file 4.4)."""

OPTION_DEFAULTS: dict[str, JSONValue] = {
    "isPublished": True,
    "isGlobal": True,
    "isPreferenceCenter": False,
}
"""Server defaults on create (G10); ``publicName`` defaults to the name, ``alias`` is
generated from it, ``description`` is empty."""


def live_options(segment: WireSegment) -> dict[str, JSONValue]:
    """Every attribute, with the server's empty forms normalised: a missing ``publicName``
    is the name (G10) and a ``null`` description or alias is ``""``. Planning compares only
    the keys a segment declares, so generated values never show as a diff."""
    return {
        "alias": segment.alias or "",
        "description": segment.description or "",
        "isPublished": segment.is_published,
        "isGlobal": segment.is_global,
        "isPreferenceCenter": segment.is_preference_center,
        "publicName": segment.public_name or segment.name,
    }


_NOT_ALIAS = re.compile(r"[^0-9a-z-]+")


def generated_alias(name: str) -> str | None:
    """The alias Mautic derives from a segment name before de-duplicating it (G8: lower
    case, spaces to ``-``, every other character but letters and digits stripped), or None
    when unsure: a name with non-ASCII letters (the transliteration is not documented), or
    one that leaves nothing or only digits (Mautic then makes one up, or prefixes it)."""
    text = name.strip()
    if not text.isascii():
        return None
    alias = _NOT_ALIAS.sub("", text.replace(" ", "-").lower())
    if not alias or alias.isdigit():
        return None
    return alias


def generated_options(segment: WireSegment) -> frozenset[str]:
    """The options of a live segment whose values Mautic generated from its name (G8, G10):
    ``publicName`` equal to the name, and an ``alias`` derived from the name (with the
    number Mautic appends to de-duplicate it). ``import`` leaves these out."""
    found: set[str] = set()
    if (segment.public_name or segment.name) == segment.name:
        found.add("publicName")
    base = generated_alias(segment.name)
    alias = segment.alias or ""
    if not alias or (
        base is not None
        and alias.startswith(base)
        and (alias == base or alias[len(base) :].isdigit())
    ):
        found.add("alias")
    return frozenset(found)


def _in_family(target_type: str) -> bool:
    return "in" in ops.allowed(target_type)


def lower(rule: Rule, fields: FieldIndex | None) -> Rule:
    """Rewrite operators Mautic lacks into exact equivalents it has (before DNF)."""
    if isinstance(rule, Group):
        return Group.of(rule.match, tuple(lower(member, fields) for member in rule.rules))
    if not isinstance(rule, FieldRule):
        return rule
    if rule.op == "between":
        assert isinstance(rule.value, tuple)
        low, high = rule.value
        return Group.of(
            "all",
            (
                FieldRule.model_construct(field=rule.field, op="gte", value=low),
                FieldRule.model_construct(field=rule.field, op="lte", value=high),
            ),
        )
    if rule.op in ("in", "not_in"):
        try:
            target = resolve(rule.field, fields)
        except Untranslatable:
            return rule
        if target is None or _in_family(target.type):
            return rule
        return in_as_equals(rule)
    return rule


def _dnf(
    match: str, rules: Sequence[Rule], fields: FieldIndex | None
) -> tuple[tuple[Rule, ...], ...]:
    return to_dnf(match, tuple(lower(rule, fields) for rule in rules))


def to_filters(
    match: str, rules: Sequence[Rule], fields: FieldIndex | None, segments: Segments | None
) -> list[tuple[str, WireFilter]]:
    """``(glue, filter)`` in order; ``Untranslatable`` naming every rule that cannot go."""
    try:
        terms = _dnf(match, rules, fields)
    except RuleSyntaxError as exc:
        raise Untranslatable(str(exc)) from None
    problems: dict[str, None] = {}
    found: list[tuple[str, WireFilter]] = []
    for group, term in enumerate(terms):
        for position, leaf in enumerate(term):
            glue = "or" if group > 0 and position == 0 else "and"
            try:
                found.append((glue, to_filter(leaf, fields, segments)))
            except Untranslatable as exc:
                problems[f"{render(leaf)}: {exc.reason}"] = None
    if problems:
        raise Untranslatable("; ".join(problems))
    return found


def _groups(filters: Sequence[WireFilter]) -> list[list[WireFilter]]:
    """Filters split into AND-groups at every ``or`` glue; the first glue is ignored (G6)."""
    groups: list[list[WireFilter]] = []
    for index, f in enumerate(filters):
        if index == 0 or f.glue.strip().lower() == "or":
            groups.append([])
        groups[-1].append(f)
    return groups


def from_filters(
    filters: Sequence[WireFilter], fields: FieldIndex | None, segments: Segments | None
) -> tuple[str, tuple[Rule, ...]]:
    """Stored filters as a segment's ``(match, rules)`` in normal form."""
    if not filters:
        return "all", ()
    terms = tuple(
        tuple(from_filter(f, fields, segments) for f in group) for group in _groups(filters)
    )
    return top_level(*from_dnf(terms))


def _round_trip(rule: Rule, fields: FieldIndex | None, segments: Segments | None) -> Rule:
    if isinstance(rule, Group):
        return Group.of(rule.match, tuple(_round_trip(r, fields, segments) for r in rule.rules))
    try:
        return from_filter(to_filter(rule, fields, segments), fields, segments)
    except Untranslatable:
        return rule  # the adapter refuses to write it: compare it as declared


def canonicalise(
    match: str, rules: Sequence[Rule], fields: FieldIndex | None, segments: Segments | None
) -> tuple[str, tuple[Rule, ...]]:
    """The rules as Mautic would store them and fetch would return them."""
    if not rules:
        return match, tuple(rules)
    lowered = tuple(_round_trip(lower(rule, fields), fields, segments) for rule in rules)
    try:
        terms = to_dnf(match, lowered)
    except RuleSyntaxError:
        return match, tuple(rules)  # too large to store: validation reports it
    return top_level(*from_dnf(terms))
