"""The composite action's step (action.yml): install segment-reconciler, run one command,
record its exit code, and put its Markdown report where GitHub shows it.

Inputs arrive as ``INPUT_*`` environment variables: action.yml hands each one over in the
step's ``env:``, so no input is ever pasted into a script. The same works locally, e.g.
``INPUT_COMMAND=plan INPUT_INSTALL=false python action/reconciler_action.py``. Standard
library only: it runs before the tool is installed.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from markdown_cut import Limit, comment_limit, cut, read_bounded, summary_limit

COMMANDS = frozenset({"validate", "plan", "apply", "drift", "import", "schema", "providers"})
REPORTING = frozenset({"plan", "drift"})
"""Commands that write a Markdown report with ``--markdown FILE``."""
MEANINGS = {
    0: "nothing to change",
    1: "error",
    2: "changes pending or drift found",
    3: "refused by a safety limit",
    130: "interrupted",
}
PACKAGE = "segment-reconciler"
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")


class ActionError(Exception):
    """A problem with the action's inputs or installation, reported as an annotation."""


@dataclass(frozen=True)
class Inputs:
    command: str
    config: str
    args: tuple[str, ...]
    targets: tuple[str, ...]
    markdown: Path | None
    comment: Path | None
    marker: str
    comment_size: int
    allowed: frozenset[int]
    install: bool
    version: str
    repository: str
    requirements: str

    @classmethod
    def read(cls, env: Mapping[str, str]) -> Inputs:
        def get(name: str, default: str = "") -> str:
            return env.get(f"INPUT_{name}", default).strip()

        command = get("COMMAND")
        if command not in COMMANDS:
            known = ", ".join(sorted(COMMANDS))
            raise ActionError(f"command must be one of {known}, not {command!r}")
        markdown = get("MARKDOWN")
        if markdown and command not in REPORTING:
            raise ActionError(f"markdown is for plan and drift, not {command}")
        try:
            args = tuple(shlex.split(get("ARGS")))
        except ValueError as exc:
            raise ActionError(f"args: {exc}") from exc
        allowed = get("ALLOW_EXIT_CODES") or "0"
        return cls(
            command=command,
            config=get("CONFIG", "reconciler.yaml") or "reconciler.yaml",
            args=args,
            targets=tuple(line.strip() for line in get("TARGETS").splitlines() if line.strip()),
            markdown=Path(markdown) if markdown else None,
            comment=Path(get("COMMENT")) if get("COMMENT") else None,
            marker=get("COMMENT_MARKER"),
            comment_size=_number(get("COMMENT_LIMIT", "65536") or "65536", "comment-limit"),
            allowed=frozenset(_number(code, "allow-exit-codes") for code in allowed.split()),
            install=_flag(get("INSTALL", "true") or "true", "install"),
            version=get("VERSION"),
            repository=get("REPOSITORY"),
            requirements=get("REQUIREMENTS"),
        )

    def argv(self, tool: str) -> list[str]:
        argv = [tool, "-c", self.config, self.command]
        for target in self.targets:
            argv += ["--target", target]
        if self.markdown:
            argv += ["--markdown", str(self.markdown)]
        return argv + list(self.args)


def _flag(text: str, name: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ActionError(f"{name}: {text!r} is neither true nor false")
    return text.lower() == "true"


def _number(text: str, name: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise ActionError(f"{name}: {text!r} is not a whole number")
    return int(text)


def install_spec(inputs: Inputs, action_path: Path) -> list[str]:
    """What ``pip install`` gets: a pinned requirements file, a release of the repository, or
    (by default) this action's own checkout, i.e. the commit the workflow's ``uses:`` pins."""
    if inputs.requirements:
        if not Path(inputs.requirements).is_file():
            raise ActionError(f"requirements: no file {inputs.requirements!r}")
        return ["--requirement", inputs.requirements]
    if inputs.version:
        if not _VERSION.fullmatch(inputs.version):
            raise ActionError(f"version: {inputs.version!r} is not a tag or commit")
        if not _REPOSITORY.fullmatch(inputs.repository):
            raise ActionError("version needs repository: the owner/name to install it from")
        url = f"git+https://github.com/{inputs.repository}@{inputs.version}"
        return [f"{PACKAGE} @ {url}"]
    return [str(action_path)]


def _executable(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def install(inputs: Inputs, env: Mapping[str, str]) -> str:
    """The ``reconciler`` to run: installed into a virtual environment of its own (once per
    job for the same spec), or the one on PATH when ``install`` is false."""
    if not inputs.install:
        found = shutil.which("reconciler")
        if not found:
            raise ActionError("install is false but no reconciler is on PATH")
        return found
    spec = install_spec(inputs, Path(env.get("GITHUB_ACTION_PATH") or Path(__file__).parent.parent))
    venv = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / PACKAGE
    stamp = venv / "installed-spec.txt"
    tool = _executable(venv, "reconciler")
    wanted = "\n".join(spec)
    if tool.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return str(tool)
    print(f"Installing {' '.join(spec)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(_executable(venv, "python")), "-m", "pip", "install"]
    quiet = ["--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, *quiet, *spec], check=True)
    stamp.write_text(wanted, encoding="utf-8")
    _append(env.get("GITHUB_PATH"), f"{tool.parent}\n")
    return str(tool)


def run_tool(argv: list[str]) -> int:
    """Run the tool with workflow commands switched off, so nothing it prints (names read
    from a platform included) can act as a ``::command::`` to the runner."""
    token = secrets.token_hex(16)
    print(f"::stop-commands::{token}", flush=True)
    try:
        return subprocess.run(argv, check=False).returncode
    finally:
        print(f"::{token}::", flush=True)


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def run_url(env: Mapping[str, str]) -> str:
    server, repository, run = (
        env.get(name, "") for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""


def _report(path: Path | None, limit: Limit, where: str) -> str:
    if path is None or not path.is_file():
        return ""
    head, lines = read_bounded(path, limit)
    return cut(head, limit, where, lines)


def add_summary(inputs: Inputs, env: Mapping[str, str]) -> None:
    """Append the Markdown report to the step's summary, cut to what the 1 MiB still holds."""
    summary = env.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    used = os.path.getsize(summary) if os.path.exists(summary) else 0
    room = summary_limit().size - used
    if room > 0:
        _append(summary, _report(inputs.markdown, summary_limit(room), run_url(env)))


def _headline(inputs: Inputs, code: int) -> str:
    command = shlex.join(["reconciler", inputs.command, *(f"--target={t}" for t in inputs.targets)])
    meaning = MEANINGS.get(code, "unexpected exit code")
    return f"**`{command}` failed: exit {code} ({meaning}).**"


def write_comment(inputs: Inputs, code: int, env: Mapping[str, str]) -> None:
    """Write a comment body: the marker, a headline if the command failed, and the report,
    all within the comment limit."""
    if inputs.comment is None:
        return
    head = f"{inputs.marker}\n" if inputs.marker else ""
    if code not in inputs.allowed:
        where = run_url(env)
        head += _headline(inputs, code) + (f" [The log]({where})." if where else "") + "\n\n"
    room = max(inputs.comment_size - len(head), 0)
    body = _report(inputs.markdown, comment_limit(room, inputs.comment_size), run_url(env))
    inputs.comment.write_text(head + body, encoding="utf-8")


def _annotation(text: str) -> str:
    """``text`` safe as a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def main(env: Mapping[str, str], runner: Callable[[list[str]], int] = run_tool) -> int:
    """The step: ``runner`` runs the tool's command line and returns its exit code."""
    try:
        inputs = Inputs.read(env)
        tool = install(inputs, env)
    except (ActionError, subprocess.CalledProcessError) as exc:
        print(f"::error title=segment-reconciler action::{_annotation(str(exc))}", flush=True)
        return 1
    if inputs.markdown:  # never report a file left by an earlier step
        inputs.markdown.unlink(missing_ok=True)
    code = runner(inputs.argv(tool))
    _append(env.get("GITHUB_OUTPUT"), f"exit-code={code}\n")
    add_summary(inputs, env)
    write_comment(inputs, code, env)
    if code in inputs.allowed:
        return 0
    meaning = MEANINGS.get(code, "unexpected exit code")
    print(f"::error title=reconciler {inputs.command}::exit {code}: {meaning}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(os.environ))
