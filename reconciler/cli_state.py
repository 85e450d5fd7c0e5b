"""What every command shares: the merged common options, the workspace they open, and
whole-file writes. Kept apart from ``cli.py`` so that the commands stay wiring only."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import ConfigError
from .provider import Clock, ProviderContext
from .registry import Registry, load_registry
from .workspace import Selection, Workspace, opened

__all__ = ["State", "common_options", "write_atomic"]

F = TypeVar("F", bound=Callable[..., Any])


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
        base_dir = self.config_path.resolve().parent
        if self.clock is None:
            return ProviderContext(base_dir=base_dir, progress=self.progress)
        return ProviderContext(base_dir=base_dir, progress=self.progress, clock=self.clock)

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
        if not self.config_path.exists():
            raise ConfigError(
                f"{self.config_path}: configuration file not found "
                "(use -c/--config to name another file)"
            )
        selection = Selection(tuple(self.targets), tuple(self.lists)) if narrow else Selection()
        with opened(self.config_path, self.providers(), self.context(), selection) as ws:
            yield ws


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
        type=click.Path(path_type=Path, dir_okay=False),
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
