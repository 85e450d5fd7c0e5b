"""drift and import through the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.cli.conftest import Project, segments_yaml
from tests.cli.test_plan_apply import NEWSLETTER


def test_drift_exits_0_when_in_sync_and_2_after_an_out_of_band_edit(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    assert project.run("drift").exit_code == 0
    project.write(NEWSLETTER.replace("@gmail.com", "@edited.com"), name="ui.yaml")
    assert project.run("apply", "--auto-approve", config="ui.yaml").exit_code == 0
    result = project.run("drift")
    assert result.exit_code == 2
    assert "Gmail 2024" in result.stdout


def test_drift_junit_has_one_case_per_segment(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(NEWSLETTER.replace("@gmail.com", "@edited.com"), name="ui.yaml")
    assert project.run("apply", "--auto-approve", config="ui.yaml").exit_code == 0
    result = project.run("drift", "--format", "junit", "-o", str(project.root / "drift.xml"))
    assert result.exit_code == 2
    cases = ET.parse(project.root / "drift.xml").getroot().iter("testcase")
    failed = {c.get("name"): c.find("failure") is not None for c in cases}
    assert failed == {"Gmail 2024": True, "Openers": False}


def test_drift_reports_unmanaged_segments(project: Project) -> None:
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml("A", "B"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml("A"))
    result = project.run("drift", "--format", "json")
    assert result.exit_code == 2
    assert '"unmanaged"' in result.stdout


def test_import_then_plan_is_empty(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("include:\n  - imported/*.yaml\n", name="fresh.yaml")
    (project.root / "imported").mkdir()
    out = project.root / "imported" / "lists.yaml"
    result = project.run("import", "--target", "local", "-o", str(out), config="fresh.yaml")
    assert result.exit_code == 0, result.output
    assert "Gmail 2024" in out.read_text()
    planned = project.run("plan", "--detailed-exitcode", config="fresh.yaml")
    assert planned.exit_code == 0, planned.output


def test_import_needs_one_target(project: Project) -> None:
    project.write(NEWSLETTER)
    result = project.run("import")
    assert result.exit_code == 1
    assert "exactly one --target" in result.stderr


def test_drift_json_carries_the_plan_that_would_undo_it(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(NEWSLETTER.replace("@gmail.com", "@edited.com"), name="ui.yaml")
    assert project.run("apply", "--auto-approve", config="ui.yaml").exit_code == 0
    result = project.run("drift", "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["format_version"] == 1
    assert [(c["action"], c["segment"]) for c in document["changes"]] == [
        ("update_segment", "Gmail 2024")
    ]
    assert document["summary"]["update"] == 1 and document["summary"]["changed"] == 1
    assert document["safety"]["limits"] == []
    assert {item["segment"]: item["status"] for item in document["items"]} == {
        "Gmail 2024": "changed",
        "Openers": "in_sync",
    }
