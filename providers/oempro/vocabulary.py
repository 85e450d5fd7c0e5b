"""Oempro's rule vocabulary: the wire strings of the criteria syntax, and what this adapter
offers per field type. Pure data, plus the checks of single values and native rules.

Facts: providers/oempro.md 6.1 (criteria syntax). Anything the docs leave open is offered
only where its meaning is sure (see the comments on ``OPERATORS``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from reconciler.model import JSONValue, Value
from reconciler.rules import scalar_text

__all__ = [
    "CANONICAL_OPS",
    "DEFAULT_FIELD_IDS",
    "DOCUMENTED",
    "EMPTINESS",
    "EVENTS",
    "EVENT_BY_WIRE",
    "LEGACY_REASON",
    "NUMERIC",
    "OPERATORS",
    "PATTERN_CHARS",
    "PATTERN_OPS",
    "STANDARD_BY_ID",
    "STANDARD_IDS",
    "STANDARD_OPERATORS",
    "WINDOW",
    "WIRE_OPS",
    "Match",
    "Operator",
    "native_problem",
    "normalise_native",
    "value_problem",
]

Operator = Literal["and", "or"]
Match = Literal["all", "any"]

EMPTINESS = frozenset({"empty", "not_empty"})
_EQUALITY = frozenset({"equals", "not_equals"})
_TEXT = frozenset({"contains", "not_contains", "starts_with", "ends_with"}) | _EQUALITY | EMPTINESS
OPERATORS: dict[str, frozenset[str]] = {
    "text": _TEXT,
    "number": frozenset({"gt", "gte", "lt", "lte"}) | _EQUALITY | EMPTINESS,
    # The criteria syntax documents no date operators; the UI's (before, after, in the last
    # X days...) have undocumented wire strings, and "is"/"is less than" on a date field
    # compare a stored format the docs never give. UNKNOWN: only set / not set are sure.
    "date": EMPTINESS,
    "select": _EQUALITY | EMPTINESS,
    # A Checkboxes field's stored form is undocumented: "contains Weekly" may also match
    # "Biweekly", so only set / not set are offered.
    "multiselect": EMPTINESS,
}
"""Canonical operators per canonical field type that Oempro stores as documented."""

STANDARD_IDS: dict[str, str] = {
    "email": "EmailAddress",
    "status": "SubscriptionStatus",
    "date_subscribed": "SubscriptionDate",
}
"""The standard fields Oempro has as default fields (criteria ``field_id``)."""
STANDARD_BY_ID = {ident: name for name, ident in STANDARD_IDS.items()}
DEFAULT_FIELD_IDS = frozenset(
    {*STANDARD_IDS.values(), "BounceType", "OptInDate", "SubscriptionIP", "SubscriberID"}
)
STANDARD_OPERATORS: dict[str, frozenset[str]] = {
    "email": _TEXT,
    "name": frozenset(),  # Oempro has no name fields: they are custom fields of a list
    "first_name": frozenset(),
    "last_name": frozenset(),
    "date_subscribed": EMPTINESS,  # a date: see OPERATORS["date"]
    "status": _EQUALITY,  # values as Oempro spells them (e.g. "Subscribed"): passed as given
}

WIRE_OPS: dict[str, str] = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "begins with",
    "ends_with": "ends with",
    "gt": "is greater than",
    "gte": "is greater than or equal to",
    "lt": "is less than",
    "lte": "is less than or equal to",
    "empty": "is not set",
    "not_empty": "is set",
}
CANONICAL_OPS = {wire: op for op, wire in WIRE_OPS.items()}
EVENTS: dict[str, str] = {
    "opened": "opened",
    "clicked": "clicked",
    "not_opened": "not opened",
    "not_clicked": "not clicked",
}
EVENT_BY_WIRE = {wire: event for event, wire in EVENTS.items()}
WINDOW = "in_last_x_days"

DOCUMENTED: dict[str, frozenset[str]] = {
    "fields": frozenset(WIRE_OPS.values()),
    "segments": frozenset({"belongs to", "does not belong to"}),
    "tags": frozenset(
        {
            "has this tag",
            "does not have this tag",
            "has any of these tags",
            "has all of these tags",
            "has no tags",
        }
    ),
    "journeys": frozenset(
        {
            "in journey",
            "completed journey",
            "not in journey",
            "opened",
            "not opened",
            "clicked",
            "not clicked",
            "unsubscribed",
            "complained",
            "not complained",
            "bounced",
            "not bounced",
        }
    ),
    "suppressions": frozenset({"exist", "not exist"}),
    "website-events": frozenset(
        {
            "happened",
            "did not happen",
            "happened in the last X days",
            "did not happen in the last X days",
            "equals",
            "does not equal",
            "contains",
            "does not contain",
            "matches regex",
            "does not match regex",
            "greater than",
            "less than",
            "is set",
            "is not set",
        }
    ),
    "campaign-events": frozenset(
        {
            "opened",
            "not opened",
            "clicked",
            "not clicked",
            "unsubscribed",
            "not unsubscribed",
            "complained",
            "not complained",
            "bounced",
            "not bounced",
            "delivered",
            "not delivered",
            "queued-recipients",
            "not queued-recipients",
            "failed",
            "not failed",
        }
    ),
}
"""Rule types and their operators as the criteria syntax documents them: what this adapter
reads, and the only native rules it writes."""

PATTERN_OPS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
PATTERN_CHARS = ("%", "_", "\\")
NUMERIC = re.compile(r"-?\d+(\.\d+)?")
LEGACY_REASON = (
    "it is stored only in the old SegmentRules form, whose format is undocumented, so this "
    "adapter can neither read nor write it"
)


def value_problem(op: str, field_type: str, value: Value | None) -> str | None:
    """Why Oempro would not read ``value`` literally for ``op`` on a ``field_type`` field."""
    if value is None or isinstance(value, tuple):
        return None
    text = scalar_text(value)
    if op in PATTERN_OPS and any(mark in text for mark in PATTERN_CHARS):
        return (
            f"value {text!r} holds '%', '_' or '\\', which Oempro may read as a pattern in "
            f"{op!r} (its documentation does not say how it matches, nor how to escape "
            "them), so it is refused; use native: if the pattern is intended"
        )
    numeric = field_type == "number" and op in OPERATORS["number"] - EMPTINESS
    if numeric and (isinstance(value, bool) or not NUMERIC.fullmatch(text)):
        return f"value {text!r} is not a number (digits, an optional '-' and decimals)"
    return None


_KEY_ORDER = {key: n for n, key in enumerate(("type", "field_id", "event", "operator", "value"))}


def normalise_native(value: JSONValue) -> JSONValue:
    """A native rule as Oempro gives it back: numbers as strings, keys as text (G2); keys
    in the order people write them (``type``, ``field_id``, ``operator``, ``value``...)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (_KEY_ORDER.get(str(k), len(_KEY_ORDER)), str(k)))
        return {str(k): normalise_native(value[k]) for k in keys}
    if isinstance(value, list | tuple):
        return [normalise_native(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return scalar_text(value)
    return str(value)


def native_problem(native: Mapping[str, JSONValue]) -> str | None:
    """Why this adapter would not write ``native``: only documented types and operators."""
    kind = native.get("type")
    if not isinstance(kind, str) or not kind:
        return (
            "a native Oempro rule needs a 'type' (one of "
            + ", ".join(sorted(DOCUMENTED))
            + ") and an 'operator'"
        )
    if kind not in DOCUMENTED:
        return (
            f"rule type {kind!r} is not one Oempro's criteria syntax documents, so this "
            "adapter never writes it"
        )
    operator = native.get("operator")
    if operator not in DOCUMENTED[kind]:
        return (
            f"operator {operator!r} is not documented for {kind!r} rules (documented: "
            + ", ".join(sorted(DOCUMENTED[kind]))
            + ")"
        )
    return None
