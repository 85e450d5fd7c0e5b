"""MailWizz translation, pure: operator map, flat lists, natives, ids, forms, answers, checks."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.mailwizz import checks, mapping, wire
from providers.mailwizz.answers import Classifier, error_text
from providers.mailwizz.api import (
    FieldRecord,
    OperatorRecord,
    SegmentBody,
    SegmentRecord,
    WireCondition,
    php_form,
)
from reconciler.errors import ApiError, AuthError
from reconciler.model import BehaviourRule, NativeRule, Rule
from reconciler.rules import segment_key
from tests.factories import make_group, make_rule, make_segment
from tests.providers.fakes.mailwizz import OPERATORS

FIELDS = wire.FieldIndex(
    [
        FieldRecord(field_id="96", tag="EMAIL"),
        FieldRecord(field_id="97", tag="FNAME"),
        FieldRecord(field_id="99", tag="PLAN", type_identifier="dropdown", options=("gold",)),
    ]
)
OPS = wire.OperatorIndex(OperatorRecord(operator_id=i, name=n, slug=s) for i, n, s in OPERATORS)


def behaviour(event: str, campaign: str = "42", days: int | None = None) -> BehaviourRule:
    data: dict[str, Any] = {"campaign": campaign, "event": event}
    if days is not None:
        data["within"] = {"days": days}
    return BehaviourRule.model_validate(data)


def native(**data: Any) -> NativeRule:
    return NativeRule(native=data)


# -- the operator map -----------------------------------------------------------------------

OPERATOR_MAP = [
    ("equals", "a", "is", "a"),
    ("not_equals", "a", "is-not", "a"),
    ("contains", "a", "contains", "a"),
    ("not_contains", "a", "not-contains", "a"),
    ("starts_with", "a", "starts", "a"),
    ("ends_with", "a", "ends", "a"),
    ("empty", None, "is", "[EMPTY]"),
    ("not_empty", None, "is-not", "[EMPTY]"),
]


@pytest.mark.parametrize(("op", "value", "slug", "stored"), OPERATOR_MAP)
def test_mailwizz_operator_map_round_trips(op: str, value: Any, slug: str, stored: str) -> None:
    rule = make_rule("Plan", op, value)
    condition = mapping.compile_leaf(rule)
    assert condition == mapping.Condition(tag="PLAN", slug=slug, value=stored)
    _, (back,) = mapping.decompile(mapping.Compiled("all", (condition,)))
    assert back == make_rule("PLAN", op, None if value is None else stored)


@pytest.mark.parametrize(
    ("op", "value", "slug", "stored"),
    [("gt", 5, "greater", "5"), ("lt", 5.0, "less", "5"), ("gt", "-7", "greater", "-7")],
)
def test_mailwizz_gt_lt_are_stored_and_read_back_native(
    op: str, value: Any, slug: str, stored: str
) -> None:
    """greater/less on a MailWizz (text) field read back native: import declares a field with
    its live type, text, which takes no gt/lt, so a canonical gt would not validate."""
    condition = mapping.compile_leaf(make_rule("Score", op, value))
    assert condition == mapping.Condition(tag="SCORE", slug=slug, value=stored)
    _, (back,) = mapping.decompile(mapping.Compiled("all", (condition,)))
    assert back == native(field="SCORE", operator=slug, value=stored)
    assert mapping.compile_leaf(back) == condition


@pytest.mark.parametrize(
    ("op", "value", "reason"),
    [
        ("contains", "50%", "SQL LIKE pattern"),
        ("not_contains", "a_b", "SQL LIKE pattern"),
        ("starts_with", "x%", "SQL LIKE pattern"),
        ("ends_with", "_x", "SQL LIKE pattern"),
        ("contains", "a\\b", "SQL LIKE pattern"),
        ("gt", "abc", "needs a whole number"),
        ("lt", 3.5, "needs a whole number"),
        ("gt", "1e3", "needs a whole number"),
        ("equals", 3.5, "as a whole number"),
        ("not_equals", "-.5", "as a whole number"),
        ("equals", "[EMPTY]", "value tag [EMPTY]"),
        ("equals", "[DATE]", "value tag [DATE]"),
        ("contains", "since [PAST_DAYS_7]", "value tag [PAST_DAYS_7]"),
    ],
)
def test_mailwizz_values_it_would_not_read_literally_are_refused(
    op: str, value: Any, reason: str
) -> None:
    with pytest.raises(mapping.Untranslatable, match=re.escape(reason)):
        mapping.compile_leaf(make_rule("Note", op, value))


@pytest.mark.parametrize(
    ("slug", "value"),
    [
        ("contains", "50%"),
        ("not-contains", "a_b"),
        ("starts", "x%"),
        ("ends", "a\\b"),
        ("is", "3.5"),
        ("is-not", "[DATE]"),
        ("contains", "[EMPTY]"),
        ("greater", "abc"),
        ("less", "5"),
    ],
)
def test_mailwizz_conditions_not_meant_literally_read_back_native(slug: str, value: str) -> None:
    condition = mapping.Condition(tag="NOTE", slug=slug, value=value)
    _, (back,) = mapping.decompile(mapping.Compiled("all", (condition,)))
    assert back == native(field="NOTE", operator=slug, value=value)
    assert mapping.compile_leaf(back) == condition
    assert mapping.canonicalise("all", (back,)) == ("all", (back,))


@pytest.mark.parametrize("tag", ["STATUS", "Name", "DATE_SUBSCRIBED", "FIRST_NAME"])
def test_mailwizz_custom_fields_named_like_standard_fields_read_back_native(tag: str) -> None:
    condition = mapping.Condition(tag=tag, slug="is", value="active")
    _, (back,) = mapping.decompile(mapping.Compiled("all", (condition,)))
    assert back == native(field=tag, operator="is", value="active")
    empty = mapping.Condition(tag=tag, slug="is", value="[EMPTY]")
    _, (back,) = mapping.decompile(mapping.Compiled("all", (empty,)))
    assert isinstance(back, NativeRule)


@pytest.mark.parametrize(
    ("field", "tag"),
    [("email", "EMAIL"), ("First_Name", "FNAME"), ("last_name", "LNAME"), ("Plan", "PLAN")],
)
def test_mailwizz_fields_become_tags(field: str, tag: str) -> None:
    condition = mapping.compile_leaf(make_rule(field, "equals", "x"))
    assert isinstance(condition, mapping.Condition) and condition.tag == tag


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (make_rule("date_subscribed", "equals", "2024-01-01"), "not a MailWizz list field"),
        (make_rule("name", "empty"), "not a MailWizz list field"),
        (make_rule("email", "gte", "a"), "no MailWizz equivalent"),
        (make_rule("email", "between", ["a", "b"]), "no MailWizz equivalent"),
        (make_rule("email", "equals", "  "), "use op: empty"),
        (make_rule("email", "equals", "x" * 256), "at most 255"),
        (behaviour("opened", "abc123"), "numeric campaign_id"),
        (behaviour("opened", days=10_001), "at most 10000 days"),
        (make_group("any", make_rule("email", "equals", "a")), "nested group"),
    ],
)
def test_mailwizz_leaves_that_cannot_be_stored(rule: Rule, reason: str) -> None:
    with pytest.raises(mapping.Untranslatable, match=reason):
        mapping.compile_leaf(rule)


# -- behaviour rules and campaign conditions -------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "stored"),
    [
        (behaviour("opened"), ("open", "42", "gte", "0", "day")),
        (behaviour("clicked", "0042", 30), ("click", "42", "lte", "30", "day")),
        (behaviour("not_opened", days=7), ("not_open", "42", "lte", "7", "day")),
        (behaviour("not_clicked"), ("not_click", "42", "gte", "0", "day")),
    ],
)
def test_mailwizz_behaviour_rules_round_trip(rule: BehaviourRule, stored: tuple[str, ...]) -> None:
    condition = mapping.compile_leaf(rule)
    assert isinstance(condition, mapping.CampaignCondition)
    assert condition.identity() == stored
    _, (back,) = mapping.decompile(mapping.Compiled("all", (), (condition,)))
    assert back == rule.model_copy(update={"campaign": "42"})


@pytest.mark.parametrize(
    "stored",
    [
        ("open", None, "gte", "0", "day"),  # any campaign
        ("click", "42", "gte", "3", "month"),
        ("open", "42", "lte", "0", "day"),
        ("open", "42", "gt", "3", "day"),
    ],
)
def test_mailwizz_other_campaign_conditions_read_back_native(stored: tuple[Any, ...]) -> None:
    condition = mapping.CampaignCondition(*stored)
    _, (back,) = mapping.decompile(mapping.Compiled("all", (), (condition,)))
    assert isinstance(back, NativeRule)
    assert mapping.compile_leaf(back) == condition


# -- native rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            native(field="email", operator="not-starts", value=" x "),
            mapping.Condition(tag="EMAIL", slug="not-starts", value="x"),
        ),
        (
            native(field_id=96, operator_id="9", value="x"),
            mapping.Condition(field_id="96", operator_id="9", value="x"),
        ),
        (
            native(action="click", time_comparison_operator="eq", time_value=3, time_unit="year"),
            mapping.CampaignCondition("click", None, "eq", "3", "year"),
        ),
    ],
)
def test_mailwizz_native_forms(rule: NativeRule, expected: object) -> None:
    assert mapping.compile_leaf(rule) == expected


@pytest.mark.parametrize(
    "data",
    [
        {"field": "EMAIL", "value": "x"},
        {"field": "EMAIL", "field_id": "96", "operator": "is", "value": "x"},
        {"field": "EMAIL", "operator": "is", "value": "x", "extra": 1},
        {"field_id": "abc", "operator": "is", "value": "x"},
        {"field": "", "operator": "is", "value": "x"},
        {"action": "open", "time_comparison_operator": "lte", "time_value": 3},
        {"action": "read", "time_comparison_operator": "lte", "time_value": 3, "time_unit": "day"},
        {"action": "open", "time_comparison_operator": "<=", "time_value": 3, "time_unit": "day"},
        {
            "action": "open",
            "time_comparison_operator": "lte",
            "time_value": 10_001,
            "time_unit": "day",
        },
    ],
)
def test_mailwizz_native_forms_refused(data: dict[str, Any]) -> None:
    with pytest.raises(mapping.Untranslatable):
        mapping.compile_leaf(NativeRule(native=data))


def test_mailwizz_membership_is_refused() -> None:
    with pytest.raises(mapping.Untranslatable, match="membership"):
        mapping.compile_leaf(make_segment("s", {"list": "VIP"}).rules[0])


# -- one flat list ----------------------------------------------------------------------------


def test_mailwizz_in_and_not_in_flatten_into_their_own_match() -> None:
    any_in = mapping.compile_rules("any", (make_rule("Plan", "in", ["gold", "free"]),))
    assert any_in.operator_match == "any" and [c.value for c in any_in.conditions] == [
        "free",
        "gold",
    ]
    all_not_in = mapping.compile_rules("all", (make_rule("Plan", "not_in", ["a", "b"]),))
    assert {c.slug for c in all_not_in.conditions} == {"is-not"} and all_not_in.count == 2
    single = mapping.compile_rules(
        "all", (make_rule("Plan", "in", ["a"]), make_rule("email", "empty"))
    )
    assert single.operator_match == "all" and single.count == 2


@pytest.mark.parametrize(
    ("match", "rules"),
    [
        ("all", (make_rule("Plan", "in", ["a", "b"]), make_rule("email", "empty"))),
        ("any", (make_rule("Plan", "not_in", ["a", "b"]), make_rule("email", "empty"))),
        (
            "all",
            (
                make_group("any", make_rule("email", "empty"), make_rule("Plan", "empty")),
                make_rule("email", "contains", "x"),
            ),
        ),
    ],
)
def test_mailwizz_deeper_rules_are_refused(match: str, rules: tuple[Rule, ...]) -> None:
    with pytest.raises(mapping.Untranslatable, match="one flat list"):
        mapping.compile_rules(match, rules)


def test_mailwizz_duplicates_are_dropped_like_the_server() -> None:
    compiled = mapping.compile_rules(
        "any",
        (
            make_rule("email", "contains", "x"),
            make_rule("EMAIL", "contains", " x"),
            native(field="email", operator="contains", value="x"),
            behaviour("opened"),
            native(
                action="open",
                campaign_id="42",
                time_comparison_operator="gte",
                time_value="0",
                time_unit="day",
            ),
        ),
    )
    assert compiled.count == 2


def test_mailwizz_empty_tag_is_written_only_for_empty() -> None:
    """``is [EMPTY]`` reads back as ``empty``; ``equals "[EMPTY]"`` would be read by the
    server as "is empty" too, so it is refused (and the native form compares as empty)."""
    with pytest.raises(mapping.Untranslatable, match="use op: empty"):
        mapping.compile_leaf(make_rule("email", "equals", "[EMPTY]"))
    declared = mapping.canonicalise("all", (native(field="EMAIL", operator="is", value="[EMPTY]"),))
    live = mapping.canonicalise("all", (make_rule("email", "empty"),))
    assert segment_key(*declared) == segment_key(*live)


LEAVES = st.one_of(
    st.builds(
        make_rule,
        st.sampled_from(["email", "First_name", "Plan", "plan"]),
        st.sampled_from([op for op, *_ in OPERATOR_MAP if op not in ("empty", "not_empty")]),
        st.sampled_from(["a", " a ", "b", "5", "<b>"]),
    ),
    st.builds(
        make_rule,
        st.sampled_from(["Plan", "plan"]),
        st.sampled_from(["gt", "lt"]),
        st.sampled_from(["5", " -7 ", 42]),
    ),
    st.builds(
        native,
        field=st.sampled_from(["EMAIL", "plan"]),
        operator=st.sampled_from(["contains", "starts", "is", "greater", "not-ends"]),
        value=st.sampled_from(["a_b", "50%", "[DATE]", "3.5", "x"]),
    ),
    st.builds(
        make_rule, st.sampled_from(["email", "Plan"]), st.sampled_from(["empty", "not_empty"])
    ),
    st.builds(
        behaviour,
        st.sampled_from(["opened", "not_clicked"]),
        st.just("42"),
        st.sampled_from([None, 1, 30]),
    ),
)


@given(st.sampled_from(["all", "any"]), st.lists(LEAVES, min_size=1, max_size=5))
def test_mailwizz_canonical_form_is_what_the_wire_reads_back(match: str, rules: list[Rule]) -> None:
    canonical = mapping.canonicalise(match, tuple(rules))
    assert segment_key(*mapping.canonicalise(*canonical)) == segment_key(*canonical)
    compiled = mapping.compile_rules(match, tuple(rules))
    conditions, campaigns = wire.to_wire(compiled, FIELDS, OPS)
    record = SegmentRecord(
        segment_uid="s",
        name="n",
        operator_match=compiled.operator_match,
        conditions=conditions,
        campaign_conditions=campaigns,
    )
    assert segment_key(*wire.from_wire(record, FIELDS, OPS)) == segment_key(*canonical)


# -- ids ---------------------------------------------------------------------------------------


def test_mailwizz_tags_resolve_case_insensitively_to_the_lists_ids() -> None:
    compiled = mapping.compile_rules(
        "all", (make_rule("plan", "equals", "gold"), make_rule("email", "not_empty"))
    )
    conditions, _ = wire.to_wire(compiled, FIELDS, OPS)
    assert sorted(c.identity() for c in conditions) == [("96", "2", "[EMPTY]"), ("99", "1", "gold")]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (make_rule("Colour", "equals", "red"), "no field tagged COLOUR"),
        (native(field_id="12", operator="is", value="x"), "field_id 12 is not a field"),
        (native(field="EMAIL", operator="matches", value="x"), "no condition operator 'matches'"),
        (native(field="EMAIL", operator_id="77", value="x"), "no condition operator 77"),
    ],
)
def test_mailwizz_unknown_ids_fail_before_writing(rule: Rule, reason: str) -> None:
    with pytest.raises(mapping.Untranslatable, match=reason):
        wire.to_wire(mapping.compile_rules("all", (rule,)), FIELDS, OPS)


def test_mailwizz_unknown_ids_read_back_native() -> None:
    record = SegmentRecord(
        segment_uid="s",
        name="n",
        conditions=(WireCondition(field_id="12", operator_id="77", value="x"),),
    )
    _, (rule,) = wire.from_wire(record, FIELDS, OPS)
    assert rule == native(field_id="12", operator_id="77", value="x")


def test_mailwizz_live_ids_are_strings_whatever_the_json() -> None:
    record = SegmentRecord.model_validate(
        {
            "segment_uid": "s",
            "name": "n",
            "operator_match": "any",
            "subscribers_count": 3,
            "conditions": [{"field_id": 96, "operator_id": 3, "value": "x"}],
            "campaign_conditions": [
                {
                    "action": "open",
                    "campaign_id": 42,
                    "time_comparison_operator": "lte",
                    "time_value": 3,
                    "time_unit": "day",
                }
            ],
        }
    )
    match, rules = wire.from_wire(record, FIELDS, OPS)
    assert match == "any"
    assert rules == (make_rule("email", "contains", "x"), behaviour("opened", days=3))


# -- forms and answers -------------------------------------------------------------------------


def test_mailwizz_form_is_exactly_php_http_build_query() -> None:
    body = SegmentBody(
        "My Segment", "any", (WireCondition(field_id="96", operator_id="3", value="domain.com"),)
    )
    request = httpx.Request("POST", "https://h/api/x", data=body.form())
    assert request.content == (
        b"name=My+Segment&operator_match=any&conditions%5B0%5D%5Bfield_id%5D=96"
        b"&conditions%5B0%5D%5Boperator_id%5D=3&conditions%5B0%5D%5Bvalue%5D=domain.com"
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_mailwizz_php_form_nests_and_drops_empty_arrays() -> None:
    assert php_form({"a": [], "b": {"c": ["x", {"d": "y & z"}]}, "e": {}}) == {
        "b[c][0]": "x",
        "b[c][1][d]": "y & z",
    }


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"status": "error", "error": "Plain."}, "Plain."),
        ({"status": "error", "error": {"general": {"name": "Bad."}}}, "general.name: Bad."),
        (
            {"status": "error", "error": {"conditions": [{"field_id": "No."}]}},
            "conditions[0].field_id: No.",
        ),
        ({"status": "error", "error": ["One.", "Two."]}, "One.; Two."),
        ({"status": "error", "error": {}}, ""),
        ([1, 2], ""),
    ],
)
def test_mailwizz_error_text_flattens_every_shape(body: Any, text: str) -> None:
    assert error_text(body) == text


def _answer(
    status: int, body: Any, method: str = "POST", path: str = "/api/lists/a/segments"
) -> httpx.Response:
    request = httpx.Request(method, f"https://h{path}")
    return httpx.Response(status, json=body, request=request)


def test_mailwizz_400_is_an_auth_error_without_secrets() -> None:
    verdict = Classifier(("sekret-key-1",))(
        _answer(400, {"status": "error", "error": "Invalid API key sekret-key-1."}, "GET")
    )
    assert verdict is not None and isinstance(verdict.error, AuthError)
    assert "sekret-key-1" not in str(verdict.error) and "api_key" in str(verdict.error)


def test_mailwizz_page_not_found_on_segment_routes_names_the_version() -> None:
    classify = Classifier(())
    verdict = classify(_answer(404, {"status": "error", "error": "Page not found."}))
    assert verdict is not None and isinstance(verdict.error, ApiError)
    assert "2.3.8" in str(verdict.error)
    assert (
        classify(_answer(404, {"status": "error", "error": "The segment list does not exist."}))
        is None
    )
    assert (
        classify(_answer(404, {"status": "error", "error": "Page not found."}, path="/api/x"))
        is None
    )


def test_mailwizz_422_keeps_the_servers_words() -> None:
    body = {"status": "error", "error": "You are only allowed to add 3 segment conditions."}
    verdict = Classifier(())(_answer(422, body))
    assert verdict is not None and "only allowed to add 3" in str(verdict.error)
    assert (
        Classifier(())(
            httpx.Response(422, text="<html>", request=httpx.Request("GET", "https://h"))
        )
        is None
    )
    assert Classifier(())(_answer(503, body)) is None


# -- offline checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "problem"),
    [
        (make_segment(" padded "), "name: the segment name ' padded ' has leading"),
        (make_segment("a<b>"), "holds '<', '>' or an HTML entity"),
        (make_segment("x" * 256), "longer than 255"),
        (make_segment("s", options={"a": 1}), "no options"),
        (make_segment("s", make_rule("email", "equals", "a &amp; b")), "rules[0]: value"),
        (make_segment("s", make_rule("email", "contains", "50%")), "rules[0]: the value '50%'"),
        (make_segment("s", make_rule("Plan", "in", ["a", "3.5"])), "rules[0]: MailWizz compares"),
        (make_segment("s", make_rule("Score", "gt", "x")), "rules[0]: gt needs a whole number"),
        (make_segment("s", make_rule("Note", "equals", "[DATE]")), "rules[0]: the value '[DATE]'"),
        (make_segment("s", behaviour("opened", "c1")), "rules[0]: a MailWizz campaign"),
        (make_segment("s", native(field="EMAIL")), "rules[0]: a native condition"),
        (
            make_segment("s", make_rule("Plan", "in", ["a", "b"]), make_rule("email", "empty")),
            "rules: an 'in' of several values",
        ),
    ],
)
def test_mailwizz_offline_problems(segment: Any, problem: str) -> None:
    found = [p if isinstance(p, str) else p.message for p in checks.offline_problems(segment)]
    assert any(p.startswith(problem) or problem in p for p in found), found


def test_mailwizz_storable_segments_have_no_offline_problems() -> None:
    segment = make_segment(
        "Fine",
        make_rule("email", "gte", "a"),  # the core reports operators; not repeated here
        {"list": "VIP"},  # and membership
        make_rule("status", "equals", "active"),  # and standard fields MailWizz lacks
        make_rule("Plan", "in", ["a", "b"]),
        native(field="EMAIL", operator="contains", value="50%"),  # a pattern, meant
        match="any",
    )
    assert checks.offline_problems(segment) == []


@pytest.mark.parametrize("field", ["name", "date_subscribed", "status"])
def test_mailwizz_standard_fields_without_list_fields_take_no_rules(field: str) -> None:
    from providers.mailwizz import CAPABILITIES
    from reconciler.shapes import check_segment

    (problem,) = check_segment(make_segment("s", make_rule(field, "empty")), CAPABILITIES, {})
    assert problem.path == ("rules", 0, "op")
    assert f"rules cannot test the standard field '{field}'" in problem.message
    for usable in ("email", "first_name", "last_name"):
        segment = make_segment("s", make_rule(usable, "starts_with", "a"))
        assert check_segment(segment, CAPABILITIES, {}) == []


def test_mailwizz_limit_problem() -> None:
    assert checks.limit_problem(3, 3) is None
    problem = checks.limit_problem(4, 3)
    assert problem is not None and "need 4 MailWizz conditions" in problem
