"""Translate pydantic validation errors into located, plain-language ``ConfigError``s.

A pydantic error's ``loc`` is a path into the YAML (model keys equal the YAML keys) with
two kinds of extra elements: the tag the rule union inserts after a rule's index, and the
member labels a plain union inserts (``'str'``, ``'tuple[...]'``). Both are removed here,
guided by the data itself, before :func:`reconciler.yamlio.locate` finds the line.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic_core import ErrorDetails

from . import yamlio
from .errors import ConfigError

__all__ = ["allowed_keys", "describe", "did_you_mean", "translate", "yaml_path"]

Path = tuple[str | int, ...]

_RULE_TAGS = frozenset({"field", "behaviour", "membership", "native", "group"})
_RULE_LISTS = frozenset({"rules", "any", "all"})
_TYPE_NAMES = {
    "string_type": "text",
    "bool_type": "true/false",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean "x"?)`` for a close match (case-insensitive), else ``""``."""
    if len(word) > _HINT_MAX:  # comparing long texts costs their product; no typo is that long
        return ""
    return _did_you_mean(word, tuple(c for c in choices if len(c) <= _HINT_MAX))


_HINT_MAX = 200


@functools.lru_cache(maxsize=1024)
def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    # A typo repeated in thousands of places costs one comparison, not thousands.
    lowered = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f' (did you mean "{lowered[found[0]]}"?)' if found else ""


def describe(value: object) -> str:
    """A value's YAML kind, in words (never the value itself)."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a mapping" if isinstance(value, dict) else "a list"


def _contains(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def yaml_path(loc: tuple[str | int, ...], data: Any, keep_missing: bool = False) -> Path:
    """The YAML path of a pydantic ``loc``: rule tags and union member labels removed."""
    path: list[str | int] = []
    node = data
    after_rule_index = False
    for i, step in enumerate(loc):
        if after_rule_index and step in _RULE_TAGS:
            after_rule_index = False
            continue
        if _contains(node, step):
            node = node[step]
        elif keep_missing and i == len(loc) - 1 and isinstance(node, dict):
            path.append(step)
            break
        else:
            continue  # a union member label, not a place in the document
        after_rule_index = isinstance(step, int) and bool(path) and path[-1] in _RULE_LISTS
        path.append(step)
    return tuple(path)


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _tag_of(annotation: Any) -> str | None:
    if get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, Tag):
                return meta.tag
    return None


def _step(annotation: Any, step: str | int) -> Any:
    """The type found one ``loc`` element below ``annotation``, or None."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if step in (name, info.alias):
                return info.annotation
        return None
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        for member in members:
            if _tag_of(member) == step:
                return _unwrap(member)
        found = [_step(m, step) for m in members if m is not type(None)]
        return next((f for f in found if f is not None), None)
    if origin in (tuple, list):
        return get_args(annotation)[0] if isinstance(step, int) else None
    if origin is dict:
        return get_args(annotation)[1]
    return None


def allowed_keys(root: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model at ``loc`` (a pydantic location below ``root``) accepts."""
    annotation: Any = root
    for step in loc:
        annotation = _step(annotation, step)
        if annotation is None:
            return []
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next((a for a in get_args(annotation) if a is not type(None)), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    return []


def _expected(ctx: dict[str, Any] | None) -> list[str]:
    text = str((ctx or {}).get("expected", ""))
    quoted = re.findall(r"'([^']*)'", text)
    return quoted or [part for part in re.split(r", | or ", text) if part]


def _key_name(path: Path) -> str:
    named = [step for step in path if isinstance(step, str)]
    return f'"{named[-1]}" ' if named else ""


def _literal_message(error: ErrorDetails, path: Path, show_input: bool) -> str:
    options = _expected(error.get("ctx"))
    value = error["input"]
    shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
    if len(options) == 1:
        return f"{_key_name(path)}must be {options[0]}" + (f", not {shown}" if show_input else "")
    if not show_input:
        return f"{_key_name(path)}must be one of: {', '.join(options)}"
    return f"{shown} is not one of: {', '.join(options)}"


def _message(error: ErrorDetails, path: Path, root: Any, show_input: bool) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        allowed = allowed_keys(root, error["loc"][:-1])
        hint = did_you_mean(key, allowed)
        if not hint and allowed:
            hint = f" (allowed: {', '.join(allowed)})"
        return f'unknown key "{key}"{hint}'
    if kind == "missing":
        return f'missing required key "{error["loc"][-1]}"'
    if kind == "literal_error":
        return _literal_message(error, path, show_input)
    if kind == "rule_kind":
        return error["msg"]
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind in ("too_short", "string_too_short"):
        return f"{_key_name(path)}must not be empty"
    if kind in _TYPE_NAMES:
        return f"{_key_name(path)}must be {_TYPE_NAMES[kind]}, not {describe(error['input'])}"
    text = error["msg"].replace("Input should be", "must be", 1)
    return f"{_key_name(path)}{text[:1].lower()}{text[1:]}".strip()


def _merge_type_errors(items: list[tuple[Path, ErrorDetails]]) -> list[tuple[Path, ErrorDetails]]:
    """One error per place for a union's members: "must be text, an integer or a list"."""
    merged: list[tuple[Path, ErrorDetails]] = []
    by_path: dict[Path, list[str]] = {}
    # A float member that says "not finite" explains the value; the other members' type
    # mismatches would only repeat that it is a number.
    # The same holds above it: in ``value: [1, .nan]`` the list member was the right one.
    finite = {
        path[:end]
        for path, error in items
        if error["type"] == "finite_number"
        for end in range(len(path) + 1)
    }
    for path, error in items:
        if error["type"] in _TYPE_NAMES and path in finite:
            continue
        if error["type"] not in _TYPE_NAMES:
            merged.append((path, error))
            continue
        names = by_path.setdefault(path, [])
        if not names:
            merged.append((path, error))
        if _TYPE_NAMES[error["type"]] not in names:
            names.append(_TYPE_NAMES[error["type"]])
    result = []
    for path, error in merged:
        names = by_path.get(path, [])
        if error["type"] in _TYPE_NAMES and len(names) > 1:
            either = ", ".join(names[:-1]) + " or " + names[-1]
            error = {**error, "type": "union_type", "msg": f"Must be {either}"}
            error["msg"] += f", not {describe(error['input'])}"
        result.append((path, error))
    return result


def _drop_spurious(items: list[tuple[Path, ErrorDetails]]) -> list[tuple[Path, ErrorDetails]]:
    """pydantic adds ``too_short`` to a list whose items failed; the item errors suffice."""
    parents = {path[:end] for path, _ in items for end in range(len(path))}
    return [
        (path, error)
        for path, error in items
        if not (error["type"] == "too_short" and path in parents)
    ]


def translate(
    errors: Sequence[ErrorDetails],
    *,
    data: Any,
    file: str | None,
    root: Any,
    prefix: Path = (),
    show_input: bool = True,
) -> list[ConfigError]:
    """Located one-line errors for ``errors`` from validating ``data`` against ``root``.

    ``prefix`` is where ``data`` sits in ``file``. With ``show_input=False`` no input value
    is ever quoted (for target settings, which may hold secrets).
    """
    items = [(yaml_path(e["loc"], data, e["type"] == "missing"), e) for e in errors]
    items = _merge_type_errors(_drop_spurious(items))
    found = []
    for path, error in items:
        message = _message(error, path, root, show_input)
        if file is None:
            found.append(ConfigError(message))
            continue
        where = path[:-1] if error["type"] == "missing" else path
        line, column = yamlio.locate(file, prefix + where)
        found.append(ConfigError(message, file=file, line=line, column=column))
    return found
