"""YAML files -> the validated desired state (:class:`reconciler.model.Config`).

``load_config`` reads the root file and every file its ``include:`` globs match, expands
``${VAR}`` references from the environment, validates each file's lists separately (so each
error names its own file), fills in the defaults and resolves every list's target. Every
problem found in one run is raised together as :class:`ConfigErrors`, each one line of
``file:line:column: message``. Each file is parsed exactly once when it is valid; positions
are looked up again only for files that have errors.

Includes stay inside the configuration: a pattern is relative to the root file's directory,
may not be absolute nor use ``..``, and every file it matches must resolve (symbolic links
followed) to a file inside that directory. ``**`` never enters a symbolic link to a
directory, so no pattern can walk the file system or loop.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, TypeAdapter, ValidationError

from . import yamlio
from .errormap import describe, did_you_mean, translate
from .errors import ConfigError, ConfigErrors
from .model import Config, MailingList, SourceRef, TargetConfig
from .provider import paused_gc
from .sharing import SharedRules

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_TARGET",
    "LoadedConfig",
    "Unset",
    "display_path",
    "expander",
    "load_config",
    "locate_source",
    "root_file",
    "segment_test_files",
    "sorted_errors",
    "unset_variables",
]

DEFAULT_CONFIG = "reconciler.yaml"
DEFAULT_TARGET = ("local", {"provider": "reference", "path": ".reconciler/state.db"})
"""The target used when the configuration declares none at all."""

_LIST = TypeAdapter(MailingList)
_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class LoadedConfig(Config):
    """A :class:`Config` that remembers the root file it was loaded from."""

    _root_file: str | None = PrivateAttr(default=None)
    _unset: frozenset[str] = PrivateAttr(default=frozenset())
    _tests: tuple[Path, ...] = PrivateAttr(default=())


def segment_test_files(config: Config) -> tuple[Path, ...]:
    """The segment tests files the ``tests:`` globs matched (empty unless
    :func:`load_config` made ``config``)."""
    return config._tests if isinstance(config, LoadedConfig) else ()


class Unset(str):
    """Offline loading (``validate --offline``): a scalar naming a ``${VAR}`` that is not
    set, kept as written (``${CM_API_KEY}``). It passes where a value is only checked for
    being there; a check that parses the value (a URL, a number) skips it."""

    __slots__ = ()


def unset_variables(config: Config) -> frozenset[str]:
    """The ``${VAR}`` names an offline load found unset (empty for a normal load)."""
    return config._unset if isinstance(config, LoadedConfig) else frozenset()


def root_file(config: Config) -> str | None:
    """The root file a configuration was loaded from, when :func:`load_config` made it."""
    return config._root_file if isinstance(config, LoadedConfig) else None


def locate_source(source: SourceRef, extra_path: tuple[str | int, ...] = ()) -> str:
    """``file:line:column`` of a declaration (plus ``extra_path`` inside it), for messages."""
    line, column = yamlio.locate(source.file, (*source.path, *extra_path))
    return f"{source.file}:{line}:{column}"


def display_path(path: Path) -> str:
    """``path`` as users should read it: relative to the working directory when inside it."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith("..") else relative


def expander(environ: Mapping[str, str], unset: set[str] | None = None) -> yamlio.Expander:
    """``${VAR}`` -> its value; ``$${VAR}`` -> the literal ``${VAR}``; ``KeyError`` if unset.

    Given ``unset`` (offline), a variable that is not set is added to it instead, and the
    scalar naming it is returned as written, as an :class:`Unset`."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if match.group(1):
            return "${" + name + "}"
        if name in environ or unset is None:
            return environ[name]
        missing.append(name)
        return match.group(0)

    def expand(text: str) -> str:
        missing.clear()
        expanded = _VARIABLE.sub(replace, text)
        if not missing or unset is None:
            return expanded
        unset.update(missing)
        return Unset(text)  # as written: no value of a set variable in it is shown

    return expand


class _Loader:
    """One run of loading: the files seen so far and every error found."""

    def __init__(self, environ: Mapping[str, str], offline: bool = False) -> None:
        self.unset: set[str] | None = set() if offline else None
        self.expand = expander(environ, self.unset)
        self.errors: list[ConfigError] = []
        self.seen: set[str] = set()
        self.lists: list[MailingList] = []
        self._shared = SharedRules()

    def read(self, path: Path) -> yamlio.Loaded | None:
        self.seen.add(os.path.realpath(path))
        file = display_path(path)
        try:
            loaded = yamlio.load_file(path, file, self.expand)
        except ConfigError as exc:
            self.errors.append(exc)
            return None
        self.errors.extend(loaded.errors)
        return loaded

    def error_at(self, file: str, where: tuple[str | int, ...], message: str) -> None:
        line, column = yamlio.locate(file, where)
        self.errors.append(ConfigError(message, file=file, line=line, column=column))

    def load(self, path: Path) -> LoadedConfig | None:
        loaded = self.read(path)
        if loaded is None:
            return None
        if loaded.data is None and loaded.errors:
            return None  # refused while loading (an alias bomb): that error says it all
        if not isinstance(loaded.data, dict):
            what = "empty" if loaded.data is None else "not a mapping"
            self.error_at(loaded.file, (), f"the configuration is {what}; start with: version: 1")
            return None
        if _foreign(loaded.data, list(Config.model_fields)):
            # Not a configuration file at all (-c naming the wrong file): one error, and
            # nothing of its content repeated.
            message = "this is not a configuration file: it has none of the keys " + ", ".join(
                Config.model_fields
            )
            self.error_at(loaded.file, (), message)
            return None
        root = self.root_model(loaded)
        self.add_lists(loaded)
        # Segment tests files are data, never configuration: an include glob that also
        # matches one skips it (as it skips the root), and the root is never a tests file.
        tests = [
            file
            for _, file in self.included(path, loaded, "tests")
            if os.path.realpath(file) not in self.seen
        ]
        self.seen.update(os.path.realpath(file) for file in tests)
        for pattern_index, file in self.included(path, loaded):
            self.load_included(file, pattern_index, loaded.file)
        if root is None:
            return None
        config = LoadedConfig.model_construct(**{**dict(root), "lists": tuple(self.lists)})
        config._tests = tuple(tests)
        config._root_file = loaded.file
        config._unset = frozenset(self.unset or ())
        return config

    def root_model(self, loaded: yamlio.Loaded) -> Config | None:
        data = {key: value for key, value in loaded.data.items() if key != "lists"}
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
        if self.unset and any(isinstance(error["input"], Unset) for error in errors):
            # Offline: a value from an unset variable (max_concurrency: ${N}) is not
            # checked against its stand-in; the rest is checked without it.
            for error in errors:
                if isinstance(error["input"], Unset):
                    data = _without(data, error["loc"])
            try:
                return Config.model_validate(data)
            except ValidationError as exc:
                errors = exc.errors()
        self.errors += translate(errors, data=data, file=loaded.file, root=Config)
        return None

    def add_lists(self, loaded: yamlio.Loaded) -> None:
        data = loaded.data.get("lists")
        if data is None:
            return
        if not isinstance(data, list):
            self.error_at(loaded.file, ("lists",), f'"lists" must be a list, not {describe(data)}')
            return
        for index, item in enumerate(data):
            try:
                mailing_list = _LIST.validate_python(self.shared_rules(item))
            except ValidationError:
                # Validated again as written, so the errors are those of the list itself
                # (a rule that fails is never shared, so both refuse the same list).
                try:
                    mailing_list = _LIST.validate_python(item)
                except ValidationError as exc:
                    where = ("lists", index)
                    self.errors += translate(
                        exc.errors(), data=item, file=loaded.file, root=MailingList, prefix=where
                    )
                    continue
            self.lists.append(_with_sources(mailing_list, loaded.file, index))

    def shared_rules(self, item: object) -> object:
        """``item`` (a list as parsed) with the rules of its segments shared
        (``sharing.py``), copied where they are replaced: ``item`` itself is left as it is."""
        if type(item) is not dict or type(segments := item.get("segments")) is not list:
            return item
        rules = self._shared.rules
        return {
            **item,
            "segments": [
                {**segment, "rules": rules(segment["rules"])}
                if type(segment) is dict and "rules" in segment
                else segment
                for segment in segments
            ],
        }

    def included(
        self, root: Path, loaded: yamlio.Loaded, key: str = "include"
    ) -> list[tuple[int, Path]]:
        """The files the globs under ``key`` (``include`` or ``tests``) match, confined to
        the root file's directory, with the index of the pattern matching each."""
        patterns = loaded.data.get(key) or ()
        if not isinstance(patterns, list):
            return []  # the schema error is reported by root_model
        base = root.parent
        inside = os.path.realpath(base)
        found: list[tuple[int, Path]] = []
        for index, pattern in enumerate(patterns):
            if not isinstance(pattern, str):
                continue
            where = (key, index)
            problem = _pattern_problem(pattern, key)
            if problem is not None:
                self.error_at(loaded.file, where, f'{key} "{pattern}" {problem}')
                continue
            files: list[Path] = []
            outside = 0
            for match in sorted(set(_matches(base, pattern))):
                real = os.path.realpath(match)
                if os.path.isdir(real):
                    continue  # never read: a directory matched by a wildcard is no file
                if os.path.commonpath((real, inside)) != inside:
                    message = (
                        f'{key} "{pattern}" matches {display_path(match)}, which resolves '
                        "outside the configuration's directory (a symbolic link?)"
                    )
                    self.error_at(loaded.file, where, message)
                    outside += 1
                else:
                    files.append(match)
            if not files and not outside and not _waiting(base, pattern):
                self.error_at(loaded.file, where, _no_match(pattern, key))
            found += [(index, path) for path in files]
        return found

    def load_included(self, path: Path, pattern_index: int, parent: str) -> None:
        if os.path.realpath(path) in self.seen:
            return  # the root itself, or matched by two patterns: harmless
        loaded = self.read(path)
        if loaded is None or loaded.data is None:
            return
        if not isinstance(loaded.data, dict):
            self.error_at(loaded.file, (), "an included file must be a mapping holding lists:")
            return
        others = [key for key in loaded.data if key != "lists"]
        if _foreign(loaded.data, ["lists"]):
            # Not a configuration file at all: one error, nothing of its content repeated.
            message = 'an included file must be a mapping holding lists: (it has no "lists")'
            self.error_at(loaded.file, (), message)
            return
        for key in others:
            hint = did_you_mean(key, ["lists"]) or ' (an included file holds only "lists")'
            self.error_at(loaded.file, (key,), f'unknown key "{key}"{hint}')
        self.add_lists(loaded)


def _without(data: dict[str, Any], loc: tuple[int | str, ...]) -> dict[str, Any]:
    """``data`` without the :class:`Unset` value at (the start of) ``loc``, copied along
    the way (a union's member name may end ``loc``)."""
    key, rest = loc[0], loc[1:]
    if not isinstance(key, str):
        return data
    value = data.get(key)
    if isinstance(value, Unset):
        return {k: v for k, v in data.items() if k != key}
    if isinstance(value, dict) and rest:
        return {**data, key: _without(value, rest)}
    return data


def _foreign(data: dict[str, Any], keys: list[str]) -> bool:
    """Whether a mapping has keys but none of ``keys``, nor one close to them (a typo):
    then it is some other file, whose keys an error must not repeat."""
    return bool(data) and not any(key in keys or did_you_mean(key, keys) for key in data)


def _no_match(pattern: str, key: str = "include") -> str:
    return f'{key} "{pattern}" matches no file'


def _pattern_problem(pattern: str, key: str = "include") -> str | None:
    """Why a pattern could reach outside the configuration's directory, or None."""
    if os.path.isabs(pattern) or pattern.startswith(("/", "\\")):
        return f"is an absolute path; {key} takes paths relative to the root file's directory"
    if ".." in re.split(r"[/\\]", pattern):
        return f'uses ".."; {key} takes only files inside the root file\'s directory'
    return None


def _parts(pattern: str) -> list[str]:
    return [part for part in re.split(r"[/\\]", pattern) if part not in ("", ".")]


def _waiting(base: Path, pattern: str) -> bool:
    """Whether a wildcard pattern that matched nothing searches a directory that exists and
    is still empty (say, waiting for the first ``reconciler import -o``): not a typo."""
    fixed: list[str] = []
    for part in _parts(pattern):
        if glob.has_magic(part):
            break
        fixed.append(part)
    else:
        return False  # no wildcard: a file name that matches nothing is a typo
    try:
        with os.scandir(base.joinpath(*fixed)) as entries:
            return all(entry.name.startswith(".") for entry in entries)
    except OSError:
        return False


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def _matches(base: Path, pattern: str) -> Iterator[Path]:
    """Paths under ``base`` matching ``pattern``, as :func:`glob.glob` with
    ``recursive=True`` finds them (``*``, ``?`` and ``[...]`` within a name, ``**`` for
    any depth, hidden names only when the pattern's name starts with "."), except that
    ``**`` never enters a symbolic link to a directory. Iterative, each directory visited
    once per pattern part: no depth of directories can exhaust the stack."""
    parts = _parts(pattern)
    pending: list[tuple[Path, int]] = [(base, 0)]
    seen: set[tuple[Path, int]] = set()
    while pending:
        directory, index = pending.pop()
        if (directory, index) in seen:
            continue
        seen.add((directory, index))
        if index == len(parts):
            yield directory
            continue
        part, last = parts[index], index == len(parts) - 1
        if part == "**":
            pending.append((directory, index + 1))
            for entry in _entries(directory):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append((directory / entry.name, index))
                elif last:
                    yield directory / entry.name
        elif not glob.has_magic(part):
            candidate = directory / part
            if last and os.path.lexists(candidate):
                yield candidate
            elif not last and candidate.is_dir():
                pending.append((candidate, index + 1))
        else:
            for entry in _entries(directory):
                if entry.name.startswith(".") and not part.startswith("."):
                    continue
                if not fnmatch.fnmatchcase(entry.name, part):
                    continue
                if last:
                    yield directory / entry.name
                elif entry.is_dir():
                    pending.append((directory / entry.name, index + 1))


def _with_sources(mailing_list: MailingList, file: str, index: int) -> MailingList:
    where = ("lists", index)
    for position, segment in enumerate(mailing_list.segments):
        segment.with_location(file, (*where, "segments", position))
    return mailing_list.with_source(SourceRef(file=file, path=where))


def _resolve_targets(config: LoadedConfig, loader: _Loader) -> LoadedConfig:
    """Fill in the default target(s) and give every list its target, reporting unknowns."""
    targets = dict(config.targets) or {
        DEFAULT_TARGET[0]: TargetConfig.model_validate(DEFAULT_TARGET[1])
    }
    default = config.defaults.target
    root = config._root_file or ""
    if default is None and len(targets) == 1:
        default = next(iter(targets))
    elif default is not None and default not in targets:
        loader.error_at(root, ("defaults", "target"), _unknown_target(default, targets))
        default = None
    lists = [_list_target(item, default, targets, loader) for item in config.lists]
    update = {
        "targets": targets,
        "defaults": config.defaults.model_copy(update={"target": default}),
    }
    resolved = config.model_copy(update={**update, "lists": tuple(lists)})
    return resolved


def _list_target(
    item: MailingList, default: str | None, targets: Mapping[str, Any], loader: _Loader
) -> MailingList:
    name = item.target or default
    if name in targets:
        return item if item.target == name else item.model_copy(update={"target": name})
    source = item.source or SourceRef(file="")
    if item.target is not None:
        where = (*source.path, "target")
        loader.error_at(source.file, where, _unknown_target(item.target, targets))
    elif default is None and len(targets) > 1:
        message = f'list "{item.name}" names no target and defaults.target is not set'
        loader.error_at(source.file, source.path, f"{message} (targets: {', '.join(targets)})")
    return item


def _unknown_target(name: str, targets: Mapping[str, Any]) -> str:
    hint = did_you_mean(name, list(targets)) or f" (targets: {', '.join(targets)})"
    return f'unknown target "{name}"{hint}'


def sorted_errors(errors: list[ConfigError]) -> list[ConfigError]:
    """Grouped by file (in the order files first appear), then by position."""
    rank: dict[str | None, int] = {}
    for error in errors:
        rank.setdefault(error.file, len(rank))
    return sorted(errors, key=lambda e: (rank[e.file], e.line or 0, e.column or 0))


def load_config(
    path: str | Path = DEFAULT_CONFIG,
    environ: Mapping[str, str] | None = None,
    *,
    offline: bool = False,
) -> Config:
    """Load, expand and validate the configuration rooted at ``path``.

    Raises :class:`ConfigError` (or :class:`ConfigErrors` for several) naming every problem.
    The result is a :class:`LoadedConfig`; its lists and segments carry their ``source``.
    ``offline`` (``validate --offline``): a ``${VAR}`` that is not set is no error; the
    scalar naming it stays as written, an :class:`Unset` (see :func:`unset_variables`).
    """
    loader = _Loader(os.environ if environ is None else environ, offline)
    with paused_gc():
        config = loader.load(Path(path))
        if config is not None:
            config = _resolve_targets(config, loader)
    ConfigErrors.raise_if_any(sorted_errors(loader.errors))
    assert config is not None  # no errors were found, so the root was loaded
    return config
