"""Fast YAML loading into plain Python objects, with positions recovered only when needed.

Loading composes each file with ruamel.yaml's C parser (libyaml) and a resolver that runs
no Python implicit resolvers, then builds plain objects with a small constructor of our own
implementing the YAML 1.2 core schema for plain (unquoted) scalars:

=================================  ===========================================
plain scalar                       becomes
=================================  ===========================================
``null`` ``Null`` ``NULL`` ``~``   ``None`` (so does an empty value)
``true`` ``True`` ``TRUE`` ...     ``bool``
``12`` ``-3`` ``0o17`` ``0x1F``    ``int``
``1.5`` ``1e3`` ``.inf`` ``.nan``  ``float``
anything else                      ``str``: dates such as ``2024-01-01`` stay text
=================================  ===========================================

Quoted scalars are always text. Only the core tags (``!!str``, ``!!int``, ``!!float``,
``!!bool``, ``!!null``, ``!!map``, ``!!seq``) are accepted. Keys must be text and unique.
Aliases are supported, but a document whose aliases expand past a budget is refused (an
"alias bomb"). No node tree outlives the load: positions for error messages come from
:func:`locate`, which re-reads one file on demand.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from pathlib import Path
from sys import intern
from typing import Any

from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import BaseResolver

from .errors import ConfigError

__all__ = ["Expander", "Loaded", "clear_cache", "load_file", "locate"]

Expander = Callable[[str], str]
"""Rewrites one string scalar (``${VAR}`` expansion); raises ``KeyError(name)`` if unknown."""

_YAML = "tag:yaml.org,2002:"
_PLAIN = "!reconciler-plain"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _YAML + "map", _YAML + "seq"
_ALIAS_BUDGET = 100_000

_WORDS: dict[str, Any] = {
    "": None,
    "~": None,
    **dict.fromkeys(("null", "Null", "NULL"), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_NUMERIC_START = frozenset("0123456789+-.")
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")


def plain_scalar(text: str) -> Any:
    """The YAML 1.2 core-schema value of an unquoted scalar."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMERIC_START:
        return text
    if _INT_RE.match(text):
        try:
            return int(text)
        except ValueError:  # longer than Python converts (4,300 digits): keep it as text
            return text
    if _FLOAT_RE.match(text):
        return float(text)
    if _OCT_RE.match(text):
        return int(text[2:], 8)
    if _HEX_RE.match(text):
        return int(text[2:], 16)
    return text


class _Node:
    """A lean stand-in for ruamel.yaml's nodes: plain string tags, no per-node Tag object."""

    __slots__ = ("end_mark", "start_mark", "style", "tag", "value")

    def __init__(
        self,
        tag: str,
        value: Any,
        start_mark: Any,
        end_mark: Any = None,
        style: Any = None,
        comment: Any = None,
        anchor: Any = None,
    ) -> None:
        self.tag = tag
        self.value = value
        self.start_mark = start_mark
        self.end_mark = end_mark
        self.style = style


class _Scalar(_Node):
    __slots__ = ()


class _Sequence(_Node):
    __slots__ = ()


class _Mapping(_Node):
    __slots__ = ()


_LEAN = {ScalarNode: _Scalar, SequenceNode: _Sequence, MappingNode: _Mapping}


def _marker_tag(kind: Any, implicit: Any) -> str:
    """Tag every untagged plain scalar with a marker instead of guessing its type."""
    if kind is ScalarNode or kind is _Scalar:
        return _PLAIN if implicit[0] else _STR
    return _SEQ if kind is SequenceNode or kind is _Sequence else _MAP


_c_lock = threading.Lock()


def _compose_c(text: str) -> _Node | None:
    """Compose with libyaml, building lean nodes.

    The C extension looks its node classes up in its module namespace at run time; they
    are swapped for the lean ones while this one call runs (about half the compose time).
    """
    import _ruamel_yaml as clib  # type: ignore[import-not-found]

    class _Composer(clib.CParser, BaseResolver):  # type: ignore[misc]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            return _marker_tag(kind, implicit)

    with _c_lock:
        saved = clib.ScalarNode, clib.SequenceNode, clib.MappingNode
        clib.ScalarNode, clib.SequenceNode, clib.MappingNode = _Scalar, _Sequence, _Mapping
        try:
            node: _Node | None = _Composer(text).get_single_node()
        finally:
            clib.ScalarNode, clib.SequenceNode, clib.MappingNode = saved
    return node


def _lean(node: Node, memo: dict[int, _Node]) -> _Node:
    """Copy a ruamel.yaml node tree into lean nodes, keeping aliases shared."""
    if id(node) in memo:
        return memo[id(node)]
    lean = _LEAN[type(node)](str(node.tag), None, node.start_mark, node.end_mark)
    memo[id(node)] = lean
    if isinstance(node, MappingNode):
        lean.value = [(_lean(k, memo), _lean(v, memo)) for k, v in node.value]
    elif isinstance(node, SequenceNode):
        lean.value = [_lean(v, memo) for v in node.value]
    else:
        lean.value = node.value
    return lean


def _compose_pure(text: str) -> _Node | None:
    """Compose with ruamel.yaml's pure-Python parser (when the C extension is missing)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.resolver import VersionedResolver
    from ruamel.yaml.tag import Tag

    class _PureResolver(VersionedResolver):
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            return Tag(suffix=_marker_tag(kind, implicit))

    yaml = YAML(typ="base", pure=True)
    yaml.Resolver = _PureResolver
    node: Node | None = yaml.compose(text)
    return None if node is None else _lean(node, {})


def _c_available() -> bool:
    try:
        import _ruamel_yaml  # noqa: F401
    except ImportError:  # pragma: no cover - depends on ruamel.yaml.clib being installed
        return False
    return True


_compose = _compose_c if _c_available() else _compose_pure


def _position(node: _Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _syntax_error(file: str, exc: MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
    if exc.context and exc.problem:
        problem = f"{problem} ({' '.join(str(exc.context).split())})"
    if mark is None:
        return ConfigError(f"invalid YAML: {problem}", file=file)
    return ConfigError(
        f"invalid YAML: {problem}", file=file, line=mark.line + 1, column=mark.column + 1
    )


def compose_text(text: str, file: str) -> _Node | None:
    """Compose one YAML document; syntax errors become a located :class:`ConfigError`."""
    try:
        return _compose(text)
    except MarkedYAMLError as exc:
        raise _syntax_error(file, exc) from None
    except ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        before = text[: exc.position] if isinstance(exc.position, int) else ""
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        character = exc.character if isinstance(exc.character, int) else 0
        raise ConfigError(
            f"invalid YAML: character #x{character:04x} is not allowed ({exc.reason})",
            file=file,
            line=line,
            column=column,
        ) from None


class _Constructor:
    """Builds plain objects from a node tree, collecting located errors as it goes."""

    def __init__(self, file: str, expand: Expander | None, track_aliases: bool) -> None:
        self.file = file
        self.expand = expand
        self.errors: list[ConfigError] = []
        self.memo: dict[int, Any] | None = {} if track_aliases else None
        self.aliased = False

    def error(self, node: _Node, message: str) -> None:
        line, column = _position(node)
        self.errors.append(ConfigError(message, file=self.file, line=line, column=column))

    def build(self, node: _Node) -> Any:
        if node.__class__ is _Scalar:
            return self.scalar(node)
        memo = self.memo
        if memo is not None:
            key = id(node)
            if key in memo:
                self.aliased = True
                if memo[key] is _IN_PROGRESS:
                    self.error(node, "an alias refers to a collection that contains it")
                    return None
                return memo[key]
            memo[key] = _IN_PROGRESS
        if node.__class__ is _Mapping:
            result: Any = self.mapping(node)
        else:
            result = self.sequence(node)
        if memo is not None:
            memo[id(node)] = result
        return result

    def scalar(self, node: _Node) -> Any:
        value: str = node.value
        tag = node.tag
        if tag == _PLAIN:
            if value in _WORDS or value[0] in _NUMERIC_START:
                typed = plain_scalar(value)
                if typed.__class__ is not str:
                    return typed
        elif tag != _STR:
            return self.tagged(node)
        if self.expand is not None and "$" in value:
            try:
                return self.expand(value)
            except KeyError as exc:
                self.error(node, f"environment variable {exc.args[0]} is not set")
        # Short texts (operators, field names, common values) repeat thousands of times in
        # a large configuration: one shared copy each keeps memory flat.
        return intern(value) if len(value) <= _INTERN_MAX else value

    def tagged(self, node: _Node) -> Any:
        tag = node.tag
        if tag == _STR:  # an explicit !!str in the pure-Python composer
            return node.value
        value = plain_scalar(node.value) if node.value else None
        expected = {_INT: int, _FLOAT: float, _BOOL: bool, _NULL: type(None)}.get(tag)
        if expected is None:
            self.error(node, f'unsupported tag "{tag}"')
            return node.value
        if expected is float and type(value) is int:
            return float(value)
        if type(value) is not expected:
            self.error(node, f'"{node.value}" is not a valid {tag.removeprefix(_YAML)}')
        return value

    def mapping(self, node: _Node) -> dict[str, Any]:
        if node.tag != _MAP:
            self.check_tag(node, _MAP)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key is None:
                continue
            if key in result:
                self.error(key_node, f'duplicate key "{key}"')
                continue
            result[key] = self.build(value_node)
        return result

    def check_tag(self, node: _Node, expected: str) -> None:
        tag = node.tag
        if tag != expected:
            self.error(node, f'unsupported tag "{tag}"')

    def key(self, node: _Node) -> str | None:
        if node.__class__ is _Scalar:
            tag = node.tag
            if tag == _STR or (tag == _PLAIN and type(plain_scalar(node.value)) is str):
                value: str = node.value
                return intern(value)
        self.error(node, "keys must be text; quote this key")
        return None

    def sequence(self, node: _Node) -> list[Any]:
        if node.tag != _SEQ:
            self.check_tag(node, _SEQ)
        build = self.build
        return [build(item) for item in node.value]


_IN_PROGRESS = object()
_INTERN_MAX = 32


def _expanded_size(node: _Node, memo: dict[int, int]) -> int:
    """How many nodes the tree holds once every alias is expanded in place."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1
    size = 1
    if node.__class__ is _Mapping:
        size += sum(_expanded_size(v, memo) + 1 for _, v in node.value)
    elif node.__class__ is _Sequence:
        size += sum(_expanded_size(v, memo) for v in node.value)
    memo[key] = min(size, _ALIAS_BUDGET + 1)
    return memo[key]


class Loaded:
    """One loaded file: its plain data and the problems found while constructing it."""

    __slots__ = ("data", "errors", "file")

    def __init__(self, file: str, data: Any, errors: list[ConfigError]) -> None:
        self.file = file
        self.data = data
        self.errors = errors


def load_text(text: str, file: str, expand: Expander | None = None) -> Loaded:
    """Parse YAML text; ``file`` names it in errors. Raises only on a syntax error."""
    node = compose_text(text, file)
    if node is None:
        return Loaded(file, None, [])
    builder = _Constructor(file, expand, track_aliases="*" in text)
    try:
        data = builder.build(node)
    except RecursionError:
        raise ConfigError("the document is nested too deeply", file=file) from None
    if builder.aliased and _expanded_size(node, {}) > _ALIAS_BUDGET:
        builder.errors = [ConfigError("aliases expand to too much data", file=file)]
        data = None
    return Loaded(file, data, builder.errors)


def load_file(path: Path, file: str, expand: Expander | None = None) -> Loaded:
    """Read and parse the file at ``path``; ``file`` is the name used in messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read file: {reason}", file=file) from None
    return load_text(text, file, expand)


_cache: tuple[tuple[str, int, int], _Node | None] | None = None
"""The last file :func:`locate` composed, keyed by absolute path, mtime and size."""


def clear_cache() -> None:
    """Forget the node tree :func:`locate` keeps for the last file it read."""
    global _cache
    _cache = None


def _root_node(file: str) -> _Node | None:
    global _cache
    path = Path(file).absolute()
    try:
        stat = path.stat()
    except OSError:
        return None
    identity = (str(path), stat.st_mtime_ns, stat.st_size)
    if _cache is None or _cache[0] != identity:
        try:
            node = _compose(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, MarkedYAMLError):
            node = None
        _cache = (identity, node)
    return _cache[1]


def _child(node: _Node, step: str | int) -> tuple[_Node, _Node] | None:
    """The (position node, value node) for one path step, or None if it does not exist."""
    if node.__class__ is _Mapping and isinstance(step, str):
        for key_node, value_node in node.value:
            if key_node.__class__ is _Scalar and key_node.value == step:
                return key_node, value_node
    elif node.__class__ is _Sequence and isinstance(step, int) and 0 <= step < len(node.value):
        item: _Node = node.value[step]
        return item, item
    return None


def locate(file: str, path: tuple[str | int, ...]) -> tuple[int, int]:
    """1-based (line, column) of ``path`` in ``file``: a key's own position for a key, or
    the deepest node that exists when the path runs past the document."""
    node = _root_node(file)
    if node is None:
        return 1, 1
    at = node
    for step in path:
        found = _child(node, step)
        if found is None:
            break
        at, node = found
    return _position(at)
