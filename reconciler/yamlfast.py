"""The fast path of YAML loading: ``yaml_rs`` (a YAML parser written in Rust), checked.

:mod:`reconciler.yamlio` stays the reference: its loader defines what a configuration file
means and produces every error message. This module answers, for one text, either "here is
exactly the data the reference builds, and it reports no error" or "not sure" (``None``),
and then the reference runs. It is not sure when:

- ``yaml_rs`` cannot be imported or is a version these rules were not checked against, the
  environment sets ``RECONCILER_YAML=reference``, or the caller is not the main thread;
- a scan of the text before parsing finds what the two parsers may read apart: no line
  feed at the end; a character other than a line feed or printable YAML (so no tab,
  carriage return, byte order mark, or U+0085/U+2028/U+2029, line breaks to YAML 1.1
  only); a possible anchor, alias or tag (``&``, ``*`` or ``!`` where a node may start); a
  directive or a document marker; a line starting with ``:``; in a text with a flow
  collection, ``?``, ``:`` before a non-space, or an escaped line break (libyaml, the
  reference's parser, refuses ``{url: http://x}`` and a key over two lines, and reads
  ``{?a: b}`` as key ``a``: YAML 1.2 and ``yaml_rs`` do not);
- ``yaml_rs`` reports any error (the reference then reports it, located);
- the result breaks a rule the reference enforces: a key that is not text, an integer
  outside 64 bits, a NUL character, nesting past :data:`~reconciler.yamlguard.MAX_DEPTH`,
  more than :data:`~reconciler.yamlguard.MAX_NODES` nodes, an unset ``${VAR}``, or a
  lone scalar instead of a mapping or sequence;
- the result holds what ``yaml_rs`` reads apart from YAML 1.2 or libyaml: a number whose
  text may be one the core schema reads as text (``1_000``, ``_1``, ``0X1F``, ``0b101``,
  ``-0x1F``, ``.iNf``); the text ``"\\n"`` (an empty block scalar at the end of the file
  to ``yaml_rs``, ``""`` to YAML); and, in a text with a flow collection, a text starting
  with ``|`` or ``>`` (``yaml_rs`` reads ``[|]`` as a plain scalar) or a key holding a
  space or a line break (perhaps folded from a key over two lines).

Hostile input stays bounded before ``yaml_rs`` sees it: the scan refuses a text whose
indentation could nest blocks deeper than ``yaml_rs`` recurses safely (its parser itself
stops flow nesting at 255 levels) or whose structure characters could make more nodes than
:data:`~reconciler.yamlguard.MAX_NODES`. ``yaml_rs`` recurses on the C stack, so it runs
only in the main thread, whose stack is large; other threads use the reference.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import Any

from . import yamlguard

__all__ = ["ENVIRONMENT", "load"]

ENVIRONMENT = "RECONCILER_YAML"
"""``RECONCILER_YAML=reference`` makes every load take the reference path."""

_TESTED = ((0, 1, 6), (0, 2, 0))
"""The ``yaml_rs`` versions these rules were checked against: from the first, before the
second (its scalar resolution is part of what the differential tests pin)."""
_INT_LIMIT = 2**63
_INDENT_LIMIT = 64
"""Columns a line may start with in spaces and ``-``, ``?``, ``:`` indicators: every block
collection starts within them, so blocks nest at most twice as deep (a sequence may share
its mapping's column), and with flow nesting far within ``yaml_rs``'s safe recursion."""


class _Unsure(Exception):
    """The result may differ from the reference's: use the reference."""


# -- the scan before parsing -------------------------------------------------------------
#
# Each pattern starts with a literal character, which Python's regex engine finds fast;
# what must precede it is checked by a lookbehind. Scans run on "\n" + text, so that the
# first line starts after a line feed like every other.

_PRINTABLE_ASCII = bytes([0x0A, *range(0x20, 0x7F)])
_UNSUPPORTED = re.compile("[\x00-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
"""In what is left of a text once printable ASCII and line feeds are removed: a control
character, a tab, a carriage return, NEL, LS, PS, a surrogate, a byte order mark or a
non-character. (Written as what is refused rather than as the complement of what is
taken, which compiles ten times slower: 5 ms at every start.)"""
_MARKERS = (("%", "\n%"), ("---", "\n---"), ("...", "\n..."))
"""A directive or a document marker, each first looked for alone (faster than after a
line feed, and rarely found at all)."""
_NODE_PROPERTIES = {
    c: re.compile(re.escape(c) + r"(?<=[\s\[{,:?-]" + re.escape(c) + ")") for c in "&*!"
}
"""``&``, ``*`` or ``!`` where a node may start (after a space or an indicator)."""
_LINE_START = re.compile(r"\n(?: *:|[ ?:-]{%d})" % _INDENT_LIMIT)  # noqa: UP031 - braces
"""A line that starts with ``:`` (in a flow mapping, its key is on an earlier line: libyaml
refuses it), or whose indentation could hold blocks nested deeper than is safe."""
_FLOW_COLON = re.compile(r":\S")
_QUESTION = re.compile(r"\?")


def _commented(text: str, at: int) -> bool:
    """Whether position ``at`` is certainly in a comment, or in quoted or block-scalar text,
    where nothing the scan looks for matters: a ``#`` follows a line feed or a space before
    it on its line, with no quote in between. (Had that ``#`` been quoted, either its
    closing quote lies in between, or ``at`` is quoted too; a plain scalar ends at `` #``.)
    """
    start = text.rfind("\n", 0, at) + 1
    mark = text.rfind("#", start, at)
    while mark >= 0:
        if text[mark - 1] in " \n":
            between = text[mark:at]
            return "'" not in between and '"' not in between
        mark = text.rfind("#", start, mark)
    return False


def _found(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` matches ``text`` anywhere outside a comment."""
    return any(not _commented(text, match.start()) for match in pattern.finditer(text))


def _odd_character(text: str) -> bool:
    """Whether the text holds a character the fast path does not take: fast for ASCII, where
    bytes.translate finds the few characters not printable."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, _PRINTABLE_ASCII)
    return bool(rest) and _UNSUPPORTED.search(rest.decode("utf-8", "surrogatepass")) is not None


def _scan_refuses(padded: str) -> bool:
    """Whether ``"\\n" + text`` holds anything the fast path does not read exactly, or that
    could make ``yaml_rs`` nest or build past the limits before they are checked."""
    if not padded.endswith("\n"):
        return True  # libyaml and yaml_rs chomp a last block scalar apart without one
    if _odd_character(padded) or any(m in padded and line in padded for m, line in _MARKERS):
        return True
    if any(c in padded and _found(p, padded) for c, p in _NODE_PROPERTIES.items()):
        return True
    if _LINE_START.search(padded) is not None:
        return True
    if ("[" in padded or "{" in padded) and (
        _found(_QUESTION, padded) or _found(_FLOW_COLON, padded) or "\\\n" in padded
    ):
        return True
    if 3 * len(padded) >= yamlguard.MAX_NODES:
        # Every node but the root needs one of these characters, and none makes more than
        # three (a one-pair mapping in a flow sequence), so this bounds the nodes.
        count = padded.count
        marks = count(",") + count("[") + count("{") + count(":") + count("?") + count("-")
        return 1 + 3 * marks > yamlguard.MAX_NODES
    return False


# Numbers: yaml_rs also reads "_" between digits, 0X/0O/0b/0B prefixes, a sign before a
# prefix and .inf/.nan in any case; the core schema reads all of these as text.
_UNDERSCORE_REVERSED = re.compile(r"_(?:[0-9a-fA-FxXoObB._+-]*[0-9.])?[-+]?[\s\[{,:]")
"""On the reversed text: a ``_`` whose plain scalar may be a number to yaml_rs (the
characters before it, after a separator, are those of its numbers)."""
_PREFIX = re.compile(r"0(?:[XObB](?<=[\s\[{,:+-]0[XObB])|[xo](?<=[-+]0[xo]))")
_INF_NAN = re.compile(r"\.(?!inf|Inf|INF|nan|NaN|NAN)(?i:inf|nan)")


def _number_apart(padded: str) -> bool:
    """Whether a plain scalar of ``"\\n" + text`` may be a number to yaml_rs and text to the
    core schema. Only asked when the data holds a number."""
    if "_" in padded:
        reversed_text = padded[::-1]
        last = len(padded) - 1
        for match in _UNDERSCORE_REVERSED.finditer(reversed_text):
            if not _commented(padded, last - match.start()):
                return True
    return _found(_PREFIX, padded) or _found(_INF_NAN, padded)


# -- the check after parsing ---------------------------------------------------------------


class _Built:
    """What a walk over parsed data found besides the data rebuilt."""

    __slots__ = ("nodes", "numbers")

    def __init__(self) -> None:
        self.nodes = 1
        self.numbers = False


def _rebuild(data: Any, padded: str, expand: Callable[[str], str] | None) -> tuple[Any, _Built]:
    """``data`` checked against the reference's rules and made what the reference builds
    (``${VAR}`` expanded), in place; raises :class:`_Unsure`.

    Texts are checked one by one only where ``padded`` (``"\\n" + text``) has a character
    that can make a text differ: ``$`` to expand, ``\\`` for an escape (of a NUL, or of a
    ``$``), ``|`` or ``>`` for a block scalar. Otherwise they are left as they are.

    The walk changes values where they are (a dict's value, a list's item) and builds no
    new container: ``yaml_rs`` made them for this call alone. Unlike the reference, it
    does not intern short texts (equal either way; only their identity differs): the
    texts a large configuration repeats are those of its rules, which loading shares
    (``sharing.py``). On the 10,000-segment benchmark rebuilding the data took twice as
    long as this walk, and interning alone as long again.
    """
    built = _Built()
    max_depth = yamlguard.MAX_DEPTH
    nul = "\\" in padded
    expanding = expand is not None and ("$" in padded or nul)
    block = "|" in padded or ">" in padded
    flowing = "[" in padded or "{" in padded
    indicators = block and flowing
    checked = expanding or nul or block

    def text(value: str) -> str:
        # yaml_rs reads a block scalar with no content at the end of the file as "\n".
        if (block and value == "\n") or (nul and "\x00" in value):
            raise _Unsure
        if indicators and value.startswith(("|", ">")):
            raise _Unsure  # yaml_rs reads [|] as a plain scalar: libyaml refuses it
        if expanding and "$" in value:
            try:
                return expand(value)  # type: ignore[misc]
            except KeyError:
                raise _Unsure from None  # the reference reports it, located
        return value

    def check_key(key: Any) -> None:
        if key.__class__ is not str:
            raise _Unsure  # the reference reports it
        if flowing and (" " in key or "\n" in key):
            # A key over several lines, folded: libyaml refuses one in a flow mapping.
            raise _Unsure
        if (block and key == "\n") or (nul and "\x00" in key):
            raise _Unsure
        if indicators and key.startswith(("|", ">")):
            raise _Unsure

    def scalar(value: Any) -> None:
        kind = value.__class__
        if kind is int or kind is float:
            if kind is int and not -_INT_LIMIT <= value < _INT_LIMIT:
                raise _Unsure  # the reference reports it
            built.numbers = True
        elif kind is not bool and value is not None:
            raise _Unsure  # a set, a tuple, bytes: nothing the reference builds

    def mapping(data: dict[Any, Any], depth: int) -> None:
        depth += 1
        if depth > max_depth:
            raise _Unsure
        built.nodes += 2 * len(data)
        for key, value in data.items():
            if checked:
                check_key(key)
            elif key.__class__ is not str or (flowing and (" " in key or "\n" in key)):
                raise _Unsure  # the reference reports it, or reads it apart (check_key)
            kind = value.__class__
            if kind is str:
                if checked:
                    data[key] = text(value)  # a value replaced: the dict keeps its size
            elif kind is dict:
                mapping(value, depth)
            elif kind is list:
                sequence(value, depth)
            else:
                scalar(value)

    def sequence(data: list[Any], depth: int) -> None:
        depth += 1
        if depth > max_depth:
            raise _Unsure
        built.nodes += len(data)
        for index, value in enumerate(data):
            kind = value.__class__
            if kind is str:
                if checked:
                    data[index] = text(value)
            elif kind is dict:
                mapping(value, depth)
            elif kind is list:
                sequence(value, depth)
            else:
                scalar(value)

    if data.__class__ is dict:
        mapping(data, 0)
    else:
        sequence(data, 0)
    return data, built


# -- yaml_rs ---------------------------------------------------------------------------------


_LAZY_COMMIT = "MIMALLOC_ARENA_EAGER_COMMIT"
"""yaml_rs allocates with mimalloc (on Linux), which by default commits its arena as soon
as it loads: about 10 MiB of resident memory more than it uses here. The option is read
from the environment when the library loads, so it is set for the import alone."""


def _import_parser() -> Callable[[str], Any] | None:
    """``yaml_rs.loads`` with the options the rules here assume, or None."""
    added = _LAZY_COMMIT not in os.environ
    if added:
        os.environ[_LAZY_COMMIT] = "0"
    try:
        import yaml_rs
    except ImportError:
        return None
    finally:
        if added:
            os.environ.pop(_LAZY_COMMIT, None)
    try:
        version = tuple(int(part) for part in yaml_rs.__version__.split(".")[:3])
    except ValueError:
        return None
    if not _TESTED[0] <= version < _TESTED[1]:
        return None
    loads = yaml_rs.loads

    def parse(text: str) -> Any:
        return loads(text, parse_datetime=False)

    return parse


_parse: Callable[[str], Any] | None = None
_imported = False


def _parser() -> Callable[[str], Any] | None:
    global _parse, _imported
    if not _imported:
        _parse = _import_parser()
        _imported = True
    return _parse


def load(text: str, expand: Callable[[str], str] | None = None) -> tuple[Any] | None:
    """``(data,)`` exactly as :func:`reconciler.yamlio.load_text` builds it from ``text``
    (``expand`` as there), when certainly no error is reported; otherwise None."""
    if os.environ.get(ENVIRONMENT) == "reference":
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    parse = _parser()
    if parse is None:
        return None
    padded = "\n" + text
    if _scan_refuses(padded):
        return None
    try:
        data = parse(text)
    except Exception:  # YAMLDecodeError: the reference reports it, located
        return None
    except BaseException as exc:  # a Rust panic surfaces as PanicException (BaseException)
        if type(exc).__name__ == "PanicException":
            return None
        raise
    if data is None:
        return (None,)  # nothing but comments and blank lines
    if data.__class__ is not dict and data.__class__ is not list:
        return None  # a lone scalar: never a configuration, and yaml_rs reads some apart
    try:
        result, built = _rebuild(data, padded, expand)
    except _Unsure:
        return None
    if built.nodes > yamlguard.MAX_NODES or (built.numbers and _number_apart(padded)):
        return None
    return (result,)
