"""Canonical rules <-> Campaign Monitor RuleGroups, and the canonical form to compare. Pure.

A segment is stored as an AND of OR-groups: the rules are lowered (``in``/``not_in``
become OR-ed ``EQUALS``/AND-ed ``NOT_EQUALS``), converted with ``shapes.to_cnf`` and each
leaf written as one ``{RuleType, Clause}`` (``clauses.py`` holds the verb table). Reading
back is the inverse, leaf by leaf, with ``native:`` for anything that does not map, and
``shapes.from_cnf`` to rebuild the tree. ``canonicalise`` is that round trip without the
network, so the declared side compares exactly as fetch will return it once stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.errors import ProviderError, RuleSyntaxError
from reconciler.model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    MembershipRule,
    NativeRule,
    Rule,
    Scalar,
)
from reconciler.rules import in_as_equals, map_leaves, render, scalar_text
from reconciler.shapes import Clauses, from_cnf, to_cnf

from . import clauses as cl
from .api import CustomField, WireGroup, WireRule

__all__ = [
    "FieldIndex",
    "Untranslatable",
    "canonicalise",
    "from_groups",
    "lower",
    "lowered_cnf",
    "new_groups",
    "to_groups",
    "to_wire",
]


class Untranslatable(ProviderError):
    """A canonical rule Campaign Monitor cannot store; ``reason`` says why and ``part``
    which key of the rule's YAML mapping is at fault (``op``, ``value``, ...), if one is."""

    def __init__(self, reason: str, part: str | None = None) -> None:
        self.reason = reason
        self.part = part
        super().__init__(reason)


class FieldIndex:
    """A list's custom fields by name and by Key (both case-insensitive, Key with or
    without its brackets). A Key that maps to fields of different types is ambiguous.

    ``options_known`` is False for fields known only by their declared type (offline):
    then the options of select fields are not checked."""

    def __init__(self, fields: Iterable[CustomField], options_known: bool = True) -> None:
        self.options_known = options_known
        self._by_name: dict[str, CustomField | None] = {}
        self._by_key: dict[str, CustomField | None] = {}
        for field in fields:
            for index, name in ((self._by_name, field.name), (self._by_key, _bare(field.key))):
                seen = index.get(name.casefold(), field)
                same = seen is not None and seen.data_type == field.data_type
                index[name.casefold()] = field if same else None

    def by_name(self, name: str) -> CustomField | None:
        return self._by_name.get(name.casefold())

    def by_key(self, rule_type: str) -> CustomField | None:
        return self._by_key.get(_bare(rule_type).casefold())


def _bare(rule_type: str) -> str:
    text = rule_type.strip()
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


@dataclass(frozen=True)
class _Target:
    """Where a canonical field rule goes: its RuleType, its kind for the verb table (None:
    a custom field of unknown type), the field's name as the platform spells it, and the
    options a value must be one of (None: any value, or the options are not known)."""

    rule_type: str
    kind: str | None
    name: str
    options: tuple[str, ...] | None = None


def _custom_target(found: CustomField, fields: FieldIndex) -> _Target:
    select = found.data_type in cl.OPTION_KINDS and fields.options_known
    return _Target(found.key, found.data_type, found.name, found.options if select else None)


def _target(name: str, fields: FieldIndex | None, strict: bool) -> _Target:
    folded = name.casefold()
    if folded in cl.STANDARD_RULE_TYPES:
        rule_type = cl.STANDARD_RULE_TYPES[folded]
        return _Target(rule_type, rule_type, folded)
    if folded in STANDARD_FIELDS:
        raise Untranslatable(
            f"field {name!r} has no Campaign Monitor rule type "
            "(rules can test email, name, date_subscribed and the list's custom fields)",
            "field",
        )
    found = fields.by_name(name) if fields is not None else None
    if found is not None and fields is not None:
        return _custom_target(found, fields)
    if strict:
        raise Untranslatable(f"the list has no custom field named {name!r}", "field")
    return _Target(f"[{name}]", None, name)


# -- canonical leaf -> wire ------------------------------------------------------------------


def _operand(kind: str | None, value: Scalar) -> str:
    text = " ".join(scalar_text(value).split())
    if not text:
        raise Untranslatable("an empty value cannot be written in a clause", "value")
    if kind in cl.DATE_KINDS:
        day = cl.canonical_date(text)
        if day is None:
            raise Untranslatable(f"{text!r} is not a date written yyyy-mm-dd", "value")
        return day
    if kind in cl.NUMBER_KINDS and cl.canonical_number(text) is None:
        raise Untranslatable(f"{text!r} is not a number", "value")
    return text


def _field_clause(rule: FieldRule, target: _Target) -> str:
    verbs = cl.VERBS.get(target.kind, {}) if target.kind is not None else cl.CUSTOM_ANY
    verb = verbs.get(rule.op)
    if verb is None and not verbs and target.kind is not None:
        raise Untranslatable(
            f"rules on the {target.kind} field {target.name!r} cannot be written: no "
            f"Campaign Monitor source shows a verb for {target.kind} fields (a native: rule "
            "sends a clause as written)",
            "field",
        )
    if verb is None:
        known_kind = target.kind is not None and target.kind not in cl.RULE_TYPES
        what = f"{target.kind} field" if known_kind else "field"
        known = ", ".join(sorted(verbs)) or "none"
        raise Untranslatable(
            f"operator {rule.op!r} is not supported for {what} {target.name!r} "
            f"by Campaign Monitor (supported: {known})",
            "op",
        )
    if verb in cl.NO_OBJECT_VERBS:
        return verb
    if rule.op == "between":
        assert isinstance(rule.value, tuple)
        low, high = (_bound(target.kind, v) for v in rule.value)
        return f"BETWEEN {low} AND {high}"
    assert rule.value is not None and not isinstance(rule.value, tuple)
    operand = _operand(target.kind, rule.value)
    if target.options is not None and operand not in target.options:
        # Error 2722: a multi-option object must be an existing option of the field
        # (compared exactly: whether the server ignores case is UNKNOWN).
        raise Untranslatable(
            f"{operand!r} is not an option of the {target.kind} field {target.name!r} "
            f"(its options: {', '.join(target.options) or 'none'})",
            "value",
        )
    return f"{verb} {operand}"


def _bound(kind: str | None, value: Scalar) -> str:
    text = _operand(kind, value)
    if kind is None and cl.canonical_date(text) is None and cl.canonical_number(text) is None:
        raise Untranslatable(f"{text!r} is neither a yyyy-mm-dd date nor a number", "value")
    return cl.canonical_date(text) or text


def _native_wire(rule: NativeRule, fields: FieldIndex | None, strict: bool) -> WireRule:
    data = rule.native
    rule_type, clause = data.get("RuleType"), data.get("Clause")
    if set(data) != {"RuleType", "Clause"} or not isinstance(rule_type, str):
        raise Untranslatable(
            "a native rule is {RuleType: text, Clause: text} and nothing else", "native"
        )
    if not isinstance(clause, str) or not clause.strip() or not rule_type.strip():
        raise Untranslatable("a native rule needs a non-empty RuleType and Clause", "native")
    rule_type = _rule_type(rule_type, fields)
    if strict and fields is not None and not _known_rule_type(rule_type, fields):
        # Error 2705: a RuleType is a built-in one or the Key of one of the list's fields.
        # The Key of a field not created yet is not known (its derivation is UNKNOWN).
        raise Untranslatable(
            f"native RuleType {rule_type!r} is neither a Campaign Monitor rule type nor the "
            "Key of one of the list's custom fields (read the Keys from Campaign Monitor)",
            "native",
        )
    return WireRule(rule_type=rule_type, clause=cl.canonical_clause(rule_type, clause))


def _known_rule_type(rule_type: str, fields: FieldIndex) -> bool:
    return rule_type in cl.RULE_TYPES or fields.by_key(rule_type) is not None


def to_wire(rule: Rule, fields: FieldIndex | None, strict: bool = True) -> WireRule:
    """One leaf as ``{RuleType, Clause}``; ``fields`` None means the list is not known.

    ``strict``: a custom field or native RuleType that ``fields`` does not hold is refused
    (else written as ``[name]`` / as given, for offline checks and comparison)."""
    if isinstance(rule, FieldRule):
        target = _target(rule.field, fields, strict)
        return WireRule(rule_type=target.rule_type, clause=_field_clause(rule, target))
    if isinstance(rule, BehaviourRule):
        rule_type = cl.RULE_TYPE_BY_EVENT.get(rule.event)
        if rule_type is None:
            raise Untranslatable(f"event {rule.event!r} has no Campaign Monitor rule type", "event")
        if rule.within is not None:
            raise Untranslatable(
                "a 'within' time window is not supported by Campaign Monitor", "within"
            )
        campaign = rule.campaign.strip()
        if not campaign or len(campaign.split()) != 1:
            raise Untranslatable(f"{rule.campaign!r} is not a campaign id", "campaign")
        return WireRule(rule_type=rule_type, clause=campaign)
    if isinstance(rule, NativeRule):
        return _native_wire(rule, fields, strict)
    if isinstance(rule, MembershipRule):
        raise Untranslatable("list membership rules are not supported by Campaign Monitor", "list")
    raise Untranslatable("a nested group cannot be one rule")  # never after to_cnf


# -- wire -> canonical leaf ------------------------------------------------------------------


def _rule_type(rule_type: str, fields: FieldIndex | None) -> str:
    """The documented spelling of a RuleType; a custom field's Key as the list spells it
    (whether get-one returns Keys with brackets is UNVERIFIED: both forms are accepted)."""
    text = rule_type.strip()
    for known in cl.RULE_TYPES:
        if text.casefold() == known.casefold():
            return known
    found = fields.by_key(text) if fields is not None else None
    return found.key if found is not None else text


def _read_operand(kind: str | None, text: str) -> str | None:
    if not text:
        return None
    if kind in cl.DATE_KINDS:
        return cl.canonical_date(text)
    if kind in cl.NUMBER_KINDS:
        return cl.canonical_number(text)
    return text


def _read_field(target: _Target, clause: str) -> FieldRule | None:
    verbs = cl.VERBS.get(target.kind, {}) if target.kind is not None else cl.CUSTOM_ANY
    verb, _, rest = clause.partition(" ")
    ops = [op for op, v in verbs.items() if v == verb]
    if not ops:
        return None
    op = ops[0]
    if verb in cl.NO_OBJECT_VERBS:
        return None if rest else FieldRule(field=target.name, op=op)
    if op == "between":
        parts = cl.split_between(rest)
        bounds = [_read_bound(target.kind, p) for p in parts] if parts else [None]
        if any(b is None for b in bounds):
            return None
        return FieldRule(field=target.name, op="between", value=tuple(bounds))
    value = _read_operand(target.kind, rest)
    if value is None or (target.options is not None and value not in target.options):
        return None  # not one of the field's options: only native: says it as stored
    return FieldRule(field=target.name, op=op, value=value)


def _read_bound(kind: str | None, text: str) -> str | None:
    if kind is None:
        return cl.canonical_date(text) or cl.canonical_number(text)
    return _read_operand(kind, text)


def _read_target(rule_type: str, fields: FieldIndex | None) -> _Target | None:
    for name, standard in cl.STANDARD_RULE_TYPES.items():
        if rule_type == standard:
            return _Target(standard, standard, name)
    found = fields.by_key(rule_type) if fields is not None else None
    if found is None or fields is None or found.name.casefold() in STANDARD_FIELDS:
        # A custom field named like a standard field (``Status``) cannot be declared, so
        # a canonical rule could never name it: its rules are read as ``native:``.
        return None
    return _custom_target(found, fields)


def from_wire(rule: WireRule, fields: FieldIndex | None) -> Rule:
    """One stored rule as a canonical leaf, or ``native:`` when it does not map."""
    rule_type = _rule_type(rule.rule_type, fields)
    clause = cl.canonical_clause(rule_type, rule.clause)
    event = cl.EVENT_BY_RULE_TYPE.get(rule_type)
    found: Rule | None = None
    if event is not None:
        if clause and len(clause.split()) == 1:
            found = BehaviourRule(campaign=clause, event=event)
    else:
        target = _read_target(rule_type, fields)
        found = _read_field(target, clause) if target is not None else None
    return found or NativeRule(native={"RuleType": rule_type, "Clause": clause})


# -- segments --------------------------------------------------------------------------------


def lower(rule: Rule) -> Rule:
    """``in``/``not_in`` as the OR of ``equals`` / AND of ``not_equals`` they mean."""
    return map_leaves(rule, in_as_equals)


def lowered_cnf(match: str, rules: Sequence[Rule]) -> Clauses:
    """The AND of OR-groups Campaign Monitor stores; ``RuleSyntaxError`` when too large."""
    return to_cnf(match, tuple(lower(rule) for rule in rules))


def to_groups(
    match: str, rules: Sequence[Rule], fields: FieldIndex
) -> tuple[tuple[WireGroup, ...], tuple[Rule, ...]]:
    """The RuleGroups to send, and the canonical leaf behind each sent rule, in order.

    Raises ``Untranslatable`` naming every rule that cannot be written.
    """
    try:
        groups_of_leaves = lowered_cnf(match, rules)
    except RuleSyntaxError as exc:
        raise Untranslatable(str(exc)) from None
    problems: dict[str, None] = {}
    groups: list[WireGroup] = []
    leaves: list[Rule] = []
    for clause in groups_of_leaves:
        wire: list[WireRule] = []
        for leaf in clause:
            try:
                wire.append(to_wire(leaf, fields))
                leaves.append(leaf)
            except Untranslatable as exc:
                problems[f"{render(leaf)}: {exc.reason}"] = None
        groups.append(WireGroup(rules=tuple(wire)))
    if problems:
        raise Untranslatable("; ".join(problems))
    return tuple(groups), tuple(leaves)


def from_groups(
    groups: Sequence[WireGroup], fields: FieldIndex | None
) -> tuple[str, tuple[Rule, ...]]:
    """Stored RuleGroups as a segment's ``(match, rules)``. A group without rules has no
    canonical form and is left out (what an empty group or segment matches is UNKNOWN)."""
    leaves = tuple(tuple(from_wire(rule, fields) for rule in g.rules) for g in groups if g.rules)
    return from_cnf(leaves)


def _canonical_leaf(leaf: Rule, fields: FieldIndex | None) -> Rule:
    try:
        if isinstance(leaf, FieldRule):  # read back through the same target, typed or not
            target = _target(leaf.field, fields, strict=False)
            return _read_field(target, _field_clause(leaf, target)) or leaf
        return from_wire(to_wire(leaf, fields, strict=False), fields)
    except Untranslatable:
        return leaf  # the adapter refuses to write it; compare it as declared


def canonicalise(
    match: str, rules: Sequence[Rule], fields: FieldIndex | None
) -> tuple[str, tuple[Rule, ...]]:
    """The rules as Campaign Monitor would store them and fetch would return them."""
    try:
        groups = lowered_cnf(match, rules)
    except RuleSyntaxError:
        return match, tuple(rules)  # too large to store: validation reports it
    return from_cnf(tuple(tuple(_canonical_leaf(leaf, fields) for leaf in g) for g in groups))


def _group_key(group: WireGroup) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((r.rule_type.casefold(), r.clause) for r in group.rules))


def new_groups(
    live: Sequence[WireGroup], desired: Sequence[WireGroup]
) -> tuple[WireGroup, ...] | None:
    """The desired groups missing from ``live`` (multiset difference), or None when live
    holds a group the desired rules do not (then it is not a pure addition)."""
    have = Counter(_group_key(g) for g in live)
    want = Counter(_group_key(g) for g in desired)
    if have - want:
        return None
    extra = want - have
    added: list[WireGroup] = []
    for group in desired:
        k = _group_key(group)
        if extra[k] > 0:
            added.append(group)
            extra[k] -= 1
    return tuple(added)
