"""Which changes of a plan must wait for which: the dependency graph ``apply`` runs by.

Changes of one target that touch a common thing keep their plan order; everything else may
run at once. Each edge points from a change to an earlier one (plan order is already
parents first), so the graph has no cycle. The things, per target:

- **A list.** ``create_list`` comes before every other change of that list.
- **A custom field** (of the list, or of the whole target where fields are account-scoped,
  ``Capabilities.field_scope == "account"``). ``create_field`` comes before every segment
  change whose rules use the field; a segment with ``native:`` rules (which may name any
  field in the platform's own form) waits for every ``create_field`` of that scope; fields
  of one scope are created one after another.
- **A segment name** in a list (compared casefolded). Changes touching one name (delete X
  then create X, a rename and a create of the old name) keep their order.
- **A name that membership rules refer to** (a segment, or a list on platforms whose
  membership rules name lists), anywhere in the target. A segment whose rules (declared or
  live) name ``N`` waits for every earlier write of a segment or list named ``N``, and a
  write of ``N`` waits for every earlier change whose rules name ``N`` (the segment using it
  is updated before it is deleted).

Some edges also carry a failure (``Edge.blocks``): when the earlier change fails, or is
itself skipped for that reason, the later one is skipped instead of attempted. These are
the edges to a ``create_list`` of the change's list, to a ``create_field`` whose field the
change's rules use, to an earlier change of the same segment name, and to a write that
creates the name a declared membership rule of the change refers to. The other edges only
order. Different targets never wait for each other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .model import FieldRule, Group, MembershipRule, NativeRule, Rule
from .plan import Action, Change

__all__ = ["Edge", "Ordering", "order"]

Blocks = Literal["list", "field", "segment", "named"]
"""Why a failed parent skips its child: its list, a field its rules use, an earlier change of
its name, a name its membership rules refer to."""

_SEGMENT_WRITES = frozenset(
    {Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.ADD_RULE_GROUP, Action.DELETE_SEGMENT}
)
_PRECEDENCE: dict[Blocks, int] = {"list": 0, "field": 1, "segment": 2, "named": 3}


class Edge(NamedTuple):
    """``parent`` (an index into the plan's changes) must finish before the child starts.

    ``blocks`` set: the child is skipped when the parent failed or was itself skipped for a
    failure (``name`` is what could not be done); ``None``: the edge only orders."""

    parent: int
    blocks: Blocks | None = None
    name: str = ""


@dataclass(frozen=True)
class Ordering:
    """Per change (by index in the plan), the earlier changes it waits for."""

    parents: tuple[tuple[Edge, ...], ...]

    def children(self) -> list[list[int]]:
        """Per change, the later changes waiting for it (each listed once)."""
        found: list[list[int]] = [[] for _ in self.parents]
        for child, edges in enumerate(self.parents):
            for edge in edges:
                found[edge.parent].append(child)
        return found

    def skip_reason(self, child: int, failed: Collection[int]) -> str | None:
        """Why change ``child`` is skipped, given the indexes of the changes that failed or
        were skipped for a failure; ``None``: it runs. The list comes first, then the fields
        (named together), then the rest."""
        edges = sorted(
            (e for e in self.parents[child] if e.blocks is not None and e.parent in failed),
            key=lambda e: (_PRECEDENCE[e.blocks or "named"], e.parent),
        )
        if not edges:
            return None
        first = edges[0]
        if first.blocks == "list":
            return f'list "{first.name}" could not be created'
        if first.blocks == "field":
            names = sorted({repr(e.name) for e in edges if e.blocks == "field"})
            return f"field {', '.join(names)} could not be created"
        if first.blocks == "segment":
            return f'the earlier change of segment "{first.name}" in this list did not apply'
        return f'"{first.name}", which its membership rules name, could not be written'


@dataclass(frozen=True)
class _Rules:
    """What rules touch: the fields they use (casefolded), whether a ``native:`` rule is
    among them, and the names membership rules refer to (casefolded -> as written)."""

    fields: frozenset[str] = frozenset()
    native: bool = False
    named: tuple[tuple[str, str], ...] = ()


def _scan(rules: Iterable[Rule]) -> _Rules:
    fields: set[str] = set()
    named: dict[str, str] = {}
    native = False
    pending = [rules]
    while pending:
        for rule in pending.pop():
            if isinstance(rule, FieldRule):  # the most common first: a plan may hold 10,000
                fields.add(rule.field.casefold())
            elif isinstance(rule, Group):
                pending.append(rule.rules)
            elif isinstance(rule, MembershipRule):
                named.setdefault(rule.list_.casefold(), rule.list_)
            elif isinstance(rule, NativeRule):
                native = True
    if not named and not native:
        return _Rules(frozenset(fields))
    return _Rules(frozenset(fields), native, tuple(sorted(named.items())))


Key = tuple[str, ...]


class _Builder:
    """Collects the edges of one plan, key by key (every key names its target)."""

    def __init__(self, count: int) -> None:
        self.edges: list[dict[int, Edge]] = [{} for _ in range(count)]
        self.writer: dict[Key, int] = {}
        """The last change that wrote each key."""
        self.readers: dict[Key, list[int]] = {}
        """The changes that read each key since its last write."""
        self.announced: dict[Key, list[tuple[int, bool]]] = {}
        """Per name: the earlier writes of it (index, whether the write creates the name)."""
        self.referred: dict[Key, list[int]] = {}
        """Per name: the earlier changes whose rules refer to it."""

    def edge(self, child: int, parent: int, blocks: Blocks | None = None, name: str = "") -> None:
        if parent == child:  # a segment whose rules name itself
            return
        known = self.edges[child].get(parent)
        if known is None or (known.blocks is None and blocks is not None):
            self.edges[child][parent] = Edge(parent, blocks, name)

    def exclusive(self, index: int, key: Key, blocks: Blocks | None, name: str) -> None:
        """Every change touching ``key`` waits for the one before it."""
        if key in self.writer:
            self.edge(index, self.writer[key], blocks, name)
        self.writer[key] = index

    def write(self, index: int, key: Key) -> None:
        """A write waits for the last write and the reads since."""
        if key in self.writer:
            self.edge(index, self.writer[key])
        for reader in self.readers.pop(key, ()):
            self.edge(index, reader)
        self.writer[key] = index

    def read(self, index: int, key: Key, blocks: Blocks, name: str) -> None:
        """A read waits for the last write (and is skipped if it failed)."""
        if key in self.writer:
            self.edge(index, self.writer[key], blocks, name)
        self.readers.setdefault(key, []).append(index)

    def announce(self, index: int, key: Key, creates: bool) -> None:
        """A write of a name waits for the changes referring to it before."""
        for reader in self.referred.get(key, ()):
            self.edge(index, reader)
        self.announced.setdefault(key, []).append((index, creates))

    def refer(self, index: int, key: Key, name: str, needed: bool) -> None:
        """A reference to a name waits for every write of it before; when ``needed`` (the
        declared rules name it), a failed write that would have created it skips it."""
        for writer, creates in self.announced.get(key, ()):
            self.edge(index, writer, "named" if needed and creates else None, name)
        self.referred.setdefault(key, []).append(index)


def order(changes: Sequence[Change], field_scope: Callable[[str], str]) -> Ordering:
    """The dependency graph of ``changes`` (a plan's, in plan order); ``field_scope`` gives
    each target's ``Capabilities.field_scope`` (``list`` or ``account``)."""
    build = _Builder(len(changes))
    for index, change in enumerate(changes):
        _add(build, index, change, account_fields=field_scope(change.target) == "account")
    return Ordering(tuple(tuple(edges[p] for p in sorted(edges)) for edges in build.edges))


def _add(build: _Builder, index: int, change: Change, *, account_fields: bool) -> None:
    target, name = change.target, change.list
    if change.action is Action.CREATE_LIST:
        build.write(index, ("list", target, name))
        build.announce(index, ("name", target, name.casefold()), creates=True)
        return
    build.read(index, ("list", target, name), "list", name)
    fields: Key = ("fields", target, "" if account_fields else name)
    if change.action is Action.CREATE_FIELD:
        if change.field is not None:
            build.write(index, (*fields, change.field.name.casefold()))
        build.exclusive(index, fields, None, "")
        return
    if change.action not in _SEGMENT_WRITES:
        return
    after = _scan(change.after.rules) if change.after is not None else _Rules()
    before = _scan(change.before.rules) if change.before is not None else _Rules()
    for field in sorted(after.fields):
        build.read(index, (*fields, field), "field", field)
    if after.native and fields in build.writer:
        build.edge(index, build.writer[fields])
    declared = dict(after.named)
    for folded, written in sorted({**dict(before.named), **declared}.items()):
        build.refer(index, ("name", target, folded), written, needed=folded in declared)
    _segment_names(build, index, change)


def _segment_names(build: _Builder, index: int, change: Change) -> None:
    """Each name the change touches: one chain per name in its list, and announced to the
    membership rules of the whole target."""
    names: dict[str, str] = {}
    for written in (change.segment, change.before and change.before.name):
        if written:
            names.setdefault(written.casefold(), written)
    created = None
    if change.after is not None and change.action is not Action.DELETE_SEGMENT:
        created = change.after.name.casefold()
        names.setdefault(created, change.after.name)
    for folded, written in sorted(names.items()):
        key = ("segment", change.target, change.list, folded)
        build.exclusive(index, key, "segment", written)
        build.announce(index, ("name", change.target, folded), creates=folded == created)
