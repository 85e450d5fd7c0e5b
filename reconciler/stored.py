"""The stored form of a segment: its rules as a target's platform will hold them. Pure.

A provider rewrites declared rules twice before they reach its platform: its own
``canonical_rules`` (operators lowered, leaves rewritten the way the platform reads them
back) and the conversion to the shape its capabilities declare (``shapes.to_cnf``,
``to_dnf``, ``flat``, ``two_level``; ``in``/``not_in`` expanded where the platform stores
one condition per value). :func:`stored_form` applies both, offline, so that
``reconciler test`` can check that the stored form selects exactly the subscribers the
declared one does. Nothing here contacts a platform: ``canonical_rules`` is called before
any fetch, when a provider knows only its settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import RuleSyntaxError
from .model import Group, Rule
from .planning import Canon
from .rules import in_as_equals, map_leaves, top_level
from .shapes import flat, from_cnf, from_dnf, to_cnf, to_dnf, two_level

__all__ = ["NotStorable", "shaped", "stored_form"]


class NotStorable(RuleSyntaxError):
    """The rules do not fit the provider's shape (``validate`` refuses such a segment)."""


def stored_form(
    canon: Canon, match: str, rules: Sequence[Rule], list_name: str
) -> tuple[str, tuple[Rule, ...]]:
    """``(match, rules)`` as the provider behind ``canon`` stores a segment of
    ``list_name`` declared with ``match`` and ``rules``.

    Raises :class:`NotStorable` when the result does not fit the provider's shape or size
    limit (validation reports those segments before this is asked)."""
    stored_match, stored = canon.canonical_rules(match, tuple(rules), list_name)
    return shaped(canon.capabilities.shape, stored_match, stored, canon.capabilities.expands_in)


def shaped(
    shape: str, match: str, rules: Sequence[Rule], expands_in: bool = False
) -> tuple[str, tuple[Rule, ...]]:
    """``(match, rules)`` converted to ``shape`` (``tree``, ``cnf``, ``dnf``, ``flat``,
    ``two_level``), ``in``/``not_in`` first expanded when ``expands_in``."""
    if expands_in:
        rules = tuple(map_leaves(rule, in_as_equals) for rule in rules)
    try:
        if shape == "cnf":
            return from_cnf(to_cnf(match, rules))
        if shape == "dnf":
            return from_dnf(to_dnf(match, rules))
    except RuleSyntaxError as exc:
        raise NotStorable(str(exc)) from None
    if shape == "flat":
        found = flat(match, rules)
        if found is None:
            raise NotStorable("the rules nest deeper than one flat list of conditions")
        return found[0], tuple(found[1])
    if shape == "two_level":
        levels = two_level(match, rules)
        if levels is None:
            raise NotStorable("the rules nest deeper than two levels")
        outer, groups = levels
        return outer, tuple(
            leaves[0] if len(leaves) == 1 else Group.of("any" if inner == "any" else "all", leaves)
            for inner, leaves in groups
        )
    return top_level(match, rules)
