"""Provider key -> provider class, loaded from the entry-point group ``reconciler.providers``.

Only this module knows that concrete providers exist, and only by entry-point name.
Tests pass their own mapping instead of loading entry points.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from .errors import ConfigError
from .provider import Provider

__all__ = ["ENTRY_POINT_GROUP", "Registry", "load_registry"]

ENTRY_POINT_GROUP = "reconciler.providers"

Registry = Mapping[str, type[Provider]]


def load_registry() -> dict[str, type[Provider]]:
    """Every installed provider class, by key, in key order."""
    found: dict[str, type[Provider]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
            raise ConfigError(
                f"entry point {entry.name!r} in group {ENTRY_POINT_GROUP!r} "
                f"does not name a Provider class"
            )
        found[entry.name] = loaded
    return dict(sorted(found.items()))
