"""The JSON columns ``apply`` writes: a segment's ``rules`` (the full rule tree exactly as
declared: aliases, no ``None`` keys) and ``options``, a field's ``options`` (its choices).
All are compact JSON text; ``decoding.py`` reads them back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pydantic_core import to_json, to_jsonable_python

from reconciler.model import FieldDef, Group, NativeRule, Rule, Segment

__all__ = ["dumps", "field_options", "rules_json", "segment_columns"]


def dumps(data: object) -> str:
    """JSON text for a column: compact, keys in their given order, NaN/Infinity kept."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=to_jsonable_python)


def rules_json(rules: Sequence[Rule]) -> str:
    """The ``rules`` column: the rule tree as declared, by alias, without ``None`` keys."""
    text = to_json(rules, by_alias=True, exclude_none=True).decode()
    if "null" in text and _holds_native(rules):
        # A native rule is free JSON and may hold NaN or an infinity, which pydantic's
        # serializer writes as null; the json module keeps them. (Nothing else in a rule
        # can be null: ``None`` keys are left out, and values are finite.)
        return dumps([rule.model_dump(by_alias=True, exclude_none=True) for rule in rules])
    return text


def segment_columns(segment: Segment) -> tuple[str, str]:
    """The ``rules`` and ``options`` columns of a segment, exactly as declared."""
    return rules_json(segment.rules), dumps(segment.options) if segment.options else "{}"


def field_options(field: FieldDef) -> str:
    return dumps(list(field.options))


def _holds_native(rules: Iterable[Rule]) -> bool:
    for rule in rules:
        if isinstance(rule, NativeRule):
            return True
        if isinstance(rule, Group) and _holds_native(rule.rules):
            return True
    return False
