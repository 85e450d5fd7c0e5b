"""Rule shapes: convert rule trees to what a platform stores, and check what it cannot. Pure.

Adapters store rules in one of the shapes of ``provider.Shape``. This module turns a
segment's rule tree into those shapes and says, before any call is made, why a segment
cannot be stored by a provider with given ``Capabilities``:

- ``to_cnf`` / ``to_dnf``: AND of OR-clauses / OR of AND-terms, by distribution, limited to
  ``MAX_TERMS`` groups and ``MAX_TERMS`` conditions in all;
- ``flat``: one list of conditions combined by all or any, or ``None``;
- ``two_level``: groups joined by one connector with the other inside, or ``None``;
- ``check_segment``: every ``Problem`` with a path into the segment's YAML mapping;
- ``describe_capabilities``: the capabilities as JSON-able data for ``reconciler providers``.

Every conversion starts from the normal form of ``rules.normalise`` and is deterministic:
members are ordered by ``rules.key``, so the same rules always convert to the same groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Literal, TypeAlias

from .errors import RuleSyntaxError
from .model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    Group,
    JSONValue,
    MembershipRule,
    NativeRule,
    Rule,
    Segment,
)
from .plan import ACTION_ORDER
from .provider import Capabilities, Problem
from .rules import Key, group_of, in_as_equals, key, leaves, map_leaves, normalise, walk

__all__ = [
    "MAX_TERMS",
    "Clauses",
    "LeafVerdicts",
    "Problem",
    "TwoLevel",
    "check_segment",
    "count_conditions",
    "describe_capabilities",
    "flat",
    "from_cnf",
    "from_dnf",
    "leaf_verdicts",
    "to_cnf",
    "to_dnf",
    "two_level",
]

MAX_TERMS = 64
"""Most groups, and most conditions in all, that a CNF or DNF conversion may produce.

Distribution can grow a rule tree exponentially (``any(all(a, b), all(c, d), ...)`` in CNF
doubles with every member); past this limit a segment is reported as too large to convert
instead of being written as hundreds of conditions.
"""

_WORK_FACTOR = 64
"""Intermediate results may reach ``limit * _WORK_FACTOR`` groups before conversion stops."""

Match: TypeAlias = Literal["all", "any"]
Clauses: TypeAlias = tuple[tuple[Rule, ...], ...]
"""CNF: an AND of OR-clauses; DNF: an OR of AND-terms. Each inner tuple holds leaf rules."""
TwoLevel: TypeAlias = tuple[str, tuple[tuple[str, tuple[Rule, ...]], ...]]
"""``(outer, ((inner, leaves), ...))``: groups joined by ``outer``, leaves by ``inner``."""

Path: TypeAlias = tuple[str | int, ...]
"""Keys and list indexes from a segment's YAML mapping down to one value."""

_KeySet: TypeAlias = frozenset[frozenset[Key]]

_SHAPE_NAMES: dict[str, str] = {
    "tree": "any tree of all/any groups",
    "cnf": "AND of OR-groups",
    "dnf": "OR of AND-groups",
    "flat": "one flat all/any list of conditions",
    "two_level": "groups joined by one connector, the other connector inside",
}


def _other(match: str) -> Match:
    """The connector that is not ``match``."""
    return "any" if match == "all" else "all"


def _sorted(keys: Iterable[Key]) -> list[Key]:
    """Keys in their canonical order (keys of one kind share a layout, so they compare)."""
    return sorted(keys)


# --- CNF and DNF -------------------------------------------------------------------------


def to_cnf(match: str, rules: Sequence[Rule], limit: int = MAX_TERMS) -> Clauses:
    """A segment's rules as an AND of OR-clauses of leaf rules.

    Clauses and the members of each clause are de-duplicated by ``rules.key`` and sorted.
    Raises ``RuleSyntaxError`` when the result needs more than ``limit`` clauses or more
    than ``limit`` conditions in all.
    """
    return _convert(match, rules, "all", limit)


def to_dnf(match: str, rules: Sequence[Rule], limit: int = MAX_TERMS) -> Clauses:
    """A segment's rules as an OR of AND-terms of leaf rules; see ``to_cnf``."""
    return _convert(match, rules, "any", limit)


def from_cnf(clauses: Clauses) -> tuple[Match, tuple[Rule, ...]]:
    """A segment's ``(match, rules)`` from CNF clauses, e.g. as an adapter reads them back."""
    return "all", tuple(_join("any", clause) for clause in clauses)


def from_dnf(terms: Clauses) -> tuple[Match, tuple[Rule, ...]]:
    """A segment's ``(match, rules)`` from DNF terms, e.g. as an adapter reads them back."""
    return "any", tuple(_join("all", term) for term in terms)


def _join(match: Match, leaves: tuple[Rule, ...]) -> Rule:
    """One leaf as itself, several as a group."""
    return leaves[0] if len(leaves) == 1 else Group.of(match, leaves)


def _label(outer: str) -> str:
    return "AND-of-OR groups" if outer == "all" else "OR-of-AND groups"


def _convert(match: str, rules: Sequence[Rule], outer: str, limit: int) -> Clauses:
    """Distribute the normalised tree into groups joined by ``outer``."""
    leaves: dict[Key, Rule] = {}
    tree = normalise(group_of(match, rules))
    groups = _distribute(tree, outer, leaves, _Budget(outer, limit))
    if len(groups) > limit:
        raise RuleSyntaxError(
            f"converting to {_label(outer)} needs {len(groups)} groups,"
            f" more than the limit of {limit}"
        )
    conditions = sum(len(group) for group in groups)
    if conditions > limit:
        raise RuleSyntaxError(
            f"converting to {_label(outer)} needs {conditions} conditions,"
            f" more than the limit of {limit}"
        )
    inner = _other(outer)
    ordered = sorted(groups, key=lambda group: _group_order(inner, group))
    return tuple(tuple(leaves[k] for k in _sorted(group)) for group in ordered)


def _group_order(inner: str, group: frozenset[Key]) -> Key:
    """The ``rules.key`` the group would have as a rule, so results sort like normal form."""
    members = _sorted(group)
    return members[0] if len(members) == 1 else ("group", inner, tuple(members))


@dataclass(frozen=True)
class _Budget:
    """Stops a conversion whose intermediate results grow far past the limit."""

    outer: str
    limit: int

    def check(self, groups: _KeySet) -> _KeySet:
        cap = max(self.limit, 1) * _WORK_FACTOR
        if len(groups) > cap:
            raise RuleSyntaxError(
                f"converting to {_label(self.outer)} needs more than {cap} groups,"
                f" more than the limit of {self.limit}"
            )
        return groups


def _distribute(rule: Rule, outer: str, leaves: dict[Key, Rule], budget: _Budget) -> _KeySet:
    """The groups (sets of leaf keys) joined by ``outer`` that ``rule`` is equivalent to."""
    if not isinstance(rule, Group):
        k = key(rule)
        leaves.setdefault(k, rule)
        return frozenset({frozenset({k})})
    parts = [_distribute(member, outer, leaves, budget) for member in rule.rules]
    if rule.match == outer:
        return budget.check(frozenset().union(*parts))
    combined: _KeySet = frozenset({frozenset()})
    for part in parts:
        combined = budget.check(frozenset(a | b for a, b in product(combined, part)))
    return combined


# --- flat and two-level shapes -----------------------------------------------------------


def flat(match: str, rules: Sequence[Rule]) -> tuple[str, tuple[Rule, ...]] | None:
    """``(match, leaves)`` when the normalised rules are one flat list of leaves, else None.

    A single leaf is ``("all", (leaf,))``.
    """
    tree = normalise(group_of(match, rules))
    if not isinstance(tree, Group):
        return "all", (tree,)
    if any(isinstance(member, Group) for member in tree.rules):
        return None
    return tree.match, tree.rules


def two_level(match: str, rules: Sequence[Rule]) -> TwoLevel | None:
    """Groups joined by one connector, each joining its leaves with the other; else None.

    The outer connector is the normalised top level's ``match``; a leaf at the top level is
    a group of one. A single leaf is ``("all", (("any", (leaf,)),))``.
    """
    tree = normalise(group_of(match, rules))
    if not isinstance(tree, Group):
        return "all", (("any", (tree,)),)
    inner = _other(tree.match)
    groups: list[tuple[str, tuple[Rule, ...]]] = []
    for member in tree.rules:
        if not isinstance(member, Group):
            groups.append((inner, (member,)))
        elif any(isinstance(leaf, Group) for leaf in member.rules):
            return None
        else:
            groups.append((inner, member.rules))
    return tree.match, tuple(groups)


def _leaf_count(rule: Rule) -> int:
    if isinstance(rule, Group):
        return sum(_leaf_count(member) for member in rule.rules)
    return 1


def count_conditions(shape: str, match: str, rules: Sequence[Rule]) -> int:
    """How many leaf conditions the rules hold once converted to ``shape``.

    Raises ``RuleSyntaxError`` when a CNF or DNF conversion exceeds ``MAX_TERMS``.
    """
    if shape in ("cnf", "dnf"):
        groups = to_cnf(match, rules) if shape == "cnf" else to_dnf(match, rules)
        return sum(len(group) for group in groups)
    return _leaf_count(normalise(group_of(match, rules)))


# --- capability checks -------------------------------------------------------------------


def check_segment(
    segment: Segment,
    capabilities: Capabilities,
    field_types: Mapping[str, str],
    memo: LeafVerdicts | None = None,
    leaf_rules: Sequence[Rule] | None = None,
) -> list[Problem]:
    """Everything in ``segment`` that a provider with ``capabilities`` cannot store.

    ``field_types`` maps casefolded custom field names to their type; standard fields come
    from ``model.STANDARD_FIELDS``. Unknown fields are skipped: the caller reports them.
    ``memo`` (from :func:`leaf_verdicts`) shares leaf verdicts across one list's segments;
    ``leaf_rules`` are the segment's leaves (:func:`rules.leaves`) when the caller has them.
    """
    problems: list[Problem] = []
    known = LeafVerdicts(capabilities, field_types) if memo is None else memo
    found = leaves(segment.rules) if leaf_rules is None else leaf_rules
    if not all(known.fine(rule) for rule in found):
        for path, rule in walk(segment.rules):
            problems.extend(known.problems(path, rule))
    problems.extend(_shape_problems(segment, capabilities))
    return problems


class LeafVerdicts:
    """The problems of field rules, remembered by (field, operator): they depend on
    nothing else, and a list's segments test the same few fields over and over."""

    __slots__ = ("capabilities", "field_types", "seen")

    def __init__(self, capabilities: Capabilities, field_types: Mapping[str, str]) -> None:
        self.capabilities = capabilities
        self.field_types = field_types
        self.seen: dict[tuple[str, str], tuple[Problem, ...]] = {}

    def fine(self, rule: Rule) -> bool:
        """Whether a leaf has no problem (its path is needed only when it has one)."""
        if rule.__class__ is FieldRule:
            return not self.problems((), rule)
        return not _rule_problems((), rule, self.capabilities, self.field_types)

    def problems(self, path: Path, rule: Rule) -> list[Problem]:
        if rule.__class__ is not FieldRule:
            return _rule_problems(path, rule, self.capabilities, self.field_types)
        assert isinstance(rule, FieldRule)
        signature = (rule.field, rule.op)
        found = self.seen.get(signature)
        if found is None:
            found = tuple(_field_problems((), rule, self.capabilities, self.field_types))
            self.seen[signature] = found
        return [Problem((*path, *p.path), p.message) for p in found] if found else []


def leaf_verdicts(capabilities: Capabilities, field_types: Mapping[str, str]) -> LeafVerdicts:
    """A memo for :func:`check_segment` over many segments of one list (same capabilities
    and fields)."""
    return LeafVerdicts(capabilities, field_types)


def _rule_problems(
    path: Path, rule: Rule, capabilities: Capabilities, field_types: Mapping[str, str]
) -> list[Problem]:
    if isinstance(rule, FieldRule):
        return _field_problems(path, rule, capabilities, field_types)
    if isinstance(rule, BehaviourRule):
        return _behaviour_problems(path, rule, capabilities)
    if isinstance(rule, MembershipRule):
        return _membership_problems(path, rule, capabilities)
    if isinstance(rule, NativeRule) and not capabilities.native:
        return [Problem((*path, "native"), "native rules are not supported by this provider")]
    return []


def _field_problems(
    path: Path, rule: FieldRule, capabilities: Capabilities, field_types: Mapping[str, str]
) -> list[Problem]:
    name = rule.field.casefold()
    custom = name in field_types
    field_type = field_types[name] if custom else STANDARD_FIELDS.get(name)
    if field_type is None:
        return []  # an undeclared field: validation reports it
    allowed = capabilities.operators_for(name, field_type if custom else None)
    if rule.op in allowed:
        return []
    if not custom and name in capabilities.standard_operators:
        known = ", ".join(sorted(allowed))
        message = (
            f"operator {rule.op!r} is not supported for the standard field {rule.field!r} "
            f"by this provider (supported: {known})"
            if known
            else f"rules cannot test the standard field {rule.field!r} on this provider"
        )
    else:
        message = (
            f"operator {rule.op!r} is not supported for {field_type} field {rule.field!r}"
            " by this provider"
        )
    return [Problem((*path, "op"), message)]


def _behaviour_problems(
    path: Path, rule: BehaviourRule, capabilities: Capabilities
) -> list[Problem]:
    problems: list[Problem] = []
    if not capabilities.events:
        problems.append(
            Problem((*path, "event"), "campaign behaviour rules are not supported by this provider")
        )
    elif rule.event not in capabilities.events:
        problems.append(
            Problem((*path, "event"), f"event {rule.event!r} is not supported by this provider")
        )
    if rule.within is not None and not capabilities.within:
        problems.append(
            Problem((*path, "within"), "a 'within' time window is not supported by this provider")
        )
    return problems


def _membership_problems(
    path: Path, rule: MembershipRule, capabilities: Capabilities
) -> list[Problem]:
    if not capabilities.membership:
        message = "list membership rules are not supported by this provider"
    elif rule.op not in capabilities.membership:
        message = f"membership operator {rule.op!r} is not supported by this provider"
    else:
        return []
    return [Problem((*path, "op"), message)]


def _shape_problems(segment: Segment, capabilities: Capabilities) -> list[Problem]:
    """The shape and size problems, all reported at ``("rules",)``."""
    shape = capabilities.shape
    where: Path = ("rules",)
    if shape == "flat" and flat(segment.match, segment.rules) is None:
        return [
            Problem(where, "rules nest deeper than this provider's one flat list of conditions")
        ]
    if shape == "two_level" and two_level(segment.match, segment.rules) is None:
        return [
            Problem(
                where,
                "rules nest deeper than this provider's two levels"
                " (groups joined by one connector, the other connector inside)",
            )
        ]
    limit = capabilities.max_conditions
    if limit is None and shape not in ("cnf", "dnf"):
        return []  # nothing to convert and nothing to count
    try:
        stored = segment.rules
        if capabilities.expands_in:
            stored = tuple(map_leaves(rule, in_as_equals) for rule in stored)
        count = count_conditions(shape, segment.match, stored)
    except RuleSyntaxError as exc:
        return [Problem(where, str(exc))]
    if limit is not None and count > limit:
        message = f"the rules need {count} conditions, more than this provider's limit of {limit}"
        return [Problem(where, message)]
    return []


# --- description -------------------------------------------------------------------------


def describe_capabilities(capabilities: Capabilities) -> dict[str, JSONValue]:
    """The capabilities as JSON-able data, for ``reconciler providers``: sorted, stable."""
    c = capabilities
    return {
        "shape": c.shape,
        "shape_description": _SHAPE_NAMES[c.shape],
        "conversion_limit": MAX_TERMS if c.shape in ("cnf", "dnf") else None,
        "max_conditions": c.max_conditions,
        "operators": {ftype: sorted(ops) for ftype, ops in sorted(c.operators.items())},
        "standard_operators": {
            name: sorted(ops) for name, ops in sorted(c.standard_operators.items())
        },
        "field_scope": c.field_scope,
        "names_case_insensitive": c.names_case_insensitive,
        "events": sorted(c.events),
        "within": c.within,
        "membership": sorted(c.membership),
        "native": c.native,
        "changes": [str(action) for action in sorted(c.changes, key=ACTION_ORDER.__getitem__)],
        "field_types": sorted(c.field_types),
    }
