"""Offline checks of a declared segment: what the core's capability check cannot see.

The core checks the DNF size, operators per canonical field type, events and membership
operators from the capabilities. These checks add what only Mautic's tables say: the
operators its field types lack, values it would rewrite or refuse (LIKE wildcards ``%`` and
``_``, booleans, dates its date check refuses), the shape of ``native:`` filters, and the
segment attributes ``options:`` may set, in the form the server keeps them (G8, G10, G11).
What depends on the live instance (a field's real type and options, segment names) is
checked at plan time (``planned.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.model import FieldRule, Group, JSONValue, NativeRule, Rule, Segment
from reconciler.provider import Problem
from reconciler.rules import path_text, walk

from . import operators as ops
from .api import ContactField
from .leaves import FieldIndex, Untranslatable, to_filter
from .mapping import OPTION_KEYS, lower

__all__ = ["offline_problems", "option_problem"]

Path = tuple[str | int, ...]

_ALIAS = re.compile(r"[a-z0-9-]+")
"""What Mautic keeps unchanged when it cleans a segment alias (G8): lower-case letters,
digits and ``-`` (it strips everything else and turns spaces into ``-``)."""
_TAG = re.compile(r"<[^>]*>")
_BOOLEAN_OPTIONS = frozenset({"isPublished", "isGlobal", "isPreferenceCenter"})
_UNSUPPORTED = frozenset({"name", "status"})
"""Standard fields Mautic has no equivalent for: the core refuses rules on them from the
capabilities (``standard_operators``), so they are not reported twice."""

_STANDARD = [
    ContactField(id=0, label=alias, alias=alias, type=kind)
    for alias, kind in ops.STANDARD_ALIASES.values()
]
"""The standard fields with the types Mautic gives them (``email`` is type ``email``)."""


def _declared(field_types: Mapping[str, str]) -> FieldIndex:
    """The standard fields and the list's declared fields, each with the Mautic type it
    has (or is created with: a declared field's type is the Mautic type of that name)."""
    declared = [
        ContactField(id=0, label=name, alias=name, type=kind) for name, kind in field_types.items()
    ]
    return FieldIndex([*_STANDARD, *declared], choices=False)


def _skipped(leaf: Rule, fields: FieldIndex) -> bool:
    """Leaves the core reports: undeclared custom fields, standard fields without an
    equivalent."""
    if not isinstance(leaf, FieldRule):
        return False
    name = leaf.field.casefold()
    if name in ops.STANDARD_ALIASES:
        return False
    return name in _UNSUPPORTED or fields.find(leaf.field) is None


def _hidden(leaf: Rule) -> bool:
    """A ``native:`` filter with an operator the API rejects (G15): a live segment may hold
    one (and its declaration, as import writes it, matches it), so ``plan`` refuses it only
    where it would be written."""
    return isinstance(leaf, NativeRule) and leaf.native.get("operator") in ops.HIDDEN_OPS


def _leaf_problems(rule: Rule, fields: FieldIndex) -> list[str]:
    """Write the rule as filters against the declared fields; membership and behaviour
    rules are checked from the capabilities, and undeclared fields by the core."""
    if not isinstance(rule, FieldRule | NativeRule):
        return []
    lowered = lower(rule, fields)
    leaves = lowered.rules if isinstance(lowered, Group) else (lowered,)
    reasons: dict[str, None] = {}
    for leaf in leaves:
        if _skipped(leaf, fields) or _hidden(leaf):
            continue
        try:
            to_filter(leaf, fields, None)
        except Untranslatable as exc:
            reasons[exc.reason] = None
    return list(reasons)


def option_problem(key: str, value: JSONValue) -> str | None:
    """Why ``options: {key: value}`` cannot be declared, or None."""
    if key not in OPTION_KEYS:
        return f"unknown option {key!r} (Mautic segments take {', '.join(OPTION_KEYS)})"
    if key in _BOOLEAN_OPTIONS:
        return None if isinstance(value, bool) else f"option {key!r} must be true or false"
    if not isinstance(value, str):
        return f"option {key!r} must be text"
    if key == "alias" and (not _ALIAS.fullmatch(value) or value.isdigit()):
        return (
            f"alias {value!r} is not in the form Mautic stores (lower-case letters, digits and "
            "'-', not only digits); Mautic would rewrite it and it would never match"
        )
    if key == "publicName" and not value.strip():
        return "publicName cannot be empty: Mautic replaces an empty one with the name"
    if _TAG.search(value):
        return f"option {key!r} holds markup, which Mautic strips or filters"
    return None


def offline_problems(segment: Segment, field_types: Mapping[str, str]) -> list[str | Problem]:
    """Why Mautic cannot store ``segment`` as declared, each naming where."""
    problems: list[str | Problem] = []
    if _TAG.search(segment.name):
        problems.append("name: holds markup, which Mautic strips from segment names")
    for key, value in segment.options.items():
        problem = option_problem(key, value)
        if problem is not None:
            problems.append(f"options.{key}: {problem}")
    fields = _declared(field_types)
    for path, rule in walk(segment.rules):
        problems.extend(
            Problem(path, f"{path_text(path)}: {reason}") for reason in _leaf_problems(rule, fields)
        )
    return problems
