"""Sample subscribers: read against their list, and who a segment or a change selects."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from reconciler.model import LiveSegment, MailingList, Segment
from reconciler.plan import Action, Change
from reconciler.sample import Sample, SubscriberDoc, change_members, read_subscriber

LIST = MailingList.model_validate(
    {
        "name": "Newsletter",
        "target": "local",
        "fields": [
            {"name": "Frequency", "type": "select", "options": ["Weekly", "Monthly"]},
            {"name": "Score", "type": "number"},
            {"name": "Tags", "type": "multiselect", "options": ["A", "B"]},
        ],
    }
)
NOW = date(2025, 6, 1)


def _read(**data: Any) -> tuple[Any, list[tuple[tuple[str | int, ...], str]]]:
    doc = SubscriberDoc.model_validate({"list": "Newsletter", "email": "ann@x.org", **data})
    subscriber, problems = read_subscriber(doc, LIST, NOW)
    return subscriber, [(p.path, p.message) for p in problems]


def test_read_subscriber_parses_values_for_their_types() -> None:
    subscriber, problems = _read(
        status="Unsubscribed",
        first_name="Ann",
        date_subscribed="2024-03-01",
        fields={"frequency": "weekly", "Score": "5", "Tags": ["a"]},
        lists={"VIP": "Active"},
        events=[{"campaign": 42, "event": "opened", "on": "2025-05-20"}],
    )
    assert problems == []
    assert subscriber.status == "unsubscribed"
    assert subscriber.target == "local"
    assert subscriber.values["frequency"] == "weekly"
    assert subscriber.values["date_subscribed"] == date(2024, 3, 1)
    assert subscriber.lists == {"vip": "active"}
    assert subscriber.events[0].campaign == "42"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"status": "gone"}, [(("status",), 'unknown status "gone" (statuses: ')]),
        ({"status": "actve"}, [(("status",), 'unknown status "actve" (did you mean "active"?)')]),
        ({"date_subscribed": "2024-13-01"}, [(("date_subscribed",), 'date_subscribed "2024-13')]),
        ({"fields": {"Email": "x"}}, [(("fields", "Email"), '"Email" is a standard field')]),
        (
            {"fields": {"Frequncy": "x"}},
            [(("fields", "Frequncy"), 'unknown field "Frequncy" (did')],
        ),
        ({"fields": {"Zzz": "x"}}, [(("fields", "Zzz"), 'unknown field "Zzz" (list "Newsletter"')]),
        ({"fields": {"Score": "x"}}, [(("fields", "Score"), 'field "Score" is a number field')]),
        (
            {"fields": {"Frequency": "Daily"}},
            [(("fields", "Frequency"), '"Daily" is not an option of field "Frequency"')],
        ),
        ({"fields": {"Tags": ["A", "C"]}}, [(("fields", "Tags"), '"C" is not an option')]),
        (
            {"fields": {"Score": 1, "score": 2}},
            [(("fields", "score"), 'field "score" is given twice (as "Score")')],
        ),
        ({"lists": {"VIP": "nope"}}, [(("lists", "VIP"), 'unknown status "nope"')]),
        (
            {"events": [{"campaign": "c", "event": "sent", "on": "2025-01-01"}]},
            [(("events", 0, "event"), 'event "sent" is not one of: opened, clicked')],
        ),
        (
            {"events": [{"campaign": "c", "event": "opened", "on": "2025-06-02"}]},
            [(("events", 0, "on"), "the event is on 2025-06-02, after now (2025-06-01)")],
        ),
        (
            {"events": [{"campaign": "c", "event": "opened", "on": "May"}]},
            [(("events", 0, "on"), '"May" is not an ISO date')],
        ),
    ],
)
def test_read_subscriber_reports_each_problem_at_its_path(
    data: dict[str, Any], expected: list[tuple[tuple[str | int, ...], str]]
) -> None:
    _, problems = _read(**data)
    assert [
        (path, message[: len(prefix)])
        for (path, message), (_, prefix) in zip(problems, expected, strict=True)
    ] == expected


def _segment(*rules: dict[str, Any]) -> Segment:
    return Segment.model_validate({"name": "S", "rules": list(rules)})


def _sample() -> Sample:
    people = [
        _read(email="ann@x.org", fields={"Frequency": "Weekly"})[0],
        _read(email="bob@x.org", fields={"Frequency": "Monthly"})[0],
        _read(email="cy@x.org")[0],
    ]
    return Sample.of((person, NOW) for person in people)


def test_sample_members_of_a_segment() -> None:
    weekly = _segment({"field": "Frequency", "op": "equals", "value": "weekly"})
    found = _sample().members(
        "local", "Newsletter", weekly.match, weekly.rules, {"frequency": "select"}
    )
    assert found.members == frozenset({"ann@x.org"})
    assert (found.count, found.total, found.undecided) == (1, 3, frozenset())
    other = _sample().members("local", "Other", weekly.match, weekly.rules, {})
    assert (other.count, other.total) == (0, 0)


def test_sample_members_counts_undecided_subscribers() -> None:
    native = _segment({"native": {"RuleType": "X"}})
    found = _sample().members("local", "Newsletter", native.match, native.rules, {})
    assert found.members == frozenset()
    assert found.undecided == frozenset({"ann@x.org", "bob@x.org", "cy@x.org"})


def test_change_members_before_and_after_an_update() -> None:
    after = _segment({"field": "Frequency", "op": "not_empty"})
    before = LiveSegment.model_validate(
        {
            "id": "7",
            "name": "S",
            "rules": [{"field": "Frequency", "op": "equals", "value": "Weekly"}],
        }
    )
    lists = {("local", "Newsletter"): LIST}
    update = Change(
        action=Action.UPDATE_SEGMENT, target="local", list="Newsletter", before=before, after=after
    )
    was, will = change_members(update, _sample(), lists)
    assert was is not None and will is not None
    assert (was.members, will.members) == (
        frozenset({"ann@x.org"}),
        frozenset({"ann@x.org", "bob@x.org"}),
    )
    create = update.model_copy(update={"action": Action.CREATE_SEGMENT, "before": None})
    assert change_members(create, _sample(), lists)[0] is None
    delete = update.model_copy(update={"action": Action.DELETE_SEGMENT, "after": None})
    assert change_members(delete, _sample(), lists)[1] is None
