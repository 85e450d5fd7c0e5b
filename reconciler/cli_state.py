"""What every command shares: the merged common options, the workspace they open, and
whole-file writes. Kept apart from ``cli.py`` so that the commands stay wiring only."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import ConfigError
from .provider import Clock, Deadline, ProviderContext, SystemClock, format_duration
from .registry import Registry, load_registry
from .workspace import Selection, Workspace, opened

__all__ = ["DEFAULT_TIMEOUT", "Duration", "State", "common_options", "write_atomic"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT = 15 * 60.0
"""Seconds a run may take (``--timeout``) unless told otherwise: 15 minutes."""
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

    @property
    def config_path(self) -> Path:
        return self.config or Path("reconciler.yaml")

    @property
    def color(self) -> bool:
        if self.no_color or os.environ.get("NO_COLOR"):
            return False
        return sys.stdout.isatty()

    def progress(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def context(self) -> ProviderContext:
        """What the providers get; the run's deadline starts now."""
        base_dir = self.config_path.resolve().parent
        clock = self.clock or SystemClock()
        deadline = Deadline(clock, self.timeout or DEFAULT_TIMEOUT)
        return ProviderContext(
            base_dir=base_dir, progress=self.progress, clock=clock, deadline=deadline
        )

    def providers(self) -> Registry:
        if self.registry is None:
            self.registry = load_registry()
        return self.registry

    @contextmanager
    def workspace(self, narrow: bool = True) -> Iterator[Workspace]:
        if self.verbose:
            logging.basicConfig(
                level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
            )
            # Third-party debug lines can carry headers; only our own loggers go verbose.
            for noisy in ("httpx", "httpcore"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
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
        with opened(self.config_path, self.providers(), self.context(), selection) as ws:
            yield ws


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
        help="Only lists of this target (repeatable).",
    ),
    _common("--list", "lists", multiple=True, metavar="NAME", help="Only this list (repeatable)."),
    _common("-v", "--verbose", is_flag=True, help="More detail on stderr."),
    _common("-q", "--quiet", is_flag=True, help="No progress messages on stderr."),
    _common(
        "--no-color",
        is_flag=True,
        help="No colour (also when NO_COLOR is set or output is not a TTY).",
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
    try:
        directory = path.resolve().parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
