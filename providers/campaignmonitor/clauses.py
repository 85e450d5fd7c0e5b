"""Campaign Monitor's rule vocabulary: RuleTypes, the verb table and clause text. Pure.

Only verbs that the sources in providers/campaignmonitor.md (section 4, "Verbs per
RuleType") show are used; the complete per-type table is in no source read, so anything
else is refused offline rather than guessed (use ``native:`` to send other clauses).

| RuleType / field DataType | canonical op -> verb | evidence |
| --- | --- | --- |
| ``EmailAddress`` (email) | contains -> CONTAINS | docs example |
| ``Name`` (name) | equals -> EQUALS, not_empty -> PROVIDED, empty -> NOT_PROVIDED | docs |
| ``DateSubscribed`` | after/before/equals -> AFTER/BEFORE/EQUALS, between -> BETWEEN | docs; 2755 |
| ``Text`` custom field | equals -> EQUALS, not_empty -> PROVIDED | PHP sample |
| ``Number`` custom field | between -> BETWEEN x AND y | 2756 |
| ``MultiSelectOne`` custom field | equals -> EQUALS, not_equals -> NOT_EQUALS | docs; issue #54 |
| ``Date`` custom field | between -> BETWEEN a AND b | 2755 |
| ``CampaignOpened`` (opened), ``CampaignNotOpened`` (not_opened), | clause = CampaignID | docs, |
| ``CampaignClickedAny`` (clicked) | | 2705, 2750 |

``in``/``not_in`` are written as OR-ed ``EQUALS`` / AND-ed ``NOT_EQUALS`` rules (exact
equivalents) wherever those verbs exist. ``MultiSelectMany``, ``Country`` and ``USState``
fields have no evidenced verbs: their rules are read as ``native:``, and a canonical rule on
one is refused (at ``plan``, where the live DataType is known).

``operators_of`` derives the capabilities (operators per standard field and per field type)
from this one table, so what ``validate`` accepts is exactly what the adapter can write.
"""

from __future__ import annotations

import re
from datetime import date

from reconciler.model import OPERATORS_BY_TYPE

__all__ = [
    "CAMPAIGN_RULE_TYPES",
    "CUSTOM_ANY",
    "DATA_TYPES",
    "DATE_SUBSCRIBED_YEARS",
    "EVENT_BY_RULE_TYPE",
    "NO_OBJECT_VERBS",
    "RULE_TYPES",
    "RULE_TYPE_BY_EVENT",
    "STANDARD_RULE_TYPES",
    "VERBS",
    "canonical_clause",
    "canonical_date",
    "canonical_number",
    "operators_of",
    "split_between",
]

RULE_TYPES: tuple[str, ...] = (
    "Name",
    "EmailAddress",
    "DateSubscribed",
    "CampaignOpened",
    "CampaignClickedAny",
    "CampaignClickedSpecific",
    "CampaignNotClickedSpecific",
    "CampaignOpenedNoClick",
    "CampaignNotOpened",
)
"""Every built-in RuleType (error 2705); anything else must be a custom field's ``[Key]``."""

CAMPAIGN_RULE_TYPES = frozenset(t for t in RULE_TYPES if t.startswith("Campaign"))

STANDARD_RULE_TYPES: dict[str, str] = {
    "email": "EmailAddress",
    "name": "Name",
    "date_subscribed": "DateSubscribed",
}
"""Canonical standard field -> RuleType. ``first_name``, ``last_name`` and ``status`` have
none: Campaign Monitor stores one ``Name`` and its rules cannot test subscriber state."""

RULE_TYPE_BY_EVENT: dict[str, str] = {
    "opened": "CampaignOpened",
    "not_opened": "CampaignNotOpened",
    "clicked": "CampaignClickedAny",
}
"""Behaviour events -> RuleType. The clause is the bare CampaignID, as the docs' only
example (``CampaignOpened``) shows; the table in the facts gives that layout for the
Campaign* types. ``not_clicked`` has no RuleType (``CampaignNotClickedSpecific`` needs a
link whose clause layout is UNKNOWN, ``CampaignOpenedNoClick`` means something else), and
no time window is documented, so ``within`` is unsupported."""

EVENT_BY_RULE_TYPE = {rule_type: event for event, rule_type in RULE_TYPE_BY_EVENT.items()}

VERBS: dict[str, dict[str, str]] = {
    "EmailAddress": {"contains": "CONTAINS"},
    "Name": {"equals": "EQUALS", "not_empty": "PROVIDED", "empty": "NOT_PROVIDED"},
    "DateSubscribed": {
        "after": "AFTER",
        "before": "BEFORE",
        "equals": "EQUALS",
        "between": "BETWEEN",
    },
    "Text": {"equals": "EQUALS", "not_empty": "PROVIDED"},
    "Number": {"between": "BETWEEN"},
    "MultiSelectOne": {"equals": "EQUALS", "not_equals": "NOT_EQUALS"},
    "Date": {"between": "BETWEEN"},
}
"""Kind (a standard RuleType or a custom field's DataType) -> canonical op -> verb."""

DATA_TYPES: dict[str, str] = {
    "text": "Text",
    "number": "Number",
    "date": "Date",
    "select": "MultiSelectOne",
    "multiselect": "MultiSelectMany",
}
"""Canonical field type -> the DataType a created field gets (and a declared one means)."""

DATE_SUBSCRIBED_YEARS = 10
"""``DateSubscribed`` operands must lie within the last ten years including the current
one (error 2723): a year at or before ``this year - 10`` is refused."""


def operators_of(kind: str, field_type: str) -> frozenset[str]:
    """The canonical operators a rule on ``kind`` (a standard RuleType or a DataType) can
    use: its verbs, plus ``in``/``not_in`` where ``EQUALS``/``NOT_EQUALS`` exist (written
    as OR-ed / AND-ed rules), limited to what the operator means for ``field_type``."""
    ops = set(VERBS.get(kind, {}))
    if "equals" in ops:
        ops.add("in")
    if "not_equals" in ops:
        ops.add("not_in")
    return frozenset(ops & OPERATORS_BY_TYPE.get(field_type, frozenset()))


CUSTOM_ANY: dict[str, str] = {
    op: verb
    for kind in ("Text", "Number", "MultiSelectOne", "Date")
    for op, verb in VERBS[kind].items()
}
"""The verbs some custom field type has, for when the field's type is not known (offline)."""

DATE_KINDS = frozenset({"DateSubscribed", "Date"})
OPTION_KINDS = frozenset({"MultiSelectOne"})
"""Kinds whose operand must be one of the field's options (error 2722)."""
NUMBER_KINDS = frozenset({"Number"})
NO_OBJECT_VERBS = frozenset({"PROVIDED", "NOT_PROVIDED"})

_BETWEEN = re.compile(r"(.+?) and (.+)", re.IGNORECASE)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def canonical_clause(rule_type: str, clause: str) -> str:
    """Clause text as compared: trimmed, runs of whitespace as one space, the verb and a
    BETWEEN's ``AND`` upper-case. Campaign clauses are an id, not a verb: only trimmed.

    Whether the server rewrites clause text on read-back is UNKNOWN; this makes the usual
    hand-edits (``contains  @x.com``) compare equal to what the adapter writes.
    """
    text = " ".join(clause.split())
    if rule_type in CAMPAIGN_RULE_TYPES:
        return text
    verb, _, rest = text.partition(" ")
    verb = verb.upper()
    if verb == "BETWEEN":
        parts = split_between(rest)
        if parts is not None:
            rest = f"{parts[0]} AND {parts[1]}"
    return f"{verb} {rest}" if rest else verb


def split_between(rest: str) -> tuple[str, str] | None:
    """``"a AND b"`` -> ``("a", "b")`` (the object of a BETWEEN clause)."""
    found = _BETWEEN.fullmatch(rest)
    return (found.group(1), found.group(2)) if found else None


def canonical_date(text: str) -> str | None:
    """A real calendar date as ``yyyy-mm-dd`` (error 2720 otherwise), else None."""
    found = _DATE.fullmatch(text)
    if found is None:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3])).isoformat()
    except ValueError:
        return None


def canonical_number(text: str) -> str | None:
    """The text if it parses as a number (error 2721 otherwise), else None."""
    return text if _NUMBER.fullmatch(text) else None
