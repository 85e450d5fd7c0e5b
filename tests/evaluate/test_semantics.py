"""The evaluator's documented semantics, operator by operator and type by type."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from reconciler.evaluate import compile_segment

from .support import NOW, TYPES, rules, subscriber, verdict

TEXT_CASES = [
    # (rule, fields of the subscriber, verdict)
    ({"field": "email", "op": "contains", "value": "@GMAIL.com"}, {}, True),
    ({"field": "email", "op": "ends_with", "value": "@x.org"}, {}, False),
    ({"field": "Source", "op": "equals", "value": "WEBINAR"}, {"source": "Webinar"}, True),
    ({"field": "source", "op": "equals", "value": "webinar"}, {"source": "webinars"}, False),
    ({"field": "Source", "op": "not_equals", "value": "webinar"}, {}, True),
    ({"field": "Source", "op": "equals", "value": ""}, {}, True),
    ({"field": "Source", "op": "contains", "value": "BIN"}, {"source": "webinar"}, True),
    ({"field": "Source", "op": "not_contains", "value": "bin"}, {"source": "webinar"}, False),
    ({"field": "Source", "op": "not_contains", "value": "bin"}, {}, True),
    ({"field": "Source", "op": "starts_with", "value": "Web"}, {"source": "webinar"}, True),
    ({"field": "Source", "op": "starts_with", "value": "bin"}, {"source": "webinar"}, False),
    ({"field": "Source", "op": "ends_with", "value": "NAR"}, {"source": "webinar"}, True),
    ({"field": "Source", "op": "in", "value": ["Ads", "WEBINAR"]}, {"source": "webinar"}, True),
    ({"field": "Source", "op": "in", "value": ["Ads"]}, {}, False),
    ({"field": "Source", "op": "not_in", "value": ["Ads"]}, {}, True),
    ({"field": "Source", "op": "empty"}, {}, True),
    ({"field": "Source", "op": "empty"}, {"source": ""}, True),
    ({"field": "Source", "op": "empty"}, {"source": "x"}, False),
    ({"field": "Source", "op": "not_empty"}, {"source": "x"}, True),
    ({"field": "Source", "op": "gt", "value": "a"}, {"source": "b"}, False),
    ({"field": "Source", "op": "equals", "value": 5}, {"source": "5"}, True),
    ({"field": "first_name", "op": "equals", "value": "ann"}, {"first_name": "ANN"}, True),
    ({"field": "Frequency", "op": "equals", "value": "weekly"}, {"frequency": "Weekly"}, True),
    ({"field": "Frequency", "op": "not_equals", "value": "weekly"}, {}, True),
    ({"field": "unknown", "op": "empty"}, {}, True),
]

NUMBER_CASES = [
    ({"field": "Score", "op": "equals", "value": "5"}, {"score": 5.0}, True),
    ({"field": "Score", "op": "equals", "value": 5}, {"score": "5.00"}, True),
    ({"field": "Score", "op": "gt", "value": 5}, {"score": 5}, False),
    ({"field": "Score", "op": "gte", "value": 5}, {"score": 5}, True),
    ({"field": "Score", "op": "lt", "value": "10"}, {"score": 9.5}, True),
    ({"field": "Score", "op": "lte", "value": 9}, {"score": 9.5}, False),
    ({"field": "Score", "op": "gt", "value": 9}, {"score": 10}, True),  # not text: "10" < "9"
    ({"field": "Score", "op": "between", "value": [1, 5]}, {"score": 5}, True),
    ({"field": "Score", "op": "between", "value": [1, 5]}, {"score": 1}, True),
    ({"field": "Score", "op": "between", "value": [1, 5]}, {"score": 5.01}, False),
    ({"field": "Score", "op": "between", "value": [5, 1]}, {"score": 3}, False),
    ({"field": "Score", "op": "in", "value": [1, "7.0"]}, {"score": 7}, True),
    ({"field": "Score", "op": "not_in", "value": [1, 2]}, {}, True),
    ({"field": "Score", "op": "gt", "value": 0}, {}, False),
    ({"field": "Score", "op": "not_equals", "value": 0}, {}, True),
    ({"field": "Score", "op": "gt", "value": "lots"}, {"score": 5}, False),
    ({"field": "Score", "op": "not_equals", "value": "lots"}, {"score": 5}, True),
    ({"field": "Score", "op": "empty"}, {}, True),
    ({"field": "Score", "op": "after", "value": 1}, {"score": 5}, False),
    ({"field": "Score", "op": "empty"}, {"score": 0}, False),
]

DATE_CASES = [
    ({"field": "date_subscribed", "op": "after", "value": "2024-01-01"}, "2024-01-02", True),
    ({"field": "date_subscribed", "op": "after", "value": "2024-01-01"}, "2024-01-01", False),
    ({"field": "date_subscribed", "op": "before", "value": "2024-01-01"}, "2023-12-31", True),
    ({"field": "date_subscribed", "op": "gte", "value": "2024-01-01"}, "2024-01-01", True),
    ({"field": "date_subscribed", "op": "lt", "value": "2024-01-01"}, "2024-01-01", False),
    ({"field": "date_subscribed", "op": "equals", "value": "2024-01-01"}, "2024-01-01", True),
    ({"field": "date_subscribed", "op": "equals", "value": "2024-01-01T23:59"}, "2024-01-01", True),
    (
        {"field": "date_subscribed", "op": "equals", "value": "2024-01-01"},
        "2024-01-01 10:30:00Z",
        True,
    ),
    (
        {"field": "date_subscribed", "op": "between", "value": ["2024-01-01", "2024-12-31"]},
        "2024-12-31",
        True,
    ),
    (
        {"field": "date_subscribed", "op": "between", "value": ["2024-01-01", "2024-12-31"]},
        "2025-01-01",
        False,
    ),
    ({"field": "date_subscribed", "op": "after", "value": "soon"}, "2024-01-02", False),
    ({"field": "date_subscribed", "op": "after", "value": "2024-02-30"}, "2024-03-02", False),
    ({"field": "date_subscribed", "op": "not_equals", "value": "2024-01-01"}, None, True),
    ({"field": "date_subscribed", "op": "before", "value": "2024-01-01"}, None, False),
    ({"field": "Joined", "op": "lte", "value": "2024-06-30"}, None, False),
]


@pytest.mark.parametrize(("rule", "fields", "expected"), TEXT_CASES)
def test_text_and_select_compare_case_insensitively(
    rule: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    assert verdict(rule, subscriber("ann@gmail.com", **fields)) is expected


@pytest.mark.parametrize(("rule", "fields", "expected"), NUMBER_CASES)
def test_numbers_compare_numerically(
    rule: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    assert verdict(rule, subscriber(**fields)) is expected


@pytest.mark.parametrize(("rule", "day", "expected"), DATE_CASES)
def test_dates_compare_as_days(rule: dict[str, Any], day: str | None, expected: bool) -> None:
    person = subscriber(date_subscribed=day) if day else subscriber()
    assert verdict(rule, person) is expected


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ({"field": "Flag", "op": "equals", "value": True}, True, True),
        ({"field": "Flag", "op": "equals", "value": "yes"}, "TRUE", True),
        ({"field": "Flag", "op": "equals", "value": False}, 1, False),
        ({"field": "Flag", "op": "not_equals", "value": False}, None, True),
        ({"field": "Flag", "op": "equals", "value": "maybe"}, True, False),
        ({"field": "Flag", "op": "empty"}, None, True),
    ],
)
def test_booleans(rule: dict[str, Any], value: object, expected: bool) -> None:
    person = subscriber(flag=value) if value is not None else subscriber()
    assert verdict(rule, person) is expected


@pytest.mark.parametrize(
    ("rule", "options", "expected"),
    [
        ({"field": "Tags", "op": "contains", "value": "weekly"}, ["Weekly", "News"], True),
        ({"field": "Tags", "op": "contains", "value": "Week"}, ["Weekly"], False),
        ({"field": "Tags", "op": "not_contains", "value": "News"}, ["Weekly"], True),
        ({"field": "Tags", "op": "in", "value": ["A", "news"]}, ["Weekly", "News"], True),
        ({"field": "Tags", "op": "not_in", "value": ["A", "B"]}, ["Weekly"], True),
        ({"field": "Tags", "op": "empty"}, [], True),
        ({"field": "Tags", "op": "not_empty"}, ["Weekly"], True),
        ({"field": "Tags", "op": "starts_with", "value": "wee"}, ["News", "Weekly"], True),
    ],
)
def test_multiselect_options(rule: dict[str, Any], options: list[str], expected: bool) -> None:
    assert verdict(rule, subscriber(tags=options)) is expected


@pytest.mark.parametrize(
    ("rule", "status", "expected"),
    [
        ({"field": "status", "op": "equals", "value": "Active"}, "active", True),
        ({"field": "status", "op": "not_equals", "value": "active"}, "unsubscribed", True),
        ({"field": "status", "op": "in", "value": ["bounced", "unsubscribed"]}, "active", False),
    ],
)
def test_status_is_a_select_field(rule: dict[str, Any], status: str, expected: bool) -> None:
    assert verdict(rule, subscriber(status=status)) is expected


@pytest.mark.parametrize(
    ("op", "lists", "expected"),
    [
        ("in", {"VIP": "active"}, True),
        ("in", {"vip": "unsubscribed"}, True),
        ("in", {}, False),
        ("not_in", {"VIP": "bounced"}, False),
        ("not_in", {}, True),
        ("active_in", {"VIP": "active"}, True),
        ("active_in", {"VIP": "unsubscribed"}, False),
        ("not_active_in", {"VIP": "unsubscribed"}, True),
        ("not_active_in", {"Vip": "active"}, False),
    ],
)
def test_membership_of_another_list(op: str, lists: dict[str, str], expected: bool) -> None:
    assert verdict({"list": "VIP", "op": op}, subscriber(lists=lists)) is expected


def test_membership_of_the_subscribers_own_list_uses_its_status() -> None:
    person = subscriber(status="unsubscribed")
    assert verdict({"list": "newsletter", "op": "in"}, person) is True
    assert verdict({"list": "Newsletter", "op": "active_in"}, person) is False


@pytest.mark.parametrize(
    ("rule", "events", "expected"),
    [
        ({"campaign": "c1", "event": "opened"}, [("c1", "opened", "2020-01-01")], True),
        ({"campaign": "c1", "event": "opened"}, [("C1", "opened", "2025-05-01")], False),
        ({"campaign": "c1", "event": "opened"}, [("c1", "clicked", "2025-05-01")], False),
        ({"campaign": "c1", "event": "clicked"}, [("c1", "clicked", "2025-05-01")], True),
        ({"campaign": "c1", "event": "not_opened"}, [], True),
        ({"campaign": "c1", "event": "not_clicked"}, [("c1", "clicked", "2025-05-01")], False),
        # within 30 days of 2025-06-01: on or after 2025-05-02
        (
            {"campaign": "c1", "event": "opened", "within": {"days": 30}},
            [("c1", "opened", "2025-05-02")],
            True,
        ),
        (
            {"campaign": "c1", "event": "opened", "within": {"days": 30}},
            [("c1", "opened", "2025-05-01")],
            False,
        ),
        (
            {"campaign": "c1", "event": "not_opened", "within": {"days": 30}},
            [("c1", "opened", "2025-05-01")],
            True,
        ),
        # an event after now has not happened yet
        ({"campaign": "c1", "event": "opened"}, [("c1", "opened", "2025-06-02")], False),
        ({"campaign": 42, "event": "opened"}, [("42", "opened", "2025-06-01")], True),
    ],
)
def test_behaviour_against_now(
    rule: dict[str, Any], events: list[tuple[str, str, str]], expected: bool
) -> None:
    assert verdict(rule, subscriber(events=tuple(events))) is expected


def test_within_counts_back_from_the_given_now() -> None:
    person = subscriber(events=(("c1", "opened", "2025-05-01"),))
    rule = {"campaign": "c1", "event": "opened", "within": {"days": 30}}
    assert verdict(rule, person, now=date(2025, 5, 31)) is True
    assert verdict(rule, person, now=date(2025, 6, 1)) is False


NATIVE = {"native": {"RuleType": "X"}}
TRUE = {"field": "email", "op": "contains", "value": "@"}
FALSE = {"field": "email", "op": "contains", "value": "nowhere"}


@pytest.mark.parametrize(
    ("match", "members", "expected"),
    [
        ("all", [NATIVE], None),
        ("all", [NATIVE, FALSE], False),
        ("all", [NATIVE, TRUE], None),
        ("any", [NATIVE, TRUE], True),
        ("any", [NATIVE, FALSE], None),
        ("any", [FALSE, {"all": [TRUE, FALSE]}], False),
        ("all", [TRUE, {"any": [FALSE, TRUE]}], True),
    ],
)
def test_groups_combine_in_three_valued_logic(
    match: str, members: list[dict[str, Any]], expected: bool | None
) -> None:
    found_match, found = rules(*members, match=match)
    assert compile_segment(found_match, found, TYPES, NOW).verdict(subscriber()) is expected
