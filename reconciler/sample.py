"""Sample subscribers: read from their documents, checked against their list, grouped.

A sample subscriber is written with the keys of a tests file's ``subscribers:`` entries
(``list``, ``email``, ``status``, ``date_subscribed``, ``fields``, ``lists``, ``events``,
...); :func:`read_subscriber` checks one against the list it names and parses its values
for their field types, reporting every problem at its path inside the entry. A
:class:`Sample` holds subscribers by target and list, each with the clock its behaviour
rules are evaluated against, and answers who a segment (or a plan's change) selects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from .errormap import did_you_mean
from .evaluate import Predicate, compile_segment
from .model import STANDARD_FIELDS, MailingList, Rule, Scalar
from .plan import Change
from .provider import Problem
from .subscriber import Event, Subscriber, Typed, parse_date, typed_value

__all__ = [
    "MAX_SUBSCRIBERS",
    "STATUSES",
    "EventDoc",
    "Members",
    "Sample",
    "SubscriberDoc",
    "change_members",
    "field_types",
    "read_subscriber",
]

MAX_SUBSCRIBERS = 10_000
"""Most sample subscribers one file may hold (tests files are written by hand)."""

STATUSES = ("active", "unconfirmed", "unsubscribed", "bounced", "complained", "deleted")
"""A subscriber's status in a list (the standard field ``status``, and ``lists:``)."""

_TEXT_FIELDS = ("email", "name", "first_name", "last_name")
_OPTION_TYPES = frozenset({"select", "multiselect"})


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EventDoc(_Doc):
    """``{campaign: spring-launch, event: opened, on: 2025-05-20}``"""

    campaign: StrictStr = Field(min_length=1)
    event: StrictStr
    on: StrictStr

    @field_validator("campaign", mode="before")
    @classmethod
    def _campaign_id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SubscriberDoc(_Doc):
    """One sample subscriber as written."""

    list_: StrictStr = Field(alias="list", min_length=1)
    target: StrictStr | None = Field(default=None, min_length=1)
    email: StrictStr = Field(min_length=1)
    name: StrictStr | None = None
    first_name: StrictStr | None = None
    last_name: StrictStr | None = None
    status: StrictStr = "active"
    date_subscribed: StrictStr | None = None
    fields: dict[StrictStr, Scalar | list[Scalar] | None] = Field(default_factory=dict)
    lists: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    events: tuple[EventDoc, ...] = ()


def field_types(mailing_list: MailingList) -> dict[str, str]:
    """A list's custom fields: casefolded name -> type."""
    return {item.name.casefold(): item.type for item in mailing_list.fields}


def _status(value: str, where: tuple[str | int, ...], problems: list[Problem]) -> str:
    folded = value.strip().casefold()
    if folded not in STATUSES:
        hint = did_you_mean(value, STATUSES) or f" (statuses: {', '.join(STATUSES)})"
        problems.append(Problem(where, f'unknown status "{value}"{hint}'))
    return folded


def read_subscriber(
    doc: SubscriberDoc, mailing_list: MailingList, now: date | None, target: str | None = None
) -> tuple[Subscriber, list[Problem]]:
    """``doc`` as a subscriber of ``mailing_list``, and every problem found in it (paths
    inside the entry). ``now``, when given, is the latest day an event may have."""
    problems: list[Problem] = []
    values: dict[str, Typed] = {}
    for name in _TEXT_FIELDS:
        text = getattr(doc, name)
        if text:
            values[name] = text
    if doc.date_subscribed is not None and doc.date_subscribed != "":
        day = parse_date(doc.date_subscribed)
        if day is None:
            message = f'date_subscribed "{doc.date_subscribed}" is not an ISO date (YYYY-MM-DD)'
            problems.append(Problem(("date_subscribed",), message))
        else:
            values["date_subscribed"] = day
    status = _status(doc.status, ("status",), problems)
    values["status"] = status
    values.update(_custom_values(doc, mailing_list, problems))
    lists = {
        name.casefold(): _status(value, ("lists", name), problems)
        for name, value in doc.lists.items()
    }
    events = tuple(_events(doc.events, now, problems))
    subscriber = Subscriber(
        email=doc.email,
        list=mailing_list.name,
        status=status,
        values=values,
        lists=lists,
        events=events,
        target=target or mailing_list.target,
    )
    return subscriber, problems


def _custom_values(
    doc: SubscriberDoc, mailing_list: MailingList, problems: list[Problem]
) -> dict[str, Typed]:
    declared = {item.name.casefold(): item for item in mailing_list.fields}
    values: dict[str, Typed] = {}
    seen: dict[str, str] = {}
    for name, raw in doc.fields.items():
        where: tuple[str | int, ...] = ("fields", name)
        folded = name.casefold()
        if folded in STANDARD_FIELDS:
            message = f'"{name}" is a standard field: give it as a key of the subscriber'
            problems.append(Problem(where, message))
            continue
        definition = declared.get(folded)
        if definition is None:
            known = [item.name for item in mailing_list.fields]
            hint = did_you_mean(name, known) or f' (list "{mailing_list.name}" declares ' + (
                ", ".join(f'"{k}"' for k in known) + ")" if known else "no custom fields)"
            )
            problems.append(Problem(where, f'unknown field "{name}"{hint}'))
            continue
        if folded in seen:
            problems.append(Problem(where, f'field "{name}" is given twice (as "{seen[folded]}")'))
            continue
        seen[folded] = name
        try:
            value = typed_value(definition.type, raw)
        except ValueError as exc:
            message = f'field "{name}" is a {definition.type} field: {exc}'
            problems.append(Problem(where, message))
            continue
        if value is None:
            continue
        problem = _option_problem(definition.name, definition.type, definition.options, value)
        if problem is not None:
            problems.append(Problem(where, problem))
        values[folded] = value
    return values


def _option_problem(name: str, kind: str, options: Sequence[str], value: Typed) -> str | None:
    """Why a select or multiselect value is none of the field's declared options."""
    if kind not in _OPTION_TYPES or not options:
        return None
    allowed = {option.casefold() for option in options}
    given = value if isinstance(value, tuple) else (str(value),)
    wrong = [item for item in given if item.casefold() not in allowed]
    if not wrong:
        return None
    return f'"{wrong[0]}" is not an option of field "{name}" (options: {", ".join(options)})'


def _events(docs: Sequence[EventDoc], now: date | None, problems: list[Problem]) -> Iterable[Event]:
    for index, doc in enumerate(docs):
        where: tuple[str | int, ...] = ("events", index)
        if doc.event not in ("opened", "clicked"):
            message = f'event "{doc.event}" is not one of: opened, clicked'
            problems.append(Problem((*where, "event"), message))
            continue
        day = parse_date(doc.on)
        if day is None:
            problems.append(Problem((*where, "on"), f'"{doc.on}" is not an ISO date (YYYY-MM-DD)'))
            continue
        if now is not None and day > now:
            message = f"the event is on {day.isoformat()}, after now ({now.isoformat()})"
            problems.append(Problem((*where, "on"), message))
            continue
        yield Event(doc.campaign, doc.event, day)


# --- who a segment selects ------------------------------------------------------------------


@dataclass(frozen=True)
class Members:
    """Who a segment selects among a list's sample subscribers."""

    members: frozenset[str]
    """Emails of the subscribers it selects (as written)."""
    undecided: frozenset[str] = frozenset()
    """Emails a ``native:`` rule would decide."""
    total: int = 0
    """Sample subscribers of the list."""

    @property
    def count(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Sample:
    """Sample subscribers by ``(target, list)``, each with its clock (``now``)."""

    subscribers: Mapping[tuple[str, str], tuple[tuple[Subscriber, date], ...]] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, entries: Iterable[tuple[Subscriber, date]]) -> Sample:
        grouped: dict[tuple[str, str], list[tuple[Subscriber, date]]] = {}
        for subscriber, now in entries:
            grouped.setdefault((subscriber.target or "", subscriber.list), []).append(
                (subscriber, now)
            )
        return cls({key: tuple(found) for key, found in grouped.items()})

    def of_list(self, target: str, list_name: str) -> tuple[tuple[Subscriber, date], ...]:
        return self.subscribers.get((target, list_name), ())

    def members(
        self,
        target: str,
        list_name: str,
        match: str,
        rules: Sequence[Rule],
        types: Mapping[str, str],
    ) -> Members:
        """Who ``match``/``rules`` select among the list's sample subscribers (``types``:
        its custom fields, see :func:`field_types`)."""
        found = self.of_list(target, list_name)
        chosen: set[str] = set()
        undecided: set[str] = set()
        compiled: dict[date, Predicate] = {}
        for subscriber, now in found:
            predicate = compiled.get(now)
            if predicate is None:
                predicate = compiled[now] = compile_segment(match, rules, types, now)
            verdict = predicate.verdict(subscriber)
            if verdict is None:
                undecided.add(subscriber.email)
            elif verdict:
                chosen.add(subscriber.email)
        return Members(frozenset(chosen), frozenset(undecided), len(found))


def change_members(
    change: Change, sample: Sample, lists: Mapping[tuple[str, str], MailingList]
) -> tuple[Members | None, Members | None]:
    """The sample members of a plan's segment change before and after it: ``before`` from
    the live segment's rules (None for a create), ``after`` from the declared segment's
    (None for a delete). ``lists`` maps ``(target, name)`` to the declared list, whose
    custom fields type the values (a list not declared types nothing: text)."""
    declared = lists.get((change.target, change.list))
    types = field_types(declared) if declared is not None else {}
    before = after = None
    if change.before is not None:
        live = change.before
        before = sample.members(change.target, change.list, live.match, live.rules, types)
    if change.after is not None:
        segment = change.after
        after = sample.members(change.target, change.list, segment.match, segment.rules, types)
    return before, after
