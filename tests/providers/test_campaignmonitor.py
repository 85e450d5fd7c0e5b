"""Campaign Monitor against its stateful fake: wire calls, quirks, errors and faults."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import respx
from click.testing import CliRunner

from providers.campaignmonitor import CampaignMonitorSettings
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.errors import ConfigError
from reconciler.importing import import_yaml
from reconciler.plan import Action
from reconciler.provider import Provider
from tests.providers.contract import Session, actions, lists_yaml
from tests.providers.fakes import FakeClock
from tests.providers.fakes.campaignmonitor import BASE_URL, FakeCampaignMonitor, Fault
from tests.providers.test_contract import CampaignMonitorHarness, FakeYearCampaignMonitor

ROOT = Path(__file__).resolve().parents[2]
REGISTRY: dict[str, type[Provider]] = {"campaignmonitor": FakeYearCampaignMonitor}

RICH = """\
      - name: Rich
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
          - any:
              - {field: date_subscribed, op: between, value: ["2024-01-01", "2024-06-30"]}
              - {field: name, op: equals, value: Gertrude Gainforth}
          - {field: Frequency, op: not_in, value: [Monthly]}
          - {campaign: "1234abcd1234abcd", event: opened}
          - native: {RuleType: CampaignOpenedNoClick, Clause: "abcdabcd"}
"""


@pytest.fixture
def harness(no_real_http: respx.MockRouter) -> CampaignMonitorHarness:
    return CampaignMonitorHarness(no_real_http)


@pytest.fixture
def fake(harness: CampaignMonitorHarness) -> FakeCampaignMonitor:
    return harness.fake


@pytest.fixture
def session(harness: CampaignMonitorHarness, tmp_path: Path) -> Session:
    return Session(harness, tmp_path, dict(REGISTRY))


def applied(session: Session, lists: str) -> None:
    session.write(lists)
    _, result = session.apply()
    assert result.ok, result.outcomes


def located(session: Session, line: str, key: str) -> str:
    """``file:line:column: `` of ``key`` on the line of the written config equal to ``line``."""
    lines = (session.root / "reconciler.yaml").read_text().splitlines()
    return f"{session.root / 'reconciler.yaml'}:{lines.index(line) + 1}:{line.index(key) + 1}: "


def bodies(fake: FakeCampaignMonitor, method: str, suffix: str) -> list[Any]:
    return [
        json.loads(r.content)
        for r in fake.requests
        if r.method == method and r.url.path.endswith(suffix)
    ]


# -- settings and authentication -------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"client_id": "c"},
        {"client_id": "c", "api_key": "k", "access_token": "t"},
        {"client_id": "c", "api_key": " "},
        {"api_key": "k"},
        {"client_id": "c", "api_key": "k", "password": "p"},
    ],
    ids=["no credential", "both credentials", "blank key", "no client", "extra key"],
)
def test_campaignmonitor_settings_refuse(settings: dict[str, str]) -> None:
    with pytest.raises(pydantic.ValidationError):
        CampaignMonitorSettings.model_validate(settings)


def test_campaignmonitor_settings_default_base_url() -> None:
    settings = CampaignMonitorSettings.model_validate(
        {"client_id": "c", "access_token": "tok-secret-9"}
    )
    assert settings.base_url == "https://api.createsend.com/api/v3.3"
    assert "tok-secret-9" not in repr(settings)


def test_campaignmonitor_api_key_is_basic_auth_with_password_x(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    session.write(lists_yaml())
    session.plan()
    header = fake.requests[0].headers["Authorization"]
    assert header == "Basic " + base64.b64encode(f"{fake.api_key}:x".encode()).decode()
    assert str(fake.requests[0].url) == f"{BASE_URL}/clients/{fake.client_id}/lists.json"


def test_campaignmonitor_access_token_is_bearer(
    harness: CampaignMonitorHarness, session: Session, fake: FakeCampaignMonitor
) -> None:
    fake.api_key, fake.access_token = None, "oauth-token-123456"
    harness.target_yaml = lambda: f"access_token: {fake.access_token}\nclient_id: client0001"  # type: ignore[method-assign]
    session.write(lists_yaml())
    assert not session.plan().is_empty
    assert fake.requests[0].headers["Authorization"] == "Bearer oauth-token-123456"


def test_campaignmonitor_secret_never_in_errors(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    fake.faults.append(Fault("GET", r"/clients/.*", "html", times=99))
    session.write(lists_yaml())
    with pytest.raises(Exception) as caught:
        session.plan()
    assert fake.api_key is not None and fake.api_key not in str(caught.value)


# -- wire calls per change -------------------------------------------------------------------


def test_campaignmonitor_create_is_one_post_with_all_groups(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    applied(session, lists_yaml(RICH))
    (body,) = bodies(fake, "POST", f"/segments/{fake.list_id('Newsletter')}.json")
    assert list(body) == ["Title", "RuleGroups"]
    groups = sorted(
        sorted((r["RuleType"], r["Clause"]) for r in g["Rules"]) for g in body["RuleGroups"]
    )
    assert groups == [
        [("CampaignOpened", "1234abcd1234abcd")],
        [("CampaignOpenedNoClick", "abcdabcd")],
        [
            ("DateSubscribed", "BETWEEN 2024-01-01 AND 2024-06-30"),
            ("Name", "EQUALS Gertrude Gainforth"),
        ],
        [("EmailAddress", "CONTAINS @gmail.com")],
        [("[Frequency]", "NOT_EQUALS Monthly")],
    ]
    assert session.plan().is_empty


def test_campaignmonitor_rule_change_is_one_put_with_title_and_groups(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    applied(session, lists_yaml())
    session.write(lists_yaml().replace("@gmail.com", "@googlemail.com"))
    current, result = session.apply()
    assert actions(current) == [("update_segment", "Gmail")] and result.ok
    (body,) = bodies(fake, "PUT", ".json")
    assert body == {
        "Title": "Gmail",
        "RuleGroups": [
            {"Rules": [{"RuleType": "EmailAddress", "Clause": "CONTAINS @googlemail.com"}]}
        ],
    }
    assert not [w for w in fake.writes() if w[1].endswith("/rules.json") and w[0] == "DELETE"]


def test_campaignmonitor_two_appended_groups_are_one_update_not_two_adds(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """One planned change is one write: appending two groups would take two calls, so the
    plan makes it one PUT with every group instead."""
    applied(session, lists_yaml())
    grown = lists_yaml().replace(
        '"@gmail.com"}\n',
        '"@gmail.com"}\n          - {field: name, op: not_empty}\n'
        "          - {campaign: c0ffee, event: clicked}\n",
    )
    session.write(grown)
    current, result = session.apply()
    assert actions(current) == [("update_segment", "Gmail")] and result.ok
    assert not bodies(fake, "POST", "/rules.json")
    (put,) = bodies(fake, "PUT", ".json")
    assert len(put["RuleGroups"]) == 3
    assert session.plan().is_empty


def test_campaignmonitor_missing_field_is_created_with_its_type(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    applied(session, lists_yaml())
    (body,) = bodies(fake, "POST", "/customfields.json")
    assert body == {
        "FieldName": "Frequency",
        "DataType": "MultiSelectOne",
        "Options": ["Weekly", "Monthly"],
        "VisibleInPreferenceCenter": True,
    }


# -- normalisation: what the platform (or a person) rewrites never shows as a diff --------------


def test_campaignmonitor_normalises_live_rules(session: Session, fake: FakeCampaignMonitor) -> None:
    applied(session, lists_yaml(RICH))
    stored = fake.segment_by_title("Newsletter", "Rich")
    groups = stored["RuleGroups"]
    for group in groups:
        group["Rules"].reverse()
        for rule in group["Rules"]:
            if rule["RuleType"] == "[Frequency]":
                rule["RuleType"] = "Frequency"  # brackets dropped (UNVERIFIED either way)
            if not rule["RuleType"].startswith("Campaign"):
                verb, _, rest = rule["Clause"].partition(" ")
                rule["Clause"] = f"  {verb.lower()}   {rest.replace(' AND ', '  and ')} "
    groups.reverse()
    groups.append(json.loads(json.dumps(groups[0])))  # a duplicate group changes nothing
    assert session.plan().is_empty


def test_campaignmonitor_active_subscribers_never_compared(session: Session) -> None:
    applied(session, lists_yaml())
    assert session.plan().is_empty and session.plan().is_empty  # the count moves on each read


def test_campaignmonitor_in_operator_round_trips(session: Session) -> None:
    segments = """\
      - name: Picked
        rules:
          - {field: Frequency, op: in, value: [Weekly, Monthly]}
          - {field: name, op: in, value: [Ann, Bob]}
"""
    applied(session, lists_yaml(segments))
    assert session.plan().is_empty


# -- errors ----------------------------------------------------------------------------------


def test_campaignmonitor_277_names_the_failing_rule_and_its_line(session: Session) -> None:
    """A native clause is sent as written (the API judges its verb): a 277 names it."""
    segments = """\
      - name: Old
        rules:
          - {field: email, op: contains, value: "@x.com"}
          - any:
              - {field: name, op: equals, value: Ann}
              - native: {RuleType: Name, Clause: "CONTAINS bob"}
"""
    session.write(lists_yaml(segments))
    _, result = session.apply()
    (failed,) = [o for o in result.outcomes if o.status == "failed"]
    config = str(session.root / "reconciler.yaml")
    assert failed.message.startswith(f"{config}:15:9: Campaign Monitor could not parse")
    assert "rules[1].any[1] (native" in failed.message
    assert "The verb supplied is illegal (code 2712)" in failed.message
    assert "rules[0]" not in failed.message and "rules[1].any[0]" not in failed.message


def test_campaignmonitor_date_subscribed_window_is_refused_by_validate(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """Error 2723 (operands from the last ten years only) is known before any call: the
    fake's year is 2025, so 2016 is the oldest year it takes and validate agrees."""
    segments = """\
      - name: Old
        rules:
          - {field: email, op: contains, value: "@x.com"}
          - {field: date_subscribed, op: between, value: ["2015-12-31", "2016-06-30"]}
"""
    session.write(lists_yaml(segments))
    with pytest.raises(ConfigError) as caught:
        session.plan()
    message = str(caught.value)
    assert message.startswith(str(session.root / "reconciler.yaml") + ":18:")  # the rule
    assert "rules[1].value: date_subscribed 2015-12-31 is outside 2016-2025" in message
    assert fake.requests == []
    applied(session, lists_yaml(segments.replace("2015-12-31", "2016-01-01")))
    assert session.plan().is_empty


def test_campaignmonitor_duplicate_title_is_a_conflict(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    session.write(lists_yaml())
    ws = session.workspace()
    current = ws.plan()
    ws.apply(current.model_copy(update={"changes": current.changes[:2]}))
    list_id = fake.list_id("Newsletter")
    fake.add_segment(list_id, "Gmail", [[("Name", "PROVIDED")]])  # someone else, meanwhile
    result = ws.apply(current.model_copy(update={"changes": current.changes[2:]}))
    ws.close()
    (failed,) = [o for o in result.outcomes if o.status == "failed"]
    assert failed.change.segment == "Gmail"
    assert "already exists" in failed.message and "(code 275)" in failed.message


def test_campaignmonitor_278_is_retried(session: Session, fake: FakeCampaignMonitor) -> None:
    applied(session, lists_yaml())
    fake.faults.append(Fault("PUT", r"/segments/.*", "278", times=2))
    session.write(lists_yaml().replace("@gmail.com", "@other.com"))
    _, result = session.apply()
    assert result.ok
    assert len([w for w in fake.writes() if w[0] == "PUT"]) == 3
    assert len(session.clock.sleeps) == 2


def test_campaignmonitor_system_segment_is_left_alone_with_a_hint(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    applied(session, lists_yaml(prune=True))
    fake.add_segment(fake.list_id("Newsletter"), "Engaged", [[("Name", "PROVIDED")]], system=True)
    _, result = session.apply()  # also re-plans: the system segment is not read again
    (skipped,) = result.outcomes
    assert skipped.status == "skipped" and result.ok
    assert "ignore:" in skipped.message and "284" in skipped.message
    assert fake.segment_by_title("Newsletter", "Engaged")["Title"] == "Engaged"
    session.write(lists_yaml(prune=True, ignore='"Engaged"'))
    current = session.plan()
    assert current.is_empty and not current.unmanaged


def test_campaignmonitor_delete_of_a_vanished_segment_succeeds(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    applied(session, lists_yaml(prune=True))
    session.write(lists_yaml(SEGMENTS_ONE, prune=True))
    ws = session.workspace()
    current = ws.plan()
    del fake.segments[current.changes[0].before.id]  # type: ignore[union-attr]
    assert ws.apply(current).ok
    ws.close()


SEGMENTS_ONE = """\
      - name: Gmail
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
"""


# -- import ----------------------------------------------------------------------------------


def test_campaignmonitor_import_plans_to_nothing(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    list_id = fake.add_list("Imported")
    fake.add_field(list_id, "Country Code", "Country")
    fake.add_field(list_id, "Age", "Number")
    fake.add_segment(
        list_id,
        "Mixed",
        [
            [("EmailAddress", "CONTAINS @x.com"), ("[CountryCode]", "EQUALS Wales")],
            [("[Age]", "BETWEEN 18 AND 65")],
            [("CampaignClickedSpecific", "abc www.example.com/x")],
            [("Name", "contains bob")],
        ],
    )
    session.write("lists: []\n")
    ws = session.workspace()
    text = import_yaml(ws.import_state("main", ["Imported"]), "main")
    ws.close()
    assert "native: {RuleType: CampaignClickedSpecific, Clause: abc www.example.com/x}" in text
    assert "native: {RuleType: Name, Clause: CONTAINS bob}" in text
    assert '{field: Age, op: between, value: ["18", "65"]}' in text
    session.write(text)
    assert session.plan().is_empty


def test_campaignmonitor_import_standard_named_field_reads_as_native(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """Issue 8: a custom field named like a standard field (``Status``, Key ``[Status]``)
    cannot be declared, so its rules are imported as ``native:`` and plan clean."""
    list_id = fake.add_list("Imported")
    fake.add_field(list_id, "Status", "Text")
    fake.add_field(list_id, "Name", "Text")
    fake.add_segment(
        list_id,
        "Gold",
        [[("[Status]", "EQUALS gold")], [("[Name]", "PROVIDED"), ("Name", "EQUALS Ann")]],
    )
    session.write("lists: []\n")
    ws = session.workspace()
    imported = ws.import_document("main", ["Imported"])
    ws.close()
    text = imported.text
    assert '{native: {RuleType: "[Status]", Clause: EQUALS gold}}' in text, text
    assert '{native: {RuleType: "[Name]", Clause: PROVIDED}}' in text
    assert "{field: name, op: equals, value: Ann}" in text  # the built-in Name is canonical
    assert "fields:" not in text and not imported.notes
    session.write(text)
    assert session.plan().is_empty  # validate accepted it, and nothing to change


def test_campaignmonitor_import_typed_custom_fields_validate_and_plan_clean(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """A Date field with BETWEEN is canonical (declared as a date field); Country, USState
    and MultiSelectMany fields have no evidenced verbs and a value that is no longer an
    option cannot be declared: those rules are imported as native."""
    list_id = fake.add_list("Imported")
    fake.add_field(list_id, "Joined", "Date")
    fake.add_field(list_id, "Country Code", "Country")
    fake.add_field(list_id, "State", "USState")
    fake.add_field(list_id, "Hobbies", "MultiSelectMany", ["Chess"])
    fake.add_field(list_id, "Frequency", "MultiSelectOne", ["Weekly", "Monthly"])
    fake.add_segment(
        list_id,
        "Typed",
        [
            [("[Joined]", "BETWEEN 2024-01-01 AND 2024-12-31")],
            [("[CountryCode]", "EQUALS Wales"), ("[State]", "EQUALS Ohio")],
            [("[Hobbies]", "EQUALS Chess")],
            [("[Frequency]", "EQUALS Weekly"), ("[Frequency]", "EQUALS Daily")],
        ],
    )
    session.write("lists: []\n")
    ws = session.workspace()
    imported = ws.import_document("main", ["Imported"])
    ws.close()
    text = imported.text
    assert "{field: Joined, op: between, value: ['2024-01-01', '2024-12-31']}" in text, text
    assert "{name: Joined, type: date}" in text
    assert "{name: Frequency, type: select, options: [Weekly, Monthly]}" in text
    assert "{field: Frequency, op: equals, value: Weekly}" in text
    for native in (
        '{native: {RuleType: "[CountryCode]", Clause: EQUALS Wales}}',
        '{native: {RuleType: "[State]", Clause: EQUALS Ohio}}',
        '{native: {RuleType: "[Hobbies]", Clause: EQUALS Chess}}',
        '{native: {RuleType: "[Frequency]", Clause: EQUALS Daily}}',
    ):
        assert native in text
    assert not imported.notes
    session.write(text)
    assert session.plan().is_empty


def test_campaignmonitor_import_comments_out_a_time_bombed_subscription_date(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """A DateSubscribed operand accepted years ago is now refused (2723): validate would
    refuse it, so import writes that segment as a comment with the reason."""
    list_id = fake.add_list("Imported")
    fake.add_segment(list_id, "Old", [[("DateSubscribed", "AFTER 2010-01-01")]])
    fake.add_segment(list_id, "Recent", [[("DateSubscribed", "AFTER 2024-01-01")]])
    session.write("lists: []\n")
    ws = session.workspace()
    imported = ws.import_document("main", ["Imported"])
    ws.close()
    (note,) = imported.notes
    assert 'segment "Old"' in note and "last ten years only (error 2723)" in note
    session.write(imported.text)
    current = session.plan()
    assert current.is_empty and [u.segment for u in current.unmanaged] == ["Old"]


# -- names differing only in case ---------------------------------------------------------------


def test_campaignmonitor_rename_alpha_to_lowercase_is_one_update(
    session: Session, fake: FakeCampaignMonitor, harness: CampaignMonitorHarness
) -> None:
    """Issue 8: renaming ``Alpha`` to ``alpha`` is one update of the same segment, never
    a create (which Campaign Monitor refuses, 275) followed by a delete."""
    alpha = """\
      - name: Alpha
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
"""
    applied(session, lists_yaml(alpha, prune=True))
    (before,) = [i for i, s in fake.segments.items() if s["Title"] == "Alpha"]
    writes = len(harness.writes())
    session.write(lists_yaml(alpha.replace("name: Alpha", "name: alpha"), prune=True))
    current, result = session.apply()
    assert actions(current) == [("update_segment", "alpha")] and result.ok, result.outcomes
    assert harness.writes()[writes:] == ["update_segment"]
    assert [(i, s["Title"]) for i, s in fake.segments.items()] == [(before, "alpha")]
    assert session.plan().is_empty


def test_campaignmonitor_fake_refuses_a_title_differing_only_in_case(
    fake: FakeCampaignMonitor,
) -> None:
    list_id = fake.add_list("Newsletter")
    fake.add_segment(list_id, "Alpha", [[("Name", "PROVIDED")]])
    auth = httpx.BasicAuth(fake.api_key or "", "x")
    with httpx.Client(base_url=BASE_URL, auth=auth) as client:  # through the mounted fake
        response = client.post(f"/segments/{list_id}.json", json={"Title": "ALPHA"})
        assert response.status_code == 400 and response.json()["Code"] == 275
        other = fake.add_segment(list_id, "Beta", [[("Name", "PROVIDED")]])
        renamed = client.put(f"/segments/{other}.json", json={"Title": "alpha"})
        assert renamed.status_code == 400 and renamed.json()["Code"] == 275
    assert fake.titles("Newsletter") == ["Alpha", "Beta"]


def test_campaignmonitor_plan_refuses_a_title_an_ignored_segment_holds(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """An ignored live segment is invisible to matching, but its title still blocks a
    create of the same title in another case (275): plan refuses before any write."""
    list_id = fake.add_list("Newsletter")
    fake.add_field(list_id, "Frequency", "MultiSelectOne", ["Weekly", "Monthly"])
    fake.add_segment(list_id, "Beta", [[("Name", "PROVIDED")]])
    segments = """\
      - name: beta
        rules:
          - {field: name, op: not_empty}
"""
    session.write(lists_yaml(segments, ignore='"Beta"'))
    with pytest.raises(ConfigError) as caught:
        session.plan()
    assert 'already has a segment titled "Beta"' in str(caught.value)
    assert str(caught.value).startswith(located(session, "      - name: beta", "name"))
    assert "(275)" in str(caught.value)
    assert fake.writes() == []


# -- plan refuses what only the live fields reveal ----------------------------------------------


def _live_list(fake: FakeCampaignMonitor) -> str:
    list_id = fake.add_list("Newsletter")
    fake.add_field(list_id, "Frequency", "MultiSelectOne", ["Weekly", "Monthly"])
    return list_id


FREQUENCY = "      - {name: Frequency, type: select, options: [Weekly, Monthly]}\n"


def with_fields(segments: str, fields: str) -> str:
    """The contract's ``lists:`` block with more declared fields after Frequency."""
    return lists_yaml(segments).replace(FREQUENCY, FREQUENCY + fields)


def _plan_error(session: Session, fields: str, segments: str) -> str:
    session.write(with_fields(segments, fields))
    with pytest.raises(ConfigError) as caught:
        session.plan()
    return str(caught.value)


def test_campaignmonitor_plan_refuses_rules_on_a_live_country_field(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    list_id = _live_list(fake)
    fake.add_field(list_id, "Country Code", "Country")
    message = _plan_error(
        session,
        "      - {name: Country Code, type: select}\n",
        """\
      - name: Welsh
        rules:
          - {field: email, op: contains, value: "@x.com"}
          - {field: Country Code, op: equals, value: Wales}
""",
    )
    rule = "          - {field: Country Code, op: equals, value: Wales}"
    assert message.startswith(located(session, rule, "field:"))
    assert 'Country Code equals "Wales": rules on the Country field' in message
    assert "no Campaign Monitor source shows a verb for Country fields" in message
    assert fake.writes() == []


def test_campaignmonitor_plan_refuses_a_live_field_of_another_type(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    list_id = _live_list(fake)
    fake.add_field(list_id, "Note", "Date")
    message = _plan_error(
        session,
        "      - {name: Note, type: text}\n",
        """\
      - name: Noted
        rules:
          - {field: Note, op: equals, value: hello}
""",
    )
    declared, rule = message.splitlines()  # the core's type check, then the translation
    assert declared.startswith(located(session, "      - {name: Note, type: text}", "type:"))
    assert 'field "Note" is declared text but the live field "Note"' in declared
    assert "its platform type is Date" in declared and 'segment "Noted" rules[0]' in declared
    line = "          - {field: Note, op: equals, value: hello}"
    assert rule.startswith(located(session, line, "op:"))
    assert "operator 'equals' is not supported for Date field 'Note'" in rule
    assert "(supported: between)" in rule
    assert fake.writes() == []


def test_campaignmonitor_plan_refuses_a_value_that_is_not_an_option(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    _live_list(fake)
    message = _plan_error(
        session,
        "",
        """\
      - name: Daily
        rules:
          - {field: Frequency, op: in, value: [Weekly, Daily]}
""",
    )
    rule = "          - {field: Frequency, op: in, value: [Weekly, Daily]}"
    assert message.startswith(located(session, rule, "value:")) and "Frequency in" in message
    assert "'Daily' is not an option of the MultiSelectOne field 'Frequency'" in message
    assert fake.writes() == []


LEVEL = "      - {name: Level, type: select, options: [Gold, Silver]}\n"


def test_campaignmonitor_plan_checks_fields_the_plan_creates(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """A field created by the same plan is typed as declared: its operators and options
    are checked before the field (or anything else) is written."""
    message = _plan_error(
        session,
        LEVEL,
        """\
      - name: Bronze
        rules:
          - {field: Level, op: equals, value: Bronze}
""",
    )
    assert "'Bronze' is not an option of the MultiSelectOne field 'Level'" in message
    assert fake.writes() == []
    gold = """\
      - name: Gold
        rules:
          - {field: Level, op: not_in, value: [Silver]}
"""
    applied(session, with_fields(gold, LEVEL))
    assert session.plan().is_empty


def test_campaignmonitor_plan_refuses_a_native_rule_type_the_list_lacks(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    _live_list(fake)
    message = _plan_error(
        session,
        "",
        """\
      - name: Raw
        rules:
          - native: {RuleType: "[Gone]", Clause: "EQUALS x"}
""",
    )
    rule = '          - native: {RuleType: "[Gone]", Clause: "EQUALS x"}'
    assert message.startswith(located(session, rule, "native:"))
    assert "native RuleType '[Gone]' is neither a Campaign Monitor rule type" in message
    assert fake.writes() == []


def test_campaignmonitor_validate_refuses_an_operator_the_declared_type_lacks(
    session: Session, fake: FakeCampaignMonitor
) -> None:
    """Issue 8: a Date custom field takes only BETWEEN, so ``equals`` on a declared date
    field is refused offline, at the rule's operator."""
    joined = """\
      - name: Joined
        rules:
          - {field: Joined, op: equals, value: "2024-01-01"}
"""
    session.write(with_fields(joined, "      - {name: Joined, type: date}\n"))
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    rule = '          - {field: Joined, op: equals, value: "2024-01-01"}'
    assert located(session, rule, "op:") in result.output
    assert "operator 'equals' is not supported for date field 'Joined'" in result.output
    assert fake.requests == []


def test_campaignmonitor_add_rule_group_of_two_wire_groups_is_one_put(
    session: Session, fake: FakeCampaignMonitor, harness: CampaignMonitorHarness
) -> None:
    """One planned change is one write: an append that is not exactly one wire group is
    sent as one PUT with every group."""
    applied(session, lists_yaml())
    grown = lists_yaml().replace(
        '"@gmail.com"}\n',
        '"@gmail.com"}\n          - {field: Frequency, op: not_in, value: [Weekly, Monthly]}\n',
        1,
    )
    session.write(grown)
    ws = session.workspace()
    try:
        current = ws.plan()
        (change,) = current.changes
        forced = change.model_copy(update={"action": Action.ADD_RULE_GROUP})
        writes = len(harness.writes())
        assert ws.apply(current.model_copy(update={"changes": (forced,)})).ok
    finally:
        ws.close()
    assert harness.writes()[writes:] == ["update_segment"]
    assert session.plan().is_empty


# -- fault injection during apply --------------------------------------------------------------

WRITES = [
    ("POST", r"/lists/[^/]+\.json"),
    ("POST", r"/lists/[^/]+/customfields\.json"),
    ("POST", r"/segments/[^/]+\.json"),
    ("PUT", r"/segments/[^/]+\.json"),
    ("POST", r"/segments/[^/]+/rules\.json"),
    ("DELETE", r"/segments/[^/]+\.json"),
]
CHANGED = """\
      - name: Gmail
        renamed_from: [Old Gmail]
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
          - {field: name, op: not_empty}
      - name: Weekly 2024
        rules:
          - {field: Frequency, op: equals, value: Monthly}
          - {field: date_subscribed, op: after, value: "2024-01-01"}
      - name: New
        rules:
          - {campaign: c0ffee, event: not_opened}
"""


def _seed(fake: FakeCampaignMonitor) -> None:
    """A live list where the CHANGED config needs every kind of write."""
    list_id = fake.add_list("Newsletter")
    fake.add_field(list_id, "Frequency", "MultiSelectOne", ["Weekly", "Monthly"])
    fake.add_segment(list_id, "Gmail", [[("EmailAddress", "CONTAINS @gmail.com")]])
    fake.add_segment(
        list_id,
        "Weekly 2024",
        [[("[Frequency]", "EQUALS Weekly")], [("DateSubscribed", "AFTER 2024-01-01")]],
    )
    fake.add_segment(list_id, "Gone", [[("Name", "PROVIDED")]])
    fake.add_segment(list_id, "Gone too", [[("Name", "NOT_PROVIDED")]])


@pytest.mark.parametrize("kind", Fault.KINDS)
@pytest.mark.parametrize("method,path", WRITES[2:], ids=["create", "update", "add-group", "delete"])
def test_campaignmonitor_apply_survives_faults(
    session: Session, fake: FakeCampaignMonitor, kind: str, method: str, path: str
) -> None:
    _seed(fake)
    fake.faults.append(Fault(method, path, kind))
    session.write(lists_yaml(CHANGED, prune=True))
    current, result = session.apply()
    assert sorted(actions(current)) == [
        ("add_rule_group", "Gmail"),
        ("create_segment", "New"),
        ("delete_segment", "Gone"),
        ("delete_segment", "Gone too"),
        ("update_segment", "Weekly 2024"),
    ]
    failed = [o for o in result.outcomes if o.status == "failed"]
    assert all(o.status != "skipped" for o in result.outcomes)
    # POST is not replayed once the server may have acted; PUT and DELETE are.
    expect_failure = method == "POST" and kind not in ("429", "278")
    assert len(failed) == (1 if expect_failure else 0), result.outcomes  # never a bystander
    assert all(o.change.action.value in _actions_for(method, path) for o in failed)
    _, second = session.apply()
    assert second.ok, second.outcomes
    assert session.plan().is_empty
    assert fake.titles("Newsletter") == ["Gmail", "New", "Weekly 2024"]
    assert fake.ever_without_rules() == []


def _actions_for(method: str, path: str) -> tuple[str, ...]:
    if path.endswith(r"rules\.json"):
        return ("add_rule_group",)
    return {"POST": ("create_segment",), "PUT": ("update_segment",), "DELETE": ("delete_segment",)}[
        method
    ]


@pytest.mark.parametrize("kind", ["429", "503", "html", "timeout", "drop"])
def test_campaignmonitor_reads_retry_transient_faults(
    session: Session, fake: FakeCampaignMonitor, kind: str
) -> None:
    _seed(fake)
    fake.faults.append(Fault("GET", r"/segments/.*", kind, times=2))
    session.write(lists_yaml(CHANGED, prune=True))
    assert len(session.plan().changes) == 5
    assert len(session.clock.sleeps) == 2
    if kind == "429":
        assert session.clock.sleeps == [7.0, 7.0]  # Retry-After honoured


# -- CLI end to end ----------------------------------------------------------------------------


def _cli(root: Path, *args: str) -> Any:
    state = State(registry=REGISTRY, clock=FakeClock())
    return CliRunner().invoke(
        cli, ["-c", str(root / "reconciler.yaml"), "--no-color", *args], obj=state
    )


def test_campaignmonitor_cli_plan_apply_plan(session: Session, fake: FakeCampaignMonitor) -> None:
    session.write(lists_yaml(RICH))
    first = _cli(session.root, "plan", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert first.stdout.endswith("Plan: 3 to create, 0 to update, 0 to delete.\n")
    applied_ = _cli(session.root, "apply", "--auto-approve")
    assert applied_.exit_code == 0, applied_.output
    again = _cli(session.root, "plan", "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes." in again.stdout


def test_campaignmonitor_cli_validate_refuses_what_it_cannot_store(session: Session) -> None:
    segments = """\
      - name: Bad
        rules:
          - {field: first_name, op: equals, value: Ann}
          - {field: email, op: equals, value: a@x.com}
          - {campaign: c1, event: opened, within: {days: 30}}
          - {list: VIP, op: not_in}
"""
    session.write(lists_yaml(segments))
    result = _cli(session.root, "validate")
    assert result.exit_code == 1
    assert "rules cannot test the standard field 'first_name'" in result.output
    assert (
        "operator 'equals' is not supported for the standard field 'email' by this provider "
        "(supported: contains)" in result.output
    )
    assert "'within' time window is not supported" in result.output
    assert "list membership rules are not supported" in result.output
    assert len(result.output.strip().splitlines()) == 4, result.output  # once each


def test_campaignmonitor_example_validates_and_plans(
    tmp_path: Path, no_real_http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCampaignMonitor()
    fake.mount(no_real_http)
    monkeypatch.setenv("CM_API_KEY", fake.api_key or "")
    monkeypatch.setenv("CM_CLIENT_ID", fake.client_id)
    shutil.copy(ROOT / "examples" / "campaignmonitor" / "reconciler.yaml", tmp_path)
    assert _cli(tmp_path, "validate").exit_code == 0
    applied_ = _cli(tmp_path, "apply", "--auto-approve")
    assert applied_.exit_code == 0, applied_.output
    assert _cli(tmp_path, "plan", "--detailed-exitcode").exit_code == 0
    assert os.environ["CM_API_KEY"] not in applied_.output
