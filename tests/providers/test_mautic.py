"""Mautic against its stateful fake: the shared contract, wire calls, quirks and errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pydantic
import pytest
import respx
import yaml
from click.testing import CliRunner

from providers.mautic import MauticProvider, MauticSettings
from reconciler.cli import State, cli
from reconciler.errors import AuthError, ConfigError, ConfigErrors, ConflictError
from reconciler.importing import import_yaml
from reconciler.provider import Provider, Scope
from tests.providers.contract import (
    HttpContract,
    ProviderHarness,
    Session,
    actions,
    lists_yaml,
)
from tests.providers.fakes import FakeClock
from tests.providers.fakes.mautic import BASE_URL, FakeMautic

ROOT = Path(__file__).resolve().parents[2]
REGISTRY: dict[str, type[Provider]] = {"mautic": MauticProvider}
LABELS = {
    ("POST", "categories"): "create_list",
    ("POST", "fields"): "create_field",
    ("POST", "segments"): "create_segment",
    ("PATCH", "segments"): "update_segment",
    ("PUT", "segments"): "put_segment",
    ("DELETE", "segments"): "delete_segment",
}


class MauticHarness(ProviderHarness):
    key: ClassVar[str] = "mautic"
    provider_class: ClassVar[type[Provider]] = MauticProvider

    def __init__(self, router: respx.MockRouter, oauth: bool = False) -> None:
        self.fake = FakeMautic()
        self.fake.mount(router)
        self.oauth = oauth

    def target_yaml(self) -> str:
        if self.oauth:
            credentials = (
                f"client_id: {self.fake.client_id}\nclient_secret: {self.fake.client_secret}"
            )
        else:
            credentials = f"username: {self.fake.username}\npassword: {self.fake.password}"
        return f"base_url: {self.fake.base_url}\n{credentials}"

    def edit_out_of_band(self, list_name: str, segment_name: str) -> None:
        segment = self.fake.segment_named(segment_name)
        assert segment["category"]["title"] == list_name
        segment["filters"] = [
            {"glue": "and", "field": "email", "object": "lead", "type": "email"}
            | {"operator": "like", "properties": {"filter": "@edited.example"}}
        ]

    def writes(self) -> list[str]:
        return self.labels(self.fake)

    @staticmethod
    def labels(fake: FakeMautic) -> list[str]:
        return [LABELS[(method, path.split("/")[2])] for method, path in fake.writes()]

    def break_auth(self) -> None:
        self.fake.password = self.fake.client_secret = "another-secret-entirely"
        self.fake.expire_tokens()

    def rate_limit(self) -> None:
        self.fake.rate_limited = True


class TestMauticContract(HttpContract):
    @pytest.fixture
    def harness(self, no_real_http: respx.MockRouter) -> ProviderHarness:
        return MauticHarness(no_real_http)


class TestMauticOAuthContract(HttpContract):
    @pytest.fixture
    def harness(self, no_real_http: respx.MockRouter) -> ProviderHarness:
        return MauticHarness(no_real_http, oauth=True)


@pytest.fixture
def harness(no_real_http: respx.MockRouter) -> MauticHarness:
    return MauticHarness(no_real_http)


@pytest.fixture
def fake(harness: MauticHarness) -> FakeMautic:
    return harness.fake


@pytest.fixture
def session(harness: MauticHarness, tmp_path: Path) -> Session:
    return Session(harness, tmp_path, dict(REGISTRY))


@pytest.fixture
def oauth(harness: MauticHarness, session: Session) -> FakeMautic:
    """The session's target uses OAuth2; the fake's tokens expire on the session's clock."""
    harness.oauth = True
    harness.fake.clock = session.clock
    return harness.fake


def applied(session: Session, lists: str) -> None:
    session.write(lists)
    _, result = session.apply()
    assert result.ok, result.outcomes


def refused(session: Session) -> list[ConfigError]:
    """The problems ``plan`` refuses the written configuration with."""
    with pytest.raises(ConfigError) as caught:
        session.plan()
    error = caught.value
    return list(error.errors) if isinstance(error, ConfigErrors) else [error]


def line_of(session: Session, fragment: str) -> int:
    """The 1-based line of the one line holding ``fragment`` in the session's YAML."""
    text = (session.root / "reconciler.yaml").read_text()
    (index,) = [i for i, line in enumerate(text.splitlines()) if fragment in line]
    return index + 1


def bodies(fake: FakeMautic, method: str, suffix: str) -> list[Any]:
    return [
        json.loads(r.content)
        for r in fake.requests
        if r.method == method and r.url.path.endswith(suffix)
    ]


FIELDS = """\
      - {name: Frequency, type: select, options: [Weekly, Monthly]}
      - {name: country, type: select, options: [France, Wales]}
      - {name: age, type: number}
      - {name: vip, type: boolean}
      - {name: hobbies, type: multiselect, options: [chess, golf]}
"""


def one(segments: str, name: str = "Only", fields: str = FIELDS) -> str:
    """A list with the usual fields and one segment (``segments`` starts at ``rules:``)."""
    head = "lists:\n  - name: Newsletter\n    prune: true\n    fields:\n"
    return head + fields + f"    segments:\n      - name: {name}\n" + segments


# -- settings and authentication -------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"base_url": BASE_URL},
        {"base_url": BASE_URL, "username": "u"},
        {"base_url": BASE_URL, "username": "u", "password": "p", "client_id": "c"},
        {"base_url": BASE_URL, "username": "u", "password": "p"}
        | {"client_id": "c", "client_secret": "s"},
        {"username": "u", "password": "p"},
        {"base_url": BASE_URL + "/api", "username": "u", "password": "p"},
        {"base_url": "mautic.example.com", "username": "u", "password": "p"},
        {"base_url": BASE_URL, "username": "u", "password": "p", "api_key": "k"},
    ],
    ids=[
        "none",
        "half basic",
        "basic and half oauth",
        "both",
        "no url",
        "api url",
        "no scheme",
        "extra",
    ],
)
def test_mautic_settings_refuse(settings: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        MauticSettings.model_validate(settings)


def test_mautic_settings_hide_secrets() -> None:
    settings = MauticSettings.model_validate(
        {"base_url": BASE_URL, "client_id": "c", "client_secret": "very-secret-value"}
    )
    assert "very-secret-value" not in repr(settings)


def test_mautic_basic_auth_reads_under_api(session: Session, fake: FakeMautic) -> None:
    session.write(lists_yaml())
    session.plan()
    first = fake.requests[0]
    assert first.headers["Authorization"].startswith("Basic ")
    assert {r.url.path for r in fake.requests} == {
        "/api/categories",
        "/api/fields/contact",
        "/api/segments",
    }


def test_mautic_oauth_token_is_fetched_once_and_reused(session: Session, oauth: FakeMautic) -> None:
    applied(session, lists_yaml())
    tokens = [r for r in oauth.requests if r.url.path == "/oauth/v2/token"]
    assert len(tokens) == 1  # plan, apply and the re-plan of one run share it
    assert "grant_type=client_credentials" in tokens[0].content.decode()
    api = [r for r in oauth.requests if r.url.path.startswith("/api/")]
    assert all(r.headers["Authorization"].startswith("Bearer tok-") for r in api)


def test_mautic_oauth_token_refreshed_on_expiry(session: Session, oauth: FakeMautic) -> None:
    session.write(lists_yaml())
    ws = session.workspace()
    try:
        ws.fetch()
        session.clock.time += oauth.token_lifetime  # the token has expired
        ws.fetch()
    finally:
        ws.close()
    assert len(oauth.tokens) == 2
    api = [r for r in oauth.requests if r.url.path.startswith("/api/")]
    assert len(api) == 6  # fetched before use: no request was refused and sent again


def test_mautic_oauth_token_refreshed_on_401(session: Session, oauth: FakeMautic) -> None:
    session.write(lists_yaml())
    ws = session.workspace()
    try:
        ws.fetch()
        oauth.expire_tokens()  # revoked early: the server answers 401
        ws.fetch()
    finally:
        ws.close()
    statuses = [r.url.path for r in oauth.requests]
    assert statuses.count("/oauth/v2/token") == 2


def test_mautic_oauth_bad_secret_is_an_auth_error(session: Session, oauth: FakeMautic) -> None:
    session.write(lists_yaml())
    oauth.client_secret = "rotated-secret-value"
    with pytest.raises(AuthError, match="OAuth2 client credentials") as caught:
        session.plan()
    assert "another" not in str(caught.value)


def test_mautic_secrets_never_logged(
    session: Session, oauth: FakeMautic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    applied(session, lists_yaml())
    tokens = list(oauth.tokens)
    assert tokens and caplog.text
    for secret in (*tokens, oauth.client_secret):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "switch,message",
    [("api_enabled", "API is disabled"), ("basic_enabled", "Basic auth is enabled")],
)
def test_mautic_disabled_api_or_basic_is_an_auth_error(
    session: Session, fake: FakeMautic, switch: str, message: str
) -> None:
    setattr(fake, switch, False)
    session.write(lists_yaml())
    with pytest.raises(AuthError, match=message) as caught:
        session.plan()
    assert fake.password not in str(caught.value)


# -- wire calls per change -------------------------------------------------------------------

OR_SEGMENT = """\
        rules:
          - {field: country, op: equals, value: Wales}
          - any:
              - {field: email, op: ends_with, value: "@gmail.com"}
              - {field: age, op: gte, value: 100}
"""


def test_mautic_create_is_one_post_with_dnf_filters(session: Session, fake: FakeMautic) -> None:
    applied(session, one(OR_SEGMENT))
    (body,) = bodies(fake, "POST", "/segments/new")
    assert body["category"] == 1 and fake.categories[1]["title"] == "Newsletter"
    glues = [f["glue"] for f in body["filters"]]
    assert glues == ["and", "and", "or", "and"]  # each "or" opens an AND-group
    groups = [body["filters"][:2], body["filters"][2:]]
    found = {
        frozenset((f["field"], f["operator"], f["properties"]["filter"]) for f in g) for g in groups
    }
    assert found == {
        frozenset({("country", "=", "Wales"), ("email", "endsWith", "@gmail.com")}),
        frozenset({("country", "=", "Wales"), ("age", "gte", "100")}),
    }


def test_mautic_update_is_one_patch_with_every_filter(session: Session, fake: FakeMautic) -> None:
    applied(session, one(OR_SEGMENT))
    applied(session, one(OR_SEGMENT.replace("100", "250")))
    (patch,) = bodies(fake, "PATCH", "/edit")
    assert patch["name"] == "Only" and len(patch["filters"]) == 4
    assert not [r for r in fake.requests if r.method == "PUT"]
    stored = fake.segment_named("Only")["filters"]
    assert "100" in {f.get("filter") for f in stored}  # G3: stale root copies after a PATCH
    assert "250" in {f["properties"]["filter"] for f in stored}
    assert session.plan().is_empty


def test_mautic_update_of_a_vanished_segment_never_recreates_it(
    session: Session, fake: FakeMautic
) -> None:
    applied(session, one(OR_SEGMENT))
    session.write(one(OR_SEGMENT.replace("100", "250")))
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


def test_mautic_delete_of_a_vanished_segment_succeeds(session: Session, fake: FakeMautic) -> None:
    applied(session, lists_yaml(prune=True))
    session.write(
        lists_yaml(
            lists_yaml().split("      - name: Weekly")[0].split("segments:\n")[1], prune=True
        )
    )
    ws = session.workspace()
    try:
        current = ws.plan()
        del fake.segments[fake.segment_named("Weekly 2024")["id"]]
        assert ws.apply(current).ok
    finally:
        ws.close()


def test_mautic_create_list_is_a_segment_category(session: Session, fake: FakeMautic) -> None:
    applied(session, lists_yaml())
    assert bodies(fake, "POST", "/categories/new") == [{"title": "Newsletter", "bundle": "segment"}]


def test_mautic_missing_field_is_created_by_alias(session: Session, fake: FakeMautic) -> None:
    applied(session, lists_yaml())
    (body,) = bodies(fake, "POST", "/fields/contact/new")
    assert body["alias"] == "frequency" and body["type"] == "select"
    assert body["properties"]["list"] == [
        {"label": "Weekly", "value": "Weekly"},
        {"label": "Monthly", "value": "Monthly"},
    ]


def test_mautic_field_name_must_be_an_alias(session: Session, fake: FakeMautic) -> None:
    text = (
        lists_yaml()
        .replace("name: Frequency", "name: How Often")
        .replace("field: Frequency", "field: How Often")
    )
    session.write(text)
    (error,) = refused(session)
    assert 'declare it as "how_often"' in error.message
    assert error.line == line_of(session, "name: How Often")
    assert fake.writes() == []


def test_mautic_unlistable_field_is_reported_at_plan(session: Session, fake: FakeMautic) -> None:
    fake.add_field("Frequency", "frequency", "select", ["Weekly", "Monthly"], listable=False)
    session.write(lists_yaml())
    errors = refused(session)
    assert any("enable 'Available for segments'" in e.message for e in errors)
    assert fake.writes() == []


def test_mautic_queued_field_creation_is_applied(session: Session, fake: FakeMautic) -> None:
    fake.field_status = 202
    applied(session, lists_yaml())


# -- normalisation: apply then plan is empty ---------------------------------------------------


def test_mautic_values_are_compared_as_stored(session: Session, fake: FakeMautic) -> None:
    applied(
        session,
        one(
            """\
        rules:
          - {field: age, op: gt, value: 21}
          - {field: vip, op: equals, value: true}
          - {field: hobbies, op: contains, value: chess}
          - {field: first_name, op: empty}
"""
        ),
    )
    stored = {f["field"]: f["properties"]["filter"] for f in fake.segment_named("Only")["filters"]}
    assert stored == {"age": "21", "vip": 1, "hobbies": ["chess"], "firstname": None}
    assert session.plan().is_empty


def test_mautic_lowered_operators_round_trip(session: Session, fake: FakeMautic) -> None:
    applied(
        session,
        one(
            """\
        rules:
          - {field: age, op: between, value: [18, 65]}
          - {field: email, op: in, value: [a@x.com, b@x.com]}
          - {field: date_subscribed, op: before, value: "2024-01-01"}
"""
        ),
    )
    stored = [(f["glue"], f["field"], f["operator"]) for f in fake.segment_named("Only")["filters"]]
    assert stored == [
        ("and", "age", "gte"),
        ("and", "age", "lte"),
        ("and", "date_added", "lt"),
        ("and", "email", "="),
        ("or", "age", "gte"),
        ("and", "age", "lte"),
        ("and", "date_added", "lt"),
        ("and", "email", "="),
    ]
    assert session.plan().is_empty


def test_mautic_generated_options_are_not_a_diff(session: Session, fake: FakeMautic) -> None:
    options = (
        "        options: {isPublished: false, description: For VIPs, isPreferenceCenter: true}\n"
    )
    applied(session, one(OR_SEGMENT + options))
    stored = fake.segment_named("Only")
    assert (stored["alias"], stored["publicName"], stored["isPublished"]) == ("only", "Only", False)
    assert session.plan().is_empty


def test_mautic_collection_shapes_and_pages(session: Session, fake: FakeMautic) -> None:
    fake.page_cap, fake.legacy_arrays = 2, True
    category = fake.add_category("Newsletter")
    email = {
        "glue": "and",
        "field": "email",
        "object": "lead",
        "type": "email",
        "operator": "!empty",
    }
    for n in range(5):
        fake.add_segment(f"S{n}", category, [email | {"properties": {"filter": None}}])
    session.write(one("        rules:\n          - {field: email, op: not_empty}\n", name="S0"))
    current = session.plan()
    assert actions(current) == [("create_field", None)] * 4 + [
        ("delete_segment", f"S{n}") for n in range(1, 5)
    ]
    pages = [r for r in fake.requests if r.url.path == "/api/segments"]
    assert sorted(r.url.params["start"] for r in pages) == ["0", "2", "4"]  # concurrent pages


def test_mautic_empty_instance_reads_empty_arrays(session: Session, fake: FakeMautic) -> None:
    fake.fields.clear()
    session.write(lists_yaml())
    assert actions(session.plan())[0] == ("create_list", None)


def test_mautic_import_plans_to_nothing(session: Session, fake: FakeMautic) -> None:
    category = fake.add_category("Imported")
    fake.add_field("VIP", "vip", "boolean")
    vip = fake.add_segment("VIP", category, [_filter("vip", "boolean", "=", 1, glue="or")])
    legacy = {"glue": "and", "field": "email", "object": "lead", "type": "email"}
    fake.add_segment(
        "Mixed",
        category,
        [
            legacy | {"operator": "like", "filter": "gmail", "display": None},  # legacy shape
            _filter("country", "country", "in", ["Wales", "France"]),
            _filter("email", "email", "regexp", "^a.*"),
            _filter("leadlist", "leadlist", "!in", [vip], glue="or"),
            _filter("email", "email", "like", "%@x.com"),
        ],
    )
    session.write("lists: []\n")
    ws = session.workspace()
    text = import_yaml(ws.import_state("main", ["Imported"]), "main")
    ws.close()
    assert "{field: email, op: contains, value: gmail}" in text
    assert "{list: VIP, op: not_in}" in text
    assert "native: {field: email, object: lead, type: email, operator: regexp" in text
    session.write(text)
    assert session.plan().is_empty


def _filter(field: str, kind: str, operator: str, value: Any, glue: str = "and") -> dict[str, Any]:
    return {"glue": glue, "field": field, "object": "lead", "type": kind, "operator": operator} | {
        "properties": {"filter": value}
    }


# -- membership, refusals and errors ----------------------------------------------------------

MEMBERSHIP = """\
      - name: Alpha
        rules:
          - {list: Zulu, op: not_in}
          - {field: email, op: not_empty}
      - name: Zulu
        rules:
          - {field: email, op: contains, value: "@vip.example"}
"""


def test_mautic_membership_is_a_leadlist_filter(session: Session, fake: FakeMautic) -> None:
    session.write(lists_yaml(MEMBERSHIP))
    planned, first = session.apply()
    # The core creates the segment a membership rule names (Zulu) before the one naming it.
    creates = [c.segment for c in planned.changes if c.action.value == "create_segment"]
    assert creates.index("Zulu") < creates.index("Alpha")
    assert first.ok, first.outcomes
    (leadlist,) = [f for f in fake.segment_named("Alpha")["filters"] if f["field"] == "leadlist"]
    assert leadlist["operator"] == "!in"
    assert leadlist["properties"]["filter"] == [fake.segment_named("Zulu")["id"]]
    assert session.plan().is_empty


def test_mautic_unpublishing_a_segment_in_use_is_refused_at_plan(
    session: Session, fake: FakeMautic
) -> None:
    applied(session, lists_yaml(MEMBERSHIP))
    text = lists_yaml(MEMBERSHIP + "        options: {isPublished: false}\n")
    session.write(text)
    before = len(fake.writes())
    (error,) = refused(session)
    assert 'is used by the membership filter of "Alpha"' in error.message
    assert error.line == line_of(session, "options: {isPublished: false}")
    assert len(fake.writes()) == before


def test_mautic_unpublishing_refused_by_mautic_is_a_clear_conflict(
    session: Session, fake: FakeMautic
) -> None:
    """A use plan cannot see (here one made after the plan, as a campaign's would be) is
    Mautic's 422, reported as a conflict that says what to do."""
    applied(
        session,
        lists_yaml(
            MEMBERSHIP.split("      - name: Zulu")[0].replace(
                "          - {list: Zulu, op: not_in}\n", ""
            )
            + "      - name: Zulu\n        rules:\n          - {field: email, op: not_empty}\n"
        ),
    )
    session.write(
        lists_yaml(
            "      - name: Zulu\n        rules:\n          - {field: email, op: not_empty}\n"
            "        options: {isPublished: false}\n"
        )
    )
    ws = session.workspace()
    try:
        current = ws.plan()
        zulu = fake.segment_named("Zulu")["id"]
        fake.add_segment("Uses Zulu", None, [_filter("leadlist", "leadlist", "in", [zulu])])
        result = ws.apply(current)
    finally:
        ws.close()
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert "cannot be unpublished" in outcome.message and "422" in outcome.message


def test_mautic_live_field_type_refuses_before_any_write(
    session: Session, fake: FakeMautic
) -> None:
    """Issue 8: ``plan`` is a select in Mautic, declared text: refused at plan, naming the
    field, both types and the rule that uses it."""
    fake.add_field("Plan", "plan", "select", ["Gold", "Silver"])
    text = one(
        "        rules:\n          - {field: plan, op: contains, value: ol}\n",
        fields="      - {name: plan, type: text}\n",
    )
    session.write(text)
    error, rule = refused(session)
    assert 'field "plan" is declared text' in error.message
    assert "is select (its platform type is select)" in error.message
    assert 'used by segment "Only" rules[0]' in error.message
    assert error.line == line_of(session, "{name: plan, type: text}")
    assert "operator 'contains' is not allowed on Mautic select field 'plan'" in rule.message
    assert rule.line == line_of(session, "{field: plan, op: contains")
    assert fake.writes() == []


def test_mautic_datetime_absolute_values_are_refused_at_plan(
    session: Session, fake: FakeMautic
) -> None:
    """Issue 8: ``last_seen`` is a datetime declared date (its canonical type): the core sees
    no type mismatch, and the rule an absolute date cannot be written is refused at plan."""
    fake.add_field("Last seen", "last_seen", "datetime")
    fields = "      - {name: last_seen, type: date}\n"
    text = one(
        "        rules:\n          - {field: last_seen, op: after, value: '2024-01-01'}\n",
        fields=fields,
    )
    session.write(text)
    (error,) = refused(session)
    assert 'field "last_seen" is a Mautic datetime field (declared date)' in error.message
    assert 'rule last_seen after "2024-01-01"' in error.message
    assert "shifts from the instance's timezone" in error.message
    assert error.line == line_of(session, "value: '2024-01-01'")
    assert fake.writes() == []
    applied(
        session,
        one(
            "        rules:\n          - {field: last_seen, op: after, value: -7 days}\n",
            fields=fields,
        ),
    )


def test_mautic_duplicate_categories_are_a_conflict(session: Session, fake: FakeMautic) -> None:
    fake.add_category("Newsletter")
    fake.add_category("Newsletter")
    session.write(lists_yaml())
    with pytest.raises(ConflictError, match="several segment categories named 'Newsletter'"):
        session.plan()


def _cli(root: Path, *args: str) -> Any:
    state = State(registry=REGISTRY, clock=FakeClock())
    return CliRunner().invoke(
        cli, ["-c", str(root / "reconciler.yaml"), "--no-color", *args], obj=state
    )


def test_mautic_cli_validate_refuses_what_it_cannot_store(session: Session) -> None:
    session.write(
        one(
            """\
        rules:
          - {field: name, op: equals, value: Ann}
          - {field: vip, op: empty}
          - {field: email, op: contains, value: "50%"}
          - {campaign: c1, event: opened}
          - {list: VIP, op: active_in}
          - native: {glue: or, field: email, type: email, operator: like}
        options: {alias: Not An Alias, colour: red}
"""
        )
    )
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    for message in (
        "rules cannot test the standard field 'name' on this provider",
        "operator 'empty' is not supported for boolean field 'vip'",
        "'50%' holds '%'",
        "campaign behaviour rules are not supported",
        "membership operator 'active_in' is not supported",
        "(not glue; glue is set by the adapter)",
        "alias 'Not An Alias' is not in the form Mautic stores",
        "unknown option 'colour'",
    ):
        assert message in result.output, message


def test_mautic_example_validates_and_plans(
    tmp_path: Path, no_real_http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMautic()
    fake.mount(no_real_http)
    monkeypatch.setenv("MAUTIC_URL", fake.base_url)
    monkeypatch.setenv("MAUTIC_USERNAME", fake.username)
    monkeypatch.setenv("MAUTIC_PASSWORD", fake.password)
    shutil.copy(ROOT / "examples" / "mautic" / "reconciler.yaml", tmp_path)
    assert _cli(tmp_path, "validate").exit_code == 0
    applied_ = _cli(tmp_path, "apply", "--auto-approve")
    assert applied_.exit_code == 0, applied_.output
    assert _cli(tmp_path, "plan", "--detailed-exitcode").exit_code == 0
    assert os.environ["MAUTIC_PASSWORD"] not in applied_.output


# -- a green plan is a promise (issue 8) -------------------------------------------------------


def test_mautic_capabilities_are_what_it_stores() -> None:
    caps = MauticProvider.capabilities
    assert caps.field_scope == "account"
    assert caps.operators_for("name", None) == frozenset()
    assert caps.operators_for("status", None) == frozenset()
    assert caps.operators_for("first_name", None) == caps.operators["text"]
    assert caps.operators_for("date_subscribed", None) == caps.operators["date"]
    assert "in" in caps.operators_for("email", None)  # written as OR-ed "="
    assert "contains" not in caps.operators_for("date_subscribed", None)


def test_mautic_fetch_fills_account_fields_without_any_category(
    harness: MauticHarness, session: Session, fake: FakeMautic
) -> None:
    fake.add_field("Last seen", "last_seen", "datetime")
    fake.add_field("Purchase Count", "purchases", "number")
    fake.add_field("Hidden", "hidden", "text", listable=False)
    session.write("lists: []\n")
    ws = session.workspace()
    try:
        live = ws.provider("main").fetch(Scope(frozenset({"Nowhere"})))
    finally:
        ws.close()
    assert live.lists == ()
    fields = {f.name: f for f in live.account_fields["main"]}
    assert set(fields) == {"email", "firstname", "lastname", "country", "last_seen", "purchases"}
    assert (fields["last_seen"].type, fields["last_seen"].native_type) == ("date", "datetime")
    assert fields["purchases"].aliases == ("Purchase Count",)
    assert fields["purchases"].answers_to("purchase count")
    assert fields["country"].options == ("France", "Wales")


def test_mautic_existing_field_is_never_created_for_a_new_category(
    session: Session, fake: FakeMautic
) -> None:
    """Issue 8: a new category declaring the existing field ``plan`` planned ``+ field
    "plan"`` and apply wrote nothing."""
    fake.add_field("Plan", "plan", "select", ["Gold", "Silver"])
    text = one(
        "        rules:\n          - {field: plan, op: equals, value: Gold}\n",
        fields="      - {name: plan, type: select, options: [Gold, Silver]}\n",
    )
    session.write(text)
    planned_, result = session.apply()
    assert actions(planned_) == [("create_list", None), ("create_segment", "Only")]
    assert result.ok
    assert [label for label in MauticHarness.labels(fake)] == ["create_list", "create_segment"]


def test_mautic_new_field_declared_by_two_lists_is_created_once(
    session: Session, fake: FakeMautic
) -> None:
    second = (
        "  - name: Partners\n    fields:\n      - {name: tier, type: number}\n"
        "    segments:\n      - name: Top\n        rules:\n"
        "          - {field: tier, op: gt, value: 2}\n"
    )
    text = one(
        "        rules:\n          - {field: tier, op: gte, value: 1}\n",
        fields="      - {name: tier, type: number}\n",
    )
    session.write(text + second)
    planned_, result = session.apply()
    assert [a for a, _ in actions(planned_)].count("create_field") == 1
    assert result.ok
    assert [f["alias"] for f in fake.fields.values()].count("tier") == 1
    assert len(bodies(fake, "POST", "/fields/contact/new")) == 1


def test_mautic_field_declared_by_label_matches_the_live_field(
    session: Session, fake: FakeMautic
) -> None:
    fake.add_field("Purchase Count", "purchases", "number")
    text = one(
        "        rules:\n          - {field: Purchase Count, op: gt, value: 2}\n",
        fields="      - {name: Purchase Count, type: number}\n",
    )
    applied(session, text)
    assert not bodies(fake, "POST", "/fields/contact/new")
    (body,) = bodies(fake, "POST", "/segments/new")
    assert [(f["field"], f["operator"]) for f in body["filters"]] == [("purchases", "gt")]
    assert session.plan().is_empty


def test_mautic_select_value_that_is_no_option_is_refused_at_plan(
    session: Session, fake: FakeMautic
) -> None:
    """The planned field (with its declared options) is what the rules are checked against."""
    text = one("        rules:\n          - {field: Frequency, op: equals, value: Daily}\n")
    session.write(text)
    (error,) = refused(session)
    assert "'Daily' is not an option of Mautic select field 'frequency'" in error.message
    assert error.line == line_of(session, "value: Daily")
    assert fake.writes() == []
    applied(
        session, one("        rules:\n          - {field: Frequency, op: equals, value: Weekly}\n")
    )


def test_mautic_update_naming_a_segment_created_later_is_refused(
    session: Session, fake: FakeMautic
) -> None:
    """Updates run before creates: an update cannot name a segment the same plan creates."""
    applied(session, lists_yaml())
    text = lists_yaml(
        lists_yaml()
        .split("segments:\n")[1]
        .replace('"@gmail.com"}\n', '"@gmail.com"}\n          - {list: Zulu, op: not_in}\n', 1)
        + "      - name: Zulu\n        rules:\n          - {field: email, op: not_empty}\n"
    )
    session.write(text)
    before = len(fake.writes())
    (error,) = refused(session)
    assert 'segment "Zulu" gets that name (is created or renamed) by this plan only after' in (
        error.message
    )
    assert error.line == line_of(session, "{list: Zulu, op: not_in}")
    assert len(fake.writes()) == before


def test_mautic_deleting_a_segment_another_names_is_refused(
    session: Session, fake: FakeMautic
) -> None:
    applied(session, lists_yaml(MEMBERSHIP))
    zulu = fake.segment_named("Zulu")["id"]
    fake.add_segment("Elsewhere", None, [_filter("leadlist", "leadlist", "in", [zulu])])
    session.write(
        lists_yaml(
            MEMBERSHIP.split("      - name: Zulu")[0].replace(
                "          - {list: Zulu, op: not_in}\n", ""
            ),
            prune=True,
        )
    )
    before = len(fake.writes())
    (error,) = refused(session)
    assert f'segment "Zulu" (#{zulu}) is named by the membership filter of "Elsewhere"' in (
        error.message
    )
    assert len(fake.writes()) == before


def test_mautic_circular_membership_is_refused_at_plan(session: Session, fake: FakeMautic) -> None:
    applied(session, lists_yaml(MEMBERSHIP))
    session.write(
        lists_yaml(
            MEMBERSHIP.replace(
                '"@vip.example"}\n', '"@vip.example"}\n          - {list: Alpha, op: in}\n'
            )
        )
    )
    before = len(fake.writes())
    (error,) = refused(session)
    assert 'membership rule on "Alpha" makes a circular reference' in error.message
    assert error.line == line_of(session, "{list: Alpha, op: in}")
    assert len(fake.writes()) == before


def test_mautic_alias_held_by_another_segment_is_refused_at_plan(
    session: Session, fake: FakeMautic
) -> None:
    fake.add_segment("Someone else's", None, [])
    fake.segments[max(fake.segments)]["alias"] = "taken"
    session.write(one(OR_SEGMENT + "        options: {alias: taken}\n"))
    (error,) = refused(session)
    assert 'alias "taken" belongs to published segment "Someone else\'s"' in error.message
    assert fake.writes() == []


@pytest.mark.parametrize("op", ["contains", "not_contains", "starts_with", "ends_with"])
@pytest.mark.parametrize("value,mark", [("50%", "%"), ("a_b", "_")])
def test_mautic_like_wildcards_are_refused_by_validate(
    session: Session, fake: FakeMautic, op: str, value: str, mark: str
) -> None:
    session.write(
        one(f"        rules:\n          - {{field: email, op: {op}, value: '{value}'}}\n")
    )
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    # Located at the rule's own line, and naming it.
    assert f"reconciler.yaml:{line_of(session, f'op: {op}')}:" in result.output
    assert f"rules[0]: '{value}' holds '{mark}', which Mautic's {op} (SQL LIKE) reads" in (
        result.output
    )
    assert not fake.requests


def test_mautic_invalid_date_is_refused_by_validate(session: Session, fake: FakeMautic) -> None:
    session.write(
        one("        rules:\n          - {field: date_subscribed, op: after, value: 2024-13-01}\n")
    )
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    assert "'2024-13-01' is not a date Mautic accepts" in result.output
    assert not fake.requests


def test_mautic_plan_sends_nothing_while_checking(session: Session, fake: FakeMautic) -> None:
    session.write(one(OR_SEGMENT + "        options: {description: For VIPs}\n"))
    current = session.plan()
    assert current.changes
    assert {r.method for r in fake.requests} == {"GET"}


# -- import writes what validates and plans clean ----------------------------------------------


def _imported(session: Session) -> tuple[str, list[str]]:
    session.write("lists: []\n")
    ws = session.workspace()
    try:
        found = ws.import_document("main", ())
    finally:
        ws.close()
    return found.text, found.notes


def _options(text: str) -> dict[str, Any]:
    """Each imported segment's options (None: none written)."""
    data = yaml.safe_load(text)
    return {s["name"]: s.get("options") for item in data["lists"] for s in item["segments"]}


def test_mautic_standard_named_contact_fields_read_back_as_native(
    session: Session, fake: FakeMautic
) -> None:
    fake.add_field("Status", "status", "text")
    fake.add_field("Name", "name", "select", ["Ann", "Bob"])
    fake.add_field("First name (custom)", "first_name", "text")
    category = fake.add_category("Imported")
    fake.add_segment(
        "Standard names",
        category,
        [
            _filter("status", "text", "=", "active"),
            _filter("name", "select", "in", ["Ann"]),
            _filter("first_name", "text", "like", "x"),
            _filter("firstname", "text", "like", "y"),
        ],
    )
    text, notes = _imported(session)
    assert notes == []
    for alias in ("status", "name", "first_name"):
        assert f"native: {{field: {alias}, object: lead" in text
    assert "{field: first_name, op: contains, value: y}" in text
    assert "fields:" not in text
    session.write(text)
    assert session.plan().is_empty


def test_mautic_like_patterns_read_back_as_native(session: Session, fake: FakeMautic) -> None:
    category = fake.add_category("Imported")
    fake.add_segment(
        "Patterns",
        category,
        [
            _filter("email", "email", "like", "a_b"),
            _filter("email", "email", "startsWith", "50%"),
            _filter("email", "email", "endsWith", "@x.com"),
        ],
    )
    text, _ = _imported(session)
    assert "native: {field: email, object: lead, type: email, operator: like" in text
    assert "native: {field: email, object: lead, type: email, operator: startsWith" in text
    assert '{field: email, op: ends_with, value: "@x.com"}' in text
    session.write(text)
    assert session.plan().is_empty


def test_mautic_import_writes_only_options_a_person_would(
    session: Session, fake: FakeMautic
) -> None:
    applied(
        session,
        one(OR_SEGMENT)
        + "      - name: Custom\n        rules:\n          - {field: email, op: not_empty}\n"
        + "        options: {alias: my-own, publicName: Shown, isGlobal: false}\n"
        + "      - name: VIP  readers!\n        rules:\n          - {field: email, op: empty}\n"
        + "        options: {isPreferenceCenter: true, description: For VIPs}\n",
    )
    assert fake.segment_named("VIP  readers!")["alias"] == "vip--readers"
    text, _ = _imported(session)
    assert _options(text) == {
        "Only": None,
        "Custom": {"alias": "my-own", "isGlobal": False, "publicName": "Shown"},
        "VIP  readers!": {"description": "For VIPs", "isPreferenceCenter": True},
    }
    session.write(text)
    assert session.plan().is_empty


def test_mautic_import_keeps_an_alias_it_cannot_derive(session: Session, fake: FakeMautic) -> None:
    category = fake.add_category("Imported")
    fake.add_segment("Ünïcode", category, [_filter("email", "email", "!empty", None)])
    fake.add_segment("Renamed", category, [_filter("email", "email", "!empty", None)])
    fake.segment_named("Renamed")["alias"] = "old-name"
    text, _ = _imported(session)
    # The transliteration is not documented, and a renamed segment keeps its old alias.
    assert _options(text) == {"Ünïcode": {"alias": "unicode"}, "Renamed": {"alias": "old-name"}}
    session.write(text)
    assert session.plan().is_empty


def test_mautic_import_leaves_out_a_markup_description(session: Session, fake: FakeMautic) -> None:
    category = fake.add_category("Imported")
    fake.add_segment("Rich", category, [_filter("email", "email", "!empty", None)])
    fake.segment_named("Rich")["description"] = "<p>Our <b>best</b> readers</p>"
    fake.segment_named("Rich")["isGlobal"] = False
    text, notes = _imported(session)
    assert notes == []
    assert _options(text) == {"Rich": {"isGlobal": False}}
    assert "description" not in text
    session.write(text)
    assert session.plan().is_empty
    assert fake.segment_named("Rich")["description"] == "<p>Our <b>best</b> readers</p>"


def test_mautic_import_comments_out_a_second_segment_of_one_name(
    session: Session, fake: FakeMautic
) -> None:
    category = fake.add_category("Imported")
    first = fake.add_segment("Twin", category, [_filter("email", "email", "!empty", None)])
    second = fake.add_segment("Twin", category, [_filter("email", "email", "empty", None)])
    text, notes = _imported(session)
    assert notes == [
        f'list "Imported": segment "Twin" (id {second}) not imported: another live segment '
        f'(id {first}) has the name "Twin"; plan reports them as a conflict until one is '
        "renamed in the platform"
    ]
    assert text.count("- name: Twin") == 2 and "# - name: Twin" in text.replace("#   ", "# ")
    session.write(text)
    with pytest.raises(ConflictError, match='2 live segments named "Twin"'):
        session.plan()


def test_mautic_field_named_like_a_mautic_filter_is_refused(
    session: Session, fake: FakeMautic
) -> None:
    text = one(
        "        rules:\n          - {field: points, op: gt, value: 5}\n",
        fields="      - {name: points, type: number}\n",
    )
    session.write(text)
    (error,) = refused(session)
    assert '"points" is the name of one of Mautic\'s own segment filters' in error.message
    assert error.line == line_of(session, "{name: points, type: number}")
    assert fake.writes() == []


@pytest.mark.parametrize(
    "native,message",
    [
        (
            "{field: country, type: country, operator: like, properties: {filter: x}}",
            "operator 'like' is not allowed on its Mautic type country",
        ),
        (
            "{field: Frequency, type: select, operator: '=', properties: {filter: Daily}}",
            "native filter on \"Frequency\": 'Daily' is not an option of that select field",
        ),
        (
            "{field: gone_field, type: text, operator: '=', properties: {filter: x}}",
            "no contact field available for segments and no documented filter",
        ),
        (
            "{field: leadlist, type: leadlist, operator: in, properties: {filter: [999]}}",
            "names segment id 999, which does not exist",
        ),
    ],
    ids=["operator", "option", "unknown field", "unknown segment"],
)
def test_mautic_native_filters_are_checked_against_the_live_state(
    session: Session, fake: FakeMautic, native: str, message: str
) -> None:
    session.write(one(f"        rules:\n          - native: {native}\n"))
    (error,) = refused(session)
    assert message in error.message
    assert error.line == line_of(session, "- native:")
    assert fake.writes() == []


def test_mautic_native_special_filters_pass(session: Session, fake: FakeMautic) -> None:
    applied(
        session,
        one(
            "        rules:\n          - native: {field: points, type: number, operator: gt,"
            " properties: {filter: 5}}\n"
        ),
    )
    assert session.plan().is_empty


def test_mautic_renaming_a_segment_an_unchanged_rule_names_is_refused(
    session: Session, fake: FakeMautic
) -> None:
    """Membership filters name ids: after the rename, Alpha's rule would read "Zed", and the
    declaration that still says "Zulu" could never be written again."""
    applied(session, lists_yaml(MEMBERSHIP))
    renamed = MEMBERSHIP.replace(
        "      - name: Zulu\n", "      - name: Zed\n        renamed_from: [Zulu]\n"
    )
    session.write(lists_yaml(renamed))
    before = len(fake.writes())
    (error,) = refused(session)
    assert 'renaming segment "Zulu" to "Zed" changes how the membership rule of "Alpha"' in (
        error.message
    )
    assert len(fake.writes()) == before
    session.write(
        lists_yaml(renamed.replace("{list: Zulu, op: not_in}", "{list: Zed, op: not_in}"))
    )
    (error,) = refused(session)  # Alpha's update comes first, before Zulu has its new name
    assert 'segment "Zed" gets that name (is created or renamed) by this plan only after' in (
        error.message
    )
    assert len(fake.writes()) == before


# -- segments Mautic would refuse to save again: read, never written ---------------------------

HIDDEN = _filter("score", "number", "between", ["1", "9"])


def test_mautic_segment_it_cannot_save_again_is_imported_and_never_written(
    session: Session, fake: FakeMautic
) -> None:
    fake.add_field("Score", "score", "number")
    category = fake.add_category("Imported")
    fake.add_segment("Legacy range", category, [HIDDEN])
    fake.add_segment("By hand", category, [])
    text, notes = _imported(session)
    assert "operator: between" in text  # declared as it is: validate accepts it
    assert notes == [
        'list "Imported": segment "By hand" (id 2) not imported: it has no filters (its '
        "contacts are added by hand, by a campaign or through the API), and a declaration "
        "needs rules"
    ]
    session.write(text.replace("- name: Imported", "- name: Imported\n    prune: true"))
    current = session.plan()
    assert current.is_empty  # the rule-less segment is not pruned
    (unmanaged,) = current.unmanaged
    assert (unmanaged.segment, unmanaged.reason.startswith("it has no filters")) == (
        "By hand",
        True,
    )
    session.write(text.replace('filter: ["1", "9"]', 'filter: ["1", "8"]'))
    with pytest.raises(ConflictError, match="uses the hidden operator 'between'"):
        session.plan()
    assert fake.writes() == []


def test_mautic_new_native_with_a_hidden_operator_is_refused_at_plan(
    session: Session, fake: FakeMautic
) -> None:
    text = one(
        "        rules:\n          - native: {field: age, type: number, operator: between,"
        " properties: {filter: ['1', '9']}}\n"
    )
    session.write(text)
    assert _cli(session.root, "validate").exit_code == 0
    (error,) = refused(session)
    assert "operator 'between' is hidden in Mautic's segment form" in error.message
    assert error.line == line_of(session, "- native:")
    assert fake.writes() == []
