"""Provider key -> provider class, from the entry-point group ``reconciler.providers``.

Only this module knows that concrete providers exist, and only by entry-point name. A
provider's module is imported the first time its key is looked up, so a run that uses only
the reference backend never imports the HTTP stack. Tests pass a plain dict instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points

from .errors import ConfigError
from .provider import Provider

__all__ = ["ENTRY_POINT_GROUP", "EntryPointRegistry", "Registry", "load_registry"]

ENTRY_POINT_GROUP = "reconciler.providers"

Registry = Mapping[str, type[Provider]]


class EntryPointRegistry(Mapping[str, type[Provider]]):
    """Installed providers by key; each class is loaded on first use."""

    def __init__(self, found: Mapping[str, EntryPoint]) -> None:
        self._entries = dict(sorted(found.items()))
        self._loaded: dict[str, type[Provider]] = {}

    def __getitem__(self, key: str) -> type[Provider]:
        if key not in self._loaded:
            entry = self._entries[key]
            loaded = entry.load()
            if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
                raise ConfigError(
                    f"entry point {entry.name!r} in group {ENTRY_POINT_GROUP!r} "
                    f"does not name a Provider class"
                )
            self._loaded[key] = loaded
        return self._loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def load_registry() -> EntryPointRegistry:
    """Every installed provider, by key, in key order (classes load lazily)."""
    return EntryPointRegistry(
        {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    )
