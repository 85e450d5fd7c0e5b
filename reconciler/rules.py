"""The segment rule language: normalise, compare and print canonical rule trees. Pure.

Normal form (what "the same rules" means everywhere in the tool):

- a group nested in a group of the same kind is flattened into it
  (``all(a, all(b, c))`` is ``all(a, b, c)``);
- a group of one member is that member; duplicates are dropped;
- the members of a group are a set: order never matters;
- field names compare case-insensitively; scalar values compare as text, so ``5`` and
  ``"5"`` are equal, and ``in``/``not_in`` value lists are sets;
- a segment whose rules normalise to a single rule has no meaningful ``match``.

``key`` computes that normal form as a hashable value without building models (the planner
compares thousands of segments with it); ``normalise`` builds the same form as models, for
printing and for adapters. ``key(normalise(x)) == key(x)`` always holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeAlias

from .model import (
    BehaviourRule,
    FieldRule,
    Group,
    JSONValue,
    MembershipRule,
    NativeRule,
    Rule,
    Scalar,
    Value,
)

__all__ = [
    "Key",
    "diff_lines",
    "group_of",
    "in_as_equals",
    "key",
    "leaves",
    "map_leaves",
    "normalise",
    "path_text",
    "render",
    "rule_data",
    "scalar_text",
    "segment_key",
    "walk",
]

Key: TypeAlias = tuple[object, ...]


def scalar_text(value: Scalar) -> str:
    """The text a scalar compares as: ``True`` is ``true``, ``5.0`` is ``5``."""
    if value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _value_key(op: str, value: Value | None) -> object:
    if value is None:
        return ""
    if isinstance(value, tuple):
        texts = tuple(scalar_text(v) for v in value)
        if op in ("in", "not_in"):
            return tuple(sorted(set(texts)))
        return texts
    return scalar_text(value)


def _field_key(rule: FieldRule) -> Key:
    return ("field", rule.field.casefold(), rule.op, _value_key(rule.op, rule.value))


def _behaviour_key(rule: BehaviourRule) -> Key:
    days = str(rule.within.days) if rule.within else ""
    return ("behaviour", rule.campaign, rule.event, days)


def _membership_key(rule: MembershipRule) -> Key:
    return ("membership", rule.list_.casefold(), rule.op)


def _native_key(rule: NativeRule) -> Key:
    return ("native", json.dumps(rule.native, sort_keys=True, default=str))


def _group_rule_key(rule: Group) -> Key:
    return _group_key(rule.match, rule.rules)


_KEYS: dict[type, Callable[[Any], Key]] = {
    FieldRule: _field_key,
    BehaviourRule: _behaviour_key,
    MembershipRule: _membership_key,
    NativeRule: _native_key,
    Group: _group_rule_key,
}


def key(rule: Rule) -> Key:
    """The normal form of one rule (or group) as a hashable, orderable value."""
    return _KEYS[rule.__class__](rule)


def _group_key(match: str, rules: Iterable[Rule]) -> Key:
    keys: set[Key] = set()
    for member in rules:
        k = _KEYS[member.__class__](member)
        if k[0] == "group" and k[1] == match:
            keys.update(k[2])  # type: ignore[arg-type]
        else:
            keys.add(k)
    # Keys of one kind share their layout position by position, so they sort directly.
    members = sorted(keys)
    if len(members) == 1:
        return members[0]
    return ("group", match, tuple(members))


def segment_key(match: str, rules: Sequence[Rule]) -> Key:
    """The normal form of a segment's rules (``match`` plus its top-level rules)."""
    return _group_key(match, rules)


def map_leaves(rule: Rule, change: Callable[[Rule], Rule]) -> Rule:
    """The same tree with every leaf replaced by ``change(leaf)``."""
    if isinstance(rule, Group):
        return Group.of(rule.match, tuple(map_leaves(member, change) for member in rule.rules))
    return change(rule)


def in_as_equals(rule: Rule) -> Rule:
    """``in``/``not_in`` as the OR of ``equals`` / AND of ``not_equals`` they mean, for
    platforms without a list operator; any other rule unchanged."""
    if not (isinstance(rule, FieldRule) and rule.op in ("in", "not_in")):
        return rule
    assert isinstance(rule.value, tuple)
    op: Literal["equals", "not_equals"] = "equals" if rule.op == "in" else "not_equals"
    members = tuple(FieldRule.model_construct(field=rule.field, op=op, value=v) for v in rule.value)
    if len(members) == 1:
        return members[0]
    return Group.of("any" if rule.op == "in" else "all", members)


YamlPath: TypeAlias = tuple[str | int, ...]
"""A path of keys and indexes inside a YAML document, e.g. ``("rules", 2, "any", 0)``."""


def walk(rules: Sequence[Rule], path: YamlPath = ("rules",)) -> list[tuple[YamlPath, Rule]]:
    """Every leaf rule of a declared tree with its path as written in the YAML, in order.

    A list, built without nested generators: validation walks every segment's rules."""
    found: list[tuple[YamlPath, Rule]] = []
    _walk_into(rules, path, found)
    return found


def leaves(rules: Sequence[Rule]) -> list[Rule]:
    """Every leaf rule of a tree, in the order :func:`walk` gives them, without their paths
    (cheaper: checks look for paths only once a leaf has a problem)."""
    found: list[Rule] = []
    pending = list(reversed(rules))
    while pending:
        rule = pending.pop()
        if isinstance(rule, Group):
            pending.extend(reversed(rule.rules))
        else:
            found.append(rule)
    return found


def _walk_into(rules: Sequence[Rule], path: YamlPath, found: list[tuple[YamlPath, Rule]]) -> None:
    for index, rule in enumerate(rules):
        if isinstance(rule, Group):
            _walk_into(rule.rules, (*path, index, rule.match), found)
        else:
            found.append(((*path, index), rule))


def path_text(path: YamlPath) -> str:
    """``("rules", 2, "any", 0)`` as ``rules[2].any[0]``, for messages."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def group_of(match: str, rules: Sequence[Rule]) -> Group:
    """A segment's top level as one group value (no validation, no normalisation)."""
    return Group.of("any" if match == "any" else "all", tuple(rules))


def normalise(rule: Rule) -> Rule:
    """The normal form of a rule tree as models: flattened, de-duplicated, sorted."""
    if not isinstance(rule, Group):
        if isinstance(rule, FieldRule) and rule.op in ("in", "not_in"):
            assert isinstance(rule.value, tuple)
            unique = {scalar_text(v): v for v in rule.value}
            value = tuple(unique[text] for text in sorted(unique))
            return rule.model_copy(update={"value": value})
        return rule
    seen: dict[Key, Rule] = {}
    for member in rule.rules:
        normal = normalise(member)
        if isinstance(normal, Group) and normal.match == rule.match:
            for inner in normal.rules:
                seen.setdefault(key(inner), inner)
        else:
            seen.setdefault(key(normal), normal)
    ordered = [seen[k] for k in sorted(seen)]
    if len(ordered) == 1:
        return ordered[0]
    return Group.of(rule.match, tuple(ordered))


def top_level(match: str, rules: Sequence[Rule]) -> tuple[str, tuple[Rule, ...]]:
    """A segment's ``match`` and top-level rules in normal form."""
    normal = normalise(group_of(match, rules))
    if isinstance(normal, Group):
        return normal.match, normal.rules
    return "all", (normal,)


def quoted(text: str) -> str:
    """``text`` as a JSON string (non-ASCII kept), as plans show names and values."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing JSON escapes: the common case, without the encoder
    return json.dumps(text, ensure_ascii=False)


def _quote(value: Scalar) -> str:
    if isinstance(value, str):
        return quoted(value)
    return scalar_text(value)


_OP_WORDS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "before": "before",
    "after": "after",
    "in": "in",
    "not_in": "not in",
}

_MEMBERSHIP_WORDS = {
    "in": "in list",
    "not_in": "not in list",
    "active_in": "active in list",
    "not_active_in": "not active in list",
}


def render(rule: Rule) -> str:
    """One rule (or group) as readable text: ``email contains "@gmail.com"``."""
    if isinstance(rule, Group):
        inner = ", ".join(render(member) for member in rule.rules)
        return f"{rule.match}({inner})"
    if isinstance(rule, FieldRule):
        if rule.op == "empty":
            return f"{rule.field} is empty"
        if rule.op == "not_empty":
            return f"{rule.field} is not empty"
        if rule.op == "between":
            assert isinstance(rule.value, tuple)
            low, high = rule.value
            return f"{rule.field} between {_quote(low)} and {_quote(high)}"
        if isinstance(rule.value, tuple):
            items = ", ".join(_quote(v) for v in rule.value)
            return f"{rule.field} {_OP_WORDS[rule.op]} [{items}]"
        assert rule.value is not None
        return f"{rule.field} {_OP_WORDS[rule.op]} {_quote(rule.value)}"
    if isinstance(rule, BehaviourRule):
        event = rule.event.replace("_", " ")
        window = f" within {rule.within.days} days" if rule.within else ""
        return f"{event} campaign {rule.campaign}{window}"
    if isinstance(rule, MembershipRule):
        return f"{_MEMBERSHIP_WORDS[rule.op]} {_quote(rule.list_)}"
    return "native " + json.dumps(rule.native, sort_keys=True, ensure_ascii=False, default=str)


def rule_data(rule: Rule) -> dict[str, JSONValue]:
    """A rule as the plain data the YAML holds (aliases as keys, no empty values)."""
    data: dict[str, JSONValue] = rule.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(rule, MembershipRule) and rule.op == "in":
        data.pop("op", None)
    return data


def diff_lines(
    before_match: str,
    before: Sequence[Rule],
    after_match: str,
    after: Sequence[Rule],
) -> list[str]:
    """Rule-level differences between two segments' rules, as ``+``/``-``/``~`` lines.

    Top-level members are compared as sets in normal form: a member present on only one
    side is one line; a changed ``match`` is one ``~`` line.
    """
    old_match, old_rules = top_level(before_match, before)
    new_match, new_rules = top_level(after_match, after)
    lines: list[str] = []
    if old_match != new_match and len(old_rules) > 1 and len(new_rules) > 1:
        lines.append(f"~ match: {old_match} -> {new_match}")
    old_keys = {key(r): r for r in old_rules}
    new_keys = {key(r): r for r in new_rules}
    lines.extend(f"- {render(r)}" for k, r in old_keys.items() if k not in new_keys)
    lines.extend(f"+ {render(r)}" for k, r in new_keys.items() if k not in old_keys)
    return lines
