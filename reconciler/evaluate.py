"""The rule evaluator: whether a subscriber matches a canonical rule tree, and why. Pure.

One evaluator serves ``reconciler test`` (expectations and the stored-form check) and the
sample impact of a plan (:mod:`reconciler.subscriber` holds the subscribers it evaluates).
A segment's rules are compiled once (:func:`compile_segment`) into a :class:`Predicate`,
then asked about each subscriber: ``verdict`` is fast, ``decide`` also names the leaf rule
that decided.

Semantics (the documented contract; ``docs`` "Testing segments" has the table):

- A value is *empty* when it is missing, ``""`` or (multiselect) no option. ``empty`` holds
  for an empty value; every ``not_*`` operator is the exact negation of its positive one
  (``not_equals``, ``not_contains``, ``not_in``, ``not_empty``), so a missing value satisfies
  every negative operator and, except ``empty``, no positive one.
- **text** and **select** (also ``email``, ``name``, ``first_name``, ``last_name`` and
  ``status``) compare case-insensitively (``str.casefold``), as the platforms' collations
  do; a missing value compares as ``""``. ``contains``, ``starts_with``, ``ends_with`` test
  substrings; ``in`` tests equality with any listed value.
- **number** compares numerically (``5``, ``"5"`` and ``5.0`` are equal); ``between`` is
  inclusive at both ends.
- **date** compares ISO dates (``YYYY-MM-DD``; a time and zone after the day are ignored):
  ``before``/``lt`` is earlier, ``after``/``gt`` later, ``between`` inclusive, ``equals``
  the same day. ``date_subscribed`` is a date.
- **boolean** takes ``true``/``false`` (also ``"true"``, ``"yes"``, ``1`` ...).
- **multiselect** holds a set of options: ``contains`` and ``equals`` mean "has this
  option", ``in`` "has any of these options"; other operators hold when they hold for at
  least one option.
- An operator that makes no sense for the field's type (``gt`` on text), or a rule value
  that does not parse for the type (``gt: "soon"`` on a date), never holds; its negation
  always does. In an ``in`` list, a value that does not parse matches nothing, the others
  still count (as the ``equals`` conditions ``in`` stands for would).
- Membership: ``in`` holds when the subscriber has a record in that list (any status),
  ``active_in`` when that record is ``active``; the subscriber's own list counts, with its
  own status. List names compare case-insensitively.
- Behaviour: ``opened``/``clicked`` hold when the subscriber has that event for that
  campaign (ids compare exactly) on or before ``now``, and, with ``within: {days: N}``, on
  or after ``now`` minus N days. ``not_opened``/``not_clicked`` are the negations. A click
  does not imply an open: events are taken as recorded.
- ``native:`` rules are the platform's own and cannot be evaluated: they are *undecided*
  (``None``), and groups combine with three-valued logic (``all`` is false as soon as one
  member is false, ``any`` true as soon as one is true; otherwise undecided).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeAlias

from .model import (
    STANDARD_FIELDS,
    BehaviourRule,
    FieldRule,
    Group,
    MembershipRule,
    Rule,
    Scalar,
    Value,
)
from .rules import group_of, render, scalar_text
from .subscriber import PARSERS, Subscriber, Typed

__all__ = [
    "NEGATIONS",
    "Decision",
    "Predicate",
    "Verdict",
    "compile_rule",
    "compile_segment",
    "explain",
    "field_type_of",
]

Verdict: TypeAlias = bool | None
"""Whether a subscriber is a member: ``None`` when a ``native:`` rule would decide it."""

NEGATIONS = {
    "not_equals": "equals",
    "not_contains": "contains",
    "not_in": "in",
    "not_empty": "empty",
}
"""Each negative field operator and the positive one it negates."""
_ORDERED = frozenset({"number", "date"})


# --- compiled rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """A verdict and the leaf rule that decided it, with what the subscriber holds."""

    verdict: Verdict
    rule: Rule
    detail: str = ""


class Predicate(ABC):
    """A compiled rule (or group): ``verdict`` for a subscriber, ``decide`` for the leaf
    rule that decided that verdict."""

    __slots__ = ()

    @abstractmethod
    def verdict(self, subscriber: Subscriber) -> Verdict: ...

    @abstractmethod
    def decide(self, subscriber: Subscriber) -> Decision: ...


class _Group(Predicate):
    """``all`` (``stop`` False: the first false member decides) or ``any`` (``stop``
    True), in three-valued logic."""

    __slots__ = ("members", "stop")

    def __init__(self, stop: bool, members: Sequence[Predicate]) -> None:
        self.stop = stop
        self.members = tuple(members)

    def verdict(self, subscriber: Subscriber) -> Verdict:
        result: Verdict = not self.stop
        for member in self.members:
            found = member.verdict(subscriber)
            if found is self.stop:
                return found
            if found is None:
                result = None
        return result

    def decide(self, subscriber: Subscriber) -> Decision:
        """The first member whose verdict is the group's decides it."""
        outcome = self.verdict(subscriber)
        for member in self.members:
            if member.verdict(subscriber) is outcome:
                return member.decide(subscriber)
        return Decision(outcome, Group.of("any" if self.stop else "all", ()))


class _Leaf(Predicate):
    __slots__ = ("rule", "test")

    def __init__(self, rule: Rule, test: Callable[[Subscriber], Verdict]) -> None:
        self.rule = rule
        self.test = test

    def verdict(self, subscriber: Subscriber) -> Verdict:
        return self.test(subscriber)

    def decide(self, subscriber: Subscriber) -> Decision:
        return Decision(self.test(subscriber), self.rule, _detail(self.rule, subscriber))


def _undecided(subscriber: Subscriber) -> Verdict:
    return None


def compile_segment(
    match: str, rules: Sequence[Rule], field_types: Mapping[str, str], now: date
) -> Predicate:
    """A segment's rules compiled for one list (``field_types``: its custom fields,
    casefolded name -> type) and one clock (``now``, for behaviour windows)."""
    return compile_rule(group_of(match, rules), field_types, now)


def compile_rule(rule: Rule, field_types: Mapping[str, str], now: date) -> Predicate:
    """One rule or group compiled (see :func:`compile_segment`)."""
    if isinstance(rule, Group):
        members = [compile_rule(member, field_types, now) for member in rule.rules]
        return _Group(rule.match == "any", members)
    if isinstance(rule, FieldRule):
        return _Leaf(rule, _field_test(rule, field_types))
    if isinstance(rule, MembershipRule):
        return _Leaf(rule, _membership_test(rule))
    if isinstance(rule, BehaviourRule):
        return _Leaf(rule, _behaviour_test(rule, now))
    return _Leaf(rule, _undecided)


def field_type_of(name: str, field_types: Mapping[str, str]) -> str:
    """The type of field ``name``: a custom field's declared type, a standard field's, or
    text for a field the list does not declare."""
    folded = name.casefold()
    return field_types.get(folded) or STANDARD_FIELDS.get(folded) or "text"


def _field_test(rule: FieldRule, field_types: Mapping[str, str]) -> Callable[[Subscriber], bool]:
    name = rule.field.casefold()
    kind = field_type_of(name, field_types)
    positive = _positive(NEGATIONS.get(rule.op, rule.op), kind, rule.value)
    if rule.op in NEGATIONS:
        return lambda subscriber: not positive(subscriber.values.get(name))
    return lambda subscriber: positive(subscriber.values.get(name))


def _never(value: Typed | None) -> bool:
    return False


def _positive(op: str, kind: str, operand: Value | None) -> Callable[[Typed | None], bool]:
    """The test of a positive operator on a value of ``kind`` (None: empty)."""
    if op == "empty":
        return lambda value: value is None
    if kind in _ORDERED or kind == "boolean":
        return _typed_test(op, kind, operand)
    texts = [t.casefold() for t in _texts(operand)]
    test = _text_test(op, texts, multiselect=kind == "multiselect")
    if kind != "multiselect":
        return lambda value: test(value.casefold() if isinstance(value, str) else "")
    return lambda value: isinstance(value, tuple) and any(test(o.casefold()) for o in value)


def _texts(operand: Value | None) -> list[str]:
    if operand is None:
        return []
    items: Iterable[Scalar] = operand if isinstance(operand, tuple) else (operand,)
    return [scalar_text(item) for item in items]


def _text_test(op: str, texts: list[str], multiselect: bool) -> Callable[[str], bool]:
    """A test of one casefolded text (a multiselect option: ``contains`` means the option)."""
    if not texts:
        return _never_text
    first = texts[0]
    if op == "equals" or (op == "contains" and multiselect):
        return lambda text: text == first
    if op == "contains":
        return lambda text: first in text
    if op == "starts_with":
        return lambda text: text.startswith(first)
    if op == "ends_with":
        return lambda text: text.endswith(first)
    if op == "in":
        wanted = frozenset(texts)
        return lambda text: text in wanted
    return _never_text  # ordering makes no sense for text


def _never_text(text: str) -> bool:
    return False


def _typed_test(op: str, kind: str, operand: Value | None) -> Callable[[Typed | None], bool]:
    """Tests on numbers, dates and booleans: ``operand`` parsed for ``kind``; a value or
    operand that does not parse never matches."""
    parser = PARSERS[kind]
    items = [parser(item) for item in (operand if isinstance(operand, tuple) else (operand,))]
    if op == "in":  # a listed value that does not parse equals nothing: the others count
        wanted = frozenset(item for item in items if item is not None)
        return lambda value: value is not None and value in wanted
    if operand is None or any(item is None for item in items):
        return _never
    if op == "between" and kind in _ORDERED and len(items) == 2:
        low, high = items
        return lambda value: (
            type(value) is type(low) and low <= value <= high  # type: ignore[operator]
        )
    if op in ("before", "after") and kind != "date":
        return _never  # words for days only
    compare = _COMPARISONS.get(op) if kind in _ORDERED or op == "equals" else None
    if compare is None or len(items) != 1:
        return _never
    single = items[0]
    return lambda value: type(value) is type(single) and compare(value, single)


_COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "equals": lambda a, b: a == b,
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "after": lambda a, b: a > b,  # type: ignore[operator]
    "gte": lambda a, b: a >= b,  # type: ignore[operator]
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "before": lambda a, b: a < b,  # type: ignore[operator]
    "lte": lambda a, b: a <= b,  # type: ignore[operator]
}


def _membership_test(rule: MembershipRule) -> Callable[[Subscriber], bool]:
    name = rule.list_
    active = rule.op in ("active_in", "not_active_in")
    negated = rule.op.startswith("not_")

    def test(subscriber: Subscriber) -> bool:
        status = subscriber.list_status(name)
        found = status is not None and (not active or status == "active")
        return found is not negated

    return test


def _window(rule: BehaviourRule, now: date) -> date | None:
    """The first day a ``within`` window counts (None: no window)."""
    return now - timedelta(days=rule.within.days) if rule.within is not None else None


def _behaviour_test(rule: BehaviourRule, now: date) -> Callable[[Subscriber], bool]:
    kind = "opened" if rule.event in ("opened", "not_opened") else "clicked"
    negated = rule.event.startswith("not_")
    start = _window(rule, now)

    def test(subscriber: Subscriber) -> bool:
        happened = any(
            e.campaign == rule.campaign
            and e.event == kind
            and e.on <= now
            and (start is None or e.on >= start)
            for e in subscriber.events
        )
        return happened is not negated

    return test


# --- explanations ---------------------------------------------------------------------------

_WORDS = {True: "a member", False: "not a member", None: "undecided"}


def explain(subscriber: Subscriber, decision: Decision) -> str:
    """``bob@x.org: not a member, because email contains "@gmail.com" is false``, with
    what the subscriber holds in parentheses where the rule alone does not say it."""
    verdict = decision.verdict
    if verdict is None:
        because = f"{render(decision.rule)} cannot be evaluated here (it is the platform's own)"
    else:
        because = f"{render(decision.rule)} is {'true' if verdict else 'false'}"
    detail = f" ({decision.detail})" if decision.detail else ""
    return f"{subscriber.email}: {_WORDS[verdict]}, because {because}{detail}"


def _shown(value: Typed) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{option}"' for option in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value) if isinstance(value, Decimal) else value.isoformat()


def _detail(rule: Rule, subscriber: Subscriber) -> str:
    """What the subscriber holds that the rule tested (nothing for ``email``, which the
    explanation starts with)."""
    if isinstance(rule, FieldRule):
        name = rule.field.casefold()
        if name == "email":
            return ""
        value = subscriber.values.get(name)
        return f"{rule.field} is empty" if value is None else f"{rule.field} is {_shown(value)}"
    if isinstance(rule, MembershipRule):
        status = subscriber.list_status(rule.list_)
        if status is None:
            return f'no record in list "{rule.list_}"'
        return f'{status} in list "{rule.list_}"'
    if isinstance(rule, BehaviourRule):
        kind = "opened" if rule.event in ("opened", "not_opened") else "clicked"
        days = sorted(
            e.on for e in subscriber.events if e.campaign == rule.campaign and e.event == kind
        )
        if not days:
            return f"never {kind} {rule.campaign}"
        return f"last {kind} {rule.campaign} on {days[-1].isoformat()}"
    return ""
