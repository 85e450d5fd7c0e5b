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
from click.testing import CliRunner

from providers.mautic import MauticProvider, MauticSettings
from reconciler.cli import State, cli
from reconciler.errors import AuthError, ConflictError
from reconciler.importing import import_yaml
from reconciler.provider import Provider
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
        return [LABELS[(method, path.split("/")[2])] for method, path in self.fake.writes()]

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


def test_mautic_field_name_must_be_an_alias(session: Session) -> None:
    session.write(
        lists_yaml()
        .replace("name: Frequency", "name: How Often")
        .replace("field: Frequency", "field: How Often")
    )
    _, result = session.apply()
    failed = [o for o in result.outcomes if o.status == "failed"]
    assert "declared by alias" in failed[0].message


def test_mautic_unlistable_field_is_reported(session: Session, fake: FakeMautic) -> None:
    fake.add_field("Frequency", "frequency", "select", ["Weekly", "Monthly"], listable=False)
    session.write(lists_yaml())
    _, result = session.apply()
    failed = [o for o in result.outcomes if o.status == "failed"]
    assert "Available for segments" in failed[0].message


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
    assert [r.url.params["start"] for r in pages] == ["0", "2", "4"]


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


def test_mautic_unpublishing_a_segment_in_use_is_a_clear_conflict(
    session: Session, fake: FakeMautic
) -> None:
    session.write(lists_yaml(MEMBERSHIP))
    session.apply()
    applied(session, lists_yaml(MEMBERSHIP))
    session.write(lists_yaml(MEMBERSHIP + "        options: {isPublished: false}\n"))
    _, result = session.apply()
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert "cannot be unpublished" in outcome.message and "422" in outcome.message


def test_mautic_live_field_type_refuses_before_any_write(
    session: Session, fake: FakeMautic
) -> None:
    fields = "      - {name: country, type: text}\n"
    session.write(
        one(
            "        rules:\n          - {field: country, op: contains, value: al}\n", fields=fields
        )
    )
    _, result = session.apply()
    (outcome,) = [o for o in result.outcomes if o.status == "failed"]
    assert "operator 'contains' is not allowed on Mautic country field 'country'" in outcome.message
    assert not bodies(fake, "POST", "/segments/new")


def test_mautic_datetime_absolute_values_are_refused(session: Session, fake: FakeMautic) -> None:
    fake.add_field("Last order", "last_order", "datetime")
    fields = "      - {name: last_order, type: date}\n"
    session.write(
        one(
            "        rules:\n          - {field: last_order, op: after, value: '2024-01-01'}\n",
            fields=fields,
        )
    )
    _, result = session.apply()
    (outcome,) = [o for o in result.outcomes if o.status == "failed"]
    assert "shifts from the instance's timezone" in outcome.message
    session.write(
        one(
            "        rules:\n          - {field: last_order, op: after, value: -7 days}\n",
            fields=fields,
        )
    )
    _, again = session.apply()
    assert again.ok, again.outcomes


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
        "field 'name' has no Mautic equivalent",
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
