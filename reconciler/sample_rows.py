"""Rows of a CSV or JSON Lines sample file, as subscriber documents. Pure.

Each row becomes the document a tests file's ``subscribers:`` entry would be, with the
line it starts on; what cannot be read is reported through ``report(line, message)`` and
the row left out. :mod:`reconciler.sample_files` checks the documents.

- JSON Lines: one JSON object per line (blank lines skipped); ``NaN`` and ``Infinity``
  are not numbers, and a key given twice in one object is an error.
- CSV: a header row naming the keys: ``list``, ``target``, ``email``, ``name``,
  ``first_name``, ``last_name``, ``status``, ``date_subscribed``, ``events`` (a cell
  holding a JSON array of ``{campaign, event, on}``), and ``fields.<name>`` and
  ``lists.<name>`` columns for custom field values and the statuses of other lists. An
  empty cell is a missing value; a blank row is skipped. A multiselect cell holds one
  option or a JSON array of options (:func:`option_arrays`, once the list is known).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errormap import did_you_mean
from .model import MailingList
from .sample import SubscriberDoc

__all__ = ["CSV_KEYS", "Report", "Row", "csv_rows", "jsonl_rows", "option_arrays"]

Row = tuple[int, dict[str, Any]]
"""A subscriber document and the line it starts on."""
Report = Callable[[int, str], None]
"""Where a problem goes: its line and message."""

CSV_KEYS = tuple(
    key
    for name, info in SubscriberDoc.model_fields.items()
    if (key := info.alias or name) not in ("fields", "lists")
)
"""The CSV columns besides ``fields.<name>`` and ``lists.<name>``."""
_NESTED = {"fields.": "field", "lists.": "list"}


def jsonl_rows(text: str, report: Report) -> Iterator[Row]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            report(number, f"not a JSON object: {_json_problem(exc)}")
            continue
        if not isinstance(data, dict):
            report(number, "each line is one JSON object (a subscriber)")
            continue
        yield number, data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f'the key "{key}" is given twice')
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_problem(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _json(text: str) -> Any:
    """``text`` as JSON; ``ValueError`` saying why not."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def csv_rows(text: str, report: Report) -> Iterator[Row]:
    lines = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(lines, None)
        columns = _columns(header, report) if header is not None else None
        if columns is None:
            return
        start = lines.line_num + 1
        for cells in lines:
            number, start = start, lines.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(columns):
                report(number, f"{len(cells)} cells, but the header names {len(columns)}")
                continue
            yield number, _csv_doc(columns, cells, number, report)
    except csv.Error as exc:
        report(lines.line_num, f"not CSV: {exc}")


def _columns(header: Sequence[str], report: Report) -> list[str] | None:
    """The header's column names, or None with every problem in it reported."""
    columns = [name.strip() for name in header]
    ok = True
    seen: set[str] = set()
    for name in columns:
        nested = next((prefix for prefix in _NESTED if name.startswith(prefix)), None)
        if nested is not None and not name[len(nested) :].strip():
            report(1, f'column "{name}" names no {_NESTED[nested]}')
            ok = False
        elif nested is None and name not in CSV_KEYS:
            hint = did_you_mean(name, [*CSV_KEYS, "fields.<name>", "lists.<name>"]) or (
                f" (columns: {', '.join(CSV_KEYS)}, fields.<name>, lists.<name>)"
            )
            report(1, f'unknown column "{name}"{hint}')
            ok = False
        if name in seen:
            report(1, f'column "{name}" is given twice')
            ok = False
        seen.add(name)
    return columns if ok else None


def _csv_doc(
    columns: Sequence[str], cells: Sequence[str], line: int, report: Report
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name, cell in zip(columns, cells, strict=False):
        if cell == "":
            continue
        if name.startswith("fields."):
            doc.setdefault("fields", {})[name.removeprefix("fields.")] = cell
        elif name.startswith("lists."):
            doc.setdefault("lists", {})[name.removeprefix("lists.")] = cell
        elif name == "events":
            try:
                doc["events"] = _json(cell)
            except ValueError as exc:
                report(line, f"events: not a JSON array: {exc}")
        else:
            doc[name] = cell
    return doc


def option_arrays(doc: dict[str, Any], mailing_list: MailingList) -> dict[str, Any] | None:
    """A CSV row's document with each multiselect cell that holds a JSON array read as
    that array of options; None when it has no such cell."""
    fields = doc.get("fields")
    if not isinstance(fields, dict):
        return None
    multiselect = {f.name.casefold() for f in mailing_list.fields if f.type == "multiselect"}
    decoded = dict(fields)
    for name, cell in fields.items():
        if name.casefold() in multiselect and isinstance(cell, str) and cell.startswith("["):
            try:
                decoded[name] = _json(cell)
            except ValueError:
                continue  # read as one option: its check says what is wrong
    return {**doc, "fields": decoded} if decoded != fields else None
