"""Third-party providers through the CLI: a broken entry point is listed as broken and breaks
only the configurations that use it; a change kind a provider does not declare is refused
by validate or plan, before any write."""

from __future__ import annotations

import json
import sqlite3
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from providers.reference import ReferenceProvider
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.plan import Action
from reconciler.provider import Capabilities, Provider
from reconciler.registry import ENTRY_POINT_GROUP, EntryPointRegistry, Registry
from tests.cli.conftest import Project, segments_yaml

BROKEN = "tests.cli.raising_provider:Provider"


def _registry(**values: str) -> EntryPointRegistry:
    return EntryPointRegistry(
        {
            key: EntryPoint(name=key, value=value, group=ENTRY_POINT_GROUP)
            for key, value in values.items()
        }
    )


def _installed() -> EntryPointRegistry:
    return _registry(acme=BROKEN, reference="providers.reference:ReferenceProvider")


def _run(project: Project, registry: Registry, *args: str) -> Result:
    argv = ["-c", str(project.root / "reconciler.yaml"), "--no-color", *args]
    return CliRunner().invoke(cli, argv, obj=State(registry=registry))


# -- a broken entry point ---------------------------------------------------------------


def test_providers_lists_a_broken_provider_with_its_reason() -> None:
    result = CliRunner().invoke(cli, ["providers"], obj=State(registry=_installed()))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "acme",
        "  broken: RuntimeError: acme-provider 2.0 needs a newer reconciler",
    ]
    assert "reference" in lines and "  shape: tree" in lines


def test_providers_json_and_markdown_name_the_broken_provider() -> None:
    state = State(registry=_installed())
    found = json.loads(CliRunner().invoke(cli, ["providers", "--format", "json"], obj=state).stdout)
    assert found["acme"] == {"broken": "RuntimeError: acme-provider 2.0 needs a newer reconciler"}
    assert found["reference"]["shape"] == "tree"
    state = State(registry=_installed())
    markdown = CliRunner().invoke(cli, ["providers", "--format", "markdown"], obj=state)
    assert markdown.exit_code == 0
    assert "### `acme`\n\nBroken: RuntimeError: acme-provider 2.0" in markdown.stdout
    assert "### `reference`\n\n| field |" in markdown.stdout


def test_a_broken_provider_the_configuration_does_not_use_breaks_nothing(
    project: Project,
) -> None:
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A"))
    for args in (["validate"], ["plan"], ["apply", "--auto-approve"], ["drift"]):
        result = _run(project, _installed(), *args)
        assert result.exit_code == 0, (args, result.output)


def test_a_configuration_using_a_broken_provider_gets_a_located_error(project: Project) -> None:
    project.write(
        "  shop:\n    provider: acme\nlists:\n  - name: News\n    target: local\n"
        "    segments:\n" + segments_yaml("A")
    )
    for args in (["validate"], ["plan"]):
        result = _run(project, _installed(), *args)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: {project.root / 'reconciler.yaml'}:7:5: ")
        assert (
            'provider "acme" is installed but cannot be loaded: RuntimeError: acme-provider 2.0 '
            "needs a newer reconciler" in result.stderr
        )
        assert "Traceback" not in result.output
        assert len(result.stderr.splitlines()) == 1


# -- change kinds a provider does not declare -------------------------------------------


def _lacking(*kinds: Action) -> type[Provider]:
    narrowed = ReferenceProvider.capabilities.model_copy(
        update={"changes": ReferenceProvider.capabilities.changes - set(kinds)}
    )

    class Lacking(ReferenceProvider):
        capabilities: ClassVar[Capabilities] = narrowed

    return Lacking


def _stored_lists(project: Project) -> list[str]:
    path = project.root / "state.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [name for (name,) in db.execute("select name from lists")]


def test_a_provider_lacking_create_list_never_gets_one(project: Project) -> None:
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A"))
    registry = {"reference": _lacking(Action.CREATE_LIST)}
    assert _run(project, registry, "validate").exit_code == 0  # the list may exist live
    for args in (["plan"], ["apply", "--auto-approve"]):
        result = _run(project, registry, *args)
        assert result.exit_code == 1, result.output
        assert (
            'reconciler.yaml:7:5: list "News" does not exist, and provider "reference" '
            "cannot create lists through its API" in result.stderr
        )
    assert _stored_lists(project) == []
    assert _run(project, {"reference": ReferenceProvider}, "apply", "--auto-approve").exit_code == 0
    assert _run(project, registry, "plan", "--detailed-exitcode").exit_code == 0  # it exists now


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        (
            Action.DELETE_SEGMENT,
            "lists:\n  - name: News\n    prune: true\n    segments:\n" + segments_yaml("A"),
            'reconciler.yaml:8:5: list "News" prunes, but provider "reference" cannot delete '
            "segments: remove prune",
        ),
        (
            Action.UPDATE_SEGMENT,
            "lists:\n  - name: News\n    segments:\n      - name: B\n        renamed_from: [A]\n"
            '        rules:\n          - {field: email, op: contains, value: "@x.com"}\n',
            'reconciler.yaml:10:9: segment "B" is renamed_from another name, but provider '
            '"reference" cannot update segments (a rename is an update)',
        ),
    ],
)
def test_validate_refuses_what_needs_a_kind_the_provider_lacks(
    project: Project, kind: Action, body: str, message: str
) -> None:
    project.write(body)
    result = _run(project, {"reference": _lacking(kind)}, "validate")
    assert result.exit_code == 1
    assert message in result.stderr
    assert _run(project, {"reference": ReferenceProvider}, "validate").exit_code == 0


def test_plan_refuses_an_update_the_provider_cannot_make(project: Project) -> None:
    project.write("lists:\n  - name: News\n    segments:\n" + segments_yaml("A"))
    assert _run(project, {"reference": ReferenceProvider}, "apply", "--auto-approve").exit_code == 0
    project.write(
        "lists:\n  - name: News\n    segments:\n"
        + segments_yaml("A", rule="{field: email, op: contains, value: y}")
    )
    result = _run(
        project, {"reference": _lacking(Action.UPDATE_SEGMENT)}, "apply", "--auto-approve"
    )
    assert result.exit_code == 1
    assert 'provider "reference" cannot update segments' in result.stderr
    assert "applied" not in result.stdout


def test_validate_never_imports_an_unused_broken_provider(tmp_path: Path) -> None:
    registry = _installed()
    (tmp_path / "reconciler.yaml").write_text("version: 1\n")
    result = CliRunner().invoke(
        cli, ["-c", str(tmp_path / "reconciler.yaml"), "validate"], obj=State(registry=registry)
    )
    assert result.exit_code == 0, result.output
    assert "acme" not in registry._broken  # never loaded, so never failed
