"""Mautic's pure translation: collection shapes, filters <-> canonical rules, operator tables."""

from __future__ import annotations

from typing import Any

import pytest

from providers.mautic import checks, mapping, planned
from providers.mautic import operators as ops
from providers.mautic.api import ContactField, WireFilter, WireSegment, collection_items
from providers.mautic.leaves import (
    FieldIndex,
    Segments,
    Untranslatable,
    from_filter,
    to_filter,
    wire_value,
)
from reconciler.model import FieldRule, Group, MembershipRule, NativeRule, Rule, Segment
from reconciler.rules import segment_key


def _choices(*values: str) -> dict[str, Any]:
    return {"list": [{"label": v, "value": v} for v in values]}


FIELDS_LIST = [
    ContactField(id=1, label="Email", alias="email", type="email"),
    ContactField(id=2, label="Age", alias="age", type="number"),
    ContactField(id=3, label="Plan", alias="plan", type="select", properties=_choices("x")),
    ContactField(
        id=4, label="Hobbies", alias="hobbies", type="multiselect", properties=_choices("golf")
    ),
    ContactField(id=5, label="VIP", alias="vip", type="boolean"),
    ContactField(id=6, label="Seen", alias="seen", type="datetime"),
    ContactField(id=7, label="Notes", alias="notes", type="text"),
    ContactField(id=8, label="Hidden", alias="hidden", type="text", isListable=False),
]
FIELDS = FieldIndex(FIELDS_LIST)
SEGMENTS = Segments(ids={"vip": "7"}, names={"7": "VIP"})


def rule(field: str, op: str, value: Any = None) -> FieldRule:
    return FieldRule.model_validate({"field": field, "op": op, "value": value})


def wire(field: str, kind: str, operator: str, value: Any, glue: str = "and") -> WireFilter:
    return WireFilter(glue=glue, field=field, type=kind, operator=operator, value=value)


@pytest.mark.parametrize(
    "data,expected",
    [
        ({"12": {"id": 12}, "3": {"id": 3}}, [{"id": 12}, {"id": 3}]),
        ([{"id": 1}], [{"id": 1}]),
        ([], []),
        (None, []),
    ],
    ids=["object keyed by id", "array", "empty array", "missing"],
)
def test_mautic_collection_shapes(data: Any, expected: list[Any]) -> None:
    assert collection_items(data) == expected


def test_mautic_filter_value_comes_from_properties_not_stale_root_keys() -> None:
    raw = {"glue": "and", "field": "email", "type": "email", "operator": "like"}
    parsed = WireFilter.parse(
        raw | {"properties": {"filter": "new"}, "filter": "old", "display": "x"}
    )
    assert (parsed.value, parsed.display) == ("new", None)
    assert WireFilter.parse(raw | {"filter": "legacy"}).value == "legacy"


def test_mautic_filters_keyed_by_index_keep_their_order() -> None:
    filters = {"1": {"field": "b", "operator": "="}, "0": {"field": "a", "operator": "="}}
    segment = WireSegment.model_validate({"id": 1, "name": "S", "filters": filters, "category": []})
    assert [f.field for f in segment.filters] == ["a", "b"] and segment.category is None


@pytest.mark.parametrize(
    "canonical,expected",
    [
        (rule("email", "contains", "@x"), ("email", "contains", "@x")),
        (rule("email", "not_contains", "@x"), ("email", "!like", "@x")),
        (rule("email", "starts_with", "a"), ("email", "startsWith", "a")),
        (rule("notes", "in", ("a", "b")), ("text", "in", ["a", "b"])),
        (rule("age", "gt", 5), ("number", "gt", "5")),
        (rule("date_subscribed", "after", "2024-01-01"), ("date", "gt", "2024-01-01")),
        (rule("plan", "not_in", ("x",)), ("select", "!in", ["x"])),
        (rule("hobbies", "contains", "golf"), ("multiselect", "in", ["golf"])),
        (rule("vip", "equals", False), ("boolean", "=", "0")),
        (rule("seen", "before", "-7 days"), ("datetime", "lt", "-7 days")),
        (rule("first_name", "empty"), ("text", "empty", None)),
    ],
)
def test_mautic_operator_per_field_type(canonical: FieldRule, expected: tuple[str, ...]) -> None:
    found = to_filter(canonical, FIELDS, None)
    assert (found.type, found.operator, found.value) == expected


@pytest.mark.parametrize(
    "canonical,reason",
    [
        (rule("email", "in", ("a",)), "not allowed on Mautic email field"),
        (rule("plan", "contains", "x"), "not allowed on Mautic select field"),
        (rule("vip", "empty"), "not allowed on Mautic boolean field"),
        (rule("vip", "equals", "maybe"), "not a boolean value"),
        (rule("email", "contains", "50%"), "'%', which Mautic's contains .* reads as a wildcard"),
        (rule("email", "ends_with", "a_b"), "'_', which Mautic's ends_with .* reads as a wildcard"),
        (rule("plan", "equals", "y"), "'y' is not an option of Mautic select field 'plan'"),
        (rule("hobbies", "contains", "chess"), "'chess' is not an option of Mautic multiselect"),
        (rule("date_subscribed", "after", "2024-13-01"), "not a date Mautic accepts"),
        (rule("seen", "after", "2024-01-01"), "absolute value on datetime"),
        (rule("hidden", "equals", "x"), "no published contact field"),
        (rule("status", "equals", "x"), "no Mautic equivalent"),
    ],
)
def test_mautic_refuses_what_the_type_does_not_allow(canonical: FieldRule, reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason):
        to_filter(canonical, FIELDS, None)


@pytest.mark.parametrize(
    "stored,expected",
    [
        (wire("email", "email", "like", "gmail"), rule("email", "contains", "gmail")),
        (wire("email", "email", "!like", "x"), rule("email", "not_contains", "x")),
        (wire("date_added", "date", "lt", "today"), rule("date_subscribed", "before", "today")),
        (wire("age", "number", "gte", 18), rule("age", "gte", "18")),
        (wire("vip", "boolean", "=", 1), rule("vip", "equals", True)),
        (wire("notes", "text", "in", "a|b"), rule("notes", "in", ("a", "b"))),
        (wire("firstname", "text", "!empty", None), rule("first_name", "not_empty")),
        (wire("leadlist", "leadlist", "in", [7]), MembershipRule.model_validate({"list": "VIP"})),
    ],
)
def test_mautic_reads_filters_as_canonical_rules(stored: WireFilter, expected: Rule) -> None:
    assert from_filter(stored, FIELDS, SEGMENTS) == expected


@pytest.mark.parametrize(
    "stored",
    [
        wire("email", "email", "like", "%@x.com"),
        wire("email", "email", "regexp", "^a"),
        wire("seen", "datetime", "gt", "2024-01-01 10:00"),
        wire("leadlist", "leadlist", "in", [99]),
        wire("notes", "text", "gt", "a"),
        WireFilter(field="name", object="company", type="text", operator="=", value="Acme"),
    ],
    ids=["like pattern", "regexp", "absolute datetime", "unknown segment", "bad op", "company"],
)
def test_mautic_reads_the_rest_as_native(stored: WireFilter) -> None:
    found = from_filter(stored, FIELDS, SEGMENTS)
    assert isinstance(found, NativeRule)
    assert found.native["operator"] == stored.operator


def test_mautic_native_round_trips_with_text_values() -> None:
    native = NativeRule(
        native={"field": "points", "type": "number", "operator": "gt"}
        | {"properties": {"filter": 5}}
    )
    sent = to_filter(native, FIELDS, SEGMENTS)
    assert sent.body("and")["properties"] == {"filter": "5"}
    assert from_filter(sent, FIELDS, SEGMENTS) == NativeRule(
        native={"field": "points", "object": "lead", "type": "number", "operator": "gt"}
        | {"properties": {"filter": "5"}}
    )


def test_mautic_glue_opens_groups_and_first_glue_is_ignored() -> None:
    filters = [
        wire("email", "email", "!empty", None, glue="or"),
        wire("age", "number", "gt", "1"),
        wire("age", "number", "lt", "9", glue="or"),
    ]
    found = mapping.from_filters(filters, FIELDS, SEGMENTS)
    both = Group.of("all", (rule("email", "not_empty"), rule("age", "gt", "1")))
    assert segment_key(*found) == segment_key("any", (both, rule("age", "lt", "9")))


def test_mautic_to_filters_sets_glue_per_dnf_group() -> None:
    tree = (
        rule("email", "not_empty"),
        Group.of("any", (rule("age", "gt", 1), rule("age", "lt", 9))),
    )
    found = mapping.to_filters("all", tree, FIELDS, SEGMENTS)
    assert [g for g, _ in found] == ["and", "and", "or", "and"]


@pytest.mark.parametrize(
    "declared,live",
    [
        (
            (rule("date_subscribed", "lt", "2024-01-01"),),
            (rule("date_subscribed", "before", "2024-01-01"),),
        ),
        ((rule("age", "between", (1, 9)),), (rule("age", "gte", "1"), rule("age", "lte", "9"))),
        (
            (rule("email", "in", ("a", "b")),),
            (Group.of("any", (rule("email", "equals", "a"), rule("email", "equals", "b"))),),
        ),
        ((rule("hobbies", "contains", "golf"),), (rule("hobbies", "in", ("golf",)),)),
        ((rule("Age", "equals", 3),), (rule("age", "equals", "3"),)),
    ],
    ids=["lt is before", "between", "in on email", "multiselect contains", "label and number"],
)
def test_mautic_canonical_form_matches_what_is_stored(
    declared: tuple[Rule, ...], live: tuple[Rule, ...]
) -> None:
    want = mapping.canonicalise("all", declared, FIELDS, SEGMENTS)
    have = mapping.canonicalise("all", live, FIELDS, SEGMENTS)
    assert segment_key(*want) == segment_key(*have)


def test_mautic_live_options_fill_server_defaults() -> None:
    segment = WireSegment.model_validate(
        {"id": 1, "name": "VIP", "publicName": None, "description": None}
    )
    assert mapping.live_options(segment) == {
        "alias": "",
        "description": "",
        "isPublished": True,
        "isGlobal": True,
        "isPreferenceCenter": False,
        "publicName": "VIP",
    }


@pytest.mark.parametrize(
    "value,text",
    [(True, "1"), (False, "0"), (5, "5"), (5.0, "5"), ([1, "a"], ["1", "a"]), (None, None)],
)
def test_mautic_values_are_sent_as_text(value: Any, text: Any) -> None:
    assert wire_value(value) == text


@pytest.mark.parametrize(
    "text", ["today", "last month", "-5 days", "+1 week", "first day of may", "2 days ago"]
)
def test_mautic_relative_dates(text: str) -> None:
    assert ops.is_relative_date(text)


def test_mautic_offline_checks_use_declared_field_types() -> None:
    segment = Segment.model_validate(
        {
            "name": "S",
            "rules": [
                {"field": "Tier", "op": "contains", "value": "x"},
                {"field": "email", "op": "in", "value": ["a"]},
            ],
            "options": {"publicName": "", "isGlobal": "yes", "description": "<b>x</b>"},
        }
    )
    found = checks.offline_problems(segment, {"tier": "select"})
    problems = [p if isinstance(p, str) else p.message for p in found]
    assert problems == [
        "options.publicName: publicName cannot be empty: "
        "Mautic replaces an empty one with the name",
        "options.isGlobal: option 'isGlobal' must be true or false",
        "options.description: option 'description' holds markup, which Mautic strips or filters",
        "rules[0]: operator 'contains' is not allowed on Mautic select field 'tier'",
    ]


@pytest.mark.parametrize(
    "name,alias",
    [
        ("VIP Customers", "vip-customers"),
        ("Gmail 2024", "gmail-2024"),
        ("VIP  readers!", "vip--readers"),
        ("Weekly, not Gmail", "weekly-not-gmail"),
        ("a_b", "ab"),
        ("  Trim me ", "trim-me"),
        ("Ünïcode", None),
        ("2024", None),
        ("!!!", None),
    ],
)
def test_mautic_generated_alias_follows_g8(name: str, alias: str | None) -> None:
    assert mapping.generated_alias(name) == alias


@pytest.mark.parametrize(
    "data,generated",
    [
        ({"name": "VIP", "alias": "vip", "publicName": "VIP"}, {"alias", "publicName"}),
        ({"name": "VIP", "alias": "vip3", "publicName": None}, {"alias", "publicName"}),
        ({"name": "VIP", "alias": "vip-old", "publicName": "Shown"}, set()),
        ({"name": "Ünï", "alias": "uni", "publicName": "Ünï"}, {"publicName"}),
        ({"name": "VIP", "alias": None, "publicName": "VIP"}, {"alias", "publicName"}),
    ],
)
def test_mautic_generated_options(data: dict[str, Any], generated: set[str]) -> None:
    segment = WireSegment.model_validate({"id": 1} | data)
    assert mapping.generated_options(segment) == generated


@pytest.mark.parametrize(
    "name,alias",
    [
        ("Purchase Count", "purchase_count"),
        ("2nd Email", "f_2nd_email"),
        ("Ünï Field", "uni_field"),
    ],
)
def test_mautic_suggested_field_alias(name: str, alias: str) -> None:
    assert planned.suggested_alias(name) == alias
    assert planned.FIELD_ALIAS.fullmatch(alias)


@pytest.mark.parametrize(
    "text,valid",
    [
        ("2024-02-29", True),
        ("2024-01-01 10:30", True),
        ("2024-01-01 10:30:59", True),
        ("yesterday", True),
        ("-7 days", True),
        ("first day of next month", True),
        ("2023-02-29", False),
        ("2024-13-01", False),
        ("2024-1-1", False),
        ("soon", False),
        ("5", False),
    ],
)
def test_mautic_date_values(text: str, valid: bool) -> None:
    assert ops.is_date_value(text) is valid


@pytest.mark.parametrize(
    "stored",
    [
        wire("email", "email", "like", "a_b"),
        wire("email", "email", "endsWith", "_x"),
        wire("email", "email", "!like", "5%"),
        wire("date_added", "date", "gt", "2024-13-01"),
        wire("status", "text", "=", "active"),
        wire("first_name", "text", "=", "Ann"),
        WireFilter(
            field="email", type="email", operator="like", value="x", extra={"unknown": "key"}
        ),
    ],
    ids=[
        "like _",
        "endsWith _",
        "!like %",
        "invalid date",
        "alias status",
        "alias first_name",
        "extra keys",
    ],
)
def test_mautic_reads_unwritable_filters_as_native(stored: WireFilter) -> None:
    fields = FieldIndex(
        [
            *FIELDS_LIST,
            ContactField(id=20, label="Status", alias="status", type="text"),
            ContactField(id=21, label="First", alias="first_name", type="text"),
        ]
    )
    found = from_filter(stored, fields, SEGMENTS)
    assert isinstance(found, NativeRule)
    assert found.native["field"] == stored.field


def test_mautic_reads_a_select_value_no_longer_an_option_as_it_is() -> None:
    """Choices change with the live field: a stored value still reads canonically."""
    assert from_filter(wire("plan", "select", "=", "gone"), FIELDS, SEGMENTS) == rule(
        "plan", "equals", "gone"
    )


@pytest.mark.parametrize("operator", ["between", "!between", "date"])
def test_mautic_native_hidden_operators_are_refused(operator: str) -> None:
    native = NativeRule(
        native={"field": "age", "type": "number", "operator": operator}
        | {"properties": {"filter": ["1", "9"]}}
    )
    with pytest.raises(Untranslatable, match="hidden in Mautic's segment form"):
        to_filter(native, FIELDS, SEGMENTS)


def test_mautic_label_answers_only_when_no_alias_claims_it() -> None:
    index = FieldIndex(
        [
            ContactField(id=1, label="Plan", alias="tier", type="text"),
            ContactField(id=2, label="Other", alias="plan", type="text"),
            ContactField(id=3, label="Twin", alias="a", type="text"),
            ContactField(id=4, label="Twin", alias="b", type="text"),
        ]
    )
    found = index.find("plan")
    assert found is not None and found.alias == "plan"
    assert index.find("twin") is None
    fields = [index.find(alias) for alias in ("tier", "plan", "a")]
    assert [index.label_of(f) for f in fields if f is not None] == [None, "Other", None]
