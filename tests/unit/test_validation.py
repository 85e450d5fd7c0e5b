"""Offline semantic validation: providers, settings, names, fields and expressibility."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, StrictStr

from providers.reference import ReferenceProvider
from reconciler import yamlio
from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.model import Config, LiveState, MailingList, Segment
from reconciler.plan import Change
from reconciler.provider import Capabilities, Provider, Scope
from reconciler.validation import locate_source, validate_config


class FlatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: StrictStr
    region: Literal["eu", "us"] = "eu"
    max_conditions: int = 2


class FlatProvider(Provider):
    """A provider that stores one flat list of at most two text conditions."""

    key: ClassVar[str] = "flat"
    settings_model: ClassVar[type[BaseModel]] = FlatSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        shape="flat",
        operators={"text": frozenset({"equals", "contains"}), "date": frozenset({"after"})},
        max_conditions=2,
    )

    @classmethod
    def capabilities_for(cls, settings: BaseModel) -> Capabilities:
        assert isinstance(settings, FlatSettings)
        return cls.capabilities.model_copy(update={"max_conditions": settings.max_conditions})

    @classmethod
    def check_segment(cls, segment: Segment, field_types: Mapping[str, str]) -> list[str]:
        return ["names may not start with x"] if segment.name.startswith("x") else []

    def fetch(self, scope: Scope) -> LiveState:  # pragma: no cover - never called offline
        return LiveState()

    def apply(self, change: Change) -> None:  # pragma: no cover - never called offline
        return None


REGISTRY: dict[str, type[Provider]] = {"reference": ReferenceProvider, "flat": FlatProvider}
SECRET = "s3cr3t-value-123"


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    yamlio.clear_cache()
    return tmp_path


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    Path("reconciler.yaml").write_text(text, encoding="utf-8")
    config = load_config("reconciler.yaml", {"KEY": SECRET, **(environ or {})})
    try:
        validate_config(config, REGISTRY)
    except ConfigError as exc:
        return exc.lines()
    return []


def one_list(*segments: str, fields: str = "", target: str = "") -> str:
    head = "version: 1\nlists:\n  - name: News\n"
    if target:
        head += f"    target: {target}\n"
    if fields:
        head += f"    fields: {fields}\n"
    return head + "    segments:\n" + "".join(f"      - {s}\n" for s in segments)


EMAIL = "{name: S, rules: [{field: email, op: contains, value: x}]}"
FLAT_TARGET = "targets:\n  mw: {provider: flat, api_key: '${KEY}'}\n"


def test_validate_config_accepts_a_valid_config() -> None:
    assert problems(one_list(EMAIL)) == []
    assert problems(one_list(EMAIL) + FLAT_TARGET) == []


# -- targets --------------------------------------------------------------------------------


def test_validate_unknown_provider_suggests_a_close_key() -> None:
    text = one_list(EMAIL) + "targets:\n  local: {provider: flta}\n"
    assert problems(text) == [
        'reconciler.yaml:7:11: unknown provider "flta" (did you mean "flat"?)'
    ]


def test_validate_unknown_provider_lists_installed_ones() -> None:
    text = one_list(EMAIL) + "targets:\n  local: {provider: mautic}\n"
    assert problems(text) == [
        'reconciler.yaml:7:11: unknown provider "mautic" (installed: reference, flat)'
    ]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            "api_kye: '${KEY}'",
            'reconciler.yaml:7:24: unknown key "api_kye" (did you mean "api_key"?)',
        ),
        ("region: eu", 'reconciler.yaml:7:3: missing required key "api_key"'),
        (
            "api_key: '${KEY}', region: '${KEY}'",
            'reconciler.yaml:7:43: "region" must be one of: eu, us',
        ),
        ("api_key: 12", 'reconciler.yaml:7:24: "api_key" must be text, not an integer'),
    ],
)
def test_validate_target_settings_never_quote_a_value(settings: str, expected: str) -> None:
    text = one_list(EMAIL) + f"targets:\n  mw: {{provider: flat, {settings}}}\n"
    lines = problems(text)
    assert lines[-1:] == [expected]
    assert not any(SECRET in line for line in lines)


# -- names ----------------------------------------------------------------------------------


def test_validate_duplicate_list_in_one_target() -> None:
    text = one_list(EMAIL) + "  - name: News\n"
    assert problems(text) == [
        'reconciler.yaml:6:5: duplicate list "News" in target "local" '
        "(first declared at reconciler.yaml:3:5)"
    ]


def test_validate_same_list_name_in_two_targets_is_fine() -> None:
    text = one_list(EMAIL) + "  - {name: News, target: mw}\n" + FLAT_TARGET
    text += "  local: {provider: reference}\ndefaults: {target: local}\n"
    assert problems(text) == []


def test_validate_duplicate_segment_in_a_list() -> None:
    assert problems(one_list(EMAIL, EMAIL)) == [
        'reconciler.yaml:6:10: duplicate segment "S" in list "News" '
        "(first declared at reconciler.yaml:5:10)"
    ]


def test_validate_renamed_from_a_declared_segment() -> None:
    renamed = "{name: T, renamed_from: [S], rules: [{field: email, op: empty}]}"
    assert problems(one_list(EMAIL, renamed)) == [
        'reconciler.yaml:6:34: renamed_from "S" names a segment that is still declared'
    ]


def test_validate_two_segments_renamed_from_one_name() -> None:
    first = "{name: A, renamed_from: [Old], rules: [{field: email, op: empty}]}"
    second = "{name: B, renamed_from: [Old], rules: [{field: email, op: empty}]}"
    assert problems(one_list(first, second)) == [
        'reconciler.yaml:6:34: "Old" is already renamed to segment "A"'
    ]


# -- fields ---------------------------------------------------------------------------------


def test_validate_unknown_field_suggests_a_declared_one() -> None:
    segment = "{name: S, rules: [{any: [{field: lst_purchase, op: after, value: 2024-01-01}]}]}"
    text = one_list(segment, fields="[{name: last_purchase, type: date}]")
    assert problems(text) == [
        'reconciler.yaml:6:35: unknown field "lst_purchase" (did you mean "last_purchase"?)'
    ]


def test_validate_unknown_field_without_a_close_match_says_to_declare_it() -> None:
    segment = "{name: S, rules: [{field: Frequency, op: equals, value: Weekly}]}"
    assert problems(one_list(segment)) == [
        'reconciler.yaml:5:28: unknown field "Frequency" (declare it in the list\'s fields:)'
    ]


def test_validate_fields_match_case_insensitively() -> None:
    segment = "{name: S, rules: [{field: EMAIL, op: empty}, {field: last_PURCHASE, op: empty}]}"
    assert problems(one_list(segment, fields="[{name: Last_Purchase, type: date}]")) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            "[{name: F, type: number, options: [a]}]",
            'reconciler.yaml:4:38: field "F" of type "number" cannot have options '
            "(only select and multiselect fields do)",
        ),
        ("[{name: F}, {name: f}]", 'reconciler.yaml:4:26: duplicate field "f" in list "News"'),
        (
            "[{name: Email}]",
            'reconciler.yaml:4:15: field "Email" is a standard field; remove it from fields:',
        ),
    ],
)
def test_validate_field_declarations(fields: str, expected: str) -> None:
    assert problems(one_list(EMAIL, fields=fields)) == [expected]


def test_validate_select_field_may_have_options() -> None:
    fields = "[{name: F, type: select, options: [a]}, {name: G, type: multiselect, options: [b]}]"
    assert problems(one_list(EMAIL, fields=fields)) == []


# -- expressibility -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "[{field: email, op: starts_with, value: a}]",
            'reconciler.yaml:6:42: segment "S" cannot be stored by provider "flat": '
            "operator 'starts_with' is not supported for text field 'email' by this provider",
        ),
        (
            "[{campaign: c1, event: opened}]",
            'reconciler.yaml:6:42: segment "S" cannot be stored by provider "flat": '
            "campaign behaviour rules are not supported by this provider",
        ),
        (
            "[{field: email, op: equals, value: a}, {any: [{field: name, op: equals, value: b},"
            " {field: name, op: equals, value: c}]}]",
            'reconciler.yaml:6:19: segment "S" cannot be stored by provider "flat": '
            "rules nest deeper than this provider's one flat list of conditions",
        ),
    ],
)
def test_validate_segment_the_provider_cannot_store(rules: str, expected: str) -> None:
    text = one_list(f"{{name: S, rules: {rules}}}", target="mw") + FLAT_TARGET
    assert problems(text) == [expected]


def test_validate_field_type_the_target_cannot_store() -> None:
    text = one_list(EMAIL, fields="[{name: Plan, type: boolean}]", target="mw") + FLAT_TARGET
    assert problems(text) == [
        'reconciler.yaml:5:27: field "Plan" has type "boolean", which provider "flat" '
        "cannot store (it has: date, number, select, text)"
    ]


@pytest.mark.parametrize(("limit", "found"), [(2, 1), (3, 0)])
def test_validate_uses_each_targets_own_capabilities(limit: int, found: int) -> None:
    rules = ", ".join(f"{{field: email, op: equals, value: {v}}}" for v in "abc")
    target = f"targets:\n  mw: {{provider: flat, api_key: k, max_conditions: {limit}}}\n"
    reported = problems(one_list(f"{{name: S, rules: [{rules}]}}", target="mw") + target)
    assert len(reported) == found
    assert all("more than this provider's limit of 2" in line for line in reported)


def test_validate_provider_specific_check_names_the_segment() -> None:
    segment = "{name: xmas, rules: [{field: email, op: equals, value: a}]}"
    text = one_list(segment, target="mw") + FLAT_TARGET
    assert problems(text) == [
        'reconciler.yaml:6:9: segment "xmas" cannot be stored by provider "flat": '
        "names may not start with x"
    ]


def test_validate_reports_every_problem_at_once_in_order() -> None:
    bad = "{name: S, rules: [{field: nope, op: empty}]}"
    text = one_list(bad, bad) + "targets:\n  local: {provider: reference, pth: x}\n"
    lines = problems(text)
    assert [line.split(": ", 1)[0] for line in lines] == [
        "reconciler.yaml:5:28",
        "reconciler.yaml:6:10",
        "reconciler.yaml:6:28",
        "reconciler.yaml:8:32",
    ]


def test_validate_config_without_sources_reports_unlocated_messages() -> None:
    segment = Segment.model_validate({"name": "S", "rules": [{"field": "x", "op": "empty"}]})
    config = Config(version=1, lists=(MailingList(name="L", target="t", segments=(segment,)),))
    with pytest.raises(ConfigError) as caught:
        validate_config(config, REGISTRY)
    assert caught.value.lines() == ['unknown field "x" (declare it in the list\'s fields:)']


def test_locate_source_is_available_from_validation() -> None:
    Path("reconciler.yaml").write_text(one_list(EMAIL), encoding="utf-8")
    config = load_config("reconciler.yaml", {})
    segment = config.lists[0].segments[0]
    assert segment.source is not None
    assert locate_source(segment.source) == "reconciler.yaml:5:9"
    assert locate_source(segment.source, ("rules", 0, "op")) == "reconciler.yaml:5:42"


def test_validate_declared_name_hidden_by_its_own_ignore_pattern() -> None:
    text = (
        "version: 1\nlists:\n  - name: News\n    ignore: ['System *']\n    segments:\n"
        "      - {name: System one, rules: [{field: email, op: empty}]}\n"
    )
    assert problems(text) == [
        'reconciler.yaml:6:10: segment name "System one" matches the list\'s ignore pattern '
        '"System *", so it could never be managed; rename it or narrow the pattern'
    ]
