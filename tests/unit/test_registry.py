"""The provider registry: entry points by key, loaded only when used."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from providers.reference import ReferenceProvider
from reconciler.errors import ConfigError
from reconciler.registry import ENTRY_POINT_GROUP, EntryPointRegistry, load_registry


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_registry_lists_keys_without_importing_providers() -> None:
    registry = EntryPointRegistry(
        {
            "zeta": _entry("zeta", "no_such_module_anywhere:Provider"),
            "reference": _entry("reference", "providers.reference:ReferenceProvider"),
        }
    )
    assert list(registry) == ["reference", "zeta"]
    assert registry["reference"] is ReferenceProvider
    with pytest.raises(ModuleNotFoundError):
        registry["zeta"]


def test_registry_refuses_an_entry_point_that_is_not_a_provider() -> None:
    registry = EntryPointRegistry({"bad": _entry("bad", "reconciler.errors:ConfigError")})
    with pytest.raises(ConfigError, match="does not name a Provider class"):
        registry["bad"]


def test_installed_registry_has_the_reference_provider() -> None:
    assert "reference" in load_registry()
