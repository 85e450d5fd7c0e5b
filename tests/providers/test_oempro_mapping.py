"""Oempro translation, pure: leaves, two levels, reading back, answers and offline checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.oempro import checks, field_type
from providers.oempro.answers import describe, error_for, read_envelope
from providers.oempro.api import FieldRecord, secret_forms
from providers.oempro.mapping import (
    FieldIndex,
    FieldInfo,
    Untranslatable,
    canonicalise,
    convert,
    decode_leaf,
    decode_segment,
    encode_leaf,
)
from providers.oempro.vocabulary import LEGACY_REASON, normalise_native, value_problem
from reconciler.errors import ApiError, AuthError, NotFound
from reconciler.model import BehaviourRule, NativeRule, Rule
from reconciler.rules import render, segment_key
from tests.factories import make_group, make_rule, make_segment
from tests.providers.fakes.oempro import reserialise

INDEX = FieldIndex(
    [
        FieldInfo("11", "Score", "number"),
        FieldInfo("12", "Note", "text"),
        FieldInfo("13", "Plan", "select"),
        FieldInfo("14", "Joined", "date"),
        FieldInfo("15", "Status", "text"),  # named like a standard field
        FieldInfo("16", "Twin", "text"),
        FieldInfo("17", "twin", "text"),
    ]
)


def behaviour(event: str, campaign: str = "42", days: int | None = None) -> BehaviourRule:
    data: dict[str, Any] = {"campaign": campaign, "event": event}
    if days is not None:
        data["within"] = {"days": days}
    return BehaviourRule.model_validate(data)


def native(**data: Any) -> NativeRule:
    return NativeRule(native=data)


def fields(field_id: str, operator: str, value: Any = "") -> dict[str, Any]:
    return {"type": "fields", "field_id": field_id, "operator": operator, "value": value}


# -- leaves: canonical -> criteria -----------------------------------------------------------

OPERATOR_MAP = [
    ("equals", "a", "is", "a"),
    ("not_equals", "a", "is not", "a"),
    ("contains", "a", "contains", "a"),
    ("not_contains", "a", "does not contain", "a"),
    ("starts_with", "a", "begins with", "a"),
    ("ends_with", "a", "ends with", "a"),
    ("empty", None, "is not set", ""),
    ("not_empty", None, "is set", ""),
]


@pytest.mark.parametrize(("op", "value", "wire", "sent"), OPERATOR_MAP)
def test_oempro_email_operators_map_to_the_criteria_strings(
    op: str, value: Any, wire: str, sent: str
) -> None:
    assert encode_leaf(make_rule("email", op, value), INDEX) == fields("EmailAddress", wire, sent)


@pytest.mark.parametrize(
    ("op", "wire"),
    [
        ("gt", "is greater than"),
        ("gte", "is greater than or equal to"),
        ("lt", "is less than"),
        ("lte", "is less than or equal to"),
        ("equals", "is"),
    ],
)
def test_oempro_number_field_is_referenced_by_its_id(op: str, wire: str) -> None:
    assert encode_leaf(make_rule("score", op, 5), INDEX) == fields("11", wire, "5")
    assert encode_leaf(make_rule("Score", op, 3.5), INDEX)["value"] == "3.5"


def test_oempro_standard_fields_are_default_field_names() -> None:
    status = encode_leaf(make_rule("status", "not_equals", "Unsubscribed"), INDEX)
    assert status == fields("SubscriptionStatus", "is not", "Unsubscribed")
    joined = encode_leaf(make_rule("date_subscribed", "not_empty"), INDEX)
    assert joined == fields("SubscriptionDate", "is set", "")


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (make_rule("first_name", "equals", "x"), "cannot test the standard field 'first_name'"),
        (make_rule("date_subscribed", "after", "2024-01-01"), "with 'after'"),
        (make_rule("Missing", "equals", "x"), 'no custom field named "Missing"'),
        (make_rule("twin", "equals", "x"), "2 custom fields named"),
        (make_rule("Joined", "equals", "2024-01-01"), "'equals' is not supported for the date"),
        (make_rule("Score", "gt", "many"), "is not a number"),
        (make_rule("Note", "contains", "50%"), "may read as a pattern"),
        (behaviour("opened", "abc"), "not an Oempro campaign id"),
        (native(type="nope", operator="x"), "'nope' is not one Oempro's criteria"),
        (native(type="tags", operator="has tags"), "not documented for 'tags'"),
        (native(operator="is"), "needs a 'type'"),
    ],
)
def test_oempro_untranslatable_leaves_say_why(rule: Rule, reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason.replace("(", r"\(").replace("'", "'")):
        encode_leaf(rule, INDEX)


def test_oempro_membership_of_a_list_is_not_a_segment_rule() -> None:
    with pytest.raises(Untranslatable, match="membership of a segment"):
        encode_leaf(make_group("any", {"list": "VIP"}).rules[0], INDEX)


def test_oempro_behaviour_is_a_campaign_event_with_a_window_in_days() -> None:
    assert encode_leaf(behaviour("not_clicked", "7", days=30), INDEX) == {
        "type": "campaign-events",
        "operator": "not clicked",
        "value": "7",
        "time_filter": {"type": "in_last_x_days", "value": 30},
    }
    assert "time_filter" not in encode_leaf(behaviour("opened"), INDEX)


def test_oempro_native_is_sent_as_written() -> None:
    rule = native(type="segments", operator="belongs to", value=17)
    assert encode_leaf(rule, INDEX) == {"type": "segments", "operator": "belongs to", "value": 17}


# -- leaves: criteria -> canonical ------------------------------------------------------------

NATIVE = "native"
"""Read back as the stored rule itself (normalised), as ``native:``."""
CAMPAIGN = {"type": "campaign-events", "value": "42"}
WINDOW = {"time_filter": {"value": "30", "type": "in_last_x_days"}}
DECODED = [
    pytest.param(
        fields("EmailAddress", "ends with", "@x.org"), 'email ends with "@x.org"', id="email"
    ),
    pytest.param(fields("11", "is greater than", 5), 'Score > "5"', id="number-as-number"),
    pytest.param(fields(11, "is", 5), 'Score equals "5"', id="int-field-id"),
    pytest.param(fields("12", "is not set"), "Note is empty", id="empty"),
    pytest.param(
        {"type": "fields", "field_id": "12", "operator": "is set"},
        "Note is not empty",
        id="no-value",
    ),
    pytest.param(fields("12", "is set", "x"), NATIVE, id="set-with-value"),
    pytest.param(fields("12", "is"), 'Note equals ""', id="equals-empty-text"),
    pytest.param(
        {"type": "fields", "field_id": "12", "operator": "is"}, NATIVE, id="no-value-to-compare"
    ),
    pytest.param(
        fields("SubscriptionStatus", "is", "Subscribed"), 'status equals "Subscribed"', id="status"
    ),
    pytest.param(fields("SubscriptionDate", "is", "2024-01-01"), NATIVE, id="date-compare"),
    pytest.param(fields("BounceType", "is", "Hard"), NATIVE, id="bounce-type"),
    pytest.param(fields("99", "is", "x"), NATIVE, id="unknown-field"),
    pytest.param(fields("15", "is", "x"), NATIVE, id="standard-named"),
    pytest.param(fields("16", "is", "x"), NATIVE, id="ambiguous-name"),
    pytest.param(fields("12", "is greater than", "5"), NATIVE, id="op-for-other-type"),
    pytest.param(fields("12", "contains", "a_b"), NATIVE, id="pattern"),
    pytest.param(fields("11", "is", "many"), NATIVE, id="not-a-number"),
    pytest.param({**fields("12", "is", "x"), "extra": 1}, NATIVE, id="extra-key"),
    pytest.param(
        {**CAMPAIGN, "operator": "opened", **WINDOW},
        "opened campaign 42 within 30 days",
        id="campaign",
    ),
    pytest.param(
        {**CAMPAIGN, "operator": "not opened", "value": 7},
        "not opened campaign 7",
        id="int-campaign",
    ),
    pytest.param(
        {**CAMPAIGN, "operator": "clicked", "aggregation": {"count": 2}}, NATIVE, id="aggregation"
    ),
    pytest.param({**CAMPAIGN, "operator": "opened", "value": ""}, NATIVE, id="any-campaign"),
    pytest.param({**CAMPAIGN, "operator": "delivered"}, NATIVE, id="delivered"),
    pytest.param(
        {**CAMPAIGN, "operator": "opened", "time_filter": {"type": "after", "value": "2024-01-01"}},
        NATIVE,
        id="after",
    ),
    pytest.param({"type": "segments", "operator": "belongs to", "value": 17}, NATIVE, id="segment"),
]


@pytest.mark.parametrize(("raw", "text"), DECODED)
def test_oempro_stored_rules_read_back(raw: dict[str, Any], text: str) -> None:
    stored = json.loads(reserialise(raw))
    decoded = decode_leaf(stored, INDEX)
    assert decoded is not None and decoded.modelled
    if text == NATIVE:
        assert decoded.rule == NativeRule(native=normalise_native(stored))
        assert next(iter(decoded.rule.native)) == "type"  # written as people write them
    else:
        assert render(decoded.rule) == text


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "fields", "field_id": "EmailAddress", "operator": "is before", "value": "x"},
        {"type": "scores", "operator": "above", "value": "3"},
        {"operator": "is", "value": "x"},
    ],
    ids=["ui-operator", "unknown-type", "no-type"],
)
def test_oempro_undocumented_rules_read_as_unmodelled_natives(raw: dict[str, Any]) -> None:
    decoded = decode_leaf(raw, INDEX)
    assert decoded is not None and not decoded.modelled
    assert decoded.rule == NativeRule(native=raw)


def test_oempro_a_rule_that_is_no_object_is_unreadable() -> None:
    assert decode_leaf("EmailAddress", INDEX) is None
    assert decode_leaf({}, INDEX) is None


def test_oempro_natives_normalise_numbers_to_strings() -> None:
    assert normalise_native({"a": [1, 2.0, 2.5, True, None], "b": {"c": 3}}) == {
        "a": ["1", "2", "2.5", True, None],
        "b": {"c": "3"},
    }


# -- segments: two levels -------------------------------------------------------------------

a = make_rule("email", "contains", "a")
b = make_rule("email", "contains", "b")
c = make_rule("email", "contains", "c")
d = make_rule("email", "contains", "d")


def names(groups: tuple[tuple[Rule, ...], ...]) -> list[str]:
    return ["".join(str(getattr(leaf, "value", "?")) for leaf in group) for group in groups]


@pytest.mark.parametrize(
    ("match", "rules", "operator", "groups"),
    [
        ("all", (a,), "and", ["a"]),
        ("all", (a, b), "or", ["ab"]),  # one AND-group is smaller than two OR-groups
        ("any", (a, b), "and", ["ab"]),
        ("all", (make_group("any", a, b), c), "and", ["c", "ab"]),
        ("any", (make_group("all", a, b), c), "or", ["c", "ab"]),
        ("all", (make_group("any", a, b), make_group("any", c, d)), "and", ["ab", "cd"]),
        ("any", (make_group("all", a, b), make_group("all", c, d)), "or", ["ab", "cd"]),
        # deeper than two levels: distributed, the smaller of CNF (3 groups) and DNF
        ("all", (a, make_group("any", b, make_group("all", c, d))), "or", ["ab", "acd"]),
        ("any", (a, make_group("all", b, make_group("any", c, d))), "and", ["ab", "acd"]),
    ],
)
def test_oempro_converts_to_the_smaller_of_cnf_and_dnf(
    match: str, rules: tuple[Rule, ...], operator: str, groups: list[str]
) -> None:
    stored = convert(match, rules)
    assert (stored.operator, names(stored.groups)) == (operator, groups)


def test_oempro_conversion_past_the_limit_is_untranslatable() -> None:
    many = tuple(make_rule("email", "contains", f"x{n}") for n in range(70))
    with pytest.raises(Untranslatable, match="limit of 64"):
        convert("all", many)
    wide = tuple(
        make_group(
            "any", make_rule("email", "contains", f"{n}a"), make_rule("email", "ends_with", "b")
        )
        for n in range(7)
    )
    assert convert("all", wide).operator == "and"  # its DNF would need 128 groups
    with pytest.raises(Untranslatable, match="limit of 64"):
        convert("all", wide, "or")


def test_oempro_rules_json_is_a_compact_string() -> None:
    stored = convert("any", (make_group("all", a, b), behaviour("opened")))
    text = stored.rules_json(INDEX)
    assert isinstance(text, str)
    assert json.loads(text) == [
        [{"type": "campaign-events", "operator": "opened", "value": "42"}],
        [fields("EmailAddress", "contains", "a"), fields("EmailAddress", "contains", "b")],
    ]


A = '{"type":"fields","field_id":"EmailAddress","operator":"contains","value":"a"}'
B = A.replace('"a"}', '"b"}')
LEGACY = "EmailAddress|||Contains|||gmail"
SEGMENT_READS = [
    pytest.param(
        "and",
        f"[[{A}],[{B}]]",
        "",
        "all",
        'all(email contains "a", email contains "b")',
        "",
        id="and",
    ),
    pytest.param(
        "OR",
        f"[[{A},{B}]]",
        "",
        "any",
        'all(email contains "a", email contains "b")',
        "",
        id="or-upper-case",
    ),
    pytest.param("and", "", LEGACY, "all", "", LEGACY_REASON, id="legacy"),
    pytest.param("and", "[[]]", LEGACY, "all", "", LEGACY_REASON, id="legacy-empty-json"),
    pytest.param("and", f"[[{A}]]", LEGACY, "all", 'email contains "a"', "", id="both-forms"),
    pytest.param("and", "", "", "all", "", "", id="no-rules"),
    pytest.param("and", "[]", "", "all", "", "", id="empty-array"),
    pytest.param(
        "and", '{"rules":[]}', "", "all", "", "not the documented array", id="object-form"
    ),
    pytest.param("and", f"[{A}]", "", "all", "", "outside any group", id="ungrouped"),
    pytest.param("and", f"[[[{A}]]]", "", "all", "", "sub-groups", id="sub-groups"),
    pytest.param("and", '[["x"]]', "", "all", "", "not a rule", id="not-a-rule"),
    pytest.param("and", "[{", "", "all", "", "not valid JSON", id="broken"),
    pytest.param("xor", f"[[{A}]]", "", "all", "", "neither 'and' nor 'or'", id="operator"),
    pytest.param(
        "and",
        '[[{"type":"scores","operator":"above"}]]',
        "",
        "all",
        'native {"operator": "above", "type": "scores"}',
        "does not document",
        id="unknown-type",
    ),
]


@pytest.mark.parametrize(("operator", "text", "legacy", "match", "rules", "reason"), SEGMENT_READS)
def test_oempro_segments_read_back(
    operator: str, text: str, legacy: str, match: str, rules: str, reason: str
) -> None:
    read = decode_segment(operator, text, legacy, INDEX)
    shown = ", ".join(render(rule) for rule in read.rules)
    assert (read.match, read.managed) == (match, not reason)
    assert reason in read.reason and (reason == "") == (read.reason == "")
    if read.rules and len(read.rules) > 1:
        shown = render(make_group(read.match, *read.rules))  # type: ignore[arg-type]
    assert shown == rules


# -- canonical form: what is stored reads back as itself ----------------------------------------

_FIELDS = st.sampled_from(["email", "Email", "Score", "Note", "status"])


@st.composite
def storable(draw: st.DrawFn) -> Rule:
    """A leaf Oempro stores: field rules it allows, campaigns, documented natives."""
    kind = draw(st.sampled_from(["field", "field", "campaign", "native"]))
    if kind == "campaign":
        return behaviour(
            draw(st.sampled_from(["opened", "not_clicked"])),
            draw(st.sampled_from(["42", "7"])),
            draw(st.sampled_from([None, 30])),
        )
    if kind == "native":
        return native(type="tags", operator="has this tag", value=draw(st.sampled_from([3, "4"])))
    name = draw(_FIELDS)
    ops = {"email": ["contains", "ends_with", "empty"], "score": ["gt", "equals", "lte"]}
    ops |= {"note": ["starts_with", "not_equals"], "status": ["equals"]}
    op = draw(st.sampled_from(ops[name.casefold()]))
    values = ["5", 5, 7, 3.5] if name.casefold() == "score" else ["5", 5, "@x.org", "Ünï"]
    value = None if op == "empty" else draw(st.sampled_from(values))
    return make_rule(name, op, value)


def trees(depth: int) -> st.SearchStrategy[Rule]:
    if depth == 0:
        return storable()
    return st.one_of(
        storable(),
        st.builds(
            lambda kind, items: make_group(kind, *items),
            st.sampled_from(["all", "any"]),
            st.lists(trees(depth - 1), min_size=1, max_size=3),
        ),
    )


@settings(max_examples=80, deadline=None)
@given(
    match=st.sampled_from(["all", "any"]),
    rules=st.lists(trees(2), min_size=1, max_size=3),
)
def test_oempro_what_is_stored_reads_back_as_the_declared_canonical_form(
    match: str, rules: list[Rule]
) -> None:
    declared = tuple(rules)
    try:
        stored = convert(match, declared)
    except Untranslatable:
        return
    text = reserialise(json.loads(stored.rules_json(INDEX)))
    read = decode_segment(stored.operator, text, "", INDEX)
    assert read.managed
    want = canonicalise(match, declared, INDEX)
    have = canonicalise(read.match, read.rules, INDEX)
    assert segment_key(*want) == segment_key(*have)
    again = convert(read.match, read.rules)  # the next apply would store the same groups
    assert again.operator == stored.operator and len(again.groups) == len(stored.groups)


def test_oempro_a_native_that_says_a_field_rule_compares_as_that_rule() -> None:
    declared = (native(type="fields", field_id="EmailAddress", operator="contains", value="a"),)
    assert segment_key(*canonicalise("all", declared, INDEX)) == segment_key("all", (a,))


# -- values and offline checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "field_type", "value", "problem"),
    [
        ("contains", "text", "a%b", "pattern"),
        ("starts_with", "text", "a_b", "pattern"),
        ("ends_with", "text", "a\\b", "pattern"),
        ("equals", "text", "50%", None),
        ("gt", "number", "x", "not a number"),
        ("gt", "number", True, "not a number"),
        ("gt", "number", "1e5", "not a number"),
        ("lte", "number", -1.5, None),
        ("equals", "number", "7", None),
        ("empty", "number", None, None),
    ],
)
def test_oempro_value_problems(op: str, field_type: str, value: Any, problem: str | None) -> None:
    found = value_problem(op, field_type, value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_oempro_offline_problems_name_each_rule() -> None:
    segment = make_segment(
        "S",
        make_rule("Note", "contains", "a%"),
        make_rule("Score", "gt", "lots"),
        {"campaign": "abc", "event": "opened"},
        {"native": {"operator": "is"}},
        make_rule("email", "gt", "x"),  # the core's operator check reports this one
        options={"Randomness": 10},
    )
    found = checks.offline_problems(segment, {"note": "text", "score": "number"})
    problems = [p if isinstance(p, str) else p.message for p in found]
    assert [p.split(":")[0] for p in problems] == [
        "options",
        "rules[0]",
        "rules[1]",
        "rules[2]",
        "rules[3]",
    ]


def test_oempro_offline_problems_refuse_what_converts_past_the_limit() -> None:
    segment = make_segment("S", *(make_rule("email", "contains", f"x{n}") for n in range(65)))
    (problem,) = checks.offline_problems(segment, {})
    assert problem.startswith("rules: Oempro stores two levels") and "limit of 64" in problem


# -- field types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "validation", "expected"),
    [
        ("Single line", "Numbers", "number"),
        ("Single line", "Disabled", "text"),
        ("Single line", "Date", "text"),
        ("Paragraph text", "Numbers", "text"),
        ("Date field", "Disabled", "date"),
        ("Drop down", "", "select"),
        ("Multiple choice", "", "select"),
        ("Checkboxes", "", "multiselect"),
        ("Hidden field", "", "text"),
        ("text", "", "text"),
    ],
)
def test_oempro_field_types_come_from_type_and_validation(
    kind: str, validation: str, expected: str
) -> None:
    record = FieldRecord(id="1", name="F", field_type=kind, validation=validation)
    assert field_type(record) == expected


def test_oempro_field_records_read_either_id_key() -> None:
    new = FieldRecord.parse({"CustomFieldID": 5, "FieldName": "A", "RelListID": "0"})
    old = FieldRecord.parse({"FieldID": "6", "FieldName": "B", "FieldType": "text"})
    assert (new.id, new.is_global, old.id, old.is_global) == ("5", True, "6", False)


# -- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "codes", "texts"),
    [
        ({"Success": False, "ErrorCode": [1, 2], "ErrorText": ["x", "y"]}, (1, 2), ("x", "y")),
        ({"Success": False, "ErrorCode": 4, "ErrorText": "x"}, (4,), ("x",)),
        ({"Success": False, "ErrorCode": [1], "ErrorText": "x"}, (1,), ("x",)),
        ({"Success": False, "ErrorCode": {"segments": 1}}, (1,), ()),
        ({"Success": False, "ErrorCode": "99998"}, (99998,), ()),
        ({"Success": True, "ErrorCode": 0, "ErrorText": ""}, (), ()),
    ],
    ids=["lists", "int", "list-and-string", "object", "string", "success"],
)
def test_oempro_error_shapes_are_normalised(
    body: dict[str, Any], codes: tuple[int, ...], texts: tuple[str, ...]
) -> None:
    envelope = read_envelope(body)
    assert envelope is not None
    assert (envelope.success, envelope.codes, envelope.texts) == (body["Success"], codes, texts)


def test_oempro_codes_are_described_with_their_own_commands_meaning() -> None:
    envelope = read_envelope({"Success": False, "ErrorCode": [2, 4], "ErrorText": ["a", "b"]})
    assert envelope is not None
    create = describe("Segment.Create", envelope)
    update = describe("Segment.Update", envelope)
    assert "missing segment name" in create and "does not belong to the user" in create
    assert "invalid segment id" in update and 'server: "b"' in update


@pytest.mark.parametrize(
    ("command", "code", "kind", "words"),
    [
        ("Segment.Create", 99998, AuthError, "refused the credentials for Segment.Create"),
        ("Segments.Get", 99999, AuthError, "permission for Segments.Get"),
        ("Segments.Get", 101, AuthError, "refused the credentials"),
        ("User.Login", 3, AuthError, "invalid username or password"),
        ("User.Login", 101, AuthError, "use an api_key"),
        ("Segment.Update", 4, NotFound, "invalid segment id"),
        ("Segment.Create", 4, NotFound, "does not belong to the user"),
        ("Segment.Update", 5, ApiError, "invalid segment operator"),
        ("List.Create", 3, ApiError, "list limit"),
        ("Lists.Get", 7, ApiError, 'ErrorCode 7 (server: "why")'),
    ],
)
def test_oempro_errors_map_into_the_core_tree(
    command: str, code: int, kind: type[Exception], words: str
) -> None:
    envelope = read_envelope({"Success": False, "ErrorCode": code, "ErrorText": "why"})
    assert envelope is not None
    error = error_for(command, envelope, lambda text: text)
    assert type(error) is kind and words in str(error)


def test_oempro_secret_forms_cover_json_escapes() -> None:
    forms = secret_forms('pa/ss"wörd')
    assert {'pa/ss"wörd', 'pa/ss\\"w\\u00f6rd', 'pa\\/ss\\"w\\u00f6rd'} <= set(forms)
