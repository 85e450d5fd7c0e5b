"""Offline checks of a declared segment, and where each sent rule came from in the YAML.

The core checks shapes, operators per field type, events and windows from the capabilities;
these checks add what only Campaign Monitor's verb table can say (per field: ``contains``
only on ``email``, no rule type for ``first_name``), value formats, and native rules.
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.errors import RuleSyntaxError
from reconciler.model import BehaviourRule, FieldRule, Group, MembershipRule, Rule, Segment
from reconciler.rules import Key, key, path_text, scalar_text, walk

from .mapping import Untranslatable, lower, lowered_cnf, to_wire

__all__ = ["offline_problems", "origins"]

Path = tuple[str | int, ...]


def _leaves_of(rule: Rule) -> Iterator[Rule]:
    lowered = lower(rule)
    if isinstance(lowered, Group):
        for _, leaf in walk(lowered.rules, ()):
            yield leaf
    else:
        yield lowered


def origins(segment: Segment) -> dict[Key, tuple[Path, Rule]]:
    """Each leaf that will be sent (by ``rules.key``) -> the declared rule and its path."""
    found: dict[Key, tuple[Path, Rule]] = {}
    for path, rule in walk(segment.rules):
        for leaf in _leaves_of(rule):
            found.setdefault(key(leaf), (path, rule))
    return found


def _value_problem(rule: FieldRule) -> str | None:
    values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
    for value in values:
        if value is None:
            continue
        text = scalar_text(value)
        if text != " ".join(text.split()):
            return (
                f"value {text!r} has leading, trailing or repeated spaces or a line break, "
                "which a Campaign Monitor clause cannot keep"
            )
    return None


def _leaf_problems(rule: Rule) -> list[str]:
    """What the core's capability check cannot see: per-field verbs and value formats."""
    if isinstance(rule, MembershipRule | BehaviourRule) and not (
        isinstance(rule, BehaviourRule) and len(rule.campaign.split()) != 1
    ):
        return []  # events, windows and membership are checked from the capabilities
    problem = _value_problem(rule) if isinstance(rule, FieldRule) else None
    if problem is not None:
        return [problem]
    reasons: dict[str, None] = {}
    for leaf in _leaves_of(rule):
        try:
            to_wire(leaf, None, strict=False)
        except Untranslatable as exc:
            reasons[exc.reason] = None
    return list(reasons)


def offline_problems(segment: Segment) -> list[str]:
    """Why Campaign Monitor cannot store ``segment``, each naming the rule's path."""
    problems: list[str] = []
    if segment.options:
        problems.append("Campaign Monitor segments have no options; remove options:")
    for path, rule in walk(segment.rules):
        problems.extend(f"{path_text(path)}: {reason}" for reason in _leaf_problems(rule))
    try:
        lowered_cnf(segment.match, segment.rules)
    except RuleSyntaxError as exc:
        problems.append(f"rules: {exc}")
    return problems
