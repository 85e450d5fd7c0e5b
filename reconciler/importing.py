"""Live state -> a YAML file holding ``lists:``, ready for ``include:``, that plans to nothing.

Rules are written in canonical form (providers hand them over canonical, with ``native:``
for whatever has no canonical equivalent). Leaf rules are written as one-line flow mappings,
as people write them; ruamel.yaml does the writing, since the file is for people.
"""

from __future__ import annotations

import io

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from .model import FieldRule, Group, JSONValue, LiveList, LiveSegment, LiveState, Rule
from .rules import rule_data, walk
from .yamlio import plain_scalar

__all__ = ["import_yaml"]


_QUOTE = ("\x85", "\u2028", "\u2029", ":", "#", ",", "[", "]", "{", "}", "\n", "\t")
_INDICATORS = frozenset("?-:,[]{}#&*!|>'\"%@` ")


def _needs_quotes(text: str) -> bool:
    """Whether bare text could read back as something else: another type under the YAML
    1.2 core schema (``.5e3``), a YAML 1.1 line break, or flow syntax (``? x``, ``a: b``)."""
    if not text or text[0] in _INDICATORS or text[-1] == " ":
        return True
    if any(mark in text for mark in _QUOTE):
        return True
    return plain_scalar(text) != text or type(plain_scalar(text)) is not str


def _safe(value: JSONValue) -> JSONValue:
    """Text written double-quoted wherever bare text would not load back unchanged."""
    if isinstance(value, str):
        return DoubleQuotedScalarString(value) if _needs_quotes(value) else value
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def _rule_node(rule: Rule) -> JSONValue:
    if isinstance(rule, Group):
        members = CommentedSeq(_rule_node(member) for member in rule.rules)
        return CommentedMap({rule.match: members})
    node = CommentedMap(_safe(rule_data(rule)))
    node.fa.set_flow_style()
    return node


def _segment_node(segment: LiveSegment) -> CommentedMap:
    node = CommentedMap({"name": _safe(segment.name)})
    if segment.match != "all":
        node["match"] = segment.match
    node["rules"] = CommentedSeq(_rule_node(rule) for rule in segment.rules)
    if segment.options:
        node["options"] = CommentedMap(_safe(segment.options))
    return node


def _list_node(live: LiveList, default_target: str | None) -> CommentedMap:
    node = CommentedMap({"name": _safe(live.name)})
    if live.target != default_target:
        node["target"] = live.target
    used = {
        rule.field.casefold()
        for segment in live.segments
        for _, rule in walk(segment.rules)
        if isinstance(rule, FieldRule)
    }
    # Only the custom fields the imported rules use: a platform's other fields need no
    # declaration (and some platforms have dozens).
    declared = [f for f in live.fields if f.name.casefold() in used]
    if declared:
        fields = CommentedSeq()
        for field in declared:
            item = CommentedMap({"name": _safe(field.name), "type": field.type})
            if field.options:
                item["options"] = _safe(list(field.options))
            item.fa.set_flow_style()
            fields.append(item)
        node["fields"] = fields
    node["segments"] = CommentedSeq(
        _segment_node(s) for s in sorted(live.segments, key=lambda s: s.name) if s.rules
    )
    return node


def import_yaml(live: LiveState, default_target: str | None) -> str:
    """The live lists as YAML text (``lists:`` only), in a stable order."""
    root = CommentedMap(
        {
            "lists": CommentedSeq(
                _list_node(item, default_target)
                for item in sorted(live.lists, key=lambda item: (item.target, item.name))
            )
        }
    )
    comment = (
        "Imported by `reconciler import`. Segments here are managed from now on:\n"
        "review each, then include this file from reconciler.yaml."
    )
    empty = [f"{item.name}/{s.name}" for item in live.lists for s in item.segments if not s.rules]
    if empty:
        # A declared segment needs at least one rule (an empty one can match a whole list).
        comment += "\nNot imported, they have no rules: " + ", ".join(sorted(empty))
    root.yaml_set_start_comment(comment)
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(root, out)
    return out.getvalue()
