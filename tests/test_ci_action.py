"""The GitHub Action (action.yml): its step runs the tool on the quickstart as GitHub would,
installs only what it is pinned to, and cuts reports to GitHub's size limits."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "action"
SCRIPT = SCRIPTS / "reconciler_action.py"
EXAMPLES = ROOT / "examples"
RUN_URL = "https://github.example/owner/repo/actions/runs/7"
MARKER = "<!-- test marker -->"


@pytest.fixture(scope="module")
def action() -> Iterator[ModuleType]:
    """The action's step as a module (it imports its sibling ``markdown_cut``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        yield importlib.import_module("reconciler_action")


@pytest.fixture(scope="module")
def cutting(action: ModuleType) -> ModuleType:
    return importlib.import_module("markdown_cut")


class Step:
    """One run of the action's step: its exit status, what it printed, and its outputs."""

    def __init__(self, workspace: Path, status: int, stdout: str) -> None:
        self.workspace = workspace
        self.status = status
        self.stdout = stdout
        output = workspace / "github_output"
        lines = output.read_text(encoding="utf-8").splitlines() if output.exists() else []
        self.outputs = dict(line.split("=", 1) for line in lines)
        output.unlink(missing_ok=True)

    @property
    def summary(self) -> str:
        return (self.workspace / "github_summary").read_text(encoding="utf-8")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout holding the quickstart, as ``actions/checkout`` leaves it."""
    root = tmp_path / "workspace"
    shutil.copytree(
        EXAMPLES / "quickstart", root / "quickstart", ignore=shutil.ignore_patterns(".reconciler")
    )
    (root / "github_summary").write_text("", encoding="utf-8")
    return root


def _environment(workspace: Path, inputs: dict[str, str]) -> dict[str, str]:
    """What action.yml and the runner give the step: inputs as INPUT_* variables (the tool
    already on PATH: ``install: false``) and GitHub's output and summary files."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_OUTPUT": str(workspace / "github_output"),
        "GITHUB_STEP_SUMMARY": str(workspace / "github_summary"),
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "owner/repo",
        "GITHUB_RUN_ID": "7",
        "INPUT_CONFIG": "quickstart/reconciler.yaml",
        "INPUT_INSTALL": "false",
        "NO_COLOR": "1",
    }
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    return env


def _script(workspace: Path, **inputs: str) -> Step:
    """Run action/reconciler_action.py as the action does: a process of its own."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=workspace,
        env={**os.environ, **_environment(workspace, inputs)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not result.stderr.startswith("Traceback"), result.stderr
    return Step(workspace, result.returncode, result.stdout)


def _in_process(argv: list[str]) -> int:
    """The tool run by click's test runner instead of a process of its own (faster)."""
    result = CliRunner().invoke(cli, argv[1:])
    print(result.output)
    return result.exit_code


@pytest.fixture
def step(
    action: ModuleType,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Step]:
    """The step run in this process, the tool through click's test runner."""
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("PATH", _environment(workspace, {})["PATH"])

    def run(**inputs: str) -> Step:
        status = action.main(_environment(workspace, inputs), runner=_in_process)
        return Step(workspace, status, capsys.readouterr().out)

    return run


# -- action.yml ------------------------------------------------------------------------


def test_action_hands_every_input_over_as_an_environment_variable() -> None:
    action = YAML(typ="safe", pure=True).load((ROOT / "action.yml").read_text(encoding="utf-8"))
    steps = action["runs"]["steps"]
    run = next(step for step in steps if "run" in step)
    assert "${{" not in run["run"], "an input pasted into the script could run as code"
    expected = {
        f"INPUT_{name.upper().replace('-', '_')}": f"${{{{ inputs.{name} }}}}"
        for name in action["inputs"]
        if name != "python-version"
    }
    assert {key: run["env"][key] for key in expected} == expected
    source = SCRIPT.read_text(encoding="utf-8")
    for key in expected:
        assert f'"{key.removeprefix("INPUT_")}"' in source, f"{key} is never read"
    assert {"command", "config", "version", "args", "python-version"} <= set(action["inputs"])
    assert action["outputs"]["exit-code"]["value"] == "${{ steps.run.outputs.exit-code }}"


# -- the step on the quickstart ---------------------------------------------------------


def test_script_plans_and_applies_the_quickstart_as_github_runs_it(workspace: Path) -> None:
    """The script in a process of its own: outputs, summary, comment, then the saved plan
    applied; workflow commands are off while the tool prints (a name read from the YAML or
    a platform cannot act as a command to the runner)."""
    config = workspace / "quickstart" / "reconciler.yaml"
    spoof = "::add-mask::x"
    config.write_text(
        config.read_text(encoding="utf-8").replace("Weekly readers", f'"{spoof}"'),
        encoding="utf-8",
    )
    planned = _script(
        workspace,
        command="plan",
        args="--detailed-exitcode -o plan.json",
        markdown="plan.md",
        comment="comment.md",
        comment_marker=MARKER,
        allow_exit_codes="0 2",
    )
    assert planned.status == 0, planned.stdout
    assert planned.outputs == {"exit-code": "2"}
    markdown = (workspace / "plan.md").read_text(encoding="utf-8")
    assert "**Plan: 11 to create, 0 to update, 0 to delete.**" in markdown
    assert planned.summary == markdown
    assert (workspace / "comment.md").read_text(encoding="utf-8") == f"{MARKER}\n{markdown}"
    found = re.search(r"^::stop-commands::([0-9a-f]{32})$", planned.stdout, re.MULTILINE)
    assert found, planned.stdout
    assert found.end() < planned.stdout.index(spoof) < planned.stdout.index(f"::{found[1]}::")

    applied = _script(workspace, command="apply", args="plan.json")
    assert applied.status == 0, applied.stdout
    assert applied.outputs == {"exit-code": "0"}
    assert "Apply: 11 applied, 0 failed, 0 skipped." in applied.stdout


def test_step_validates_offline_plans_applies_and_converges(step: Callable[..., Step]) -> None:
    validated = step(command="validate", args="--offline")
    assert (validated.status, validated.outputs) == (0, {"exit-code": "0"}), validated.stdout
    planned = step(command="plan", args="-o plan.json", markdown="plan.md")
    assert planned.outputs == {"exit-code": "0"}, planned.stdout
    assert json.loads(Path("plan.json").read_text(encoding="utf-8"))["changes"]
    applied = step(command="apply", args="plan.json")
    assert (applied.status, applied.outputs) == (0, {"exit-code": "0"}), applied.stdout
    again = step(command="plan", args="--detailed-exitcode")
    assert again.outputs == {"exit-code": "0"}, again.stdout
    assert "No changes." in again.stdout


def test_step_refuses_a_stale_plan_and_the_next_plan_shows_what_changed(
    step: Callable[..., Step], workspace: Path
) -> None:
    planned = step(command="plan", args="-o plan.json")
    assert planned.outputs == {"exit-code": "0"}, planned.stdout
    config = workspace / "quickstart" / "reconciler.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("Weekly readers", "Weekly subscribers"),
        encoding="utf-8",
    )

    applied = step(command="apply", args="plan.json")
    assert (applied.status, applied.outputs) == (1, {"exit-code": "1"})
    assert "::error title=reconciler apply::exit 1: error" in applied.stdout
    assert "Apply:" not in applied.stdout, "a stale plan applies nothing"

    pending = step(command="plan", markdown="pending.md", allow_exit_codes="0 2 3")
    assert pending.status == 0, pending.stdout
    assert "Weekly subscribers" in pending.summary


def test_step_writes_json_markdown_and_junit_from_one_drift_run(
    step: Callable[..., Step], workspace: Path
) -> None:
    drift = step(
        command="drift",
        args="--format json -o drift.json --junit drift.xml",
        markdown="drift.md",
        allow_exit_codes="0 2",
    )
    assert drift.status == 0, drift.stdout
    assert drift.outputs == {"exit-code": "2"}, "the quickstart was never applied: drift"
    assert json.loads((workspace / "drift.json").read_text(encoding="utf-8"))
    assert list(ElementTree.parse(workspace / "drift.xml").getroot().iter("testcase"))
    assert drift.summary == (workspace / "drift.md").read_text(encoding="utf-8") != ""


def test_step_fails_when_the_exit_code_is_not_allowed(step: Callable[..., Step]) -> None:
    drift = step(command="drift")
    assert (drift.status, drift.outputs) == (1, {"exit-code": "2"})
    assert "::error title=reconciler drift::exit 2: changes pending or drift found" in (
        drift.stdout
    )


def test_step_validates_a_provider_example_offline_without_credentials(
    step: Callable[..., Step], workspace: Path
) -> None:
    config = "campaignmonitor/reconciler.yaml"
    shutil.copytree(EXAMPLES / "campaignmonitor", workspace / "campaignmonitor")
    assert "${CM_API_KEY}" in (workspace / config).read_text(encoding="utf-8")
    assert "CM_API_KEY" not in os.environ
    validated = step(command="validate", config=config, args="--offline")
    assert validated.status == 0, validated.stdout
    online = step(command="validate", config=config)
    assert online.outputs == {"exit-code": "1"}, "without --offline the variables must be set"


def test_failed_step_comments_with_the_failure_not_an_old_report(
    step: Callable[..., Step], workspace: Path
) -> None:
    (workspace / "plan.md").write_text("an old plan\n", encoding="utf-8")
    config = workspace / "quickstart" / "reconciler.yaml"
    config.write_text("version: 1\nlists: {}\n", encoding="utf-8")
    failed = step(
        command="plan",
        markdown="plan.md",
        comment="comment.md",
        comment_marker=MARKER,
        allow_exit_codes="0 2",
    )
    assert (failed.status, failed.outputs) == (1, {"exit-code": "1"})
    assert (workspace / "comment.md").read_text(encoding="utf-8") == (
        f"{MARKER}\n**`reconciler plan` failed: exit 1 (error).** [The log]({RUN_URL}).\n\n"
    )
    assert "an old plan" not in failed.summary


# -- inputs and installation (in process) ------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({"COMMAND": "rm"}, "command must be one of"),
        ({"COMMAND": "apply", "MARKDOWN": "x.md"}, "markdown is for plan and drift"),
        ({"COMMAND": "plan", "ARGS": "--list 'unclosed"}, "args: No closing quotation"),
        ({"COMMAND": "plan", "ALLOW_EXIT_CODES": "0 two"}, "is not a whole number"),
        ({"COMMAND": "plan", "INSTALL": "maybe"}, "neither true nor false"),
        ({"COMMAND": "plan", "VERSION": "--index-url=https://evil"}, "is not a tag or commit"),
        ({"COMMAND": "plan", "VERSION": "v1 --pre"}, "is not a tag or commit"),
        ({"COMMAND": "plan", "VERSION": "v1.0.0"}, "version needs repository"),
        ({"COMMAND": "plan", "VERSION": "v1", "REPOSITORY": "a/b c"}, "version needs repository"),
        ({"COMMAND": "plan", "REQUIREMENTS": "missing.txt"}, "no file 'missing.txt'"),
    ],
)
def test_step_refuses_bad_inputs_before_running_anything(
    action: ModuleType,
    inputs: dict[str, str],
    problem: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(action.subprocess, "run", _forbidden)
    env = {f"INPUT_{name}": value for name, value in inputs.items()}
    env["GITHUB_OUTPUT"] = str(tmp_path / "output")
    assert action.main(env) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("::error title=segment-reconciler action::"), printed
    assert problem in printed
    assert not (tmp_path / "output").exists()


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"nothing may run: {args}")


def _inputs(action: ModuleType, **values: str) -> object:
    env = {"INPUT_COMMAND": "plan", **{f"INPUT_{k.upper()}": v for k, v in values.items()}}
    return action.Inputs.read(env)


def test_install_defaults_to_the_actions_own_commit(action: ModuleType, tmp_path: Path) -> None:
    assert action.install_spec(_inputs(action), tmp_path) == [str(tmp_path)]


def test_install_takes_a_version_from_a_repository(action: ModuleType, tmp_path: Path) -> None:
    inputs = _inputs(action, version="0123abc", repository="acme/segment-reconciler")
    assert action.install_spec(inputs, tmp_path) == [
        "segment-reconciler @ git+https://github.com/acme/segment-reconciler@0123abc"
    ]


def test_install_takes_a_pinned_requirements_file(
    action: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLES / "ci")
    inputs = _inputs(action, requirements="requirements.txt", version="v1")
    assert action.install_spec(inputs, tmp_path) == ["--requirement", "requirements.txt"]


def test_install_builds_its_own_environment_once_per_job(
    action: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], check: bool) -> None:
        calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:  # what venv would leave: the tool's entry point
            tool = action._executable(Path(argv[-1]), "reconciler")
            tool.parent.mkdir(parents=True, exist_ok=True)
            tool.write_text("", encoding="utf-8")

    monkeypatch.setattr(action.subprocess, "run", run)
    env = {
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_ACTION_PATH": "/actions/segment-reconciler",
        "GITHUB_PATH": str(tmp_path / "github_path"),
    }
    venv = tmp_path / "segment-reconciler"
    tool = action.install(_inputs(action), env)
    assert tool == str(action._executable(venv, "reconciler"))
    python = str(action._executable(venv, "python"))
    assert calls == [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
         "/actions/segment-reconciler"],
    ]  # fmt: skip
    assert (tmp_path / "github_path").read_text(encoding="utf-8") == f"{Path(tool).parent}\n"

    assert action.install(_inputs(action), env) == tool
    assert len(calls) == 2, "the same spec is installed once per job"
    action.install(_inputs(action, version="v2", repository="acme/tool"), env)
    assert len(calls) == 4, "another spec replaces it"


# -- cutting reports to GitHub's limits --------------------------------------------------


def _plan_markdown(changes: int) -> str:
    """A plan shaped like the tool's: a table, then one diff fence per segment."""
    rows = "".join(f"| create\\_segment | t | List | Segment {n} |\n" for n in range(changes))
    fences = "".join(
        f'\n`+ segment "Segment {n}"`\n\n```diff\n+ email contains "@{n}.example"\n'
        f'+ status equals "active"\n```\n'
        for n in range(changes)
    )
    return (
        f"### Reconciler plan\n\n**Plan: {changes} to create.**\n\n"
        f"| action | target | list | segment |\n| --- | --- | --- | --- |\n{rows}{fences}"
    )


def _fences_balanced(text: str) -> bool:
    return sum(1 for line in text.splitlines() if line.startswith("```")) % 2 == 0


def test_a_200_kB_plan_is_cut_to_a_comment_with_a_note(cutting: ModuleType) -> None:
    plan = _plan_markdown(1_410)
    assert 195_000 < len(plan) < 210_000
    cut = cutting.cut(plan, cutting.comment_limit(), RUN_URL)
    assert 60_000 < len(cut) <= 65_536
    body, _, note = cut.rpartition("\n> [!WARNING]\n")
    found = re.fullmatch(
        r"> Cut to fit a GitHub comment \(65,536 characters\): the first ([\d,]+) of ([\d,]+) "
        r"lines are shown\. The whole report: (\S+)\.\n",
        note,
    )
    assert found, note
    shown, total = (int(group.replace(",", "")) for group in found.groups()[:2])
    assert (total, found.group(3)) == (plan.count("\n"), RUN_URL)
    kept = body if plan.startswith(body) else body.removesuffix("```\n")
    assert plan.startswith(kept), "the cut keeps the report's first lines"
    assert kept.count("\n") == shown
    assert _fences_balanced(body)


def test_a_cut_inside_a_fence_closes_it(cutting: ModuleType) -> None:
    fenced = "### Plan\n\n````diff\n" + "+ a line of a long diff\n" * 10_000 + "````\n"
    cut = cutting.cut(fenced, cutting.comment_limit(1_000))
    assert len(cut) <= 1_000
    body = cut.rpartition("\n> [!WARNING]\n")[0]
    assert body.endswith("+ a line of a long diff\n````\n")


def test_the_summary_is_cut_in_bytes(cutting: ModuleType) -> None:
    wide = "| Große Ämter 🎯 | ✓ |\n" * 80_000
    assert len(wide) < 2_000_000 < len(wide.encode("utf-8"))
    cut = cutting.cut(wide, cutting.summary_limit())
    assert 1_000_000 < len(cut.encode("utf-8")) <= 1_048_576
    assert "Cut to fit a GitHub job summary (1,048,576 bytes)" in cut


def test_a_report_within_the_limit_is_unchanged(cutting: ModuleType) -> None:
    plan = _plan_markdown(50)
    assert cutting.cut(plan, cutting.comment_limit()) == plan


def test_a_line_longer_than_the_limit_keeps_its_head(cutting: ModuleType) -> None:
    cut = cutting.cut("x" * 5_000, cutting.comment_limit(1_000))
    assert len(cut) <= 1_000
    assert cut.startswith("x" * 500)
    assert "the first 1 of 1 lines are shown" in cut


def test_a_big_report_is_read_only_as_far_as_the_cut_needs(
    cutting: ModuleType, tmp_path: Path
) -> None:
    report = tmp_path / "drift.md"
    report.write_text("é line\n" * 1_000_000, encoding="utf-8")
    head, lines = cutting.read_bounded(report, cutting.comment_limit(1_000))
    assert len(head.encode("utf-8")) <= 4 * 1_000 + 4
    assert lines == 1_000_000
    assert "of 1,000,000 lines" in cutting.cut(head, cutting.comment_limit(1_000), "", lines)


def test_step_cuts_the_comment_and_what_the_summary_still_holds(
    action: ModuleType, tmp_path: Path
) -> None:
    report = tmp_path / "plan.md"
    report.write_text(_plan_markdown(1_200), encoding="utf-8")
    summary = tmp_path / "summary"
    summary.write_bytes(b"x" * 1_000_000)
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    comment = str(tmp_path / "c.md")
    inputs = _inputs(
        action, markdown=str(report), comment=comment, comment_marker=MARKER, allow_exit_codes="2"
    )
    action.add_summary(inputs, env)
    assert 1_040_000 < summary.stat().st_size <= 1_048_576
    action.write_comment(inputs, 2, env)
    body = Path(comment).read_text(encoding="utf-8")
    assert body.startswith(f"{MARKER}\n### Reconciler plan\n")
    assert 60_000 < len(body) <= 65_536
    assert "Cut to fit a GitHub comment (65,536 characters)" in body
