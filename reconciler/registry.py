"""Provider key -> provider class, from the entry-point group ``reconciler.providers``.

Only this module knows that concrete providers exist, and only by entry-point name. A
provider's module is imported the first time its key is looked up, so a run that uses only
the reference backend never imports the HTTP stack. Tests pass a plain dict instead.

A third-party entry point that cannot be loaded (its module fails to import, or it names
something that is not a complete ``Provider`` class) breaks only what uses it: looking its
key up raises :class:`ProviderLoadError` (a located error of ``validate`` when a target
names it), ``reconciler providers`` lists it as broken with the reason, and every other
provider and command works as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points

from pydantic import BaseModel

from .errors import ConfigError
from .provider import Capabilities, Provider
from .render import printable

__all__ = [
    "ENTRY_POINT_GROUP",
    "EntryPointRegistry",
    "ProviderLoadError",
    "Registry",
    "load_registry",
    "partition",
]

ENTRY_POINT_GROUP = "reconciler.providers"
MAX_REASON = 200
"""Characters of a load failure's reason shown (one line)."""

Registry = Mapping[str, type[Provider]]


class ProviderLoadError(ConfigError):
    """An installed provider whose entry point cannot be loaded; ``reason`` says why."""

    def __init__(self, key: str, reason: str, where: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(
            f'provider "{key}" is installed but cannot be loaded: {reason} ({where}; '
            "reinstall the package that provides it, or uninstall it)"
        )


def _one_line(text: str) -> str:
    line = printable(" ".join(text.split()))
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."


def _not_a_provider(loaded: object) -> str | None:
    """Why ``loaded`` cannot serve as a provider class, or None."""
    if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
        return f"it names {_one_line(repr(loaded))}, which is not a Provider class"
    if inspect.isabstract(loaded):
        missing = ", ".join(sorted(getattr(loaded, "__abstractmethods__", ())))
        return f"its class {loaded.__name__} does not implement {missing}"
    if not isinstance(getattr(loaded, "capabilities", None), Capabilities):
        return f"its class {loaded.__name__} declares no Capabilities"
    model = getattr(loaded, "settings_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"its class {loaded.__name__} has no settings_model (a pydantic model)"
    return None


class EntryPointRegistry(Mapping[str, type[Provider]]):
    """Installed providers by key; each class is loaded (and checked) on first use."""

    def __init__(self, found: Mapping[str, EntryPoint]) -> None:
        self._entries = dict(sorted(found.items()))
        self._loaded: dict[str, type[Provider]] = {}
        self._broken: dict[str, ProviderLoadError] = {}

    def __getitem__(self, key: str) -> type[Provider]:
        if key in self._loaded:
            return self._loaded[key]
        if key in self._broken:
            raise self._broken[key]
        entry = self._entries[key]
        where = f'entry point "{entry.value}" in group "{ENTRY_POINT_GROUP}"'
        try:
            loaded: object = entry.load()
        except Exception as exc:  # any import-time failure of third-party code
            reason = _one_line(f"{type(exc).__name__}: {exc}")
        else:
            problem = _not_a_provider(loaded)
            if problem is None:
                assert isinstance(loaded, type) and issubclass(loaded, Provider)
                self._loaded[key] = loaded
                return loaded
            reason = problem
        self._broken[key] = ProviderLoadError(key, reason, where)
        raise self._broken[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def partition(registry: Registry) -> tuple[dict[str, type[Provider]], dict[str, str]]:
    """Every provider of ``registry`` loaded: the classes by key, and the broken ones'
    reasons by key (``reconciler providers`` lists both)."""
    loaded: dict[str, type[Provider]] = {}
    broken: dict[str, str] = {}
    for key in registry:
        try:
            loaded[key] = registry[key]
        except ProviderLoadError as exc:
            broken[key] = exc.reason
    return loaded, broken


def load_registry() -> EntryPointRegistry:
    """Every installed provider, by key, in key order (classes load lazily)."""
    return EntryPointRegistry(
        {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    )
