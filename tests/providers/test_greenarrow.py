"""GreenArrow against its stateful fake: the shared contract, wire calls, gotchas and errors."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pydantic
import pytest
import respx
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.greenarrow import CAPABILITIES, GreenArrowProvider, GreenArrowSettings
from providers.greenarrow.mapping import STATUSES
from reconciler.cli import State, cli
from reconciler.errors import ApiError, AuthError, ConfigError, ConflictError, ProviderError
from reconciler.importing import import_document
from reconciler.planning import SafetyPolicy
from reconciler.provider import Provider, ProviderContext
from reconciler.workspace import Workspace
from tests.providers.contract import (
    LIST,
    HttpContract,
    ProviderHarness,
    Session,
    actions,
    lists_yaml,
)
from tests.providers.fakes import FakeClock
from tests.providers.fakes.greenarrow import BASE_URL, FakeGreenArrow, Fault
from tests.providers.promise import NAMES, PromiseHarness, Seeder, import_test, promise_test
from tests.providers.promise import _Run as PromiseRun
from tests.providers.promise import _text as promise_text

ROOT = Path(__file__).resolve().parents[2]
REGISTRY: dict[str, type[Provider]] = {"greenarrow": GreenArrowProvider}
PARTNERS = "Partners"
LABELS = {
    ("POST", "/mailing_lists"): "create_list",
    ("POST", "segments"): "create_segment",
    ("PUT", "segments"): "update_segment",
    ("DELETE", "segments"): "delete_segment",
}
SEGMENTS = """\
      - name: Gmail
        rules:
          - {field: status, op: equals, value: active}
      - name: Weekly 2024
        rules:
          - {list: Partners, op: not_in}
          - {field: status, op: not_equals, value: bounced}
"""
"""The contract's two segments in rules GreenArrow stores (status and membership)."""

CONTRACT_FIELDS = (
    "    fields:\n      - {name: Frequency, type: select, options: [Weekly, Monthly]}\n"
)


class GreenArrowHarness(ProviderHarness):
    """The fake organization starts with the list ``Partners`` (membership rules name it)."""

    key: ClassVar[str] = "greenarrow"
    provider_class: ClassVar[type[Provider]] = GreenArrowProvider
    segments: ClassVar[str] = SEGMENTS

    def __init__(self, router: respx.MockRouter, organization: bool = False) -> None:
        self.fake = FakeGreenArrow()
        self.fake.mount(router)
        self.fake.add_list(PARTNERS)
        self.organization = organization

    def target_yaml(self) -> str:
        if self.organization:
            key = f"api_key: {self.fake.raw_key}\norganization_id: {self.fake.organization_id}"
        else:
            key = f"api_key: {self.fake.api_key}"
        return f"base_url: {self.fake.base_url}\n{key}"

    def edit_out_of_band(self, list_name: str, segment_name: str) -> None:
        segment = self.fake.segment_named(list_name, segment_name)
        segment["clause"] = [{"type": "subscriber_status", "operator": "is", "value": "bounced"}]

    def writes(self) -> list[str]:
        labels = []
        for method, path in self.fake.writes():
            kind = "segments" if "/segments" in path else path
            labels.append(LABELS[(method, kind)])
        return labels

    def break_auth(self) -> None:
        self.fake.raw_key = "0000another0key0entirely0000"

    def rate_limit(self) -> None:
        self.fake.rate_limited = True


class FastSession(Session):
    """A session whose workspaces reach the harness's fake through an ``httpx`` mock
    transport (the same handler the respx route calls), so that no workspace builds an SSL
    context (about 0.1 s each): the property tests open hundreds of workspaces."""

    def workspace(self) -> Workspace:
        harness = self.harness
        assert isinstance(harness, GreenArrowHarness)
        transport = httpx.MockTransport(harness.fake.handle)
        context = ProviderContext(base_dir=self.root, clock=self.clock, http_transport=transport)
        return Workspace.open(self.root / "reconciler.yaml", self.registry, context)


class GreenArrowSession(FastSession):
    """GreenArrow rules test no custom field, so ``validate`` refuses every ``fields:``
    entry; the contract's shared list declares one (Frequency) that no GreenArrow segment
    uses, and this session leaves that declaration out."""

    def write(self, lists: str) -> None:
        super().write(lists.replace(CONTRACT_FIELDS, ""))


class _Contract(HttpContract):
    @pytest.fixture
    def session(self, harness: ProviderHarness, tmp_path: Path) -> Session:
        return GreenArrowSession(harness, tmp_path, dict(REGISTRY))

    def test_plan_apply_then_plan_is_empty(self, session: Session) -> None:
        """From nothing: the list is created (no field: GreenArrow rules use none)."""
        session.write(lists_yaml(session.harness.segments))
        first, result = session.apply()
        assert actions(first) == [
            ("create_list", None),
            ("create_segment", "Gmail"),
            ("create_segment", "Weekly 2024"),
        ]
        assert result.ok, result.outcomes
        assert session.plan().is_empty


class TestGreenArrowContract(_Contract):
    @pytest.fixture
    def harness(self, no_real_http: respx.MockRouter) -> ProviderHarness:
        return GreenArrowHarness(no_real_http)


class TestGreenArrowOrganizationKeyContract(_Contract):
    @pytest.fixture
    def harness(self, no_real_http: respx.MockRouter) -> ProviderHarness:
        return GreenArrowHarness(no_real_http, organization=True)


# -- fixtures for the quirk tests ---------------------------------------------------------------


@pytest.fixture
def harness(no_real_http: respx.MockRouter) -> GreenArrowHarness:
    return GreenArrowHarness(no_real_http)


@pytest.fixture
def fake(harness: GreenArrowHarness) -> FakeGreenArrow:
    return harness.fake


@pytest.fixture
def session(harness: GreenArrowHarness, tmp_path: Path) -> Session:
    return FastSession(harness, tmp_path, dict(REGISTRY))


def one(rules: str, name: str = "Only", prune: bool = True, extra: str = "") -> str:
    """The list Newsletter with one segment (``rules`` are its rules, one per line)."""
    head = f"lists:\n  - name: {LIST}\n    prune: {'true' if prune else 'false'}\n{extra}"
    return head + f"    segments:\n      - name: {name}\n        rules:\n{rules}"


def applied(session: Session, lists: str) -> None:
    session.write(lists)
    _, result = session.apply()
    assert result.ok, result.outcomes


def bodies(fake: FakeGreenArrow, method: str, suffix: str) -> list[Any]:
    return [
        json.loads(r.content)
        for r in fake.requests
        if r.method == method and r.url.path.endswith(suffix)
    ]


def _cli(root: Path, *args: str) -> Any:
    state = State(registry=REGISTRY, clock=FakeClock())
    return CliRunner().invoke(
        cli, ["-c", str(root / "reconciler.yaml"), "--no-color", *args], obj=state
    )


STATUS = "          - {field: status, op: equals, value: active}\n"


NOT_PARTNER = "          - {list: Partners, op: not_active_in}\n"
NESTED = """\
          - {field: status, op: equals, value: active}
          - any:
              - {list: Partners, op: in}
              - all:
                  - {list: Newsletter, op: not_in}
                  - {field: status, op: not_equals, value: bounced}
"""


def plan_error(session: Session) -> str:
    with pytest.raises(ConfigError) as caught:
        session.plan()
    return str(caught.value)


# -- settings and authentication ----------------------------------------------------------------

KEY = base64.b64encode(b"1:abcdef0123456789").decode()


@pytest.mark.parametrize(
    "settings",
    [
        {"api_key": KEY},
        {"base_url": BASE_URL},
        {"base_url": BASE_URL, "api_key": "  "},
        {"base_url": BASE_URL + "/ga/api/v2", "api_key": KEY},
        {"base_url": BASE_URL + "/ga", "api_key": KEY},
        {"base_url": "studio.example.com", "api_key": KEY},
        {"base_url": BASE_URL, "api_key": "abc", "organization_id": 0},
        {"base_url": BASE_URL, "api_key": "abc", "organization_id": "one"},
        {"base_url": BASE_URL, "api_key": "abc", "organization_id": True},
        {"base_url": BASE_URL, "api_key": "1:abc", "organization_id": 1},
        {"base_url": BASE_URL, "api_key": KEY, "password": "p"},
    ],
    ids=[
        "no url",
        "no key",
        "blank key",
        "api path",
        "ga path",
        "no scheme",
        "zero org",
        "org not a number",
        "org a boolean",
        "org and encoded key",
        "extra",
    ],
)
def test_greenarrow_settings_refuse(settings: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        GreenArrowSettings.model_validate(settings)


def test_greenarrow_settings_build_the_basic_value_and_hide_it() -> None:
    studio = GreenArrowSettings.model_validate({"base_url": BASE_URL + "/", "api_key": KEY})
    assert studio.credentials == KEY and studio.base_url == BASE_URL
    raw = GreenArrowSettings.model_validate(
        {"base_url": BASE_URL, "api_key": "abcdef0123456789", "organization_id": "1"}
    )
    assert raw.organization_id == 1 and raw.credentials == KEY
    assert "abcdef0123456789" not in repr(raw) and KEY not in repr(studio)


def test_greenarrow_sends_the_studio_key_verbatim_under_the_api_path(
    session: Session, fake: FakeGreenArrow
) -> None:
    session.write(one(STATUS))
    session.plan()
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Basic {fake.api_key}"}
    assert {r.url.path for r in fake.requests} == {
        "/ga/api/v2/mailing_lists",
        "/ga/api/v2/segments",
    }


def test_greenarrow_builds_the_key_from_organization_and_raw_key(
    session: Session, harness: GreenArrowHarness, fake: FakeGreenArrow
) -> None:
    harness.organization = True
    applied(session, one(STATUS))
    assert fake.names(LIST) == ["Only"]
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Basic {fake.api_key}"}


def test_greenarrow_refused_key_is_an_auth_error_without_the_key(
    session: Session, fake: FakeGreenArrow
) -> None:
    session.write(one(STATUS))
    studio_key = fake.api_key
    fake.raw_key = "rotated0key0rotated0key"
    with pytest.raises(AuthError, match="organization_id") as caught:
        session.plan()
    assert studio_key not in str(caught.value) and "401" in str(caught.value)


def test_greenarrow_secrets_never_logged(
    session: Session,
    harness: GreenArrowHarness,
    fake: FakeGreenArrow,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.organization = True
    fake.faults.append(Fault("GET", "/segments", "503"))
    applied(session, one(STATUS))
    assert caplog.text
    for secret in (fake.api_key, fake.raw_key):
        assert secret not in caplog.text


# -- reading ----------------------------------------------------------------------------------


def test_greenarrow_reads_every_page_by_page_token(session: Session, fake: FakeGreenArrow) -> None:
    fake.page_cap = 2
    newsletter = fake.add_list(LIST)
    for n in range(4):
        fake.add_list(f"Other {n}")
        fake.add_segment(
            newsletter,
            f"S{n}",
            [{"type": "subscriber_status", "operator": "is", "value": "active"}],
        )
    session.write(one(STATUS, name="S0"))
    assert actions(session.plan()) == [("delete_segment", f"S{n}") for n in range(1, 4)]
    for path, pages in (("/ga/api/v2/mailing_lists", 3), ("/ga/api/v2/segments", 2)):
        asked = [r.url.params for r in fake.requests if r.url.path == path]
        assert len(asked) == pages
        assert {p["per_page"] for p in asked} == {"2000"}
        assert "page_token" not in asked[0] and all("page" not in p for p in asked)
        assert all(p["page_token"] for p in asked[1:])
    assert len({p["page_token"] for p in asked[1:]}) == len(asked) - 1


def test_greenarrow_reads_pages_by_number_without_tokens(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.page_cap, fake.page_tokens = 2, False
    newsletter = fake.add_list(LIST)
    for n in range(3):
        fake.add_segment(newsletter, f"S{n}", [])
    session.write(one(STATUS, name="S0"))
    assert actions(session.plan()) == [("delete_segment", "S1"), ("delete_segment", "S2")]
    asked = [r.url.params.get("page") for r in fake.requests if r.url.path.endswith("/segments")]
    assert asked == [None, "1"]


def test_greenarrow_pagination_that_never_advances_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"success": True, "data": [{"id": 1, "name": "A"}], "error_code": None}
        return httpx.Response(200, json=body | {"error_message": None, "next_page_token": "t1"})

    context = ProviderContext(clock=FakeClock(), http_transport=httpx.MockTransport(handler))
    settings = GreenArrowSettings.model_validate({"base_url": BASE_URL, "api_key": KEY})
    provider = GreenArrowProvider("main", settings, context)
    with provider, pytest.raises(ApiError, match="does not advance"):
        provider.api.mailing_lists()


def test_greenarrow_reads_only_the_segments_of_lists_in_scope(
    session: Session, fake: FakeGreenArrow
) -> None:
    newsletter, other = fake.add_list(LIST), fake.add_list("Other")
    mine = fake.add_segment(
        newsletter, "Only", [{"type": "subscriber_status", "operator": "is", "value": "active"}]
    )
    fake.add_segment(other, "Elsewhere", [])
    session.write(one(STATUS))
    assert session.plan().is_empty
    reads = [r.url.path for r in fake.requests if re.search(r"/segments/\d+$", r.url.path)]
    assert reads == [f"/ga/api/v2/segments/{mine}"]  # G11: one GET per segment, text form (G13)


def test_greenarrow_remote_list_is_refused(session: Session, fake: FakeGreenArrow) -> None:
    fake.add_list(LIST, remote=True)
    session.write(one(STATUS))
    with pytest.raises(ProviderError, match="remote list"):
        session.plan()
    assert not fake.writes()


def test_greenarrow_duplicate_list_names_are_a_conflict(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.add_list(LIST)
    fake.add_list(LIST)
    session.write(one(STATUS))
    with pytest.raises(ConflictError, match="several mailing lists named 'Newsletter'"):
        session.plan()


def test_greenarrow_two_live_segments_with_one_name_are_a_conflict(
    session: Session, fake: FakeGreenArrow
) -> None:
    newsletter = fake.add_list(LIST)
    first = fake.add_segment(newsletter, "Only", [])
    second = fake.add_segment(newsletter, "Only", [])
    session.write(one(STATUS))
    with pytest.raises(ConflictError) as caught:
        session.plan()
    assert f"ids {first}, {second}" in str(caught.value)
    assert not fake.writes()


# -- writes: one call per change ----------------------------------------------------------------


def test_greenarrow_create_is_one_post_with_the_whole_clause(
    session: Session, fake: FakeGreenArrow
) -> None:
    applied(session, one(NESTED))
    (body,) = bodies(fake, "POST", f"/mailing_lists/{fake.list_id(LIST)}/segments")
    partners, newsletter = fake.list_id(PARTNERS), fake.list_id(LIST)
    status = {"type": "subscriber_status", "operator": "is", "value": "active"}
    clause = body["segmentation_criteria"]["clause"]
    assert body["segmentation_criteria"]["name"] == "Only" and len(clause) == 2
    assert status in clause
    (group,) = [c for c in clause if c["type"] == "any"]
    assert {
        "type": "in_mailing_list",
        "operator": "is in",
        "mailing_list": {"id": partners},
    } in group["clauses"]
    (inner,) = [c for c in group["clauses"] if c["type"] == "all"]
    assert sorted(inner["clauses"], key=json.dumps) == sorted(
        [
            {
                "type": "in_mailing_list",
                "operator": "is not in",
                "mailing_list": {"id": newsletter},
            },
            {"type": "subscriber_status", "operator": "is not", "value": "bounced"},
        ],
        key=json.dumps,
    )
    assert bodies(fake, "POST", "/mailing_lists") == [{"mailing_list": {"name": LIST}}]


def test_greenarrow_match_any_is_one_any_clause(session: Session, fake: FakeGreenArrow) -> None:
    applied(
        session,
        one(STATUS + NOT_PARTNER).replace("        rules:", "        match: any\n        rules:"),
    )
    (clause,) = fake.segment_named(LIST, "Only")["clause"]
    assert clause["type"] == "any" and len(clause["clauses"]) == 2
    assert session.plan().is_empty


def test_greenarrow_update_is_one_put_with_name_and_whole_clause(
    session: Session, harness: GreenArrowHarness, fake: FakeGreenArrow
) -> None:
    applied(session, one(NESTED))
    before = harness.writes()
    renamed = one(NESTED.replace("bounced", "scomp"), name="Renamed").replace(
        "        rules:", "        renamed_from: [Only]\n        rules:"
    )
    applied(session, renamed)
    assert harness.writes() == [*before, "update_segment"]  # G9: never a partial update
    (body,) = bodies(fake, "PUT", f"/segments/{fake.segment_named(LIST, 'Renamed')['id']}")
    assert body["segmentation_criteria"]["name"] == "Renamed"
    assert "scomp" in json.dumps(body["segmentation_criteria"]["clause"])
    assert len(body["segmentation_criteria"]["clause"]) == 2


def test_greenarrow_membership_names_a_list_created_in_the_same_plan(
    session: Session, fake: FakeGreenArrow
) -> None:
    lists = (
        one("          - {list: Fresh, op: active_in}\n") + "  - name: Fresh\n    segments: []\n"
    )
    session.write(lists)
    current, result = session.apply()
    assert actions(current) == [
        ("create_list", None),
        ("create_list", None),
        ("create_segment", "Only"),
    ]
    assert result.ok, result.outcomes
    (clause,) = fake.segment_named(LIST, "Only")["clause"]
    assert clause["mailing_list_id"] == fake.list_id("Fresh")


def test_greenarrow_membership_of_a_missing_list_is_refused_by_plan(
    session: Session, fake: FakeGreenArrow
) -> None:
    session.write(one("          - {list: Nowhere, op: in}\n"))
    message = plan_error(session)
    assert (
        "reconciler.yaml:15:14:" in message
        and 'no GreenArrow mailing list is named "Nowhere"' in message
    )
    assert not fake.writes()


def test_greenarrow_update_of_a_vanished_segment_never_recreates_it(
    session: Session, fake: FakeGreenArrow
) -> None:
    applied(session, one(STATUS))
    session.write(one(NOT_PARTNER))
    ws = session.workspace()
    try:
        current = ws.plan()
        fake.segments.clear()
        result = ws.apply(current)
    finally:
        ws.close()
    (outcome,) = result.outcomes
    assert outcome.status == "failed" and "no longer exists" in outcome.message
    assert not fake.segments


def test_greenarrow_delete_of_a_vanished_segment_succeeds(
    session: Session, fake: FakeGreenArrow
) -> None:
    applied(session, one(STATUS) + "      - name: Gone\n        rules:\n" + NOT_PARTNER)
    session.write(one(STATUS))
    ws = session.workspace()
    try:
        current = ws.plan()
        del fake.segments[fake.segment_named(LIST, "Gone")["id"]]
        assert ws.apply(current).ok
    finally:
        ws.close()


def test_greenarrow_errors_answered_with_200_are_still_errors(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.errors_as_200 = True
    session.write(
        one("          - native: {type: not_in_suppression_list, suppression_list_id: 3}\n")
    )
    _, result = session.apply()
    (failed,) = [o for o in result.outcomes if o.status == "failed"]
    assert "invalid_request: Unsupported clause type: not_in_suppression_list" in failed.message
    assert "Segments API does not support" in failed.message
    assert fake.names(LIST) == []


# -- the gotchas, one test each -------------------------------------------------------------------


def test_g1_generated_description_is_never_compared_nor_sent(
    session: Session, fake: FakeGreenArrow
) -> None:
    applied(session, one(NESTED))
    echoed = fake._echo(fake.segment_named(LIST, "Only"))
    assert echoed["description"].startswith("All of the following criteria")
    assert "description" not in json.dumps(bodies(fake, "POST", "/segments"))
    assert session.plan().is_empty


def test_g2_operator_spelling_drift_is_not_a_diff(session: Session, fake: FakeGreenArrow) -> None:
    fake.underscore_operators = True  # the server echoes is_not_active_in, is_not
    applied(session, one(NESTED + NOT_PARTNER))
    sent = json.dumps(bodies(fake, "POST", "/segments"))
    assert '"is not active in"' in sent and "_in" not in sent.replace("mailing_list", "")
    assert session.plan().is_empty


def test_g3_the_embedded_list_name_is_ignored(session: Session, fake: FakeGreenArrow) -> None:
    newsletter, partners = fake.add_list(LIST), fake.list_id(PARTNERS)
    fake.add_segment(
        newsletter,
        "Only",
        [
            {
                "type": "in_mailing_list",
                "operator": "is not active in",
                "mailing_list_id": partners,
                "mailing_list": {"id": partners, "name": "Partners (before a rename)"},
            }
        ],
    )
    session.write(one(NOT_PARTNER))
    assert session.plan().is_empty


@pytest.mark.parametrize(
    "reference",
    [
        {"mailing_list_id": "P"},
        {"mailing_list": {"id": "P"}},
        {"mailing_list": {"id": "P", "name": "Anything"}, "mailing_list_id": 999},
        {"mailing_list_id": "'P'"},
    ],
    ids=["deprecated key", "preferred object", "object id wins", "id as text"],
)
def test_g4_both_list_reference_forms_read_alike(
    session: Session, fake: FakeGreenArrow, reference: dict[str, Any]
) -> None:
    partners = fake.list_id(PARTNERS)
    text = json.dumps(reference).replace("\"'P'\"", f'"{partners}"').replace('"P"', str(partners))
    newsletter = fake.add_list(LIST)
    clause = {"type": "in_mailing_list", "operator": "is_not_active_in", **json.loads(text)}
    fake.add_segment(newsletter, "Only", [clause])
    session.write(one(NOT_PARTNER))
    assert session.plan().is_empty


def test_g5_a_lone_top_level_all_is_the_implicit_all(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.wrap_in_all = True  # echoed as [{"type": "all", "clauses": [...]}]
    applied(session, one(NESTED))
    assert [c["type"] for c in fake._echo(fake.segment_named(LIST, "Only"))["clause"]] == ["all"]
    assert session.plan().is_empty


def test_g6_member_order_is_not_a_diff(session: Session, fake: FakeGreenArrow) -> None:
    fake.reverse_members = True
    applied(session, one(NESTED).replace("        rules:", "        match: any\n        rules:"))
    assert session.plan().is_empty


def test_g7_an_empty_rule_set_is_refused(session: Session, fake: FakeGreenArrow) -> None:
    session.write(
        f"lists:\n  - name: {LIST}\n    segments:\n      - name: Only\n        rules: []\n"
    )
    with pytest.raises(ConfigError, match="rules"):
        session.workspace()
    assert not fake.requests


def test_g7_an_empty_live_clause_reads_as_all_active(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.add_segment(fake.add_list(LIST), "Only", [])
    session.write(one(STATUS))
    assert session.plan().is_empty  # [] is "All Active Subscribers": what status = active selects


def test_g8_create_answers_200_with_the_id_in_data(session: Session, fake: FakeGreenArrow) -> None:
    applied(session, one(STATUS))
    creates = [r for r in fake.requests if r.method == "POST" and r.url.path.endswith("/segments")]
    assert len(creates) == 1 and not [r for r in fake.requests if "name" in r.url.params]


def test_g10_unreadable_segments_are_never_written_nor_deleted(
    session: Session, fake: FakeGreenArrow
) -> None:
    bounced = {"type": "subscriber_date_bounced", "operator": "within", "value": "30 days"}
    ui = fake.add_segment(fake.add_list(LIST), "Built in the UI", [bounced])
    session.write(one(STATUS, prune=False))
    current, result = session.apply()
    assert [u.segment_id for u in current.unmanaged] == [str(ui)] and result.ok
    before = len(fake.writes())
    session.write(one(STATUS, prune=True))  # prune does not reach it: still unmanaged
    pruning = session.plan()
    (kept,) = pruning.unmanaged
    assert kept.segment_id == str(ui) and "subscriber_date_bounced" in kept.reason
    assert not pruning.changes
    ws = session.workspace()
    try:  # --allow-deletes alone does not delete it either
        assert not ws.plan(SafetyPolicy(allow_all=True)).changes
        named = ws.plan(SafetyPolicy(allow_delete=frozenset({"Built in the UI"})))
    finally:
        ws.close()
    assert [(c.action.value, c.segment) for c in named.changes] == [
        ("delete_segment", "Built in the UI")
    ]
    native = (
        "          - native: {type: subscriber_date_bounced, operator: within, value: 60 days}\n"
    )
    session.write(one(STATUS) + "      - name: Built in the UI\n        rules:\n" + native)
    with pytest.raises(ConflictError, match="cannot be written by this provider"):
        session.plan()
    assert len(fake.writes()) == before and fake.segments[ui]["clause"] == [bounced]
    same = native.replace("60 days", "30 days")  # declared exactly as live: nothing to write
    session.write(one(STATUS) + "      - name: Built in the UI\n        rules:\n" + same)
    assert session.plan().is_empty


def test_g12_numbers_as_text_and_epoch_companions_are_not_a_diff(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.ids_as_text = True
    applied(session, one(NESTED))
    assert session.plan().is_empty


def test_g14_a_segment_in_use_is_not_deleted_and_not_retried(
    session: Session, fake: FakeGreenArrow
) -> None:
    applied(session, one(STATUS) + "      - name: Used\n        rules:\n" + NOT_PARTNER)
    fake.in_use.add(fake.segment_named(LIST, "Used")["id"])
    session.write(one(STATUS + "          - {list: Partners, op: in}\n"))
    current, result = session.apply()
    assert sorted(actions(current)) == [("delete_segment", "Used"), ("update_segment", "Only")]
    status = {o.change.action.value: (o.status, o.message) for o in result.outcomes}
    assert status["update_segment"][0] == "applied"
    assert status["delete_segment"][0] == "failed"
    assert "in use by an unfinished campaign" in status["delete_segment"][1]
    assert len([r for r in fake.requests if r.method == "DELETE"]) == 1
    assert session.clock.sleeps == []


# -- native clauses ------------------------------------------------------------------------------


def test_greenarrow_native_clause_is_sent_normalised_and_round_trips(
    session: Session, fake: FakeGreenArrow
) -> None:
    fake.supported_types.add("not_in_suppression_list")
    partners = fake.list_id(PARTNERS)
    native = (
        "          - native: {type: not_in_suppression_list, operator: is_not_in, "
        f"suppression_list_id: 3, mailing_list_id: {partners}}}\n"
    )
    applied(session, one(STATUS + native))
    (body,) = bodies(fake, "POST", "/segments")
    sent = [c for c in body["segmentation_criteria"]["clause"] if c["type"] != "subscriber_status"]
    assert sent == [
        {
            "type": "not_in_suppression_list",
            "operator": "is not in",
            "suppression_list_id": 3,
            "mailing_list": {"id": partners},
        }
    ]
    assert session.plan().is_empty


# -- import ------------------------------------------------------------------------------------


def test_greenarrow_import_round_trip(session: Session, fake: FakeGreenArrow) -> None:
    newsletter, partners = fake.add_list(LIST), fake.list_id(PARTNERS)
    active = {"type": "subscriber_status", "operator": "is", "value": "active"}
    member = {"type": "in_mailing_list", "operator": "is_active_in", "mailing_list_id": partners}
    fake.add_segment(newsletter, "Wrapped", [{"type": "all", "clauses": [active, member]}])
    fake.add_segment(newsletter, "Either", [{"type": "any", "clauses": [active, member]}])
    fake.add_segment(newsletter, "Everyone active", [])
    fake.add_segment(newsletter, "UI", [{"type": "subscriber_date_bounced", "value": "30 days"}])
    gone = {"type": "in_mailing_list", "operator": "is in", "mailing_list_id": 999}
    fake.add_segment(newsletter, "Gone list", [gone])
    session.write("lists: []\n")
    ws = session.workspace()
    try:
        imported = import_document(ws.import_state("main", ()), "main", ws.provider("main"))
    finally:
        ws.close()
    text = imported.text
    assert "{list: Partners, op: active_in}" in text and "match: any" in text
    assert "native: {type: subscriber_date_bounced, value: 30 days}" in text
    assert "{field: status, op: equals, value: active}" in text
    assert '# Not imported: "Gone list"' in text and "in_mailing_list" in text
    assert [n for n in imported.notes if "Gone list" in n]
    session.write(text)
    assert session.plan().is_empty


# -- faults ------------------------------------------------------------------------------------

WRITES = [
    ("POST", r"/mailing_lists/\d+/segments"),
    ("PUT", r"/segments/\d+"),
    ("DELETE", r"/segments/\d+"),
]
CHANGED = one(STATUS, name="Kept") + "      - name: New\n        rules:\n" + NOT_PARTNER


def _seed(fake: FakeGreenArrow) -> None:
    """A live list where CHANGED needs a create, an update and a delete."""
    newsletter = fake.add_list(LIST)
    fake.add_segment(
        newsletter, "Kept", [{"type": "subscriber_status", "operator": "is", "value": "bounced"}]
    )
    fake.add_segment(
        newsletter, "Gone", [{"type": "subscriber_status", "operator": "is", "value": "scomp"}]
    )


@pytest.mark.parametrize("kind", Fault.KINDS)
@pytest.mark.parametrize("method,path", WRITES, ids=["create", "update", "delete"])
def test_greenarrow_apply_survives_faults(
    session: Session, fake: FakeGreenArrow, kind: str, method: str, path: str
) -> None:
    _seed(fake)
    fake.faults.append(Fault(method, path, kind))
    session.write(CHANGED)
    current, result = session.apply()
    assert sorted(actions(current)) == [
        ("create_segment", "New"),
        ("delete_segment", "Gone"),
        ("update_segment", "Kept"),
    ]
    failed = [o for o in result.outcomes if o.status == "failed"]
    # POST is not replayed once the server may have acted (internal_error included).
    expect_failure = method == "POST" and kind != "429"
    assert len(failed) == (1 if expect_failure else 0), result.outcomes
    assert all(o.change.action.value == "create_segment" for o in failed)
    _, second = session.apply()
    assert second.ok, second.outcomes
    assert session.plan().is_empty
    assert fake.names(LIST) == ["Kept", "New"]


@pytest.mark.parametrize("kind", ["429", "503", "internal_error", "timeout", "drop"])
def test_greenarrow_reads_retry_transient_faults(
    session: Session, fake: FakeGreenArrow, kind: str
) -> None:
    _seed(fake)
    fake.faults.append(Fault("GET", r"/segments/\d+", kind, times=2))
    session.write(CHANGED)
    assert len(session.plan().changes) == 3
    assert len(session.clock.sleeps) == 2
    if kind == "429":
        assert session.clock.sleeps == [7.0, 7.0]  # Retry-After honoured


# -- validate, the CLI and the example -----------------------------------------------------------


def test_greenarrow_capabilities_are_what_it_stores() -> None:
    assert CAPABILITIES.operators_for("status", None) == {"equals", "not_equals"}
    for name in ("email", "name", "first_name", "last_name", "date_subscribed"):
        assert CAPABILITIES.operators_for(name, None) == frozenset()
    assert not CAPABILITIES.operators and not CAPABILITIES.field_types
    assert CAPABILITIES.membership == {"in", "not_in", "active_in", "not_active_in"}


def test_greenarrow_cli_validate_refuses_what_it_cannot_store(session: Session) -> None:
    session.write(
        one(
            """\
          - {field: email, op: contains, value: "@gmail.com"}
          - {field: Plan, op: equals, value: Gold}
          - {field: status, op: equals, value: pending}
          - {campaign: c1, event: opened}
          - native: {type: in_mailing_list, operator: is in, mailing_list_id: 3}
          - native: {operator: is}
        options: {description: Mine}
""",
            extra="    fields:\n      - {name: Plan, type: text}\n",
        )
    )
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    for message in (
        "rules cannot test the standard field 'email'",
        "cannot test the custom field 'Plan'",
        'field "Plan" has type "text", which provider "greenarrow" cannot store',
        "status 'pending' is not a GreenArrow subscriber status",
        "campaign behaviour rules are not supported",
        "write a 'in_mailing_list' clause as a membership rule",
        "a GreenArrow clause needs a 'type'",
        "GreenArrow segments have no options",
    ):
        assert message in result.output, message
    lines = (session.root / "reconciler.yaml").read_text().splitlines()
    email = next(n for n, line in enumerate(lines, 1) if "field: email" in line)
    assert f"reconciler.yaml:{email}:" in result.output


def test_greenarrow_example_validates_and_plans(
    tmp_path: Path, no_real_http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeGreenArrow()
    fake.mount(no_real_http)
    monkeypatch.setenv("GREENARROW_URL", fake.base_url)
    monkeypatch.setenv("GREENARROW_API_KEY", fake.api_key)
    shutil.copy(ROOT / "examples" / "greenarrow" / "reconciler.yaml", tmp_path)
    assert _cli(tmp_path, "validate").exit_code == 0
    applied_ = _cli(tmp_path, "apply", "--auto-approve")
    assert applied_.exit_code == 0, applied_.output
    assert _cli(tmp_path, "plan", "--detailed-exitcode").exit_code == 0
    assert os.environ["GREENARROW_API_KEY"] not in applied_.output


# -- the promise: what validate and plan accept, apply writes -------------------------------------


class GreenArrowPromise(PromiseHarness):
    """No custom fields (GreenArrow rules test none); ``Partners`` exists in the fake and
    ``Newsletter`` is created by the first plan that declares it."""

    def harness(self, router: respx.MockRouter, root: Path) -> ProviderHarness:
        return GreenArrowHarness(router)

    def live_states(self) -> st.SearchStrategy[Seeder]:
        """Segments as the Studio UI can leave them: either operator spelling, list
        references in both forms (or to a list that is gone), status values, clause types
        the adapter does not know, groups (empty ones too), an explicit top-level ``all``,
        an empty definition, and names shared by two segments."""
        leaf = st.one_of(_status_clauses(), _membership_clauses(), _unknown_clauses())
        clause = st.recursive(
            leaf,
            lambda inner: st.builds(
                lambda kind, members: {"type": kind, "clauses": members},
                st.sampled_from(["any", "all"]),
                st.lists(inner, max_size=3),
            ),
            max_leaves=5,
        )
        definition = st.lists(clause, max_size=3).flatmap(
            lambda items: st.sampled_from([items, [{"type": "all", "clauses": items}]])
        )
        return st.builds(
            _seeder,
            st.sampled_from([LIST, PARTNERS]),
            st.sampled_from(["Alpha", "alpha", "Beta", "Gmail 2024"]),
            definition,
        )


def _status_clauses() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "type": st.just("subscriber_status"),
            "operator": st.sampled_from(["is", "is not", "is_not", "equals"]),
            "value": st.sampled_from(["active", "bounced", "Scomp", "pending"]),
        }
    )


def _membership_clauses() -> st.SearchStrategy[dict[str, Any]]:
    """The list is named here and resolved to its id when seeded (999: a list that is gone)."""
    return st.builds(
        lambda op, target, form: {"type": "in_mailing_list", "operator": op, form: target},
        st.sampled_from(["is in", "is_not_in", "is active in", "is_not_active_in", "owns"]),
        st.sampled_from([PARTNERS, LIST, 999]),
        st.sampled_from(["mailing_list_id", "mailing_list"]),
    )


def _unknown_clauses() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            {"type": "not_in_suppression_list", "operator": "is_not_in", "suppression_list_id": 3},
            {"type": "subscriber_date_bounced", "operator": "within", "value": "30 days"},
        ]
    )


def _seeder(list_name: str, name: str, definition: list[Any]) -> Seeder:
    def seed(harness: GreenArrowHarness) -> None:
        fake = harness.fake
        if list_name not in {item["name"] for item in fake.lists.values()}:
            fake.add_list(list_name)

        def resolve(clause: Any) -> Any:
            if not isinstance(clause, dict):
                return clause
            out = dict(clause)
            for form in ("mailing_list_id", "mailing_list"):
                named = out.get(form)
                if isinstance(named, str):
                    known = named in {item["name"] for item in fake.lists.values()}
                    ident = fake.list_id(named) if known else 998
                    out[form] = ident if form == "mailing_list_id" else {"id": ident}
                elif named == 999:
                    out[form] = 999 if form == "mailing_list_id" else {"id": 999}
            if isinstance(out.get("clauses"), list):
                out["clauses"] = [resolve(c) for c in out["clauses"]]
            return out

        fake.add_segment(fake.list_id(list_name), name, [resolve(c) for c in definition])

    return seed


test_greenarrow_promise = promise_test(GreenArrowPromise(), examples=20)
test_greenarrow_import = import_test(GreenArrowPromise(), examples=15)


# The shared generator draws status values from its text pool (none is a subscriber status)
# and four leaves in five that GreenArrow cannot store, so nearly every configuration it
# makes is refused by validate. This generator makes mostly what GreenArrow can store
# (status and membership leaves in nested groups, renames, prune, a second list), with
# refusals mixed in (an unknown status, a list that does not exist, a field rule), and
# runs it through the same promise steps.

STATUS_VALUES = [*STATUSES, "Active"]
MEMBER_LISTS = [PARTNERS, LIST, "Alpha"]
PROBES = [
    {"field": "email", "op": "contains", "value": "@gmail.com"},  # no such clause
    {"field": "status", "op": "equals", "value": "pending"},  # no such status
    {"list": "Alpha"},  # no such list: refused by plan
]


def _storable_rules() -> st.SearchStrategy[list[Any]]:
    status = st.fixed_dictionaries(
        {
            "field": st.just("status"),
            "op": st.sampled_from(["equals", "not_equals"]),
            "value": st.sampled_from(STATUS_VALUES),
        }
    )
    membership = st.fixed_dictionaries(
        {
            "list": st.sampled_from([PARTNERS, LIST]),
            "op": st.sampled_from(["in", "not_in", "active_in", "not_active_in"]),
        }
    )

    def grouped(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda kind, members: {kind: members},
            st.sampled_from(["any", "all"]),
            st.lists(inner, min_size=1, max_size=3),
        )

    tree = st.recursive(st.one_of(status, membership), grouped, max_leaves=6)
    return st.lists(tree, min_size=1, max_size=3)


@st.composite
def _storable_lists(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    segments = []
    for name in names:
        segment: dict[str, Any] = {"name": name, "rules": draw(_storable_rules())}
        if draw(st.booleans()):
            segment["match"] = "any"
        if draw(st.integers(0, 3)) == 0:
            segment["renamed_from"] = [draw(st.sampled_from([n for n in NAMES if n != name]))]
        segments.append(segment)
    probe = draw(st.sampled_from([None] * 2 * len(PROBES) + PROBES))
    if probe is not None:  # about one configuration in three probes a refusal
        segments[0]["rules"].append(probe)
    lists: list[dict[str, Any]] = [
        {"name": LIST, "prune": draw(st.booleans()), "segments": segments}
    ]
    if draw(st.booleans()):
        rules = draw(_storable_rules())
        lists.append({"name": PARTNERS, "segments": [{"name": "Partners all", "rules": rules}]})
    return {"lists": lists}


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first=_storable_lists(), second=_storable_lists())
def test_greenarrow_promise_on_storable_rules(
    no_real_http: respx.MockRouter, first: dict[str, Any], second: dict[str, Any]
) -> None:
    """What validate and plan accept applies with one write per change and converges, and
    import of the result plans clean, on configurations GreenArrow can mostly store."""
    no_real_http.clear()
    with tempfile.TemporaryDirectory() as root:
        harness = GreenArrowHarness(no_real_http)
        run = PromiseRun(FastSession(harness, Path(root), dict(REGISTRY)), harness)
        for block in (first, second):
            if run.step(promise_text(block)):
                run.import_round_trip()
