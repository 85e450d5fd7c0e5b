"""Canonical rules <-> MailWizz conditions, and the canonical form to compare. Pure.

MailWizz stores one flat list of conditions combined by ``operator_match`` (``all``/``any``):
field ``conditions`` (field, operator, value) and ``campaign_conditions`` (open/click of a
campaign within a time window). Translation goes through a list-independent form that
names fields by merge tag and operators by slug (:class:`Condition`,
:class:`CampaignCondition`); only :func:`to_wire` and :func:`from_wire` turn tags and slugs
into the list's ``field_id`` and the install's ``operator_id`` and back.

- ``in``/``not_in`` are lowered to the OR of ``equals`` / AND of ``not_equals`` they mean;
  the result must be one flat list (``shapes.flat``), else the segment cannot be stored.
- ``empty``/``not_empty`` are ``is``/``is-not`` with the value tag ``[EMPTY]`` (the value is
  required, and ``[EMPTY]`` is the documented way to say "field is empty").
- Behaviour rules: ``within: {days: N}`` is ``lte N day`` (the event happened within the
  last N days); without ``within`` it is ``gte 0 day`` (at least 0 days ago: ever).
- Values are trimmed (the server trims every input) and conditions de-duplicated the way the
  server does, so what is compared is what the server keeps. Anything with no canonical
  equivalent is read back as ``native:`` (docs/providers/mailwizz.md shows both forms).
- A canonical rule is accepted (and read back) only where MailWizz means by it what the
  canonical language says (:func:`literal_problem`): no LIKE wildcards in contains /
  starts_with / ends_with, no value tags (``[DATE]``...), no decimals where the server
  compares numbers, and gt/lt only against a whole number. Stored conditions that would not
  read back as such a rule, ``greater``/``less`` (see ``OPS_BY_SLUG``), and conditions on a
  custom field whose tag is a standard field name (``STATUS``) are read back as
  ``native:``, so ``import`` never writes a rule that ``validate`` refuses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from reconciler.errors import ProviderError
from reconciler.model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    JSONValue,
    MembershipRule,
    NativeRule,
    Rule,
    Scalar,
)
from reconciler.rules import in_as_equals, map_leaves, render, scalar_text
from reconciler.shapes import flat

__all__ = [
    "EMPTY_VALUE",
    "FIELD_BY_TAG",
    "SLUGS",
    "STANDARD_TAGS",
    "UNSTORABLE_FIELDS",
    "CampaignCondition",
    "Compiled",
    "Condition",
    "Untranslatable",
    "canonicalise",
    "compile_leaf",
    "compile_rules",
    "decompile",
    "field_tag",
    "literal_problem",
    "lower",
]

STANDARD_TAGS: dict[str, str] = {"email": "EMAIL", "first_name": "FNAME", "last_name": "LNAME"}
"""Standard fields that are list fields in MailWizz (created with every list)."""
FIELD_BY_TAG = {tag: name for name, tag in STANDARD_TAGS.items()}
UNSTORABLE_FIELDS = frozenset(STANDARD_FIELDS) - frozenset(STANDARD_TAGS)
"""``name``, ``date_subscribed`` and ``status`` are not list fields: no condition reaches them."""

SLUGS: dict[str, str] = {
    "equals": "is",
    "not_equals": "is-not",
    "contains": "contains",
    "not_contains": "not-contains",
    "starts_with": "starts",
    "ends_with": "ends",
    "gt": "greater",
    "lt": "less",
}
"""Canonical operator -> condition-operator slug (ids are resolved at run time)."""
OPS_BY_SLUG = {slug: op for op, slug in SLUGS.items() if op not in ("gt", "lt")}
"""Slugs read back as canonical operators. ``greater``/``less`` are always read back as
``native:``: MailWizz list fields are text (or dropdown) fields, ``import`` declares a
field with its live type, and a text field takes no ``gt``/``lt``; so a canonical ``gt``
read back would make ``import`` write a rule ``validate`` refuses. (A declared ``gt`` on a
``number`` field compares equal to it: both sides go through :func:`canonicalise`.)"""
EMPTY_VALUE = "[EMPTY]"
EMPTINESS: dict[str, str] = {"empty": "is", "not_empty": "is-not"}

ACTIONS: dict[str, str] = {
    "opened": "open",
    "clicked": "click",
    "not_opened": "not_open",
    "not_clicked": "not_click",
}
EVENTS_BY_ACTION = {action: event for event, action in ACTIONS.items()}
TIME_OPERATORS = frozenset({"lte", "lt", "gte", "gt", "eq"})
TIME_UNITS = frozenset({"day", "month", "year"})
MAX_VALUE = 255
MAX_TIME_VALUE = 10_000
CONDITION_KEYS = frozenset({"field", "field_id", "operator", "operator_id", "value"})
CAMPAIGN_KEYS = frozenset(
    {"action", "campaign_id", "time_comparison_operator", "time_value", "time_unit"}
)


LIKE_OPERATORS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
"""Canonical operators MailWizz evaluates with SQL ``LIKE`` (``%value%``, ``value%``...)."""
LIKE_SPECIAL = ("%", "_", "\\")
"""Characters a ``LIKE`` pattern does not read literally. MailWizz does not escape ``%``
and ``_`` (providers/mailwizz.md, section 4); the backslash is MySQL's default ``LIKE``
escape character (the fact file is silent on it: refused too, the safe choice)."""
NUMERIC_OPERATORS = frozenset({"equals", "not_equals", "gt", "lt"})
"""Canonical operators whose slugs (is, is-not, greater, less) compare numerically when the
value is numeric: MailWizz 2.7.2 (``ListSegment``) then casts both sides ``AS SIGNED``, so
a decimal is compared as a whole number (``3.5`` means ``3``), and compares text otherwise."""
NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
"""PHP's ``is_numeric`` for trimmed text (what the server tests before it casts)."""
WHOLE = re.compile(r"[+-]?\d+")
VALUE_TAG = re.compile(
    r"\[(EMPTY|DATETIME|DATE|BIRTHDAY|(PAST|FUTURE)_(MINUTES|HOURS|DAYS)_\d+"
    r"|BIRTHDAY_FUTURE_DAYS_\d+)\]"
)
"""The documented dynamic value tags (providers/mailwizz.md, section 4): the server
replaces them when it evaluates a segment, so a value holding one is not literal text."""


def literal_problem(op: str, value: str) -> str | None:
    """Why MailWizz would not read canonical ``op`` with the (trimmed) ``value`` as the
    canonical language means it, or None when it would."""
    tag = VALUE_TAG.search(value)
    if tag is not None:
        return (
            f"the value {value!r} holds the MailWizz value tag {tag.group(0)}, which the "
            "server replaces when it evaluates the segment (use op: empty for [EMPTY], or a "
            "native: condition to mean the tag)"
        )
    if op in LIKE_OPERATORS and any(mark in value for mark in LIKE_SPECIAL):
        return (
            f"the value {value!r} holds '%', '_' or '\\', which MailWizz puts unescaped into "
            f"an SQL LIKE pattern for {op} (any text, any one character, an escape), so it "
            "would not match literally; use equals, or a native: condition to mean the pattern"
        )
    if op in ("gt", "lt") and not WHOLE.fullmatch(value):
        return (
            f"{op} needs a whole number: MailWizz compares numerically only when the value is "
            f"a number, compares text otherwise, and compares decimals as whole numbers, so "
            f"{value!r} would not mean {op}"
        )
    if op in NUMERIC_OPERATORS and NUMERIC.fullmatch(value) and not WHOLE.fullmatch(value):
        return (
            f"MailWizz compares a numeric value as a whole number (it casts both sides AS "
            f"SIGNED), so {value!r} would match other numbers too; use a whole number"
        )
    return None


class Untranslatable(ProviderError):
    """A canonical rule MailWizz cannot store; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Condition:
    """A field condition by merge tag and operator slug; an id only where no name is known
    (a ``field_id`` of another list, an operator the install does not list)."""

    tag: str = ""
    slug: str = ""
    value: str = ""
    field_id: str = ""
    operator_id: str = ""

    def identity(self) -> tuple[str, ...]:
        field = self.tag.upper() if self.tag else "#" + self.field_id
        return (field, self.slug or "#" + self.operator_id, self.value)


@dataclass(frozen=True)
class CampaignCondition:
    action: str
    campaign_id: str | None
    time_comparison_operator: str
    time_value: str
    time_unit: str

    def identity(self) -> tuple[str | None, ...]:
        return (
            self.action,
            self.campaign_id,
            self.time_comparison_operator,
            self.time_value,
            self.time_unit,
        )


@dataclass(frozen=True)
class Compiled:
    """A segment's rules as MailWizz stores them, de-duplicated like the server does."""

    operator_match: Literal["all", "any"]
    conditions: tuple[Condition, ...] = ()
    campaign_conditions: tuple[CampaignCondition, ...] = ()

    @property
    def count(self) -> int:
        """What counts toward ``max_segment_conditions`` (both kinds together)."""
        return len(self.conditions) + len(self.campaign_conditions)


# -- canonical -> stored ---------------------------------------------------------------------


def lower(rule: Rule) -> Rule:
    """``in``/``not_in`` as the OR of ``equals`` / AND of ``not_equals`` they mean."""
    return map_leaves(rule, in_as_equals)


def field_tag(name: str) -> str:
    """The merge tag a canonical field name is stored under (``email`` -> ``EMAIL``)."""
    folded = name.strip().casefold()
    if folded in STANDARD_TAGS:
        return STANDARD_TAGS[folded]
    if folded in UNSTORABLE_FIELDS:
        raise Untranslatable(
            f"field {name!r} is not a MailWizz list field (conditions can test email, "
            "first_name, last_name and the list's custom fields)"
        )
    return name.strip().upper()


def _value(value: JSONValue) -> str:
    if isinstance(value, bool | int | float | str):
        text = scalar_text(value).strip()
    else:
        raise Untranslatable(f"{value!r} is not a single value")
    if not text:
        raise Untranslatable("an empty value cannot be stored (use op: empty)")
    if len(text) > MAX_VALUE:
        raise Untranslatable(f"a value may have at most {MAX_VALUE} characters")
    return text


def _field_condition(rule: FieldRule) -> Condition:
    tag = field_tag(rule.field)
    if rule.op in EMPTINESS:
        return Condition(tag=tag, slug=EMPTINESS[rule.op], value=EMPTY_VALUE)
    slug = SLUGS.get(rule.op)
    if slug is None:
        known = ", ".join([*SLUGS, *EMPTINESS])
        raise Untranslatable(f"operator {rule.op!r} has no MailWizz equivalent (it has: {known})")
    scalar: Scalar | None = rule.value if not isinstance(rule.value, tuple) else None
    value = _value(scalar)
    problem = literal_problem(rule.op, value)
    if problem is not None:
        raise Untranslatable(problem)
    return Condition(tag=tag, slug=slug, value=value)


def _digits(value: JSONValue, what: str) -> str:
    text = scalar_text(value).strip() if isinstance(value, int | str) else ""
    if not text.isdigit() or isinstance(value, bool):
        raise Untranslatable(f"{what} must be a whole number, not {value!r}")
    return str(int(text))


def _campaign_condition(rule: BehaviourRule) -> CampaignCondition:
    campaign = _digits(rule.campaign, "a MailWizz campaign (its numeric campaign_id)")
    if rule.within is None:
        return CampaignCondition(ACTIONS[rule.event], campaign, "gte", "0", "day")
    if rule.within.days > MAX_TIME_VALUE:
        raise Untranslatable(f"a 'within' window may be at most {MAX_TIME_VALUE} days")
    return CampaignCondition(ACTIONS[rule.event], campaign, "lte", str(rule.within.days), "day")


def _native_condition(data: dict[str, JSONValue]) -> Condition:
    keys = set(data)
    fields, operators = keys & {"field", "field_id"}, keys & {"operator", "operator_id"}
    if len(fields) != 1 or len(operators) != 1 or keys != {*fields, *operators, "value"}:
        raise Untranslatable(
            "a native condition is {field: TAG (or field_id), operator: SLUG "
            "(or operator_id), value: text}"
        )
    tag = field_id = slug = operator_id = ""
    if "field" in data:
        tag = _name(data["field"], "field").upper()
    else:
        field_id = _digits(data["field_id"], "field_id")
    if "operator" in data:
        slug = _name(data["operator"], "operator").lower()
    else:
        operator_id = _digits(data["operator_id"], "operator_id")
    value = _value(data["value"])
    return Condition(tag=tag, slug=slug, value=value, field_id=field_id, operator_id=operator_id)


def _name(value: JSONValue, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Untranslatable(f"a native condition's {what} must be non-empty text")
    return value.strip()


def _native_campaign(data: dict[str, JSONValue]) -> CampaignCondition:
    if not set(data) <= CAMPAIGN_KEYS or not (CAMPAIGN_KEYS - {"campaign_id"}) <= set(data):
        raise Untranslatable(
            "a native campaign condition is {action, campaign_id (optional: any campaign), "
            "time_comparison_operator, time_value, time_unit}"
        )
    action, operator, unit = (
        str(data[k]).strip() for k in ("action", "time_comparison_operator", "time_unit")
    )
    if action not in EVENTS_BY_ACTION:
        raise Untranslatable(f"action must be one of {', '.join(sorted(EVENTS_BY_ACTION))}")
    if operator not in TIME_OPERATORS or unit not in TIME_UNITS:
        raise Untranslatable(
            f"time_comparison_operator must be one of {', '.join(sorted(TIME_OPERATORS))} "
            f"and time_unit one of {', '.join(sorted(TIME_UNITS))}"
        )
    value = _digits(data["time_value"], "time_value")
    if int(value) > MAX_TIME_VALUE:
        raise Untranslatable(f"time_value may be at most {MAX_TIME_VALUE}")
    raw = data.get("campaign_id")
    campaign = None if raw in (None, "") else _digits(raw, "campaign_id")
    return CampaignCondition(action, campaign, operator, value, unit)


def compile_leaf(rule: Rule) -> Condition | CampaignCondition:
    """One leaf as a stored condition; ``Untranslatable`` says why it cannot be."""
    if isinstance(rule, FieldRule):
        return _field_condition(rule)
    if isinstance(rule, BehaviourRule):
        return _campaign_condition(rule)
    if isinstance(rule, NativeRule):
        if "action" in rule.native:
            return _native_campaign(rule.native)
        return _native_condition(rule.native)
    if isinstance(rule, MembershipRule):
        raise Untranslatable("list membership rules are not supported by MailWizz")
    raise Untranslatable("a nested group cannot be one condition")


def compile_rules(match: str, rules: Sequence[Rule]) -> Compiled:
    """The rules as one flat, de-duplicated condition list; ``Untranslatable`` names every
    rule that cannot be stored."""
    shape = flat(match, tuple(lower(rule) for rule in rules))
    if shape is None:
        raise Untranslatable(
            "the rules nest deeper than MailWizz's one flat list of conditions (an 'in' of "
            "several values is an any-group and a 'not_in' an all-group of conditions)"
        )
    operator_match: Literal["all", "any"] = "any" if shape[0] == "any" else "all"
    conditions: dict[tuple[str, ...], Condition] = {}
    campaigns: dict[tuple[str | None, ...], CampaignCondition] = {}
    problems: dict[str, None] = {}
    for leaf in shape[1]:
        try:
            found = compile_leaf(leaf)
        except Untranslatable as exc:
            problems[f"{render(leaf)}: {exc.reason}"] = None
            continue
        if isinstance(found, Condition):
            conditions.setdefault(found.identity(), found)
        else:
            campaigns.setdefault(found.identity(), found)
    if problems:
        raise Untranslatable("; ".join(problems))
    return Compiled(operator_match, tuple(conditions.values()), tuple(campaigns.values()))


# -- stored -> canonical ---------------------------------------------------------------------


def _standard_named(tag: str) -> bool:
    """A custom field whose merge tag reads as a standard field's name (``STATUS``,
    ``NAME``): a canonical rule on it would mean the standard field."""
    return tag.upper() not in FIELD_BY_TAG and tag.casefold() in STANDARD_FIELDS


def _condition_rule(condition: Condition) -> Rule:
    if condition.tag and condition.slug and not _standard_named(condition.tag):
        name = FIELD_BY_TAG.get(condition.tag.upper(), condition.tag)
        if condition.value == EMPTY_VALUE and condition.slug in OPS_EMPTINESS:
            return FieldRule(field=name, op=OPS_EMPTINESS[condition.slug])
        op = OPS_BY_SLUG.get(condition.slug)
        value = condition.value.strip()
        if op is not None and value and literal_problem(op, value) is None:
            return FieldRule.model_validate({"field": name, "op": op, "value": value})
    native: dict[str, JSONValue] = {}
    native.update({"field": condition.tag} if condition.tag else {"field_id": condition.field_id})
    if condition.slug:
        native["operator"] = condition.slug
    else:
        native["operator_id"] = condition.operator_id
    native["value"] = condition.value
    return NativeRule(native=native)


OPS_EMPTINESS: dict[str, Literal["empty", "not_empty"]] = {"is": "empty", "is-not": "not_empty"}


def _campaign_rule(condition: CampaignCondition) -> Rule:
    event = EVENTS_BY_ACTION.get(condition.action)
    campaign, operator = condition.campaign_id, condition.time_comparison_operator
    value = condition.time_value
    if event is not None and campaign and campaign.isdigit() and condition.time_unit == "day":
        if operator == "gte" and value == "0":
            return BehaviourRule.model_validate({"campaign": campaign, "event": event})
        if operator == "lte" and value.isdigit() and 0 < int(value) <= MAX_TIME_VALUE:
            data = {"campaign": campaign, "event": event, "within": {"days": int(value)}}
            return BehaviourRule.model_validate(data)
    native: dict[str, JSONValue] = {"action": condition.action, "campaign_id": campaign}
    native.update(time_comparison_operator=operator, time_value=value)
    native["time_unit"] = condition.time_unit
    return NativeRule(native=native)


def decompile(compiled: Compiled) -> tuple[str, tuple[Rule, ...]]:
    """Stored conditions as a segment's ``(match, rules)``."""
    rules = [_condition_rule(c) for c in compiled.conditions]
    rules += [_campaign_rule(c) for c in compiled.campaign_conditions]
    return compiled.operator_match, tuple(rules)


def canonicalise(match: str, rules: Sequence[Rule]) -> tuple[str, tuple[Rule, ...]]:
    """The rules as MailWizz would store them and fetch would return them."""
    try:
        return decompile(compile_rules(match, rules))
    except Untranslatable:
        return match, tuple(rules)  # cannot be stored: validation and apply report it
