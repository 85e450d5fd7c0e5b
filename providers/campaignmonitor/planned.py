"""What a Campaign Monitor list holds when each planned change runs: its segment titles
(for error 275) and its custom fields (to translate rules against).

Both depend on the plan's earlier changes in the same list: the segments they create,
rename and delete, the fields they create. :class:`PlanIndex` groups a plan's changes by
list once; each list's changes are then replayed once, in plan order, against the list as
last fetched, and every change's answer is kept (``providers._per_plan``): a plan of N
changes costs O(N), not one replay of the plan per change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from providers._per_plan import Kept, positions
from reconciler.plan import Action, Change, Plan

from . import clauses as cl
from .api import CustomField
from .mapping import FieldIndex

__all__ = ["NO_FIELDS", "NO_TITLES", "WRITES_RULES", "Meets", "PlanIndex"]

WRITES_RULES = frozenset({Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.ADD_RULE_GROUP})

NO_FIELDS: tuple[CustomField, ...] = ()
NO_TITLES: Mapping[str, str] = MappingProxyType({})
"""The fields and titles of a list not fetched (one object each, so that what is derived
from them is kept like what is derived from a fetched list's)."""

ListKey = tuple[str, str]
"""(target, list)."""

Entry = tuple[int, Change]
"""A change and its index in the plan."""


@dataclass(frozen=True)
class Meets:
    """What a change that writes rules meets when it runs."""

    clash: str | None
    """A title another segment of the list holds, equal to this one ignoring case (the
    first, in the order the list's titles were read and given), or None."""
    fields: FieldIndex
    """The list's custom fields: as last fetched, plus those created before it."""


class _Titles:
    """A list's segment titles by segment (a new one by a made-up id) as changes run,
    found by title ignoring case. The first holder of a title is the one whose entry is
    oldest: a rename keeps its place, a delete drops it (as ``dict`` order would)."""

    def __init__(self, titles: Mapping[str, str]) -> None:
        self._title: dict[str, str] = {}
        self._place: dict[str, int] = {}
        self._holders: dict[str, dict[str, None]] = {}
        self._given = 0
        for ident, title in titles.items():
            self.give(ident, title)

    def give(self, ident: str, title: str) -> None:
        if ident in self._title:
            del self._holders[self._title[ident].casefold()][ident]
        else:
            self._place[ident] = self._given
            self._given += 1
        self._title[ident] = title
        self._holders.setdefault(title.casefold(), {})[ident] = None

    def drop(self, ident: str) -> None:
        if ident in self._title:
            del self._holders[self._title.pop(ident).casefold()][ident]
            del self._place[ident]

    def clash(self, title: str, own: str | None) -> str | None:
        """The title of the first other segment whose title equals ``title`` ignoring case."""
        others = [i for i in self._holders.get(title.casefold(), {}) if i != own]
        if not others:
            return None
        return self._title[min(others, key=self._place.__getitem__)]


def _created_field(change: Change) -> CustomField | None:
    """The field a create_field change adds, typed as created (its Key is not known yet)."""
    declared = change.field
    if change.action is not Action.CREATE_FIELD or declared is None:
        return None
    if declared.type not in cl.DATA_TYPES:
        return None
    options = declared.options if declared.type in ("select", "multiselect") else ()
    return CustomField(
        name=declared.name,
        key=f"(Key of new field {declared.name})",  # never a real RuleType
        data_type=cl.DATA_TYPES[declared.type],
        options=options,
    )


def replay(
    entries: Sequence[Entry], fields: Sequence[CustomField], titles: Mapping[str, str]
) -> dict[int, Meets]:
    """One list's changes (in plan order) played against its fields and titles as last
    fetched: what each change that writes rules meets, by its index in the plan."""
    current = _Titles(titles)
    created: list[CustomField] = []
    index: FieldIndex | None = None
    met: dict[int, Meets] = {}
    for position, change in entries:
        if change.action in WRITES_RULES and change.after is not None:
            if index is None:  # one index while no field is created in between
                index = FieldIndex([*fields, *created])
            own = change.before.id if change.before is not None else None
            met[position] = Meets(current.clash(change.after.name, own), index)
        new_field = _created_field(change)
        if new_field is not None:
            created.append(new_field)
            index = None
        elif change.action is Action.DELETE_SEGMENT and change.before is not None:
            current.drop(change.before.id)
        elif change.action in WRITES_RULES and change.after is not None:
            ident = change.before.id if change.before is not None else f"(new {position})"
            current.give(ident, change.after.name)
    return met


class PlanIndex:
    """A plan's changes grouped by list, each list replayed once (per state fetched)."""

    def __init__(self, planned: Plan) -> None:
        self.planned = planned
        self._positions = positions(planned)
        self._lists: dict[ListKey, list[Entry]] = {}
        for entry in enumerate(planned.changes):
            self._lists.setdefault((entry[1].target, entry[1].list), []).append(entry)
        self._replays: dict[ListKey, Kept[dict[int, Meets]]] = {}

    def meets(
        self, change: Change, fields: Sequence[CustomField], titles: Mapping[str, str]
    ) -> Meets | None:
        """What ``change`` meets when it runs, its list being ``fields`` and ``titles`` as
        last fetched (None if it writes no rules)."""
        where = (change.target, change.list)
        position = self._positions.get(id(change))
        if position is None:
            return self._foreign(change, fields, titles)
        kept = self._replays.setdefault(where, Kept())
        entries = self._lists[where]
        return kept.get((fields, titles), lambda: replay(entries, fields, titles)).get(position)

    def _foreign(
        self, change: Change, fields: Sequence[CustomField], titles: Mapping[str, str]
    ) -> Meets | None:
        """A change that is not one of the plan's own objects: it runs after the plan's
        changes that sort before it."""
        earlier = [c for c in self.planned.changes if c.sort_key() < change.sort_key()]
        where = (change.target, change.list)
        entries = [(i, c) for i, c in enumerate(earlier) if (c.target, c.list) == where]
        return replay([*entries, (len(earlier), change)], fields, titles).get(len(earlier))
