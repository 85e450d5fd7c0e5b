"""The limits a configuration file is held to while it is read, and the reading itself.

A configuration file comes from a repository anyone may send a pull request to, so reading
it must end in a result or a located error, within bounded time and memory, whatever it
holds. libyaml gives no such guarantee on its own: its composer recurses once per nesting
level (a few tens of thousands of ``[`` overflow the C stack), its scanner spends time
proportional to the flow nesting depth on every token (20,000 levels take minutes), and a
16 MiB file of ``a,a,a,...`` composes into millions of nodes (gigabytes). So:

- :func:`read_text` reads only a regular file (checked with ``stat`` before it is opened,
  and again on the open descriptor), of at most :data:`MAX_FILE_BYTES`, as UTF-8;
- while libyaml composes, every node it creates is counted, and the collections still
  open are tracked (see :mod:`reconciler.yamlio`): composing stops at the first node past
  :data:`MAX_DEPTH` levels or past :data:`MAX_NODES` nodes, with its line and column. The
  rest of the file is never parsed, so the limits hold before the cost is paid. (A purely
  textual pre-scan cannot do this soundly: brackets inside quoted text fool any count
  that does not parse the quotes exactly as libyaml does.)
- where the C extension is missing, :func:`walk_events` measures the same two limits on
  the parser's event stream (no recursion, nothing kept) before the pure-Python composer,
  which recurses, runs.

Aliases may make a document bigger or deeper than its text; :mod:`reconciler.yamlio`
checks the expanded document against its own budget.

The fast path (:mod:`reconciler.yamlfast`, which parses with ``yaml_rs``) is held to the same
limits before it parses: a text whose structure characters could make more than
:data:`MAX_NODES` nodes, or whose indentation could nest blocks deeper than ``yaml_rs``
recurses safely, goes to the reference path above instead (``yaml_rs`` stops flow nesting
itself). Its result is then checked against :data:`MAX_DEPTH` and :data:`MAX_NODES`
exactly, and anything past them goes to the reference path too, which reports it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "depth_error",
    "nodes_error",
    "read_text",
    "walk_events",
]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A configuration file (root or included) is at most 16 MiB."""
MAX_DEPTH = 100
"""Collections nest at most 100 levels (a rule group is two: its mapping and its list)."""
MAX_NODES = 500_000
"""A file holds at most 500,000 YAML nodes (scalars, mappings and sequences; an alias adds
none, aliases have their own budget)."""


# -- reading ---------------------------------------------------------------------------------


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"cannot read file: it is {kind}, not a regular file"


def read_text(
    path: Path, file: str, limit: int = MAX_FILE_BYTES, what: str = "a configuration file"
) -> str:
    """The text of the regular file at ``path`` (``file`` names it in errors).

    Refuses anything but a regular file before opening it (a FIFO would block, a device
    never ends), a file over ``limit`` bytes, and bytes that are not UTF-8 (located
    at the line and column of the first bad byte). Line breaks are normalised as Python's
    text mode does (``\\r\\n`` and ``\\r`` become ``\\n``).
    """
    try:
        problem = _not_regular(os.stat(path).st_mode)
        if problem is not None:
            raise ConfigError(problem, file=file)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", file=file) from None
    except ValueError:  # an embedded NUL character
        raise ConfigError(
            "cannot read file: the path contains a NUL character", file=file
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)  # the file opened may not be the one checked: check it again
        problem = _not_regular(info.st_mode)
        if problem is not None:
            raise ConfigError(problem, file=file)
        data = handle.read(limit + 1) if info.st_size <= limit else b""
    if info.st_size > limit or len(data) > limit:
        raise ConfigError(_too_large(limit, what), file=file)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
        line, column = _line_column(before, len(before))
        message = f"not UTF-8 text: byte {exc.start + 1} of the file cannot be decoded"
        raise ConfigError(message, file=file, line=line, column=column) from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _too_large(limit: int, what: str) -> str:
    return f"the file is larger than {limit // (1024 * 1024)} MiB, the limit for {what}"


def _line_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


# -- limits while composing ------------------------------------------------------------


def depth_error(file: str, line: int, column: int) -> ConfigError:
    return ConfigError(
        f"nested more than {MAX_DEPTH} levels deep (the limit for a configuration file)",
        file=file,
        line=line,
        column=column,
    )


def nodes_error(file: str, line: int, column: int) -> ConfigError:
    return ConfigError(
        f"the file holds more than {MAX_NODES:,} YAML nodes (the limit for one file); "
        "split it into several files with include:",
        file=file,
        line=line,
        column=column,
    )


def walk_events(events: Iterable[Any], file: str) -> None:
    """Hold a stream of ruamel.yaml events to :data:`MAX_DEPTH` and :data:`MAX_NODES`,
    stopping at the first event past either (no recursion, no node kept)."""
    from ruamel.yaml.events import (
        DocumentEndEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )

    depth = nodes = 0
    for event in events:
        kind = event.__class__
        if kind is ScalarEvent:
            nodes += 1
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            nodes += 1
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise depth_error(file, mark.line + 1, mark.column + 1)
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            depth -= 1
        elif kind is DocumentEndEvent:
            return  # a second document is the composer's error to report
        if nodes > MAX_NODES:
            mark = event.start_mark
            raise nodes_error(file, mark.line + 1, mark.column + 1)
