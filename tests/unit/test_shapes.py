"""Rule shapes: CNF/DNF conversion, flat and two-level forms, capability checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from reconciler.errors import RuleSyntaxError
from reconciler.model import Rule, Segment
from reconciler.plan import Action
from reconciler.provider import Capabilities
from reconciler.shapes import (
    MAX_TERMS,
    Problem,
    check_segment,
    count_conditions,
    describe_capabilities,
    flat,
    from_cnf,
    from_dnf,
    to_cnf,
    to_dnf,
    two_level,
)

_RULE = TypeAdapter(Rule)


def leaf(name: str) -> dict[str, Any]:
    return {"field": name, "op": "equals", "value": "1"}


a, b, c, d, e = (leaf(n) for n in "abcde")


def r(data: dict[str, Any]) -> Rule:
    return _RULE.validate_python(data)


def rs(*items: dict[str, Any]) -> tuple[Rule, ...]:
    return tuple(r(item) for item in items)


def names(clauses: tuple[tuple[Rule, ...], ...]) -> list[str]:
    """Clauses as compact text: ``["ab", "c"]`` for leaves named a, b and c."""
    return ["".join(getattr(rule, "field", "?") for rule in clause) for clause in clauses]


def ALL(*members: dict[str, Any]) -> dict[str, Any]:
    return {"all": list(members)}


def ANY(*members: dict[str, Any]) -> dict[str, Any]:
    return {"any": list(members)}


# --- CNF and DNF -------------------------------------------------------------------------

CONVERSIONS = [
    # (match, rules, cnf, dnf)
    pytest.param("all", (a,), ["a"], ["a"], id="one-leaf"),
    pytest.param("any", (a,), ["a"], ["a"], id="one-leaf-any"),
    pytest.param("all", (a, b), ["a", "b"], ["ab"], id="and"),
    pytest.param("any", (b, a), ["ab"], ["a", "b"], id="or"),
    pytest.param("any", (ALL(a, b), c), ["ac", "bc"], ["c", "ab"], id="or-of-and"),
    pytest.param("all", (ANY(a, b), c), ["c", "ab"], ["ac", "bc"], id="and-of-or"),
    pytest.param(
        "any",
        (ALL(a, b), ALL(c, d)),
        ["ac", "ad", "bc", "bd"],
        ["ab", "cd"],
        id="distribute-2x2",
    ),
    pytest.param(
        "all",
        (ANY(a, b), ANY(c, d)),
        ["ab", "cd"],
        ["ac", "ad", "bc", "bd"],
        id="distribute-2x2-dual",
    ),
    pytest.param("any", (ALL(a, b), a), ["a", "ab"], ["a", "ab"], id="member-dedup"),
    pytest.param(
        "any",
        (ALL(a, b), ALL(a, b, c)),
        ["a", "b", "ab", "ac", "bc"],
        ["ab", "abc"],
        id="clause-dedup",
    ),
    pytest.param(
        "all",
        (a, ANY(b, ALL(c, ANY(d, e)))),
        ["a", "bc", "bde"],
        ["ab", "acd", "ace"],
        id="three-levels",
    ),
    pytest.param(
        "all",
        (ANY(a, {"field": "A", "op": "equals", "value": 1}), ALL(b, b)),
        ["a", "b"],
        ["ab"],
        id="normal-form-first",
    ),
]


@pytest.mark.parametrize(("match", "rules", "cnf", "dnf"), CONVERSIONS)
def test_to_cnf(match: str, rules: tuple[dict[str, Any], ...], cnf: list[str], dnf: Any) -> None:
    assert names(to_cnf(match, rs(*rules))) == cnf


@pytest.mark.parametrize(("match", "rules", "cnf", "dnf"), CONVERSIONS)
def test_to_dnf(match: str, rules: tuple[dict[str, Any], ...], cnf: Any, dnf: list[str]) -> None:
    assert names(to_dnf(match, rs(*rules))) == dnf


def test_to_cnf_returns_normalised_leaves() -> None:
    rule = {"field": "Plan", "op": "in", "value": ["b", "a", "a"]}
    assert to_cnf("all", rs(rule)) == ((r({"field": "Plan", "op": "in", "value": ["a", "b"]}),),)


@pytest.mark.parametrize("convert", [to_cnf, to_dnf])
def test_conversion_is_deterministic(convert: Any) -> None:
    one = convert("any", rs(ALL(a, b), ALL(c, d), e))
    other = convert("any", rs(e, ALL(d, c), ALL(b, a)))
    assert one == other


@pytest.mark.parametrize(
    ("convert", "match", "rules", "limit", "message"),
    [
        pytest.param(
            to_cnf,
            "any",
            tuple(ALL(leaf(f"x{i}"), leaf(f"y{i}")) for i in range(7)),
            MAX_TERMS,
            "converting to AND-of-OR groups needs 128 groups, more than the limit of 64",
            id="cnf-groups",
        ),
        pytest.param(
            to_dnf,
            "all",
            tuple(ANY(leaf(f"x{i}"), leaf(f"y{i}")) for i in range(7)),
            MAX_TERMS,
            "converting to OR-of-AND groups needs 128 groups, more than the limit of 64",
            id="dnf-groups",
        ),
        pytest.param(
            to_cnf,
            "all",
            (a, b, c),
            2,
            "converting to AND-of-OR groups needs 3 groups, more than the limit of 2",
            id="cnf-groups-small-limit",
        ),
        pytest.param(
            to_cnf,
            "any",
            (a, b, c),
            2,
            "converting to AND-of-OR groups needs 3 conditions, more than the limit of 2",
            id="cnf-conditions",
        ),
        pytest.param(
            to_dnf,
            "any",
            tuple(ALL(leaf(f"x{i}"), leaf(f"y{i}")) for i in range(33)),
            MAX_TERMS,
            "converting to OR-of-AND groups needs 66 conditions, more than the limit of 64",
            id="dnf-conditions",
        ),
        pytest.param(
            to_cnf,
            "any",
            tuple(ALL(leaf(f"x{i}"), leaf(f"y{i}")) for i in range(7)),
            1,
            "converting to AND-of-OR groups needs more than 64 groups, more than the limit of 1",
            id="work-limit",
        ),
    ],
)
def test_conversion_limit(
    convert: Any, match: str, rules: tuple[dict[str, Any], ...], limit: int, message: str
) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        convert(match, rs(*rules), limit)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("convert", "count", "groups"), [(to_cnf, 4, 16), (to_dnf, 32, 32)], ids=["cnf", "dnf"]
)
def test_conversion_at_the_limit_succeeds(convert: Any, count: int, groups: int) -> None:
    rules = rs(*(ALL(leaf(f"x{i}"), leaf(f"y{i}")) for i in range(count)))
    clauses = convert("any", rules)
    assert (len(clauses), sum(len(clause) for clause in clauses)) == (groups, MAX_TERMS)


def test_from_cnf_builds_and_of_or() -> None:
    assert from_cnf(((r(a),), (r(b), r(c)))) == ("all", (r(a), r(ANY(b, c))))


def test_from_dnf_builds_or_of_and() -> None:
    assert from_dnf(((r(a), r(b)), (r(c),))) == ("any", (r(ALL(a, b)), r(c)))


@pytest.mark.parametrize(
    ("convert", "back"), [(to_cnf, from_cnf), (to_dnf, from_dnf)], ids=["cnf", "dnf"]
)
def test_conversion_is_a_fixpoint(convert: Any, back: Any) -> None:
    clauses = convert("all", rs(a, ANY(b, ALL(c, ANY(d, e)))))
    assert convert(*back(clauses)) == clauses


# --- flat and two-level ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "rules", "expected"),
    [
        pytest.param("all", (a,), ("all", "a"), id="one-leaf"),
        pytest.param("any", (a,), ("all", "a"), id="one-leaf-any"),
        pytest.param("any", (b, a), ("any", "ab"), id="any-list"),
        pytest.param("all", (a, ALL(b, c)), ("all", "abc"), id="same-kind-flattens"),
        pytest.param("any", (ALL(a, b),), ("all", "ab"), id="one-group"),
        pytest.param("all", (a, ANY(b)), ("all", "ab"), id="one-member-group"),
        pytest.param("all", (a, ANY(b, c)), None, id="nested"),
    ],
)
def test_flat(match: str, rules: tuple[dict[str, Any], ...], expected: Any) -> None:
    got = flat(match, rs(*rules))
    assert (None if got is None else (got[0], names((got[1],))[0])) == expected


def render_two_level(result: Any) -> Any:
    if result is None:
        return None
    outer, groups = result
    return outer, [(inner, names((leaves,))[0]) for inner, leaves in groups]


@pytest.mark.parametrize(
    ("match", "rules", "expected"),
    [
        pytest.param("all", (a,), ("all", [("any", "a")]), id="one-leaf"),
        pytest.param("all", (a, b), ("all", [("any", "a"), ("any", "b")]), id="flat-all"),
        pytest.param("any", (ALL(a, b),), ("all", [("any", "a"), ("any", "b")]), id="one-group"),
        pytest.param("all", (ANY(a, b), c), ("all", [("any", "c"), ("any", "ab")]), id="and-of-or"),
        pytest.param(
            "any",
            (ALL(a, b), ALL(c, d)),
            ("any", [("all", "ab"), ("all", "cd")]),
            id="or-of-and",
        ),
        pytest.param("all", (e, ANY(a, ALL(b, c))), None, id="three-levels"),
        pytest.param("any", (a, ALL(b, ANY(c, d))), None, id="three-levels-any"),
    ],
)
def test_two_level(match: str, rules: tuple[dict[str, Any], ...], expected: Any) -> None:
    assert render_two_level(two_level(match, rs(*rules))) == expected


@pytest.mark.parametrize(
    ("shape", "match", "rules", "count"),
    [
        ("tree", "any", (ALL(a, b), ALL(c, d)), 4),
        ("flat", "all", (a, a, b), 2),
        ("two_level", "any", (ALL(a, b), c), 3),
        ("cnf", "any", (ALL(a, b), ALL(c, d)), 8),
        ("dnf", "any", (ALL(a, b), ALL(c, d)), 4),
        ("dnf", "all", (ANY(a, b), ANY(c, d)), 8),
    ],
)
def test_count_conditions(
    shape: str, match: str, rules: tuple[dict[str, Any], ...], count: int
) -> None:
    assert count_conditions(shape, match, rs(*rules)) == count


# --- check_segment -----------------------------------------------------------------------


def caps(**overrides: Any) -> Capabilities:
    values: dict[str, Any] = {
        "shape": "tree",
        "operators": {
            "text": frozenset({"equals", "contains"}),
            "date": frozenset({"before", "after"}),
            "select": frozenset({"equals"}),
        },
        "events": frozenset({"opened", "clicked"}),
        "membership": frozenset({"in", "not_in"}),
    }
    values.update(overrides)
    return Capabilities(**values)


def segment(*rules: dict[str, Any], match: str = "all") -> Segment:
    return Segment.model_validate({"name": "S", "match": match, "rules": list(rules)})


FIELD_TYPES = {"frequency": "select", "tags": "multiselect"}
DEEP = (a, ANY(b, ALL(c, ANY(d, e))))


@pytest.mark.parametrize(
    ("rules", "capabilities", "problems"),
    [
        pytest.param((a, ANY(b, c)), caps(), [], id="text-ok"),
        pytest.param(
            ({"field": "email", "op": "before", "value": "x"},),
            caps(),
            [(("rules", 0, "op"), "operator 'before' is not supported for text field 'email'")],
            id="standard-text-field",
        ),
        pytest.param(
            (a, ANY(b, {"field": "Date_Subscribed", "op": "contains", "value": "2024"})),
            caps(),
            [
                (
                    ("rules", 1, "any", 1, "op"),
                    "operator 'contains' is not supported for date field 'Date_Subscribed'",
                )
            ],
            id="nested-path",
        ),
        pytest.param(
            (ALL(a, ANY({"field": "FREQUENCY", "op": "contains", "value": "W"})),),
            caps(),
            [
                (
                    ("rules", 0, "all", 1, "any", 0, "op"),
                    "operator 'contains' is not supported for select field 'FREQUENCY'",
                )
            ],
            id="custom-field-case-insensitive",
        ),
        pytest.param(
            ({"field": "Tags", "op": "equals", "value": "x"},),
            caps(),
            [
                (
                    ("rules", 0, "op"),
                    "operator 'equals' is not supported for multiselect field 'Tags'",
                )
            ],
            id="type-without-operators",
        ),
        pytest.param(
            ({"field": "Unknown", "op": "between", "value": [1, 2]},), caps(), [], id="unknown"
        ),
        pytest.param(({"campaign": "c1", "event": "clicked"},), caps(), [], id="event-ok"),
        pytest.param(
            (a, {"campaign": "c1", "event": "not_opened"}),
            caps(),
            [(("rules", 1, "event"), "event 'not_opened' is not supported")],
            id="event",
        ),
        pytest.param(
            ({"campaign": "c1", "event": "opened"},),
            caps(events=frozenset()),
            [(("rules", 0, "event"), "campaign behaviour rules are not supported")],
            id="no-events",
        ),
        pytest.param(
            ({"campaign": "c1", "event": "opened", "within": {"days": 3}},),
            caps(),
            [(("rules", 0, "within"), "a 'within' time window is not supported")],
            id="within",
        ),
        pytest.param(
            ({"campaign": "c1", "event": "opened", "within": {"days": 3}},),
            caps(within=True),
            [],
            id="within-ok",
        ),
        pytest.param(
            ({"campaign": "c1", "event": "not_clicked", "within": {"days": 3}},),
            caps(),
            [
                (("rules", 0, "event"), "event 'not_clicked' is not supported"),
                (("rules", 0, "within"), "a 'within' time window is not supported"),
            ],
            id="event-and-within",
        ),
        pytest.param(({"list": "VIP"},), caps(), [], id="membership-ok"),
        pytest.param(
            ({"list": "VIP", "op": "active_in"},),
            caps(),
            [(("rules", 0, "op"), "membership operator 'active_in' is not supported")],
            id="membership-op",
        ),
        pytest.param(
            (ANY(a, {"list": "VIP"}),),
            caps(membership=frozenset()),
            [(("rules", 0, "any", 1, "op"), "list membership rules are not supported")],
            id="no-membership",
        ),
        pytest.param(
            ({"native": {"RuleType": "X"}},),
            caps(),
            [(("rules", 0, "native"), "native rules are not supported")],
            id="native",
        ),
        pytest.param(({"native": {"RuleType": "X"}},), caps(native=True), [], id="native-ok"),
        pytest.param(DEEP, caps(), [], id="tree-any-depth"),
        pytest.param((a, ALL(b, c)), caps(shape="flat"), [], id="flat-ok"),
        pytest.param(
            (a, ANY(b, c)),
            caps(shape="flat"),
            [(("rules",), "rules nest deeper than this provider's one flat list of conditions")],
            id="flat",
        ),
        pytest.param((ANY(a, b), ANY(c, d)), caps(shape="two_level"), [], id="two-level-ok"),
        pytest.param(
            DEEP,
            caps(shape="two_level"),
            [
                (
                    ("rules",),
                    "rules nest deeper than this provider's two levels"
                    " (groups joined by one connector, the other connector inside)",
                )
            ],
            id="two-level",
        ),
        pytest.param(DEEP, caps(shape="cnf"), [], id="cnf-ok"),
        pytest.param(DEEP, caps(shape="dnf"), [], id="dnf-ok"),
        pytest.param(
            tuple(ANY(leaf(f"x{i}"), leaf(f"y{i}")) for i in range(7)),
            caps(shape="dnf"),
            [
                (
                    ("rules",),
                    "converting to OR-of-AND groups needs 128 groups, more than the limit of 64",
                )
            ],
            id="dnf-too-large",
        ),
        pytest.param((a, b, c), caps(shape="flat", max_conditions=3), [], id="max-ok"),
        pytest.param(
            (a, b, c, d),
            caps(shape="flat", max_conditions=3),
            [(("rules",), "the rules need 4 conditions, more than this provider's limit of 3")],
            id="max-conditions",
        ),
        pytest.param(
            (a, b, a, ALL(b, a)), caps(shape="flat", max_conditions=2), [], id="max-normal-form"
        ),
        pytest.param(
            (ANY(ALL(a, b), ALL(c, d)),),
            caps(shape="cnf", max_conditions=6),
            [(("rules",), "the rules need 8 conditions, more than this provider's limit of 6")],
            id="max-after-conversion",
        ),
        pytest.param(
            ({"field": "email", "op": "gt", "value": 1}, ANY(b, c, d), {"list": "X"}),
            caps(shape="flat", max_conditions=2, membership=frozenset()),
            [
                (("rules", 0, "op"), "operator 'gt' is not supported for text field 'email'"),
                (("rules", 2, "op"), "list membership rules are not supported"),
                (("rules",), "rules nest deeper than this provider's one flat list of conditions"),
            ],
            id="several",
        ),
    ],
)
def test_check_segment(
    rules: tuple[dict[str, Any], ...],
    capabilities: Capabilities,
    problems: list[tuple[tuple[str | int, ...], str]],
) -> None:
    got = check_segment(segment(*rules), capabilities, FIELD_TYPES)
    expected = [
        Problem(path, message if path == ("rules",) else f"{message} by this provider")
        for path, message in problems
    ]
    assert got == expected


def test_check_segment_field_types_override_standard_fields() -> None:
    rule = {"field": "Status", "op": "contains", "value": "act"}
    assert check_segment(segment(rule), caps(), {"status": "text"}) == []


def test_problem_is_frozen() -> None:
    problem = Problem(("rules",), "x")
    with pytest.raises(AttributeError):
        problem.message = "y"  # type: ignore[misc]


def test_check_segment_standard_operators_narrow_a_standard_field() -> None:
    capabilities = caps().model_copy(
        update={"standard_operators": {"email": frozenset({"contains"}), "status": frozenset()}}
    )
    assert (
        check_segment(segment({"field": "email", "op": "contains", "value": "x"}), capabilities, {})
        == []
    )
    (problem,) = check_segment(
        segment({"field": "Email", "op": "equals", "value": "x"}), capabilities, {}
    )
    assert problem.message == (
        "operator 'equals' is not supported for the standard field 'Email' by this provider "
        "(supported: contains)"
    )
    (problem,) = check_segment(
        segment({"field": "status", "op": "equals", "value": "active"}), capabilities, {}
    )
    assert problem.message == "rules cannot test the standard field 'status' on this provider"


# --- describe_capabilities ---------------------------------------------------------------


def test_describe_capabilities() -> None:
    capabilities = caps(shape="cnf", max_conditions=10, within=True)
    assert describe_capabilities(capabilities) == {
        "shape": "cnf",
        "shape_description": "AND of OR-groups",
        "conversion_limit": 64,
        "max_conditions": 10,
        "operators": {
            "date": ["after", "before"],
            "select": ["equals"],
            "text": ["contains", "equals"],
        },
        "events": ["clicked", "opened"],
        "within": True,
        "membership": ["in", "not_in"],
        "native": False,
        "changes": [
            action.value
            for action in Action
            if action in {Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.DELETE_SEGMENT}
        ],
        "field_types": ["date", "number", "select", "text"],
        "standard_operators": {},
        "field_scope": "list",
        "names_case_insensitive": False,
    }


@pytest.mark.parametrize("shape", ["tree", "cnf", "dnf", "flat", "two_level"])
def test_describe_capabilities_is_json_in_plan_order(shape: str) -> None:
    capabilities = caps(shape=shape, changes=frozenset(Action))
    data = describe_capabilities(capabilities)
    assert json.loads(json.dumps(data)) == data
    assert data["changes"] == [action.value for action in Action]


@pytest.mark.parametrize(("expands_in", "found"), [(False, 0), (True, 1)])
def test_check_segment_counts_each_in_value_where_the_platform_expands_them(
    expands_in: bool, found: int
) -> None:
    capabilities = Capabilities(
        shape="flat",
        operators={"text": frozenset({"in", "equals"})},
        max_conditions=3,
        expands_in=expands_in,
    )
    segment = Segment.model_validate(
        {
            "name": "S",
            "match": "any",
            "rules": [
                {"field": "email", "op": "in", "value": ["a", "b", "c"]},
                {"field": "email", "op": "equals", "value": "d"},
            ],
        }
    )
    problems = check_segment(segment, capabilities, {})
    assert len(problems) == found
    if found:
        assert "4 conditions" in problems[0].message
