"""``reconciler test``: run the segment tests offline. Registered in ``cli.py`` with
``cli.add_command(test_command)``; wiring only (the work is ``expectations.run_tests``)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from .cli_state import State, common_options, write_atomic
from .config import segment_test_files
from .workspace import Selection

__all__ = ["test_command"]

EXIT_OK, EXIT_FAILED = 0, 1


@click.command(name="test")
@common_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option(
    "-o",
    "--out",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report to this file instead of stdout.",
)
def test_command(fmt: str, output: Path | None) -> int:
    """Run the segment tests: expectations on sample subscribers, and each segment's
    stored form against its declared form.

    Reads the files named by tests: in the root file. Never connects to any platform,
    and needs no environment variable (as validate --offline). Exits 0 when every
    expectation passes and every stored form selects the same subscribers as declared,
    1 when one fails or cannot be decided (a native: rule decides a subscriber).
    """
    # Imported here: every other command starts without the evaluator.
    from .expectations import run_tests
    from .render_tests import TestFormat, render_tests

    state = click.get_current_context().ensure_object(State)
    with state.workspace(narrow=False, offline=True) as ws:
        report = run_tests(ws, Selection(tuple(state.targets), tuple(state.lists)))
        declared = bool(segment_test_files(ws.config))
    color = state.color and fmt == "text" and output is None
    text = render_tests(report, cast(TestFormat, fmt), color=color, verbose=state.verbose)
    state.finish_progress()
    if output is None:
        click.echo(text, nl=False, color=color or None)
    else:
        write_atomic(output, text)
        state.progress(f"Wrote {output}")
    if not declared:
        click.echo(
            "Note: no segment tests: name tests files with tests: in the root file "
            "(globs, like include:)",
            err=True,
        )
    return EXIT_OK if report.passed else EXIT_FAILED
