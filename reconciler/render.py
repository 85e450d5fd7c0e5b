"""Plans, drift reports and apply results as text, JSON, markdown or JUnit XML. Pure.

Each report is first reduced to one small view: entries grouped by target and list, each a
header (``+ segment "X" (Newsletter @ local)``) with its rule-level detail lines. The text
and markdown formats only lay that view out, so neither repeats the walk over a plan. JSON
is the models' own document. Every function returns a string ending in a newline; nothing
here prints (only ``cli.py`` writes to the terminal).

Names, values and messages are user and platform data: in text, markdown and JUnit every
control character (C0, DEL, C1, ESC included), bidirectional control (U+061C, U+200E,
U+200F, U+202A-U+202E, U+2066-U+2069) and line or paragraph separator (U+2028, U+2029)
in them is shown escaped (``\\x1b``, ``\\u202e``; see :func:`printable`), so a name cannot
colour, move, reorder or hide what the terminal or a pull-request page shows. JSON is
written with ``ensure_ascii``: every character past ASCII is a ``\\uXXXX`` escape there.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import click

from . import rules
from .model import FIELD_OPERATORS, FIELD_TYPES, STANDARD_FIELDS, JSONValue, LiveSegment, Segment
from .plan import (
    Action,
    ApplyResult,
    Change,
    DriftItem,
    DriftReport,
    Impact,
    Plan,
    SafetyLimit,
    ShrinkLimit,
)
from .provider import Capabilities

__all__ = [
    "DriftFormat",
    "PlanFormat",
    "printable",
    "render_apply_result",
    "render_drift",
    "render_plan",
    "render_providers",
]

PlanFormat = Literal["text", "json", "markdown"]
DriftFormat = Literal["text", "json", "markdown", "junit"]

_COLOURS: dict[str, dict[str, str | bool]] = {
    "+": {"fg": "green"},
    "~": {"fg": "yellow"},
    "-": {"fg": "red"},
    "!": {"fg": "red", "bold": True},
}
_STATUS_COLOURS = {"applied": "+", "failed": "-", "skipped": "~"}
NOT_STARTED_PREFIX = "not started:"
"""How the reason of a change the run never started begins (its deadline passed, or
Ctrl-C interrupted it)."""

UNMANAGED_HEADING = "Unmanaged (not declared, left alone because the list does not prune):"
NO_CHANGES = "No changes. The live state matches the configuration."
PLAN_SUMMARY = "Plan: {create} to create, {update} to update, {delete} to delete."

_DRIFT_SYMBOLS = {"changed": "~", "missing": "+", "unmanaged": "?", "extra": "-"}
_DRIFT_NOTES = {
    "changed": "differs from the configuration",
    "missing": "declared but missing from the platform",
    "unmanaged": "not declared; left alone because the list does not prune",
    "extra": "not declared; apply would delete it because the list prunes",
}


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, keep: str = "") -> str:
    """``text`` safe to show on a terminal or a web page: control characters, bidirectional
    controls and line separators escaped (``\\x1b``, ``\\u202e``), except those in
    ``keep`` (a line break, for text meant to span lines)."""
    if text.isascii() and text.isprintable():
        return text  # the common case, checked in C: nothing to escape (or keep)
    if keep:
        return keep.join(printable(part) for part in text.split(keep))
    return _UNSAFE.sub(_escaped, text)


# --- the view --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One change or drifted segment: a header line, detail lines and a table row."""

    symbol: str
    title: str
    details: tuple[str, ...]
    row: tuple[str, ...]
    note: str = ""
    measures: tuple[str, str] = ("", "")
    """A segment change's members on the sample (``412 → 97 (-76 %)``) and live count
    (``12,345``), each empty when not known."""


@dataclass(frozen=True)
class _Group:
    target: str
    list: str
    entries: tuple[_Entry, ...]


def _grouped(keyed: Iterable[tuple[tuple[str, str], _Entry]]) -> tuple[_Group, ...]:
    """Entries grouped by (target, list), groups in order of first appearance."""
    groups: dict[tuple[str, str], list[_Entry]] = {}
    for where, entry in keyed:
        groups.setdefault(where, []).append(entry)
    return tuple(_Group(t, name, tuple(entries)) for (t, name), entries in groups.items())


_quote = rules.quoted


def _segment_title(name: str, list_name: str, target: str) -> str:
    return f"segment {_quote(name)} ({list_name} @ {target})"


def _title(change: Change) -> str:
    """The header of one change: ``segment "Old" -> "New" (Newsletter @ local)``."""
    if change.action is Action.CREATE_LIST:
        return f"list {_quote(change.list)} ({change.target})"
    if change.action is Action.CREATE_FIELD and change.field is not None:
        field = change.field
        return f"field {_quote(field.name)} ({field.type}) in list {_quote(change.list)}"
    new = change.after.name if change.after else change.segment or ""
    old = change.before.name if change.before else new
    name = _quote(new) if old == new else f"{_quote(old)} -> {_quote(new)}"
    return f"segment {name} ({change.list} @ {change.target})"


def _whole_segment(symbol: str, segment: Segment | LiveSegment | None) -> tuple[str, ...]:
    """Every rule of a created (``+``) or deleted (``-``) segment as a detail line."""
    if segment is None:
        return ()
    lines = [f"{symbol} {rules.render(rule)}" for rule in segment.rules]
    if segment.match == "any" and len(segment.rules) > 1:
        lines.insert(0, f"{symbol} match: any")
    if segment.options:
        options = json.dumps(segment.options, sort_keys=True, ensure_ascii=False, default=str)
        lines.append(f"{symbol} options: {options}")
    return tuple(lines)


def _details(change: Change) -> tuple[str, ...]:
    if change.diff:
        return change.diff
    if change.action is Action.CREATE_SEGMENT:
        return _whole_segment("+", change.after)
    if change.action is Action.DELETE_SEGMENT:
        return _whole_segment("-", change.before)
    return ()


def _entry(
    symbol: str, title: str, details: Iterable[str], row: Iterable[str], note: str = ""
) -> _Entry:
    """An entry of user and platform data, made printable."""
    return _Entry(
        symbol,
        printable(title),
        tuple(printable(line) for line in details),
        tuple(printable(cell) for cell in row),
        note,
    )


def _change_entry(change: Change) -> _Entry:
    item = change.segment or (f"field {change.field.name}" if change.field else "")
    row = (change.action.value, change.target, change.list, item)
    entry = _entry(change.symbol, _title(change), _details(change), row)
    measures = (_sample_text(change.impact), _live_count(change))
    return entry if measures == ("", "") else replace(entry, measures=measures)


def _sample_text(impact: Impact | None) -> str:
    """``412 → 97 (-76 %)``, with who moves when the counts alone hide it and how many a
    ``native:`` rule decides."""
    if impact is None:
        return ""
    text = f"{impact.before:,} → {impact.after:,}"
    if impact.before:
        text += f" ({_change_percent(impact.before, impact.after)} %)"
    if impact.left and impact.joined:
        text += f", {impact.left:,} leave, {impact.joined:,} join"
    if impact.undecided:
        text += f", {impact.undecided:,} undecided"
    return text


def _change_percent(before: int, after: int) -> str:
    """``-76``, ``+12``, ``0``: whole percents, one decimal near 0 and 100 % (so that only
    a segment left with nobody shows ``-100``)."""
    share = 100 * (after - before) / before
    if not share:
        return "0"
    sign = "-" if share < 0 else "+"
    size = abs(share)
    if size < 0.1:
        return f"{sign}<0.1"
    if size < 1:
        return f"{sign}{round(size, 1):g}"
    if 99 < size < 100:
        return f"{sign}{min(round(size, 1), 99.9):g}"
    return f"{sign}{round(size):,}"


_LIVE_COUNTED = frozenset({Action.UPDATE_SEGMENT, Action.ADD_RULE_GROUP, Action.DELETE_SEGMENT})


def _live_count(change: Change) -> str:
    """The platform's member count of a segment updated or deleted (``12,345``)."""
    if change.action not in _LIVE_COUNTED or change.before is None:
        return ""
    count = change.before.member_count
    return "" if count is None else f"{count:,}"


def _measures_text(measures: tuple[str, str]) -> str:
    """``  sample: 412 → 97 (-76 %); 12,345 members now`` after a change's header."""
    sample, live = measures
    parts = [f"sample: {sample}"] if sample else []
    if live:
        parts.append(f"{live} {'member' if live == '1' else 'members'} now")
    return "  " + "; ".join(parts) if parts else ""


@dataclass(frozen=True)
class _Safety:
    """One list's deletion limit: why it trips, and what to do about it."""

    tripped: bool
    reason: str
    advice: tuple[str, ...]


def _shrink_safety(limit: ShrinkLimit) -> _Safety:
    reason = printable(limit.reason.rstrip(".") + ".")
    if limit.acknowledged:
        return _Safety(False, reason, ())
    flag = printable(f"--allow-delete {shlex.quote(limit.segment)}")
    return _Safety(True, reason, (f"Acknowledge with {flag}, or all with --allow-deletes.",))


def _safety(limit: SafetyLimit) -> _Safety:
    reason = printable(limit.reason.rstrip(".") + ".")
    names = printable(", ".join(_quote(name) for name in limit.deletes))
    if limit.acknowledged:
        return _Safety(False, reason, (f"Deleting: {names}.",))
    flags = " ".join(f"--allow-delete {shlex.quote(name)}" for name in limit.deletes)
    advice = (
        f"Segments to delete: {names}.",
        f"Acknowledge with {printable(flags)}, or all with --allow-deletes.",
    )
    return _Safety(True, reason, advice)


@dataclass(frozen=True)
class _PlanView:
    groups: tuple[_Group, ...]
    unmanaged: tuple[str, ...]
    safety: tuple[_Safety, ...]
    summary: str


def _plan_view(plan: Plan) -> _PlanView:
    keyed = (((c.target, c.list), _change_entry(c)) for c in plan.changes)
    unmanaged = tuple(
        printable(
            f"{_segment_title(u.segment, u.list, u.target)}, id {u.segment_id}"
            + (f" (not manageable: {u.reason})" if u.reason else "")
        )
        for u in plan.unmanaged
    )
    summary = NO_CHANGES if plan.is_empty else PLAN_SUMMARY.format(**plan.summary())
    safety = tuple(_safety(limit) for limit in plan.safety.limits)
    safety += tuple(_shrink_safety(limit) for limit in plan.safety.shrink_limits or ())
    return _PlanView(_grouped(keyed), unmanaged, safety, summary)


def _drift_entry(item: DriftItem) -> _Entry:
    title = _segment_title(item.segment, item.list, item.target)
    row = (item.status, item.target, item.list, item.segment)
    return _entry(_DRIFT_SYMBOLS[item.status], title, item.diff, row, _DRIFT_NOTES[item.status])


def _drift_summary(report: DriftReport) -> str:
    counts = report.summary()
    drifted = len(report.items) - counts["in_sync"]
    if not drifted:
        return f"No drift. {_segments(counts['in_sync'])} in sync."
    verb = "differs" if drifted == 1 else "differ"
    kinds = ", ".join(f"{counts[status]} {status}" for status in _DRIFT_SYMBOLS)
    return f"Drift: {_segments(drifted)} {verb} ({kinds}); {counts['in_sync']} in sync."


def _segments(count: int) -> str:
    return f"{count} segment" if count == 1 else f"{count} segments"


# --- text ------------------------------------------------------------------------------


def _paint(text: str, symbol: str, color: bool) -> str:
    style = _COLOURS.get(symbol)
    return click.style(text, **style) if color and style else text  # type: ignore[arg-type]


def _bold(text: str, color: bool) -> str:
    return click.style(text, bold=True) if color else text


def _text_groups(groups: Sequence[_Group], color: bool) -> list[str]:
    lines: list[str] = []
    for group in groups:
        for entry in group.entries:
            note = f": {entry.note}" if entry.note else ""
            symbol = _paint(entry.symbol, entry.symbol, color)
            measures = _measures_text(entry.measures)
            lines.append(f"  {symbol} {_bold(entry.title, color)}{note}{measures}")
            lines.extend(f"      {_paint(line, line[:1], color)}" for line in entry.details)
        lines.append("")
    return lines


def _plan_text(view: _PlanView, color: bool) -> str:
    lines = _text_groups(view.groups, color)
    if view.unmanaged:
        lines.append(_bold(UNMANAGED_HEADING, color))
        lines.extend(f"  {line}" for line in view.unmanaged)
        lines.append("")
    for block in view.safety:
        if block.tripped:
            lines.append(_paint(f"! Safety limit: {block.reason}", "!", color))
        else:
            lines.append(f"  Safety limit acknowledged: {block.reason}")
        lines.extend(f"  {line}" for line in block.advice)
        lines.append("")
    lines.append(_bold(view.summary, color))
    return "\n".join(lines) + "\n"


# --- markdown --------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md(text: str) -> str:
    """Text safe inside a markdown paragraph or table cell. ``@`` is followed by a zero-width
    space, so a name read from a platform (``@org/team``) never mentions anyone in a pull
    request comment or an issue (mentions are not made inside code spans and fences)."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")
    return escaped.replace("@", "@&#8203;")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return lines


def _md_code(text: str) -> str:
    """A code span that survives backticks in ``text``."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {text} {ticks}" if longest else f"{ticks}{text}{ticks}"


def _md_fence(lines: Sequence[str], language: str) -> list[str]:
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *lines, fence]


def _md_details(groups: Sequence[_Group]) -> list[str]:
    lines: list[str] = []
    for entry in (entry for group in groups for entry in group.entries):
        if entry.details:
            lines += ["", _md_code(f"{entry.symbol} {entry.title}"), ""]
            lines += _md_fence(entry.details, "diff")
    return lines


def _md_changes(entries: Sequence[_Entry]) -> list[str]:
    """The table of changes; with a sample or live counts, a column for each shown."""
    headers = ["action", "target", "list", "segment"]
    shown = [any(entry.measures[i] for entry in entries) for i in range(2)]
    headers += [name for name, on in zip(("sample", "members now"), shown, strict=True) if on]
    rows = (
        (*entry.row, *(cell for cell, on in zip(entry.measures, shown, strict=True) if on))
        for entry in entries
    )
    return _md_table(headers, rows)


def _plan_markdown(view: _PlanView) -> str:
    lines = ["### Reconciler plan", "", f"**{_md(view.summary)}**"]
    entries = [entry for group in view.groups for entry in group.entries]
    if entries:
        lines += ["", *_md_changes(entries)]
        lines += _md_details(view.groups)
    if view.unmanaged:
        lines += [
            "",
            "#### Unmanaged",
            "",
            "Not declared, left alone because the list does not prune:",
            "",
        ]
        lines.extend(f"- {_md_code(line)}" for line in view.unmanaged)
    if view.safety:
        lines += ["", "#### Safety limits", ""]
        for block in view.safety:
            label = "Refused" if block.tripped else "Acknowledged"
            lines.append(f"- **{label}:** {_md(' '.join((block.reason, *block.advice)))}")
    return "\n".join(lines) + "\n"


# --- plans -----------------------------------------------------------------------------


def render_plan(plan: Plan, fmt: PlanFormat, *, color: bool = False) -> str:
    """A plan as Terraform-style text, the format_version 1 JSON document, or markdown."""
    if fmt == "json":
        return json.dumps(plan.to_document(), indent=2, sort_keys=False) + "\n"
    view = _plan_view(plan)
    if fmt == "markdown":
        return _plan_markdown(view)
    if fmt == "text":
        return _plan_text(view, color)
    raise ValueError(f"unknown plan format {fmt!r}; use text, json or markdown")


# --- drift -----------------------------------------------------------------------------


def _drift_groups(report: DriftReport) -> tuple[_Group, ...]:
    return _grouped(((item.target, item.list), _drift_entry(item)) for item in report.drifted)


def _drift_text(report: DriftReport, color: bool) -> str:
    lines = _text_groups(_drift_groups(report), color)
    lines.append(_bold(_drift_summary(report), color))
    return "\n".join(lines) + "\n"


def _drift_markdown(report: DriftReport) -> str:
    lines = ["### Reconciler drift", "", f"**{_md(_drift_summary(report))}**"]
    groups = _drift_groups(report)
    rows = (entry.row for group in groups for entry in group.entries)
    if report.drifted:
        lines += ["", *_md_table(("status", "target", "list", "segment"), rows)]
        lines += _md_details(groups)
    return "\n".join(lines) + "\n"


def _drift_json(report: DriftReport) -> str:
    """The plan document's keys (``changes``, ``summary``, ``safety``: what would bring the
    live state back), plus ``items``: one per segment with its drift status."""
    counts = report.summary()
    summary: dict[str, int] = {**counts, "drifted": len(report.items) - counts["in_sync"]}
    document: dict[str, object] = {"format_version": report.format_version}
    if report.plan is not None:
        planned = report.plan.to_document()
        document["changes"] = planned["changes"]
        summary = {**planned["summary"], **summary}
        document["safety"] = planned["safety"]
    document["items"] = [item.model_dump(mode="json") for item in report.items]
    document["summary"] = summary
    return json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""What XML 1.0 cannot hold (written so, not as the complement of what it can: that
compiles ten times slower, 5 ms at every start)."""


def xml_text(text: str) -> str:
    """Text XML 1.0 can hold, printable: control characters escaped (``\\x1b``), any other
    character XML forbids (U+FFFE) as U+FFFD; ``<`` and ``&`` are ET's job."""
    return _NOT_XML.sub("\ufffd", printable(text))


def _drift_junit(report: DriftReport) -> str:
    """One test case per segment, a failure for each drifted one."""
    import xml.etree.ElementTree as ET  # only JUnit needs it: 6 ms at every start otherwise

    total, failures = str(len(report.items)), str(len(report.drifted))
    root = ET.Element("testsuites", name="reconciler", tests=total, failures=failures)
    suite = ET.SubElement(
        root, "testsuite", name="reconciler drift", tests=total, failures=failures, errors="0"
    )
    for item in report.items:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(f"{item.target}.{item.list}"),
            name=xml_text(item.segment),
        )
        if item.status != "in_sync":
            title = _segment_title(item.segment, item.list, item.target)
            message = f"{title}: {_DRIFT_NOTES[item.status]}"
            failure = ET.SubElement(case, "failure", message=xml_text(message), type=item.status)
            failure.text = "\n".join(xml_text(line) for line in item.diff) or xml_text(message)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_drift(report: DriftReport, fmt: DriftFormat, *, color: bool = False) -> str:
    """A drift report as text, JSON, markdown or JUnit XML."""
    if fmt == "text":
        return _drift_text(report, color)
    if fmt == "json":
        return _drift_json(report)
    if fmt == "markdown":
        return _drift_markdown(report)
    if fmt == "junit":
        return _drift_junit(report)
    raise ValueError(f"unknown drift format {fmt!r}; use text, json, markdown or junit")


# --- apply results ---------------------------------------------------------------------


def render_apply_result(result: ApplyResult, *, color: bool = False) -> str:
    """One line per change applied, failed or skipped, then the counts."""
    lines: list[str] = []
    for outcome in result.outcomes:
        change = outcome.change
        status = _paint(outcome.status, _STATUS_COLOURS[outcome.status], color)
        padding = " " * (9 - len(outcome.status))
        message = printable(outcome.message, keep="\n").replace("\n", "\n" + " " * 11)
        reason = f": {message}" if message else ""
        lines.append(f"{status}{padding}{change.symbol} {printable(_title(change))}{reason}")
    counts = (f"{result.count(status)} {status}" for status in ("applied", "failed", "skipped"))
    late = Counter(
        outcome.message
        for outcome in result.outcomes
        if outcome.status == "skipped" and outcome.message.startswith(NOT_STARTED_PREFIX)
    )
    stopped = "".join(f" ({count} {printable(why)})" for why, count in late.items())
    lines.append(_bold(f"Apply: {', '.join(counts)}{stopped}.", color))
    return "\n".join(lines) + "\n"


def not_started(result: ApplyResult) -> int:
    """How many changes of ``result`` the run never started."""
    return sum(
        1
        for outcome in result.outcomes
        if outcome.status == "skipped" and outcome.message.startswith(NOT_STARTED_PREFIX)
    )


def render_providers(
    found: Mapping[str, Mapping[str, JSONValue]], broken: Mapping[str, str] | None = None
) -> str:
    """``reconciler providers`` as text: one block per provider, one line per property; a
    provider that cannot be loaded (``broken``: key -> reason) as its key and the reason."""
    out: list[str] = []
    for key in sorted({*found, *(broken or {})}):
        if key not in found:
            out += [key, f"  broken: {printable((broken or {})[key])}"]
            continue
        description = found[key]
        out.append(key)
        for name, value in description.items():
            if value is None or value == []:
                continue
            if isinstance(value, dict):
                out.append(f"  {name}:")
                out.extend(f"    {kind}: {', '.join(map(str, ops))}" for kind, ops in value.items())
                continue
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            out.append(f"  {name.replace('_', ' ')}: {value}")
    return "\n".join(out) + "\n"


def render_operator_table(capabilities: Capabilities) -> str:
    """The operators a provider stores, per standard field and per custom field type, as a
    Markdown table (``reconciler providers --format markdown``; docs/providers/<key>.md carries
    it)."""
    rows = ["| field | operators it stores |", "| --- | --- |"]
    for name in STANDARD_FIELDS:
        rows.append(f"| `{name}` | {_ops(capabilities.operators_for(name, None))} |")
    for field_type in FIELD_TYPES:
        if field_type in capabilities.field_types:
            ops = capabilities.operators.get(field_type, frozenset())
            rows.append(f"| {field_type} field | {_ops(ops)} |")
    return "\n".join(rows) + "\n"


def _ops(ops: frozenset[str]) -> str:
    order = {op: index for index, op in enumerate(FIELD_OPERATORS)}
    return ", ".join(f"`{op}`" for op in sorted(ops, key=order.__getitem__)) or "none"
