"""The JSON Schema of the YAML configuration, for editors and CI.

``validate`` is the authority; the schema says as much of it as JSON Schema can, so that an
editor flags a mistake where it is typed. It refuses what ``validate`` refuses, except what no
JSON Schema can decide: YAML syntax (duplicate keys, tags), ``${VAR}`` values, the files an
``include:`` matches, names that must be unique or must name something declared elsewhere,
what a target's platform can store or its provider's own checks refuse, ``1.0`` where an
integer is due (JSON Schema counts it as one) and ``.nan``. tests/unit/test_schema_agrees.py
holds the list, with a case of each.

Two documents share one set of ``$defs``: the root file's, and an included file's (``lists:``
only), which the root document also holds as ``$defs/IncludedFile``. Both are JSON Schema
2020-12 written in the part that draft-07 tools (the VS Code YAML extension) read the same
way: no ``$ref`` with siblings, no ``unevaluated*``, no ``prefixItems``. Target settings come
from the installed providers' ``settings_model``: one ``if provider is X then ...`` each.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable, Mapping
from urllib.parse import quote

from .model import (
    FIELD_OPERATORS,
    LIST_VALUE_OPERATORS,
    NO_VALUE_OPERATORS,
    STANDARD_FIELDS,
    BehaviourRule,
    Config,
    FieldRule,
    Group,
    JSONValue,
    MembershipRule,
    NativeRule,
    TargetConfig,
)
from .provider import Provider

__all__ = ["DIALECT", "schema_document"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, JSONValue]

_FINITE: Schema = {"minimum": -sys.float_info.max, "maximum": sys.float_info.max}
"""Bounds that refuse YAML's ``.inf`` (JSON has no infinity, so this is the only way to;
``.nan`` compares false with everything and is left to ``validate``)."""
_VARIABLE = r"(?:^|[^$])\$\{[A-Za-z_][A-Za-z0-9_]*\}"
"""Text holding a ``${VAR}`` reference, which only the environment can make valid."""
_OPTION_TYPES = ("select", "multiselect")
"""The field types that may have ``options`` (validate's field check)."""
_RULE_KINDS = (
    ("field", FieldRule),
    ("campaign", BehaviourRule),
    ("list", MembershipRule),
    ("native", NativeRule),
)
"""The key that makes a mapping each kind of rule, in the order ``validate`` tries them."""

_ONE = frozenset(
    {"additionalProperties", "items", "contains", "not", "if", "then", "else", "propertyNames"}
    | {"unevaluatedItems", "unevaluatedProperties", "contentSchema"}
)
"""The keywords whose value is one schema."""
_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
_KEYWORDS = _ONE | _LIST | _MAP
_KEYWORDS |= {"$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$comment"}
_KEYWORDS |= {"$vocabulary", "type", "const", "enum", "required", "dependentRequired"}
_KEYWORDS |= {"multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"}
_KEYWORDS |= {"maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems"}
_KEYWORDS |= {"maxContains", "minContains", "maxProperties", "minProperties"}
_KEYWORDS |= {"title", "description", "default", "deprecated", "readOnly", "writeOnly"}
_KEYWORDS |= {"examples", "format", "contentEncoding", "contentMediaType"}
"""Every keyword of JSON Schema 2020-12's vocabularies."""


def schema_document(providers: Mapping[str, type[Provider]], *, included: bool = False) -> Schema:
    """The JSON Schema of a root configuration file, or of an included file (``included``),
    with target settings as the installed ``providers`` define them."""
    defs = _definitions(providers)
    root = copy.deepcopy(defs.pop("Config"))
    defs["IncludedFile"] = _included_file()
    if included:
        title, body = "reconciler included file (lists only)", copy.deepcopy(defs["IncludedFile"])
    else:
        title, body = "reconciler configuration", root
    body.pop("title", None)
    return {"$schema": DIALECT, "title": title, **body, "$defs": defs}


def _ref(name: str) -> Schema:
    return {"$ref": "#/$defs/" + quote(name.replace("~", "~0").replace("/", "~1"), safe="")}


def _map_schemas(node: JSONValue, change: Callable[[Schema], JSONValue]) -> JSONValue:
    """``node`` with ``change`` applied to it and to every schema inside it, innermost first
    (the values of ``enum``, ``const``, ``default`` and ``examples`` are data, left alone)."""
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in _ONE:
            value = _map_schemas(value, change)
        elif key in _LIST and isinstance(value, list):
            value = [_map_schemas(item, change) for item in value]
        elif key in _MAP and isinstance(value, dict):
            value = {name: _map_schemas(item, change) for name, item in value.items()}
        out[key] = value
    return change(out)


def _definitions(providers: Mapping[str, type[Provider]]) -> Schema:
    document = Config.model_json_schema(by_alias=True)
    defs: Schema = document.pop("$defs")
    defs["Config"] = document
    document["properties"]["lists"]["type"] = ["array", "null"]  # `lists:` left empty
    document["properties"]["include"]["items"]["pattern"] = (
        r"^(?![/\\])(?!(?:.*[/\\])?\.\.(?:[/\\]|$))"  # relative, never through ".."
    )
    defs["Rule"] = _rule()
    defs["Scalar"] = {"type": ["string", "boolean", "number"], **_FINITE}
    defs["FiniteJSON"] = {**_FINITE, "items": _ref("FiniteJSON")}
    defs["FiniteJSON"]["additionalProperties"] = _ref("FiniteJSON")
    defs["Segment"]["properties"]["options"]["additionalProperties"] = _ref("FiniteJSON")
    _field_rule(defs["FieldRule"])
    defs["Group"]["oneOf"] = [
        {"required": [key], "properties": {key: {"type": "array"}}} for key in ("any", "all")
    ]
    _field_def(defs["FieldDef"])
    rules = {"oneOf": [_ref(model.__name__) for _, model in _RULE_KINDS] + [_ref(Group.__name__)]}
    defs = {
        name: _map_schemas(schema, lambda n: _ref("Rule") if n == rules else _finite(n))
        for name, schema in defs.items()
    }
    defs["TargetConfig"] = _target(defs["TargetConfig"], providers, defs)
    return defs


def _finite(node: Schema) -> Schema:
    kinds = node.get("type")
    if kinds == "number" or (isinstance(kinds, list) and "number" in kinds):
        return {**_FINITE, **node}
    return node


def _included_file() -> Schema:
    return {
        "description": 'An included file: it holds only "lists".',
        "type": ["object", "null"],  # an empty file adds no lists
        "properties": {"lists": {"type": ["array", "null"], "items": _ref("MailingList")}},
        "additionalProperties": False,
    }


def _rule() -> Schema:
    keys = [key for key, _ in _RULE_KINDS] + ["any", "all"]
    node: Schema = {
        "if": {"anyOf": [{"required": ["any"]}, {"required": ["all"]}]},
        "then": _ref(Group.__name__),
        "else": {"anyOf": [{"required": [key]} for key in keys]},
    }
    for key, model in reversed(_RULE_KINDS):
        node = {"if": {"required": [key]}, "then": _ref(model.__name__), "else": node}
    description = (
        "A rule: {field, op, value}, {campaign, event}, {list, op}, {native: {...}}, "
        "or a group {any: [...]} or {all: [...]}."
    )
    return {"description": description, "type": "object", **node}


def _field_rule(schema: Schema) -> None:
    """The value each operator takes: none, two items, a non-empty list, or one value."""
    schema["properties"]["value"]["anyOf"] = [
        _ref("Scalar"),
        {"type": "array", "items": _ref("Scalar")},
        {"type": "null"},
    ]
    no_value = [op for op in FIELD_OPERATORS if op in NO_VALUE_OPERATORS]
    lists = [op for op in FIELD_OPERATORS if op in LIST_VALUE_OPERATORS]
    single = [op for op in FIELD_OPERATORS if op not in {*no_value, *lists, "between"}]
    schema["allOf"] = [
        _when(no_value, None),
        _when(["between"], {"type": "array", "minItems": 2, "maxItems": 2}),
        _when(lists, {"type": "array", "minItems": 1}),
        _when(single, {"type": ["string", "boolean", "number"]}),
    ]


def _when(ops: list[str], value: Schema | None) -> Schema:
    """``value`` must be given, and be this, for these operators (None: not given)."""
    then: Schema = {"properties": {"value": value or {"type": "null"}}}
    if value is not None:
        then["required"] = ["value"]
    return {"if": {"required": ["op"], "properties": {"op": {"enum": ops}}}, "then": then}


def _field_def(schema: Schema) -> None:
    """Options only for select fields; no standard field's name, in any case."""
    schema["if"] = {"required": ["type"], "properties": {"type": {"enum": list(_OPTION_TYPES)}}}
    schema["else"] = {"properties": {"options": {"maxItems": 0}}}
    names = "|".join(_any_case(name) for name in STANDARD_FIELDS)
    schema["properties"]["name"]["not"] = {"pattern": f"^(?:{names})$"}


def _any_case(name: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in name)


def _target(schema: Schema, providers: Mapping[str, type[Provider]], defs: Schema) -> Schema:
    """A target: a provider installed here, and the settings that provider takes."""
    schema["properties"]["provider"]["enum"] = list(providers)
    cases = []
    for key in providers:
        settings = _settings(key, providers, defs)
        if settings is not None:
            provider = {"required": ["provider"], "properties": {"provider": {"const": key}}}
            cases.append({"if": provider, "then": settings})
    if cases:
        schema["allOf"] = cases
    return schema


def _settings(key: str, providers: Mapping[str, type[Provider]], defs: Schema) -> Schema | None:
    """A target of provider ``key``: its ``settings_model`` beside the keys every target
    has; None (any settings) when that cannot be described."""
    prefix = f"{key}."
    try:
        schema = providers[key].settings_model.model_json_schema(
            by_alias=True, ref_template=_ref(prefix)["$ref"] + "{model}"
        )
    except Exception:  # a third-party provider that fails to load or to describe itself
        return None
    if not isinstance(schema.get("properties"), dict):
        return None
    for name, sub in schema.pop("$defs", {}).items():
        defs[prefix + name] = _map_schemas(sub, _provider_keywords)
    settings: Schema = _map_schemas(schema, _provider_keywords)
    settings["title"] = f"{key} target"
    settings["properties"] = {
        **settings["properties"],
        **{info.alias or name: True for name, info in TargetConfig.model_fields.items()},
    }
    return settings


def _provider_keywords(node: Schema) -> JSONValue:
    """A provider's schema, keeping only JSON Schema keywords (pydantic may add others), and
    letting a constrained text be a ``${VAR}`` reference, as the environment may fill it."""
    kept = {key: value for key, value in node.items() if key in _KEYWORDS}
    constrained = any(key in kept for key in ("enum", "const", "pattern", "maxLength"))
    if kept.get("type") != "string" or not constrained:
        return kept
    about = {key: kept.pop(key) for key in ("title", "description", "default") if key in kept}
    return {**about, "anyOf": [kept, {"type": "string", "pattern": _VARIABLE}]}
