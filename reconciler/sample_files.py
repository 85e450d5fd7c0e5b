"""Sample subscribers for ``plan --sample FILE``: a tests file, CSV, or JSON Lines.

- ``.yaml``/``.yml``: a segment tests file. Its ``now`` and ``subscribers:`` are read;
  its ``expect:`` is not (that is ``reconciler test``'s business: a stale expectation,
  say about a segment being renamed, must not hide the impact of the change).
- ``.jsonl``/``.ndjson`` and ``.csv``: rows with the keys of a tests file's subscribers
  (:mod:`reconciler.sample_rows`). They are evaluated against ``today``: behaviour rules
  count back from it, and an event after it is an error.

Each subscriber is checked as ``validate`` checks a tests file's (a declared list, fields
it declares, values that parse for their types, an email given once per list), and every
problem is reported at ``file:line:column`` (YAML) or ``file:line`` (CSV, JSON Lines). A
file is untrusted input: a regular file of at most 16 MiB (YAML, as any configuration
file) or :data:`MAX_SAMPLE_BYTES`, holding at most :data:`MAX_ROWS` subscribers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import yamlio
from .config import display_path
from .errormap import did_you_mean, translate
from .errors import ConfigError, ConfigErrors
from .model import Config, MailingList
from .sample import Sample, SubscriberDoc, read_subscriber
from .sample_rows import Row, csv_rows, jsonl_rows, option_arrays
from .segment_tests import MAX_SAMPLE
from .subscriber import Subscriber, parse_date
from .yamlguard import read_text

__all__ = ["MAX_ROWS", "MAX_SAMPLE_BYTES", "SUFFIXES", "load_sample_file"]

MAX_SAMPLE_BYTES = 64 * 1024 * 1024
"""The largest CSV or JSON Lines sample file read (some 50,000 exported subscribers)."""
MAX_ROWS = MAX_SAMPLE
"""Most subscribers one sample file holds (as many as all tests files together)."""
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_TOP_KEYS = ("now", "subscribers", "expect")


def load_sample_file(config: Config, path: Path, today: date) -> Sample:
    """The sample subscribers of ``path``, checked against ``config`` (the whole
    configuration: a sample may name any declared list). Raises :class:`ConfigErrors`
    naming every problem."""
    kind = SUFFIXES.get(path.suffix.lower())
    file = display_path(path)
    if kind is None:
        raise ConfigError(
            "a sample file is a tests file (.yaml, .yml), CSV (.csv) or JSON Lines "
            "(.jsonl, .ndjson), by its name",
            file=file,
        )
    if kind == "yaml":
        reader = _Reader(config, file, today, yaml=True)
        reader.read_all(_yaml_rows(path, reader))
    else:
        text = read_text(path, file, MAX_SAMPLE_BYTES, "a sample file").removeprefix("\ufeff")
        reader = _Reader(config, file, today, cells=kind == "csv")
        rows = csv_rows if kind == "csv" else jsonl_rows
        reader.read_all(rows(text, reader.at_line))
    ConfigErrors.raise_if_any(reader.errors)
    return Sample.of((subscriber, reader.today) for subscriber in reader.found)


def _yaml_rows(path: Path, reader: _Reader) -> Iterable[Row]:
    """A tests file's subscribers (by index), its ``now`` set as the reader's clock."""
    try:
        loaded = yamlio.load_file(path, reader.file)
    except ConfigError as exc:
        reader.errors.append(exc)
        return []
    reader.errors += loaded.errors
    data = loaded.data
    if loaded.errors:
        return []
    if not isinstance(data, dict):
        reader.error((), "a tests file is a mapping with now: and subscribers:")
        return []
    for key in data:
        if key not in _TOP_KEYS:
            hint = did_you_mean(str(key), _TOP_KEYS) or f" (allowed: {', '.join(_TOP_KEYS)})"
            reader.error((key,), f'unknown key "{key}"{hint}')
    now = parse_date(data.get("now"))
    if now is None:
        shown = "missing" if data.get("now") is None else f'"{data["now"]}" is not an ISO date'
        reader.error(("now",), f"now: {shown} (YYYY-MM-DD: the day behaviour rules count from)")
        return []
    reader.today = now
    entries = data.get("subscribers") or []
    if not isinstance(entries, list):
        reader.error(("subscribers",), "subscribers: must be a list of subscribers")
        return []
    return [(index, entry) for index, entry in enumerate(entries)]


@dataclass
class _Reader:
    """One sample file's subscribers, checked against the configuration's lists. A row
    is known by its line (CSV, JSON Lines) or its index in ``subscribers:`` (YAML)."""

    config: Config
    file: str
    today: date
    yaml: bool = False
    cells: bool = False
    """CSV: a multiselect value may be a JSON array in its cell."""
    errors: list[ConfigError] = field(default_factory=list)
    found: list[Subscriber] = field(default_factory=list)
    seen: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def error(self, path: tuple[str | int, ...], message: str) -> None:
        """A problem in a YAML file, at ``path`` inside it."""
        line, column = yamlio.locate(self.file, path)
        self.errors.append(ConfigError(message, file=self.file, line=line, column=column))

    def at_line(self, line: int, message: str) -> None:
        """A problem on a line of a CSV or JSON Lines file."""
        self.errors.append(ConfigError(message, file=self.file, line=line))

    def at_row(self, row: int, message: str, path: tuple[str | int, ...] = ()) -> None:
        if self.yaml:
            self.error(("subscribers", row, *path), message)
        else:
            self.at_line(row, message)

    def read_all(self, rows: Iterable[Row]) -> None:
        for count, (row, data) in enumerate(rows, start=1):
            if count > MAX_ROWS:
                self.at_row(row, f"more than {MAX_ROWS:,} subscribers: a sample holds at most that")
                return
            self.read(row, data)

    def validated(self, row: int, data: Any) -> SubscriberDoc | None:
        try:
            return SubscriberDoc.model_validate(data)
        except ValidationError as exc:
            if self.yaml:
                where = ("subscribers", row)
                self.errors += translate(
                    exc.errors(), data=data, file=self.file, root=SubscriberDoc, prefix=where
                )
            else:
                for problem in translate(exc.errors(), data=data, file=None, root=SubscriberDoc):
                    self.at_line(row, problem.message)
            return None

    def read(self, row: int, data: Any) -> None:
        doc = self.validated(row, data)
        if doc is None:
            return
        mailing_list = self.find_list(row, doc.list_, doc.target)
        if mailing_list is None:
            return
        decoded = option_arrays(data, mailing_list) if self.cells else None
        if decoded is not None:
            doc = self.validated(row, decoded)
            if doc is None:
                return
        subscriber, problems = read_subscriber(doc, mailing_list, self.today)
        for problem in problems:
            self.at_row(row, problem.message, problem.path)
        key = (str(subscriber.target), subscriber.list, subscriber.email.casefold())
        if key in self.seen:
            first = self.seen[key]
            where = f"subscribers[{first}]" if self.yaml else f"line {first}"
            message = f'subscriber "{doc.email}" of list "{doc.list_}" is already given ({where})'
            self.at_row(row, message, ("email",))
            return
        self.seen[key] = row
        if not problems:
            self.found.append(subscriber)

    def find_list(self, row: int, name: str, target: str | None) -> MailingList | None:
        """The declared list a subscriber names, or None with the error reported."""
        if target is not None and target not in self.config.targets:
            known = list(self.config.targets)
            hint = did_you_mean(target, known) or f" (targets: {', '.join(known)})"
            self.at_row(row, f'unknown target "{target}"{hint}', ("target",))
            return None
        found = [
            item
            for item in self.config.lists
            if item.name == name and (target is None or item.target == target)
        ]
        if len(found) == 1:
            return found[0]
        if found:
            targets = ", ".join(sorted(str(item.target) for item in found))
            message = f'list "{name}" is declared in targets {targets}: say which with target'
            self.at_row(row, message, ("list",))
            return None
        names = sorted({item.name for item in self.config.lists})
        hint = did_you_mean(name, names) or (f" (lists: {', '.join(names)})" if names else "")
        scope = f' in target "{target}"' if target is not None else ""
        self.at_row(row, f'unknown list "{name}"{scope}{hint}', ("list",))
        return None
