"""The CI example (examples/ci/): GitHub's schemas accept it, it is safe by construction
(permissions, secrets, concurrency, pinning, forks), and its shell steps do what they say,
run here against a fake ``gh``."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
SINGLE = CI / "reconciler.yml"
MATRIX = CI / "reconciler-matrix.yml"
WORKFLOWS = [SINGLE, MATRIX]
ACTION = ROOT / "action.yml"
TOOL = "OWNER/segment-reconciler@COMMIT_SHA"
"""The placeholder every workflow uses: the user sets the repository and a commit."""
GITHUB_ACTIONS = re.compile(
    r"actions/(checkout|setup-python|upload-artifact|download-artifact)@v\d+"
)
PLAN_MARKER = "<!-- segment-reconciler plan -->"
DRIFT_MARKER = "<!-- segment-reconciler drift -->"

Document = dict[str, Any]


def _load(path: Path) -> Document:
    """YAML 1.2, so that the key ``on`` stays a string."""
    document: Document = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    return document


def _strings(
    node: object, path: tuple[object, ...] = ()
) -> Iterator[tuple[tuple[object, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index))
    elif isinstance(node, str):
        yield path, node


def _steps(job: Document) -> list[Document]:
    steps: list[Document] = job["steps"]
    return steps


def _tool_steps(job: Document) -> list[Document]:
    return [step for step in _steps(job) if step.get("uses") == TOOL]


def _commands(job: Document) -> set[str]:
    return {step["with"]["command"] for step in _tool_steps(job)}


def _job_running(document: Document, command: str) -> tuple[str, Document]:
    """The one job whose first tool step runs ``command``."""
    found = [
        (name, job)
        for name, job in document["jobs"].items()
        if _tool_steps(job) and _tool_steps(job)[0]["with"]["command"] == command
    ]
    assert len(found) == 1, f"{len(found)} jobs run {command}"
    return found[0]


def _step(job: Document, name: str) -> Document:
    found = [step for step in _steps(job) if step.get("name") == name]
    assert len(found) == 1, name
    return found[0]


def _has_secrets(node: object) -> bool:
    return any("secrets." in text for _, text in _strings(node))


@pytest.fixture(scope="module")
def action() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "action"))
        yield importlib.import_module("reconciler_action")


workflows = pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)


# -- GitHub's schemas ------------------------------------------------------------------


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with a schema it bundles (vendored from SchemaStore): no network."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workflows_and_action_match_githubs_schemas() -> None:
    checked = _check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = _check_jsonschema("vendor.github-actions", ACTION)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schemas_catch_a_broken_workflow_and_action(tmp_path: Path) -> None:
    """The check above could fail: a wrong permission level and a step without a shell."""
    workflow = tmp_path / "broken.yml"
    text = SINGLE.read_text(encoding="utf-8")
    workflow.write_text(text.replace("contents: read", "contents: readonly", 1), "utf-8")
    assert _check_jsonschema("vendor.github-workflows", workflow).returncode == 1
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text(encoding="utf-8").replace("shell: bash", ""), "utf-8")
    assert _check_jsonschema("vendor.github-actions", broken).returncode == 1


# -- safety by construction ---------------------------------------------------------------


@workflows
def test_permissions_are_minimal_per_job(path: Path) -> None:
    document = _load(path)
    assert document["permissions"] == {}, "nothing by default"
    allowed = {("contents", "read"), ("actions", "read")}
    writers = ("pull-requests", "issues")
    for name, job in document["jobs"].items():
        granted = set(job["permissions"].items())
        writes = {scope for scope, level in granted if level == "write"}
        assert granted - allowed <= {(scope, "write") for scope in writers}, name
        if writes:  # a job that may write sees no secret and runs no project code
            assert job["permissions"] == {writes.pop(): "write"}, name
            assert not _has_secrets(job), name
            assert not _tool_steps(job), name
            assert not any(
                str(s.get("uses", "")).startswith("actions/checkout") for s in job["steps"]
            )
        if ("actions", "read") in granted:
            assert _commands(job) >= {"apply"}, f"{name}: only apply fetches an earlier plan"
    for scope in writers:
        holders = [n for n, j in document["jobs"].items() if j["permissions"].get(scope) == "write"]
        assert len(holders) == 1, f"{scope}: write in {holders}"
    comment = next(j for j in document["jobs"].values() if "pull-requests" in j["permissions"])
    assert "github.event_name == 'pull_request'" in comment["if"]


@workflows
def test_secrets_only_in_the_env_of_steps_reading_a_platform(path: Path) -> None:
    document = _load(path)
    assert "secrets: inherit" not in path.read_text(encoding="utf-8")
    found = [where for where, text in _strings(document) if "secrets." in text]
    assert found, "the example shows where credentials go"
    for where in found:
        assert where[0] == "jobs" and where[2] == "steps" and where[4] == "env", where
        step = document["jobs"][where[1]]["steps"][where[3]]
        assert step.get("uses") == TOOL, where
        assert step["with"]["command"] in {"plan", "apply", "drift"}, where
    for name, job in document["jobs"].items():
        for step in _tool_steps(job):
            env = step.get("env", {})
            assert "github.token" not in json.dumps(env), f"{name}: the tool gets no GitHub token"


@workflows
def test_run_scripts_get_values_through_env_only(path: Path) -> None:
    """An expression pasted into a script (a branch name, a title) could run as code."""
    for name, job in _load(path)["jobs"].items():
        for step in _steps(job):
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name')}"
    assert "pull_request_target" not in path.read_text(encoding="utf-8")


@workflows
def test_every_checkout_leaves_no_token_behind(path: Path) -> None:
    document = _load(path)
    assert document["defaults"] == {"run": {"shell": "bash"}}, "bash -eo pipefail"
    checkouts = [
        step
        for job in document["jobs"].values()
        for step in _steps(job)
        if str(step.get("uses", "")).startswith("actions/checkout")
    ]
    assert checkouts
    assert all(step["with"] == {"persist-credentials": False} for step in checkouts)


@workflows
def test_the_tool_is_pinned_and_nothing_else_is_installed(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    header = text[: text.index("\nname:")]
    assert TOOL in header, "the opening comment says what to pin"
    assert "pip install" not in text, "the action installs the pinned commit"
    for job in _load(path)["jobs"].values():
        for step in _steps(job):
            uses = step.get("uses")
            assert uses is None or uses == TOOL or GITHUB_ACTIONS.fullmatch(uses), uses


@workflows
def test_pull_requests_validate_offline_then_plan_only_with_secrets(path: Path) -> None:
    document = _load(path)
    assert {"pull_request", "push", "schedule"} <= set(document["on"])
    _, validate = _job_running(document, "validate")
    assert "if" not in validate, "forks are validated too"
    assert not _has_secrets(validate)
    assert _tool_steps(validate)[0]["with"]["args"] == "--offline"
    _, plan = _job_running(document, "plan")
    assert plan["needs"] == "validate"
    assert "github.event.pull_request.head.repo.full_name == github.repository" in plan["if"]
    assert "dependabot[bot]" in plan["if"]
    planned = _tool_steps(plan)[0]["with"]
    assert planned["allow-exit-codes"] == "0 2"
    assert "--detailed-exitcode -o plan.json" in planned["args"]
    assert planned["markdown"] == "plan.md"


def test_one_pr_comment_found_by_its_marker_and_cut_to_githubs_limit() -> None:
    document = _load(SINGLE)
    plan = _tool_steps(_job_running(document, "plan")[1])[0]["with"]
    assert plan["comment-marker"] == PLAN_MARKER
    assert "comment-limit" not in plan
    default = _load(ACTION)["inputs"]["comment-limit"]["default"]
    assert default == "65536", "GitHub refuses a comment past 65,536 characters"
    post = _step(document["jobs"]["comment"], "Post or update the one plan comment")
    assert post["env"]["MARKER"] == PLAN_MARKER
    matrix = _load(MATRIX)["jobs"]["comment"]
    joined = _step(matrix, "Join the sections into one comment, within GitHub's 65,536 characters")
    assert joined["env"]["MARKER"] == PLAN_MARKER
    assert _step(matrix, "Post or update the one plan comment")["run"] == post["run"]


@workflows
def test_apply_is_never_cancelled_and_never_shares_a_group(path: Path) -> None:
    document = _load(path)
    assert "concurrency" not in document, "one workflow-wide group would couple apply and drift"
    _, apply = _job_running(document, "apply")
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert apply["concurrency"]["queue"] == "max", "a waiting apply is not replaced either"
    groups = [
        job["concurrency"]["group"] for job in document["jobs"].values() if "concurrency" in job
    ]
    assert groups.count(apply["concurrency"]["group"]) == 1
    _, drift = _job_running(document, "drift")
    assert drift["concurrency"]["group"] != apply["concurrency"]["group"]
    assert "apply" not in drift["concurrency"]["group"]


@workflows
def test_apply_takes_the_plan_reviewed_for_its_configuration(path: Path) -> None:
    document = _load(path)
    _, plan = _job_running(document, "plan")
    _, apply = _job_running(document, "apply")
    assert "refs/heads/main" in apply["if"]
    assert apply["environment"] == "production"
    key = [step for step in _steps(plan) if step.get("id") == "key"]
    assert key and key[0]["run"] == next(s["run"] for s in _steps(apply) if s.get("id") == "key")
    upload = next(s for s in _steps(plan) if s.get("name") == "Keep the plan for apply")
    download = next(s for s in _steps(apply) if str(s.get("name")).startswith("Download the plan"))
    assert download["env"]["NAME"] == upload["with"]["name"]
    assert "--dir reviewed" in download["run"]
    applying, replanning = _tool_steps(apply)
    assert applying["with"]["command"] == "apply"
    assert applying["with"]["args"] == "reviewed/plan.json", "the reviewed plan, not a new one"
    assert (replanning["with"]["command"], replanning["if"]) == ("plan", "failure()")
    last = _steps(apply)[-1]
    assert last["if"] == "failure()" and last["run"].rstrip().endswith("exit 1")


@workflows
def test_drift_reads_once_for_three_reports(path: Path, action: ModuleType) -> None:
    document = _load(path)
    _, drift = _job_running(document, "drift")
    assert [step["with"]["command"] for step in _tool_steps(drift)] == ["drift"]
    argv = _argv(action, _tool_steps(drift)[0])
    assert {"--format json", "-o drift.json", "--junit drift.xml", "--markdown drift.md"} <= {
        f"{a} {b}" for a, b in itertools.pairwise(argv)
    }
    uploads = [s for s in _steps(drift) if str(s.get("uses", "")).startswith("actions/upload")]
    assert uploads[0]["if"] == "always()"
    assert {"drift.json", "drift.md", "drift.xml"} <= set(uploads[0]["with"]["path"].split())


def _argv(action: ModuleType, step: Document) -> list[str]:
    """The command line the action builds from a step's inputs (expressions as ``x``)."""
    env = {
        f"INPUT_{name.upper().replace('-', '_')}": re.sub(r"\$\{\{.*?\}\}", "x", str(value))
        for name, value in step["with"].items()
    }
    argv: list[str] = action.Inputs.read(env).argv("reconciler")
    return argv


@workflows
def test_every_command_of_the_workflow_parses(path: Path, action: ModuleType) -> None:
    """Each tool step names a real command with real options, as the action passes them."""
    steps = [step for job in _load(path)["jobs"].values() for step in _tool_steps(job)]
    assert {step["with"]["command"] for step in steps} == {"validate", "plan", "apply", "drift"}
    for step in steps:
        _, option, config, name, *rest = _argv(action, step)
        assert option == "-c"
        context = cli.commands[name].make_context(f"reconciler {name}", [*rest, "-c", config])
        assert not context.args, f"unexpected arguments {context.args}"


def test_the_pinned_requirements_pin_exactly_the_tools_dependencies() -> None:
    lines = (CI / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    first = requirements[0]
    assert (first.name, first.url) == (
        "segment-reconciler",
        "git+https://github.com/OWNER/segment-reconciler@COMMIT_SHA",
    )
    pins = {canonicalize_name(r.name): r for r in requirements[1:]}
    assert all(str(r.specifier).startswith("==") for r in pins.values())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(line) for line in project["dependencies"]]
    for requirement in declared:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not pinned"
        version = str(pin.specifier).removeprefix("==")
        assert requirement.specifier.contains(version), f"{pin} breaks {requirement}"
    closure: set[str] = set()
    todo = [requirement.name for requirement in declared]
    while todo:  # every dependency of a dependency, as installed here
        name = canonicalize_name(todo.pop())
        if name not in closure:
            closure.add(name)
            for line in distribution(name).requires or []:
                needed = Requirement(line)
                if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                    todo.append(needed.name)
    assert set(pins) == closure


# -- the shell steps, run against a fake gh ----------------------------------------------

FAKE_GH = """\
import json, os, sys
args = sys.argv[1:]
record = {"args": args}
if "--input" in args:
    with open(args[args.index("--input") + 1], encoding="utf-8") as body:
        record["input"] = json.load(body)
with open(os.environ["GH_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(record) + "\\n")
if args[:2] == ["api", "--paginate"]:
    with open(os.environ["GH_PAGES"], encoding="utf-8") as pages:
        for page in json.load(pages).get(args[2].split("?")[0], []):
            print(json.dumps(page))  # gh prints one JSON document per page
"""


class Gh:
    """A fake ``gh`` on PATH: answers ``api --paginate`` from pages, records every call."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        script = bin_dir / "gh"
        script.write_text(f"#!{sys.executable}\n{FAKE_GH}", encoding="utf-8")
        script.chmod(0o755)
        self.log = tmp_path / "gh.log"
        self.pages = tmp_path / "pages.json"
        self.pages.write_text("{}", encoding="utf-8")
        self.path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"

    def answer(self, path: str, *pages: object) -> None:
        known = json.loads(self.pages.read_text(encoding="utf-8"))
        known[path] = list(pages)
        self.pages.write_text(json.dumps(known), encoding="utf-8")

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def run(self, step: Document, **env: str) -> subprocess.CompletedProcess[str]:
        """Run a step's script as GitHub does (``bash -eo pipefail``) with its env's values."""
        assert set(step.get("env", {})) == set(env), "the test sets the step's variables"
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.root,
            env={"PATH": self.path, "GH_LOG": str(self.log), "GH_PAGES": str(self.pages), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def gh(tmp_path: Path) -> Gh:
    return Gh(tmp_path)


def _comment(user: str, body: str, number: int) -> dict[str, object]:
    return {"id": number, "user": {"login": user}, "body": body}


POST_ENV = {"GH_TOKEN": "t", "REPO": "o/r", "PR": "5", "MARKER": PLAN_MARKER}


def test_comment_step_updates_its_own_marked_comment(gh: Gh) -> None:
    step = _step(_load(SINGLE)["jobs"]["comment"], "Post or update the one plan comment")
    (gh.root / "comment.md").write_text(f"{PLAN_MARKER}\n### Plan\n", encoding="utf-8")
    gh.answer(
        "repos/o/r/issues/5/comments",
        [_comment("someone", f"{PLAN_MARKER} quoted by a person", 1), _comment("x", "hi", 2)],
        [_comment("github-actions[bot]", "another bot comment", 3)],
        [_comment("github-actions[bot]", f"{PLAN_MARKER}\n### Old plan\n", 4)],
    )
    result = gh.run(step, **POST_ENV)
    assert result.returncode == 0, result.stderr
    update = gh.calls()[-1]
    assert update["args"][:4] == ["api", "--method", "PATCH", "repos/o/r/issues/comments/4"]
    assert update["input"] == {"body": f"{PLAN_MARKER}\n### Plan\n"}


def test_comment_step_creates_the_comment_when_none_is_its_own(gh: Gh) -> None:
    step = _step(_load(SINGLE)["jobs"]["comment"], "Post or update the one plan comment")
    (gh.root / "comment.md").write_text(f"{PLAN_MARKER}\n### Plan\n", encoding="utf-8")
    gh.answer("repos/o/r/issues/5/comments", [_comment("someone", PLAN_MARKER, 1)])
    result = gh.run(step, **POST_ENV)
    assert result.returncode == 0, result.stderr
    create = gh.calls()[-1]
    assert create["args"][:4] == ["api", "--method", "POST", "repos/o/r/issues/5/comments"]


def _artifact(run: int, created: str, expired: bool = False, fork: bool = False) -> object:
    head = 99 if fork else 1
    return {
        "expired": expired,
        "created_at": created,
        "workflow_run": {"id": run, "repository_id": 1, "head_repository_id": head},
    }


@workflows
def test_apply_downloads_the_newest_reviewed_plan_of_this_repository(gh: Gh, path: Path) -> None:
    _, apply = _job_running(_load(path), "apply")
    step = next(s for s in _steps(apply) if str(s.get("name")).startswith("Download the plan"))
    name = "reconciler-plan-abc"
    day = "2026-01-0{}T00:00:00Z".format
    gh.answer(
        "repos/o/r/actions/artifacts",
        {"artifacts": [_artifact(11, day(1)), _artifact(12, day(3))]},
        {"artifacts": [
            _artifact(13, day(2)),
            _artifact(14, day(4), fork=True),
            _artifact(15, day(5), expired=True),
        ]},
    )  # fmt: skip
    result = gh.run(step, GH_TOKEN="t", REPO="o/r", NAME=name)
    assert result.returncode == 0, result.stderr
    listing, download = gh.calls()
    assert listing["args"][2] == f"repos/o/r/actions/artifacts?name={name}&per_page=100"
    assert download["args"] == [
        "run", "download", "12", "--repo", "o/r", "--name", name, "--dir", "reviewed"
    ]  # fmt: skip


@workflows
def test_apply_fails_loudly_without_a_reviewed_plan(gh: Gh, path: Path) -> None:
    _, apply = _job_running(_load(path), "apply")
    step = next(s for s in _steps(apply) if str(s.get("name")).startswith("Download the plan"))
    gh.answer(
        "repos/o/r/actions/artifacts", {"artifacts": [_artifact(14, "2026-01-04", fork=True)]}
    )
    result = gh.run(step, GH_TOKEN="t", REPO="o/r", NAME="reconciler-plan-abc")
    assert result.returncode == 1
    assert result.stdout.startswith("::error title=No reviewed plan::")
    assert len(gh.calls()) == 1, "nothing downloaded"


def test_plan_key_is_the_tree_of_the_configurations_directory(tmp_path: Path) -> None:
    """Plan and apply find each other by it: it changes with the configuration only."""
    key = _step(_load(SINGLE)["jobs"]["plan"], "Key the plan by the configuration it was made from")
    repo = tmp_path / "repo"
    (repo / "segments").mkdir(parents=True)
    (repo / "segments" / "reconciler.yaml").write_text("version: 1\n", encoding="utf-8")
    (repo / "README.md").write_text("one\n", encoding="utf-8")

    def commit() -> dict[str, str]:
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "c"], cwd=repo, check=True)
        output = repo / "output"
        env = {"PATH": os.environ["PATH"], "CONFIG": "segments/reconciler.yaml"}
        run = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", key["run"]]
        subprocess.run(run, cwd=repo, env={**env, "GITHUB_OUTPUT": str(output)}, check=True)
        found = dict([output.read_text(encoding="utf-8").strip().split("=", 1)])
        output.unlink()
        return found

    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    first = commit()
    assert re.fullmatch(r"[0-9a-f]{40}", first["tree"])
    (repo / "README.md").write_text("two\n", encoding="utf-8")
    assert commit() == first, "a change outside the configuration keeps the reviewed plan"
    (repo / "segments" / "reconciler.yaml").write_text("version: 1\nlists: []\n", "utf-8")
    assert commit() != first


DRIFT_STEP = "Open, update or close the drift issue"


@pytest.mark.parametrize(
    ("drift", "open_issue", "expected"),
    [
        ("true", True, ["api", "--method", "POST", "repos/o/r/issues/8/comments"]),
        ("true", False, ["api", "--method", "POST", "repos/o/r/issues"]),
        ("false", True, ["issue", "close", "8", "--repo", "o/r"]),
        ("false", False, None),
    ],
)
def test_drift_issue_is_opened_updated_or_closed(
    gh: Gh, drift: str, open_issue: bool, expected: list[str] | None
) -> None:
    step = _step(_load(SINGLE)["jobs"]["drift-issue"], DRIFT_STEP)
    (gh.root / "issue.md").write_text(f"{DRIFT_MARKER}\n### Drift\n", encoding="utf-8")
    issues = [{"number": 7, "body": f"{DRIFT_MARKER}", "pull_request": {"url": "x"}}]
    if open_issue:
        issues.append({"number": 8, "body": f"{DRIFT_MARKER}\nolder drift"})
    gh.answer("repos/o/r/issues", issues)
    result = gh.run(step, GH_TOKEN="t", REPO="o/r", MARKER=DRIFT_MARKER, DRIFT=drift)
    assert result.returncode == 0, result.stderr
    calls = gh.calls()[1:]
    assert [call["args"][: len(expected or [])] for call in calls] == (
        [expected] if expected else []
    )
    if expected and expected[-1] == "repos/o/r/issues":
        assert calls[0]["input"]["title"] == "Segments drifted from the YAML"
        assert calls[0]["input"]["body"].startswith(DRIFT_MARKER)


def test_matrix_sections_join_into_one_comment_within_the_limit(gh: Gh) -> None:
    step = _step(
        _load(MATRIX)["jobs"]["comment"],
        "Join the sections into one comment, within GitHub's 65,536 characters",
    )
    sections = gh.root / "sections"
    sections.mkdir()
    for n in range(12):  # 12 targets, 3 of whose sections fit in 64,000 bytes
        text = f"### t{n:02}\n" + "é" * 9_000 + "\n"  # 18,009 bytes
        (sections / f"section-t{n:02}.md").write_text(text, encoding="utf-8")
    url = "https://github.example/o/r/actions/runs/7"
    result = gh.run(step, MARKER=PLAN_MARKER, RUN_URL=url)
    assert result.returncode == 0, result.stderr
    comment = (gh.root / "comment.md").read_text(encoding="utf-8")
    assert len(comment) <= 65_536
    assert comment.startswith(f"{PLAN_MARKER}\n### t00\n")
    assert comment.count("### t") == 3
    assert comment.endswith(
        f"> 9 more targets with changes or errors did not fit in one comment: [the run]({url}).\n"
    )


def test_matrix_comment_says_when_no_target_changes(gh: Gh) -> None:
    step = _step(
        _load(MATRIX)["jobs"]["comment"],
        "Join the sections into one comment, within GitHub's 65,536 characters",
    )
    result = gh.run(step, MARKER=PLAN_MARKER, RUN_URL="u")
    assert result.returncode == 0, result.stderr
    comment = (gh.root / "comment.md").read_text(encoding="utf-8")
    assert comment == f"{PLAN_MARKER}\nNo changes in any target.\n"


@pytest.mark.parametrize(
    ("drifted", "any_failed", "expected"),
    [
        (2, "true", ["api", "--method", "POST", "repos/o/r/issues/8/comments"]),
        (0, "false", ["issue", "close", "8", "--repo", "o/r"]),
        (0, "true", None),  # a target that failed to read may have drifted: keep the issue
    ],
)
def test_matrix_drift_issue_joins_the_drifted_targets(
    gh: Gh, drifted: int, any_failed: str, expected: list[str] | None
) -> None:
    job = _load(MATRIX)["jobs"]["drift-issue"]
    join = _step(
        job, "Join the drifted targets into one issue body, within GitHub's 65,536 characters"
    )
    sections = gh.root / "sections"
    sections.mkdir()
    for n in range(drifted):
        (sections / f"section-t{n}.md").write_text(f"### Drift of t{n}\n", encoding="utf-8")
    assert gh.run(join, MARKER=DRIFT_MARKER, RUN_URL="u").returncode == 0
    gh.answer("repos/o/r/issues", [{"number": 8, "body": f"{DRIFT_MARKER}\nolder"}])
    step = _step(job, DRIFT_STEP)
    result = gh.run(step, GH_TOKEN="t", REPO="o/r", MARKER=DRIFT_MARKER, ANY_FAILED=any_failed)
    assert result.returncode == 0, result.stderr
    calls = gh.calls()[1:]
    assert [call["args"][: len(expected or [])] for call in calls] == (
        [expected] if expected else []
    )
    if drifted:
        body = calls[0]["input"]["body"]
        assert body == f"{DRIFT_MARKER}\n### Drift of t0\n\n### Drift of t1\n\n"
