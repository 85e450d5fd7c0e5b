"""One run, several reports: plan and drift write every format asked for from one read of
the live state, each file whole, or none of them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import ClassVar

from click.testing import CliRunner, Result

from providers.reference import ReferenceProvider
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.model import LiveState
from reconciler.provider import Scope
from tests.cli.conftest import Project, segments_yaml

LISTS = "lists:\n  - name: News\n    segments:\n" + segments_yaml("A", "B")


class Counting(ReferenceProvider):
    """The reference backend, counting its reads of the live state."""

    reads: ClassVar[list[Scope]] = []

    def fetch(self, scope: Scope) -> LiveState:
        Counting.reads.append(scope)
        return super().fetch(scope)


def _run(project: Project, *args: str) -> Result:
    Counting.reads.clear()
    argv = ["-c", str(project.root / "reconciler.yaml"), "--no-color", *args]
    return CliRunner().invoke(cli, argv, obj=State(registry={"reference": Counting}))


def test_drift_writes_every_format_from_one_read(project: Project) -> None:
    project.write(LISTS)
    root = project.root
    result = _run(
        project,
        "drift",
        "--format",
        "json",
        "-o",
        str(root / "drift.json"),
        "--markdown",
        str(root / "drift.md"),
        "--junit",
        str(root / "drift.xml"),
        "--text",
        str(root / "drift.txt"),
        "--markdown",
        str(root / "copy.md"),
    )
    assert result.exit_code == 2, result.output
    assert len(Counting.reads) == 1
    assert result.stdout == ""  # -o takes the --format report off stdout
    document = json.loads((root / "drift.json").read_text())
    assert document["summary"]["missing"] == 2
    markdown = (root / "drift.md").read_text()
    assert markdown.startswith("### Reconciler drift\n")
    assert (root / "copy.md").read_text() == markdown
    suite = ET.fromstring((root / "drift.xml").read_text())
    assert suite.attrib["tests"] == "2" and suite.attrib["failures"] == "2"
    text = (root / "drift.txt").read_text()
    assert text.endswith(
        "Drift: 2 segments differ (0 changed, 2 missing, 0 unmanaged, 0 extra); 0 in sync.\n"
    )
    assert "\x1b" not in text
    for name in ("drift.json", "drift.md", "drift.xml", "drift.txt", "copy.md"):
        assert f"Wrote {root / name}" in result.stderr


def test_plan_writes_every_format_and_the_saved_plan_from_one_read(project: Project) -> None:
    project.write(LISTS)
    root = project.root
    result = _run(
        project,
        "plan",
        "-o",
        str(root / "plan.json"),
        "--json",
        str(root / "copy.json"),
        "--markdown",
        str(root / "plan.md"),
        "--text",
        str(root / "plan.txt"),
    )
    assert result.exit_code == 0, result.output
    assert len(Counting.reads) == 1
    assert result.stdout.endswith("Plan: 3 to create, 0 to update, 0 to delete.\n")
    assert (root / "plan.txt").read_text() == result.stdout
    assert (root / "copy.json").read_text() == (root / "plan.json").read_text()
    assert json.loads((root / "plan.json").read_text())["format_version"] == 1
    assert (root / "plan.md").read_text().startswith("### Reconciler plan\n")
    assert "Saved plan to" in result.stderr
    applied = _run(project, "apply", str(root / "plan.json"))
    assert applied.exit_code == 0, applied.output


def test_one_unwritable_report_writes_none_and_exits_1(project: Project) -> None:
    project.write(LISTS)
    root = project.root
    (root / "old.md").write_text("the previous report\n")
    (root / "blocker").write_text("a file where a directory is needed\n")
    result = _run(
        project,
        "drift",
        "--markdown",
        str(root / "old.md"),
        "--json",
        str(root / "new.json"),
        "--junit",
        str(root / "blocker" / "drift.xml"),
    )
    assert result.exit_code == 1
    assert f"Error: {root / 'blocker' / 'drift.xml'}: cannot write: " in result.stderr
    assert (root / "old.md").read_text() == "the previous report\n"
    assert not (root / "new.json").exists()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []  # no temp


def test_one_file_named_by_two_outputs_is_a_usage_error_before_any_read(project: Project) -> None:
    project.write(LISTS)
    path = str(project.root / "report")
    result = _run(project, "drift", "--json", path, "--junit", path)
    assert result.exit_code == 1
    assert "is named by two outputs (json and junit)" in result.stderr
    assert Counting.reads == []
    result = _run(project, "plan", "-o", path, "--markdown", path)
    assert result.exit_code == 1 and Counting.reads == []


def test_plan_has_no_junit_report(project: Project) -> None:
    project.write(LISTS)
    result = _run(project, "plan", "--junit", str(project.root / "x.xml"))
    assert result.exit_code == 1
    assert "No such option '--junit'" in result.stderr


def test_reports_help_explains_each_option() -> None:
    for command, options in (
        ("plan", ("--text", "--json", "--markdown")),
        ("drift", ("--text", "--json", "--markdown", "--junit")),
    ):
        shown = CliRunner().invoke(cli, [command, "--help"]).stdout
        for option in options:
            assert f"{option} FILE" in shown
        assert "One read of the live state makes every report" in shown


def test_drift_without_out_prints_the_format_and_writes_the_others(project: Project) -> None:
    project.write(LISTS)
    result = _run(project, "drift", "--junit", str(Path(project.root / "d.xml")))
    assert result.exit_code == 2
    assert result.stdout.startswith("  + segment")
    assert ET.fromstring((project.root / "d.xml").read_text()).tag == "testsuites"
