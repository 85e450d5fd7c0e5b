"""What every command shares: the merged common options, the workspace they open, and
whole-file writes. Kept apart from ``cli.py`` so that the commands stay wiring only."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from .completion import config_names
from .config import load_config
from .errors import ConfigError
from .progress import ProgressSink
from .provider import Clock, Deadline, ProviderContext, SystemClock, format_duration
from .registry import Registry, load_registry
from .validation import validate_config
from .workspace import Selection, Workspace, opened

__all__ = [
    "DEFAULT_TIMEOUT",
    "Duration",
    "State",
    "common_options",
    "write_all",
    "write_atomic",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT = 15 * 60.0
"""Seconds a run may take (``--timeout``) unless told otherwise: 15 minutes."""
MAX_ANSWER = 1024
"""Characters of a prompt's answer read."""
_DURATION = re.compile(
    r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?"
)


class Duration(click.ParamType[float]):
    """A positive duration: seconds (``90``) or with units (``90s``, ``15m``, ``1h30m``)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            text = str(value).strip().lower()
            found = _DURATION.fullmatch(text) if text else None
            if found is None:
                self.fail(f"{value!r} is not a duration: give seconds (90) or 90s, 15m, 1h30m")
            parts = {unit: float(found[unit] or 0) for unit in "hms"}
            seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} is not a positive duration")
        return seconds


@dataclass
class State:
    """Options common to every command, merged from before and after the command name."""

    config: Path | None = None
    targets: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    verbose: bool = False
    quiet: bool = False
    no_color: bool = False
    registry: Registry | None = None
    """Providers by key; ``None`` loads the installed entry points (tests pass a dict)."""
    clock: Clock | None = None
    """The clock providers wait on; ``None`` is the real one (tests pass a fake)."""
    timeout: float | None = None
    """``--timeout`` in seconds; ``None`` is ``DEFAULT_TIMEOUT``."""
    progress_clock: Clock | None = None
    """The clock progress is timed on (bar delays, log intervals); ``None`` is the real one.
    Apart from ``clock`` so that drawing progress never moves a test's deadline."""
    stdin_tty: bool | None = None
    stdout_tty: bool | None = None
    stderr_tty: bool | None = None
    """Whether each stream is a terminal; ``None`` asks the stream (tests say)."""
    _sink: ProgressSink | None = field(default=None, init=False, repr=False)

    @property
    def config_path(self) -> Path:
        return self.config or Path("reconciler.yaml")

    @property
    def color(self) -> bool:
        """Colour on stdout: off for ``--no-color``, ``NO_COLOR`` set to a non-empty value
        (no-color.org), ``TERM=dumb``, or stdout not a terminal."""
        if self.no_color or os.environ.get("NO_COLOR") or _dumb():
            return False
        return _is_tty(self.stdout_tty, sys.stdout)

    @property
    def interactive(self) -> bool:
        """Whether a person can answer a prompt: stdin is a terminal (whatever stdout is,
        so ``apply | tee log`` still asks)."""
        return _is_tty(self.stdin_tty, sys.stdin)

    def _progress_sink(self) -> ProgressSink:
        if self._sink is None:
            terminal = _is_tty(self.stderr_tty, sys.stderr) and not _dumb()
            clock = self.progress_clock or SystemClock()
            self._sink = ProgressSink(sys.stderr, clock, terminal=terminal)
        return self._sink

    def progress(self, message: str) -> None:
        """A progress message on stderr (none with ``-q``)."""
        if not self.quiet:
            self._progress_sink().message(message)

    def advance(self, label: str, done: int, total: int) -> None:
        """Counting progress on stderr: a bar on a terminal, a line every few seconds in
        logs, nothing with ``-q``."""
        if not self.quiet:
            self._progress_sink().advance(label, done, total)

    def finish_progress(self) -> None:
        """Erase an unfinished progress bar before other output."""
        if self._sink is not None:
            self._sink.finish()

    def confirm(self, question: str) -> bool:
        """Ask on stderr, read one line from stdin: ``y`` or ``yes`` is yes, anything else
        (end of input included) is no. Ctrl-C propagates (exit 130)."""
        self.finish_progress()
        click.echo(f"{question} [y/N]: ", nl=False, err=True)
        answer = sys.stdin.readline(MAX_ANSWER)
        if not answer.endswith("\n"):
            click.echo(err=True)  # end of input: end the prompt's line
        return answer.strip().lower() in ("y", "yes")

    def _clock(self) -> Clock:
        if self.clock is None:
            self.clock = SystemClock()
        return self.clock

    def context(self) -> ProviderContext:
        """What the providers get; the run's deadline starts now."""
        base_dir = self.config_path.resolve().parent
        clock = self._clock()
        deadline = Deadline(clock, self.timeout or DEFAULT_TIMEOUT)
        return ProviderContext(
            base_dir=base_dir,
            progress=self.progress,
            advance=self.advance,
            clock=clock,
            deadline=deadline,
        )

    def providers(self) -> Registry:
        if self.registry is None:
            self.registry = load_registry()
        return self.registry

    @contextmanager
    def workspace(
        self, narrow: bool = True, offline: bool = False, tests: bool = False
    ) -> Iterator[Workspace]:
        """The configuration loaded and validated, its providers built on first use.

        ``offline`` (``validate --offline``): a ``${VAR}`` that is not set is no error, and
        settings standing for one are not checked. ``tests`` (``validate``): the segment
        tests files are checked too."""
        with self._verbose_logs(), self._workspace(narrow, offline, tests) as workspace:
            yield workspace

    @contextmanager
    def _verbose_logs(self) -> Iterator[None]:
        """With ``-v``, log lines on stderr, printed like progress messages (above a bar,
        control characters escaped) while the workspace is open."""
        if not self.verbose:
            yield
            return
        handler = _ProgressHandler(self)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        # Third-party debug lines can carry headers; only our own loggers go verbose.
        noisy = [logging.getLogger(name) for name in ("httpx", "httpcore")]
        levels = [logger.level for logger in noisy]
        for logger in noisy:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            for logger, before in zip(noisy, levels, strict=True):
                logger.setLevel(before)  # as found: the process may go on (tests, library use)

    @contextmanager
    def _workspace(self, narrow: bool, offline: bool, tests: bool) -> Iterator[Workspace]:
        try:
            found = self.config_path.exists()
        except OSError as exc:  # a name too long, say: the OS refuses to even look
            message = f"cannot read file: {exc.strerror or exc}"
            raise ConfigError(message, file=str(self.config_path)) from None
        if not found:
            raise ConfigError(
                f"{self.config_path}: configuration file not found "
                "(use -c/--config to name another file)"
            )
        selection = Selection(tuple(self.targets), tuple(self.lists)) if narrow else Selection()
        if offline or tests:
            config = load_config(self.config_path, offline=offline)
            validate_config(config, self.providers(), tests=tests)
            workspace = Workspace(config, self.providers(), self.context(), selection)
            try:
                yield workspace
            finally:
                workspace.close()
            return
        with opened(self.config_path, self.providers(), self.context(), selection) as ws:
            yield ws


class _ProgressHandler(logging.Handler):
    """Log records as progress messages of one run (``-v``), whatever ``-q`` says."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.state._progress_sink().message(self.format(record))
        except Exception:
            self.handleError(record)


class _ConfigPath(click.Path):
    """``-c/--config``: a file path; one holding a NUL character is a usage error (the OS
    cannot take it, and ``os.stat`` would raise instead of answering)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail("the path contains a NUL character", param, ctx)
        return super().convert(value, param, ctx)


def _merge(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    state = ctx.ensure_object(State)
    if param.name in ("targets", "lists"):
        getattr(state, param.name).extend(value)
    elif value:
        setattr(state, param.name or "", value)
    return value


def _complete_targets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``--target`` values: the targets the configuration declares."""
    names = config_names(_completing(ctx).config_path).targets
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _complete_lists(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``--list`` values: the lists the configuration declares (of the ``--target``s
    given before, if any)."""
    state = _completing(ctx)
    names = config_names(state.config_path).list_names(tuple(state.targets))
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _completing(ctx: click.Context) -> State:
    return ctx.find_object(State) or State()


def _common(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, expose_value=False, callback=_merge, **kwargs)


COMMON_OPTIONS = [
    _common(
        "-c",
        "--config",
        type=_ConfigPath(path_type=Path, dir_okay=False),
        help="Root YAML file (default: reconciler.yaml).",
    ),
    _common(
        "--target",
        "targets",
        multiple=True,
        metavar="NAME",
        shell_complete=_complete_targets,
        help="Only lists of this target (repeatable).",
    ),
    _common(
        "--list",
        "lists",
        multiple=True,
        metavar="NAME",
        shell_complete=_complete_lists,
        help="Only this list (repeatable).",
    ),
    _common("-v", "--verbose", is_flag=True, help="More detail on stderr."),
    _common(
        "-q",
        "--quiet",
        is_flag=True,
        help=(
            "No progress on stderr: no messages, no progress bar (a bar appears on a "
            "terminal for steps over 2 seconds; in logs, one line every 5 seconds)."
        ),
    ),
    _common(
        "--no-color",
        is_flag=True,
        help=(
            "No colour. Colour is also off when NO_COLOR is set to a non-empty value, "
            "TERM is dumb, or stdout is not a terminal."
        ),
    ),
    _common(
        "--timeout",
        type=Duration(),
        metavar="DURATION",
        help=(
            "Stop the run after this long (90s, 15m, 1h; default "
            f"{format_duration(DEFAULT_TIMEOUT)}): changes not started by then are "
            "reported, and the exit code is 1."
        ),
    ),
]


def common_options(func: F) -> F:
    """The options every command accepts, before or after its name."""
    for option in reversed(COMMON_OPTIONS):
        func = option(func)
    return func


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing: a temporary file renamed into place."""
    write_all([(path, text)])


def write_all(files: Sequence[tuple[Path, str]]) -> None:
    """Write several whole files, or none of them: each goes to a temporary file next to
    it first, and only once all are written are they renamed into place (a full disk or
    an unwritable directory leaves every file as it was)."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in files:
            staged.append((_staged(path, text), path))
    except BaseException:
        _discard(temp for temp, _ in staged)
        raise
    for index, (temp, path) in enumerate(staged):
        try:
            os.replace(temp, path)
        except OSError as exc:
            _discard(temp for temp, _ in staged[index:])
            written = ", ".join(str(p) for _, p in staged[:index])
            note = f" (already written: {written})" if written else ""
            raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}{note}") from None


def _staged(path: Path, text: str) -> str:
    """``text`` in a new temporary file in ``path``'s directory (made if missing)."""
    try:
        directory = path.resolve().parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _discard([temp])
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        _discard([temp])
        raise
    return temp


def _discard(temps: Iterable[str]) -> None:
    for temp in temps:
        Path(temp).unlink(missing_ok=True)


def _is_tty(override: bool | None, stream: Any) -> bool:
    """``override`` if given, else whether ``stream`` is a terminal (False if it cannot
    say: closed, or replaced by an object without ``isatty``)."""
    if override is not None:
        return override
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _dumb() -> bool:
    """``TERM=dumb``: a terminal that cannot take colour nor cursor movement."""
    return os.environ.get("TERM") == "dumb"
