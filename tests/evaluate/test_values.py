"""Parsing values for their field types: what parses, and what is refused with why."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from reconciler.subscriber import parse_boolean, parse_date, parse_number, typed_value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, Decimal(5)),
        (5.5, Decimal("5.5")),
        ("-2e3", Decimal("-2000")),
        (" 7 ", Decimal(7)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("1_000", None),
        ("NaN", None),
        ("Infinity", None),
        ("", None),
        (True, None),
        (None, None),
        ("1e99999", None),
    ],
)
def test_parse_number(raw: object, expected: Decimal | None) -> None:
    assert parse_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01", date(2024, 3, 1)),
        ("2024-03-01T10:00", date(2024, 3, 1)),
        ("2024-03-01 10:00:05.123+02:00", date(2024, 3, 1)),
        ("2024-03-01T23:59:59Z", date(2024, 3, 1)),
        ("2024-02-30", None),
        ("20240301", None),
        ("2024-3-1", None),
        ("yesterday", None),
        (20240301, None),
    ],
)
def test_parse_date(raw: object, expected: date | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), ("Yes", True), (1, True), ("false", False), (0, False), ("maybe", None)],
)
def test_parse_boolean(raw: object, expected: bool | None) -> None:
    assert parse_boolean(raw) is expected


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("text", 5, "5"),
        ("text", "", None),
        ("select", "Weekly", "Weekly"),
        ("number", "5", Decimal(5)),
        ("date", "2024-01-01", date(2024, 1, 1)),
        ("boolean", "no", False),
        ("multiselect", ["A", 5], ("A", "5")),
        ("multiselect", "A", ("A",)),
        ("multiselect", [], None),
        ("multiselect", ["", ""], None),
        ("number", None, None),
    ],
)
def test_typed_value(kind: str, raw: object, expected: object) -> None:
    assert typed_value(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        ("number", "lots", 'expected a number, not "lots"'),
        ("number", True, "expected a number, not true"),
        ("date", "2024-02-30", 'expected an ISO date (YYYY-MM-DD), not "2024-02-30"'),
        ("boolean", "maybe", 'expected true or false, not "maybe"'),
        ("text", ["a"], "a text value is a single value, not a list or a mapping"),
        ("multiselect", [{"a": 1}], "a multiselect value is an option or a list of options"),
    ],
)
def test_typed_value_refuses_what_does_not_parse(kind: str, raw: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        typed_value(kind, raw)
