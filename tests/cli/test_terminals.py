"""Where people run it: colour only where it can be seen, a prompt whenever stdin is a
terminal (whatever stdout is), and Ctrl-C as exit 130 with one line, never a traceback."""

from __future__ import annotations

import io
import sqlite3
from typing import Any

import pytest
from click.testing import CliRunner, Result

from providers.reference import ReferenceProvider
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.model import LiveState
from reconciler.plan import ApplyResult, Outcome, Plan
from reconciler.provider import Scope
from reconciler.workspace import Workspace
from tests.cli.conftest import Project, segments_yaml

LISTS = "lists:\n  - name: News\n    segments:\n" + segments_yaml("A", "B")


def _invoke(
    project: Project,
    *args: str,
    env: dict[str, str | None] | None = None,
    input: Any = None,
    registry: Any = None,
    stdin_tty: bool | None = None,
    stdout_tty: bool | None = None,
) -> Result:
    state = State(registry=registry, stdin_tty=stdin_tty, stdout_tty=stdout_tty)
    argv = ["-c", str(project.root / "reconciler.yaml"), *args]
    return CliRunner().invoke(
        cli,
        argv,
        obj=state,
        env={"TERM": "xterm", "NO_COLOR": None, **(env or {})},
        input=input,
        color=True,
    )


def _stored(project: Project) -> list[str]:
    """The segments in the store (none if there is no store yet)."""
    if not (project.root / "state.db").exists():
        return []
    with sqlite3.connect(project.root / "state.db") as db:
        try:
            return sorted(name for (name,) in db.execute("select name from segments"))
        except sqlite3.OperationalError:  # an empty file: no table yet
            return []


# -- colour -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "stdout_tty", "coloured"),
    [
        ((), {}, True, True),
        ((), {"NO_COLOR": ""}, True, True),  # no-color.org: set AND non-empty
        ((), {"NO_COLOR": "1"}, True, False),
        ((), {"NO_COLOR": "false"}, True, False),  # any non-empty value
        ((), {"TERM": "dumb"}, True, False),
        (("--no-color",), {}, True, False),
        ((), {}, False, False),  # piped or redirected
    ],
)
def test_colour_only_where_it_can_be_seen(
    project: Project,
    args: tuple[str, ...],
    env: dict[str, str | None],
    stdout_tty: bool,
    coloured: bool,
) -> None:
    project.write(LISTS)
    result = _invoke(project, *args, "plan", env=env, stdout_tty=stdout_tty)
    assert result.exit_code == 0, result.output
    assert ("\x1b[" in result.stdout) is coloured
    assert (
        result.stdout.replace("\x1b[32m", "")
        .replace("\x1b[0m", "")
        .replace("\x1b[1m", "")
        .endswith("Plan: 3 to create, 0 to update, 0 to delete.\n")
    )


def test_json_on_a_terminal_is_never_coloured(project: Project) -> None:
    project.write(LISTS)
    result = _invoke(project, "plan", "--format", "json", stdout_tty=True)
    assert result.exit_code == 0 and "\x1b" not in result.stdout


# -- the confirmation prompt ----------------------------------------------------------------


def test_apply_prompts_when_stdin_is_a_terminal_even_with_stdout_piped(project: Project) -> None:
    project.write(LISTS)
    result = _invoke(project, "apply", input="yes\n", stdin_tty=True, stdout_tty=False)
    assert result.exit_code == 0, result.output
    assert "Apply these changes? [y/N]: " in result.stderr  # the prompt is not in the log
    assert "Apply these changes?" not in result.stdout
    assert "Apply: 3 applied, 0 failed, 0 skipped." in result.stdout
    assert _stored(project) == ["A", "B"]


@pytest.mark.parametrize("answer", ["n\n", "\n", "maybe\n", ""])
def test_anything_but_yes_cancels(project: Project, answer: str) -> None:
    project.write(LISTS)
    result = _invoke(project, "apply", input=answer, stdin_tty=True, stdout_tty=True)
    assert result.exit_code == 1
    assert result.stderr.endswith("Apply cancelled.\n")
    assert _stored(project) == []


@pytest.mark.parametrize("stdout_tty", [True, False])
def test_no_terminal_on_stdin_refuses_without_auto_approve(
    project: Project, stdout_tty: bool
) -> None:
    project.write(LISTS)
    result = _invoke(project, "apply", input="yes\n", stdin_tty=False, stdout_tty=stdout_tty)
    assert result.exit_code == 1
    assert "apply does not prompt without a terminal on stdin: pass --auto-approve" in (
        result.stderr
    )
    assert "Apply these changes?" not in result.output


# -- Ctrl-C -----------------------------------------------------------------------------------


class CtrlC(io.BytesIO):
    """Standard input where the person presses Ctrl-C instead of answering (a read of
    nothing answers: click probes the stream that way)."""

    def read(self, size: int | None = -1, /) -> bytes:
        if size == 0:
            return b""
        raise KeyboardInterrupt

    read1 = read

    def readline(self, size: int | None = -1, /) -> bytes:
        raise KeyboardInterrupt

    def readinto(self, buffer: Any, /) -> int:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_prompt_exits_130_and_changes_nothing(project: Project) -> None:
    project.write(LISTS)
    result = _invoke(project, "apply", input=CtrlC(), stdin_tty=True)
    assert result.exit_code == 130
    assert result.stderr.endswith("\nInterrupted.\n")
    assert "Traceback" not in result.output
    assert _stored(project) == []


class Interrupted(ReferenceProvider):
    """Ctrl-C pressed while the live state is read."""

    def fetch(self, scope: Scope) -> LiveState:
        raise KeyboardInterrupt


@pytest.mark.parametrize("command", [["plan"], ["drift"], ["apply", "--auto-approve"]])
def test_ctrl_c_outside_apply_exits_130_with_one_line(project: Project, command: list[str]) -> None:
    project.write(LISTS)
    result = _invoke(project, "--no-color", *command, registry={"reference": Interrupted})
    assert result.exit_code == 130
    assert [line for line in result.stderr.splitlines() if line.strip()][-1] == "Interrupted."
    assert "Traceback" not in result.output and "Aborted" not in result.output


def test_ctrl_c_during_apply_reports_applied_failed_and_not_started(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(LISTS)
    checked: list[str] = []

    def interrupted(self: Workspace, current: Plan) -> ApplyResult:
        first, second, third = current.changes
        return ApplyResult(
            outcomes=(
                Outcome(change=first, status="applied"),
                Outcome(change=second, status="failed", message="the platform said no"),
                Outcome(change=third, status="skipped", message="not started: interrupted"),
            ),
            interrupted=True,
        )

    monkeypatch.setattr(Workspace, "apply", interrupted)
    monkeypatch.setattr(Workspace, "check_converged", lambda self: checked.append("re-read"))
    result = _invoke(project, "--no-color", "apply", "--auto-approve")
    assert result.exit_code == 130
    assert "Apply: 1 applied, 1 failed, 1 skipped (1 not started: interrupted)." in result.stdout
    assert result.stderr.endswith(
        "Interrupted: 1 applied, 1 failed, 1 not started. Run apply again to finish: it plans "
        "from the live state.\n"
    )
    assert checked == []  # no convergence check after an interrupted run
