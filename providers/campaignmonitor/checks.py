"""What Campaign Monitor cannot store, found before any write, and where each sent rule
came from in the YAML.

- ``offline_problems`` (``validate``): the core already checks shapes, operators per
  standard field and per declared field type, events and windows from the capabilities
  (which ``clauses.operators_of`` derives from the verb table); this adds what only the
  adapter can say: value formats (dates, numbers, spaces), the ``DateSubscribed`` ten-year
  window, campaign ids, native rules and titles it might not keep as given. Declared field
  types stand in for the live ones.
- ``change_problems`` (``plan``): each rule translated exactly as ``apply`` will, against
  the list's live fields (Keys, DataTypes, options) and the fields the plan creates first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from reconciler.errors import RuleSyntaxError
from reconciler.model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    Group,
    MembershipRule,
    Rule,
    Segment,
)
from reconciler.provider import Capabilities, Problem
from reconciler.rules import Key, key, render, scalar_text, walk

from . import clauses as cl
from .api import CustomField
from .mapping import FieldIndex, Untranslatable, lower, lowered_cnf, to_groups, to_wire

__all__ = ["change_problems", "declared_index", "offline_problems", "origins"]

Path = tuple[str | int, ...]


def _leaves_of(rule: Rule) -> Iterator[Rule]:
    lowered = lower(rule)
    if isinstance(lowered, Group):
        for _, leaf in walk(lowered.rules, ()):
            yield leaf
    else:
        yield lowered


def origins(segment: Segment) -> dict[Key, tuple[Path, Rule]]:
    """Each leaf that will be sent (by ``rules.key``) -> the declared rule and its path."""
    found: dict[Key, tuple[Path, Rule]] = {}
    for path, rule in walk(segment.rules):
        for leaf in _leaves_of(rule):
            found.setdefault(key(leaf), (path, rule))
    return found


def declared_index(field_types: Mapping[str, str]) -> FieldIndex:
    """The list's custom fields as declared (name -> canonical type), typed as the
    DataType each becomes; their Keys and options are not known offline."""
    return FieldIndex(
        (
            CustomField(name=name, key=f"[{name}]", data_type=cl.DATA_TYPES[field_type])
            for name, field_type in field_types.items()
            if field_type in cl.DATA_TYPES
        ),
        options_known=False,
    )


def _value_problem(rule: FieldRule) -> Problem | None:
    values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
    for value in values:
        if value is None:
            continue
        text = scalar_text(value)
        if text != " ".join(text.split()):
            return Problem(
                ("value",),
                f"value {text!r} has leading, trailing or repeated spaces or a line break, "
                "which a Campaign Monitor clause cannot keep",
            )
    return None


def _window_problem(rule: FieldRule, this_year: int) -> Problem | None:
    """Error 2723: ``DateSubscribed`` operands must lie within the last ten years including
    the current one. Whether a later year is accepted is not said: it is outside that
    window, so it is refused too (the safe reading)."""
    if rule.field.casefold() != "date_subscribed":
        return None
    values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
    oldest = this_year - cl.DATE_SUBSCRIBED_YEARS + 1
    for value in values:
        day = cl.canonical_date(scalar_text(value)) if value is not None else None
        if day is not None and not oldest <= int(day[:4]) <= this_year:
            return Problem(
                ("value",),
                f"date_subscribed {day} is outside {oldest}-{this_year}: Campaign Monitor "
                "accepts subscription dates from the last ten years only (error 2723)",
            )
    return None


def _title_problem(name: str) -> Problem | None:
    """A title Campaign Monitor might not store as given: whether it trims spaces or keeps
    control characters is UNKNOWN, and a changed title would be planned again forever."""
    if name != name.strip() or any(ch in name for ch in "\t\n\r\v\f"):
        return Problem(
            ("name",),
            f"segment title {name!r} has leading or trailing spaces or a tab or line break, "
            "which Campaign Monitor may not keep as given",
        )
    return None


def _core_reports(rule: Rule, capabilities: Capabilities, field_types: Mapping[str, str]) -> bool:
    """Whether the core's capability check already refuses this rule (or its field is
    undeclared, which validation reports): then nothing is added here."""
    if isinstance(rule, MembershipRule):
        return True
    if isinstance(rule, BehaviourRule):
        return rule.event not in capabilities.events or rule.within is not None
    if not isinstance(rule, FieldRule):
        return False
    name = rule.field.casefold()
    if name not in STANDARD_FIELDS and name not in field_types:
        return True
    custom = name not in STANDARD_FIELDS
    return rule.op not in capabilities.operators_for(name, field_types[name] if custom else None)


def _leaf_problems(rule: Rule, fields: FieldIndex, strict: bool) -> list[Problem]:
    """Each reason a declared rule's leaves cannot be written, once, with the part of the
    rule at fault."""
    found: dict[Problem, None] = {}
    for leaf in _leaves_of(rule):
        try:
            to_wire(leaf, fields, strict=strict)
        except Untranslatable as exc:
            found[Problem((exc.part,) if exc.part else (), exc.reason)] = None
    return list(found)


def _located(path: Path, problem: Problem) -> Problem:
    return Problem((*path, *problem.path), problem.message)


def offline_problems(
    segment: Segment, field_types: Mapping[str, str], capabilities: Capabilities, this_year: int
) -> list[Problem]:
    """Why Campaign Monitor cannot store ``segment`` as declared, each at the path of the
    rule (inside the segment's mapping) that cannot be written."""
    problems: list[Problem] = []
    title = _title_problem(segment.name)
    if title is not None:
        problems.append(title)
    if segment.options:
        problems.append(Problem(("options",), "Campaign Monitor segments have no options"))
    fields = declared_index(field_types)
    for path, rule in walk(segment.rules):
        if _core_reports(rule, capabilities, field_types):
            continue
        if isinstance(rule, FieldRule):
            problem = _value_problem(rule) or _window_problem(rule, this_year)
            if problem is not None:
                problems.append(_located(path, problem))
                continue
        problems += [_located(path, p) for p in _leaf_problems(rule, fields, strict=False)]
    return problems


def _described(rule: Rule, fields: FieldIndex, reason: str) -> str:
    """The rule, and for a custom field its live DataType (what decides its verbs) unless
    the reason already names it."""
    if isinstance(rule, FieldRule) and rule.field.casefold() not in STANDARD_FIELDS:
        found = fields.by_name(rule.field)
        if found is not None and f"{found.data_type} field" not in reason:
            return f"{render(rule)} (field {found.name!r} is a {found.data_type} field)"
    return render(rule)


def change_problems(segment: Segment, fields: FieldIndex) -> list[Problem]:
    """Why ``segment`` cannot be written to a list with ``fields`` (live, plus those the
    plan creates before it): the translation ``apply`` makes, without sending it."""
    problems: list[Problem] = []
    for path, rule in walk(segment.rules):
        for problem in _leaf_problems(rule, fields, strict=True):
            message = f"{_described(rule, fields, problem.message)}: {problem.message}"
            problems.append(Problem((*path, *problem.path), message))
    if problems:
        return problems
    try:
        lowered_cnf(segment.match, segment.rules)
        to_groups(segment.match, segment.rules, fields)
    except (Untranslatable, RuleSyntaxError) as exc:
        return [Problem(("rules",), str(exc))]
    return []
