"""Live state -> a YAML file holding ``lists:``, ready for ``include:``, that plans to nothing.

Rules are written in canonical form (providers hand them over canonical, with ``native:``
for whatever has no canonical equivalent). Leaf rules are written as one-line flow mappings,
as people write them; ruamel.yaml does the writing, since the file is for people.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from .model import (
    STANDARD_FIELDS,
    FieldDef,
    FieldRule,
    Group,
    JSONValue,
    LiveField,
    LiveList,
    LiveSegment,
    LiveState,
    MailingList,
    Rule,
    Segment,
)
from .provider import Provider
from .rules import rule_data, walk
from .validation import segment_problems
from .yamlio import plain_scalar

__all__ = ["Imported", "import_document", "import_yaml"]


_QUOTE = ("\x85", "\u2028", "\u2029", ":", "#", ",", "[", "]", "{", "}", "\n", "\t", "?")
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


def _segment_node(segment: LiveSegment, provider: Provider | None) -> CommentedMap:
    node = CommentedMap({"name": _safe(segment.name)})
    if segment.match != "all":
        node["match"] = segment.match
    node["rules"] = CommentedSeq(_rule_node(rule) for rule in segment.rules)
    options = _options(segment, provider)
    if options:
        node["options"] = CommentedMap(_safe(options))
    return node


@dataclass
class Imported:
    """The YAML ``import`` writes, and what it left out of it (for stderr)."""

    text: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Kept:
    """One live list's segments split into those written and those left out, with why."""

    segments: list[LiveSegment] = field(default_factory=list)
    left_out: list[tuple[LiveSegment, str]] = field(default_factory=list)


def _split_duplicates(live: LiveList, provider: Provider | None) -> _Kept:
    """The first live segment of each name is kept; the others (and empty ones) are not."""
    folds = provider is not None and provider.capabilities.names_case_insensitive
    norm = str.casefold if folds else str
    first: dict[str, LiveSegment] = {}
    kept = _Kept()
    for segment in live.segments:
        name = norm(segment.name)
        if name in first:
            reason = (
                f'another live segment (id {first[name].id}) has the name "{first[name].name}"; '
                "plan reports them as a conflict until one is renamed in the platform"
            )
            kept.left_out.append((segment, reason))
            continue
        first[name] = segment
        if "\\u0000" in segment.model_dump_json():
            # A configuration file cannot hold NUL (the loader refuses it): say so instead.
            kept.left_out.append((segment, "it holds the NUL character, which YAML cannot"))
        elif segment.rules:
            kept.segments.append(segment)
        else:
            # A declared segment needs at least one rule (an empty one can match a list).
            kept.left_out.append((segment, segment.reason or "it has no rules"))
    return kept


def _declared_fields(live: LiveList, segments: Sequence[LiveSegment]) -> list[LiveField]:
    """Only the custom fields the imported rules use: a platform's other fields need no
    declaration (and some platforms have dozens). A custom field named like a standard
    field cannot be declared: its provider reads its rules as ``native:``."""
    used = {
        rule.field.casefold()
        for segment in segments
        for _, rule in walk(segment.rules)
        if isinstance(rule, FieldRule)
    }
    return [
        f
        for f in live.fields
        if f.name.casefold() in used and f.name.casefold() not in STANDARD_FIELDS
    ]


def _options(segment: LiveSegment, provider: Provider | None) -> dict[str, JSONValue]:
    return provider.import_options(segment.options) if provider else dict(segment.options)


def _vet(live: LiveList, kept: _Kept, provider: Provider | None) -> None:
    """Move every segment ``validate`` would refuse on this target to ``left_out``."""
    if provider is None:
        return
    capabilities = provider.capabilities_for(provider.settings)
    fields = tuple(
        FieldDef.model_construct(name=f.name, type=f.type, options=f.options)
        for f in _declared_fields(live, kept.segments)
    )
    segments: list[Segment | None] = []
    for segment in kept.segments:
        try:
            segments.append(
                Segment(
                    name=segment.name,
                    match=segment.match,
                    rules=segment.rules,
                    options=_options(segment, provider),
                )
            )
        except ValidationError as exc:
            segments.append(None)
            kept.left_out.append((segment, exc.errors()[0]["msg"]))
    valid = [s for s in segments if s is not None]
    candidate = MailingList.model_construct(name=live.name, fields=fields, segments=tuple(valid))
    problems = segment_problems(candidate, type(provider), capabilities)
    refused = {valid[i].name for i in problems}
    for index, reasons in problems.items():
        original = next(s for s in kept.segments if s.name == valid[index].name)
        kept.left_out.append((original, "; ".join(reasons)))
    kept.segments = [
        s
        for s, model in zip(kept.segments, segments, strict=True)
        if model is not None and s.name not in refused
    ]


def _commented(segment: LiveSegment, provider: Provider | None) -> str:
    """The segment as YAML, to show in a comment."""
    out = io.StringIO()
    _yaml().dump([_segment_node(segment, provider)], out)
    return out.getvalue()


def _list_node(
    live: LiveList, default_target: str | None, provider: Provider | None, notes: list[str]
) -> CommentedMap:
    node = CommentedMap({"name": _safe(live.name)})
    if live.target != default_target:
        node["target"] = live.target
    kept = _split_duplicates(live, provider)
    _vet(live, kept, provider)
    declared = _declared_fields(live, kept.segments)
    if declared:
        fields = CommentedSeq()
        for f in declared:
            item = CommentedMap({"name": _safe(f.name), "type": f.type})
            if f.options:
                item["options"] = _safe(list(f.options))
            item.fa.set_flow_style()
            fields.append(item)
        node["fields"] = fields
    node["segments"] = CommentedSeq(
        _segment_node(s, provider) for s in sorted(kept.segments, key=lambda s: s.name)
    )
    if kept.left_out:
        lines = []
        for segment, reason in kept.left_out:
            notes.append(
                f'list "{live.name}": segment "{segment.name}" (id {segment.id}) '
                f"not imported: {reason}"
            )
            shown = json.dumps(segment.name, ensure_ascii=False)  # control characters escaped
            lines.append(f"Not imported: {shown} (id {segment.id}): {reason}")
            if segment.rules:
                lines.extend(_commented(segment, provider).rstrip("\n").splitlines())
        node.yaml_set_comment_before_after_key("segments", before="\n".join(lines), indent=4)
    return node


def _yaml() -> YAML:
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def import_document(
    live: LiveState, default_target: str | None, provider: Provider | None = None
) -> Imported:
    """The live lists as YAML text (``lists:`` only), in a stable order, holding only what
    ``validate`` accepts on ``provider``'s target (given one); the rest is written as
    comments saying why, and listed in ``notes``."""
    notes: list[str] = []
    root = CommentedMap(
        {
            "lists": CommentedSeq(
                _list_node(item, default_target, provider, notes)
                for item in sorted(live.lists, key=lambda item: (item.target, item.name))
            )
        }
    )
    root.yaml_set_start_comment(
        "Imported by `reconciler import`. Segments here are managed from now on:\n"
        "review each, then include this file from reconciler.yaml."
    )
    out = io.StringIO()
    _yaml().dump(root, out)
    return Imported(out.getvalue(), notes)


def import_yaml(
    live: LiveState, default_target: str | None, provider: Provider | None = None
) -> str:
    """``import_document``'s text."""
    return import_document(live, default_target, provider).text
