"""Offline checks of a declared segment: what only MailWizz's own rules can say.

The core already checks the flat shape, operators per field type and per standard field
(``name``, ``date_subscribed`` and ``status`` are not list fields: no condition reaches
them), events, windows, membership and the per-target condition limit from the
capabilities. These checks add: values and names the server would rewrite (trimmed,
HTML-decoded, tags stripped) or refuse (empty, over 255 characters), values it would not
read literally (LIKE wildcards, value tags, numbers it compares as whole numbers: see
``mapping.literal_problem``), numeric campaign ids, window sizes, native rule forms, and
``in``/``not_in`` that do not flatten into the segment's match.
"""

from __future__ import annotations

import re

from reconciler.model import BehaviourRule, FieldRule, Group, NativeRule, Rule, Segment
from reconciler.provider import Problem
from reconciler.rules import path_text, walk
from reconciler.shapes import flat

from .mapping import SLUGS, UNSTORABLE_FIELDS, Untranslatable, compile_leaf, lower

__all__ = ["HTML_LIKE", "limit_problem", "name_problem", "offline_problems"]

Path = tuple[str | int, ...]

HTML_LIKE = re.compile(r"[<>]|&(#\d+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
"""What MailWizz's input filter rewrites (tags stripped, entities decoded): such text would
never read back as declared."""
MAX_NAME = 255
_CHECKED_OPS = frozenset({*SLUGS, "empty", "not_empty", "in", "not_in"})


def name_problem(name: str, what: str = "segment name") -> str | None:
    if name != name.strip():
        return f"the {what} {name!r} has leading or trailing spaces, which MailWizz trims"
    if len(name) > MAX_NAME:
        return f"the {what} is longer than {MAX_NAME} characters"
    if HTML_LIKE.search(name):
        return f"the {what} {name!r} holds '<', '>' or an HTML entity, which MailWizz rewrites"
    return None


def _values(rule: Rule) -> tuple[object, ...]:
    if isinstance(rule, FieldRule):
        return rule.value if isinstance(rule.value, tuple) else (rule.value,)
    if isinstance(rule, NativeRule):
        return (rule.native.get("value"),)
    return ()


def _leaf_problems(rule: Rule) -> list[str]:
    lacks = isinstance(rule, FieldRule) and (
        rule.field.strip().casefold() in UNSTORABLE_FIELDS or rule.op not in _CHECKED_OPS
    )
    if lacks:
        return []  # a field or operator MailWizz lacks: the core's capability check says so
    if not isinstance(rule, FieldRule | BehaviourRule | NativeRule):
        return []  # membership: the core says so
    for value in _values(rule):
        if isinstance(value, str) and HTML_LIKE.search(value):
            return [
                f"value {value!r} holds '<', '>' or an HTML entity, which MailWizz rewrites "
                "on input, so it would never read back as declared"
            ]
    reasons: dict[str, None] = {}
    lowered = lower(rule)
    for _, leaf in walk(lowered.rules, ()) if isinstance(lowered, Group) else [((), lowered)]:
        try:
            compile_leaf(leaf)
        except Untranslatable as exc:
            reasons[exc.reason] = None
    return list(reasons)


def offline_problems(segment: Segment) -> list[str | Problem]:
    """Why MailWizz cannot store ``segment``, each naming the rule's path."""
    problems: list[str | Problem] = []
    if segment.options:
        problems.append("MailWizz segments have no options; remove options:")
    problem = name_problem(segment.name)
    if problem is not None:
        problems.append(f"name: {problem}")
    for path, rule in walk(segment.rules):
        problems.extend(
            Problem(path, f"{path_text(path)}: {reason}") for reason in _leaf_problems(rule)
        )
    lowered = tuple(lower(rule) for rule in segment.rules)
    if flat(segment.match, segment.rules) is not None and flat(segment.match, lowered) is None:
        problems.append(
            "rules: an 'in' of several values is an any-group of conditions and a 'not_in' "
            "an all-group, which MailWizz's one flat list can hold only when it is the "
            "segment's own match (in with match: any, not_in with match: all)"
        )
    return problems


def limit_problem(count: int, limit: int) -> str | None:
    """Why ``count`` conditions (after ``in``/``not_in`` expand and duplicates go) are too
    many for a target whose ``max_segment_conditions`` is ``limit``."""
    if count <= limit:
        return None
    return (
        f"the rules need {count} MailWizz conditions (field and campaign conditions together, "
        f"one per value of an in/not_in), more than the target's max_segment_conditions of "
        f"{limit}; raise lists.max_segment_conditions for the customer group in MailWizz and "
        "max_segment_conditions in the target, or split the segment"
    )
