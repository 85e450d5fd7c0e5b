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
from datetime import datetime

__all__ = [
    "ALLOWED",
    "CANONICAL_TYPES",
    "CHOICE_TYPES",
    "HIDDEN_OPS",
    "LIKE_OPS",
    "LIKE_WILDCARDS",
    "READ_OPS",
    "SPECIAL_FILTERS",
    "STANDARD_ALIASES",
    "WRITE_OPS",
    "allowed",
    "family",
    "is_date_value",
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

SPECIAL_FILTERS = frozenset(
    {"leadlist", "date_added", "date_identified", "last_active", "date_modified", "owner_id"}
    | {"points", "campaign", "tags", "device_type", "device_brand", "device_os", "device_model"}
    | {"dnc_bounced", "dnc_unsubscribed", "dnc_manual_email", "dnc_bounced_sms"}
    | {"dnc_unsubscribed_sms", "dnc_manual_sms", "stage", "globalcategory"}
    | {"utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term"}
    | {"lead_asset_download", "lead_email_received", "lead_email_sent", "lead_email_sent_date"}
    | {"lead_email_read_date", "email_clicked_link_date", "sms_clicked_link_date"}
    | {"hit_url_date", "lead_email_read_count", "hit_url_count", "sessions", "source_id"}
    | {"hit_url", "referer", "url_title", "source", "email_id", "sms_clicked_link"}
    | {"notification", "page_id", "redirect_id"}
)
"""Filters Mautic offers besides contact fields (fact file 6.3, items 2 and 3)."""

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

LIKE_OPS = frozenset({"like", "!like", "contains", "startsWith", "endsWith"})
"""Wire operators Mautic evaluates with SQL ``LIKE``, putting ``%`` around the value (6.2)."""

LIKE_WILDCARDS = ("%", "_")
"""Characters ``LIKE`` reads as wildcards. The fact file documents no escaping for them, so a
value holding one is refused on the way out and read back as ``native:`` (a pattern)."""

HIDDEN_OPS = frozenset({"between", "!between", "date"})
"""Operators in Mautic's tables that the API form rejects (G15)."""

CHOICE_TYPES = frozenset({"select", "multiselect"})
"""Mautic types whose filter values must be one of the field's ``properties.list`` values
(6.3 item 4) for ``= != in !in``. Country, region, timezone and locale also validate against
a choice list, but the API does not return those lists: their values are not checked."""

_RELATIVE_WORDS = frozenset(
    {"today", "tomorrow", "yesterday", "anniversary", "birthday"}
    | {f"{when} {unit}" for when in ("this", "last", "next") for unit in ("week", "month", "year")}
)
_RELATIVE_PARTS = ("first day of ", "last day of ", " ago")
ABSOLUTE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
_DATE_SHAPES = (
    re.compile(r"\d{4}-\d{2}-\d{2}"),
    re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"),
    re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"),
)


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


def is_date_value(text: str) -> bool:
    """A value Mautic's ``SegmentDate`` constraint accepts in a date filter (6.4, 6.5): a
    real calendar date as ``Y-m-d`` (optionally ``H:i`` or ``H:i:s``), or a relative value."""
    if is_relative_date(text):
        return True
    for shape, fmt in zip(_DATE_SHAPES, _DATE_FORMATS, strict=True):
        if shape.fullmatch(text):
            try:
                datetime.strptime(text, fmt)
            except ValueError:
                return False
            return True
    return False
