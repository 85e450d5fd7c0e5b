"""Whether a plan can be executed as planned: what only the live state reveals. Pure.

``validate`` refuses offline what a declaration makes impossible; this module refuses,
right after planning and before any write, what the live state makes impossible: a change
kind the target's provider cannot execute (MailWizz cannot create fields), a declared field
whose live type or options differ from the declaration, and whatever the provider's own
``check_change`` finds when it translates a change against the live data it fetched
(field types, ids, names). Every problem is a ``ConfigError`` located in the YAML, so a
plan that passes is one ``apply`` can carry out change by change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from .errors import ConfigError
from .model import Config, FieldDef, FieldRule, LiveField, LiveState, MailingList, SourceRef
from .plan import Action, Change, Plan
from .provider import Problem, Provider
from .rules import path_text, walk
from .validation import error_at

__all__ = ["plan_problems"]

_WHAT: dict[Action, str] = {
    Action.CREATE_LIST: "create lists",
    Action.CREATE_FIELD: "create custom fields",
    Action.CREATE_SEGMENT: "create segments",
    Action.UPDATE_SEGMENT: "update segments",
    Action.ADD_RULE_GROUP: "append rule groups",
    Action.DELETE_SEGMENT: "delete segments",
}


def plan_problems(
    config: Config, live: LiveState, current: Plan, providers: Mapping[str, Provider]
) -> list[ConfigError]:
    """Every reason ``current`` could not be applied as planned, located in the YAML."""
    declared = {(item.target or "", item.name): item for item in config.lists}
    errors: list[ConfigError] = []
    for item in config.lists:
        provider = providers.get(item.target or "")
        if provider is not None:
            errors += _field_problems(item, _live_fields(live, item), provider)
    for change in current.changes:
        provider = providers.get(change.target)
        if provider is None:
            continue
        mailing_list = declared.get((change.target, change.list))
        errors += _change_problems(change, current, provider, mailing_list)
    return errors


def _live_fields(live: LiveState, item: MailingList) -> list[LiveField]:
    target = item.target or ""
    found = live.find(target, item.name)
    fields = list(found.fields) if found is not None else []
    return fields + list(live.account_fields.get(target, ()))


def _field_index(item: MailingList, name: str) -> int:
    folded = name.casefold()
    return next(i for i, f in enumerate(item.fields) if f.name.casefold() == folded)


def _users(item: MailingList, live_field: LiveField | None, field: FieldDef) -> list[str]:
    """Where the list's rules use ``field`` (by its declared name or any live alias)."""
    names = {field.name.casefold()}
    if live_field is not None:
        names |= {live_field.name.casefold(), *(a.casefold() for a in live_field.aliases)}
    return [
        f'segment "{segment.name}" {path_text(path)}'
        for segment in item.segments
        for path, rule in walk(segment.rules)
        if isinstance(rule, FieldRule) and rule.field.casefold() in names
    ]


def _described(live_field: LiveField) -> str:
    native = live_field.native_type
    return live_field.type + (f" (its platform type is {native})" if native else "")


def _field_problems(
    item: MailingList, live_fields: Sequence[LiveField], provider: Provider
) -> list[ConfigError]:
    """Declared fields that exist live with another type or other options."""
    capabilities = provider.capabilities_for(provider.settings)
    errors: list[ConfigError] = []
    for index, field in enumerate(item.fields):
        live_field = next((f for f in live_fields if f.answers_to(field.name)), None)
        if live_field is None:
            continue
        stored_as = capabilities.stores_as.get(field.type, field.type)
        differ = field.options and set(field.options) != set(live_field.options)
        if stored_as == live_field.type and not differ:
            continue  # the common case: no message, so no search for the rules using it
        used = _users(item, live_field, field)
        uses = f"; used by {', '.join(used)}" if used else ""
        if stored_as != live_field.type:
            message = (
                f'field "{field.name}" is declared {field.type} but the live field '
                f'"{live_field.name}" in {provider.platform_name} is {_described(live_field)}'
                f"{uses}; declare it as {live_field.type} (and use its operators), or change "
                "the field in the platform"
            )
            errors.append(error_at(item.source, ("fields", index, "type"), message))
            continue
        if differ:
            message = (
                f'field "{field.name}" is declared with options {list(field.options)} but the '
                f"live field has {list(live_field.options)}{uses}; options of an existing "
                "field are not changed by apply: declare the live options, or change them in "
                "the platform"
            )
            errors.append(error_at(item.source, ("fields", index, "options"), message))
    return errors


def _change_problems(
    change: Change, current: Plan, provider: Provider, item: MailingList | None
) -> list[ConfigError]:
    capabilities = provider.capabilities_for(provider.settings)
    problems = list(provider.check_change(change, current))
    if change.action not in capabilities.changes and not problems:
        problems.append(Problem((), _unsupported(change, provider)))
    located = _located(change, item, problems)
    return [error_at(source, path, message) for source, path, message in located]


def _unsupported(change: Change, provider: Provider) -> str:
    what = _WHAT[change.action]
    if change.action is Action.CREATE_FIELD and change.field is not None:
        return (
            f'field "{change.field.name}" does not exist in list "{change.list}", and '
            f"{provider.platform_name} cannot {what} through its API: create it in "
            f"{provider.platform_name}, then plan again"
        )
    if change.action is Action.CREATE_LIST:
        return (
            f'list "{change.list}" does not exist, and {provider.platform_name} cannot '
            f"{what} through its API: create it there, then plan again"
        )
    return f"{provider.platform_name} cannot {what}"


def _located(
    change: Change, item: MailingList | None, problems: Sequence[tuple[tuple[str | int, ...], str]]
) -> Iterator[tuple[SourceRef | None, tuple[str | int, ...], str]]:
    """Each problem with the declaration it belongs to and the path inside it."""
    for path, message in problems:
        if change.action is Action.CREATE_FIELD and item is not None and change.field is not None:
            prefix: tuple[str | int, ...] = ("fields", _field_index(item, change.field.name))
            yield item.source, (*prefix, *path) if path else (*prefix, "name"), message
        elif change.after is not None:
            yield change.after.source, path or ("name",), message
        elif change.before is not None and item is not None:
            yield item.source, path or ("name",), message
        else:
            yield change.source, path or ("name",), message
