"""Progress on stderr: a bar on a terminal for long steps, a line every few seconds in logs.
Time is a fake clock: nothing waits."""

from __future__ import annotations

import io
import re
from typing import ClassVar

import pytest
from click.testing import CliRunner

from providers.reference import ReferenceProvider
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.model import LiveState
from reconciler.progress import LOG_EVERY, SHOW_AFTER, SHOW_ITEMS, ProgressSink, elapsed_text
from reconciler.provider import Scope
from tests.cli.conftest import Project, segments_yaml


class FakeClock:
    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds


def _sink(terminal: bool) -> tuple[ProgressSink, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    return ProgressSink(stream, clock, terminal=terminal), stream, clock


def _steps(sink: ProgressSink, clock: FakeClock, total: int, seconds: float, label: str) -> None:
    """``total`` items evenly over ``seconds`` of fake time."""
    start = clock.time
    for done in range(total + 1):
        clock.time = start + done * seconds / total
        sink.advance(label, done, total)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(42, "42s"), (185, "3m05s"), (3720, "1h02m"), (-1, "0s")]
)
def test_elapsed_text(seconds: float, shown: str) -> None:
    assert elapsed_text(seconds) == shown


# -- a terminal ---------------------------------------------------------------------------


def test_a_short_step_draws_nothing() -> None:
    sink, stream, clock = _sink(terminal=True)
    _steps(sink, clock, 50, SHOW_AFTER - 0.5, "Reading")
    assert stream.getvalue() == ""


def test_a_long_step_draws_a_bar_in_place_and_leaves_it_finished() -> None:
    sink, stream, clock = _sink(terminal=True)
    _steps(sink, clock, 100, 10.0, "Applying")
    out = stream.getvalue()
    frames = out.split("\r\x1b[K")[1:]
    # drawn from the 2-second mark, at most every 0.1 s: about 80 frames, never 100
    assert 10 < len(frames) < 90
    assert re.fullmatch(r"Applying \[#*\.*\] \d+/100 +\d+% \ds", frames[0])
    assert frames[-1].startswith("Applying [") and frames[-1].endswith("] 100/100 100% 10s\n")
    assert out.count("\n") == 1  # every frame overwrote the one before


def test_many_items_show_the_bar_at_once() -> None:
    sink, stream, _ = _sink(terminal=True)
    sink.advance("Reading", 1, SHOW_ITEMS + 1)
    assert stream.getvalue().startswith("\r\x1b[KReading [")
    assert " 1/1001   0% 0s" in stream.getvalue()


def test_a_message_goes_above_the_bar() -> None:
    sink, stream, clock = _sink(terminal=True)
    sink.advance("Applying", 1, 10)
    clock.time += SHOW_AFTER
    sink.advance("Applying", 2, 10)
    sink.message("target 'news': read 3 lists")
    out = stream.getvalue()
    assert " 2/10  20% 2s\r\x1b[Ktarget 'news': read 3 lists\n\r\x1b[KApplying [" in out
    assert out.endswith(" 2/10  20% 2s")


def test_finish_erases_an_unfinished_bar() -> None:
    sink, stream, clock = _sink(terminal=True)
    sink.advance("Reading", 1, 10)
    clock.time += SHOW_AFTER
    sink.advance("Reading", 2, 10)
    sink.finish()
    assert stream.getvalue().endswith("\r\x1b[K")
    sink.finish()  # twice is harmless
    assert stream.getvalue().endswith(" 2/10  20% 2s\r\x1b[K")


def test_steps_running_at_once_are_added_up() -> None:
    sink, stream, clock = _sink(terminal=True)
    sink.advance("Reading news", 0, 10)
    sink.advance("Reading shop", 0, 30)
    clock.time += SHOW_AFTER
    sink.advance("Reading news", 10, 10)  # one step done, the other still running
    assert stream.getvalue().startswith("\r\x1b[KReading news, Reading shop [")
    assert stream.getvalue().endswith(" 10/40  25% 2s")
    sink.advance("Reading shop", 30, 30)
    assert stream.getvalue().endswith(" 40/40 100% 2s\n")


def test_labels_are_shown_escaped() -> None:
    sink, stream, _ = _sink(terminal=True)
    sink.advance("Reading \x1b[2J", 1, SHOW_ITEMS + 1)
    sink.message("list \u202eevil")
    assert "\x1b[2J" not in stream.getvalue() and "\\x1b[2J" in stream.getvalue()
    assert "\u202e" not in stream.getvalue() and "\\u202e" in stream.getvalue()


# -- a log ----------------------------------------------------------------------------------


def test_a_log_gets_a_line_every_few_seconds_not_one_per_change() -> None:
    sink, stream, clock = _sink(terminal=False)
    _steps(sink, clock, 10_000, 100.0, "Applying")
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 100 / LOG_EVERY + 1
    assert len(lines) >= 100 / LOG_EVERY - 1
    assert re.fullmatch(r"Applying: \d+/10000 \(\d+%\), 5s elapsed", lines[0])
    assert lines[-1] == "Applying: 10000/10000 done in 1m40s"
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_a_short_step_in_a_log_prints_nothing() -> None:
    sink, stream, clock = _sink(terminal=False)
    _steps(sink, clock, 1000, LOG_EVERY - 1, "Applying")
    assert stream.getvalue() == ""


def test_a_restarted_label_is_a_new_step() -> None:
    sink, stream, clock = _sink(terminal=False)
    sink.advance("Reading", 5, 10)
    clock.time += LOG_EVERY
    sink.advance("Reading", 6, 10)
    sink.advance("Reading", 1, 10)  # counting again: a new step, its own start
    clock.time += 1
    sink.advance("Reading", 2, 10)
    assert stream.getvalue() == "Reading: 6/10 (60%), 5s elapsed\n"


# -- through the CLI ------------------------------------------------------------------------


class Slow(ReferenceProvider):
    """The reference backend, reporting a 50-item read that takes 10 fake seconds."""

    clock: ClassVar[FakeClock] = FakeClock()

    def fetch(self, scope: Scope) -> LiveState:
        for done in range(51):
            self.context.advance("Reading segments", done, 50)
            Slow.clock.time += 0.2
        return super().fetch(scope)


def _plan(project: Project, *extra: str, terminal: bool) -> str:
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A"))
    state = State(registry={"reference": Slow}, progress_clock=Slow.clock, stderr_tty=terminal)
    argv = ["-c", str(project.root / "reconciler.yaml"), "--no-color", *extra, "plan"]
    result = CliRunner().invoke(cli, argv, obj=state)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("Plan: 2 to create, 0 to update, 0 to delete.\n")
    return result.stderr


def test_plan_on_a_terminal_shows_the_bar_and_finishes_it(project: Project) -> None:
    stderr = _plan(project, terminal=True)
    assert "\r\x1b[KReading segments [" in stderr
    assert "] 50/50 100% 10s\n" in stderr


def test_plan_in_a_log_prints_a_line_every_few_seconds(project: Project) -> None:
    stderr = _plan(project, terminal=False)
    assert "\r" not in stderr
    assert "Reading segments: 25/50 (50%), 5s elapsed\n" in stderr
    assert "Reading segments: 50/50 done in 10s\n" in stderr


def test_quiet_silences_progress(project: Project) -> None:
    assert _plan(project, "-q", terminal=True) == ""


def test_term_dumb_gets_log_lines_not_a_bar(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "dumb")
    stderr = _plan(project, terminal=True)
    assert "\r" not in stderr and "\x1b" not in stderr
    assert "Reading segments: 50/50 done in 10s\n" in stderr


def test_verbose_leaves_the_http_loggers_as_it_found_them(project: Project) -> None:
    """``-v`` quiets httpx's own debug lines (they can carry headers) for its run only: a
    process that goes on (a test run, a library user) keeps its logging as it was."""
    import logging

    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A"))
    httpx_logger = logging.getLogger("httpx")
    before = httpx_logger.level
    httpx_logger.setLevel(logging.DEBUG)
    try:
        result = project.run("plan", "-v")
        assert result.exit_code == 0, result.output
        assert httpx_logger.level == logging.DEBUG
    finally:
        httpx_logger.setLevel(before)
