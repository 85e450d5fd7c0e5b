"""Offline semantic checks of a loaded configuration: what the schema alone cannot say.

``validate_config`` needs no network. It checks each target's provider and settings, that
list and segment names are unique, that rules use declared fields, and that every segment
can be stored by its target's provider (rule shape, operators, events, provider-specific
checks). Every problem is reported at once, located at ``file:line:column`` through the
sources :func:`reconciler.config.load_config` attached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from . import shapes
from .config import Unset, locate_source, root_file, segment_test_files, sorted_errors
from .errormap import did_you_mean, translate
from .errors import ConfigError, ConfigErrors, ReconcilerError
from .model import STANDARD_FIELDS, Config, FieldRule, MailingList, Rule, Segment, SourceRef
from .plan import Action
from .provider import Capabilities, Provider
from .rules import leaves, walk

__all__ = ["error_at", "field_problems", "locate_source", "segment_problems", "validate_config"]

YamlPath = tuple[str | int, ...]
Providers = Mapping[str, type[Provider]]
Targets = Mapping[str, tuple[type[Provider], Capabilities]]
"""Each target's provider class and the capabilities its settings give it."""

_OPTION_TYPES = frozenset({"select", "multiselect"})


def error_at(source: SourceRef | None, extra: YamlPath, message: str) -> ConfigError:
    """A ConfigError at ``extra`` inside ``source`` (unlocated when there is no source)."""
    if source is None:
        return ConfigError(message)
    where = locate_source(source, extra)
    file, line, column = where.rsplit(":", 2)
    return ConfigError(message, file=file, line=int(line), column=int(column))


_error = error_at


def validate_config(
    config: Config, registry: Mapping[str, type[Provider]], *, tests: bool = False
) -> None:
    """Raise :class:`ConfigErrors` naming every semantic problem in ``config``; with
    ``tests`` (``validate``, ``test``), in its segment tests files too. ``plan``, ``apply``
    and the others never read tests files: a stale test must not stop a deployment."""
    root = root_file(config)
    root_source = SourceRef(file=root) if root is not None else None
    errors, providers = _check_targets(config, registry, root_source)
    errors += _check_list_names(config.lists)
    for mailing_list in config.lists:
        errors += _check_list(mailing_list, providers)
    if tests and segment_test_files(config):
        from .segment_tests import check_tests  # only a configuration with tests needs it

        errors += check_tests(config)
    ConfigErrors.raise_if_any(sorted_errors(errors))


def _check_targets(
    config: Config, registry: Providers, root: SourceRef | None
) -> tuple[list[ConfigError], dict[str, tuple[type[Provider], Capabilities]]]:
    """Problems with the targets, and the provider class of each target that has one."""
    errors: list[ConfigError] = []
    providers: dict[str, tuple[type[Provider], Capabilities]] = {}
    stores: dict[str, str] = {}
    base_dir = Path(root.file).resolve().parent if root is not None else Path.cwd()
    for name, target in config.targets.items():
        try:
            provider = registry.get(target.provider)
        except ConfigError as exc:  # installed, but its entry point cannot be loaded
            errors.append(_error(root, ("targets", name, "provider"), exc.message))
            continue
        if provider is None:
            hint = did_you_mean(target.provider, list(registry))
            if not hint:
                hint = f" (installed: {', '.join(registry) or 'none'})"
            message = f'unknown provider "{target.provider}"{hint}'
            errors.append(_error(root, ("targets", name, "provider"), message))
            continue
        settings, problems = _check_settings(name, target.settings, provider, root)
        errors += problems
        if settings is None:
            continue
        offline = any(isinstance(value, Unset) for value in target.settings.values())
        try:
            providers[name] = (provider, provider.capabilities_for(settings))
            store = provider.store_identity(settings, base_dir)
        except AttributeError:
            if not offline:
                raise
            # Offline, a setting these read is an unset variable's: the defaults stand.
            providers[name], store = (provider, provider.capabilities), None
        if store is not None and store in stores:
            message = (
                f'target "{name}" uses the same store as target "{stores[store]}": each '
                "would plan against, and prune, the other's segments; give each its own"
            )
            errors.append(_error(root, ("targets", name), message))
        elif store is not None:
            stores[store] = name
    return errors, providers


def _check_settings(
    name: str, settings: dict[str, object], provider: type[Provider], root: SourceRef | None
) -> tuple[BaseModel | None, list[ConfigError]]:
    """Validate a target's own keys with its provider's model; never quote a value."""
    try:
        model = provider.settings_model.model_validate(settings)
    except ValidationError as exc:
        errors = [error for error in exc.errors() if not _unset_value(error)]
        if errors:
            return None, translate(
                errors,
                data=settings,
                file=root.file if root else None,
                root=provider.settings_model,
                prefix=("targets", name),
                show_input=False,
            )
        # Offline, and only values of unset variables failed (a base_url: ${URL} is no
        # URL): the other settings stand, unchecked against the stand-ins.
        failed = {error["loc"][0] for error in exc.errors() if error["loc"]}
        kept: dict[str, Any] = {k: v for k, v in settings.items() if k not in failed}
        model = provider.settings_model.model_construct(**kept)
    problems = [
        _error(root, ("targets", name, key), f'"{key}" of target "{name}" {problem}')
        for key, problem in _text_setting_problems(model)
    ]
    return (None if problems else model), problems


def _text_setting_problems(model: BaseModel) -> list[tuple[str, str]]:
    """Settings no request could carry: a control character (a line break from the file a
    secret came from) in any text; a non-ASCII character in a key, token or client secret
    (platforms generate those in ASCII and send them in headers, so one is a copy-paste
    accident such as a typographic quote; a password may be any text). The value is never
    quoted."""
    found = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, None)  # None: a required key left unset offline
        secret = isinstance(value, SecretStr)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            continue
        key = info.alias or name
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
            hint = " (copied with its trailing newline?)" if secret else ""
            found.append((key, _CONTROL + hint + _NOT_SHOWN))
        elif secret and name.endswith(_GENERATED) and not text.isascii():
            found.append(
                (key, "holds a non-ASCII character, which no HTTP header can carry" + _NOT_SHOWN)
            )
    return found


def _unset_value(error: Mapping[str, object]) -> bool:
    """Whether a settings error is about the stand-in of an unset variable (offline),
    rather than about the key itself (an unknown key is an error whatever its value)."""
    return isinstance(error.get("input"), Unset) and error.get("type") != "extra_forbidden"


_CONTROL = "holds a line break or another control character"
_GENERATED = ("key", "token", "secret")
_NOT_SHOWN = "; the value is not shown"


def _check_list_names(lists: Sequence[MailingList]) -> list[ConfigError]:
    errors = []
    first: dict[tuple[str | None, str], MailingList] = {}
    for mailing_list in lists:
        key = (mailing_list.target, mailing_list.name)
        if key not in first:
            first[key] = mailing_list
            continue
        message = f'duplicate list "{mailing_list.name}" in target "{mailing_list.target}"'
        errors.append(_error(mailing_list.source, ("name",), message + _first(first[key].source)))
    return errors


def _first(source: SourceRef | None) -> str:
    if source is None:
        return ""
    return f" (first declared at {locate_source(source, ('name',))})"


def _check_list(mailing_list: MailingList, providers: Targets) -> list[ConfigError]:
    provider = providers.get(mailing_list.target or "")
    errors = _check_fields(mailing_list)
    folds = provider is not None and provider[1].names_case_insensitive
    errors += _check_segment_names(mailing_list, str.casefold if folds else str)
    errors += _check_ignored_names(mailing_list)
    field_types = {field.name.casefold(): field.type for field in mailing_list.fields}
    every_leaf = [leaves(segment.rules) for segment in mailing_list.segments]
    errors += _check_rule_fields(mailing_list, field_types, every_leaf)
    if provider is not None:
        errors += _check_field_types(mailing_list, provider)
        errors += _check_change_kinds(mailing_list, provider)
        memo = shapes.leaf_verdicts(provider[1], field_types)
        for index, found in enumerate(every_leaf):
            errors += _check_storable(mailing_list, index, provider, field_types, memo, found)
    return errors


def _check_fields(mailing_list: MailingList) -> list[ConfigError]:
    errors = []
    seen: set[str] = set()
    for index, field in enumerate(mailing_list.fields):
        where: YamlPath = ("fields", index)
        name = field.name.casefold()
        if name in STANDARD_FIELDS:
            message = f'field "{field.name}" is a standard field; remove it from fields:'
            errors.append(_error(mailing_list.source, (*where, "name"), message))
        elif name in seen:
            message = f'duplicate field "{field.name}" in list "{mailing_list.name}"'
            errors.append(_error(mailing_list.source, (*where, "name"), message))
        seen.add(name)
        if field.options and field.type not in _OPTION_TYPES:
            message = (
                f'field "{field.name}" of type "{field.type}" cannot have options '
                "(only select and multiselect fields do)"
            )
            errors.append(_error(mailing_list.source, (*where, "options"), message))
    return errors


def _check_field_types(
    mailing_list: MailingList, target: tuple[type[Provider], Capabilities]
) -> list[ConfigError]:
    """Custom fields whose type the target's platform has no equivalent for."""
    provider, capabilities = target
    return [
        _error(
            mailing_list.source,
            ("fields", index, "type"),
            f'field "{field.name}" has type "{field.type}", which provider "{provider.key}" '
            f"cannot store (it has: {', '.join(sorted(capabilities.field_types))})",
        )
        for index, field in enumerate(mailing_list.fields)
        if field.type not in capabilities.field_types
    ]


def _check_change_kinds(
    mailing_list: MailingList, target: tuple[type[Provider], Capabilities]
) -> list[ConfigError]:
    """What asks for a change kind the provider does not declare, whatever the live state:
    ``prune`` needs ``delete_segment``, ``renamed_from`` needs ``update_segment`` (a rename
    is an update). Kinds that depend on the live state (a missing list or field) are
    refused by ``plan`` (``feasibility``)."""
    provider, capabilities = target
    errors = []
    if mailing_list.prune and Action.DELETE_SEGMENT not in capabilities.changes:
        message = (
            f'list "{mailing_list.name}" prunes, but provider "{provider.key}" cannot delete '
            "segments: remove prune (undeclared segments are then reported as unmanaged)"
        )
        errors.append(_error(mailing_list.source, ("prune",), message))
    if Action.UPDATE_SEGMENT not in capabilities.changes:
        for segment in mailing_list.segments:
            if segment.renamed_from:
                message = (
                    f'segment "{segment.name}" is renamed_from another name, but provider '
                    f'"{provider.key}" cannot update segments (a rename is an update): '
                    "rename it in the platform, then remove renamed_from"
                )
                errors.append(_error(segment.source, ("renamed_from",), message))
    return errors


def _check_segment_names(
    mailing_list: MailingList, norm: Callable[[str], str] = str
) -> list[ConfigError]:
    """Unique names, under the platform's comparison (``norm``: exact, or casefold)."""
    errors = []
    names = {norm(segment.name) for segment in mailing_list.segments}
    first: dict[str, Segment] = {}
    claimed: dict[str, str] = {}
    for segment in mailing_list.segments:
        name = norm(segment.name)
        if name in first:
            other = first[name].name
            same = "" if other == segment.name else f' (same as "{other}" ignoring case)'
            message = f'duplicate segment "{segment.name}" in list "{mailing_list.name}"{same}'
            errors.append(_error(segment.source, ("name",), message + _first(first[name].source)))
        first.setdefault(name, segment)
        for index, old in enumerate(segment.renamed_from):
            message = ""
            if norm(old) in names and norm(old) != name:
                message = f'renamed_from "{old}" names a segment that is still declared'
            elif norm(old) in claimed:
                message = f'"{old}" is already renamed to segment "{claimed[norm(old)]}"'
            if message:
                errors.append(_error(segment.source, ("renamed_from", index), message))
            claimed.setdefault(norm(old), segment.name)
    return errors


def _check_ignored_names(mailing_list: MailingList) -> list[ConfigError]:
    """A declared name that the list's own ``ignore:`` hides could never be seen live."""
    errors = []
    for segment in mailing_list.segments:
        names: list[tuple[YamlPath, str]] = [(("name",), segment.name)]
        names += [(("renamed_from", i), old) for i, old in enumerate(segment.renamed_from)]
        for path, name in names:
            pattern = next((p for p in mailing_list.ignore if fnmatchcase(name, p)), None)
            if pattern is not None:
                message = (
                    f'segment name "{name}" matches the list\'s ignore pattern "{pattern}", '
                    "so it could never be managed; rename it or narrow the pattern"
                )
                errors.append(_error(segment.source, path, message))
    return errors


def _check_rule_fields(
    mailing_list: MailingList,
    field_types: Mapping[str, str],
    every_leaf: Sequence[Sequence[Rule]] | None = None,
) -> list[ConfigError]:
    """Rules naming a field the list does not declare (``every_leaf``: each segment's
    leaves, when the caller has them)."""
    known = [*STANDARD_FIELDS, *(field.name for field in mailing_list.fields)]
    errors = []

    def known_field(rule: Rule) -> bool:
        if rule.__class__ is not FieldRule:
            return True
        name = rule.field.casefold()
        return name in STANDARD_FIELDS or name in field_types

    for index, segment in enumerate(mailing_list.segments):
        found = every_leaf[index] if every_leaf is not None else leaves(segment.rules)
        if all(known_field(rule) for rule in found):
            continue  # the common case: no paths needed
        for path, rule in walk(segment.rules):
            if known_field(rule):
                continue
            assert isinstance(rule, FieldRule)
            hint = did_you_mean(rule.field, known) or " (declare it in the list's fields:)"
            message = f'unknown field "{rule.field}"{hint}'
            errors.append(_error(segment.source, (*path, "field"), message))
    return errors


def _check_storable(
    mailing_list: MailingList,
    segment_index: int,
    target: tuple[type[Provider], Capabilities],
    field_types: Mapping[str, str],
    memo: shapes.LeafVerdicts | None = None,
    leaf_rules: Sequence[Rule] | None = None,
) -> list[ConfigError]:
    """Whether the target's provider can store the segment, as one error per reason."""
    provider, capabilities = target
    segment = mailing_list.segments[segment_index]
    try:
        problems = shapes.check_segment(segment, capabilities, field_types, memo, leaf_rules)
        problems += [
            reason if isinstance(reason, shapes.Problem) else shapes.Problem((), reason)
            for reason in provider.check_segment(segment, field_types)
        ]
    except ReconcilerError as exc:
        problems = [shapes.Problem(("rules",), str(exc))]
    if not problems:
        return []
    prefix = f'segment "{segment.name}" cannot be stored by provider "{provider.key}": '
    return [_error(segment.source, p.path, prefix + p.message) for p in problems]


def segment_problems(
    mailing_list: MailingList, provider: type[Provider], capabilities: Capabilities
) -> dict[int, list[str]]:
    """Per segment index, why ``validate`` would refuse that segment of ``mailing_list`` on
    a target of ``provider`` (fields, names, rules, storability): for ``import``, which
    writes only what validates."""
    target = (provider, capabilities)
    field_types = {field.name.casefold(): field.type for field in mailing_list.fields}
    found: dict[int, list[str]] = {}
    for index, segment in enumerate(mailing_list.segments):
        alone = mailing_list.model_copy(update={"segments": (segment,)})
        errors = _check_rule_fields(alone, field_types)
        errors += _check_ignored_names(alone)
        errors += _check_storable(alone, 0, target, field_types)
        if errors:
            found[index] = [error.message for error in errors]
    return found


def field_problems(
    mailing_list: MailingList, provider: type[Provider], capabilities: Capabilities
) -> list[str]:
    """Why ``validate`` would refuse the list's field declarations, one message each."""
    errors = _check_fields(mailing_list) + _check_field_types(
        mailing_list, (provider, capabilities)
    )
    return [error.message for error in errors]
