"""A segment tests report as text, JSON or JUnit XML. Pure: every function returns a string.

Text shows each failing (and undecided) expectation with the subscribers that differ and,
for each, the leaf rule that decided, then each stored form that selects differently,
then one summary line; ``verbose`` adds the passing checks. Names, emails and values are
user data: shown escaped as :func:`reconciler.render.printable` does (JSON escapes every
character past ASCII).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Literal

import click

from .expectations import ExpectationResult, StoredFormResult, TestReport
from .render import printable, xml_text

__all__ = ["FORMAT_VERSION", "TestFormat", "render_tests", "summary"]

TestFormat = Literal["text", "json", "junit"]
FORMAT_VERSION = 1
"""Version of the JSON document (``format_version``)."""

_MARKS = {
    "passed": ("ok", "green"),
    "agrees": ("ok", "green"),
    "failed": ("FAIL", "red"),
    "differs": ("FAIL", "red"),
    "undecided": ("UNDECIDED", "yellow"),
    "unchecked": ("unchecked", "yellow"),
}


def _quote(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _title(segment: str, list_name: str, target: str) -> str:
    return f"segment {_quote(segment)} ({list_name} @ {target})"


def _mark(status: str, color: bool) -> str:
    word, colour = _MARKS[status]
    return click.style(word, fg=colour, bold=True) if color else word


def _expectation_lines(result: ExpectationResult, color: bool) -> list[str]:
    title = _title(result.segment, result.list, result.target)
    where = f"{result.file}:{result.line}:{result.column}"
    lines = [f"{_mark(result.status, color)} {printable(title)}  ({printable(where)})"]
    if result.status == "passed":
        return lines
    lines.append("    expected: " + printable(", ".join(result.expected) or "nobody"))
    lines.append("    selected: " + printable(", ".join(result.members) or "nobody"))
    lines += [f"    {printable(d.explanation)}" for d in result.differences]
    return lines


def _stored_lines(result: StoredFormResult, color: bool) -> list[str]:
    title = _title(result.segment, result.list, result.target)
    head = f'{_mark(result.status, color)} stored form of {title} on provider "{result.provider}"'
    lines = [printable(head)]
    if result.reason:
        lines[0] += printable(f": {result.reason}")
    for difference in result.differences:
        lines.append(f"    declared: {printable(difference.explanation)}")
        lines.append(f"    stored:   {printable(difference.stored_explanation)}")
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary(report: TestReport) -> str:
    """``Tests: 2 passed, 1 failed, 0 undecided. Stored forms: 8 agree, 0 differ.``"""
    text = (
        f"Tests: {report.count('passed')} passed, {report.count('failed')} failed, "
        f"{report.count('undecided')} undecided. "
        f"Stored forms: {report.count('agrees')} agree, {report.count('differs')} differ"
    )
    unchecked = report.count("unchecked")
    return text + (f", {unchecked} unchecked." if unchecked else ".")


def _text(report: TestReport, color: bool, verbose: bool) -> str:
    lines: list[str] = []
    for result in report.expectations:
        if verbose or result.status != "passed":
            lines += _expectation_lines(result, color)
    for stored in report.stored_forms:
        if verbose or stored.status == "differs":
            lines += _stored_lines(stored, color)
    if lines:
        lines.append("")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def _json(report: TestReport) -> str:
    document = {
        "format_version": FORMAT_VERSION,
        "passed": report.passed,
        **report.model_dump(mode="json"),
        "summary": {
            status: report.count(status)
            for status in ("passed", "failed", "undecided", "agrees", "differs", "unchecked")
        },
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _case(
    suite: ET.Element, classname: str, name: str, status: str, message: str, lines: list[str]
) -> None:
    case = ET.SubElement(suite, "testcase", classname=xml_text(classname), name=xml_text(name))
    if status in ("failed", "differs", "undecided"):
        failure = ET.SubElement(case, "failure", message=xml_text(message), type=status)
        failure.text = "\n".join(xml_text(line) for line in lines) or xml_text(message)
    elif status == "unchecked":
        ET.SubElement(case, "skipped", message=xml_text(message))


def _junit(report: TestReport) -> str:
    """Two suites: one test case per expectation, one per stored form checked."""
    root = ET.Element("testsuites", name="reconciler test")
    expectations = ET.SubElement(root, "testsuite", name="segment expectations")
    for e in report.expectations:
        message = f"{_title(e.segment, e.list, e.target)}: {e.status}"
        lines = [d.explanation for d in e.differences]
        name = f"{e.segment} ({e.file}:{e.line})"
        _case(expectations, f"{e.target}.{e.list}", name, e.status, message, lines)
    stored = ET.SubElement(root, "testsuite", name="stored forms")
    for s in report.stored_forms:
        message = s.reason or f"the stored form on {s.provider} {s.status} with the declared one"
        lines = [
            line
            for d in s.differences
            for line in (f"declared: {d.explanation}", f"stored: {d.stored_explanation}")
        ]
        _case(stored, f"{s.target}.{s.list}", s.segment, s.status, message, lines)
    for suite in (expectations, stored):
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
        suite.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_tests(
    report: TestReport, fmt: TestFormat, *, color: bool = False, verbose: bool = False
) -> str:
    """A tests report as text, JSON or JUnit XML."""
    if fmt == "text":
        return _text(report, color, verbose)
    if fmt == "json":
        return _json(report)
    if fmt == "junit":
        return _junit(report)
    raise ValueError(f"unknown format {fmt!r}; use text, json or junit")
