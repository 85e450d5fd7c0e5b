"""MailWizz against its stateful fake: the shared contract, wire calls, quirks and errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import pydantic
import pytest
import respx
from click.testing import CliRunner

from providers.mailwizz import MailWizzProvider, MailWizzSettings
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.errors import ApiError, AuthError, ConfigError, ConflictError
from reconciler.importing import import_yaml
from reconciler.provider import Provider
from tests.providers import contract
from tests.providers.contract import (
    HttpContract,
    ProviderHarness,
    Session,
    actions,
)
from tests.providers.fakes import FakeClock
from tests.providers.fakes.mailwizz import BASE_URL, FakeMailWizz, php_decode

ROOT = Path(__file__).resolve().parents[2]
REGISTRY: dict[str, type[Provider]] = {"mailwizz": MailWizzProvider}
LIST = "Newsletter"

SEGMENTS = """\
      - name: Gmail
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
      - name: Weekly 2024
        rules:
          - {field: Frequency, op: equals, value: Weekly}
          - {campaign: "42", event: opened, within: {days: 30}}
"""
"""The contract's segments, in rules MailWizz can store: the shared block tests
``date_subscribed after``, and MailWizz conditions reach list fields only."""


def lists_yaml(segments: str | None = None, prune: bool = False, ignore: str = "") -> str:
    return contract.lists_yaml(SEGMENTS if segments is None else segments, prune, ignore)


LABELS = {
    ("POST", "lists"): "create_list",
    ("POST", "segments"): "create_segment",
    ("PUT", "segments"): "update_segment",
    ("DELETE", "segments"): "delete_segment",
}


class MailWizzHarness(ProviderHarness):
    """The fake install starts with the list and its Frequency field (MailWizz's API has no
    documented call to create fields, so an operator would create it in the UI)."""

    key: ClassVar[str] = "mailwizz"
    provider_class: ClassVar[type[Provider]] = MailWizzProvider
    segments: ClassVar[str] = SEGMENTS

    def __init__(self, router: respx.MockRouter, provision: bool = True) -> None:
        self.fake = FakeMailWizz()
        self.fake.mount(router)
        if provision:
            self.provision_field(self.fake.add_list(LIST))

    def provision_field(self, list_uid: str) -> None:
        self.fake.add_field(list_uid, "FREQUENCY", "Frequency", "dropdown", ["Weekly", "Monthly"])

    extra: str = ""
    """More target settings, one ``key: value`` per line."""
    list_defaults: bool = True

    def target_yaml(self) -> str:
        text = f"base_url: {BASE_URL}\napi_key: {self.fake.api_key}"
        if self.list_defaults:
            text += "\nfrom_name: News\nfrom_email: news@example.com\nreply_to: news@example.com"
        return text + (f"\n{self.extra}" if self.extra else "")

    def edit_out_of_band(self, list_name: str, segment_name: str) -> None:
        segment = self.fake.segment_by_name(list_name, segment_name)
        email = self.fake.field_id(self.fake.list_uid(list_name), "EMAIL")
        segment["conditions"] = [
            {"field_id": email, "operator_id": "3", "value": "@edited.example"}
        ]

    def writes(self) -> list[str]:
        labels = []
        for method, path in self.fake.writes():
            kind = "segments" if "/segments" in path else path.split("/")[1]
            labels.append(LABELS[(method, kind)])
        return labels

    def break_auth(self) -> None:
        self.fake.api_key = "another-key-entirely"

    def rate_limit(self) -> None:
        self.fake.rate_limited = True


class TestMailWizzContract(HttpContract):
    @pytest.fixture
    def harness(self, no_real_http: respx.MockRouter) -> ProviderHarness:
        return MailWizzHarness(no_real_http)

    def test_plan_apply_then_plan_is_empty(self, session: Session) -> None:
        """From nothing: the list is created, the field cannot be (a clear failure, and its
        segment is skipped); once someone creates the field, apply finishes the job."""
        harness = session.harness
        assert isinstance(harness, MailWizzHarness)
        harness.fake.lists.clear()
        session.write(lists_yaml())
        first, result = session.apply()
        assert actions(first) == [
            ("create_list", None),
            ("create_field", None),
            ("create_segment", "Gmail"),
            ("create_segment", "Weekly 2024"),
        ]
        statuses = [o.status for o in result.outcomes]
        assert statuses == ["applied", "failed", "applied", "skipped"]
        assert "create it in the list's fields in MailWizz" in result.outcomes[1].message
        harness.provision_field(harness.fake.list_uid(LIST))
        again, result = session.apply()
        assert actions(again) == [("create_segment", "Weekly 2024")]
        assert result.ok, result.outcomes
        assert session.plan().is_empty


# -- fixtures for the quirk tests ---------------------------------------------------------------


@pytest.fixture
def harness(no_real_http: respx.MockRouter) -> MailWizzHarness:
    return MailWizzHarness(no_real_http)


@pytest.fixture
def fake(harness: MailWizzHarness) -> FakeMailWizz:
    return harness.fake


@pytest.fixture
def session(harness: MailWizzHarness, tmp_path: Path) -> Session:
    return Session(harness, tmp_path, dict(REGISTRY))


def applied(session: Session, lists: str) -> None:
    session.write(lists)
    _, result = session.apply()
    assert result.ok, result.outcomes


def forms(fake: FakeMailWizz, method: str) -> list[dict[str, Any]]:
    return [php_decode(r.content) for r in fake.requests if r.method == method]


def _cli(root: Path, *args: str) -> Any:
    state = State(registry=REGISTRY, clock=FakeClock())
    return CliRunner().invoke(
        cli, ["-c", str(root / "reconciler.yaml"), "--no-color", *args], obj=state
    )


def one(rules: str, name: str = "Seg", match: str = "all") -> str:
    return f"      - name: {name}\n        match: {match}\n        rules:\n{rules}"


# -- settings and authentication ----------------------------------------------------------------

BASE = {"base_url": BASE_URL, "api_key": "k-123456"}


@pytest.mark.parametrize(
    "settings",
    [
        {"api_key": "k"},
        {"base_url": BASE_URL},
        {**BASE, "api_key": " "},
        {**BASE, "base_url": "mail.example.com/api"},
        {**BASE, "max_segment_conditions": 0},
        {**BASE, "company": {"planet": "Mars"}},
        {**BASE, "password": "p"},
    ],
    ids=["no url", "no key", "blank key", "no scheme", "zero limit", "bad company", "extra"],
)
def test_mailwizz_settings_refuse(settings: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        MailWizzSettings.model_validate(settings)


def test_mailwizz_settings_defaults_and_secrecy() -> None:
    settings = MailWizzSettings.model_validate({**BASE, "base_url": BASE_URL + "/"})
    assert settings.base_url == BASE_URL
    assert settings.max_segment_conditions == 3
    assert settings.list_defaults() is None
    assert "k-123456" not in repr(settings)


def test_mailwizz_sends_the_key_as_x_api_key(session: Session, fake: FakeMailWizz) -> None:
    session.write(lists_yaml())
    session.plan()
    first = fake.requests[0]
    assert first.headers["X-API-KEY"] == fake.api_key
    assert str(first.url) == f"{BASE_URL}/lists?page=1&per_page=50"


def test_mailwizz_refused_key_is_an_auth_error_without_the_key(
    session: Session, fake: FakeMailWizz
) -> None:
    session.write(lists_yaml())
    fake.api_key = "the-server-wants-another"
    with pytest.raises(AuthError) as caught:
        session.plan()
    assert "Invalid API key" in str(caught.value) and "400" in str(caught.value)
    assert "mw-test-api-key" not in str(caught.value)


# -- writes: encoding, one call per change ------------------------------------------------------


def test_mailwizz_create_is_one_form_post_with_every_condition(
    session: Session, fake: FakeMailWizz
) -> None:
    applied(session, lists_yaml())
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 2
    assert all(r.headers["Content-Type"] == "application/x-www-form-urlencoded" for r in posts)
    uid = fake.list_uid(LIST)
    body = dict(parse_qsl(posts[1].content.decode()))
    assert body == {
        "name": "Weekly 2024",
        "operator_match": "all",
        "conditions[0][field_id]": fake.field_id(uid, "FREQUENCY"),
        "conditions[0][operator_id]": "1",
        "conditions[0][value]": "Weekly",
        "campaign_conditions[0][action]": "open",
        "campaign_conditions[0][campaign_id]": "42",
        "campaign_conditions[0][time_comparison_operator]": "lte",
        "campaign_conditions[0][time_value]": "30",
        "campaign_conditions[0][time_unit]": "day",
    }
    assert b"conditions%5B0%5D%5Bfield_id%5D=" in posts[1].content


def test_mailwizz_rename_is_one_real_put_with_the_complete_condition_set(
    session: Session, fake: FakeMailWizz
) -> None:
    applied(session, lists_yaml())
    renamed = SEGMENTS.replace(
        "- name: Weekly 2024\n", "- name: Weekly\n        renamed_from: [Weekly 2024]\n"
    )
    applied(session, lists_yaml(renamed))
    (put,) = [r for r in fake.requests if r.method == "PUT"]
    assert "X-HTTP-Method-Override" not in put.headers
    form = php_decode(put.content)
    assert form["name"] == "Weekly"
    assert form["conditions"]["0"]["value"] == "Weekly"
    assert form["campaign_conditions"]["0"]["campaign_id"] == "42"
    assert fake.segment_by_name(LIST, "Weekly")["campaign_conditions"]
    assert fake.ever_without_conditions() == []


def test_mailwizz_update_to_fewer_conditions_omits_the_empty_kind(
    session: Session, fake: FakeMailWizz
) -> None:
    applied(session, lists_yaml())
    applied(session, lists_yaml(SEGMENTS.replace('          - {campaign: "42"', "          #")))
    (form,) = forms(fake, "PUT")
    assert "campaign_conditions" not in form
    assert fake.segment_by_name(LIST, "Weekly 2024")["campaign_conditions"] == []


def test_mailwizz_fake_refuses_a_post_with_a_method_override(fake: FakeMailWizz) -> None:
    import httpx

    uid = fake.list_uid(LIST)
    seg = fake.add_segment(uid, "S", [(fake.field_id(uid, "EMAIL"), "3", "x")])
    with httpx.Client(transport=httpx.MockTransport(fake.handle)) as client:
        answer = client.post(
            f"{BASE_URL}/lists/{uid}/segments/{seg}",
            headers={"X-API-KEY": fake.api_key, "X-HTTP-Method-Override": "PUT"},
            data={"name": "T"},
        )
    assert answer.status_code == 400
    assert answer.json()["error"] == "Only PUT requests allowed for this endpoint."


# -- reading: pagination, normalisation ---------------------------------------------------------


def test_mailwizz_reads_follow_pagination_to_the_end(session: Session, fake: FakeMailWizz) -> None:
    fake.max_per_page = 10
    for n in range(12):
        fake.add_list(f"Other {n:02d}")
    uid = fake.list_uid(LIST)
    email = fake.field_id(uid, "EMAIL")
    for n in range(25):
        fake.add_segment(uid, f"S{n:02d}", [(email, "3", f"@x{n}.com")])
    session.write(lists_yaml("      []\n"))
    current = session.plan()
    assert len(current.unmanaged) == 25
    pages = [r.url.params["page"] for r in fake.requests if r.url.path.endswith("/segments")]
    assert pages == ["1", "2", "3"]


def test_mailwizz_empty_collections_have_null_pages(session: Session, fake: FakeMailWizz) -> None:
    session.write(lists_yaml("      []\n"))
    assert session.plan().is_empty


def test_mailwizz_normalises_live_conditions(session: Session, fake: FakeMailWizz) -> None:
    uid = fake.list_uid(LIST)
    email, freq = fake.field_id(uid, "EMAIL"), fake.field_id(uid, "FREQUENCY")
    fake.add_segment(
        uid,
        "Gmail",
        [(email, "3", " @gmail.com "), (email, "3", "@gmail.com")],
        match="any",
    )
    fake.add_segment(
        uid,
        "Weekly 2024",
        [(freq, "1", "Weekly")],
        campaign_conditions=[
            {
                "action": "open",
                "campaign_id": "42",
                "time_comparison_operator": "lte",
                "time_value": "30",
                "time_unit": "day",
            }
        ],
    )
    session.write(lists_yaml())
    assert session.plan().is_empty
    assert not fake.writes()


def test_mailwizz_counts_and_dates_are_never_compared(session: Session, fake: FakeMailWizz) -> None:
    applied(session, lists_yaml())
    first = session.live("Gmail")
    assert session.plan().is_empty and session.plan().is_empty
    assert session.live("Gmail") == first


def test_mailwizz_duplicate_values_are_sent_once(session: Session, fake: FakeMailWizz) -> None:
    rules = (
        "          - {field: email, op: contains, value: x}\n"
        "          - {field: EMAIL, op: contains, value: ' x '}\n"
    )
    applied(session, lists_yaml(one(rules)))
    (form,) = forms(fake, "POST")
    assert list(form["conditions"]) == ["0"]
    assert session.plan().is_empty


# -- limits and what cannot be stored -----------------------------------------------------------

FOUR = "".join(f"          - {{field: email, op: contains, value: v{n}}}\n" for n in range(4))


def test_mailwizz_validate_uses_the_targets_condition_limit(session: Session) -> None:
    session.write(lists_yaml(one(FOUR)))
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    assert "more than this provider's limit of 3" in result.output


def test_mailwizz_raised_limit_passes_validate_and_the_server_decides(
    session: Session, harness: MailWizzHarness, fake: FakeMailWizz
) -> None:
    harness.extra = "max_segment_conditions: 4"
    session.write(lists_yaml(one(FOUR)))
    assert _cli(session.root, "validate").exit_code == 0
    _, result = session.apply()
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert "You are only allowed to add 3 segment conditions." in outcome.message
    fake.max_segment_conditions = 4
    _, result = session.apply()
    assert result.ok


def test_mailwizz_in_expanding_over_the_limit_is_refused_by_validate(
    session: Session, fake: FakeMailWizz
) -> None:
    rules = "          - {field: Frequency, op: in, value: [Weekly, Monthly, Daily, Hourly]}\n"
    session.write(lists_yaml(one(rules, match="any")))
    with pytest.raises(ConfigError) as caught:
        session.apply()
    assert "reconciler.yaml:" in str(caught.value)
    assert "the rules need 4 conditions, more than this provider's limit of 3" in str(caught.value)
    assert not fake.writes()


def test_mailwizz_cli_validate_refuses_what_it_cannot_store(session: Session) -> None:
    rules = (
        "          - {field: date_subscribed, op: equals, value: '2024-01-01'}\n"
        "          - {field: email, op: gte, value: a}\n"
        "          - {campaign: abc, event: opened}\n"
        "          - {list: VIP, op: not_in}\n"
        "          - {field: Frequency, op: not_in, value: [Weekly, Monthly]}\n"
        "          - {field: email, op: equals, value: '<b>x</b>'}\n"
    )
    session.write(lists_yaml(one(rules, match="any")))
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    out = result.output
    assert "field 'date_subscribed' is not a MailWizz list field" in out
    assert "operator 'gte' is not supported for text field 'email'" in out
    assert "must be a whole number" in out
    assert "list membership rules are not supported" in out
    assert "'not_in' an all-group" in out
    assert "which MailWizz rewrites" in out


# -- lists, fields, deletes, conflicts, versions -------------------------------------------------


def test_mailwizz_missing_list_without_defaults_is_a_clear_error(
    session: Session, harness: MailWizzHarness, fake: FakeMailWizz
) -> None:
    fake.lists.clear()
    harness.list_defaults = False
    session.write(lists_yaml())
    _, result = session.apply()
    assert result.outcomes[0].status == "failed"
    assert "needs from_name, from_email and reply_to" in result.outcomes[0].message
    assert not fake.writes()


def test_mailwizz_created_list_carries_the_defaults(
    session: Session, harness: MailWizzHarness, fake: FakeMailWizz
) -> None:
    fake.lists.clear()
    harness.extra = "company: {name: Example Ltd, country: Wales}"
    session.write(lists_yaml(one("          - {field: email, op: ends_with, value: .org}\n")))
    _, result = session.apply()
    statuses = [(o.change.action.value, o.status) for o in result.outcomes]
    assert statuses == [
        ("create_list", "applied"),
        ("create_field", "failed"),  # Frequency: no documented call creates fields
        ("create_segment", "applied"),
    ]
    form = forms(fake, "POST")[0]
    assert form["general"] == {"name": LIST, "description": LIST}
    assert form["defaults"] == {
        "from_name": "News",
        "from_email": "news@example.com",
        "reply_to": "news@example.com",
    }
    assert form["company"] == {"name": "Example Ltd", "country": "Wales"}


def test_mailwizz_delete_is_soft_and_hidden_from_the_next_plan(
    session: Session, fake: FakeMailWizz
) -> None:
    applied(session, lists_yaml(prune=True))
    applied(session, lists_yaml(SEGMENTS.split("      - name: Weekly 2024")[0], prune=True))
    (gone,) = [s for s in fake.segments.values() if s["name"] == "Weekly 2024"]
    assert gone["status"] == "pending-delete"
    assert session.plan().is_empty


def test_mailwizz_two_live_segments_with_one_name_are_a_conflict(
    session: Session, fake: FakeMailWizz
) -> None:
    uid = fake.list_uid(LIST)
    email = fake.field_id(uid, "EMAIL")
    first = fake.add_segment(uid, "Gmail", [(email, "3", "@gmail.com")])
    second = fake.add_segment(uid, "Gmail", [(email, "3", "@gmail.com")])
    session.write(lists_yaml())
    with pytest.raises(ConflictError) as caught:
        session.plan()
    assert first in str(caught.value) and second in str(caught.value)


@pytest.mark.parametrize("populated", [True, False], ids=["read", "write"])
def test_mailwizz_install_older_than_2_3_8_is_named(
    session: Session, fake: FakeMailWizz, populated: bool
) -> None:
    uid = fake.list_uid(LIST)
    if populated:
        fake.add_segment(uid, "Gmail", [(fake.field_id(uid, "EMAIL"), "3", "@gmail.com")])
    fake.version = (2, 1, 13)
    session.write(lists_yaml())
    if populated:
        with pytest.raises(ApiError, match=r"2\.3\.8"):
            session.plan()
        return
    _, result = session.apply()
    assert all(o.status == "failed" for o in result.outcomes)
    assert "need MailWizz 2.3.8 or newer" in result.outcomes[0].message
    assert not fake.writes()


# -- import and the example ----------------------------------------------------------------------


def test_mailwizz_import_plans_to_nothing(session: Session, fake: FakeMailWizz) -> None:
    uid = fake.add_list("Imported")
    other = fake.add_list("Other")
    plan_field = fake.add_field(uid, "PLAN", "Plan", "dropdown", ["gold", "free"])
    fname, email = fake.field_id(uid, "FNAME"), fake.field_id(uid, "EMAIL")
    foreign = fake.field_id(other, "EMAIL")
    fake.add_segment(uid, "Mixed", [(fname, "2", "[EMPTY]"), (email, "9", "admin@")], "any")
    fake.add_segment(
        uid,
        "Behaviour",
        [(plan_field, "1", "gold"), (foreign, "3", "x")],
        campaign_conditions=[
            {
                "action": "click",
                "campaign_id": None,
                "time_comparison_operator": "gte",
                "time_value": "3",
                "time_unit": "month",
            }
        ],
    )
    session.write("lists: []\n")
    ws = session.workspace()
    text = import_yaml(ws.import_state("main", ["Imported"]), "main")
    ws.close()
    assert "{field: first_name, op: not_empty}" in text
    assert "native: {field: EMAIL, operator: not-starts, value: admin@}" in text
    assert f'native: {{field_id: "{foreign}", operator: contains, value: x}}' in text
    assert "{name: PLAN, type: select, options: [gold, free]}" in text
    assert "campaign_id: null" in text
    session.write(text)
    assert session.plan().is_empty


def test_mailwizz_example_validates_and_plans(
    tmp_path: Path, no_real_http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMailWizz()
    fake.mount(no_real_http)
    uid = fake.add_list("Newsletter")
    fake.add_field(uid, "FREQUENCY", "Frequency", "dropdown", ["Weekly", "Emergency Only"])
    fake.add_field(uid, "AGE", "Age", "number")
    monkeypatch.setenv("MAILWIZZ_API_KEY", fake.api_key)
    monkeypatch.setenv("MAILWIZZ_URL", BASE_URL)
    shutil.copy(ROOT / "examples" / "mailwizz" / "reconciler.yaml", tmp_path)
    assert _cli(tmp_path, "validate").exit_code == 0
    applied_ = _cli(tmp_path, "apply", "--auto-approve")
    assert applied_.exit_code == 0, applied_.output
    assert _cli(tmp_path, "plan", "--detailed-exitcode").exit_code == 0
    assert os.environ["MAILWIZZ_API_KEY"] not in applied_.output


def test_mailwizz_pagination_that_never_advances_is_refused() -> None:
    import httpx

    from providers._http import HttpClient
    from providers.mailwizz.api import MailWizzApi
    from reconciler.provider import ProviderContext

    def handler(request: httpx.Request) -> httpx.Response:
        data = {"next_page": 1, "records": [{"general": {"list_uid": "a1", "name": "A"}}]}
        return httpx.Response(200, json={"status": "success", "data": data})

    context = ProviderContext(clock=FakeClock(), http_transport=httpx.MockTransport(handler))
    with (
        HttpClient(base_url=BASE_URL, context=context) as http,
        pytest.raises(ApiError, match="next_page 1 after page 1"),
    ):
        MailWizzApi(http).lists()
