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
Integers are 64-bit (a longer one is an error, not silently text), and no text holds the
NUL character. Aliases are supported, but a document whose aliases expand past a budget of
nodes or of characters is refused (an "alias bomb"). Before any of this, the file's size,
depth and node count are held to the limits of :mod:`reconciler.yamlguard`. No node tree
outlives the load: positions for error messages come from :func:`locate`, which re-reads
one file on demand.

This loader is the reference. :func:`load_text` first asks :mod:`reconciler.yamlfast`
(``yaml_rs``, three to five times faster on large files), which answers only when its result
is certainly the one built here, with no error; otherwise, and for every error message,
this loader runs. ``RECONCILER_YAML=reference`` in the environment makes every load take
this path.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from sys import intern
from typing import TYPE_CHECKING, Any

from . import yamlfast, yamlguard
from .errors import ConfigError

if TYPE_CHECKING:
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.nodes import Node

# ruamel.yaml is imported on first use: a configuration the fast path loads (yamlfast)
# never needs it, and a run that does not load it starts sooner and smaller.

__all__ = [
    "Expander",
    "Loaded",
    "clear_cache",
    "load_file",
    "load_reference",
    "load_text",
    "locate",
]

Expander = Callable[[str], str]
"""Rewrites one string scalar (``${VAR}`` expansion); raises ``KeyError(name)`` if unknown."""

_YAML = "tag:yaml.org,2002:"
_PLAIN = "!reconciler-plain"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _YAML + "map", _YAML + "seq"
_ALIAS_NODES = 100_000
"""Nodes a document may hold once its aliases are expanded in place."""
_ALIAS_CHARS = yamlguard.MAX_FILE_BYTES
"""Characters of text it may hold then: no more than a file may hold without aliases."""
_INT_LIMIT = 2**63
_ALIAS = re.compile(r"\*(?<![^\s\[{,:?-]\*)[^\s,\[\]{}'\"]")
"""Where an alias may start (libyaml: ``*`` then an anchor name, after a separator);
it may also match inside text, which only costs the alias check below."""

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


class _OutOfRange:
    """An integer outside 64 bits, or past Python's digit limit: an error, never text."""

    __slots__ = ()


OUT_OF_RANGE = _OutOfRange()
_RANGE_MESSAGE = "integer out of range (integers are 64-bit: -2^63 to 2^63-1); quote it for text"


def _integer(digits: str, base: int) -> int | _OutOfRange:
    try:
        value = int(digits, base)
    except ValueError:  # longer than Python converts (4,300 digits)
        return OUT_OF_RANGE
    return value if -_INT_LIMIT <= value < _INT_LIMIT else OUT_OF_RANGE


_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")


def plain_scalar(text: str) -> Any:
    """The YAML 1.2 core-schema value of an unquoted scalar (:data:`OUT_OF_RANGE` for an
    integer that does not fit in 64 bits)."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMERIC_START:
        return text
    if _INT_RE.match(text):
        return _integer(text, 10)
    if _FLOAT_RE.match(text):
        return float(text)
    if _OCT_RE.match(text):
        return _integer(text[2:], 8)
    if _HEX_RE.match(text):
        return _integer(text[2:], 16)
    return text


class _Budget:
    """Nodes created so far and collections still open, in the file being composed."""

    __slots__ = ("depth", "nodes")

    def __init__(self) -> None:
        self.depth = 0
        self.nodes = 0


class _OverBudget(Exception):
    """Raised from a node's constructor, inside libyaml's composer, to stop it."""

    def __init__(self, mark: Any, nodes: bool) -> None:
        self.mark = mark
        self.nodes = nodes


_budget = _Budget()
"""Reset for each file; only touched under ``_compose_lock``."""


class _Node:
    """A lean stand-in for ruamel.yaml's nodes: plain string tags, no per-node Tag object.

    libyaml's composer creates every node through these classes, so they also count: a
    node past :data:`~reconciler.yamlguard.MAX_NODES`, or a collection opened past
    :data:`~reconciler.yamlguard.MAX_DEPTH` levels (a collection is created open, without
    its ``end_mark``, and closed when the composer sets it), stops the composer there.
    """

    __slots__ = ("_end", "start_mark", "style", "tag", "value")

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
        self._end = end_mark
        self.style = style
        budget = _budget
        budget.nodes += 1
        if end_mark is None:
            budget.depth += 1
            if budget.depth > yamlguard.MAX_DEPTH:
                raise _OverBudget(start_mark, nodes=False)
        if budget.nodes > yamlguard.MAX_NODES:
            raise _OverBudget(start_mark, nodes=True)

    @property
    def end_mark(self) -> Any:
        return self._end

    @end_mark.setter
    def end_mark(self, mark: Any) -> None:
        if self._end is None:
            _budget.depth -= 1
        self._end = mark


class _Scalar(_Node):
    __slots__ = ()


class _Sequence(_Node):
    __slots__ = ()


class _Mapping(_Node):
    __slots__ = ()


_LEAN: dict[type, type[_Node]] = {}
"""ruamel.yaml's node classes -> the lean ones (filled by :func:`_ruamel_nodes`)."""


def _ruamel_nodes() -> dict[type, type[_Node]]:
    if not _LEAN:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        _LEAN.update({ScalarNode: _Scalar, SequenceNode: _Sequence, MappingNode: _Mapping})
    return _LEAN


def _marker_tag(kind: Any, implicit: Any) -> str:
    """Tag every untagged plain scalar with a marker instead of guessing its type."""
    if kind is not _Scalar and kind is not _Sequence and kind is not _Mapping:
        kind = _ruamel_nodes()[kind]  # the pure-Python composer's own classes
    if kind is _Scalar:
        return _PLAIN if implicit[0] else _STR
    return _SEQ if kind is _Sequence else _MAP


_compose_lock = threading.Lock()


def _compose_c(text: str) -> _Node | None:
    """Compose with libyaml, building lean nodes.

    The C extension looks its node classes up in its module namespace at run time; they
    are swapped for the lean ones while this one call runs (about half the compose time).
    """
    import _ruamel_yaml as clib  # type: ignore[import-not-found]
    from ruamel.yaml.resolver import BaseResolver

    class _Composer(clib.CParser, BaseResolver):  # type: ignore[misc]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            return _marker_tag(kind, implicit)

    global _budget
    with _compose_lock:
        _budget = _Budget()
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
    kind = _ruamel_nodes()[type(node)]
    lean = kind(str(node.tag), None, node.start_mark, node.end_mark)
    memo[id(node)] = lean
    if kind is _Mapping:
        lean.value = [(_lean(k, memo), _lean(v, memo)) for k, v in node.value]
    elif kind is _Sequence:
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

    global _budget
    yaml = YAML(typ="base", pure=True)
    yaml.Resolver = _PureResolver
    node: Node | None = yaml.compose(text)
    with _compose_lock:
        _budget = _Budget()
        return None if node is None else _lean(node, {})


def _c_available() -> bool:
    try:
        import _ruamel_yaml  # noqa: F401
    except ImportError:  # pragma: no cover - depends on ruamel.yaml.clib being installed
        return False
    return True


def _compose_first(text: str) -> _Node | None:
    """The composer until the first use picks one (importing ruamel.yaml only then)."""
    return _chosen()(text)


_compose: Callable[[str], _Node | None] = _compose_first


def _chosen() -> Callable[[str], _Node | None]:
    global _compose
    if _compose is _compose_first:
        _compose = _compose_c if _c_available() else _compose_pure
    return _compose


def _check_pure(text: str, file: str) -> None:
    """Without the C extension, hold the text to the limits on its event stream first: the
    pure-Python composer recurses, and is not stopped by the node budget."""
    from ruamel.yaml import YAML

    yamlguard.walk_events(YAML(typ="base", pure=True).parse(text), file)


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
    """Compose one YAML document within the limits of :mod:`reconciler.yamlguard`; syntax
    errors and limits become a located :class:`ConfigError`."""
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    compose = _chosen()
    try:
        if compose is _compose_pure:
            _check_pure(text, file)
        return compose(text)
    except _OverBudget as over:
        line, column = over.mark.line + 1, over.mark.column + 1
        if over.nodes:
            raise yamlguard.nodes_error(file, line, column) from None
        raise yamlguard.depth_error(file, line, column) from None
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

    def __init__(
        self, file: str, expand: Expander | None, track_aliases: bool, escapes: bool = True
    ) -> None:
        self.file = file
        self.expand = expand
        self.errors: list[ConfigError] = []
        self.memo: dict[int, Any] | None = {} if track_aliases else None
        self.escapes = escapes
        """Whether the text has a backslash: only an escape can put a NUL into a scalar."""

    def error(self, node: _Node, message: str) -> None:
        line, column = _position(node)
        self.errors.append(ConfigError(message, file=self.file, line=line, column=column))

    def fatal(self, node: _Node, message: str) -> ConfigError:
        """An error that makes the file unusable (like a syntax error): nothing built from
        it is validated, so it is reported alone rather than with knock-on errors."""
        line, column = _position(node)
        return ConfigError(message, file=self.file, line=line, column=column)

    def build(self, node: _Node) -> Any:
        if node.__class__ is _Scalar:
            return self.scalar(node)
        memo = self.memo
        if memo is not None:
            key = id(node)
            if key in memo:
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
                    if typed is OUT_OF_RANGE:
                        raise self.fatal(node, _RANGE_MESSAGE)
                    return typed
        elif tag != _STR:
            return self.tagged(node)
        elif self.escapes and "\x00" in value:
            raise self.fatal(node, _NUL_MESSAGE)
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
            self.error(node, f'unsupported tag "{_shown(tag)}"')
            return node.value
        if self.escapes and "\x00" in node.value:
            raise self.fatal(node, _NUL_MESSAGE)
        if value is OUT_OF_RANGE:
            raise self.fatal(node, _RANGE_MESSAGE)
        if expected is float and type(value) is int:
            return float(value)
        if type(value) is not expected:
            self.error(node, f'"{_shown(node.value)}" is not a valid {tag.removeprefix(_YAML)}')
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
            self.error(node, f'unsupported tag "{_shown(tag)}"')

    def key(self, node: _Node) -> str | None:
        if node.__class__ is _Scalar:
            tag = node.tag
            if tag == _STR or (tag == _PLAIN and type(plain_scalar(node.value)) is str):
                value: str = node.value
                if self.escapes and "\x00" in value:
                    raise self.fatal(node, _NUL_MESSAGE)
                return intern(value)
        self.error(node, "keys must be text; quote this key")
        return None

    def sequence(self, node: _Node) -> list[Any]:
        if node.tag != _SEQ:
            self.check_tag(node, _SEQ)
        build = self.build
        return [build(item) for item in node.value]


def _shown(text: str, limit: int = 80) -> str:
    """``text`` for a message: control characters escaped, cut to ``limit`` characters."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    if cut.isprintable():
        return cut
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in cut)


_IN_PROGRESS = object()
_INTERN_MAX = 32
_NUL_MESSAGE = "text must not contain the NUL character (\\0)"


_Size = tuple[int, int, int]


def _expanded(node: _Node, memo: dict[int, _Size], shared: list[_Node]) -> _Size:
    """(nodes, characters of text, depth) of the tree once every alias is expanded in
    place; sizes saturate just past their budgets. Nodes met again (the anchored ones that
    aliases repeat) are added to ``shared``."""
    key = id(node)
    if key in memo:
        shared.append(node)
        return memo[key]
    memo[key] = (1, 0, 1)  # an alias cycle was already reported by the constructor
    nodes, chars, depth = 1, 0, 0
    if node.__class__ is _Scalar:
        chars = len(node.value)
    else:
        pairs = node.value if node.__class__ is _Mapping else [(None, v) for v in node.value]
        for key_node, value_node in pairs:
            if key_node is not None:
                nodes += 1
                chars += len(key_node.value) if key_node.__class__ is _Scalar else 0
            sub_nodes, sub_chars, sub_depth = _expanded(value_node, memo, shared)
            nodes += sub_nodes
            chars += sub_chars
            depth = max(depth, sub_depth)
    result = (min(nodes, _ALIAS_NODES + 1), min(chars, _ALIAS_CHARS + 1), depth + 1)
    memo[key] = result
    return result


class Loaded:
    """One loaded file: its plain data and the problems found while constructing it."""

    __slots__ = ("data", "errors", "file")

    def __init__(self, file: str, data: Any, errors: list[ConfigError]) -> None:
        self.file = file
        self.data = data
        self.errors = errors


def load_text(text: str, file: str, expand: Expander | None = None) -> Loaded:
    """Parse YAML text; ``file`` names it in errors. Raises only on a syntax error."""
    fast = yamlfast.load(text, expand)
    if fast is not None:
        return Loaded(file, fast[0], [])
    return load_reference(text, file, expand)


def load_reference(text: str, file: str, expand: Expander | None = None) -> Loaded:
    """:func:`load_text` on the reference path alone (what the fast path must equal)."""
    node = compose_text(text, file)
    if node is None:
        return Loaded(file, None, [])
    aliases = _ALIAS.search(text) is not None
    builder = _Constructor(file, expand, track_aliases=aliases, escapes="\\" in text)
    try:
        data = builder.build(node)
    except RecursionError:  # not expected within the depth limit; never a traceback
        raise yamlguard.depth_error(file, 1, 1) from None
    if aliases:
        problem = _alias_problem(node, file)
        if problem is not None:
            builder.errors = [problem]
            data = None
    return Loaded(file, data, builder.errors)


def _alias_problem(node: _Node, file: str) -> ConfigError | None:
    """Why the aliases of a document expand past a budget (at the anchored node repeated
    most), or None."""
    memo: dict[int, _Size] = {}
    shared: list[_Node] = []
    nodes, chars, depth = _expanded(node, memo, shared)
    if nodes > _ALIAS_NODES:
        problem = "aliases expand to too much data"
    elif chars > _ALIAS_CHARS:
        limit = _ALIAS_CHARS // (1024 * 1024)
        problem = f"aliases expand to too much text (more than {limit} MiB)"
    elif depth > yamlguard.MAX_DEPTH:
        problem = f"aliases expand to a document nested more than {yamlguard.MAX_DEPTH} levels"
    else:
        return None
    if not shared:
        return ConfigError(problem, file=file)
    biggest = max(shared, key=lambda n: memo[id(n)])
    line, column = _position(biggest)
    return ConfigError(problem, file=file, line=line, column=column)


def load_file(path: Path, file: str, expand: Expander | None = None) -> Loaded:
    """Read and parse the file at ``path``; ``file`` is the name used in messages.

    Only a regular file within :data:`reconciler.yamlguard.MAX_FILE_BYTES` is read."""
    return load_text(yamlguard.read_text(path, file), file, expand)


_cache: tuple[tuple[str, int, int], _Node | None] | None = None
"""The last file :func:`locate` composed, keyed by absolute path, mtime and size."""


def clear_cache() -> None:
    """Forget the node tree :func:`locate` keeps for the last file it read."""
    global _cache
    _cache = None


def _root_node(file: str) -> _Node | None:
    global _cache
    path = os.path.abspath(file)  # called once per error: plain strings, not pathlib
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    identity = (path, stat.st_mtime_ns, stat.st_size)
    if _cache is None or _cache[0] != identity:
        try:
            node = compose_text(yamlguard.read_text(Path(path), file), file)
        except ConfigError:
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
