"""Sample subscribers as the evaluator sees them, and their values parsed by field type.

A :class:`Subscriber` holds its values already parsed (:func:`typed_value`): text as
written, numbers as ``Decimal``, dates as ``date`` (the day only: a time and zone after it
are ignored), booleans, and multiselect options as a tuple. An empty value is absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from .rules import scalar_text

__all__ = [
    "PARSERS",
    "Event",
    "Subscriber",
    "Typed",
    "parse_boolean",
    "parse_date",
    "parse_number",
    "typed_value",
]

Typed: TypeAlias = str | Decimal | date | bool | tuple[str, ...]
"""A field value parsed for its type: text, number, date, boolean or multiselect options."""


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded campaign event: ``opened`` or ``clicked``, on a day."""

    campaign: str
    event: str
    on: date


@dataclass(frozen=True)
class Subscriber:
    """A sample subscriber of one list, its values already parsed for their field types.

    ``values`` maps casefolded field names (standard ones included) to typed values; an
    empty value is absent. ``lists`` maps other lists' casefolded names to the status of
    the subscriber's record there (``active``, ``unsubscribed`` ...)."""

    email: str
    list: str
    status: str = "active"
    values: Mapping[str, Typed] = field(default_factory=dict)
    lists: Mapping[str, str] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    target: str | None = None

    def list_status(self, name: str) -> str | None:
        """The status of this subscriber's record in list ``name``, or None (no record)."""
        folded = name.casefold()
        if folded == self.list.casefold():
            return self.status
        return self.lists.get(folded)


# --- parsing values -------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?\Z")
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\Z"
)
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def parse_number(value: object) -> Decimal | None:
    """A number from an int, a float or its text (``"1.5"``, ``"-2e3"``), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = scalar_text(value).strip()
    if not _NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None


def parse_date(value: object) -> date | None:
    """The day of an ISO date (``2024-03-01``, optionally with a time, which is ignored)."""
    if not isinstance(value, str):
        return None
    found = _DATE.match(value.strip())
    if found is None:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:  # 2024-02-30
        return None


def parse_boolean(value: object) -> bool | None:
    """``true``/``false`` (also ``yes``/``no``, ``1``/``0``, in any case), else None."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, int | float | str):
        return None
    text = scalar_text(value).strip().casefold()
    return True if text in _TRUE else False if text in _FALSE else None


PARSERS: dict[str, Callable[[object], Typed | None]] = {
    "number": parse_number,
    "date": parse_date,
    "boolean": parse_boolean,
}
_KINDS = {"number": "a number", "date": "an ISO date (YYYY-MM-DD)", "boolean": "true or false"}


def typed_value(field_type: str, raw: object) -> Typed | None:
    """``raw`` (a YAML scalar, or a list for multiselect) parsed for ``field_type``; None
    when empty. Raises ``ValueError`` saying what was expected when it does not parse."""
    if raw is None or raw == "" or raw == []:
        return None
    if field_type == "multiselect":
        items: list[object] = list(raw) if isinstance(raw, list | tuple) else [raw]
        scalars = [item for item in items if isinstance(item, int | float | str)]
        if len(scalars) != len(items):
            raise ValueError("a multiselect value is an option or a list of options")
        options = tuple(scalar_text(item) for item in scalars)
        return tuple(option for option in options if option) or None
    if isinstance(raw, list | tuple | dict):
        raise ValueError(f"a {field_type} value is a single value, not a list or a mapping")
    if not isinstance(raw, int | float | str):
        raise ValueError("expected a single value")
    parser = PARSERS.get(field_type)
    if parser is None:
        return scalar_text(raw)
    parsed = parser(raw)
    if parsed is None:
        shown = f'"{raw}"' if isinstance(raw, str) else scalar_text(raw)
        raise ValueError(f"expected {_KINDS[field_type]}, not {shown}")
    return parsed
