"""The reference backend: a real segment store in one SQLite file, no account needed.

Storage (``schema.py`` holds the DDL and its migrations): three tables, ``lists``,
``fields`` (unique per list, case-insensitively) and ``segments`` (unique per list; ``rules``
is the full rule tree as JSON, exactly as declared, so every rule the YAML can say comes
back unchanged; ``options`` is JSON; ``revision`` counts updates). ``store.py`` is the only
module that speaks SQL; this one translates between those rows and the domain model.

Guarantees: WAL journal and foreign keys on; each ``apply`` is one ``BEGIN IMMEDIATE``
transaction, so two racing runs serialise on the write lock (the second waits up to the
busy timeout), and every update or delete first checks that the stored segment still is the
one the plan saw (optimistic concurrency): the loser of a race gets ``ConflictError``, never
a half-written or duplicated segment.

``fetch`` reads each table with one query and builds the whole ``LiveState`` in a single
pydantic ``validate_json`` call over a document assembled from the stored JSON text, which
keeps a fetch of 10,000 segments well under a second.
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import to_jsonable_python

from reconciler.errors import ConflictError, NotFound, ProviderError
from reconciler.model import (
    BEHAVIOUR_EVENTS,
    FIELD_TYPES,
    MEMBERSHIP_OPERATORS,
    OPERATORS_BY_TYPE,
    FieldDef,
    JSONValue,
    LiveSegment,
    LiveState,
    Rule,
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

from .store import FieldRow, ListRow, SegmentRow, Store, Tx

__all__ = ["ReferenceProvider", "ReferenceSettings"]

MEMORY = ":memory:"

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


class ReferenceSettings(BaseModel):
    """Target settings: ``path`` of the SQLite file, relative to the root config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: StrictStr = Field(default=".reconciler/state.db", min_length=1)

    @field_validator("path")
    @classmethod
    def _expandable(cls, value: str) -> str:
        try:
            Path(value).expanduser()
        except RuntimeError:  # "~name" of a user that does not exist here
            raise ValueError("the home directory this path starts from is unknown") from None
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

    # -- the provider contract -------------------------------------------------------

    def fetch(self, scope: Scope) -> LiveState:
        names = None if scope.lists is None else sorted(scope.lists)
        with paused_gc(), self._connection().read() as tx:
            lists, fields, segments = tx.lists(names), tx.fields(names), tx.segments(names)
            document = _state_document(self.target, lists, fields, segments)
        state = _decode(LiveState, document, self.location)
        self.context.progress(
            f"{self.target}: read {len(lists)} lists and {len(segments)} segments "
            f"from {self.location}"
        )
        return state

    def apply(self, change: Change) -> None:
        handler = self._handlers.get(change.action)
        if handler is None:
            raise ProviderError(f"the reference backend cannot {change.action.value}")
        with self._connection().write() as tx:
            handler(self, tx, change)

    def close(self) -> None:
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
        tx.insert_field(list_row.id, field.name, field.type, _field_options(field))

    def _create_segment(self, tx: Tx, change: Change) -> None:
        after = change.declared_segment
        list_row = self._list(tx, change.list)
        existing = tx.find_segment(list_row.id, after.name)
        if existing is not None:
            raise ConflictError(
                f"segment {after.name!r} already exists in list {change.list!r} "
                f"(id {existing.id}); run plan again"
            )
        tx.insert_segment(list_row.id, after.name, after.match, *_segment_columns(after))

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
        tx.update_segment(row.id, after.name, after.match, *_segment_columns(after))

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

    def _connection(self) -> Store:
        """The store, opened (and migrated) on first use, so ``validate`` never opens it."""
        with self._open_lock:
            if self._store is None:
                if self.location != MEMORY:
                    _make_parent(Path(self.location))
                self._store = Store.open(self.location)
            return self._store

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
        stored = _decode(LiveSegment, _segment_document(row), self.location)
        if not _same_segment(stored, before):
            raise ConflictError(
                f"segment {before.name!r} in list {list_name!r} changed since the plan was "
                f"made; run plan again"
            )
        return row


# -- rows <-> models ---------------------------------------------------------------------


def _dumps(data: object) -> str:
    """JSON text for a column: compact, keys in their given order, NaN/Infinity kept."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=to_jsonable_python)


def _rules_json(rules: Iterable[Rule]) -> str:
    return _dumps([rule.model_dump(by_alias=True, exclude_none=True) for rule in rules])


def _segment_columns(segment: Segment) -> tuple[str, str]:
    """The ``rules`` and ``options`` columns of a segment, exactly as declared."""
    return _rules_json(segment.rules), _dumps(segment.options)


def _field_options(field: FieldDef) -> str:
    return _dumps(list(field.options))


def _same_segment(stored: LiveSegment, before: LiveSegment) -> bool:
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


def _segment_document(row: SegmentRow) -> str:
    return (
        f'{{"id":"{row.id}","name":{_dumps(row.name)},"match":{_dumps(row.match)},'
        f'"rules":{row.rules},"options":{row.options}}}'
    )


def _field_document(row: FieldRow) -> str:
    return (
        f'{{"id":"{row.id}","name":{_dumps(row.name)},"type":{_dumps(row.type)},'
        f'"options":{row.options}}}'
    )


def _state_document(
    target: str,
    lists: Sequence[ListRow],
    fields: Sequence[FieldRow],
    segments: Sequence[SegmentRow],
) -> str:
    """The ``LiveState`` as JSON text, built from the stored JSON without parsing it."""
    fields_by_list: defaultdict[int, list[str]] = defaultdict(list)
    for field in fields:
        fields_by_list[field.list_id].append(_field_document(field))
    segments_by_list: defaultdict[int, list[str]] = defaultdict(list)
    for segment in segments:
        segments_by_list[segment.list_id].append(_segment_document(segment))
    target_json = _dumps(target)
    documents = [
        f'{{"target":{target_json},"name":{_dumps(row.name)},"id":"{row.id}",'
        f'"fields":[{",".join(fields_by_list[row.id])}],'
        f'"segments":[{",".join(segments_by_list[row.id])}]}}'
        for row in lists
    ]
    return f'{{"lists":[{",".join(documents)}]}}'


def _decode(model: type[_M], document: str, location: str) -> _M:
    """Validate stored data into models; data this code cannot read is a ProviderError."""
    try:
        with paused_gc():
            return model.model_validate_json(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ProviderError(
            f"{location} holds data this version of the reference backend cannot read "
            f"({exc.error_count()} problems; first at {where}: {first['msg']})"
        ) from exc


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
