"""Stored rows -> ``LiveState``, treating the store as untrusted input.

The store is a file anybody can edit. Each JSON column is parsed on its own, so text in
one row can never change the shape of another (the rows are never pasted into one JSON
document); each row is then validated by the domain models, with identical rules shared
(``sharing.py``). Whatever does not fit (a column that is not JSON text, nesting too deep,
a value the models refuse) is one ``ProviderError`` naming the row (its name quoted and cut
short) and the first problem, never a traceback.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler.errors import ProviderError
from reconciler.model import JSONValue, LiveField, LiveList, LiveSegment, LiveState, Segment
from reconciler.provider import Scope, paused_gc
from reconciler.sharing import SharedRules

from .columns import segment_columns
from .store import FieldRow, ListRow, SegmentRow

__all__ = ["decode_segment", "decode_state"]

_M = TypeVar("_M", bound=BaseModel)

SHOWN_CHARS = 60
"""Longest name or detail a message quotes from the store."""
SHOWN_PARTS = 8
"""Most parts of a validation error's location a message shows."""
SHOWN_MESSAGE = 300
"""Longest validation message shown (the operators an ``op`` may be fit in it)."""


class _Unreadable(Exception):
    """A column that is not JSON text; ``str(self)`` says which and why."""


def _shown(text: object) -> str:
    """``text`` quoted for a message, cut short: names in the store are untrusted."""
    shown = repr(text)
    return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 4] + "...'"


def _json_column(text: object, column: str, empty: str) -> JSONValue:
    if text == empty:  # the common case, without the parser
        return {} if empty == "{}" else []
    if not isinstance(text, str):
        raise _Unreadable(f"{column} holds {type(text).__name__} data, not JSON text")
    try:
        return json.loads(text)
    except RecursionError:
        raise _Unreadable(f"{column} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
        raise _Unreadable(f"{column} is not valid JSON ({str(exc)[:SHOWN_CHARS]})") from None


def _printable(text: str, limit: int) -> str:
    """``text`` as is when it is short and printable, else quoted and cut: a location or a
    message can carry keys and values from the store."""
    shown = text if text.isprintable() else repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    """How many problems (``"2 problems; first"``), and where the first is and what."""
    count = exc.error_count()
    first = exc.errors(include_url=False, include_input=False)[0]
    parts = [_printable(str(part), SHOWN_CHARS) for part in first["loc"]]
    where = ".".join(parts[:SHOWN_PARTS]) + (".…" if len(parts) > SHOWN_PARTS else "")
    problems = f"{count} problem{'s' if count != 1 else ''}; first"
    return problems, f"{where or 'the row'}: {_printable(first['msg'], SHOWN_MESSAGE)}"


class _Decoder:
    """Builds models row by row; every failure names its row."""

    def __init__(
        self, location: str, columns: Callable[[Segment], tuple[str, str]] = segment_columns
    ) -> None:
        self.location = location
        self.shared = SharedRules()
        self.columns = columns

    def fail(self, label: str, problems: str, detail: str) -> ProviderError:
        return ProviderError(
            f"{self.location} holds data this version of the reference backend cannot read "
            f"({problems} in {label}: {detail})"
        )

    def build(self, model: type[_M], label: Callable[[], str], data: dict[str, Any]) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems, detail = _first_problem(exc)
            raise self.fail(label(), problems, detail) from None

    def segment(
        self, row: SegmentRow, list_name: object, declared: Segment | None = None
    ) -> LiveSegment:
        if declared is not None and _stored_as(row, declared, self.columns):
            # Exactly the columns applying ``declared`` writes: decoding them gives its own
            # rules and options (``columns.py`` writes what the models read back), so they
            # are shared rather than parsed and validated again.
            return LiveSegment.stored_as(declared, str(row.id))

        def label() -> str:
            return f"segment {_shown(row.name)} (id {row.id}) of list {_shown(list_name)}"

        try:
            rules = self.shared.rules(_json_column(row.rules, "rules", "[]"))
            options = _json_column(row.options, "options", "{}")
        except _Unreadable as exc:
            raise self.fail(label(), "1 problem; first", str(exc)) from None
        data = {"id": str(row.id), "name": row.name, "match": row.match}
        return self.build(LiveSegment, label, {**data, "rules": rules, "options": options})

    def field(self, row: FieldRow, list_name: object) -> LiveField:
        def label() -> str:
            return f"field {_shown(row.name)} (id {row.id}) of list {_shown(list_name)}"

        try:
            options = _json_column(row.options, "options", "[]")
        except _Unreadable as exc:
            raise self.fail(label(), "1 problem; first", str(exc)) from None
        data = {"id": str(row.id), "name": row.name, "type": row.type, "options": options}
        return self.build(LiveField, label, data)

    def live_list(
        self, target: str, row: ListRow, fields: list[LiveField], segments: list[LiveSegment]
    ) -> LiveList:
        def label() -> str:
            return f"list {_shown(row.name)} (id {row.id})"

        data = {"target": target, "name": row.name, "id": str(row.id)}
        return self.build(LiveList, label, {**data, "fields": fields, "segments": segments})


def _stored_as(
    row: SegmentRow, declared: Segment, columns: Callable[[Segment], tuple[str, str]]
) -> bool:
    """Whether ``row`` holds exactly the name, match and ``columns`` ``declared`` is stored
    as (``type`` checks first: the store is untrusted, and only text can equal text)."""
    if type(row.name) is not str or row.name != declared.name or row.match != declared.match:
        return False
    if type(row.id) is not int or type(row.rules) is not str or type(row.options) is not str:
        return False
    return (row.rules, row.options) == columns(declared)


def decode_segment(row: SegmentRow, list_name: str, location: str) -> LiveSegment:
    """One stored segment, exactly as ``decode_state`` gives it."""
    return _Decoder(location).segment(row, list_name)


def decode_state(
    target: str,
    lists: Sequence[ListRow],
    fields: Sequence[FieldRow],
    segments: Iterable[SegmentRow],
    location: str,
    scope: Scope | None = None,
    columns: Callable[[Segment], tuple[str, str]] = segment_columns,
) -> LiveState:
    """The ``LiveState`` of these rows (fields and segments of other lists are left out).

    ``segments`` is read once, in any order; each row is decoded as it comes, so a stream
    of rows (``Tx.iter_segments``) is never held whole. A row stored exactly as the
    segment of that name which ``scope`` expects is not decoded (``Scope.expected``): it
    holds the ``columns`` that segment is written as."""
    fields_by_list: defaultdict[int, list[FieldRow]] = defaultdict(list)
    for field in fields:
        fields_by_list[field.list_id].append(field)
    names = {row.id: row.name for row in lists}

    decoder = _Decoder(location, columns)
    with paused_gc():
        decoded: defaultdict[int, list[LiveSegment]] = defaultdict(list)
        for segment in segments:
            if segment.list_id in names:
                list_name = names[segment.list_id]
                declared = scope.expected_segment(list_name, segment.name) if scope else None
                decoded[segment.list_id].append(decoder.segment(segment, list_name, declared))
        built = [
            decoder.live_list(
                target,
                row,
                [decoder.field(field, row.name) for field in fields_by_list[row.id]],
                decoded[row.id],
            )
            for row in lists
        ]
        return LiveState(lists=tuple(built))
