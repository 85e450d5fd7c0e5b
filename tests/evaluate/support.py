"""Shared helpers for the evaluator tests: subscribers and rules built from plain data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from reconciler.evaluate import compile_segment
from reconciler.model import Rule, Segment
from reconciler.subscriber import Event, Subscriber, Typed, typed_value

NOW = date(2025, 6, 1)
TYPES = {
    "source": "text",
    "frequency": "select",
    "score": "number",
    "joined": "date",
    "tags": "multiselect",
    "flag": "boolean",
}
"""The custom fields of the list the tests evaluate against (casefolded name -> type)."""


def subscriber(
    email: str = "ann@x.org",
    *,
    status: str = "active",
    lists: Mapping[str, str] | None = None,
    events: tuple[tuple[str, str, str], ...] = (),
    **fields: Any,
) -> Subscriber:
    """A subscriber of list "Newsletter"; ``fields`` by casefolded name, parsed for their
    type (standard ones too: ``date_subscribed="2024-03-01"``)."""
    values: dict[str, Typed] = {"email": email, "status": status}
    for name, raw in fields.items():
        kind = TYPES.get(name) or {"date_subscribed": "date"}.get(name, "text")
        value = typed_value(kind, raw)
        if value is not None:
            values[name] = value
    return Subscriber(
        email=email,
        list="Newsletter",
        status=status,
        values=values,
        lists={k.casefold(): v for k, v in (lists or {}).items()},
        events=tuple(Event(c, e, date.fromisoformat(on)) for c, e, on in events),
    )


def rules(*items: dict[str, Any], match: str = "all") -> tuple[str, tuple[Rule, ...]]:
    """``(match, rules)`` validated from plain data."""
    segment = Segment.model_validate({"name": "S", "match": match, "rules": list(items)})
    return segment.match, segment.rules


def verdict(rule: dict[str, Any], person: Subscriber, now: date = NOW) -> bool | None:
    match, found = rules(rule)
    return compile_segment(match, found, TYPES, now).verdict(person)
