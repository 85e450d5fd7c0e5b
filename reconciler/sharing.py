"""Identical rules validated once: one shared model instance per distinct field rule or group.

Segments repeat their leaves (``status equals active``, ``Frequency equals Weekly``) and
often whole groups, in a configuration as in a store. ``SharedRules`` turns a segment's
parsed ``rules`` into a list in which each field rule, and each group of such rules, is a
validated model instance shared by every segment holding the same rule; the models are
frozen, so sharing is invisible. On the 10,000-segment benchmark the 40,000 declared leaves
are 10,187 distinct ones: validation takes about a third less time, and the rules half the
memory. The configuration loader (``config.py``) and the reference backend's decoder both
use it.

An instance is shared only under a key that determines its validation exactly: the keys
present, the field and operator as text, and the value with its type (``1``, ``1.0`` and
``True`` differ; a float is keyed by its ``repr``, so ``-0.0`` is not ``0.0``). Anything
else (other rule kinds, a rule that does not validate, nesting past ``MAX_DEPTH``) is left
as parsed, for the segment's own validation to build or to refuse at its place.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from .model import FieldRule, Group

__all__ = ["MAX_DEPTH", "SharedRules"]

MAX_DEPTH = 32
"""Deepest group whose members are shared; deeper ones are left to pydantic."""

_ABSENT = object()


class _Unkeyable(Exception):
    """A value no key can stand for (a mapping, a nested list)."""


def _value_key(value: object) -> tuple[object, ...]:
    kind = type(value)
    if kind is str:
        return (value,)
    if kind is int or kind is bool or value is None:
        return (kind, value)
    if kind is float:
        return (float, repr(value))
    if isinstance(value, list) and kind is list:
        return (list, *[part for item in value for part in _item_key(item)])
    raise _Unkeyable


def _item_key(value: object) -> tuple[object, ...]:
    """An item of a list value: a scalar, its key always two parts long."""
    kind = type(value)
    if kind is float:
        return (float, repr(value))
    if kind is str or kind is int or kind is bool:
        return (kind, value)
    raise _Unkeyable


def _field_rule_key(item: dict[str, Any]) -> tuple[object, ...] | None:
    """The key of ``{field, op[, value]}``; ``None`` for anything else."""
    field, op = item.get("field"), item.get("op")
    if type(field) is not str or type(op) is not str:
        return None
    if "value" not in item:
        return (field, op) if len(item) == 2 else None
    if len(item) != 3:
        return None
    try:
        return (field, op, *_value_key(item["value"]))
    except _Unkeyable:
        return None


class SharedRules:
    """Shares rule instances across the segments of one read (create one per read)."""

    def __init__(self) -> None:
        self._field_rules: dict[tuple[object, ...], FieldRule] = {}
        self._groups: dict[tuple[object, ...], Group] = {}

    def rules(self, parsed: object) -> object:
        """A parsed ``rules`` column with its shareable rules replaced by shared models."""
        if type(parsed) is not list:
            return parsed
        return [self._rule(item, 0) for item in parsed]

    def _rule(self, item: object, depth: int) -> object:
        if type(item) is not dict:
            return item
        if "field" in item:
            if len(item) == 3:  # the common case inline: text field, operator and value
                field, op, value = item.get("field"), item.get("op"), item.get("value")
                if type(value) is str and type(field) is str and type(op) is str:
                    shared = self._field_rules.get((field, op, value))  # _field_rule_key's
                    if shared is not None:
                        return shared
            return self._field_rule(item)
        if len(item) == 1 and depth < MAX_DEPTH:
            return self._group(item, depth)
        return item

    def _field_rule(self, item: dict[str, Any]) -> object:
        key = _field_rule_key(item)
        if key is None:
            return item
        shared = self._field_rules.get(key)
        if shared is None:
            try:
                shared = FieldRule.model_validate(item)
            except ValidationError:
                return item  # the segment's validation refuses it, at its place
            self._field_rules[key] = shared
        return shared

    def _group(self, item: dict[str, Any], depth: int) -> object:
        ((match, members),) = item.items()
        if match not in ("any", "all") or type(members) is not list:
            return item
        rules = [self._rule(member, depth + 1) for member in members]
        if not all(isinstance(rule, BaseModel) for rule in rules):
            return {match: rules}
        # Every member is an instance this object keeps, so its id names it for as long.
        key = (match, *[id(rule) for rule in rules])
        shared = self._groups.get(key)
        if shared is None:
            try:
                shared = Group.model_validate({match: rules})
            except ValidationError:
                return {match: rules}
            self._groups[key] = shared
        return shared
