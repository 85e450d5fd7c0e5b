"""Exact member counts: the ``subscribers:`` file stands for the members of the store.

The reference store keeps segments, not subscribers. A target's optional ``subscribers:``
setting names a file of the kind ``plan --sample`` reads (a tests file's ``now`` and
``subscribers:``, CSV or JSON Lines), loaded by the core's loader with its limits; its
subscribers are the members of the store's lists. They are checked against the lists and
fields the store holds (not the declared ones: they stand for what the store holds), and
every problem is reported at its file and line, under one line naming the target.

``fetch`` then gives every segment the number of its list's subscribers its stored rules
select, by the core's one evaluator (``Sample.members``). A segment that a ``native:`` rule
decides for someone gets no count: only a platform could tell. Behaviour rules count back
from the tests file's ``now``, or from today (UTC) for CSV and JSON Lines.

Cost: one evaluation per segment and subscriber of its list, about 1 µs each (10,000
segments each over 1,000 subscribers: some 10 s; over 10 subscribers each: 0.5 s), plus
reading the file (1,000 rows: 0.04 s; 50,000: 3 s), once per run while the file, the
store's lists and the day stay the same.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from datetime import date
from pathlib import Path

from reconciler.errors import ConfigError, ConfigErrors
from reconciler.model import (
    Config,
    FieldDef,
    LiveList,
    LiveSegment,
    LiveState,
    MailingList,
    TargetConfig,
)
from reconciler.provider import ProviderContext, paused_gc
from reconciler.sample import Sample, field_types
from reconciler.sample_files import load_sample_file

__all__ = ["MemberCounts"]


class MemberCounts:
    """The ``subscribers`` file of one target, and the counts it gives its segments."""

    def __init__(self, target: str, setting: str, path: Path) -> None:
        self.target = target
        self.setting = setting
        """The file as written in the configuration."""
        self.path = path
        """Where it resolves (relative to the root configuration file's directory)."""
        self._loaded: tuple[Hashable, Sample] | None = None

    def check(self) -> None:
        """A ``ConfigError`` naming the setting if the file does not exist (also before the
        store does, so a mistyped name shows in the first plan)."""
        if not os.path.exists(self.path):
            raise ConfigError(
                f'target "{self.target}", setting subscribers: the file "{self.setting}" '
                f"does not exist (looked for it at {self.path})"
            )

    def counted(
        self, state: LiveState, holds: Sequence[LiveList], today: date, context: ProviderContext
    ) -> LiveState:
        """``state`` with every segment's ``member_count``. ``holds``: every list the store
        holds (the file is checked against them all, whatever the scope read)."""
        lists = {live.name: _declared(self.target, live) for live in holds}
        sample = self._sample(lists, today)
        total = sum(len(live.segments) for live in state.lists)
        counted: list[LiveList] = []
        done = 0
        with paused_gc():
            for live in state.lists:
                counted.append(_list_counted(live, sample, lists.get(live.name)))
                done += len(live.segments)
                if total:
                    context.advance("Counting members", done, total)
        people = sum(len(found) for found in sample.subscribers.values())
        context.progress(
            f"{self.target}: counted the members of {total} segments among {people} "
            f"subscribers in {self.setting}"
        )
        return state.model_copy(update={"lists": tuple(counted)})

    def _sample(self, lists: dict[str, MailingList], today: date) -> Sample:
        try:
            info = os.stat(self.path)
            identity: Hashable = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        except OSError:
            identity = None  # the loader says why it cannot read it
        shape = tuple((item.name, item.fields) for item in lists.values())
        key = (identity, shape, today)
        if self._loaded is not None and identity is not None and self._loaded[0] == key:
            return self._loaded[1]
        config = Config.model_construct(
            version=1,
            targets={self.target: TargetConfig.model_construct(provider="reference")},
            lists=tuple(lists.values()),
        )
        try:
            sample = load_sample_file(config, self.path, today)
        except ConfigError as exc:
            found = exc.errors if isinstance(exc, ConfigErrors) else [exc]
            header = ConfigError(
                f'target "{self.target}", setting subscribers: problems in "{self.setting}" '
                "(its subscribers stand for members of the lists and fields the store "
                "holds now):"
            )
            raise ConfigErrors([header, *found]) from None
        self._loaded = (key, sample)
        return sample


def _declared(target: str, live: LiveList) -> MailingList:
    """A stored list as the loader checks subscribers against: its name and fields."""
    fields = tuple(
        FieldDef.model_construct(name=item.name, type=item.type, options=item.options)
        for item in live.fields
    )
    return MailingList.model_construct(name=live.name, target=target, fields=fields)


def _list_counted(live: LiveList, sample: Sample, declared: MailingList | None) -> LiveList:
    if declared is None or not live.segments:
        return live
    types = field_types(declared)
    segments = tuple(_with_count(segment, sample, live, types) for segment in live.segments)
    return live.model_copy(update={"segments": segments})


def _with_count(
    segment: LiveSegment, sample: Sample, live: LiveList, types: Mapping[str, str]
) -> LiveSegment:
    """The segment with its count: ``None`` when a ``native:`` rule decides anyone."""
    if not segment.managed or not segment.rules:
        return segment
    members = sample.members(live.target, live.name, segment.match, segment.rules, types)
    count = None if members.undecided else members.count
    return segment.model_copy(update={"member_count": count})
