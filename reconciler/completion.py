"""Shell completion of ``--target`` and ``--list`` from the configuration.

click completes commands and options itself (``_RECONCILER_COMPLETE=bash_source
reconciler``, ``zsh_source``, ``fish_source``); the values of ``--target`` and ``--list``
come from here: the names the configuration (``-c`` if given before, else
``reconciler.yaml``) declares. Completing runs while a person waits at a prompt, so the
configuration is read offline (no ``${VAR}`` needs to be set), in a thread given at most
``TIMEOUT`` seconds, and any problem (no file, invalid YAML, a slow disk) completes
nothing: completion never prints an error nor a traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import load_config
from .model import Config

__all__ = ["TIMEOUT", "Names", "config_names"]

TIMEOUT = 2.0
"""Seconds a completion waits for the configuration to load."""

Loader = Callable[[Path], Config]


@dataclass(frozen=True)
class Names:
    """What a configuration declares: its targets, and each list with its target."""

    targets: tuple[str, ...] = ()
    lists: tuple[tuple[str, str], ...] = ()
    """(target, list name) pairs."""

    def list_names(self, targets: tuple[str, ...] = ()) -> list[str]:
        """The list names, of ``targets`` only when given, each once, in declared order."""
        found = (name for target, name in self.lists if not targets or target in targets)
        return list(dict.fromkeys(found))


def _offline(path: Path) -> Config:
    return load_config(path, offline=True)


def config_names(path: Path, *, timeout: float = TIMEOUT, load: Loader = _offline) -> Names:
    """The names ``path`` declares, or none if it cannot be read within ``timeout``."""
    result: list[Names] = []

    def read() -> None:
        try:
            config = load(path)
        except Exception:  # completion must never fail: an unreadable config completes nothing
            return
        lists = tuple((item.target or "", item.name) for item in config.lists)
        result.append(Names(tuple(config.targets), lists))

    worker = threading.Thread(target=read, name="reconciler-completion", daemon=True)
    worker.start()
    worker.join(timeout)
    return result[0] if result else Names()
