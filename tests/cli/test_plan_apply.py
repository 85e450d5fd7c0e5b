"""plan -> apply -> plan on the reference backend, through the CLI."""

from __future__ import annotations

import json
import sqlite3

from tests.cli.conftest import Project, segments_yaml

NEWSLETTER = """\
lists:
  - name: Newsletter
    fields:
      - {name: Frequency, type: select, options: [Weekly, Monthly]}
    segments:
      - name: Gmail 2024
        rules:
          - {field: email, op: contains, value: "@gmail.com"}
          - any:
              - {field: date_subscribed, op: after, value: "2024-01-01"}
              - {field: Frequency, op: equals, value: Weekly}
      - name: Openers
        match: any
        rules:
          - {campaign: c1, event: opened, within: {days: 30}}
          - {list: VIP, op: not_in}
"""


def test_plan_then_apply_then_plan_is_empty(project: Project) -> None:
    project.write(NEWSLETTER)
    first = project.run("plan", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert first.stdout.endswith("Plan: 4 to create, 0 to update, 0 to delete.\n")
    applied = project.run("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "Apply: 4 applied, 0 failed, 0 skipped." in applied.stdout
    again = project.run("plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.stdout


def test_second_apply_is_a_no_op(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    second = project.run("apply", "--auto-approve")
    assert second.exit_code == 0
    assert "No changes." in second.stdout
    assert "applied" not in second.stdout


def test_edit_a_segment_shows_a_rule_level_diff(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(NEWSLETTER.replace('value: "@gmail.com"', 'value: "@yahoo.com"'))
    result = project.run("plan")
    assert result.exit_code == 0
    assert '- email contains "@gmail.com"' in result.stdout
    assert '+ email contains "@yahoo.com"' in result.stdout
    assert result.stdout.endswith("Plan: 0 to create, 1 to update, 0 to delete.\n")


def test_rename_is_one_update_keeping_the_id(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    db = sqlite3.connect(project.root / "state.db")
    (old_id,) = db.execute("select id from segments where name = 'Openers'").fetchone()
    project.write(
        NEWSLETTER.replace(
            "- name: Openers", "- name: Recent openers\n        renamed_from: [Openers]"
        )
    )
    planned = json.loads(project.run("plan", "--format", "json").stdout)
    assert [(c["action"], c["segment"]) for c in planned["changes"]] == [
        ("update_segment", "Recent openers")
    ]
    assert project.run("apply", "--auto-approve").exit_code == 0
    rows = db.execute("select id, name from segments order by name").fetchall()
    assert (old_id, "Recent openers") in rows and len(rows) == 2


def test_prune_deletes_undeclared_segments(project: Project) -> None:
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml("A", "B", "C"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("lists:\n  - name: L\n    prune: true\n    segments:\n" + segments_yaml("A", "B"))
    result = project.run("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert '- segment "C"' in result.stdout
    assert "Apply: 1 applied, 0 failed, 0 skipped." in result.stdout
    assert project.run("plan", "--detailed-exitcode").exit_code == 0


def test_without_prune_undeclared_segments_are_left_alone(project: Project) -> None:
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml("A", "B"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml("A"))
    result = project.run("plan", "--detailed-exitcode")
    assert result.exit_code == 0
    assert "Unmanaged" in result.stdout and '"B"' in result.stdout


def test_safety_limit_exits_3_and_changes_nothing(project: Project) -> None:
    names = [f"S{i}" for i in range(10)]
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml(*names))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(
        "lists:\n  - name: L\n    prune: true\n    segments:\n" + segments_yaml(*names[:6])
    )
    refused = project.run("apply", "--auto-approve")
    assert refused.exit_code == 3, refused.output
    assert "deleting 4 of 10 segments (40%)" in refused.stderr
    assert project.run("plan").exit_code == 3
    allowed = project.run("apply", "--auto-approve", "--allow-deletes")
    assert allowed.exit_code == 0, allowed.output
    assert project.run("plan", "--detailed-exitcode").exit_code == 0


def test_allow_delete_must_name_every_deletion(project: Project) -> None:
    project.write("lists:\n  - name: L\n    segments:\n" + segments_yaml("A"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("lists:\n  - name: L\n    prune: true\n    segments: []\n")
    assert project.run("apply", "--auto-approve", "--allow-delete", "X").exit_code == 3
    assert project.run("apply", "--auto-approve", "--allow-delete", "A").exit_code == 0


def test_apply_without_a_terminal_needs_auto_approve(project: Project) -> None:
    project.write(NEWSLETTER)
    result = project.run("apply")
    assert result.exit_code == 1
    assert "--auto-approve" in result.stderr
    assert project.run("plan", "--detailed-exitcode").exit_code == 2


def test_saved_plan_applies(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("plan", "-o", str(project.root / "plan.json")).exit_code == 0
    saved = json.loads((project.root / "plan.json").read_text())
    assert saved["format_version"] == 1 and saved["summary"]["create"] == 4
    result = project.run("apply", str(project.root / "plan.json"))
    assert result.exit_code == 0, result.output
    assert project.run("plan", "--detailed-exitcode").exit_code == 0


def test_stale_saved_plan_is_refused(project: Project) -> None:
    project.write(NEWSLETTER)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(NEWSLETTER.replace("@gmail.com", "@other.com"))
    assert project.run("plan", "-o", str(project.root / "plan.json")).exit_code == 0
    project.write(NEWSLETTER.replace("@gmail.com", "@third.com"), name="other.yaml")
    assert project.run("apply", "--auto-approve", config="other.yaml").exit_code == 0
    stale = project.run("apply", str(project.root / "plan.json"))
    assert stale.exit_code == 1
    assert "stale" in stale.stderr and "local/Newsletter/Gmail 2024" in stale.stderr
    rules = (
        sqlite3.connect(project.root / "state.db")
        .execute("select rules from segments where name = 'Gmail 2024'")
        .fetchone()[0]
    )
    assert "@third.com" in rules


def test_usage_errors_exit_1_not_2(project: Project) -> None:
    project.write(NEWSLETTER)
    result = project.run("plan", "--format", "yaml")
    assert result.exit_code == 1
    assert "Invalid value" in result.stderr


def test_missing_config_file_is_a_one_line_error(project: Project) -> None:
    result = project.run("plan", config="nope.yaml")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "configuration file not found" in result.stderr
