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
from tests.providers.promise import FieldSpec, PromiseHarness, promise_test

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
        """From nothing: apply could create the list but not its Frequency field (the API
        has no call for it), so plan refuses before any write, naming the field and the
        merge tag to create; once someone creates both in MailWizz, apply does the rest."""
        harness = session.harness
        assert isinstance(harness, MailWizzHarness)
        harness.fake.lists.clear()
        session.write(lists_yaml())
        with pytest.raises(ConfigError) as caught:
            session.plan()
        message = str(caught.value)
        assert "reconciler.yaml:16:" in message  # the field's name in fields:
        assert 'field "Frequency" does not exist in list "Newsletter"' in message
        assert "create it in MailWizz with the merge tag FREQUENCY" in message
        assert "Dropdown field with the options Weekly, Monthly" in message
        assert not harness.fake.writes()
        harness.provision_field(harness.fake.add_list(LIST))
        first, result = session.apply()
        assert actions(first) == [
            ("create_segment", "Gmail"),
            ("create_segment", "Weekly 2024"),
        ]
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
    forms = [dict(parse_qsl(post.content.decode())) for post in posts]
    (body,) = [form for form in forms if form["name"] == "Weekly 2024"]  # any order: concurrent
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
    plans = session.plan(), session.plan()
    assert plans[0].is_empty and plans[1].is_empty
    assert plans[0].fingerprint == plans[1].fingerprint
    again = session.live("Gmail")
    assert again.member_count != first.member_count  # the count moves on every read ...
    uncounted = {"member_count": None}
    assert again.model_copy(update=uncounted) == first.model_copy(update=uncounted)  # ... only


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
    assert "rules cannot test the standard field 'date_subscribed'" in out
    assert "operator 'gte' is not supported for the standard field 'email'" in out
    assert "must be a whole number" in out
    assert "list membership rules are not supported" in out
    assert "'not_in' an all-group" in out
    assert "which MailWizz rewrites" in out


# -- lists, fields, deletes, conflicts, versions -------------------------------------------------


NO_FIELDS = """\
lists:
  - name: Newsletter
    segments:
      - name: Org
        rules:
          - {field: email, op: ends_with, value: .org}
"""


def test_mailwizz_missing_list_without_defaults_is_refused_by_plan(
    session: Session, harness: MailWizzHarness, fake: FakeMailWizz
) -> None:
    fake.lists.clear()
    harness.list_defaults = False
    session.write(NO_FIELDS)
    result = _cli(session.root, "plan")
    assert result.exit_code == 1
    assert "reconciler.yaml:10:5:" in result.output  # the list's name
    assert "needs from_name, from_email and reply_to" in result.output
    assert not fake.writes()


def test_mailwizz_list_name_mailwizz_refuses_is_refused_by_plan(
    session: Session, fake: FakeMailWizz
) -> None:
    fake.lists.clear()
    session.write(NO_FIELDS.replace("name: Newsletter", "name: N"))
    result = _cli(session.root, "plan")
    assert result.exit_code == 1
    assert "MailWizz list names need at least 2 characters" in result.output
    assert not fake.writes()


def test_mailwizz_created_list_carries_the_defaults(
    session: Session, harness: MailWizzHarness, fake: FakeMailWizz
) -> None:
    fake.lists.clear()
    harness.extra = "company: {name: Example Ltd, country: Wales}"
    session.write(NO_FIELDS)
    _, result = session.apply()
    statuses = [(o.change.action.value, o.status) for o in result.outcomes]
    assert statuses == [("create_list", "applied"), ("create_segment", "applied")]
    form = forms(fake, "POST")[0]
    assert form["general"] == {"name": LIST, "description": LIST}
    assert form["defaults"] == {
        "from_name": "News",
        "from_email": "news@example.com",
        "reply_to": "news@example.com",
    }
    assert form["company"] == {"name": "Example Ltd", "country": "Wales"}
    assert session.plan().is_empty


def test_mailwizz_missing_field_is_refused_by_plan_naming_the_tag(
    session: Session, fake: FakeMailWizz
) -> None:
    """The list exists without the declared Score field: plan refuses (exit 1, file:line)
    instead of planning a create_field that apply could not carry out."""
    session.write(
        lists_yaml(one("          - {field: Score, op: gt, value: 5}\n")).replace(
            "    fields:\n", "    fields:\n      - {name: Score, type: number}\n"
        )
    )
    result = _cli(session.root, "plan")
    assert result.exit_code == 1, result.output
    assert "reconciler.yaml:16:10:" in result.output  # the field's name
    assert 'field "Score" does not exist in list "Newsletter"' in result.output
    assert "create it in MailWizz with the merge tag SCORE, as a Text field" in result.output
    assert "create_field" not in result.output
    assert not fake.writes()


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


@pytest.mark.parametrize("populated", [True, False], ids=["segments", "no segments"])
def test_mailwizz_install_older_than_2_3_8_is_named_by_plan(
    session: Session, fake: FakeMailWizz, populated: bool
) -> None:
    """Reading a segment (with segments) or the condition operators (check_change, without
    any) hits a route 2.3.8 added: plan names the version before any write."""
    uid = fake.list_uid(LIST)
    if populated:
        fake.add_segment(uid, "Gmail", [(fake.field_id(uid, "EMAIL"), "3", "@gmail.com")])
    fake.version = (2, 1, 13)
    session.write(lists_yaml())
    with pytest.raises(ApiError, match=r"need MailWizz 2\.3\.8 or newer"):
        session.plan()
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
    fake.add_field(uid, "AGE", "Age")  # a number lives in a text field
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


# -- issue 8: what validate and plan accept, apply writes; what import writes, plans clean -----


def imported(session: Session) -> Any:
    """``reconciler import`` of the target, through the CLI (notes go to stderr)."""
    result = _cli(session.root, "import", "--target", "main")
    assert result.exit_code == 0, result.output
    return result


def adopt(session: Session, text: str) -> None:
    """Use the imported YAML as the configuration: it validates and plans to nothing."""
    session.write(text)
    checked = _cli(session.root, "validate")
    assert checked.exit_code == 0, checked.output
    planned = _cli(session.root, "plan", "--detailed-exitcode")
    assert planned.exit_code == 0, planned.output


@pytest.mark.parametrize("op", ["contains", "not_contains", "starts_with", "ends_with"])
@pytest.mark.parametrize("value", ["50%", "a_b", "back\\\\slash"])
def test_mailwizz_like_wildcards_are_refused_by_validate(
    session: Session, fake: FakeMailWizz, op: str, value: str
) -> None:
    """MailWizz does not escape LIKE wildcards: offline, located, with the reason."""
    session.write(lists_yaml(one(f"          - {{field: email, op: {op}, value: '{value}'}}\n")))
    fake.requests.clear()
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    assert "reconciler.yaml:21:" in result.output  # the rule's own line
    assert f"which MailWizz puts unescaped into an SQL LIKE pattern for {op}" in result.output
    assert not fake.requests  # offline


def test_mailwizz_like_pattern_as_native_is_stored_as_written(
    session: Session, fake: FakeMailWizz
) -> None:
    rules = "          - native: {field: EMAIL, operator: contains, value: '50%'}\n"
    applied(session, lists_yaml(one(rules)))
    (form,) = forms(fake, "POST")
    assert form["conditions"]["0"]["value"] == "50%"
    assert form["conditions"]["0"]["operator_id"] == "3"
    assert session.plan().is_empty


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("{field: Frequency, op: equals, value: '[DATE]'}", "value tag [DATE]"),
        ("{field: email, op: equals, value: '[EMPTY]'}", "use op: empty"),
        ("{field: Frequency, op: in, value: [Weekly, 2.5]}", "as a whole number"),
    ],
)
def test_mailwizz_values_the_server_reads_otherwise_are_refused_by_validate(
    session: Session, rule: str, reason: str
) -> None:
    session.write(lists_yaml(one(f"          - {rule}\n", match="any")))
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    assert reason in result.output


def test_mailwizz_gt_needs_a_whole_number_on_a_number_field(session: Session) -> None:
    block = lists_yaml(one("          - {field: Age, op: gt, value: adult}\n")).replace(
        "    fields:\n", "    fields:\n      - {name: Age, type: number}\n"
    )
    session.write(block)
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    assert "gt needs a whole number" in result.output


def test_mailwizz_gt_on_a_number_field_is_greater_and_imports_as_native(
    session: Session, fake: FakeMailWizz
) -> None:
    """A declared number field is a text field in MailWizz; gt is 'greater' against a whole
    number. Import reads it back native (the live field is text, which takes no gt)."""
    uid = fake.list_uid(LIST)
    fake.add_field(uid, "AGE", "Age")
    block = lists_yaml(one("          - {field: Age, op: gt, value: 17}\n")).replace(
        "    fields:\n", "    fields:\n      - {name: Age, type: number}\n"
    )
    applied(session, block)
    (form,) = forms(fake, "POST")
    assert form["conditions"]["0"] == {
        "field_id": fake.field_id(uid, "AGE"),
        "operator_id": "7",
        "value": "17",
    }
    assert session.plan().is_empty
    text = imported(session).stdout
    assert '- {native: {field: AGE, operator: greater, value: "17"}}' in text
    assert "AGE" not in text.split("segments:")[0]  # no field declared for a native rule
    adopt(session, text)


def test_mailwizz_conditions_not_meant_literally_import_as_native(
    session: Session, fake: FakeMailWizz
) -> None:
    """Stored LIKE wildcards, greater/less (numeric or not), value tags and decimals read
    back native, so import writes YAML that validates and plans clean."""
    uid = fake.list_uid(LIST)
    email, freq = fake.field_id(uid, "EMAIL"), fake.field_id(uid, "FREQUENCY")
    note = fake.add_field(uid, "NOTE", "Note")
    fake.add_segment(uid, "Patterns", [(email, "3", "a_b"), (note, "6", "50%")], "any")
    fake.add_segment(uid, "Compared", [(note, "7", "5"), (note, "8", "abc")])
    fake.add_segment(uid, "Tagged", [(note, "1", "[DATE]"), (freq, "2", "3.5")], "any")
    fake.add_segment(uid, "Plain", [(note, "3", "ab"), (freq, "1", "Weekly")])
    session.write(lists_yaml("      []\n"))
    result = imported(session)
    text = result.stdout
    assert "Not imported" not in text and "Note:" not in result.stderr
    for native in (
        "{native: {field: EMAIL, operator: contains, value: a_b}}",
        "{native: {field: NOTE, operator: ends, value: 50%}}",
        '{native: {field: NOTE, operator: greater, value: "5"}}',
        "{native: {field: NOTE, operator: less, value: abc}}",
        '{native: {field: NOTE, operator: is, value: "[DATE]"}}',
        '{native: {field: FREQUENCY, operator: is-not, value: "3.5"}}',
    ):
        assert native in text, text
    assert "{field: NOTE, op: contains, value: ab}" in text
    assert "{name: NOTE, type: text}" in text  # declared for the canonical rule only
    adopt(session, text)


def test_mailwizz_field_tagged_like_a_standard_field_imports_as_native(
    session: Session, fake: FakeMailWizz
) -> None:
    """A custom field tagged STATUS is not the standard field status: its conditions read
    back native, the field is not declared, and the import plans clean."""
    uid = fake.list_uid(LIST)
    status = fake.add_field(uid, "STATUS", "Status")
    name = fake.add_field(uid, "NAME", "Name", "dropdown", ["a", "b"])
    fake.add_segment(uid, "Active", [(status, "1", "active"), (name, "2", "[EMPTY]")])
    session.write(lists_yaml("      []\n"))
    text = imported(session).stdout
    assert "- {native: {field: STATUS, operator: is, value: active}}" in text
    assert '- {native: {field: NAME, operator: is-not, value: "[EMPTY]"}}' in text
    assert "fields:" not in text and "field: status" not in text
    adopt(session, text)
    assert fake.writes() == []


def test_mailwizz_import_leaves_out_a_segment_over_the_limit(
    session: Session, fake: FakeMailWizz
) -> None:
    """A live segment over the target's max_segment_conditions (an admin lowered it, or
    the target's setting is lower) is written as a comment saying why; plan then reports
    it as unmanaged, not as a change."""
    uid = fake.list_uid(LIST)
    email = fake.field_id(uid, "EMAIL")
    big = fake.add_segment(uid, "Big", [(email, "3", f"@x{n}.com") for n in range(4)], "any")
    fake.add_segment(uid, "Small", [(email, "3", "@y.com")])
    session.write(lists_yaml("      []\n"))
    result = imported(session)
    reason = "the rules need 4 conditions, more than this provider's limit of 3"
    assert f'segment "Big" (id {big}) not imported: ' in result.stderr
    assert reason in result.stderr
    assert f'# Not imported: "Big" (id {big}): ' in result.stdout
    assert "#   - name: Big" in result.stdout
    assert "  - name: Small" in result.stdout
    adopt(session, result.stdout)
    current = session.plan()
    assert current.is_empty
    assert [u.segment for u in current.unmanaged] == ["Big"]


def test_mailwizz_import_of_two_segments_with_one_name_keeps_the_first(
    session: Session, fake: FakeMailWizz
) -> None:
    """MailWizz allows duplicate names: import writes the first (the oldest, as listed),
    the other as a comment with the reason, and says so on stderr."""
    uid = fake.list_uid(LIST)
    email = fake.field_id(uid, "EMAIL")
    first = fake.add_segment(uid, "Gmail", [(email, "3", "@gmail.com")])
    second = fake.add_segment(uid, "Gmail", [(email, "6", "@gmail.com")])
    session.write(lists_yaml("      []\n"))
    result = imported(session)
    reason = f'another live segment (id {first}) has the name "Gmail"'
    assert f'segment "Gmail" (id {second}) not imported: {reason}' in result.stderr
    assert f'# Not imported: "Gmail" (id {second}): {reason}' in result.stdout
    assert '#       - {field: email, op: ends_with, value: "@gmail.com"}' in result.stdout
    assert result.stdout.count("\n      - name: Gmail\n") == 1  # the oldest, not commented
    assert '- {field: email, op: contains, value: "@gmail.com"}' in result.stdout
    session.write(result.stdout)
    assert _cli(session.root, "validate").exit_code == 0
    with pytest.raises(ConflictError):  # as the comment says, until one is renamed
        session.plan()


def test_mailwizz_plan_refuses_what_apply_could_not_translate(
    session: Session, fake: FakeMailWizz
) -> None:
    """check_change translates every change as apply would, against the fetched fields
    and the install's operators: a field of another list or a tag the list lacks is
    refused by plan, located, before any write."""
    other = fake.add_list("Other")
    foreign = fake.field_id(other, "EMAIL")
    rules = (
        f"          - native: {{field_id: {foreign}, operator: contains, value: x}}\n"
        "          - native: {field: COLOUR, operator: is, value: red}\n"
    )
    session.write(lists_yaml(one(rules, match="any")))
    assert _cli(session.root, "validate").exit_code == 0
    result = _cli(session.root, "plan")
    assert result.exit_code == 1
    assert "reconciler.yaml:20:9:" in result.output  # the segment's rules
    assert 'segment "Seg" cannot be written to list "Newsletter" in MailWizz' in result.output
    assert f"field_id {foreign} is not a field of the list" in result.output
    assert "the list has no field tagged COLOUR" in result.output
    assert not fake.writes()


def test_mailwizz_plan_reads_the_operators_when_no_segment_did(
    session: Session, fake: FakeMailWizz
) -> None:
    session.write(lists_yaml())
    assert session.plan().changes
    paths = [r.url.path for r in fake.requests]
    assert paths.count("/api/lists/segments/condition-operators") == 1
    assert not fake.writes()


# -- the promise: what validate and plan accept, apply writes -------------------------------------


class MailWizzPromise(PromiseHarness):
    """Both lists exist with every declared field (MailWizz cannot create fields: an
    operator creates them in MailWizz); numbers and dates live in text fields. The main
    list also holds live segments no generated name matches, that the canonical language
    cannot say (import must write them as native: or leave them out, and plan clean)."""

    fields = (
        FieldSpec("Frequency", "select", ("Weekly", "Monthly"), ("Weekly", "Monthly")),
        FieldSpec("Score", "number"),
        FieldSpec("Joined", "date"),
        FieldSpec("Note", "text"),
    )
    campaigns = ("42", "100")

    def harness(self, router: respx.MockRouter, root: Path) -> ProviderHarness:
        harness = MailWizzHarness(router, provision=False)
        fake = harness.fake
        for name in self.lists:
            uid = fake.add_list(name)
            harness.provision_field(uid)
            for tag in ("SCORE", "JOINED", "NOTE"):
                fake.add_field(uid, tag, tag.title())
        uid = fake.list_uid(LIST)
        status = fake.add_field(uid, "STATUS", "Status")
        email, score, note = (fake.field_id(uid, tag) for tag in ("EMAIL", "SCORE", "NOTE"))
        fake.add_segment(uid, "Live status", [(status, "1", "active")])
        fake.add_segment(uid, "Live patterns", [(email, "3", "a_b"), (note, "5", "50%")], "any")
        fake.add_segment(uid, "Live numbers", [(score, "7", "5"), (note, "8", "abc")])
        fake.add_segment(uid, "Live tags", [(note, "1", "[DATE]"), (score, "2", "3.5")], "any")
        over = [(email, "3", f"@x{n}.com") for n in range(4)]
        fake.add_segment(uid, "Live over the limit", over, "any")
        return harness


test_mailwizz_promise = promise_test(MailWizzPromise(), examples=30)
