"""One canonical leaf rule <-> one Mautic filter. Pure.

A field rule becomes a filter on the field's alias with the wire operator of
``operators.WRITE_OPS``, checked against the operators Mautic allows for the field's type;
a membership rule becomes a ``leadlist`` filter on the referenced segment's id; a
``native:`` rule passes through with its value normalised. Reading back is the inverse,
with ``native:`` for whatever has no exact canonical meaning (``regexp``, LIKE patterns,
absolute ``datetime`` values, company fields, unknown segment ids, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from reconciler.errors import ProviderError
from reconciler.model import (
    STANDARD_FIELDS,
    FieldRule,
    Group,
    JSONValue,
    MembershipRule,
    NativeRule,
    Rule,
    Scalar,
)
from reconciler.rules import scalar_text

from . import operators as ops
from .api import ContactField, WireFilter

__all__ = [
    "NATIVE_KEYS",
    "FieldIndex",
    "Segments",
    "Target",
    "Untranslatable",
    "from_filter",
    "resolve",
    "to_filter",
    "wire_value",
]

NATIVE_KEYS = frozenset({"field", "object", "type", "operator", "properties"})
"""The keys a ``native:`` filter may have; ``glue`` is positional and set by the adapter."""

_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_LIKE_OPS = frozenset({"contains", "starts_with", "ends_with", "not_contains"})
_DATE_VALUE_OPS = frozenset({"equals", "not_equals", "gt", "gte", "lt", "lte", "before", "after"})
_CHOICE_OPS = frozenset({"=", "!=", "in", "!in"})


class Untranslatable(ProviderError):
    """A canonical rule Mautic cannot store; ``reason`` says why, ``key`` which key of the
    rule's YAML mapping is at fault (``value``, ``op``, ``field``, ``list``), if one is."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        self.reason = reason
        self.key = key
        super().__init__(reason)


class FieldIndex:
    """The usable contact fields by alias, and by label when no alias claims the name.

    ``choices``: whether the fields' ``properties.list`` is the real choice list (fetched
    fields), so select values are checked against it; declared-only fields (offline) have
    none to check against.
    """

    def __init__(self, fields: list[ContactField], choices: bool = True) -> None:
        usable = [f for f in fields if f.usable]
        self.choices = choices
        self._by_alias = {f.alias.casefold(): f for f in usable}
        labels: dict[str, list[ContactField]] = {}
        for f in usable:
            labels.setdefault(f.label.casefold(), []).append(f)
        self._by_label = {
            k: v[0] for k, v in labels.items() if len(v) == 1 and k not in self._by_alias
        }

    def find(self, name: str) -> ContactField | None:
        folded = name.casefold()
        return self._by_alias.get(folded) or self._by_label.get(folded)

    def by_alias(self, alias: str) -> ContactField | None:
        return self._by_alias.get(alias.casefold())

    def label_of(self, field: ContactField) -> str | None:
        """The field's label if a declaration may name the field by it (unique, and no
        other field's alias), else None."""
        found = self._by_label.get(field.label.casefold())
        return field.label if found is field else None


@dataclass(frozen=True)
class Segments:
    """Segment names and ids of the whole target, for ``leadlist`` filters."""

    ids: Mapping[str, str]
    """Segment name (casefolded) -> id; only names held by exactly one segment."""
    names: Mapping[str, str]
    """Segment id -> name."""


@dataclass(frozen=True)
class Target:
    """Where a field rule goes: the filter alias, its Mautic type, the canonical name, and
    the values a choice field accepts (None: not known, so not checked)."""

    alias: str
    type: str
    name: str
    choices: tuple[str, ...] | None = None


_STANDARD_BY_ALIAS = {alias: name for name, (alias, _) in ops.STANDARD_ALIASES.items()}


def resolve(name: str, fields: FieldIndex | None) -> Target | None:
    """The filter a canonical field name means; None when the field is not known."""
    folded = name.casefold()
    if folded in ops.STANDARD_ALIASES:
        alias, default_type = ops.STANDARD_ALIASES[folded]
        found = fields.by_alias(alias) if fields is not None else None
        return Target(alias, found.type if found else default_type, folded)
    if folded in STANDARD_FIELDS:
        raise Untranslatable(
            f"field {name!r} has no Mautic equivalent "
            "(rules can test email, first_name, last_name, date_subscribed and contact fields)"
        )
    found = fields.find(name) if fields is not None else None
    if found is None:
        return None
    checked = fields is not None and fields.choices and found.type in ops.CHOICE_TYPES
    return Target(
        found.alias,
        found.type,
        _STANDARD_BY_ALIAS.get(found.alias, found.alias),
        found.options if checked else None,
    )


def wire_value(value: JSONValue) -> JSONValue:
    """A filter value as Mautic stores it: text (G2), booleans as ``"1"``/``"0"`` (never
    ``false``, which the form turns into null), lists item by item."""
    if value is None or isinstance(value, str | dict):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return scalar_text(value)
    if isinstance(value, list | tuple):
        return [wire_value(v) for v in value]
    return str(value)


# -- canonical -> wire -----------------------------------------------------------------------


def _boolean(value: Scalar) -> str:
    text = scalar_text(value).strip().lower()
    if text in _TRUE:
        return "1"
    if text in _FALSE:
        return "0"
    raise Untranslatable(f"{scalar_text(value)!r} is not a boolean value (true/false or 1/0)")


def _scalar(rule: FieldRule, target: Target) -> str:
    assert rule.value is not None and not isinstance(rule.value, tuple)
    if ops.family(target.type) == "boolean":
        return _boolean(rule.value)
    text = scalar_text(rule.value)
    if rule.op in _LIKE_OPS:
        for mark in ops.LIKE_WILDCARDS:
            if mark in text:
                raise Untranslatable(
                    f"{text!r} holds {mark!r}, which Mautic's {rule.op} (SQL LIKE) reads as a "
                    "wildcard and has no documented escape; use equals, or native: with "
                    "operator regexp",
                    "value",
                )
    if ops.family(target.type) == "date" and rule.op in _DATE_VALUE_OPS:
        if target.type == "datetime" and not ops.is_relative_date(text):
            raise Untranslatable(
                f"{text!r} is an absolute value on datetime field {target.alias!r}, which "
                "Mautic shifts from the instance's timezone to UTC (G7); use a relative value "
                "such as '-7 days', a date field, or native:",
                "value",
            )
        if not ops.is_date_value(text):
            raise Untranslatable(
                f"{text!r} is not a date Mautic accepts (YYYY-MM-DD, or a relative value such "
                "as 'yesterday' or '-7 days')",
                "value",
            )
    return text


def _check_choices(values: list[str], target: Target) -> None:
    """Mautic validates a choice field's value against its current choices (6.3 item 4)."""
    if target.choices is None:
        return
    bad = [v for v in values if v not in target.choices]
    if bad:
        listed = ", ".join(repr(c) for c in target.choices) or "none"
        raise Untranslatable(
            f"{', '.join(repr(v) for v in bad)} is not an option of Mautic {target.type} field "
            f"{target.alias!r} (its options: {listed}); Mautic refuses any other value",
            "value",
        )


def _field_filter(rule: FieldRule, target: Target) -> WireFilter:
    multiselect = ops.family(target.type) == "multiselect"
    op = rule.op
    value: JSONValue
    if multiselect and op in ("contains", "not_contains"):
        wire_op = "in" if op == "contains" else "!in"
        value = [_scalar(rule.model_copy(update={"op": "equals"}), target)]
    else:
        wire_op = ops.WRITE_OPS.get(op, "")
        if op in ("empty", "not_empty"):
            value = None
        elif isinstance(rule.value, tuple):
            value = [scalar_text(v) for v in rule.value]
        else:
            value = _scalar(rule, target)
    if wire_op not in ops.allowed(target.type):
        raise Untranslatable(
            f"operator {op!r} is not allowed on Mautic {target.type} field {target.alias!r}",
            "op",
        )
    if wire_op in _CHOICE_OPS and value is not None:
        _check_choices([str(v) for v in value] if isinstance(value, list) else [value], target)
    return WireFilter(field=target.alias, type=target.type, operator=wire_op, value=value)


def _membership_filter(rule: MembershipRule, segments: Segments | None) -> WireFilter:
    if rule.op not in ("in", "not_in"):
        raise Untranslatable(f"membership operator {rule.op!r} has no Mautic filter", "op")
    found = segments.ids.get(rule.list_.casefold()) if segments is not None else None
    if found is None:
        raise Untranslatable(
            f"no single segment named {rule.list_!r} exists at this point (a membership rule "
            "names one segment of the target, which must exist before the rule is written)",
            "list",
        )
    operator = "in" if rule.op == "in" else "!in"
    return WireFilter(field="leadlist", type="leadlist", operator=operator, value=[found])


def _native_filter(rule: NativeRule) -> WireFilter:
    data = rule.native
    if data.get("operator") in ops.HIDDEN_OPS:
        raise Untranslatable(
            f"operator {data['operator']!r} is hidden in Mautic's segment form and the API "
            "rejects it (G15); write the range as two filters (gte and lte)",
            "native",
        )
    extra = sorted(set(data) - NATIVE_KEYS)
    if extra:
        raise Untranslatable(
            f"a native filter has only the keys {', '.join(sorted(NATIVE_KEYS))} "
            f"(not {', '.join(extra)}; glue is set by the adapter)"
        )
    for name in ("field", "type", "operator"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise Untranslatable(f"a native filter needs a non-empty text {name!r}")
    props = data.get("properties", {})
    if not isinstance(props, dict):
        raise Untranslatable("a native filter's properties must be a mapping")
    raw = {**data, "object": data.get("object") or "lead", "properties": _native_props(props)}
    return WireFilter.parse(raw)


def _native_props(props: Mapping[str, Any]) -> dict[str, JSONValue]:
    return {k: wire_value(v) for k, v in props.items()}


def to_filter(rule: Rule, fields: FieldIndex | None, segments: Segments | None) -> WireFilter:
    """One leaf as a filter (glue is set by the caller); ``Untranslatable`` when it cannot."""
    if isinstance(rule, FieldRule):
        target = resolve(rule.field, fields)
        if target is None:
            raise Untranslatable(
                f"no published contact field available for segments has the alias {rule.field!r}",
                "field",
            )
        return _field_filter(rule, target)
    if isinstance(rule, MembershipRule):
        return _membership_filter(rule, segments)
    if isinstance(rule, NativeRule):
        return _native_filter(rule)
    if isinstance(rule, Group):
        raise Untranslatable("a nested group cannot be one filter")  # never after to_dnf
    raise Untranslatable("behaviour rules have no Mautic filter; use native:", "campaign")


# -- wire -> canonical -----------------------------------------------------------------------


def native_of(f: WireFilter) -> NativeRule:
    """A stored filter as ``native:``, normalised (text values, no stale display)."""
    props: dict[str, JSONValue] = {**_native_props(f.extra), "filter": wire_value(f.value)}
    if f.display is not None and f.type == "lookup_id":
        props["display"] = wire_value(f.display)
    data = {"field": f.field, "object": f.object, "type": f.type, "operator": f.operator}
    return NativeRule(native={**data, "properties": props})


def _read_membership(f: WireFilter, segments: Segments | None) -> Rule | None:
    ids = f.value if isinstance(f.value, list) else [f.value]
    names = [segments.names.get(str(i)) if segments else None for i in ids if i is not None]
    if not names or any(n is None for n in names) or f.operator not in ("in", "!in"):
        return None
    op = "in" if f.operator == "in" else "not_in"
    members = tuple(
        MembershipRule.model_validate({"list": n, "op": op}) for n in names if n is not None
    )
    return members[0] if len(members) == 1 else Group.of("any" if op == "in" else "all", members)


def _read_value(f: WireFilter, fam: str, op: str) -> JSONValue:
    """The canonical value, or the sentinel ``...`` when it has no canonical form."""
    value = f.value
    if op in ("empty", "not_empty"):
        return None if value in (None, "", []) else ...
    if op in ("in", "not_in"):
        items = value.split("|") if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or any(isinstance(i, dict | list) for i in items)
        ):
            return ...
        return tuple(str(wire_value(i)) for i in items)
    if value is None or isinstance(value, dict | list):
        return ...
    text = str(wire_value(value))
    if fam == "boolean":
        return True if text in _TRUE else False if text in _FALSE else ...
    if f.operator in ops.LIKE_OPS and any(mark in text for mark in ops.LIKE_WILDCARDS):
        return ...  # a LIKE pattern, not a literal
    if f.type == "datetime" and not ops.is_relative_date(text):
        return ...
    return text


def _read_field(f: WireFilter, fields: FieldIndex | None) -> Rule | None:
    fam = ops.family(f.type)
    op = ops.READ_OPS.get(f.operator)
    if op is None or f.object != "lead" or f.operator not in ops.allowed(f.type):
        return None
    known = f.field in _STANDARD_BY_ALIAS or fields is None or fields.by_alias(f.field)
    if not known:
        return None  # a special filter (points, tags, ...) or a field no longer usable
    if f.field not in _STANDARD_BY_ALIAS and f.field.casefold() in STANDARD_FIELDS:
        return None  # a contact field whose alias is a standard field name (``status``)
    if fam == "date" and op in ("gt", "lt"):
        op = "after" if op == "gt" else "before"
    value = _read_value(f, fam, op)
    if value is ...:
        return None
    name = _STANDARD_BY_ALIAS.get(f.field, f.field)
    try:
        rule = FieldRule.model_validate({"field": name, "op": op, "value": value})
    except ValidationError:
        return None
    return rule if _writable(rule, fields) else None


def _writable(rule: FieldRule, fields: FieldIndex | None) -> bool:
    """Whether ``validate`` would let the canonical reading be declared: a value the adapter
    refuses whatever the live state (a LIKE wildcard, an absolute datetime, a date Mautic
    does not accept) is read as ``native:`` instead. Choices are not checked: they change
    with the live field, and a value stored before an option was removed still reads the
    same."""
    try:
        target = resolve(rule.field, fields)
        if target is None:
            return False
        _field_filter(rule, replace(target, choices=None))
    except Untranslatable:
        return False
    return True


def from_filter(f: WireFilter, fields: FieldIndex | None, segments: Segments | None) -> Rule:
    """One stored filter as a canonical rule, or ``native:`` when it does not map exactly
    (or could not be written back as it is read)."""
    found: Rule | None
    if f.field == "leadlist" and f.type == "leadlist":
        found = _read_membership(f, segments)
    else:
        found = _read_field(f, fields)
    return found if found is not None and not f.extra else native_of(f)
