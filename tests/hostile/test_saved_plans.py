"""A saved plan is a file anyone may have edited: apply must never do more than the same
configuration plans against the same live state, nor skip a safety limit."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from tests.cli.conftest import Project, segments_yaml

TEN = [f"S{i}" for i in range(10)]


def _pruning(names: list[str]) -> str:
    return "lists:\n  - name: News\n    prune: true\n    segments:\n" + segments_yaml(*names)


def _segments(project: Project) -> list[str]:
    with sqlite3.connect(project.root / "state.db") as db:
        return sorted(name for (name,) in db.execute("select name from segments"))


@pytest.fixture
def saved(project: Project) -> dict[str, Any]:
    """Ten segments live; the configuration now keeps six (deleting 4 of 10 trips the 30%
    limit); the plan is saved unacknowledged."""
    project.write(_pruning(TEN))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(_pruning(TEN[:6]))
    result = project.run("plan", "-o", str(project.root / "plan.json"))
    assert result.exit_code == 3, result.output
    data: dict[str, Any] = json.loads((project.root / "plan.json").read_text())
    return data


def _apply_edited(project: Project, data: dict[str, Any], *flags: str):  # type: ignore[no-untyped-def]
    (project.root / "plan.json").write_text(json.dumps(data))
    return project.run("apply", str(project.root / "plan.json"), *flags)


def _acknowledged(data: dict[str, Any]) -> None:
    for limit in data["safety"]["limits"]:
        limit["acknowledged"] = True


def _no_limits(data: dict[str, Any]) -> None:
    data["safety"]["limits"] = []


def _looser_fraction(data: dict[str, Any]) -> None:
    data["safety"]["max_delete_fraction"] = 1.0
    _no_limits(data)


@pytest.mark.parametrize("edit", [_acknowledged, _no_limits, _looser_fraction])
def test_a_safety_limit_cannot_be_edited_away(
    project: Project, saved: dict[str, Any], edit: Callable[[dict[str, Any]], None]
) -> None:
    edit(saved)
    result = _apply_edited(project, saved)
    assert result.exit_code in (1, 3), result.output
    assert _segments(project) == sorted(TEN)  # nothing deleted


def test_acknowledgements_come_from_the_apply_command(
    project: Project, saved: dict[str, Any]
) -> None:
    assert _apply_edited(project, saved).exit_code == 3
    assert _segments(project) == sorted(TEN)
    result = _apply_edited(project, saved, "--allow-deletes")
    assert result.exit_code == 0, result.output
    assert _segments(project) == sorted(TEN[:6])


def test_an_added_delete_is_refused_naming_it(project: Project, saved: dict[str, Any]) -> None:
    extra = json.loads(json.dumps(saved["changes"][0]))
    victim = next(s for s in TEN[:6])
    with sqlite3.connect(project.root / "state.db") as db:
        (ident,) = db.execute("select id from segments where name = ?", (victim,)).fetchone()
    extra["segment"] = victim
    extra["before"] = {**extra["before"], "id": str(ident), "name": victim}
    saved["changes"].append(extra)
    result = _apply_edited(project, saved, "--allow-deletes")
    assert result.exit_code == 1, result.output
    assert f"delete_segment local/News/{victim} is in the saved plan but not planned now" in (
        result.stderr
    )
    assert _segments(project) == sorted(TEN)


def test_an_edited_rule_is_refused(project: Project) -> None:
    project.write(_pruning(["A"]))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write(_pruning(["A"]).replace("@x.com", "@y.com"))
    assert project.run("plan", "-o", str(project.root / "plan.json")).exit_code == 0
    data = json.loads((project.root / "plan.json").read_text())
    data["changes"][0]["after"]["rules"][0]["value"] = "@evil.example"
    result = _apply_edited(project, data)
    assert result.exit_code == 1, result.output
    assert "update_segment local/News/A differs from what is planned now" in result.stderr
    again = project.run("plan")
    assert '+ email contains "@y.com"' in again.stdout  # nothing was applied


def test_an_unchanged_saved_plan_still_applies(project: Project) -> None:
    project.write(_pruning(["A", "B"]))
    assert project.run("plan", "-o", str(project.root / "plan.json")).exit_code == 0
    result = project.run("apply", str(project.root / "plan.json"))
    assert result.exit_code == 0, result.output
    assert _segments(project) == ["A", "B"]


def test_a_changed_configuration_makes_a_saved_plan_refused(project: Project) -> None:
    project.write(_pruning(["A", "B"]))
    assert project.run("plan", "-o", str(project.root / "plan.json")).exit_code == 0
    project.write(_pruning(["A"]))
    result = project.run("apply", str(project.root / "plan.json"))
    assert result.exit_code == 1
    assert "create_segment local/News/B is in the saved plan but not planned now" in result.stderr
    assert not (project.root / "state.db").exists() or _segments(project) == []


def test_a_plan_file_that_is_not_a_regular_file_is_refused_before_reading(
    project: Project,
) -> None:
    project.write(_pruning(["A"]))
    fifo = project.root / "plan.fifo"
    os.mkfifo(fifo)
    result = project.run("apply", str(fifo))  # reading a FIFO would block forever
    assert result.exit_code == 1
    assert "it is a FIFO (named pipe), not a regular file" in result.stderr
    assert "Traceback" not in result.output


def test_a_plan_file_that_is_not_json_is_one_clear_error(project: Project) -> None:
    project.write(_pruning(["A"]))
    (project.root / "plan.json").write_bytes(b"\xff\xfe not json")
    result = project.run("apply", str(project.root / "plan.json"))
    assert result.exit_code == 1
    assert "not UTF-8 text" in result.stderr and "Traceback" not in result.output
    (project.root / "plan.json").write_text("[1, 2")
    result = project.run("apply", str(project.root / "plan.json"))
    assert result.exit_code == 1 and "not a plan file (invalid JSON" in result.stderr
