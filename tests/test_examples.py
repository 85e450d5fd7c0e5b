"""Every example under examples/ validates and plans on the reference backend."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL_CONFIGS = sorted(EXAMPLES.rglob("reconciler.yaml"))


def _reference_only(config: Path) -> bool:
    targets = yaml.safe_load(config.read_text(encoding="utf-8")).get("targets") or {}
    return all(target.get("provider") == "reference" for target in targets.values())


CONFIGS = [config for config in ALL_CONFIGS if _reference_only(config)]
"""Examples that run offline here; each provider's own example is validated, applied and
planned against that provider's fake API in tests/providers/test_<provider>.py."""
SUMMARY = re.compile(r"Plan: (\d+) to create, 0 to update, 0 to delete\.\n\Z")


def _ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(EXAMPLES)) for path in paths]


def _copy(config: Path, tmp_path: Path) -> Path:
    """The example's directory copied to tmp_path (without any state left by a local run)."""
    copied = tmp_path / config.parent.name
    shutil.copytree(config.parent, copied, ignore=shutil.ignore_patterns(".reconciler"))
    return copied / config.name


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config), "--no-color", *args])


def test_there_are_examples() -> None:
    assert EXAMPLES / "quickstart" / "reconciler.yaml" in CONFIGS


@pytest.mark.parametrize(
    "config", [c for c in ALL_CONFIGS if c not in CONFIGS], ids=lambda c: c.parent.name
)
def test_provider_examples_are_planned_against_their_fake(config: Path) -> None:
    name = config.parent.name
    provider_tests = ROOT / "tests" / "providers" / f"test_{name}.py"
    assert f'"examples" / "{name}"' in provider_tests.read_text(encoding="utf-8")


@pytest.mark.parametrize("config", CONFIGS, ids=_ids(CONFIGS))
def test_example_validates(config: Path, tmp_path: Path) -> None:
    result = _run(_copy(config, tmp_path), "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Configuration is valid:")


@pytest.mark.parametrize("config", CONFIGS, ids=_ids(CONFIGS))
def test_example_plans(config: Path, tmp_path: Path) -> None:
    result = _run(_copy(config, tmp_path), "plan")
    assert result.exit_code == 0, result.output


def test_quickstart_plans_creates_then_converges(tmp_path: Path) -> None:
    config = _copy(EXAMPLES / "quickstart" / "reconciler.yaml", tmp_path)
    first = _run(config, "plan")
    assert first.exit_code == 0, first.output
    found = SUMMARY.search(first.stdout)
    assert found, first.stdout
    assert int(found.group(1)) > 0

    applied = _run(config, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert f"Apply: {found.group(1)} applied, 0 failed, 0 skipped." in applied.stdout

    again = _run(config, "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.stdout


def test_quickstart_saved_plan_applies(tmp_path: Path) -> None:
    config = _copy(EXAMPLES / "quickstart" / "reconciler.yaml", tmp_path)
    saved = tmp_path / "plan.json"
    planned = _run(config, "plan", "-o", str(saved))
    assert planned.exit_code == 0, planned.output
    applied = _run(config, "apply", str(saved))
    assert applied.exit_code == 0, applied.output
    assert _run(config, "plan", "--detailed-exitcode").exit_code == 0


def test_quickstart_state_stays_in_the_example_directory(tmp_path: Path) -> None:
    config = _copy(EXAMPLES / "quickstart" / "reconciler.yaml", tmp_path)
    assert _run(config, "apply", "--auto-approve").exit_code == 0
    assert (config.parent / ".reconciler" / "state.db").is_file()
