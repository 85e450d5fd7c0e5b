"""Helpers shared by the reference backend's test modules (``test_reference*.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from providers.reference import ReferenceProvider, ReferenceSettings
from reconciler.model import LiveSegment, Segment
from reconciler.plan import Action, Change
from reconciler.provider import ProviderContext, Scope

TARGET = "local"


def make_provider(
    base_dir: Path, path: str = "state.db", progress: Callable[[str], None] | None = None
) -> ReferenceProvider:
    context = (
        ProviderContext(base_dir=base_dir)
        if progress is None
        else ProviderContext(base_dir=base_dir, progress=progress)
    )
    return ReferenceProvider(TARGET, ReferenceSettings(path=path), context)


@contextmanager
def opened(base_dir: Path, path: str = "state.db") -> Iterator[ReferenceProvider]:
    provider = make_provider(base_dir, path)
    try:
        yield provider
    finally:
        provider.close()


def change(action: Action, list_name: str = "News", **values: Any) -> Change:
    segment = values.get("after") or values.get("before")
    name = segment.name if segment is not None else None
    return Change(action=action, target=TARGET, list=list_name, segment=name, **values)


def create_list(provider: ReferenceProvider, name: str = "News") -> None:
    provider.apply(change(Action.CREATE_LIST, name))


def create_segment(
    provider: ReferenceProvider, segment: Segment, list_name: str = "News"
) -> LiveSegment:
    provider.apply(change(Action.CREATE_SEGMENT, list_name, after=segment))
    return live_segment(provider, segment.name, list_name)


def live_segment(provider: ReferenceProvider, name: str, list_name: str = "News") -> LiveSegment:
    state = provider.fetch(Scope(lists=frozenset({list_name})))
    (live_list,) = state.lists
    (found,) = [segment for segment in live_list.segments if segment.name == name]
    return found


def segment_names(provider: ReferenceProvider, list_name: str = "News") -> list[str]:
    (live_list,) = provider.fetch(Scope(lists=frozenset({list_name}))).lists
    return [segment.name for segment in live_list.segments]
