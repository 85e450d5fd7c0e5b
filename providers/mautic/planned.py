"""``check_change``: a plan's changes translated as ``apply`` will translate them. Pure.

A ``World`` starts from the contact fields and segments the last fetch read and plays the
plan's changes in order, as ``apply`` will: ``create_field`` adds the field with its declared
type and options, ``create_segment`` adds a segment under a new id, ``update_segment``
renames it, re-publishes it and re-points its membership filters, ``delete_segment`` removes
it. Each change is checked against the world just before it (the filters are built with
``mapping.to_filters`` against that world's fields and segment names, exactly as ``apply``
builds them), and, for what a later change can undo, against the world after the whole plan:

- a field that cannot be created as declared (its name is not an alias Mautic keeps, or a
  field with that alias exists but cannot be used in segments);
- a rule that cannot be written (an operator or value the live field's Mautic type refuses:
  an absolute date on a ``datetime`` field, a value that is not one of a select's options);
- a membership rule naming no single segment at that point, an unpublished one (G14), one
  that a later change deletes or renames, or making a circular reference (6.5);
- a ``native:`` filter on a field that is not usable, with an operator its type refuses, or
  naming segment ids that do not exist or are unpublished;
- an ``alias`` option another published segment holds (G8), unpublishing a segment another
  segment's filter uses (422), deleting a segment a remaining segment's filter names, and
  renaming one that an unchanged declared segment's rule names (it would read differently).

Problems are located by the path of the rule or option inside the segment's YAML mapping.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from reconciler.model import (
    STANDARD_FIELDS,
    FieldDef,
    FieldRule,
    Group,
    MembershipRule,
    NativeRule,
    Rule,
    Segment,
)
from reconciler.plan import Action, Change, Plan
from reconciler.provider import Problem
from reconciler.rules import render, walk

from . import mapping
from . import operators as ops
from .api import ContactField, WireSegment
from .leaves import FieldIndex, Segments, Untranslatable, resolve, to_filter

__all__ = ["FIELD_ALIAS", "PlanCheck", "World", "field_alias", "suggested_alias"]

FIELD_ALIAS = re.compile(r"[a-z][a-z0-9_]*")
"""The aliases ``create_field`` sends as written: Mautic cleans a field alias to letters,
digits and ``_`` (fact file 3 says the alias is what filters name), so only such a name is
created under the alias it is declared with."""

Path = tuple[str | int, ...]


def field_alias(name: str) -> str:
    """The alias a declared field is created with."""
    return name.lower()


def suggested_alias(name: str) -> str:
    """An alias form of ``name`` to suggest (``Purchase Count`` -> ``purchase_count``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    alias = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not alias:
        return "custom_field"
    return alias if alias[0].isalpha() else f"f_{alias}"


def _new_name(change: Change) -> str | None:
    """The (casefolded) name a change gives a segment that did not have it: a create's, or
    a rename's new name."""
    if change.after is None or change.action not in (
        Action.CREATE_SEGMENT,
        Action.UPDATE_SEGMENT,
    ):
        return None
    if change.before is not None and change.before.name.casefold() == change.after.name.casefold():
        return None
    return change.after.name.casefold()


def _refs(segment: WireSegment) -> frozenset[str]:
    """The segment ids a stored segment's ``leadlist`` filters name."""
    found: set[str] = set()
    for f in segment.filters:
        if f.field == "leadlist":
            values = f.value if isinstance(f.value, list) else [f.value]
            found.update(str(v) for v in values if v is not None)
    return frozenset(found)


@dataclass
class _Seg:
    id: str
    name: str
    published: bool
    alias: str | None
    refs: frozenset[str]
    scoped: bool
    """In a category of the fetched scope (a declared list)."""


class _UniqueNames(Mapping[str, str]):
    """Casefolded segment name -> id, for names exactly one segment holds (a live view)."""

    def __init__(self, by_name: dict[str, set[str]]) -> None:
        self._by_name = by_name

    def __getitem__(self, key: str) -> str:
        found = self._by_name.get(key, set())
        if len(found) != 1:
            raise KeyError(key)
        return next(iter(found))

    def __iter__(self) -> Iterator[str]:
        return (name for name, ids in self._by_name.items() if len(ids) == 1)

    def __len__(self) -> int:
        return sum(1 for ids in self._by_name.values() if len(ids) == 1)


class _Names(Mapping[str, str]):
    """Segment id -> name (a live view)."""

    def __init__(self, segments: dict[str, _Seg]) -> None:
        self._segments = segments

    def __getitem__(self, key: str) -> str:
        return self._segments[key].name

    def __iter__(self) -> Iterator[str]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)


class World:
    """Contact fields and segments of one Mautic instance, as the plan changes them."""

    def __init__(
        self, fields: list[ContactField], segments: list[WireSegment], scoped: set[int]
    ) -> None:
        self.fields = list(fields)
        self._index: FieldIndex | None = None
        self.segments: dict[str, _Seg] = {}
        self._by_name: dict[str, set[str]] = {}
        self._by_alias: dict[str, set[str]] = {}
        self._place: dict[str, int] = {}
        """Each segment's place in ``segments`` (its order), to find the first of a few."""
        self._added = 0
        self._new = 0
        for s in segments:
            category = s.category.id if s.category is not None else None
            self.add(_Seg(str(s.id), s.name, s.is_published, s.alias, _refs(s), category in scoped))

    # -- fields -------------------------------------------------------------------------

    @property
    def index(self) -> FieldIndex:
        if self._index is None:
            self._index = FieldIndex(self.fields)
        return self._index

    def field_by_alias(self, alias: str) -> ContactField | None:
        folded = alias.casefold()
        return next((f for f in self.fields if f.alias.casefold() == folded), None)

    def create_field(self, declared: FieldDef, alias: str) -> None:
        """The field as ``create_field`` creates it (published, listable, declared type)."""
        self._new += 1
        properties = (
            {"list": [{"label": o, "value": o} for o in declared.options]}
            if declared.type in ("select", "multiselect")
            else {}
        )
        self.fields.append(
            ContactField(
                id=-self._new,
                label=declared.name,
                alias=alias,
                type=declared.type,
                properties=properties,
            )
        )
        self._index = None

    # -- segments -------------------------------------------------------------------------

    @property
    def names(self) -> Segments:
        return Segments(ids=_UniqueNames(self._by_name), names=_Names(self.segments))

    def new_id(self) -> str:
        self._new += 1
        return f"new-{self._new}"

    def add(self, segment: _Seg) -> None:
        replaced = self.segments.get(segment.id)
        if replaced is not None:
            self._unindex_alias(replaced)
        else:
            self._place[segment.id] = self._added
            self._added += 1
        self.segments[segment.id] = segment
        self._by_name.setdefault(segment.name.casefold(), set()).add(segment.id)
        if segment.alias is not None:
            self._by_alias.setdefault(segment.alias, set()).add(segment.id)

    def remove(self, ident: str) -> _Seg | None:
        found = self.segments.pop(ident, None)
        if found is not None:
            self._unindex(found)
            del self._place[ident]
        return found

    def _unindex(self, segment: _Seg) -> None:
        self._by_name.get(segment.name.casefold(), set()).discard(segment.id)
        self._unindex_alias(segment)

    def _unindex_alias(self, segment: _Seg) -> None:
        if segment.alias is not None:
            self._by_alias.get(segment.alias, set()).discard(segment.id)

    def give_alias(self, ident: str, alias: str) -> None:
        found = self.segments.get(ident)
        if found is not None:
            self._unindex_alias(found)
            found.alias = alias
            self._by_alias.setdefault(alias, set()).add(ident)

    def rename(self, ident: str, name: str) -> None:
        found = self.remove(ident)
        if found is not None:
            found.name = name
            self.add(found)

    def holders(self, name: str) -> int:
        """How many segments are named ``name`` (ignoring case)."""
        return len(self._by_name.get(name.casefold(), set()))

    def users(self, ident: str) -> list[_Seg]:
        """Segments whose filters name segment ``ident``."""
        return [s for s in self.segments.values() if ident in s.refs and s.id != ident]

    def all_users(self) -> dict[str, list[_Seg]]:
        """``users`` of every segment named by a filter, in one pass (the world as it is)."""
        found: dict[str, list[_Seg]] = {}
        for s in self.segments.values():
            for ident in s.refs:
                if ident != s.id:
                    found.setdefault(ident, []).append(s)
        return found

    def reaches(self, start: frozenset[str], goal: str) -> bool:
        """Whether following filters from the segments ``start`` reaches segment ``goal``."""
        seen: set[str] = set()
        todo = list(start)
        while todo:
            ident = todo.pop()
            if ident == goal:
                return True
            if ident in seen or ident not in self.segments:
                continue
            seen.add(ident)
            todo.extend(self.segments[ident].refs)
        return False

    def taken_alias(self, alias: str, owner: str | None) -> _Seg | None:
        """The first published segment (in ``segments`` order) but ``owner`` with ``alias``."""
        holders = [
            ident
            for ident in self._by_alias.get(alias, ())
            if ident != owner and self.segments[ident].published
        ]
        if not holders:
            return None
        return self.segments[min(holders, key=self._place.__getitem__)]

    def generated_alias(self, name: str) -> str | None:
        """The alias Mautic would give a new segment of that name, if sure (G8)."""
        base = mapping.generated_alias(name)
        if base is None:
            return None
        alias, n = base, 0
        while self.taken_alias(alias, None) is not None:
            n += 1
            alias = f"{base}{n}"
        return alias


@dataclass
class _Use:
    """A membership reference a change writes: checked again after the whole plan."""

    index: int
    path: Path
    name: str
    ident: str


@dataclass
class PlanCheck:
    """One pass over a plan: the problems of each change, by its index in the plan."""

    world: World
    target: str
    problems: dict[int, list[Problem]] = field(default_factory=dict)
    _uses: list[_Use] = field(default_factory=list)
    _deletes: list[tuple[int, str, str]] = field(default_factory=list)
    _renames: list[tuple[int, str, str]] = field(default_factory=list)
    _pending: dict[str, int] = field(default_factory=dict)
    """Names (casefolded) of segments created by changes not yet played."""

    def run(self, plan: Plan) -> dict[int, list[Problem]]:
        mine = [c for c in plan.changes if c.target == self.target]
        changed = {c.before.id for c in mine if c.before is not None}
        for c in mine:
            name = _new_name(c)
            if name is not None:
                self._pending[name] = self._pending.get(name, 0) + 1
        for index, change in enumerate(plan.changes):
            if change.target != self.target:
                continue
            name = _new_name(change)
            if name is not None:
                self._pending[name] -= 1
            found = self._change(index, change)
            if found:
                self.problems.setdefault(index, []).extend(found)
        self._after_plan(plan, changed)
        return self.problems

    def _add(self, index: int, problem: Problem) -> None:
        self.problems.setdefault(index, []).append(problem)

    # -- one change -------------------------------------------------------------------------

    def _change(self, index: int, change: Change) -> list[Problem]:
        if change.action is Action.CREATE_FIELD and change.field is not None:
            return self._create_field(change.field)
        if change.action in (Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT) and change.after:
            return self._write_segment(index, change, change.after)
        if change.action is Action.DELETE_SEGMENT and change.before is not None:
            gone = self.world.remove(change.before.id)
            if gone is not None:
                self._deletes.append((index, gone.id, gone.name))
        return []

    def _create_field(self, declared: FieldDef) -> list[Problem]:
        alias = field_alias(declared.name)
        problems: list[Problem] = []
        if not FIELD_ALIAS.fullmatch(alias):
            suggestion = suggested_alias(declared.name)
            alias = suggestion
            problems.append(
                Problem(
                    ("name",),
                    f'field "{declared.name}" matches no Mautic contact field (by alias or '
                    "label), and a new field is created with its name as the alias, which "
                    "Mautic keeps only as lower-case letters, digits and '_' starting with a "
                    f'letter: declare it as "{suggestion}" (and name it so in the rules)',
                )
            )
        existing = self.world.field_by_alias(alias)
        if alias in ops.SPECIAL_FILTERS:
            problems.append(
                Problem(
                    ("name",),
                    f'"{alias}" is the name of one of Mautic\'s own segment filters (fact file '
                    "6.3), so a contact field of that alias would be ambiguous in filters: give "
                    "the field another name, or use the filter with native:",
                )
            )
        elif existing is not None and not existing.usable:
            problems.append(
                Problem(
                    ("name",),
                    f'contact field "{existing.alias}" exists in Mautic but is not published or '
                    "not available for segments, so rules cannot use it and it cannot be "
                    "created again: publish it and enable 'Available for segments' in Mautic",
                )
            )
        elif existing is not None:
            problems.append(
                Problem(
                    ("name",),
                    f'contact field "{existing.alias}" already exists in Mautic (contact '
                    "fields belong to the whole instance); it is never created twice",
                )
            )
        if existing is None:
            self.world.create_field(declared, alias)
        return problems

    def _write_segment(self, index: int, change: Change, segment: Segment) -> list[Problem]:
        world = self.world
        before = change.before
        ident = before.id if before is not None else world.new_id()
        problems, refs, uses = self._translate(segment)
        problems += self._options(segment, ident, before is not None)
        cycle = [(path, name) for path, name, target in uses if target == ident]
        cycle += [
            (path, name)
            for path, name, target in uses
            if target != ident and world.reaches(frozenset({target}), ident)
        ]
        for path, name in cycle:
            problems.append(
                Problem(
                    path,
                    f'segment "{segment.name}": membership rule on "{name}" makes a circular '
                    "reference (that segment's filters lead back to this one), which Mautic "
                    "refuses",
                )
            )
        self._uses += [_Use(index, path, name, target) for path, name, target in uses]
        published = segment.options.get("isPublished")
        alias = segment.options.get("alias")
        if before is None:
            world.add(
                _Seg(
                    ident,
                    segment.name,
                    published is not False,
                    alias if isinstance(alias, str) else world.generated_alias(segment.name),
                    refs,
                    True,
                )
            )
        else:
            found = world.segments.get(ident)
            if found is not None:
                if found.name.casefold() != segment.name.casefold():
                    self._renames.append((index, ident, found.name))  # rules compare ignoring case
                if found.name != segment.name:
                    world.rename(ident, segment.name)
                if isinstance(published, bool):
                    found.published = published
                if isinstance(alias, str):
                    world.give_alias(ident, alias)
                found.refs = refs
        return problems

    def _options(self, segment: Segment, ident: str, existing: bool) -> list[Problem]:
        world = self.world
        problems: list[Problem] = []
        alias = segment.options.get("alias")
        if isinstance(alias, str):
            holder = world.taken_alias(alias, ident)
            if holder is not None:
                problems.append(
                    Problem(
                        ("options", "alias"),
                        f'alias "{alias}" belongs to published segment "{holder.name}" '
                        f"(#{holder.id}); Mautic refuses an alias another published segment "
                        "has (G8)",
                    )
                )
        found = world.segments.get(ident) if existing else None
        if segment.options.get("isPublished") is False and found is not None and found.published:
            users = world.users(ident)
            if users:
                names = ", ".join(f'"{s.name}" (#{s.id})' for s in users)
                problems.append(
                    Problem(
                        ("options", "isPublished"),
                        f'segment "{segment.name}" is used by the membership filter of {names}; '
                        "Mautic refuses to unpublish a segment in use (422): remove those "
                        "rules first",
                    )
                )
        return problems

    # -- rules ------------------------------------------------------------------------------

    def _translate(
        self, segment: Segment
    ) -> tuple[list[Problem], frozenset[str], list[tuple[Path, str, str]]]:
        """Problems writing the rules, the segment ids the filters name, and each membership
        rule's (path, name, id)."""
        fields, names = self.world.index, self.world.names
        problems: list[Problem] = []
        try:
            mapping.to_filters(segment.match, segment.rules, fields, names)
        except Untranslatable as exc:
            problems = list(self._locate(segment, fields, names)) or [
                Problem(("rules",), f'segment "{segment.name}" cannot be written: {exc.reason}')
            ]
        uses: list[tuple[Path, str, str]] = []
        refs: set[str] = set()
        for path, rule in walk(segment.rules):
            if isinstance(rule, MembershipRule):
                ident = names.ids.get(rule.list_.casefold())
                if ident is None:
                    continue  # reported by _locate
                uses.append(((*path, "list"), rule.list_, ident))
                refs.add(ident)
                problems += self._published(segment, (*path, "list"), rule.list_, ident)
            elif isinstance(rule, NativeRule):
                found, more = self._native(segment, path, rule)
                problems += found
                refs |= more
                uses += [
                    ((*path, "native"), self.world.segments[i].name, i)
                    for i in sorted(more)
                    if i in self.world.segments  # an unknown id is reported already
                ]
        return problems, frozenset(refs), uses

    def _published(self, segment: Segment, path: Path, name: str, ident: str) -> list[Problem]:
        target = self.world.segments.get(ident)
        if target is None or target.published:
            return []
        return [
            Problem(
                path,
                f'segment "{segment.name}": membership rule on "{name}": that segment is not '
                "published, and Mautic accepts only published segments in a membership filter "
                "(G14)",
            )
        ]

    def _locate(self, segment: Segment, fields: FieldIndex, names: Segments) -> Iterator[Problem]:
        """One problem per rule that cannot be written, at that rule."""
        for path, rule in walk(segment.rules):
            if isinstance(rule, Group):
                continue
            lowered = mapping.lower(rule, fields)
            leaves = lowered.rules if isinstance(lowered, Group) else (lowered,)
            reasons: dict[tuple[str | None, str], None] = {}
            for leaf in leaves:
                try:
                    to_filter(leaf, fields, names)
                except Untranslatable as exc:
                    reason = exc.reason
                    if isinstance(leaf, MembershipRule) and exc.key == "list":
                        reason = self._missing(leaf.list_, segment.name)
                    reasons[(exc.key, reason)] = None
            for key, reason in reasons:
                where = (*path, key) if key is not None else path
                yield Problem(
                    where,
                    f'segment "{segment.name}": rule {render(rule)} cannot be written to '
                    f"Mautic: {self._typed(rule, fields)}{reason}",
                )

    def _missing(self, name: str, own: str) -> str:
        """Why a membership rule's segment name does not resolve at this point."""
        if name.casefold() == own.casefold():
            return (
                "a segment cannot name itself in a membership rule (Mautic refuses circular "
                "references)"
            )
        count = self.world.holders(name)
        if count > 1:
            return (
                f'{count} segments of the target are named "{name}" (ignoring case); a '
                "membership rule must name exactly one"
            )
        if self._pending.get(name.casefold(), 0) > 0:
            return (
                f'segment "{name}" gets that name (is created or renamed) by this plan only '
                "after this change (updates run before creates, each kind in list and name "
                "order, and segments naming each other have no order): make that change "
                "first, then add this rule"
            )
        return f'no segment named "{name}" exists in the target'

    def _typed(self, rule: Rule, fields: FieldIndex) -> str:
        """``field "x" is a Mautic datetime field (declared date): `` where the live
        field's Mautic type is not the canonical type it is declared as (any other
        declared type is refused by the core's type check of the same plan)."""
        if not isinstance(rule, FieldRule) or rule.field.casefold() in STANDARD_FIELDS:
            return ""
        try:
            target = resolve(rule.field, fields)
        except Untranslatable:
            return ""
        if target is None:
            return ""
        canonical = ops.CANONICAL_TYPES.get(target.type, "text")
        if canonical == target.type:
            return ""
        return f'field "{rule.field}" is a Mautic {target.type} field (declared {canonical}): '

    def _native(
        self, segment: Segment, path: Path, rule: NativeRule
    ) -> tuple[list[Problem], frozenset[str]]:
        """What the live state says of a ``native:`` filter, and the segment ids it names."""
        data = rule.native
        name = str(data.get("field") or "")
        operator = str(data.get("operator") or "")
        props = data.get("properties")
        value = props.get("filter") if isinstance(props, dict) else None
        where = (*path, "native")
        prefix = f'segment "{segment.name}": native filter on "{name}"'
        if str(data.get("object") or "lead") not in ("lead", "behaviors"):
            return [], frozenset()  # company fields are not read: not checked
        if operator in ops.HIDDEN_OPS:
            return [], frozenset()  # the translation reports it
        if name == "leadlist":
            idents = frozenset(
                str(v) for v in (value if isinstance(value, list) else [value]) if v is not None
            )
            problems = []
            for ident in sorted(idents):
                target = self.world.segments.get(ident)
                if target is None:
                    problems.append(
                        Problem(
                            where,
                            f"{prefix} names segment id {ident}, which "
                            "does not exist at this point",
                        )
                    )
                elif not target.published:
                    problems.append(
                        Problem(
                            where,
                            f'{prefix} names segment "{target.name}" '
                            f"(#{ident}), which is not published (G14)",
                        )
                    )
            return problems, idents
        known = self.world.field_by_alias(name)
        if known is None:
            if name in ops.SPECIAL_FILTERS:
                return [], frozenset()
            return [
                Problem(
                    where,
                    f"{prefix}: Mautic has no contact field available for segments and no "
                    "documented filter with that name, so it would refuse the filter",
                )
            ], frozenset()
        if not known.usable:
            return [
                Problem(
                    where,
                    f"{prefix}: that contact field is not published or not available for "
                    "segments, so Mautic would refuse the filter",
                )
            ], frozenset()
        if operator not in ops.allowed(known.type):
            return [
                Problem(
                    where,
                    f"{prefix}: operator {operator!r} is not allowed on its Mautic type "
                    f"{known.type}",
                )
            ], frozenset()
        if known.type in ops.CHOICE_TYPES and operator in ("=", "!=", "in", "!in"):
            values = value if isinstance(value, list) else [value]
            bad = [str(v) for v in values if str(v) not in known.options]
            if bad:
                return [
                    Problem(
                        where,
                        f"{prefix}: {', '.join(map(repr, bad))} is not an option of that "
                        f"{known.type} field (its options: {', '.join(known.options) or 'none'})",
                    )
                ], frozenset()
        return [], frozenset()

    # -- after the whole plan ---------------------------------------------------------------

    def _after_plan(self, plan: Plan, changed: set[str]) -> None:
        world = self.world
        users_of = world.all_users()
        for use in self._uses:
            found = world.segments.get(use.ident)
            if found is None:
                message = (
                    f'membership rule on "{use.name}": that segment is deleted later in this '
                    "plan, which would leave the filter naming a segment that no longer exists"
                )
            elif found.name.casefold() != use.name.casefold() and use.path[-1:] != ("native",):
                message = (
                    f'membership rule on "{use.name}": that segment is renamed "{found.name}" '
                    "later in this plan, so the rule would read differently afterwards; "
                    "rename first, then name it by its new name"
                )
            else:
                continue
            self._add(use.index, Problem(use.path, message))
        for index, ident, name in self._deletes:
            users = users_of.get(ident, [])
            if users:
                names = ", ".join(f'"{s.name}" (#{s.id})' for s in users)
                self._add(
                    index,
                    Problem(
                        (),
                        f'segment "{name}" (#{ident}) is named by the membership filter of '
                        f"{names}, which remain: deleting it would leave those filters naming "
                        "nothing (Mautic does not refuse it); remove those rules first",
                    ),
                )
        unmanaged = {u.segment_id for u in plan.unmanaged if u.target == self.target}
        for index, ident, old in self._renames:
            readers = [
                s
                for s in users_of.get(ident, [])
                if s.scoped and s.id not in changed and s.id not in unmanaged
            ]
            if readers:
                new = world.segments[ident].name if ident in world.segments else "?"
                names = ", ".join(f'"{s.name}" (#{s.id})' for s in readers)
                self._add(
                    index,
                    Problem(
                        ("name",),
                        f'renaming segment "{old}" to "{new}" changes how the membership rule '
                        f"of {names} reads (it names the segment by id, and reads back by "
                        f'name): declare those rules as {{list: "{new}"}} in the same plan, or '
                        "leave the name",
                    ),
                )
