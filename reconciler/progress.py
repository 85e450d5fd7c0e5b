"""Progress on stderr: a bar redrawn in place on a terminal, a line every few seconds in logs.

The CLI hands one :class:`ProgressSink` to the library as ``ProviderContext.progress``
(messages, printed as they come) and ``ProviderContext.advance`` (counting progress of a
long step: ``("Applying", 120, 10000)``). A step is one label counting towards one total;
it ends when ``done`` reaches ``total`` (or when the label starts counting again). Steps
running at once (two targets read concurrently) are shown together, as one line that adds
them up, until the last of them ends.

- On a terminal, the bar (label, done/total, percent, elapsed time) appears once the steps
  have run for ``SHOW_AFTER`` seconds, or at once when they count more than ``SHOW_ITEMS``
  items; it is redrawn in place at most every ``REDRAW_EVERY`` seconds, a message printed
  meanwhile goes above it, and when the steps finish the bar stays as one finished line.
  Short steps draw nothing. ``finish`` erases an unfinished bar before other output.
- In logs (stderr not a terminal, or ``TERM=dumb``), at most one line every ``LOG_EVERY``
  seconds (``Applying: 1200/10000 (12%), 30s elapsed``), and a closing line only when one
  was printed before: 10,000 changes make a few lines, not 10,000.

Time comes from an injected clock, so tests drive it without waiting. Every text shown is
made printable (a list name cannot move the cursor). Thread-safe: providers may report
from worker threads.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from typing import IO

from .provider import Clock
from .render import printable

__all__ = ["LOG_EVERY", "REDRAW_EVERY", "SHOW_AFTER", "SHOW_ITEMS", "ProgressSink"]

SHOW_AFTER = 2.0
"""Seconds the steps run before a terminal shows their bar."""
SHOW_ITEMS = 1000
"""Steps counting more items than this show their bar at once."""
REDRAW_EVERY = 0.1
"""Least seconds between two redraws of the bar."""
LOG_EVERY = 5.0
"""Least seconds between two progress lines in a log."""
MAX_LABEL = 40
"""Characters of the label(s) a line shows."""
_CLEAR = "\r\x1b[K"
_MIN_BAR = 10


def elapsed_text(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: a duration as a progress line shows it."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class _Step:
    total: int
    done: int = 0


@dataclass
class _Run:
    """The steps running together, from the first one's start until all of them are done
    (a finished step stays counted until then)."""

    started: float
    steps: dict[str, _Step]
    shown_at: float | None = None
    """When the bar was last drawn or a line printed (``None``: nothing shown yet)."""

    def counts(self) -> tuple[str, int, int]:
        label = ", ".join(self.steps)
        if len(label) > MAX_LABEL:
            label = label[: MAX_LABEL - 3] + "..."
        done = sum(step.done for step in self.steps.values())
        total = sum(step.total for step in self.steps.values())
        return printable(label), done, total


class ProgressSink:
    """Where the CLI's progress goes: ``stream`` (stderr), with a bar if ``terminal``."""

    def __init__(self, stream: IO[str], clock: Clock, *, terminal: bool) -> None:
        self._stream = stream
        self._clock = clock
        self._terminal = terminal
        self._run: _Run | None = None
        self._bar = False
        """Whether a bar is on screen now (its line not yet ended)."""
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        """Print one message line (above the bar, which is redrawn under it)."""
        with self._lock:
            bar = self._bar
            self._erase()
            self._write(printable(text, keep="\n") + "\n")
            if bar and self._run is not None:
                self._draw(self._run, self._clock.now())

    def advance(self, label: str, done: int, total: int) -> None:
        """Counting progress: ``done`` of ``total`` items of step ``label``."""
        total = max(0, total)
        done = min(max(0, done), total)
        now = self._clock.now()
        with self._lock:
            run = self._run
            if run is None:
                run = self._run = _Run(now, {})
            step = run.steps.get(label)
            if step is None or step.total != total or done < step.done:
                step = run.steps[label] = _Step(total)
            step.done = done
            if all(step.done >= step.total for step in run.steps.values()):
                self._close(run, now)
            elif self._terminal:
                self._tick_bar(run, now)
            else:
                self._tick_log(run, now)

    def finish(self) -> None:
        """End what is on screen before other output: an unfinished bar is erased."""
        with self._lock:
            self._erase()
            self._run = None

    # -- terminal -------------------------------------------------------------------------

    def _tick_bar(self, run: _Run, now: float) -> None:
        if run.shown_at is None:
            _, _, total = run.counts()
            if now - run.started >= SHOW_AFTER or total > SHOW_ITEMS:
                self._draw(run, now)
        elif now - run.shown_at >= REDRAW_EVERY:
            self._draw(run, now)

    def _draw(self, run: _Run, now: float) -> None:
        self._write(_CLEAR + _bar_line(*run.counts(), now - run.started))
        run.shown_at = now
        self._bar = True

    def _erase(self) -> None:
        if self._bar:
            self._write(_CLEAR)
            self._bar = False

    # -- logs -----------------------------------------------------------------------------

    def _tick_log(self, run: _Run, now: float) -> None:
        last = run.shown_at if run.shown_at is not None else run.started
        if now - last >= LOG_EVERY:
            label, done, total = run.counts()
            percent = 100 * done // total if total else 100
            elapsed = elapsed_text(now - run.started)
            self._write(f"{label}: {done}/{total} ({percent}%), {elapsed} elapsed\n")
            run.shown_at = now

    # -- both -----------------------------------------------------------------------------

    def _close(self, run: _Run, now: float) -> None:
        """Every step of ``run`` finished: what was shown gets its finished line."""
        self._run = None
        if run.shown_at is None:
            return
        label, done, total = run.counts()
        elapsed = now - run.started
        if self._terminal:
            self._write(_CLEAR + _bar_line(label, done, total, elapsed) + "\n")
            self._bar = False
        else:
            self._write(f"{label}: {done}/{total} done in {elapsed_text(elapsed)}\n")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed: progress is never worth failing the run for


def _bar_line(label: str, done: int, total: int, elapsed: float) -> str:
    """``Applying [#####.....] 500/1000  50% 12s``, as wide as the terminal allows."""
    percent = 100 * done // total if total else 100
    tail = f" {done}/{total} {percent:3d}% {elapsed_text(elapsed)}"
    width = shutil.get_terminal_size((80, 24)).columns - 1
    room = width - len(label) - len(tail) - 3
    if room < _MIN_BAR:
        return f"{label}{tail}"[:width]
    filled = room * done // total if total else room
    return f"{label} [{'#' * filled}{'.' * (room - filled)}]{tail}"
