"""The pre-commit hook (.pre-commit-hooks.yaml) as a user's .pre-commit-config.yaml runs it:
pre-commit clones this repository at a commit, installs it into a virtualenv of its own and
runs `reconciler validate --offline`, which needs no credentials.

Building that virtualenv pip-installs the project and its dependencies from the package
index (about 10 to 15 seconds), once for the whole module: every test shares one pre-commit
store. (`pre-commit try-repo` would build it again for every run: it always uses a fresh
temporary store.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["campaignmonitor", "quickstart"]
"""The reference backend's example, and a provider's whose ``${VAR}``s are not set here."""
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
BROKEN = """\
version: 1
targets:
  local: {provider: reference, path: state.db}
lists:
  - name: Customers
    segments:
      - name: Sounds like Bob
        rules: [{field: first_name, op: sounds_like, value: Bob}]
"""

Run = Callable[..., subprocess.CompletedProcess[str]]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _hook_repository(root: Path) -> tuple[Path, str]:
    """This working tree (tracked and new files, as the next commit would hold them) as a
    repository of its own, and its commit: what a user's ``repo:`` and ``rev:`` name."""
    files = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    assert (root / ".pre-commit-hooks.yaml").is_file()
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "hook")
    return root, _git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def precommit(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``pre-commit run`` in a user's repository holding every example, with one store for
    the module; call it with the hook entries (``args`` each) and pre-commit's options."""
    base = tmp_path_factory.mktemp("precommit")
    hook, rev = _hook_repository(base / "hook")
    user = base / "user"
    user.mkdir()
    for name in EXAMPLES:
        shutil.copytree(ROOT / "examples" / name, user / name, ignore=shutil.ignore_patterns(".*"))
    (user / "broken").mkdir()
    (user / "broken" / "reconciler.yaml").write_text(BROKEN, encoding="utf-8")
    (user / "notes.txt").write_text("not YAML\n", encoding="utf-8")
    _git(user, "init", "-q")
    _git(user, "add", "-A")
    home = base / "home"
    home.mkdir()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "PIP_"))},
        "HOME": str(home),
        "PRE_COMMIT_HOME": str(base / "store"),
        "PIP_NO_COMPILE": "1",  # the hook's environment skips compiling bytecode up front
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def run(configs: list[str], *options: str) -> subprocess.CompletedProcess[str]:
        hooks = "".join(
            f"      - id: reconciler-validate\n        name: {config}\n"
            f"        args: [-c, {config}/reconciler.yaml]\n"
            for config in configs
        )
        config = user / ".pre-commit-config.yaml"
        config.write_text(
            f"repos:\n  - repo: {hook}\n    rev: {rev}\n    hooks:\n{hooks}", encoding="utf-8"
        )
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--color", "never", *options],
            cwd=user,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    return run


def test_hook_validates_every_example_offline(precommit: Run) -> None:
    result = precommit(EXAMPLES, "--all-files", "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in EXAMPLES:
        assert f"\n{name}." in result.stdout, name
    assert result.stdout.count("Passed") == len(EXAMPLES)
    assert result.stdout.count("Configuration is valid:") == len(EXAMPLES)
    assert "CM_API_KEY" not in os.environ


def test_hook_fails_on_an_invalid_configuration_and_says_where(precommit: Run) -> None:
    result = precommit(["broken"], "--all-files")
    assert result.returncode == 1
    assert "broken." in result.stdout and "Failed" in result.stdout
    assert "broken/reconciler.yaml:8:" in result.stdout, result.stdout
    assert "sounds_like" in result.stdout


def test_hook_runs_only_when_a_yaml_file_changes(precommit: Run) -> None:
    skipped = precommit(["broken"], "--files", "notes.txt")
    assert skipped.returncode == 0, skipped.stdout
    assert "(no files to check)Skipped" in skipped.stdout
    ran = precommit(["broken"], "--files", "quickstart/lists/vip.yaml")
    assert ran.returncode == 1, "any YAML file may be part of the configuration"


def test_try_repo_validates_the_quickstart(tmp_path: Path) -> None:
    """``pre-commit try-repo``, as a user first tries the hook: on the quickstart, kept as a
    repository of its own (the hook validates the reconciler.yaml at the repository's root).
    try-repo builds the hook's environment afresh in a store of its own, so this costs one
    more install of the project (about 10 to 15 seconds)."""
    hook, _ = _hook_repository(tmp_path / "hook")
    user = tmp_path / "user"
    shutil.copytree(ROOT / "examples" / "quickstart", user, ignore=shutil.ignore_patterns(".*"))
    _git(user, "init", "-q")
    _git(user, "add", "-A")
    (tmp_path / "home").mkdir(exist_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "PIP_"))},
        "HOME": str(tmp_path / "home"),
        "PRE_COMMIT_HOME": str(tmp_path / "store"),
        "PIP_NO_COMPILE": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pre_commit", "try-repo", str(hook), "reconciler-validate"),
            *("--all-files", "--verbose", "--color", "never"),
        ],
        cwd=user,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout
    assert "Configuration is valid: 2 list(s)" in result.stdout
