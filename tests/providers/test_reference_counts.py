"""The reference backend's live member counts: its ``subscribers:`` file, evaluated.

The file (a tests file, CSV or JSON Lines, as ``plan --sample`` reads) stands for the
members of the store's lists; ``fetch`` gives each segment the number of its list's
subscribers that its stored rules select, and the plan shows it on updates and deletes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from providers.reference import ReferenceProvider, ReferenceSettings
from reconciler.cli import cli
from reconciler.errors import ConfigError, ConfigErrors
from reconciler.model import FieldDef, LiveState, Segment
from reconciler.plan import Action
from reconciler.provider import ProviderContext, Scope
from reconciler.registry import load_registry
from reconciler.schema import schema_document
from tests.providers.reference_support import change, create_list

ROOT = Path(__file__).resolve().parents[2]
NOW = date(2025, 6, 1)

SEGMENTS: dict[str, dict[str, Any]] = {
    "Gmail": {"rules": [{"field": "email", "op": "contains", "value": "@GMAIL.com"}]},
    "Unsubscribed": {"rules": [{"field": "status", "op": "equals", "value": "unsubscribed"}]},
    "High score": {"rules": [{"field": "Score", "op": "gt", "value": 5}]},
    "Active VIPs": {"rules": [{"list": "VIP", "op": "active_in"}]},
    "Not in VIP": {"rules": [{"list": "vip", "op": "not_in"}]},
    "Opened lately": {"rules": [{"campaign": "spring", "event": "opened", "within": {"days": 30}}]},
    "Pro or gmail": {
        "match": "any",
        "rules": [
            {"field": "Plan", "op": "equals", "value": "pro"},
            {"all": [{"field": "email", "op": "ends_with", "value": "gmail.com"}]},
        ],
    },
    "Native": {"rules": [{"native": {"RuleType": "Opened", "Clause": "1234"}}]},
    "Native or gmail": {
        "match": "any",
        "rules": [
            {"native": {"RuleType": "Opened", "Clause": "1234"}},
            {"field": "email", "op": "contains", "value": "gmail"},
        ],
    },
}

PEOPLE_YAML = """\
now: 2025-06-01
subscribers:
  - list: News
    email: ann@gmail.com
    fields: {Score: 7, Plan: Free}
    lists: {VIP: active}
    events: [{campaign: spring, event: opened, on: 2025-05-20}]
  - list: News
    email: bob@x.org
    fields: {Score: 3, Plan: Pro}
    lists: {VIP: unsubscribed}
    events: [{campaign: spring, event: opened, on: 2025-04-01}]
  - list: News
    email: cid@Gmail.com
    status: unsubscribed
    fields: {Score: "12"}
  - list: News
    email: dee@y.org
  - list: VIP
    email: ann@gmail.com
"""

EXPECTED = {
    "Gmail": 2,  # ann, cid (case-insensitive; whatever their status)
    "Unsubscribed": 1,  # cid
    "High score": 2,  # ann (7), cid (12): numbers compare numerically
    "Active VIPs": 1,  # ann
    "Not in VIP": 2,  # cid, dee (bob has a record there, unsubscribed)
    "Opened lately": 1,  # ann (20 May); bob opened 61 days before now
    "Pro or gmail": 3,  # bob (Pro), ann, cid
    "Native": None,  # only a platform could tell
    "Native or gmail": None,  # bob and dee: undecided
}

OPENED = '""campaign"": ""spring"", ""event"": ""opened"", ""on""'
CSV = f"""\
list,email,status,fields.Score,fields.Plan,lists.VIP,events
News,ann@gmail.com,,7,Free,active,"[{{{OPENED}: ""2025-05-20""}}]"
News,bob@x.org,,3,Pro,unsubscribed,"[{{{OPENED}: ""2025-04-01""}}]"
News,cid@Gmail.com,unsubscribed,12,,,
News,dee@y.org,,,,,
VIP,ann@gmail.com,,,,,
"""


def _jsonl() -> str:
    rows: list[dict[str, Any]] = [
        {
            "list": "News",
            "email": "ann@gmail.com",
            "fields": {"Score": 7, "Plan": "Free"},
            "lists": {"VIP": "active"},
            "events": [{"campaign": "spring", "event": "opened", "on": "2025-05-20"}],
        },
        {
            "list": "News",
            "email": "bob@x.org",
            "fields": {"Score": 3, "Plan": "Pro"},
            "lists": {"VIP": "unsubscribed"},
            "events": [{"campaign": "spring", "event": "opened", "on": "2025-04-01"}],
        },
        {
            "list": "News",
            "email": "cid@Gmail.com",
            "status": "unsubscribed",
            "fields": {"Score": 12},
        },
        {"list": "News", "email": "dee@y.org"},
        {"list": "VIP", "email": "ann@gmail.com"},
    ]
    return "".join(json.dumps(row) + "\n" for row in rows)


FILES = {"people.yaml": PEOPLE_YAML, "people.csv": CSV, "people.jsonl": _jsonl()}


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are named relative to the working directory in messages."""
    monkeypatch.chdir(tmp_path)


def provider(base: Path, subscribers: str | None, today: date = NOW) -> ReferenceProvider:
    settings = ReferenceSettings(path="state.db", subscribers=subscribers)
    found = ReferenceProvider("local", settings, ProviderContext(base_dir=base))
    found.today = lambda: today
    return found


def seed(base: Path) -> None:
    """A store with lists News (fields Score, Plan) and VIP, and every segment above."""
    store = provider(base, None)
    try:
        create_list(store, "News")
        create_list(store, "VIP")
        for field in (
            FieldDef(name="Score", type="number"),
            FieldDef(name="Plan", type="select", options=("Free", "Pro")),
        ):
            store.apply(change(Action.CREATE_FIELD, field=field))
        for name, body in SEGMENTS.items():
            segment = Segment.model_validate({"name": name, **body})
            store.apply(change(Action.CREATE_SEGMENT, after=segment))
    finally:
        store.close()


def counts(state: LiveState, list_name: str = "News") -> dict[str, int | None]:
    (live,) = [item for item in state.lists if item.name == list_name]
    return {segment.name: segment.member_count for segment in live.segments}


def fetch(base: Path, subscribers: str | None, today: date = NOW, **scope: Any) -> LiveState:
    found = provider(base, subscribers, today)
    try:
        return found.fetch(Scope(**scope))
    finally:
        found.close()


@pytest.mark.parametrize("name", list(FILES))
def test_every_segment_counts_exactly_the_subscribers_its_rules_select(
    tmp_path: Path, name: str
) -> None:
    seed(tmp_path)
    (tmp_path / name).write_text(FILES[name], encoding="utf-8")

    assert counts(fetch(tmp_path, name)) == EXPECTED


def test_a_tests_file_counts_from_its_now_and_csv_from_today(tmp_path: Path) -> None:
    seed(tmp_path)
    for name in ("people.yaml", "people.csv"):
        (tmp_path / name).write_text(FILES[name], encoding="utf-8")
    later = date(2025, 6, 25)  # ann's open (20 May) is now 36 days old

    assert counts(fetch(tmp_path, "people.yaml", later))["Opened lately"] == 1
    assert counts(fetch(tmp_path, "people.csv", later))["Opened lately"] == 0


def test_a_list_without_subscribers_counts_zero(tmp_path: Path) -> None:
    seed(tmp_path)
    (tmp_path / "people.yaml").write_text(PEOPLE_YAML, encoding="utf-8")
    store = provider(tmp_path, None)
    segment = Segment.model_validate(
        {"name": "Everyone", "rules": [{"field": "email", "op": "not_empty"}]}
    )
    store.apply(change(Action.CREATE_SEGMENT, "VIP", after=segment))
    store.close()

    state = fetch(tmp_path, "people.yaml")

    assert counts(state, "VIP") == {"Everyone": 1}


def test_without_the_setting_no_segment_has_a_count(tmp_path: Path) -> None:
    seed(tmp_path)

    state = fetch(tmp_path, None)

    assert set(counts(state).values()) == {None}
    assert len(counts(state)) == len(SEGMENTS)


@pytest.mark.parametrize("subscribers", [None, "people.yaml"])
def test_the_evaluator_is_imported_only_with_the_setting(
    tmp_path: Path, subscribers: str | None
) -> None:
    seed(tmp_path)
    (tmp_path / "people.yaml").write_text(PEOPLE_YAML, encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from providers.reference import ReferenceProvider, ReferenceSettings
        from reconciler.provider import ProviderContext, Scope
        settings = ReferenceSettings(path="state.db", subscribers={subscribers!r})
        context = ProviderContext(base_dir=Path({str(tmp_path)!r}))
        found = ReferenceProvider("local", settings, context)
        state = found.fetch(Scope())
        print(sum(len(item.segments) for item in state.lists))
        print(sorted(m for m in sys.modules if m in ("reconciler.evaluate", "reconciler.sample")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )

    segments, imported = done.stdout.splitlines()
    assert segments == str(len(SEGMENTS))
    expected = [] if subscribers is None else ["reconciler.evaluate", "reconciler.sample"]
    assert imported == str(expected)


def test_the_file_may_name_every_stored_list_whatever_the_scope(tmp_path: Path) -> None:
    seed(tmp_path)
    (tmp_path / "people.yaml").write_text(PEOPLE_YAML, encoding="utf-8")

    state = fetch(tmp_path, "people.yaml", lists=frozenset({"News"}))

    assert [item.name for item in state.lists] == ["News"]
    assert counts(state) == EXPECTED


def test_a_file_changed_between_reads_is_read_again(tmp_path: Path) -> None:
    seed(tmp_path)
    people = tmp_path / "people.csv"
    people.write_text(CSV, encoding="utf-8")
    found = provider(tmp_path, "people.csv")
    try:
        first = counts(found.fetch(Scope()))["Gmail"]
        people.write_text(CSV + "News,eve@gmail.com,,,,,\n", encoding="utf-8")
        second = counts(found.fetch(Scope()))["Gmail"]
    finally:
        found.close()

    assert (first, second) == (2, 3)


def test_a_relative_path_starts_at_the_configuration_directory(tmp_path: Path) -> None:
    seed(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "people.yaml").write_text(PEOPLE_YAML, encoding="utf-8")

    assert counts(fetch(tmp_path, "data/people.yaml")) == EXPECTED


@pytest.mark.parametrize("store", [True, False], ids=["store", "no store yet"])
def test_a_missing_file_is_one_error_naming_the_setting(tmp_path: Path, store: bool) -> None:
    if store:
        seed(tmp_path)

    with pytest.raises(ConfigError) as raised:
        fetch(tmp_path, "peeple.yaml")

    assert str(raised.value) == (
        'target "local", setting subscribers: the file "peeple.yaml" does not exist '
        f"(looked for it at {tmp_path / 'peeple.yaml'})"
    )
    assert not (tmp_path / "state.db").exists() or store


@pytest.mark.parametrize(
    ("name", "text", "located"),
    [
        (
            "people.yaml",
            PEOPLE_YAML.replace("Score: 3,", "Scor: 3,").replace("list: VIP", "list: Promo"),
            [
                'people.yaml:10:14: unknown field "Scor"',
                'people.yaml:19:5: unknown list "Promo"',
            ],
        ),
        (
            "people.csv",
            CSV.replace("cid@Gmail.com,unsubscribed,12", "cid@Gmail.com,gone,twelve"),
            [
                'people.csv:4: unknown status "gone"',
                'people.csv:4: field "Score" is a number field: expected a number, not "twelve"',
            ],
        ),
        ("people.jsonl", '{"list": "News"}\nnot json\n', ["people.jsonl:1: ", "people.jsonl:2: "]),
        ("people.yaml", "now: 2025-06-01\nsubscribers: [", ["people.yaml:3:1: invalid YAML"]),
    ],
    ids=["yaml", "csv", "jsonl", "yaml syntax"],
)
def test_a_bad_file_is_reported_line_by_line_under_the_setting(
    tmp_path: Path, name: str, text: str, located: list[str]
) -> None:
    seed(tmp_path)
    (tmp_path / name).write_text(text, encoding="utf-8")

    with pytest.raises(ConfigErrors) as raised:
        fetch(tmp_path, name)

    header, *lines = raised.value.lines()
    assert header == (
        f'target "local", setting subscribers: problems in "{name}" (its subscribers stand '
        "for members of the lists and fields the store holds now):"
    )
    assert len(lines) == len(located)
    for line, start in zip(lines, located, strict=True):
        assert line.startswith(start), lines


# --- the setting: validate, schema, plan -----------------------------------------------------


def test_the_setting_is_optional_text_naming_a_sample_file() -> None:
    assert ReferenceSettings().subscribers is None
    assert ReferenceSettings(subscribers="~/people.JSONL").subscribers == "~/people.JSONL"
    for wrong in ("", "people.txt", ":memory:", 5):
        with pytest.raises(ValidationError):
            ReferenceSettings.model_validate({"subscribers": wrong})


def write_config(root: Path, segments: str, subscribers: str = "people.yaml") -> Path:
    config = root / "reconciler.yaml"
    text = f"""\
version: 1
targets:
  local:
    provider: reference
    path: state.db
    subscribers: {subscribers}
lists:
  - name: News
    prune: true
    fields:
      - {{name: Score, type: number}}
      - {{name: Plan, type: select, options: [Free, Pro]}}
    segments:
{textwrap.indent(segments, "      ")}
  - name: VIP
"""
    config.write_text(text, encoding="utf-8")
    return config


SEGMENTS_YAML = """\
- name: Gmail
  rules: [{field: email, op: contains, value: "@gmail.com"}]
- name: High score
  rules: [{field: Score, op: gt, value: 5}]
- name: Opened lately
  rules: [{campaign: spring, event: opened, within: {days: 30}}]
"""


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config), "--no-color", *args])


def test_validate_and_the_schema_accept_the_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, SEGMENTS_YAML)
    schema = Draft202012Validator(schema_document(load_registry()))
    target = {"provider": "reference", "path": "s.db", "subscribers": "people.csv"}
    document = {"version": 1, "targets": {"t": target}}

    assert run(config, "validate").exit_code == 0
    assert list(schema.iter_errors(document)) == []
    assert list(schema.iter_errors({**document, "targets": {"t": {**target, "subscribers": 5}}}))


def test_validate_locates_a_subscribers_file_of_another_kind(tmp_path: Path) -> None:
    config = write_config(tmp_path, SEGMENTS_YAML, subscribers="people.txt")

    result = run(config, "validate")

    assert result.exit_code == 1
    assert "reconciler.yaml:6:5: the subscribers file must be named .csv, .jsonl" in result.stderr


def test_the_plan_shows_the_store_count_on_updates_and_deletes(tmp_path: Path) -> None:
    (tmp_path / "people.yaml").write_text(PEOPLE_YAML, encoding="utf-8")
    config = write_config(tmp_path, SEGMENTS_YAML)
    first = run(config, "plan")
    assert first.exit_code == 0, first.output
    assert "members now" not in first.stdout  # creates: nothing is counted on them
    assert run(config, "apply", "--auto-approve").exit_code == 0
    changed = SEGMENTS_YAML.replace('"@gmail.com"', '"gmail"').split("- name: Opened")[0]
    write_config(tmp_path, changed)

    result = run(config, "plan")
    as_json = json.loads(run(config, "plan", "--format", "json").stdout)

    assert result.exit_code == 0, result.output
    assert '  ~ segment "Gmail" (News @ local)  2 members now\n' in result.stdout
    assert '  - segment "Opened lately" (News @ local)  1 member now\n' in result.stdout
    before = {c["segment"]: c["before"]["member_count"] for c in as_json["changes"]}
    assert before == {"Gmail": 2, "Opened lately": 1}


def test_a_bad_file_fails_the_plan_in_one_line_each_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "people.yaml").write_text(PEOPLE_YAML, encoding="utf-8")
    config = write_config(tmp_path, SEGMENTS_YAML)
    assert run(config, "apply", "--auto-approve").exit_code == 0
    (tmp_path / "people.yaml").write_text(PEOPLE_YAML.replace("2025-05-20", "2025-13-20"))

    result = run(config, "plan")

    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors[0].startswith('Error: target "local", setting subscribers: problems in')
    assert errors[1:] == ['Error: people.yaml:7:48: "2025-13-20" is not an ISO date (YYYY-MM-DD)']
    assert "Traceback" not in result.output
