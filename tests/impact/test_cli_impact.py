"""plan --sample and --max-shrink end to end, on the quickstart and the reference backend."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli_state import State

ROOT = Path(__file__).resolve().parent.parent.parent
QUICKSTART = ROOT / "examples" / "quickstart"
WEEKLY = "{field: Frequency, op: equals, value: Weekly}"
MONTHLY = "{field: Frequency, op: equals, value: Monthly}"
LINE = '  ~ segment "Weekly readers" (Newsletter @ local)  sample: 2 → 1 (-50 %), 2 leave, 1 join'
REFUSED = (
    '! Safety limit: segment "Weekly readers" in list "Newsletter" would lose 2 of its 2 '
    "sample members (100 %), more than --max-shrink 40 %."
)
# The quickstart's Newsletter subscribers, without events (CSV and JSON Lines rows are
# evaluated against today, and the impact below must not depend on the day).
ROWS = [
    ("ann@gmail.com", "active", "Weekly"),
    ("bob@example.org", "", "Emergency Only"),
    ("carol@gmail.com", "unsubscribed", "weekly"),
    ("dan@example.com", "active", "Monthly"),
    ("erin@example.net", "", "Weekly"),
]


def _run(*args: str) -> Result:
    return CliRunner().invoke(
        cli, ["-c", "quickstart/reconciler.yaml", "--no-color", *args], obj=State()
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The quickstart applied, then "Weekly readers" changed from Weekly to Monthly."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconciler"))
    applied = _run("apply", "--auto-approve", "-q")
    assert applied.exit_code == 0, applied.output
    config = root / "reconciler.yaml"
    config.write_text(config.read_text().replace(WEEKLY, MONTHLY))
    (tmp_path / "sample.csv").write_text(
        "list,email,status,fields.Frequency\n"
        + "".join(f"Newsletter,{email},{status},{frequency}\n" for email, status, frequency in ROWS)
    )
    (tmp_path / "sample.jsonl").write_text(
        "".join(
            json.dumps(
                {"list": "Newsletter", "email": email, "fields": {"Frequency": frequency}}
                | ({"status": status} if status else {})
            )
            + "\n"
            for email, status, frequency in ROWS
        )
    )
    return root


@pytest.mark.parametrize("sample", ["quickstart/tests/segments.yaml", "sample.csv", "sample.jsonl"])
def test_plan_shows_each_changes_members_on_the_sample(project: Path, sample: str) -> None:
    result = _run("plan", "--sample", sample)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        LINE,
        '      - Frequency equals "Weekly"',
        '      + Frequency equals "Monthly"',
        "",
        "Plan: 0 to create, 1 to update, 0 to delete.",
    ]


def test_without_a_sample_the_plan_is_as_before(project: Path) -> None:
    result = _run("plan")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == '  ~ segment "Weekly readers" (Newsletter @ local)'


def test_max_shrink_refuses_with_exit_3_until_acknowledged(project: Path) -> None:
    sample = ("--sample", "sample.csv")
    refused = _run("plan", *sample, "--max-shrink", "40")
    assert refused.exit_code == 3, refused.output
    assert REFUSED in refused.stdout.splitlines()
    assert (
        "  Acknowledge with --allow-delete 'Weekly readers', or all with --allow-deletes."
        in refused.stdout.splitlines()
    )
    for flags in (["--allow-delete", "Weekly readers"], ["--allow-deletes"]):
        allowed = _run("plan", *sample, "--max-shrink", "40", *flags)
        assert allowed.exit_code == 0, allowed.output
        assert "  Safety limit acknowledged: " + REFUSED[len("! Safety limit: ") :] in (
            allowed.stdout.splitlines()
        )
    assert _run("plan", *sample, "--max-shrink", "100").exit_code == 0
    assert _run("plan", *sample, "--max-shrink", "40", "--allow-delete", "Other").exit_code == 3


def test_max_shrink_needs_a_sample_and_a_percentage(project: Path) -> None:
    result = _run("plan", "--max-shrink", "40")
    assert result.exit_code == 1
    assert "--max-shrink needs --sample FILE" in result.stderr
    result = _run("plan", "--sample", "sample.csv", "--max-shrink", "101")
    assert result.exit_code == 1
    assert "101" in result.stderr


def test_json_plan_has_the_impact_per_change(project: Path) -> None:
    result = _run("plan", "--sample", "sample.jsonl", "--max-shrink", "40", "--format", "json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    (change,) = document["changes"]
    assert change["impact"] == {
        "sample": 5,
        "before": 2,
        "after": 1,
        "left": 2,
        "joined": 1,
        "undecided": 0,
    }
    assert document["safety"]["max_shrink_fraction"] == 0.4
    (limit,) = document["safety"]["shrink_limits"]
    assert (limit["segment"], limit["before"], limit["lost"], limit["acknowledged"]) == (
        "Weekly readers",
        2,
        2,
        False,
    )


def test_apply_refuses_past_max_shrink_before_any_write(project: Path) -> None:
    result = _run("apply", "--auto-approve", "--sample", "sample.csv", "--max-shrink", "40")
    assert result.exit_code == 3, result.output
    assert LINE in result.stdout.splitlines()
    assert "refused by a safety limit" in result.stderr
    assert "Acknowledge each segment with --allow-delete NAME" in result.stderr
    assert _run("plan", "--detailed-exitcode").exit_code == 2  # nothing was written
    done = _run(
        "apply",
        "--auto-approve",
        "--sample",
        "sample.csv",
        "--max-shrink",
        "40",
        "--allow-delete",
        "Weekly readers",
    )
    assert done.exit_code == 0, done.output
    assert _run("plan", "--detailed-exitcode").exit_code == 0


def test_a_saved_plans_impact_is_display_only(project: Path) -> None:
    saved = _run("plan", "--sample", "sample.csv", "-o", "plan.json", "-q")
    assert saved.exit_code == 0, saved.output
    document = json.loads(Path("plan.json").read_text())
    document["changes"][0]["impact"] = {"sample": 1, "before": 0, "after": 0}  # edited
    Path("plan.json").write_text(json.dumps(document))
    refused = _run("apply", "plan.json", "--sample", "sample.csv", "--max-shrink", "40")
    assert refused.exit_code == 3, refused.output  # judged on the plan made now
    applied = _run("apply", "plan.json")
    assert applied.exit_code == 0, applied.output


def test_a_saved_plan_without_impact_still_applies_and_loads(project: Path) -> None:
    assert _run("plan", "-o", "plan.json", "-q").exit_code == 0
    assert "impact" not in Path("plan.json").read_text()
    result = _run("apply", "plan.json", "--sample", "sample.csv", "--max-shrink", "100")
    assert result.exit_code == 0, result.output


def test_a_sample_may_name_lists_outside_list(project: Path) -> None:
    result = _run("plan", "--list", "VIP", "--sample", "quickstart/tests/segments.yaml")
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout


def test_a_bad_sample_is_an_error_at_its_line_before_reading_the_platform(project: Path) -> None:
    Path("bad.csv").write_text("list,email\nNewsletter,a@x.org\nNewsleter,b@x.org\n")
    result = _run("plan", "--sample", "bad.csv")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        'Error: bad.csv:3: unknown list "Newsleter" (did you mean "Newsletter"?)'
    )
    assert "Reading" not in result.stderr


EVALUATOR = ("reconciler.evaluate", "reconciler.impact", "reconciler.sample_files")
PROBE = """\
import sys
from reconciler.cli import main
for extra in ([], ["--sample", "sample.csv"]):
    main(["-q", "-c", "quickstart/reconciler.yaml", "plan", *extra])
    print("LOADED:", *sorted(m for m in sys.modules if m in {evaluator!r}))
"""


def test_a_plan_without_a_sample_never_loads_the_evaluator(project: Path) -> None:
    probe = PROBE.format(evaluator=set(EVALUATOR))
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = [line for line in result.stdout.splitlines() if line.startswith("LOADED:")]
    assert loaded == ["LOADED:", "LOADED: " + " ".join(sorted(EVALUATOR))]
