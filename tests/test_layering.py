"""Dependencies point one way: the core never imports a provider, and providers use only
the core's library modules (never planning, applying or the CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_MAY_USE = {
    "reconciler",  # for __version__ only
    "reconciler.errors",
    "reconciler.model",
    "reconciler.plan",
    "reconciler.provider",
    "reconciler.rules",
    "reconciler.sample",  # sample subscribers and who a segment selects (reference counts)
    "reconciler.sample_files",  # the loader of plan --sample files (reference counts)
    "reconciler.shapes",
    "reconciler.sharing",  # identical rules validated once (the reference decoder)
}
LEAVES = {"errors", "model"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by one file (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _files("reconciler"), ids=lambda p: p.name)
def test_core_never_imports_providers(path: Path) -> None:
    assert not {m for m in _imports(path) if m == "providers" or m.startswith("providers.")}


@pytest.mark.parametrize("path", _files("providers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_providers_use_only_the_core_library(path: Path) -> None:
    core = {m for m in _imports(path) if m == "reconciler" or m.startswith("reconciler.")}
    modules = {m for m in core if m in PROVIDER_MAY_USE or m.rsplit(".", 1)[0] in PROVIDER_MAY_USE}
    assert core == modules, sorted(core - modules)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_nothing_from_the_package(leaf: str) -> None:
    imported = _imports(ROOT / "reconciler" / f"{leaf}.py")
    assert not {m for m in imported if m.startswith("reconciler")}
