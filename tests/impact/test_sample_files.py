"""Sample files for plan --sample: tests files, CSV and JSON Lines, each problem located."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reconciler import sample_files
from reconciler.errors import ConfigError
from reconciler.model import Config
from reconciler.sample import Sample
from reconciler.sample_files import load_sample_file

TODAY = date(2025, 6, 1)
CONFIG = Config.model_validate(
    {
        "version": 1,
        "targets": {"t": {"provider": "reference"}, "u": {"provider": "reference"}},
        "defaults": {"target": "t"},
        "lists": [
            {
                "name": "News",
                "target": "t",
                "fields": [
                    {"name": "Frequency", "type": "select", "options": ["Weekly", "Monthly"]},
                    {"name": "Tags", "type": "multiselect", "options": ["a", "b", "c, d"]},
                    {"name": "Score", "type": "number"},
                ],
            },
            {"name": "VIP", "target": "t"},
            {"name": "VIP", "target": "u"},
        ],
    }
)
ANN: dict[str, Any] = {
    "list": "News",
    "email": "ann@gmail.com",
    "status": "Unsubscribed",
    "date_subscribed": "2024-03-01",
    "fields": {"Frequency": "weekly", "Tags": ["a", "c, d"], "Score": "12.5"},
    "lists": {"VIP": "active"},
    "events": [{"campaign": "spring", "event": "opened", "on": "2025-05-20"}],
}
CSV_HEADER = (
    "list,email,status,date_subscribed,fields.Frequency,fields.Tags,fields.Score,lists.VIP,events"
)
CSV_ANN = (
    'News,ann@gmail.com,Unsubscribed,2024-03-01,weekly,"[""a"", ""c, d""]",12.5,active,'
    '"[{""campaign"": ""spring"", ""event"": ""opened"", ""on"": ""2025-05-20""}]"'
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _load(name: str, text: str) -> Sample:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return load_sample_file(CONFIG, path, TODAY)


def _errors(name: str, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(name, text)
    return caught.value.lines()


def _ann(found: Sample) -> tuple[object, ...]:
    ((subscriber, now),) = found.of_list("t", "News")
    return (
        subscriber.email,
        subscriber.status,
        dict(subscriber.values),
        dict(subscriber.lists),
        [(e.campaign, e.event, e.on) for e in subscriber.events],
        now,
    )


EXPECTED_ANN = (
    "ann@gmail.com",
    "unsubscribed",
    {
        "email": "ann@gmail.com",
        "status": "unsubscribed",
        "date_subscribed": date(2024, 3, 1),
        "frequency": "weekly",
        "tags": ("a", "c, d"),
        "score": Decimal("12.5"),
    },
    {"vip": "active"},
    [("spring", "opened", date(2025, 5, 20))],
)


def test_csv_jsonl_and_a_tests_file_give_the_same_subscriber() -> None:
    yaml_text = "now: 2025-06-01\nsubscribers:\n  - " + json.dumps(ANN) + "\n"
    from_yaml = _ann(_load("s.yaml", yaml_text))
    from_jsonl = _ann(_load("s.jsonl", json.dumps(ANN) + "\n"))
    from_csv = _ann(_load("s.csv", f"{CSV_HEADER}\n{CSV_ANN}\n"))
    assert from_yaml == from_jsonl == from_csv == (*EXPECTED_ANN, TODAY)


def test_a_tests_file_brings_its_own_now_and_its_expectations_are_not_read() -> None:
    text = (
        "now: 2024-12-31\n"
        "subscribers:\n  - {list: News, email: a@x.org}\n"
        "expect:\n  - {list: News, segment: Renamed since, members: [nobody@x.org]}\n"
    )
    ((subscriber, now),) = _load("s.yml", text).of_list("t", "News")
    assert (subscriber.email, now) == ("a@x.org", date(2024, 12, 31))


def test_csv_with_a_byte_order_mark_blank_rows_crlf_and_targets() -> None:
    text = "\ufefflist,email,target\r\nNews,a@x.org,\r\n,,\r\n\r\nVIP,b@x.org,u\r\n"
    found = _load("s.csv", text)
    assert [s.email for s, _ in found.of_list("t", "News")] == ["a@x.org"]
    assert [s.email for s, _ in found.of_list("u", "VIP")] == ["b@x.org"]
    assert found.of_list("t", "VIP") == ()


@pytest.mark.parametrize(
    ("name", "text", "errors"),
    [
        (
            "s.csv",
            "list,emial,fields.,lists.VIP,lists.VIP\n",
            [
                's.csv:1: unknown column "emial" (did you mean "email"?)',
                's.csv:1: column "fields." names no field',
                's.csv:1: column "lists.VIP" is given twice',
            ],
        ),
        (
            "s.csv",
            "list,email\nNews,a@x.org,extra\nNews,a@x.org\nNews,A@X.ORG\n",
            [
                "s.csv:2: 3 cells, but the header names 2",
                's.csv:4: subscriber "A@X.ORG" of list "News" is already given (line 3)',
            ],
        ),
        (
            "s.csv",
            'list,email,events\nNews,a@x.org,"[{""campaign"": 1"\nNewz,b@x.org,\n',
            [
                "s.csv:2: events: not a JSON array: Expecting ',' delimiter: line 1 column 16 "
                "(char 15)",
                's.csv:3: unknown list "Newz" (did you mean "News"?)',
            ],
        ),
        (
            "s.csv",
            'list,email\nNews,"a@x.org\nNews,b\n',
            ["s.csv:3: not CSV: unexpected end of data"],
        ),
        (
            "s.csv",
            'list,email,fields.Frequency,fields.Tags\nNews,a@x.org,Daily,"[""a"", ""z""]"\n',
            [
                's.csv:2: "Daily" is not an option of field "Frequency" (options: Weekly, Monthly)',
                's.csv:2: "z" is not an option of field "Tags" (options: a, b, c, d)',
            ],
        ),
        (
            "s.jsonl",
            '{"list": "News", "email": "a@x.org", "emial": 1}\n'
            "[1]\n"
            "{not json\n"
            '{"list": "News", "email": "b@x.org", "fields": {"Score": NaN}}\n'
            '{"list": "News", "email": "c@x.org", "email": "d@x.org"}\n'
            '{"list": "VIP", "email": "e@x.org"}\n'
            '{"list": "VIP", "target": "w", "email": "e@x.org"}\n'
            '{"list": "News", "email": "f@x.org",'
            ' "events": [{"campaign": "c", "event": "opened", "on": "2025-06-02"}]}\n',
            [
                's.jsonl:1: unknown key "emial" (did you mean "email"?)',
                "s.jsonl:2: each line is one JSON object (a subscriber)",
                "s.jsonl:3: not a JSON object: Expecting property name enclosed in double "
                "quotes: line 1 column 2 (char 1)",
                "s.jsonl:4: not a JSON object: NaN is not a JSON number",
                's.jsonl:5: not a JSON object: the key "email" is given twice',
                's.jsonl:6: list "VIP" is declared in targets t, u: say which with target',
                's.jsonl:7: unknown target "w" (targets: t, u)',
                "s.jsonl:8: the event is on 2025-06-02, after now (2025-06-01)",
            ],
        ),
        (
            "s.yaml",
            "now: 2025-06-01\nsubscriber: []\n",
            ['s.yaml:2:1: unknown key "subscriber" (did you mean "subscribers"?)'],
        ),
        (
            "s.yaml",
            "now: soon\nsubscribers:\n  - {list: News, email: a@x.org}\n",
            [
                's.yaml:1:1: now: "soon" is not an ISO date '
                "(YYYY-MM-DD: the day behaviour rules count from)"
            ],
        ),
        (
            "s.yaml",
            "now: 2025-06-01\nsubscribers:\n  - {list: News, email: a@x.org, fields: {Scor: 1}}\n"
            "  - {list: News, email: a@x.org, date_subscribed: 2024-02-30}\n",
            [
                's.yaml:3:43: unknown field "Scor" (did you mean "Score"?)',
                's.yaml:4:34: date_subscribed "2024-02-30" is not an ISO date (YYYY-MM-DD)',
                's.yaml:4:18: subscriber "a@x.org" of list "News" is already given '
                "(subscribers[0])",
            ],
        ),
        (
            "s.txt",
            "",
            [
                "s.txt: a sample file is a tests file (.yaml, .yml), CSV (.csv) or "
                "JSON Lines (.jsonl, .ndjson), by its name"
            ],
        ),
    ],
)
def test_every_problem_is_reported_at_its_line(name: str, text: str, errors: list[str]) -> None:
    assert _errors(name, text) == errors


def test_a_sample_holds_at_most_max_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_files, "MAX_ROWS", 2)
    rows = "".join(f'{{"list": "News", "email": "{n}@x.org"}}\n' for n in range(3))
    assert _errors("s.jsonl", rows) == [
        "s.jsonl:3: more than 2 subscribers: a sample holds at most that"
    ]
    assert (
        len(
            _load("s.jsonl", rows[: rows.index("\n", rows.index("\n") + 1) + 1]).of_list(
                "t", "News"
            )
        )
        == 2
    )


def test_a_sample_file_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_files, "MAX_SAMPLE_BYTES", 10)
    (error,) = _errors("s.csv", "list,email\nNews,a@x.org\n")
    assert error.startswith("s.csv: ") and "sample file" in error


def test_a_directory_or_a_missing_file_is_an_error() -> None:
    Path("d.csv").mkdir()
    assert _errors_at(Path("d.csv"))[0].startswith("d.csv: ")
    assert _errors_at(Path("missing.jsonl"))[0].startswith("missing.jsonl: cannot read file")


def _errors_at(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_sample_file(CONFIG, path, TODAY)
    return caught.value.lines()


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    line = (
        '{"list": "News", "email": "a@x.org", "fields": {"Score": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}\n"
    )
    (error,) = _errors("s.jsonl", line)
    assert error == "s.jsonl:1: not a JSON object: nested too deeply"
