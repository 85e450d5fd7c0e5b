"""Mautic's filter vocabulary: operators allowed per field type, and the canonical mapping. Pure.

Source: providers/mautic.md section 6.2 ("Operators allowed per field type", from Mautic's
``OperatorListTrait``, ``TypeOperatorSubscriber`` and ``FilterOperatorSubscriber``). The
form rejects any other operator with 400 ``operator: This value is not valid.``

| Mautic field type(s) | allowed wire operators (fact file 6.2) |
| --- | --- |
| ``text`` | ``= != empty !empty like !like regexp !regexp startsWith endsWith contains in !in`` |
| ``email url tel lookup`` | the ``text`` set without ``in !in`` |
| ``select country region timezone locale`` | ``= != empty !empty regexp !regexp in !in`` |
| ``multiselect`` (and ``tags``, ``leadlist``, ...) | ``in !in empty !empty`` |
| ``boolean`` / ``bool`` | ``= !=`` |
| ``date datetime number``, other types | ``text`` set without ``in !in``, and ``gt gte lt lte`` |
| ``lookup_id`` | ``= != empty !empty`` |

``between``, ``!between`` and ``date`` are hidden operators the API rejects (gotcha G15):
canonical ``between`` is written as ``gte`` AND ``lte`` (an exact equivalent), and ``in`` /
``not_in`` on a type without ``in`` as OR-ed ``=`` / AND-ed ``!=``.
"""

from __future__ import annotations

import re

__all__ = [
    "ALLOWED",
    "CANONICAL_TYPES",
    "READ_OPS",
    "STANDARD_ALIASES",
    "WRITE_OPS",
    "allowed",
    "family",
    "is_relative_date",
]

_TEXT_OPS = frozenset(
    {"=", "!=", "empty", "!empty", "like", "!like", "regexp", "!regexp"}
    | {"startsWith", "endsWith", "contains"}
)
_ORDER_OPS = _TEXT_OPS | {"gt", "gte", "lt", "lte"}

ALLOWED: dict[str, frozenset[str]] = {
    "text": _TEXT_OPS | {"in", "!in"},
    "text_like": _TEXT_OPS,
    "select": frozenset({"=", "!=", "empty", "!empty", "regexp", "!regexp", "in", "!in"}),
    "multiselect": frozenset({"in", "!in", "empty", "!empty"}),
    "boolean": frozenset({"=", "!="}),
    "date": _ORDER_OPS,
    "number": _ORDER_OPS,
    "lookup_id": frozenset({"=", "!=", "empty", "!empty"}),
    "default": _ORDER_OPS,
}
"""Operator family -> the wire operators Mautic's segment form accepts for it."""

_FAMILY: dict[str, str] = {
    "text": "text",
    **dict.fromkeys(("email", "url", "tel", "lookup"), "text_like"),
    **dict.fromkeys(("select", "country", "region", "timezone", "locale"), "select"),
    **dict.fromkeys(("multiselect", "tags"), "multiselect"),
    **dict.fromkeys(("boolean", "bool"), "boolean"),
    **dict.fromkeys(("date", "datetime"), "date"),
    "number": "number",
    "lookup_id": "lookup_id",
}

CANONICAL_TYPES: dict[str, str] = {
    "number": "number",
    "date": "date",
    "datetime": "date",
    "select": "select",
    "country": "select",
    "region": "select",
    "timezone": "select",
    "locale": "select",
    "multiselect": "multiselect",
    "boolean": "boolean",
}
"""Mautic field type -> canonical field type (anything else is ``text``)."""

STANDARD_ALIASES: dict[str, tuple[str, str]] = {
    "email": ("email", "email"),
    "first_name": ("firstname", "text"),
    "last_name": ("lastname", "text"),
    "date_subscribed": ("date_added", "date"),
}
"""Canonical standard field -> (Mautic filter alias, its type when the fields API does not
list it). ``date_added`` is a special contact filter of type ``date`` (fact file 6.3).
``name`` and ``status`` have no Mautic equivalent."""

WRITE_OPS: dict[str, str] = {
    "equals": "=",
    "not_equals": "!=",
    "empty": "empty",
    "not_empty": "!empty",
    "contains": "contains",
    "not_contains": "!like",
    "starts_with": "startsWith",
    "ends_with": "endsWith",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "before": "lt",
    "after": "gt",
    "in": "in",
    "not_in": "!in",
}
"""Canonical operator -> wire operator (multiselect ``contains`` is ``in [x]``: see mapping)."""

READ_OPS: dict[str, str] = {
    "=": "equals",
    "!=": "not_equals",
    "empty": "empty",
    "!empty": "not_empty",
    "contains": "contains",
    "like": "contains",
    "!like": "not_contains",
    "startsWith": "starts_with",
    "endsWith": "ends_with",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "in": "in",
    "!in": "not_in",
}
"""Wire operator -> canonical operator; ``gt``/``lt`` on dates read as ``after``/``before``;
``like``/``!like`` only when the value holds no ``%`` (otherwise it is a pattern)."""

_RELATIVE_WORDS = frozenset(
    {"today", "tomorrow", "yesterday", "anniversary", "birthday"}
    | {f"{when} {unit}" for when in ("this", "last", "next") for unit in ("week", "month", "year")}
)
_RELATIVE_PARTS = ("first day of ", "last day of ", " ago")
ABSOLUTE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def family(mautic_type: str) -> str:
    """The operator family of a Mautic field type (``default`` for any other type)."""
    return _FAMILY.get(mautic_type, "default")


def allowed(mautic_type: str) -> frozenset[str]:
    return ALLOWED[family(mautic_type)]


def is_relative_date(text: str) -> bool:
    """A relative date string Mautic keeps as written (fact file 6.4)."""
    value = text.strip().lower()
    return (
        value in _RELATIVE_WORDS
        or value[:1] in ("+", "-")
        or any(part in value for part in _RELATIVE_PARTS)
    )
