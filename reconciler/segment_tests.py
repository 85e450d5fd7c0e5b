"""Segment tests files: read, checked against the configuration, ready to run.

The root file's ``tests:`` globs (same rules as ``include:``) name files like::

    now: 2025-06-01                  # the clock behaviour rules are evaluated against
    subscribers:
      - list: Newsletter
        email: ann@gmail.com
        date_subscribed: 2024-03-01
        fields: {Frequency: Weekly}
        lists: {VIP: active}
        events: [{campaign: spring-launch, event: opened, on: 2025-05-20}]
    expect:
      - list: Newsletter
        segment: Gmail 2024 signups
        members: [ann@gmail.com]     # exactly these sample subscribers of the list match

Each file is read as untrusted input, with the limits of a configuration file (size,
depth, nodes; :mod:`reconciler.yamlguard`), no ``${VAR}`` expansion (a tests file is data)
and at most :data:`~reconciler.sample.MAX_SUBSCRIBERS` subscribers (
:data:`MAX_SAMPLE` over all files). :func:`check_tests` reports every problem as one line
``file:line:column: message`` (unknown list, target, segment or field, a value that does
not parse for its field's type, an unknown member); ``validate`` calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from . import yamlio
from .config import display_path, segment_test_files
from .errormap import did_you_mean, translate
from .errors import ConfigError, ConfigErrors
from .model import Config, MailingList
from .sample import MAX_SUBSCRIBERS, Sample, SubscriberDoc, read_subscriber
from .subscriber import Subscriber, parse_date

__all__ = [
    "MAX_SAMPLE",
    "Expectation",
    "Suite",
    "TestsFile",
    "check_tests",
    "load_sample",
    "load_suite",
]

MAX_SAMPLE = 50_000
"""Most sample subscribers all tests files together may hold."""

YamlPath = tuple[str | int, ...]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _TestsDoc(_Doc):
    """A tests file's top level; its entries are checked one by one."""

    now: StrictStr
    subscribers: list[Any] | None = None
    expect: list[Any] | None = None


class ExpectationDoc(_Doc):
    """``{list: Newsletter, segment: Gmail 2024 signups, members: [ann@gmail.com]}``"""

    list_: StrictStr = Field(alias="list", min_length=1)
    target: StrictStr | None = Field(default=None, min_length=1)
    segment: StrictStr = Field(min_length=1)
    members: tuple[StrictStr, ...]


@dataclass(frozen=True)
class Expectation:
    """The sample subscribers of one list that one segment must select, exactly."""

    file: str
    line: int
    column: int
    target: str
    list: str
    segment: str
    members: tuple[str, ...]
    """Emails as written (each one a sample subscriber of the list in the same file)."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class TestsFile:
    """One tests file, checked: its clock, subscribers and expectations."""

    file: str
    now: date
    subscribers: tuple[Subscriber, ...]
    expectations: tuple[Expectation, ...]


@dataclass(frozen=True)
class Suite:
    """Every tests file of a configuration."""

    files: tuple[TestsFile, ...] = ()

    def sample(self) -> Sample:
        """All sample subscribers, by target and list, each with its file's clock."""
        return Sample.of((s, f.now) for f in self.files for s in f.subscribers)


def load_suite(config: Config) -> Suite:
    """The configuration's tests files, checked; raises :class:`ConfigErrors` naming every
    problem (``config`` is the whole, validated configuration)."""
    suite, errors = _Reader(config).read_all(segment_test_files(config))
    ConfigErrors.raise_if_any(errors)
    return suite


def load_sample(config: Config, path: Path) -> Sample:
    """The subscribers of one tests file (``plan --sample FILE``), checked as ``validate``
    checks tests files; raises :class:`ConfigErrors` naming every problem."""
    suite, errors = _Reader(config).read_all([path])
    ConfigErrors.raise_if_any(errors)
    return suite.sample()


def check_tests(config: Config) -> list[ConfigError]:
    """Every problem in the configuration's tests files, located (for ``validate``)."""
    return _Reader(config).read_all(segment_test_files(config))[1]


class _Reader:
    """One run of reading tests files against one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.by_name: dict[str, list[MailingList]] = {}
        for item in config.lists:
            self.by_name.setdefault(item.name, []).append(item)
        self.errors: list[ConfigError] = []
        self.total = 0

    def read_all(self, paths: Sequence[Path]) -> tuple[Suite, list[ConfigError]]:
        files = [found for path in paths if (found := self.read(path)) is not None]
        return Suite(tuple(files)), self.errors

    def error(self, file: str, path: YamlPath, message: str) -> None:
        line, column = yamlio.locate(file, path)
        self.errors.append(ConfigError(message, file=file, line=line, column=column))

    def read(self, path: Path) -> TestsFile | None:
        file = display_path(path)
        try:
            loaded = yamlio.load_file(path, file)
        except ConfigError as exc:
            self.errors.append(exc)
            return None
        if loaded.errors:
            self.errors += loaded.errors
            return None
        data = loaded.data
        if not isinstance(data, dict):
            self.error(file, (), "a tests file is a mapping with now:, subscribers: and expect:")
            return None
        try:
            top = _TestsDoc.model_validate(data)
        except ValidationError as exc:
            self.errors += translate(exc.errors(), data=data, file=file, root=_TestsDoc)
            return None
        now = parse_date(top.now)
        if now is None:
            self.error(file, ("now",), f'now "{top.now}" is not an ISO date (YYYY-MM-DD)')
            return None
        entries = top.subscribers or []
        if len(entries) > MAX_SUBSCRIBERS or self.total + len(entries) > MAX_SAMPLE:
            self.error(file, ("subscribers",), _too_many(len(entries), self.total))
            return None
        self.total += len(entries)
        subscribers = self.subscribers(file, entries, now)
        expectations = self.expectations(file, top.expect or [], subscribers)
        return TestsFile(file, now, tuple(subscribers), tuple(expectations))

    def find_list(
        self, file: str, where: YamlPath, name: str, target: str | None
    ) -> MailingList | None:
        """The declared list an entry names, or None with the error reported."""
        found = self.by_name.get(name, [])
        if target is not None:
            if target not in self.config.targets:
                known = list(self.config.targets)
                hint = did_you_mean(target, known) or f" (targets: {', '.join(known)})"
                self.error(file, (*where, "target"), f'unknown target "{target}"{hint}')
                return None
            found = [item for item in found if item.target == target]
        if len(found) == 1:
            return found[0]
        if found:
            targets = ", ".join(sorted(str(item.target) for item in found))
            message = f'list "{name}" is declared in targets {targets}: say which with target:'
            self.error(file, (*where, "list"), message)
            return None
        names = sorted(self.by_name)
        hint = did_you_mean(name, names) or (f" (lists: {', '.join(names)})" if names else "")
        scope = f' in target "{target}"' if target is not None else ""
        self.error(file, (*where, "list"), f'unknown list "{name}"{scope}{hint}')
        return None

    def subscribers(self, file: str, entries: Sequence[Any], now: date) -> list[Subscriber]:
        found: list[Subscriber] = []
        seen: dict[tuple[str, str, str], int] = {}
        for index, entry in enumerate(entries):
            where: YamlPath = ("subscribers", index)
            try:
                doc = SubscriberDoc.model_validate(entry)
            except ValidationError as exc:
                self.errors += translate(
                    exc.errors(), data=entry, file=file, root=SubscriberDoc, prefix=where
                )
                continue
            mailing_list = self.find_list(file, where, doc.list_, doc.target)
            if mailing_list is None:
                continue
            subscriber, problems = read_subscriber(doc, mailing_list, now)
            for problem in problems:
                self.error(file, (*where, *problem.path), problem.message)
            key = (str(subscriber.target), subscriber.list, subscriber.email.casefold())
            if key in seen:
                message = (
                    f'subscriber "{doc.email}" of list "{doc.list_}" is already given '
                    f"(subscribers[{seen[key]}])"
                )
                self.error(file, (*where, "email"), message)
                continue
            seen[key] = index
            found.append(subscriber)  # with problems too: expectations may name it
        return found

    def expectations(
        self, file: str, entries: Sequence[Any], subscribers: Sequence[Subscriber]
    ) -> list[Expectation]:
        emails: dict[tuple[str, str], dict[str, str]] = {}
        for subscriber in subscribers:
            by_email = emails.setdefault((str(subscriber.target), subscriber.list), {})
            by_email[subscriber.email.casefold()] = subscriber.email
        found: list[Expectation] = []
        for index, entry in enumerate(entries):
            where: YamlPath = ("expect", index)
            try:
                doc = ExpectationDoc.model_validate(entry)
            except ValidationError as exc:
                self.errors += translate(
                    exc.errors(), data=entry, file=file, root=ExpectationDoc, prefix=where
                )
                continue
            mailing_list = self.find_list(file, where, doc.list_, doc.target)
            if mailing_list is None:
                continue
            if self.segment_problem(file, where, mailing_list, doc.segment):
                continue
            known = emails.get((str(mailing_list.target), mailing_list.name), {})
            members = self.members(file, where, mailing_list, doc.members, known)
            if members is None:
                continue
            line, column = yamlio.locate(file, where)
            found.append(
                Expectation(
                    file=file,
                    line=line,
                    column=column,
                    target=str(mailing_list.target),
                    list=mailing_list.name,
                    segment=doc.segment,
                    members=members,
                )
            )
        return found

    def segment_problem(
        self, file: str, where: YamlPath, mailing_list: MailingList, name: str
    ) -> bool:
        names = [segment.name for segment in mailing_list.segments]
        if name in names:
            return False
        hint = did_you_mean(name, names) or (
            f" (segments: {', '.join(names)})" if names else " (it declares no segments)"
        )
        message = f'unknown segment "{name}" in list "{mailing_list.name}"{hint}'
        self.error(file, (*where, "segment"), message)
        return True

    def members(
        self,
        file: str,
        where: YamlPath,
        mailing_list: MailingList,
        members: Sequence[str],
        known: Mapping[str, str],
    ) -> tuple[str, ...] | None:
        """The expected members as the subscribers' emails, or None with errors."""
        result: dict[str, str] = {}
        ok = True
        for index, email in enumerate(members):
            found = known.get(email.casefold())
            if found is None:
                message = (
                    f'"{email}" is not a sample subscriber of list "{mailing_list.name}" '
                    "in this file"
                )
                self.error(file, (*where, "members", index), message)
                ok = False
            else:
                result.setdefault(found.casefold(), found)
        return tuple(result.values()) if ok else None


def _too_many(count: int, before: int) -> str:
    if count > MAX_SUBSCRIBERS:
        return (
            f"{count:,} subscribers: a tests file holds at most {MAX_SUBSCRIBERS:,}; "
            "split it into several files"
        )
    return (
        f"{count:,} more subscribers: all tests files together hold at most "
        f"{MAX_SAMPLE:,} ({before:,} before this file)"
    )
