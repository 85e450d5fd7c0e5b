"""Canonical rules <-> Oempro's ``RulesJson`` criteria and ``SegmentOperator``. Pure.

Oempro stores a segment as an array of rule groups (the "RulesJson criteria syntax",
providers/oempro.md 6.1) and one ``SegmentOperator`` that joins the groups, the other
connector joining the rules inside each group (6.3): ``and`` with ``[[a, b], [c]]`` is
``(a OR b) AND c`` (CNF), ``or`` with the same array is ``(a AND b) OR c`` (DNF).

- :func:`convert` turns canonical rules into CNF under ``and`` or DNF under ``or``,
  whichever is smaller (fewer conditions, then fewer groups; ``and`` on a tie), within the
  core's conversion limit (``shapes.MAX_TERMS``). The choice depends only on the rules'
  normal form, and what is stored converts back to itself, so a plan after apply is empty.
  Sub-groups inside a group are never written: their encoding is undocumented.
- Leaves: a field rule is ``{"type": "fields", "field_id": ..., "operator": ..., "value":
  ...}`` where ``field_id`` is ``EmailAddress``, ``SubscriptionStatus`` or
  ``SubscriptionDate`` for the standard fields Oempro has, else the list's own
  ``CustomFieldID`` (G10). A behaviour rule is a ``campaign-events`` rule, its window
  ``time_filter: {type: in_last_x_days, value: N}``. Everything else the criteria syntax
  documents (segments, tags, journeys, suppressions, website events, other campaign events)
  is ``native:``; ``belongs to`` another *segment* is not membership of a *list*.
- Reading is the reverse, after normalising what Oempro re-serialises (numbers as strings,
  ids as strings, reordered keys, ``\\/`` and ``\\u`` escapes: G1, G2). A stored rule that
  reads back as a canonical rule is one ``validate`` accepts (:func:`value_problem`);
  otherwise it is read as ``native:``. A rule type or operator the documentation does not
  describe, sub-groups, the old ``SegmentRules`` form and unreadable JSON make the segment
  unmanaged (G9): never written, never pruned unless named with ``--allow-delete``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from reconciler.errors import RuleSyntaxError
from reconciler.model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    Group,
    JSONValue,
    MembershipRule,
    NativeRule,
    Rule,
    Within,
)
from reconciler.rules import map_leaves, scalar_text
from reconciler.shapes import MAX_TERMS, from_cnf, from_dnf, to_cnf, to_dnf

from .vocabulary import (
    CANONICAL_OPS,
    DOCUMENTED,
    EMPTINESS,
    EVENT_BY_WIRE,
    EVENTS,
    LEGACY_REASON,
    OPERATORS,
    STANDARD_BY_ID,
    STANDARD_IDS,
    STANDARD_OPERATORS,
    WINDOW,
    WIRE_OPS,
    Match,
    Operator,
    native_problem,
    normalise_native,
    value_problem,
)

__all__ = [
    "Decoded",
    "FieldIndex",
    "FieldInfo",
    "LiveRules",
    "Stored",
    "Untranslatable",
    "canonicalise",
    "convert",
    "decode_leaf",
    "decode_segment",
    "encode_leaf",
]


class Untranslatable(Exception):
    """A rule or segment Oempro cannot store as declared; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- fields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    """A custom field of one list, typed in canonical types."""

    id: str
    name: str
    type: str


class FieldIndex:
    """A list's custom fields by id and by name (case-insensitive)."""

    def __init__(self, fields: Sequence[FieldInfo]) -> None:
        self._by_id = {f.id: f for f in fields}
        self._by_name: dict[str, list[FieldInfo]] = {}
        for f in fields:
            self._by_name.setdefault(f.name.casefold(), []).append(f)

    def by_id(self, ident: str) -> FieldInfo | None:
        return self._by_id.get(ident)

    def unique(self, name: str) -> bool:
        return len(self._by_name.get(name.casefold(), ())) == 1

    def named(self, name: str) -> FieldInfo:
        found = self._by_name.get(name.casefold(), [])
        if not found:
            raise Untranslatable(f'the list has no custom field named "{name}"')
        if len(found) > 1:
            ids = ", ".join(f.id for f in found)
            raise Untranslatable(
                f'the list has {len(found)} custom fields named "{name}" (ids {ids}); '
                "rename all but one in Oempro"
            )
        return found[0]


# -- natives --------------------------------------------------------------------------------


# -- leaves: canonical -> criteria ----------------------------------------------------------


def encode_leaf(rule: Rule, index: FieldIndex | None) -> dict[str, JSONValue]:
    """One leaf as a criteria rule, or ``Untranslatable``."""
    if isinstance(rule, FieldRule):
        return _encode_field(rule, index)
    if isinstance(rule, BehaviourRule):
        if not rule.campaign.isdigit():
            raise Untranslatable(f"campaign id {rule.campaign!r} is not an Oempro campaign id")
        found: dict[str, JSONValue] = {
            "type": "campaign-events",
            "operator": EVENTS[rule.event],
            "value": rule.campaign,
        }
        if rule.within is not None:  # documented as an integer number of days
            found["time_filter"] = {"type": WINDOW, "value": rule.within.days}
        return found
    if isinstance(rule, NativeRule):
        problem = native_problem(rule.native)
        if problem is not None:
            raise Untranslatable(problem)
        return dict(rule.native)
    if isinstance(rule, MembershipRule):
        raise Untranslatable(
            "Oempro has no rule for membership of another list (its 'segments' rule tests "
            "membership of a segment): use native:"
        )
    raise Untranslatable("rules nest deeper than Oempro's two levels")


def _encode_field(rule: FieldRule, index: FieldIndex | None) -> dict[str, JSONValue]:
    name = rule.field.casefold()
    if name in STANDARD_FIELDS:
        field_type = STANDARD_FIELDS[name]
        field_id = STANDARD_IDS.get(name)
        if field_id is None or rule.op not in STANDARD_OPERATORS[name]:
            raise Untranslatable(
                f"Oempro cannot test the standard field {rule.field!r} with {rule.op!r}"
            )
    else:
        if index is None:
            raise Untranslatable(f'the list has no custom field named "{rule.field}"')
        info = index.named(rule.field)
        field_type, field_id = info.type, info.id
        if rule.op not in OPERATORS.get(field_type, frozenset()):
            raise Untranslatable(
                f"operator {rule.op!r} is not supported for the {field_type} field "
                f'"{info.name}" by Oempro'
            )
    problem = value_problem(rule.op, field_type, rule.value)
    if problem is not None:
        raise Untranslatable(problem)
    value = "" if rule.value is None else scalar_text(rule.value)  # type: ignore[arg-type]
    return {"type": "fields", "field_id": field_id, "operator": WIRE_OPS[rule.op], "value": value}


# -- leaves: criteria -> canonical ----------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    rule: Rule
    modelled: bool
    """False for a type or operator the documentation does not describe."""


def decode_leaf(raw: JSONValue, index: FieldIndex | None) -> Decoded | None:
    """One stored rule as a canonical rule (``native:`` where none says the same), or None
    when it is not even a rule object."""
    if not isinstance(raw, dict) or not raw:
        return None
    native = normalise_native(raw)
    assert isinstance(native, dict)
    as_native = Decoded(NativeRule.model_construct(native=native), True)
    kind = native.get("type")
    if not isinstance(kind, str) or native.get("operator") not in DOCUMENTED.get(kind, ()):
        return Decoded(as_native.rule, False)
    if kind == "fields":
        found: Rule | None = _field_rule(native, index)
    elif kind == "campaign-events":
        found = _behaviour_rule(native)
    else:
        found = None
    return as_native if found is None else Decoded(found, True)


def _field_rule(native: dict[str, JSONValue], index: FieldIndex | None) -> Rule | None:
    if set(native) - {"type", "field_id", "operator", "value"}:
        return None
    field_id = native.get("field_id")
    op = CANONICAL_OPS[str(native["operator"])]
    value = native.get("value")
    if not isinstance(field_id, str) or not isinstance(value, str | None):
        return None
    if op in EMPTINESS:
        if value:
            return None  # a set / not set test carrying a value: kept exactly, as native
        value = None
    elif value is None:
        return None
    if field_id in STANDARD_BY_ID:
        name = STANDARD_BY_ID[field_id]
        field_type, allowed = STANDARD_FIELDS[name], STANDARD_OPERATORS[name]
    else:
        info = index.by_id(field_id) if index is not None else None
        if info is None or info.name.casefold() in STANDARD_FIELDS:
            return None  # a field named like a standard field is only ever native
        assert index is not None
        if not index.unique(info.name):
            return None
        name, field_type = info.name, info.type
        allowed = OPERATORS.get(field_type, frozenset())
    if op not in allowed or value_problem(op, field_type, value) is not None:
        return None
    try:
        return FieldRule(field=name, op=op, value=value)
    except ValidationError:
        return None


def _behaviour_rule(native: dict[str, JSONValue]) -> Rule | None:
    if set(native) - {"type", "operator", "value", "time_filter"}:
        return None
    event = EVENT_BY_WIRE.get(str(native["operator"]))
    campaign = native.get("value")
    if event is None or not isinstance(campaign, str) or not campaign.isdigit():
        return None
    window = native.get("time_filter")
    within = None
    if window is not None:
        if not isinstance(window, dict) or set(window) != {"type", "value"}:
            return None
        days = window["value"]
        if window["type"] != WINDOW or not isinstance(days, str) or not days.isdigit():
            return None
        if int(days) < 1:
            return None
        within = Within(days=int(days))
    return BehaviourRule(campaign=campaign, event=event, within=within)


# -- segments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """Two levels as Oempro stores them: groups joined by ``operator``."""

    operator: Operator
    groups: tuple[tuple[Rule, ...], ...]

    def canonical(self) -> tuple[str, tuple[Rule, ...]]:
        return from_cnf(self.groups) if self.operator == "and" else from_dnf(self.groups)

    def criteria(self, index: FieldIndex | None) -> list[list[dict[str, JSONValue]]]:
        return [[encode_leaf(leaf, index) for leaf in group] for group in self.groups]

    def rules_json(self, index: FieldIndex | None) -> str:
        """The ``RulesJson`` string (G1): encoded once more by the request body."""
        payload = self.criteria(index)
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def convert(match: str, rules: Sequence[Rule], operator: Operator | None = None) -> Stored:
    """CNF under ``and`` or DNF under ``or``, whichever is smaller (or the one named)."""
    found: list[tuple[tuple[int, int, int], Stored]] = []
    reasons: list[str] = []
    for op, fn in (("and", to_cnf), ("or", to_dnf)):
        if operator is not None and op != operator:
            continue
        try:
            groups = fn(match, rules, MAX_TERMS)
        except RuleSyntaxError as exc:
            reasons.append(str(exc))
            continue
        size = (sum(len(g) for g in groups), len(groups), 0 if op == "and" else 1)
        found.append((size, Stored(op, groups)))  # type: ignore[arg-type]
    if not found:
        raise Untranslatable(
            "Oempro stores two levels, and " + " and ".join(reasons) + "; split the segment"
        )
    return min(found, key=lambda item: item[0])[1]


def _canonical_leaf(rule: Rule, index: FieldIndex | None) -> Rule:
    if isinstance(rule, NativeRule):
        decoded = decode_leaf(rule.native, index)
        return decoded.rule if decoded is not None else rule
    return rule


def canonicalise(
    match: str, rules: tuple[Rule, ...], index: FieldIndex | None
) -> tuple[str, tuple[Rule, ...]]:
    """The rules as Oempro would store and return them, for comparison: natives read as
    the rules they are, then the two levels :func:`convert` stores."""
    leaves = tuple(map_leaves(rule, lambda leaf: _canonical_leaf(leaf, index)) for rule in rules)
    try:
        return convert(match, leaves).canonical()
    except Untranslatable:
        return match, leaves  # validate refuses it; compared as declared


@dataclass(frozen=True)
class LiveRules:
    """A stored segment read back: canonical rules, and whether it may ever be written."""

    match: str
    rules: tuple[Rule, ...]
    operator: str
    managed: bool = True
    reason: str = ""


def _unmanaged(operator: str, reason: str, rules: tuple[Rule, ...] = ()) -> LiveRules:
    return LiveRules("all", rules, operator, managed=False, reason=reason)


def decode_segment(
    operator: str, rules_json: str, legacy: str, index: FieldIndex | None
) -> LiveRules:
    """A stored segment's operator and criteria as canonical rules (see the module doc)."""
    op = operator.strip().lower()
    text = rules_json.strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return _unmanaged(op, "its RulesJson is not valid JSON")
    if data is not None and not isinstance(data, list):
        return _unmanaged(op, "its RulesJson is not the documented array of rule groups")
    groups: list[list[Rule]] = []
    modelled = True
    for group in data or ():
        if not isinstance(group, list):
            return _unmanaged(op, "its RulesJson holds a rule outside any group")
        leaves: list[Rule] = []
        for raw in group:
            if isinstance(raw, list):
                return _unmanaged(op, "it nests sub-groups, whose encoding is undocumented")
            decoded = decode_leaf(raw, index)
            if decoded is None:
                return _unmanaged(op, "its RulesJson holds something that is not a rule")
            leaves.append(decoded.rule)
            modelled = modelled and decoded.modelled
        if leaves:
            groups.append(leaves)
    if not groups:
        if legacy.strip():
            return _unmanaged(op, LEGACY_REASON)
        return LiveRules("all", (), op)  # no rules at all: managed, nothing to read
    if op not in ("and", "or"):
        return _unmanaged(op, f"its SegmentOperator {operator!r} is neither 'and' nor 'or'")
    outer: Match = "all" if op == "and" else "any"
    inner: Match = "any" if op == "and" else "all"
    rules = tuple(g[0] if len(g) == 1 else Group.of(inner, tuple(g)) for g in groups)
    if not modelled:
        reason = "it uses rule types or operators that Oempro's criteria syntax does not document"
        return LiveRules(outer, rules, op, managed=False, reason=reason)
    return LiveRules(outer, rules, op)
