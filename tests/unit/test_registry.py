"""The provider registry: entry points by key, loaded only when used; a broken one is
reported with its reason and breaks nothing else."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest
from pydantic import BaseModel

from providers.reference import ReferenceProvider
from reconciler.provider import Capabilities, Provider
from reconciler.registry import (
    ENTRY_POINT_GROUP,
    EntryPointRegistry,
    ProviderLoadError,
    load_registry,
    partition,
)


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


class Unfinished(Provider):
    """A provider class that forgot to implement fetch and apply."""

    key: ClassVar[str] = "unfinished"
    capabilities: ClassVar[Capabilities] = Capabilities(shape="tree", operators={})
    settings_model: ClassVar[type[BaseModel]] = BaseModel


class NoCapabilities(ReferenceProvider):
    capabilities = None  # type: ignore[assignment]


def _registry(**values: str) -> EntryPointRegistry:
    return EntryPointRegistry({key: _entry(key, value) for key, value in values.items()})


def test_registry_lists_keys_without_importing_providers() -> None:
    registry = _registry(
        zeta="no_such_module_anywhere:Provider", reference="providers.reference:ReferenceProvider"
    )
    assert list(registry) == ["reference", "zeta"]
    assert registry["reference"] is ReferenceProvider


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "no_such_module_anywhere:Provider",
            "ModuleNotFoundError: No module named 'no_such_module_anywhere'",
        ),
        (
            "tests.cli.raising_provider:Provider",
            "RuntimeError: acme-provider 2.0 needs a newer reconciler",
        ),
        ("providers.reference:NoSuchName", "AttributeError: "),
        ("reconciler.errors:ConfigError", "which is not a Provider class"),
        (f"{__name__}:Unfinished", "its class Unfinished does not implement apply, fetch"),
        (f"{__name__}:NoCapabilities", "its class NoCapabilities declares no Capabilities"),
    ],
)
def test_a_broken_entry_point_raises_a_config_error_with_one_line_reason(
    value: str, reason: str
) -> None:
    registry = _registry(acme=value)
    with pytest.raises(ProviderLoadError) as caught:
        registry["acme"]
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason
    assert str(caught.value).startswith('provider "acme" is installed but cannot be loaded: ')
    assert f'entry point "{value}"' in str(caught.value)
    with pytest.raises(ProviderLoadError):  # the same answer, without importing again
        registry["acme"]


def test_partition_keeps_the_working_providers_and_the_reasons_of_the_broken() -> None:
    registry = _registry(
        acme="tests.cli.raising_provider:Provider",
        reference="providers.reference:ReferenceProvider",
    )
    loaded, broken = partition(registry)
    assert loaded == {"reference": ReferenceProvider}
    assert list(broken) == ["acme"]
    assert broken["acme"].startswith("RuntimeError: acme-provider 2.0")


def test_a_long_reason_is_cut_to_one_short_line() -> None:
    registry = _registry(acme="no_such_module_" + "x" * 400 + ":Provider")
    loaded, broken = partition(registry)
    assert not loaded
    assert len(broken["acme"]) == 200 and broken["acme"].endswith("...")


def test_installed_registry_has_the_reference_provider() -> None:
    assert "reference" in load_registry()
