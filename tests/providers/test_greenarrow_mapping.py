"""GreenArrow's clause mapping, normalisation, offline checks and envelope reading. Pure."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers._http import Verdict
from providers.greenarrow import checks
from providers.greenarrow.api import classify
from providers.greenarrow.mapping import (
    ALL_ACTIVE,
    STATUSES,
    ListIndex,
    Untranslatable,
    canonicalise,
    normalise_clause,
    read_clause,
    read_definition,
    spelling,
    unmanaged_reason,
    write_definition,
    write_rule,
)
from reconciler.errors import ApiError, AuthError, ConflictError, NotFound
from reconciler.model import FieldRule, Group, MembershipRule, NativeRule, Rule, Segment
from reconciler.rules import segment_key

LISTS = ListIndex.of([(7, "Partners"), (8, "Newsletter"), (9, "Twin"), (10, "Twin")])


def rule(data: dict[str, Any]) -> Rule:
    return Segment.model_validate({"name": "x", "rules": [data]}).rules[0]


def status(op: str = "equals", value: str = "active") -> FieldRule:
    return FieldRule.model_validate({"field": "status", "op": op, "value": value})


def member(name: str = "Partners", op: str = "in") -> MembershipRule:
    return MembershipRule.model_validate({"list": name, "op": op})


# -- spelling and normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "written,expected",
    [("is_in", "is in"), ("is in", "is in"), ("is  not__active_in ", "is not active in")],
)
def test_operator_spelling_is_one_form(written: str, expected: str) -> None:
    assert spelling(written) == expected


def test_normalise_clause_drops_server_only_keys_and_keeps_the_list_id() -> None:
    raw = {
        "type": "in_mailing_list",
        "operator": "is_active_in",
        "mailing_list_id": "7",
        "mailing_list": {"id": "7", "name": "Partners"},
        "created_at": None,
        "created_at_epoch": 1700000000,
    }
    assert normalise_clause(raw) == {
        "type": "in_mailing_list",
        "operator": "is active in",
        "mailing_list": {"id": 7},
    }


def test_normalise_clause_id_wins_and_name_only_is_kept() -> None:
    both = {"type": "x", "mailing_list": {"id": 7, "name": "P"}, "mailing_list_id": 99}
    assert normalise_clause(both) == {"type": "x", "mailing_list": {"id": 7}}
    deprecated = {"type": "x", "mailing_list_id": 8}
    assert normalise_clause(deprecated) == {"type": "x", "mailing_list": {"id": 8}}
    named = {"type": "x", "mailing_list": {"name": "Partners"}}
    assert normalise_clause(named) == named
    nested = {"type": "x", "clauses": [{"type": "y", "operator": "is_not"}, 3]}
    assert normalise_clause(nested) == {
        "type": "x",
        "clauses": [{"type": "y", "operator": "is not"}, 3],
    }


# -- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("operator", ["is", "IS", "is_not", "is  not"])
def test_status_clauses_read_in_any_spelling(operator: str) -> None:
    found = read_clause(
        {"type": "subscriber_status", "operator": operator, "value": "Bounced"}, LISTS
    )
    op = "equals" if operator.lower() == "is" else "not_equals"
    assert found == status(op, "bounced")


@pytest.mark.parametrize(
    "clause",
    [
        {"type": "subscriber_status", "operator": "is", "value": "pending"},
        {"type": "subscriber_status", "operator": "equals", "value": "active"},
        {"type": "subscriber_status", "operator": "is", "value": 1},
        {"type": "in_mailing_list", "operator": "is in", "mailing_list_id": 99},
        {"type": "in_mailing_list", "operator": "is in", "mailing_list_id": 9},
        {"type": "in_mailing_list", "operator": "owns", "mailing_list_id": 7},
        {"type": "in_mailing_list", "operator": "is in", "mailing_list_id": True},
        {"type": "in_mailing_list", "operator": "is in", "mailing_list": {"name": "Twin"}},
        {"type": "in_mailing_list", "operator": "is in"},
        {"type": "all", "clauses": []},
        {"type": "not_in_suppression_list", "suppression_list_id": 3},
    ],
    ids=[
        "unknown status",
        "unknown status operator",
        "status not text",
        "unknown list",
        "list name shared",
        "unknown membership operator",
        "id a boolean",
        "name shared",
        "no list",
        "empty group",
        "unknown type",
    ],
)
def test_clauses_without_a_canonical_form_read_as_native(clause: dict[str, Any]) -> None:
    assert read_clause(clause, LISTS) == NativeRule(native=normalise_clause(clause))


def test_membership_reads_by_id_or_unique_name() -> None:
    by_id = {"type": "in_mailing_list", "operator": "is_not_active_in", "mailing_list_id": "7"}
    assert read_clause(by_id, LISTS) == member("Partners", "not_active_in")
    by_name = {
        "type": "in_mailing_list",
        "operator": "is in",
        "mailing_list": {"name": "Newsletter"},
    }
    assert read_clause(by_name, LISTS) == member("Newsletter", "in")


def test_a_clause_that_is_not_an_object_is_kept_whole() -> None:
    assert read_clause("status is active", LISTS) == NativeRule(
        native={"unreadable_clause": "status is active"}
    )
    assert unmanaged_reason((read_clause(5, LISTS),)) is not None


def test_definitions_read_in_normal_form() -> None:
    active = {"type": "subscriber_status", "operator": "is", "value": "active"}
    partner = {"type": "in_mailing_list", "operator": "is in", "mailing_list_id": 7}
    wrapped = [{"type": "all", "clauses": [active, partner]}]
    assert read_definition(wrapped, LISTS) == read_definition([partner, active], LISTS)
    assert read_definition(wrapped, LISTS)[0] == "all"
    either = [{"type": "any", "clauses": [active, partner]}]
    match, rules = read_definition(either, LISTS)
    assert match == "any" and set(map(str, rules)) == {str(status()), str(member())}
    assert read_definition([], LISTS) == ("all", (ALL_ACTIVE,))
    assert read_definition(active, LISTS) == ("all", (status(),))


# -- writing -------------------------------------------------------------------------------------


def test_write_definition_top_level() -> None:
    assert write_definition("all", (member(), status()), LISTS) == [  # normal-form order
        {"type": "subscriber_status", "operator": "is", "value": "active"},
        {"type": "in_mailing_list", "operator": "is in", "mailing_list": {"id": 7}},
    ]
    (either,) = write_definition("any", (status(), member()), LISTS)
    assert either["type"] == "any" and len(either["clauses"]) == 2
    assert write_definition("any", (status("not_equals", "Scomp"),), LISTS) == [
        {"type": "subscriber_status", "operator": "is not", "value": "scomp"}
    ]
    nested = Group.of("all", (Group.of("all", (status(),)),))
    assert write_definition("all", (nested,), LISTS) == [
        {"type": "subscriber_status", "operator": "is", "value": "active"}
    ]


def test_write_definition_is_never_empty() -> None:
    with pytest.raises(Untranslatable, match="all active subscribers"):
        write_definition("all", (), LISTS)


@pytest.mark.parametrize(
    "data,reason",
    [
        ({"field": "email", "op": "contains", "value": "@x"}, "cannot test the field 'email'"),
        ({"field": "status", "op": "in", "value": ["active"]}, "only equals and not_equals"),
        ({"field": "status", "op": "equals", "value": "pending"}, "not a GreenArrow subscriber"),
        ({"campaign": "42", "event": "opened"}, "no campaign behaviour clause"),
        ({"list": "Nowhere"}, 'no GreenArrow mailing list is named "Nowhere"'),
        ({"list": "Twin"}, 'several GreenArrow mailing lists are named "Twin" (ids 9, 10)'),
    ],
)
def test_rules_the_adapter_cannot_write(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason.replace("(", r"\(").replace(")", r"\)")):
        write_rule(rule(data), LISTS)


def test_lists_created_in_a_plan_resolve() -> None:
    planned = LISTS.with_lists([(-1, "Fresh")])
    assert write_rule(member("Fresh"), planned)["mailing_list"] == {"id": -1}
    assert LISTS.names.get(-1) is None


# -- canonical form ------------------------------------------------------------------------------


def test_canonical_form_is_what_the_server_returns() -> None:
    declared = (status(value="Active"), rule({"native": {"type": "x", "operator": "is_in"}}))
    match, found = canonicalise("all", declared, LISTS)
    assert match == "all" and status() in found
    assert NativeRule(native={"type": "x", "operator": "is in"}) in found
    listed = rule(
        {"native": {"type": "in_mailing_list", "operator": "is_in", "mailing_list_id": 7}}
    )
    assert canonicalise("all", (listed,), LISTS) == ("all", (member(),))
    unresolved = (member("Nowhere"),)
    assert canonicalise("all", unresolved, LISTS) == ("all", unresolved)
    assert canonicalise("any", (), LISTS) == ("any", ())


LEAVES = st.one_of(
    st.builds(status, st.sampled_from(["equals", "not_equals"]), st.sampled_from(STATUSES)),
    st.builds(
        member,
        st.sampled_from(["Partners", "Newsletter"]),
        st.sampled_from(["in", "not_in", "active_in", "not_active_in"]),
    ),
)
TREES = st.recursive(
    LEAVES,
    lambda inner: st.builds(
        lambda kind, members: Group.of(kind, tuple(members)),
        st.sampled_from(["any", "all"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=60)
@given(match=st.sampled_from(["all", "any"]), rules=st.lists(TREES, min_size=1, max_size=3))
def test_written_then_read_is_the_canonical_form(match: str, rules: list[Rule]) -> None:
    """What fetch reads back after a write compares equal to the declaration, through the
    server's spelling and order (both spellings, any member order, a wrapping all)."""
    written = write_definition(match, rules, LISTS)
    echoed = json.loads(json.dumps(written).replace("is not", "is_not").replace("is in", "is_in"))
    echoed = [{"type": "all", "clauses": echoed[::-1]}]
    live = read_definition(echoed, LISTS)
    want = canonicalise(match, rules, LISTS)
    assert segment_key(*canonicalise(*live, LISTS)) == segment_key(*want)
    assert segment_key(*live) == segment_key(match, rules)


def test_unmanaged_reason_names_the_native_types() -> None:
    assert unmanaged_reason((status(), member())) is None
    found = unmanaged_reason((Group.of("any", (status(), NativeRule(native={"type": "t1"}))),))
    assert found is not None and "type t1" in found


# -- offline checks --------------------------------------------------------------------------------


def problems(rules: list[Any], **extra: Any) -> list[str]:
    return checks.offline_problems(Segment.model_validate({"name": "S", "rules": rules, **extra}))


def test_offline_checks_accept_what_greenarrow_stores() -> None:
    assert (
        problems(
            [
                {"field": "status", "op": "equals", "value": "Active"},
                {
                    "any": [
                        {"list": "P", "op": "not_active_in"},
                        {"native": {"type": "t", "clauses": [{"type": "u"}]}},
                    ]
                },
            ]
        )
        == []
    )


@pytest.mark.parametrize(
    "rules,extra,message",
    [
        (
            [{"field": "Plan", "op": "equals", "value": "x"}],
            {},
            "rules[0]: GreenArrow segments cannot test the custom field 'Plan'",
        ),
        (
            [{"field": "status", "op": "equals", "value": 5}],
            {},
            "status 5 is not a GreenArrow subscriber status",
        ),
        ([{"native": {"type": "all", "clauses": []}}], {}, "write a 'all' clause as a group"),
        ([{"native": {"type": ""}}], {}, "needs a 'type'"),
        ([{"native": {"type": "t", "operator": 3}}], {}, "'operator' is text"),
        ([{"native": {"type": "t", "clauses": []}}], {}, "non-empty list of clauses"),
        ([{"native": {"type": "t", "clauses": ["x"]}}], {}, "an object with a 'type'"),
        (
            [{"list": "P"}],
            {"options": {"description": "d"}},
            "options: GreenArrow segments have no options",
        ),
        ([{"list": "P"}], {"name": " S"}, "name: has leading or trailing spaces"),
    ],
)
def test_offline_checks_refuse(rules: list[Any], extra: dict[str, Any], message: str) -> None:
    found = checks.offline_problems(Segment.model_validate({"name": "S", "rules": rules} | extra))
    assert any(message in (p if isinstance(p, str) else p.message) for p in found), found


# -- the envelope ----------------------------------------------------------------------------------


def answer(
    status: int, body: Any, method: str = "GET", path: str = "/ga/api/v2/segments/5"
) -> httpx.Response:
    request = httpx.Request(method, "https://studio.example.com" + path)
    return httpx.Response(status, json=body, request=request)


def failure(code: str | None, message: str = "reason") -> dict[str, Any]:
    return {"success": False, "data": None, "error_code": code, "error_message": message}


@pytest.mark.parametrize("status", [200, 400, 404, 422, 500])
@pytest.mark.parametrize(
    "code,method,kind",
    [
        ("not_found", "GET", NotFound),
        ("multiple_records_found", "GET", ConflictError),
        ("validation_failed", "DELETE", ConflictError),
        ("validation_failed", "PUT", ApiError),
        ("invalid_request", "POST", ApiError),
        ("requested_too_many", "GET", ApiError),
        ("internal_error", "POST", ApiError),
        ("something_new", "GET", ApiError),
        (None, "GET", ApiError),
    ],
)
def test_error_codes_are_mapped_whatever_the_status(
    status: int, code: str | None, method: str, kind: type[Exception]
) -> None:
    verdict = classify(answer(status, failure(code), method))
    assert verdict is not None and not verdict.retry
    assert type(verdict.error) is kind


def test_internal_errors_are_retried_only_where_replaying_is_safe() -> None:
    for method in ("GET", "PUT", "DELETE"):
        verdict = classify(answer(500, failure("internal_error"), method))
        assert verdict is not None and verdict.retry and isinstance(verdict.error, ApiError)
    posted = classify(answer(500, failure("internal_error"), "POST"))
    assert posted is not None and not posted.retry


def test_success_decides_not_the_status() -> None:
    ok = {"success": True, "data": None, "error_code": None, "error_message": None}
    assert classify(answer(404, ok)) == Verdict()
    assert classify(answer(200, ok)) == Verdict()
    assert classify(answer(503, failure("internal_error"))) is None  # the client retries
    assert classify(answer(429, {"no": "envelope"})) is None
    assert classify(answer(502, "Bad gateway")) is None


def test_refused_credentials_are_auth_errors_with_a_hint() -> None:
    plain = httpx.Response(
        401,
        text="HTTP Basic: Access denied.\n",
        request=httpx.Request("GET", "https://s/ga/api/v2/x"),
    )
    verdict = classify(plain)
    assert verdict is not None and isinstance(verdict.error, AuthError)
    assert "organization_id" in str(verdict.error)
    enveloped = classify(answer(403, failure(None, "Forbidden")))
    assert enveloped is not None and isinstance(enveloped.error, AuthError)
    assert "Forbidden" in str(enveloped.error)


def test_delete_in_use_names_the_reason() -> None:
    verdict = classify(answer(422, failure("validation_failed", "in use by campaign 4"), "DELETE"))
    assert verdict is not None and "in use by campaign 4" in str(verdict.error)
    assert "unfinished campaign or autoresponder" in str(verdict.error)
