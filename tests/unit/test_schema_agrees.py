"""The JSON Schema of ``reconciler schema`` agrees with ``validate``.

Every example and every case of the malformed table (plus the cases below, for what the
schema itself decides) is judged by the schema (each file's data, as the project's YAML
loader reads it, against the root or the included-file schema) and by ``validate``. The
verdicts are the same, except for the cases listed in ``UNDECIDED``: each belongs to a kind
of check that no JSON Schema can make, named in ``UNDECIDABLE`` with the reason. There the
schema accepts what ``validate`` refuses; it never refuses what ``validate`` accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from jsonschema_specifications import REGISTRY
from pydantic import BaseModel, ConfigDict, Field

from reconciler.config import expander, load_config
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.registry import load_registry
from reconciler.schema import schema_document
from reconciler.validation import validate_config
from reconciler.yamlio import load_text
from tests.cli.malformed_cases import ENVIRON, MALFORMED

ROOT_FILE = "reconciler.yaml"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REGISTRY_HERE = load_registry()

UNDECIDABLE = {
    "yaml": "syntax, duplicate keys and tags are the YAML parser's to report: a schema only "
    "sees the data parsed",
    "environment": "a ${VAR} is read from the environment when validate runs",
    "files": "include patterns are matched against the files on disk",
    "references": "a name must be declared elsewhere (a target, a field): JSON Schema cannot "
    "compare one value of the document with another",
    "unique names": "names of lists, segments and fields must be unique: uniqueItems compares "
    "whole items, never one key of them",
    "capabilities": "what a target can store depends on its provider's capabilities, which "
    "also depend on its settings",
    "provider checks": "a provider's checks across its settings (exactly one credential) are "
    "its code, not its settings' types",
    "whole-number float": "JSON Schema counts 1.0 as the integer 1; validate wants 1",
    "nan": "NaN compares false with every bound, so no keyword refuses it",
}

HEAD = "version: 1\n"
SEGMENT = "lists:\n  - name: News\n    segments:\n      - name: S\n        rules:\n"


def _rule(rule: str) -> str:
    return HEAD + SEGMENT + f"          - {rule}\n"


def _target(settings: str, rule: str = "{field: email, op: empty}") -> str:
    return HEAD + f"targets:\n  t: {{{settings}}}\n" + SEGMENT + f"          - {rule}\n"


MAUTIC = "provider: mautic, base_url: 'https://example.com', username: u, password: p"
REFERENCE = "provider: reference, path: s.db"
GREENARROW = "provider: greenarrow, base_url: 'https://e.x', api_key: k"

Case = tuple[str, dict[str, str], bool]
"""``(id, files, validate accepts)``: files as in the malformed table."""

CASES: list[Case] = [
    ("numeric-campaign", {ROOT_FILE: _rule("{campaign: 42, event: opened}")}, True),
    ("boolean-campaign", {ROOT_FILE: _rule("{campaign: true, event: opened}")}, False),
    (
        "requests-per-second-zero",
        {ROOT_FILE: _target(REFERENCE + ", requests_per_second: 0")},
        False,
    ),
    (
        "requests-per-second-tiny",
        {ROOT_FILE: _target(REFERENCE + ", requests_per_second: 0.005")},
        False,
    ),
    (
        "requests-per-second-least",
        {ROOT_FILE: _target(REFERENCE + ", requests_per_second: 0.01")},
        True,
    ),
    (
        "requests-per-second-text",
        {ROOT_FILE: _target(REFERENCE + ", requests_per_second: '5'")},
        False,
    ),
    (
        "requests-per-second-inf",
        {ROOT_FILE: _target(REFERENCE + ", requests_per_second: .inf")},
        False,
    ),
    ("max-concurrency-most", {ROOT_FILE: _target(REFERENCE + ", max_concurrency: 100")}, True),
    ("max-concurrency-past", {ROOT_FILE: _target(REFERENCE + ", max_concurrency: 101")}, False),
    ("max-concurrency-zero", {ROOT_FILE: _target(REFERENCE + ", max_concurrency: 0")}, False),
    ("in-with-a-list", {ROOT_FILE: _rule("{field: email, op: in, value: [a, b]}")}, True),
    ("in-with-an-empty-list", {ROOT_FILE: _rule("{field: email, op: in, value: []}")}, False),
    ("equals-with-a-list", {ROOT_FILE: _rule("{field: email, op: equals, value: [a]}")}, False),
    ("equals-with-null", {ROOT_FILE: _rule("{field: email, op: equals, value: null}")}, False),
    ("empty-with-null", {ROOT_FILE: _rule("{field: email, op: empty, value: null}")}, True),
    (
        "between-with-three",
        {ROOT_FILE: _rule("{field: email, op: between, value: [1, 2, 3]}")},
        False,
    ),
    ("group-with-any-and-all", {ROOT_FILE: _rule("{any: [{list: A}], all: [{list: B}]}")}, False),
    ("group-with-null-all", {ROOT_FILE: _rule("{any: [{list: A}], all: null}")}, True),
    ("rule-of-two-kinds", {ROOT_FILE: _rule("{field: email, op: empty, campaign: c}")}, False),
    ("rule-not-a-mapping", {ROOT_FILE: _rule("email")}, False),
    ("native-empty", {ROOT_FILE: _rule("{native: {}}")}, False),
    ("option-infinite", {ROOT_FILE: _rule("{list: A}") + "        options: {a: [.inf]}\n"}, False),
    (
        "options-on-select",
        {
            ROOT_FILE: HEAD
            + "lists:\n  - name: N\n    fields: [{name: F, type: select, options: [a]}]\n"
        },
        True,
    ),
    (
        "standard-field-declared",
        {ROOT_FILE: HEAD + "lists:\n  - name: N\n    fields: [{name: First_Name}]\n"},
        False,
    ),
    ("lists-left-empty", {ROOT_FILE: HEAD + "lists:\n"}, True),
    ("include-absolute", {ROOT_FILE: HEAD + "include: [/etc/*.yaml]\n"}, False),
    ("include-parent", {ROOT_FILE: HEAD + "include: [lists/../../x.yaml]\n"}, False),
    ("include-dots-in-a-name", {ROOT_FILE: HEAD + "include: [x..yaml]\n", "x..yaml": ""}, True),
    ("included-empty", {ROOT_FILE: HEAD + "include: [a.yaml]\n", "a.yaml": "# none yet\n"}, True),
    ("included-foreign", {ROOT_FILE: HEAD + "include: [a.yaml]\n", "a.yaml": "name: x\n"}, False),
    (
        "included-lists",
        {ROOT_FILE: HEAD + "include: [a.yaml]\n", "a.yaml": SEGMENT + "          - {list: A}\n"},
        True,
    ),
    ("mautic-unknown-setting", {ROOT_FILE: _target(MAUTIC + ", token: x")}, False),
    (
        "mautic-no-base-url",
        {ROOT_FILE: _target("provider: mautic, username: u, password: p")},
        False,
    ),
    (
        "oempro-bad-encoding",
        {
            ROOT_FILE: _target(
                "provider: oempro, base_url: 'https://e.x', api_key: k, encoding: xml"
            )
        },
        False,
    ),
    (
        "greenarrow-organization-as-text",
        {ROOT_FILE: _target(GREENARROW + ", organization_id: '12'", "{list: News}")},
        True,
    ),
    (
        "greenarrow-organization-zero-as-text",
        {ROOT_FILE: _target(GREENARROW + ", organization_id: '0'", "{list: News}")},
        False,
    ),
    (
        "greenarrow-organization-other-digits",
        {ROOT_FILE: _target(GREENARROW + ", organization_id: '\u0661\u0662'", "{list: News}")},
        False,
    ),
    ("version-as-float", {ROOT_FILE: "version: 1.0\n"}, False),
    ("value-nan", {ROOT_FILE: _rule("{field: email, op: equals, value: .nan}")}, False),
    (
        "mautic-two-credentials",
        {ROOT_FILE: _target(MAUTIC + ", client_id: c, client_secret: s")},
        False,
    ),
    (
        "mautic-status-rule",
        {ROOT_FILE: _target(MAUTIC, "{field: status, op: equals, value: x}")},
        False,
    ),
]

UNDECIDED = {
    "syntax-error": "yaml",
    "tab-indentation": "yaml",
    "duplicate-yaml-key": "yaml",
    "unsupported-tag": "yaml",
    "missing-env-var": "environment",
    "include-glob-matches-nothing": "files",
    "unknown-target": "references",
    "unknown-default-target": "references",
    "unknown-custom-field-with-hint": "references",
    "duplicate-segment": "unique names",
    "duplicate-list": "unique names",
    "mautic-status-rule": "capabilities",
    "mautic-two-credentials": "provider checks",
    "version-as-float": "whole-number float",
    "value-nan": "nan",
}
"""The cases where the schema accepts what ``validate`` refuses, each with its kind."""

ALL_CASES: list[Case] = [(name, files, False) for name, files, _, _ in MALFORMED] + CASES


class Judge:
    """The schema's verdict on a set of files, and validate's."""

    def __init__(self, registry: Mapping[str, Any]) -> None:
        self.registry = registry
        self.root = Draft202012Validator(schema_document(registry))
        self.included = Draft202012Validator(schema_document(registry, included=True))

    def schema_errors(self, data: Mapping[str, Any]) -> list[str]:
        """Why the schema refuses any of the files' data (the root file's or included)."""
        found = []
        for name, value in data.items():
            validator = self.root if name == ROOT_FILE else self.included
            found += [f"{name}: {error.message}" for error in validator.iter_errors(value)]
        return found

    def validate_errors(self, root: Path, environ: Mapping[str, str]) -> list[str]:
        try:
            validate_config(load_config(root, environ), self.registry)
        except ReconcilerError as exc:
            return exc.lines()
        return []


def parse(
    files: Mapping[str, str], environ: Mapping[str, str] | None
) -> tuple[dict[str, Any], list[str]]:
    """Each file's data as validate reads it (``${VAR}`` expanded from ``environ``; None:
    left as written, as an editor sees it), and the files that are not YAML at all: those
    have no data for a schema to judge."""
    expand = None if environ is None else expander(environ)
    data: dict[str, Any] = {}
    unparsed = []
    for name, text in files.items():
        try:
            data[name] = load_text(text, name, expand).data
        except ReconcilerError:
            unparsed.append(name)
    return data, unparsed


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge(REGISTRY_HERE)


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("case", ALL_CASES, ids=[case[0] for case in ALL_CASES])
def test_schema_and_validate_give_the_same_verdict(
    case: Case, judge: Judge, tmp_path: Path
) -> None:
    name, files, valid = case
    _write(tmp_path, files)
    refused_by_validate = judge.validate_errors(tmp_path / ROOT_FILE, ENVIRON)
    data, unparsed = parse(files, ENVIRON)
    refused_by_schema = judge.schema_errors(data)
    assert (not refused_by_validate) == valid, refused_by_validate
    assert not unparsed or UNDECIDED.get(name) == "yaml"
    if name in UNDECIDED:
        assert refused_by_validate and not refused_by_schema
    else:
        assert bool(refused_by_schema) == bool(refused_by_validate), (
            refused_by_schema,
            refused_by_validate,
        )


def test_every_undecided_case_exists_and_every_kind_is_shown() -> None:
    assert set(UNDECIDED) <= {case[0] for case in ALL_CASES}
    assert set(UNDECIDED.values()) == set(UNDECIDABLE)


def _example_roots() -> list[Path]:
    return sorted(EXAMPLES.rglob(ROOT_FILE))


def _included(root: Path) -> list[Path]:
    data = load_text(root.read_text(encoding="utf-8"), str(root)).data
    patterns = data.get("include") or []
    return sorted({path for pattern in patterns for path in root.parent.glob(pattern)})


def _environment(text: str) -> dict[str, str]:
    """A plausible value for every ${VAR} a file reads."""
    names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)
    return {n: "https://example.com" if n.endswith("_URL") else "example" for n in names}


@pytest.mark.parametrize("root", _example_roots(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_is_valid_for_both(root: Path, judge: Judge) -> None:
    paths = [root, *_included(root)]
    texts = {path: path.read_text(encoding="utf-8") for path in paths}
    environ = _environment("".join(texts.values()))
    assert judge.validate_errors(root, environ) == []
    files = {ROOT_FILE if path == root else str(path): text for path, text in texts.items()}
    for environment in (environ, None):  # as validate reads them, and as an editor shows them
        data, unparsed = parse(files, environment)
        assert unparsed == []
        assert judge.schema_errors(data) == []


def test_examples_include_an_included_file() -> None:
    assert any(_included(root) for root in _example_roots())


def test_a_variable_may_stand_for_a_setting_of_fixed_values(judge: Judge, tmp_path: Path) -> None:
    text = _target("provider: oempro, base_url: 'https://e.x', api_key: k, encoding: '${ENC}'")
    _write(tmp_path, {ROOT_FILE: text})
    assert judge.validate_errors(tmp_path / ROOT_FILE, {"ENC": "json"}) == []
    assert judge.schema_errors(parse({ROOT_FILE: text}, None)[0]) == []  # as an editor shows it
    assert judge.validate_errors(tmp_path / ROOT_FILE, {"ENC": "xml"}) != []
    assert judge.schema_errors(parse({ROOT_FILE: text}, {"ENC": "xml"})[0]) != []


@pytest.mark.parametrize(("organization", "valid"), [("12", True), ("0", False), ("x1", False)])
def test_a_variable_may_stand_for_the_greenarrow_organization(
    judge: Judge, tmp_path: Path, organization: str, valid: bool
) -> None:
    text = _target(GREENARROW + ", organization_id: '${ORG}'", "{list: News}")
    _write(tmp_path, {ROOT_FILE: text})
    assert judge.schema_errors(parse({ROOT_FILE: text}, None)[0]) == []  # as an editor shows it
    environ = {"ORG": organization}
    assert (judge.validate_errors(tmp_path / ROOT_FILE, environ) == []) == valid
    assert (judge.schema_errors(parse({ROOT_FILE: text}, environ)[0]) == []) == valid


# The documents themselves: JSON Schema 2020-12, nothing but its keywords, readable by
# draft-07 tools (a $ref alone in its schema).

VOCABULARIES = ("core", "applicator", "unevaluated", "validation", "meta-data")
KEYWORDS = frozenset().union(
    *(
        REGISTRY.contents(f"https://json-schema.org/draft/2020-12/meta/{vocabulary}")["properties"]
        for vocabulary in (*VOCABULARIES, "format-annotation", "content")
    )
)
ONE_SCHEMA = {"additionalProperties", "items", "contains", "not", "if", "then", "else"}
ONE_SCHEMA |= {"propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema"}
SCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "dependentSchemas"}


def _schemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object in a document, with where it is."""
    if not isinstance(node, dict):
        assert isinstance(node, bool), where
        return
    yield where, node
    for key, value in node.items():
        if key in ONE_SCHEMA:
            yield from _schemas(value, f"{where}/{key}")
        elif key in SCHEMA_LISTS:
            for index, item in enumerate(value):
                yield from _schemas(item, f"{where}/{key}/{index}")
        elif key in SCHEMA_MAPS:
            for name, item in value.items():
                yield from _schemas(item, f"{where}/{key}/{name}")


@pytest.mark.parametrize("included", [False, True], ids=["root", "included"])
def test_the_document_is_json_schema_2020_12_and_nothing_else(judge: Judge, included: bool) -> None:
    document = (judge.included if included else judge.root).schema
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    found = list(_schemas(document))
    assert len(found) > 100
    for where, schema in found:
        assert set(schema) <= KEYWORDS, (where, set(schema) - KEYWORDS)
        assert "$ref" not in schema or len(schema) == 1, where


def test_the_root_document_holds_the_included_file_schema(judge: Judge) -> None:
    root, included = judge.root.schema, judge.included.schema
    body = {k: v for k, v in included.items() if k not in ("$schema", "title", "$defs")}
    assert root["$defs"]["IncludedFile"] == body
    assert included["$defs"] == root["$defs"]


def test_targets_are_described_per_installed_provider(judge: Judge) -> None:
    target = judge.root.schema["$defs"]["TargetConfig"]
    assert target["properties"]["provider"]["enum"] == list(REGISTRY_HERE)
    providers = [case["if"]["properties"]["provider"]["const"] for case in target["allOf"]]
    assert providers == list(REGISTRY_HERE)


class _Card(BaseModel):
    kind: Literal["card"]


class _Cash(BaseModel):
    kind: Literal["cash"]


class _TaggedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment: _Card | _Cash = Field(discriminator="kind")


class _PartlyBroken(Mapping[str, Any]):
    """A provider ``tagged`` whose settings pydantic describes with a non-keyword, and a
    provider ``broken`` that fails to load."""

    def __getitem__(self, key: str) -> Any:
        if key == "broken":
            raise ConfigError('provider "broken" is installed but cannot be loaded')
        if key == "tagged":
            return type("Tagged", (), {"settings_model": _TaggedSettings})
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(["tagged", "broken"])

    def __len__(self) -> int:
        return 2


def test_a_third_party_provider_gets_keywords_only_or_any_settings() -> None:
    assert "discriminator" in str(_TaggedSettings.model_json_schema())
    document = schema_document(_PartlyBroken())
    assert all(set(schema) <= KEYWORDS for _, schema in _schemas(document))
    validator = Draft202012Validator(document)

    def errors(target: dict[str, Any]) -> list[str]:
        config = {"version": 1, "targets": {"t": target}}
        return [error.message for error in validator.iter_errors(config)]

    assert errors({"provider": "tagged", "payment": {"kind": "card"}}) == []
    assert errors({"provider": "tagged", "payment": {"kind": "cheque"}}) != []
    assert errors({"provider": "tagged", "payment": {"kind": "cash"}, "other": 1}) != []
    assert errors({"provider": "broken", "anything": 1}) == []  # validate names the problem
    assert errors({"provider": "other"}) != []
