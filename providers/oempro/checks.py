"""Offline checks of a declared segment: what only Oempro's own rules can say.

The core already checks the two-level shape, the operators per field type and per standard
field (Oempro has no name fields; dates test only set / not set), events, windows and
membership from the capabilities. These checks add: the size of the conversion to CNF or
DNF (the core counts nothing for a two-level shape), values Oempro might read as a pattern
or not as a number, campaign ids, options, and the form of ``native:`` rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from reconciler.model import STANDARD_FIELDS, BehaviourRule, FieldRule, NativeRule, Rule, Segment
from reconciler.provider import Problem
from reconciler.rules import path_text, walk

from .mapping import Untranslatable, convert
from .vocabulary import OPERATORS, STANDARD_OPERATORS, value_problem

__all__ = ["offline_problems"]


def _leaf_problem(rule: Rule, field_types: Mapping[str, str]) -> str | None:
    if isinstance(rule, FieldRule):
        name = rule.field.casefold()
        if name in field_types:
            field_type = field_types[name]
            allowed = OPERATORS.get(field_type, frozenset())
        elif name in STANDARD_FIELDS:
            field_type, allowed = STANDARD_FIELDS[name], STANDARD_OPERATORS[name]
        else:
            return None  # an undeclared field: validation reports it
        if rule.op not in allowed:
            return None  # the core's operator check says so
        return value_problem(rule.op, field_type, rule.value)
    if isinstance(rule, BehaviourRule) and not rule.campaign.isdigit():
        return f"campaign id {rule.campaign!r} is not an Oempro campaign id (a number)"
    if isinstance(rule, NativeRule):
        kind = rule.native.get("type")
        if not isinstance(kind, str) or not kind:
            return "a native Oempro rule needs a 'type' (e.g. segments, tags, campaign-events)"
        try:
            json.dumps(rule.native, allow_nan=False)
        except (TypeError, ValueError):
            return "a native Oempro rule must hold only JSON values"
    return None


def offline_problems(segment: Segment, field_types: Mapping[str, str]) -> list[str | Problem]:
    """Why Oempro cannot store ``segment``, each naming the rule's path."""
    problems: list[str | Problem] = []
    if segment.options:
        problems.append(
            "options: Oempro segment options (random sampling) are not managed by this "
            "adapter; remove options:"
        )
    for path, rule in walk(segment.rules):
        problem = _leaf_problem(rule, field_types)
        if problem is not None:
            problems.append(Problem(path, f"{path_text(path)}: {problem}"))
    try:
        convert(segment.match, segment.rules)
    except Untranslatable as exc:
        problems.append(f"rules: {exc.reason}")
    return problems
