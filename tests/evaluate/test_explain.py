"""Explanations: the leaf rule that decided a verdict, in the issue's one-line format."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.evaluate import compile_segment, explain

from .support import NOW, TYPES, rules, subscriber

GMAIL = {"field": "email", "op": "contains", "value": "@gmail.com"}
WEEKLY = {"field": "Frequency", "op": "equals", "value": "Weekly"}


def _line(match: str, members: list[dict[str, Any]], **person: Any) -> str:
    found_match, found = rules(*members, match=match)
    predicate = compile_segment(found_match, found, TYPES, NOW)
    who = subscriber(**person)
    return explain(who, predicate.decide(who))


@pytest.mark.parametrize(
    ("match", "members", "person", "line"),
    [
        (
            "all",
            [GMAIL, WEEKLY],
            {"email": "bob@x.org"},
            'bob@x.org: not a member, because email contains "@gmail.com" is false',
        ),
        (
            "all",
            [GMAIL, WEEKLY],
            {"email": "ann@gmail.com", "frequency": "Monthly"},
            'ann@gmail.com: not a member, because Frequency equals "Weekly" is false'
            ' (Frequency is "Monthly")',
        ),
        (
            "all",
            [GMAIL, WEEKLY],
            {"email": "ann@gmail.com", "frequency": "weekly"},
            'ann@gmail.com: a member, because email contains "@gmail.com" is true',
        ),
        (
            "any",
            [WEEKLY, GMAIL],
            {"email": "ann@gmail.com"},
            'ann@gmail.com: a member, because email contains "@gmail.com" is true',
        ),
        (
            "any",
            [WEEKLY, {"all": [GMAIL, {"field": "Score", "op": "gt", "value": 5}]}],
            {"email": "ann@gmail.com"},
            'ann@gmail.com: not a member, because Frequency equals "Weekly" is false'
            " (Frequency is empty)",
        ),
        (
            "all",
            [{"list": "VIP", "op": "not_in"}],
            {"lists": {"VIP": "unsubscribed"}},
            'ann@x.org: not a member, because not in list "VIP" is false'
            ' (unsubscribed in list "VIP")',
        ),
        (
            "all",
            [{"list": "VIP", "op": "active_in"}],
            {},
            'ann@x.org: not a member, because active in list "VIP" is false'
            ' (no record in list "VIP")',
        ),
        (
            "all",
            [{"campaign": "c1", "event": "opened", "within": {"days": 30}}],
            {"events": (("c1", "opened", "2025-03-01"), ("c1", "opened", "2025-01-01"))},
            "ann@x.org: not a member, because opened campaign c1 within 30 days is false"
            " (last opened c1 on 2025-03-01)",
        ),
        (
            "all",
            [{"campaign": "c1", "event": "not_clicked"}],
            {},
            "ann@x.org: a member, because not clicked campaign c1 is true (never clicked c1)",
        ),
        (
            "all",
            [GMAIL, {"native": {"RuleType": "X"}}],
            {"email": "ann@gmail.com"},
            'ann@gmail.com: undecided, because native {"RuleType": "X"} cannot be evaluated'
            " here (it is the platform's own)",
        ),
        (
            "all",
            [
                {"field": "Tags", "op": "contains", "value": "News"},
                {"field": "Score", "op": "gt", "value": 1},
            ],
            {"tags": ["Weekly", "News"], "score": 0.5},
            "ann@x.org: not a member, because Score > 1 is false (Score is 0.5)",
        ),
        (
            "all",
            [
                {"field": "Flag", "op": "equals", "value": True},
                {"field": "Joined", "op": "before", "value": "2024-01-01"},
            ],
            {"flag": True, "joined": "2024-05-01"},
            'ann@x.org: not a member, because Joined before "2024-01-01" is false'
            " (Joined is 2024-05-01)",
        ),
        (
            "all",
            [
                {"field": "Tags", "op": "not_contains", "value": "News"},
                {"field": "Flag", "op": "equals", "value": True},
            ],
            {"tags": ["Weekly", "News"], "flag": False},
            'ann@x.org: not a member, because Tags does not contain "News" is false'
            ' (Tags is ["Weekly", "News"])',
        ),
    ],
)
def test_explanation_names_the_first_deciding_leaf(
    match: str, members: list[dict[str, Any]], person: dict[str, Any], line: str
) -> None:
    assert _line(match, members, **person) == line


def test_explanation_of_a_boolean_value_says_true_or_false() -> None:
    line = _line("all", [{"field": "Flag", "op": "equals", "value": False}], flag=True)
    assert line.endswith("(Flag is true)")
