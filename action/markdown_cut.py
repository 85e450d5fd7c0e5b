"""Cut a Markdown report to fit one of GitHub's size limits, saying so in a closing note.

A pull-request or issue comment holds at most 65,536 characters and a step's job summary at
most 1 MiB (1,048,576 bytes of UTF-8). Past a limit GitHub refuses the whole text, so the
report is cut at a line boundary, an open code fence is closed, and a note says how much is
shown and where the rest is. Standard library only: the action runs this before the tool is
installed and on any Python 3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COMMENT_LIMIT = 65_536
"""Characters in one pull-request or issue comment."""
SUMMARY_LIMIT = 1_048_576
"""Bytes in one step's job summary (1 MiB)."""

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Limit:
    """A size to cut to, the unit it counts in, and the limit the note names."""

    size: int
    unit: str
    label: str

    def measure(self, text: str) -> int:
        return len(text.encode("utf-8")) if self.unit == "bytes" else len(text)


def comment_limit(size: int = COMMENT_LIMIT, nominal: int = 0) -> Limit:
    """Cut to ``size`` characters; the note names ``nominal`` (default ``size``)."""
    return Limit(size, "characters", f"a GitHub comment ({nominal or size:,} characters)")


def summary_limit(size: int = SUMMARY_LIMIT) -> Limit:
    """Cut to ``size`` bytes; the note names the summary's 1 MiB."""
    return Limit(size, "bytes", f"a GitHub job summary ({SUMMARY_LIMIT:,} bytes)")


class _Fences:
    """Which code fence (if any) is open after the lines seen so far (CommonMark rules)."""

    def __init__(self) -> None:
        self.open = ""

    def after(self, line: str) -> str:
        """The fence open after ``line``, without changing state."""
        found = _FENCE.match(line)
        if not found:
            return self.open
        marker = found.group(1)
        if not self.open:
            # A backtick fence's info string may not hold a backtick.
            info = line[found.end() :]
            return "" if marker[0] == "`" and "`" in info else marker
        closes = marker[0] == self.open[0] and len(marker) >= len(self.open)
        return "" if closes and not line[found.end() :].strip() else self.open


def _note(limit: Limit, shown: int, total: int, where: str) -> str:
    rest = f" The whole report: {where}." if where else ""
    return (
        f"\n> [!WARNING]\n> Cut to fit {limit.label}: "
        f"the first {shown:,} of {total:,} lines are shown.{rest}\n"
    )


def _lines(text: str) -> list[str]:
    """The lines of ``text`` split at newlines only, each ending with one."""
    pieces = text.split("\n")
    if not pieces[-1]:
        pieces.pop()
    return [piece + "\n" for piece in pieces]


def _head(text: str, room: int, measure: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` measuring at most ``room`` (for a line too long to keep)."""
    low, high = 0, min(len(text), max(room, 0))
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def cut(text: str, limit: Limit, where: str = "", total_lines: int = 0) -> str:
    """``text`` if it fits ``limit``, else its first lines, closed fences and a note.

    ``total_lines`` counts the lines of the whole report when ``text`` is only its head.
    """
    if limit.measure(text) <= limit.size:
        return text
    lines = _lines(text)
    total = max(total_lines, len(lines))
    room = limit.size - limit.measure(_note(limit, total, total, where))
    fences = _Fences()
    kept: list[str] = []
    used = 0
    for line in lines:
        fence = fences.after(line)
        closing = f"{fence}\n" if fence else ""
        size = limit.measure(line)
        if used + size + limit.measure(closing) > room:
            break
        kept.append(line)
        used += size
        fences.open = fence
    if not kept and lines:  # a first line longer than the whole limit: keep its head
        kept.append(_head(lines[0], room - 1, limit.measure) + "\n")
    closing = f"{fences.open}\n" if fences.open else ""
    result = "".join(kept) + closing + _note(limit, len(kept), total, where)
    return result if limit.measure(result) <= limit.size else _note(limit, 0, total, where)


def read_bounded(path: Path, limit: Limit) -> tuple[str, int]:
    """The head of the file that ``cut`` can need, and the file's number of lines.

    Each character takes at most four bytes of UTF-8, so ``4 * size + 4`` bytes hold more
    than ``size`` characters whenever the file is longer than that: the cut never reaches
    the end of what was read, where a character may have been split. The rest of the file
    is only counted, a chunk at a time.
    """
    with path.open("rb") as handle:
        head = handle.read(4 * limit.size + 4)
        newlines = head.count(b"\n")
        last = head[-1:]
        while chunk := handle.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (1 if last and last != b"\n" else 0)
    return head.decode("utf-8", errors="replace"), lines
