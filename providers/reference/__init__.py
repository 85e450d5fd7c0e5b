"""The reference backend: a real segment store in one SQLite file, no account needed.

Storage (``schema.py`` holds the DDL and its migrations): three tables, ``lists``,
``fields`` (unique per list, case-insensitively) and ``segments`` (unique per list; ``rules``
is the full rule tree as JSON, exactly as declared, so every rule the YAML can say comes
back unchanged; ``options`` is JSON; ``revision`` counts updates). ``store.py`` is the only
module that speaks SQL; ``columns.py`` writes the JSON columns and ``decoding.py`` reads
rows back into the domain model (the file is untrusted input); this one carries out the
provider contract.

Guarantees: foreign keys on; each applied change is one ``BEGIN IMMEDIATE`` transaction,
so it is stored whole or not at all (a segment is never without its rules, a rename never
half done), and two racing runs serialise on the write lock (the second waits up to the
busy timeout). Every update or delete first checks that the stored segment still is the one
the plan saw (optimistic concurrency): the loser of a race gets ``ConflictError``, never a
half-written or duplicated segment. Durability (WAL journal, ``synchronous=NORMAL``; see
``store.py``): a change reported as applied survives the process crashing; a power loss or
an operating-system crash may lose the most recent changes, never a part of one, and the
next plan shows them again.

The store is created by the first ``apply`` that writes, with its directory; ``fetch``
(``plan``, ``drift``, ``import``) never creates anything: a missing file reads as an empty
target, with a note saying where ``apply`` will create it, so a mistyped ``path:`` shows.

The store keeps no subscribers. The optional ``subscribers:`` setting names a sample file
standing for the members of its lists; then ``fetch`` gives every segment its exact
``member_count`` (``counts.py``, imported only when the setting is given).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from pydantic_core import to_jsonable_python

from reconciler.errors import ConflictError, NotFound, ProviderError
from reconciler.model import (
    BEHAVIOUR_EVENTS,
    FIELD_TYPES,
    MEMBERSHIP_OPERATORS,
    OPERATORS_BY_TYPE,
    JSONValue,
    LiveSegment,
    LiveState,
    Segment,
)
from reconciler.plan import Action, Change
from reconciler.provider import (
    Capabilities,
    Provider,
    ProviderContext,
    Scope,
    paused_gc,
    settings_as,
)
from reconciler.rules import segment_key

from .columns import field_options, segment_columns
from .decoding import decode_segment, decode_state
from .store import ListRow, SegmentRow, Store, Tx

if TYPE_CHECKING:
    from .counts import MemberCounts

__all__ = ["ReferenceProvider", "ReferenceSettings"]

MEMORY = ":memory:"


def utc_today() -> date:
    """The day CSV and JSON Lines subscribers are evaluated against (a tests file gives
    its own ``now``)."""
    return datetime.now(UTC).date()


class ReferenceSettings(BaseModel):
    """Target settings: ``path`` of the SQLite file and, optionally, ``subscribers``: a
    sample file (tests YAML, CSV or JSON Lines) standing for the members of the store's
    lists. Both are relative to the root config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: StrictStr = Field(default=".reconciler/state.db", min_length=1)
    subscribers: StrictStr | None = Field(default=None, min_length=1)

    @field_validator("path", "subscribers")
    @classmethod
    def _expandable(cls, value: str | None) -> str | None:
        try:
            Path(value or "").expanduser()
        except RuntimeError:  # "~name" of a user that does not exist here
            raise ValueError("the home directory this path starts from is unknown") from None
        return value

    @field_validator("subscribers")
    @classmethod
    def _sample_file(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from reconciler.sample_files import SUFFIXES  # only when given: it brings the evaluator

        if Path(value).suffix.lower() not in SUFFIXES:
            *most, last = sorted(SUFFIXES)
            raise ValueError(
                f"the subscribers file must be named {', '.join(most)} or {last} (a tests "
                "file, CSV or JSON Lines, as plan --sample reads)"
            )
        return value


class ReferenceProvider(Provider):
    """Lists, fields and segments in a local SQLite file (``:memory:`` for tests)."""

    key: ClassVar[str] = "reference"
    settings_model: ClassVar[type[BaseModel]] = ReferenceSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        shape="tree",
        operators=dict(OPERATORS_BY_TYPE),
        events=frozenset(BEHAVIOUR_EVENTS),
        within=True,
        membership=frozenset(MEMBERSHIP_OPERATORS),
        native=True,
        changes=frozenset(
            {
                Action.CREATE_LIST,
                Action.CREATE_FIELD,
                Action.CREATE_SEGMENT,
                Action.UPDATE_SEGMENT,
                Action.DELETE_SEGMENT,
            }
        ),
        field_types=frozenset(FIELD_TYPES),
    )

    @classmethod
    def store_identity(cls, settings: BaseModel, base_dir: Path) -> str | None:
        """The SQLite file, symbolic links resolved (``:memory:`` is a new store each time)."""
        path = settings_as(settings, ReferenceSettings).path
        if path == MEMORY:
            return None
        return os.path.realpath(_resolve(path, base_dir))

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        settings = settings_as(settings, ReferenceSettings)
        super().__init__(target, settings, context)
        self.location = _resolve(settings.path, context.base_dir)
        self._store: Store | None = None
        self._open_lock = threading.Lock()
        self._counts: MemberCounts | None = None
        self._written: dict[int, tuple[Segment, tuple[str, str]]] = {}
        """Per declared segment written (by id, the segment kept): its columns."""
        self.today: Callable[[], date] = utc_today
        """The day CSV and JSON Lines subscribers are evaluated against (tests replace it)."""

    # -- the provider contract -------------------------------------------------------

    def fetch(self, scope: Scope) -> LiveState:
        """The lists in scope; of a list named in ``scope.segments`` only the segments
        asked for (they are left out of the SQL rows before any JSON is decoded)."""
        counts = self._member_counts()
        store = self._existing_store()
        if store is None:
            self.context.progress(self._missing_note())
            return LiveState()
        names = None if scope.lists is None else sorted(scope.lists)
        with paused_gc(), store.read() as tx:
            lists, fields = tx.lists(names), tx.fields(names)
            list_names = {row.id: row.name for row in lists}
            segments: Iterable[SegmentRow] = tx.iter_segments(names)
            if scope.segments:
                segments = (
                    row
                    for row in segments
                    if scope.wants_segment(list_names[row.list_id], row.name, str(row.id))
                )
            # Decoded while read, list by list: the rows' texts never all sit in memory.
            state = decode_state(
                self.target, lists, fields, segments, self.location, scope, self._written_columns
            )
            holds = state.lists
            if counts is not None and names is not None:  # the file may name any stored list
                every = tx.lists(None), tx.fields(None), ()
                holds = decode_state(self.target, *every, self.location).lists
        self._written.clear()  # they were for this read: the check after the apply wrote them
        if counts is not None:
            state = counts.counted(state, holds, self.today(), self.context)
        count = sum(len(live_list.segments) for live_list in state.lists)
        self.context.progress(
            f"{self.target}: read {len(lists)} lists and {count} segments from {self.location}"
        )
        return state

    def apply(self, change: Change) -> None:
        handler = self._handlers.get(change.action)
        if handler is None:
            raise ProviderError(f"the reference backend cannot {change.action.value}")
        with self._created_store().write() as tx:
            handler(self, tx, change)

    def close(self) -> None:
        self._written.clear()
        with self._open_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- one handler per change kind, each inside the change's transaction ------------

    def _create_list(self, tx: Tx, change: Change) -> None:
        existing = tx.find_list(change.list)
        if existing is not None:
            raise ConflictError(
                f"list {change.list!r} already exists in target {self.target!r} "
                f"(id {existing.id}); run plan again"
            )
        tx.insert_list(change.list)

    def _create_field(self, tx: Tx, change: Change) -> None:
        field = change.declared_field
        list_row = self._list(tx, change.list)
        existing = tx.find_field(list_row.id, field.name)
        if existing is not None:
            raise ConflictError(
                f"field {field.name!r} already exists in list {change.list!r} "
                f"as {existing.name!r}; run plan again"
            )
        tx.insert_field(list_row.id, field.name, field.type, field_options(field))

    def _create_segment(self, tx: Tx, change: Change) -> None:
        after = change.declared_segment
        columns = self._columns(after)
        if tx.insert_segment_into(change.list, after.name, after.match, *columns):
            return  # one statement: the common case reads nothing first
        list_row = self._list(tx, change.list)
        existing = tx.find_segment(list_row.id, after.name)
        if existing is not None:
            raise ConflictError(
                f"segment {after.name!r} already exists in list {change.list!r} "
                f"(id {existing.id}); run plan again"
            )
        raise ProviderError(f"segment {after.name!r} could not be stored in list {change.list!r}")

    def _update_segment(self, tx: Tx, change: Change) -> None:
        before = change.live_segment
        after = change.declared_segment
        row = self._unchanged_row(tx, change.list, before)
        clash = tx.find_segment(row.list_id, after.name)
        if clash is not None and clash.id != row.id:
            raise ConflictError(
                f"cannot rename segment {before.name!r} to {after.name!r} in list "
                f"{change.list!r}: segment id {clash.id} already has that name"
            )
        tx.update_segment(row.id, after.name, after.match, *self._columns(after))

    def _delete_segment(self, tx: Tx, change: Change) -> None:
        before = change.live_segment
        row = self._unchanged_row(tx, change.list, before)
        tx.delete_segment(row.id)

    _handlers: ClassVar[dict[Action, Callable[[ReferenceProvider, Tx, Change], None]]] = {
        Action.CREATE_LIST: _create_list,
        Action.CREATE_FIELD: _create_field,
        Action.CREATE_SEGMENT: _create_segment,
        Action.UPDATE_SEGMENT: _update_segment,
        Action.DELETE_SEGMENT: _delete_segment,
    }

    # -- helpers ---------------------------------------------------------------------

    def _columns(self, segment: Segment) -> tuple[str, str]:
        """The columns ``segment`` is written as, remembered for the convergence check's
        read (``fetch`` compares what it reads with them; ``decoding.py``). Called inside a
        write transaction: it takes no lock that ``close`` holds while it waits for one."""
        columns = segment_columns(segment)
        # Kept with the segment itself, so its id names it for as long as the entry lives.
        self._written[id(segment)] = (segment, columns)  # one dict write: atomic
        return columns

    def _written_columns(self, segment: Segment) -> tuple[str, str]:
        """``segment``'s columns: as apply wrote them, else computed."""
        known = self._written.get(id(segment))
        return known[1] if known is not None and known[0] is segment else segment_columns(segment)

    def _existing_store(self) -> Store | None:
        """The store, opened (and migrated) on first use; ``None`` while its file does not
        exist, which is then left so: reading never creates a file or a directory."""
        with self._open_lock:
            if self._store is None:
                if self.location != MEMORY and not os.path.exists(self.location):
                    return None
                self._store = Store.open(self.location, create=self.location == MEMORY)
            return self._store

    def _created_store(self) -> Store:
        """The store, created with its directory if it does not exist yet (for writing)."""
        with self._open_lock:
            if self._store is None:
                if self.location != MEMORY:
                    _make_parent(Path(self.location))
                self._store = Store.open(self.location, create=True)
            return self._store

    def _member_counts(self) -> MemberCounts | None:
        """The ``subscribers`` file's counts (``None`` without the setting: then nothing
        of the evaluator is imported); its file must exist."""
        setting = settings_as(self.settings, ReferenceSettings).subscribers
        if setting is None:
            return None
        if self._counts is None:
            from .counts import MemberCounts

            path = Path(_resolve(setting, self.context.base_dir))
            self._counts = MemberCounts(self.target, setting, path)
        self._counts.check()
        return self._counts

    def _missing_note(self) -> str:
        configured = settings_as(self.settings, ReferenceSettings).path
        at = "" if configured == self.location else f" (at {self.location})"
        return (
            f"{self.target}: the reference store {configured!r} does not exist yet{at}; "
            f"reading it as empty, and apply will create it there"
        )

    def _list(self, tx: Tx, name: str) -> ListRow:
        row = tx.find_list(name)
        if row is None:
            raise NotFound(
                f"list {name!r} does not exist in target {self.target!r} ({self.location}); "
                f"run plan again to create it"
            )
        return row

    def _unchanged_row(self, tx: Tx, list_name: str, before: LiveSegment) -> SegmentRow:
        """The stored segment the plan saw, or ``NotFound``/``ConflictError`` if it moved."""
        list_row = self._list(tx, list_name)
        row = tx.get_segment(_segment_id(before.id))
        if row is None or row.list_id != list_row.id:
            raise NotFound(
                f"segment {before.name!r} (id {before.id}) no longer exists in list "
                f"{list_name!r}; run plan again"
            )
        stored = decode_segment(row, list_name, self.location)
        if not same_segment(stored, before):
            raise ConflictError(
                f"segment {before.name!r} in list {list_name!r} changed since the plan was "
                f"made; run plan again"
            )
        return row


def same_segment(stored: LiveSegment, before: LiveSegment) -> bool:
    """Whether the stored segment still is the one the plan saw.

    Rules compare in normal form (``rules.segment_key``), so a plan that carries its live
    segments normalised, or through a saved-plan file, is not mistaken for a stale one.
    """
    return (
        stored.name == before.name
        and segment_key(stored.match, stored.rules) == segment_key(before.match, before.rules)
        and _canonical(stored.options) == _canonical(before.options)
    )


def _canonical(options: dict[str, JSONValue]) -> str:
    return json.dumps(options, sort_keys=True, default=to_jsonable_python)


def _segment_id(live_id: str) -> int:
    try:
        return int(live_id)
    except ValueError:
        raise NotFound(f"{live_id!r} is not a reference segment id") from None


def _resolve(path: str, base_dir: Path) -> str:
    if path == MEMORY:
        return path
    resolved = Path(path).expanduser()
    return str(resolved if resolved.is_absolute() else base_dir / resolved)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProviderError(f"cannot create the directory for {path}: {exc}") from exc
