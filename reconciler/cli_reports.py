"""Report files of ``plan`` and ``drift``: ``--text``, ``--json``, ``--markdown`` and
``--junit FILE`` (repeatable), all rendered from one result and written whole, or none."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .cli_state import write_all

__all__ = ["report_files", "report_targets", "write_reports"]

F = TypeVar("F", bound=Callable[..., Any])

_REPORT_HELP = {
    "text": "Also write the same result as plain text (no colour) to FILE (repeatable).",
    "json": "Also write the same result as the JSON document to FILE (repeatable).",
    "markdown": "Also write the same result as Markdown to FILE (repeatable).",
    "junit": "Also write the same result as JUnit XML to FILE (repeatable).",
}


def report_files(*formats: str) -> Callable[[F], F]:
    """``--text FILE``, ``--json FILE``, ...: more reports of the same run, each in its
    format; they reach the command as ``<format>_files``."""

    def decorate(func: F) -> F:
        for fmt in reversed(formats):
            func = click.option(
                f"--{fmt}",
                f"{fmt}_files",
                multiple=True,
                metavar="FILE",
                type=click.Path(path_type=Path, dir_okay=False),
                help=_REPORT_HELP[fmt],
            )(func)
        return func

    return decorate


def report_targets(
    requested: Sequence[tuple[str, Path]], files: Mapping[str, tuple[Path, ...]]
) -> list[tuple[str, Path]]:
    """Every (format, file) to write, each file named once (checked before any read)."""
    wanted = list(requested)
    for option, paths in files.items():
        wanted += [(option.removesuffix("_files"), path) for path in paths]
    seen: dict[str, str] = {}
    for fmt, path in wanted:
        key = os.path.abspath(path)
        if key in seen:
            raise click.UsageError(f"{path} is named by two outputs ({seen[key]} and {fmt})")
        seen[key] = fmt
    return wanted


def write_reports(
    outputs: Sequence[tuple[Path, str]],
    note: Mapping[Path, str],
    progress: Callable[[str], None],
) -> None:
    """Write every report, or none (one failed write leaves every file as it was)."""
    write_all([(path, text if text.endswith("\n") else text + "\n") for path, text in outputs])
    for path, _ in outputs:
        progress(note.get(path, f"Wrote {path}"))
