"""The README and docs/ document every command and option, their examples run, their
links resolve, and the README's quickstart is what CI runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.provider import Provider, ProviderContext
from reconciler.registry import ENTRY_POINT_GROUP, load_registry
from reconciler.render import render_operator_table
from reconciler.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
PAGES = sorted(DOCS.rglob("*.md"))
DOCUMENTS = [README_PATH, *PAGES]
CI_SCRIPT = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
README_MAX_LINES = 400

COMMANDS = sorted(cli.commands)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _long_options(command: click.Command) -> list[str]:
    return sorted(
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    )


OPTIONS = sorted(
    {(name, opt) for name in COMMANDS for opt in _long_options(cli.commands[name])}
    | {("", opt) for opt in _long_options(cli)}
)


def _section(text: str, title: str, level: int = 2) -> str:
    """The text under the heading ``title`` of ``level``, up to the next heading of that
    level or higher."""
    marks = "#" * level
    match = re.search(
        rf"^{marks} {re.escape(title)}\n(.*?)(?=^#{{1,{level}}} |\Z)", text, re.M | re.S
    )
    assert match, f'no "{marks} {title}" section'
    return match.group(1)


def _fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def _quickstart_commands() -> list[str]:
    blocks = _fenced_blocks(_section(README, "Quickstart"), "sh")
    assert blocks, "the Quickstart section has no ```sh block"
    return [line for line in blocks[0].splitlines() if line and not line.startswith("#")]


def _ci_commands() -> list[str]:
    """.ci/run's commands, with pip's --quiet dropped (it changes nothing but output)."""
    return [
        " ".join(word for word in shlex.split(line) if word != "--quiet")
        for line in CI_SCRIPT.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _steps(command: str) -> list[str]:
    """One ``&&`` chain as its steps, each without the ``.venv/bin/`` prefix."""
    return [
        " ".join(shlex.split(step.strip().removeprefix(".venv/bin/")))
        for step in command.split("&&")
    ]


# -- commands and options --------------------------------------------------------------

COMMANDS_PAGE = _read(DOCS / "commands.md")


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_text(name: str) -> None:
    assert (cli.commands[name].help or "").strip(), f"{name} has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_readme_table(name: str) -> None:
    table = _section(README, "Commands at a glance")
    assert re.search(rf"^\| `reconciler {name}[` ]", table, re.M), name


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_a_section_in_the_commands_page(name: str) -> None:
    assert re.search(rf"^## `reconciler {name}[` ]", COMMANDS_PAGE, re.M), name


@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_option_is_in_the_commands_page(name: str, option: str) -> None:
    where = f"reconciler {name}".strip()
    found = re.search(rf"{re.escape(option)}(?![\w-])", COMMANDS_PAGE)
    assert found, f"{where}: {option} undocumented in docs/commands.md"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_runs(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], prog_name="reconciler")
    assert result.exit_code == 0, result.output
    assert f"reconciler {name}" in result.output


@pytest.mark.parametrize("text", [README, COMMANDS_PAGE], ids=["README", "commands"])
def test_exit_codes_are_documented(text: str) -> None:
    table = _section(text, "Exit codes")
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^\| \*\*{code}\*\* \|", table, re.M), f"exit code {code} missing"


# -- the quickstart is what CI runs -----------------------------------------------------


def test_quickstart_is_exactly_two_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    install_and_run, install_and_test = commands
    assert install_and_run.startswith("python3 -m venv .venv && ")
    assert install_and_test.startswith("python3 -m venv .venv && ")
    assert "examples/quickstart/reconciler.yaml plan" in install_and_run
    assert install_and_run.endswith("apply --auto-approve")


def test_quickstart_test_command_is_what_ci_runs() -> None:
    steps = _steps(_quickstart_commands()[1])
    assert steps[1:] == ["pip install -e .[test]", "python -m pytest -q"], steps
    ci = _ci_commands()
    assert "pip install -e .[test]" in ci
    assert "python -m pytest -q" in ci


def test_quickstart_plan_and_apply_are_what_ci_runs() -> None:
    steps = _steps(_quickstart_commands()[0])
    runs = [step for step in steps if step.startswith("reconciler ")]
    assert [step.split()[-1] for step in runs] == ["plan", "--auto-approve"], runs
    ci = _ci_commands()
    for step in runs:
        assert step in ci, f"{step!r} is not in .ci/run"


# -- configurations shown in the documentation -----------------------------------------


def _configurations() -> list[tuple[str, str]]:
    """Every YAML block of the README and docs/ that is a whole configuration."""
    return [
        (f"{_name(path)}#{index}", block)
        for path in DOCUMENTS
        for index, block in enumerate(_fenced_blocks(_read(path), "yaml"))
        if block.startswith("version: 1")
    ]


CONFIGURATIONS = _configurations()


@pytest.mark.parametrize("page", [README_PATH, DOCS / "configuration.md"], ids=_name)
def test_page_shows_a_complete_configuration(page: Path) -> None:
    assert any(name.startswith(_name(page) + "#") for name, _ in CONFIGURATIONS)


@pytest.mark.parametrize(("name", "text"), CONFIGURATIONS, ids=[n for n, _ in CONFIGURATIONS])
def test_documented_configuration_validates_and_plans(name: str, text: str, tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "more.yaml").write_text("lists: []\n", encoding="utf-8")
    for command in ("validate", "plan"):
        result = CliRunner().invoke(cli, ["-c", str(tmp_path / "reconciler.yaml"), command])
        assert result.exit_code == 0, f"{name}: {command}: {result.output}"


# -- providers ---------------------------------------------------------------------------

PROVIDERS_INDEX = _read(DOCS / "providers" / "index.md")


@pytest.mark.parametrize("key", sorted(load_registry()))
def test_provider_page_carries_its_operator_table(key: str) -> None:
    """Each provider page carries what the code stores: regenerate the table with
    ``reconciler providers --format markdown`` when capabilities change."""
    provider = load_registry()[key]
    page = DOCS / "providers" / f"{key}.md"
    assert page.is_file(), f"{key} has no page docs/providers/{key}.md"
    assert render_operator_table(provider.capabilities) in _read(page), key


@pytest.mark.parametrize("key", sorted(load_registry()))
def test_provider_page_is_linked_from_the_providers_index(key: str) -> None:
    assert f"]({key}.md)" in PROVIDERS_INDEX, key


# -- writing a provider: the example provider plans and applies --------------------------

WRITING = _read(DOCS / "writing-a-provider.md")


def _example_provider() -> type[Provider]:
    code = _fenced_blocks(WRITING, "python")[0]
    namespace: dict[str, object] = {"__name__": "example_provider"}
    exec(compile(code, "docs/writing-a-provider.md", "exec"), namespace)
    found = [
        value
        for value in namespace.values()
        if isinstance(value, type) and issubclass(value, Provider) and value is not Provider
    ]
    assert len(found) == 1, found
    return found[0]


def test_writing_a_provider_names_the_entry_point_group() -> None:
    (toml,) = _fenced_blocks(WRITING, "toml")
    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in toml


def test_writing_a_provider_example_plans_applies_and_converges(tmp_path: Path) -> None:
    example = _example_provider()
    config = tmp_path / "reconciler.yaml"
    segment = """\
      - name: {name}
        rules:
          - {{field: email, op: contains, value: "@gmail.com"}}
          - any:
              - {{field: first_name, op: equals, value: {first}}}
              - {{field: last_name, op: contains, value: Lee}}
"""
    head = f"version: 1\ntargets:\n  main:\n    provider: {example.key}\n"
    head += "lists:\n  - name: Newsletter\n    prune: true\n    segments:\n"
    registry = {example.key: example}

    def run(segments: str) -> list[str]:
        config.write_text(head + segments, encoding="utf-8")
        ws = Workspace.open(config, registry, ProviderContext(base_dir=tmp_path))
        try:
            current = ws.plan()
            result = ws.apply(current)
            assert result.ok, result.outcomes
            ws.check_converged()
            assert ws.plan().is_empty
            return [change.action.value for change in current.changes]
        finally:
            ws.close()

    assert run(segment.format(name="Gmail", first="Ann")) == ["create_list", "create_segment"]
    assert run(segment.format(name="Gmail", first="Bob")) == ["update_segment"]
    assert run(segment.format(name="Other", first="Bob")) == ["create_segment", "delete_segment"]


# -- every page is reachable and every link resolves -------------------------------------

INLINE_CODE = re.compile(r"`+[^`\n]*`+")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def _prose(text: str) -> str:
    """``text`` without fenced blocks and code spans, where brackets are not links."""
    return INLINE_CODE.sub("code", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text in lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", _read(path))):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> list[str]:
    return LINK.findall(_prose(_read(path)))


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:|^//", target, re.I)


def test_slug_follows_github() -> None:
    assert _slug("`reconciler apply [PLAN_FILE]`") == "reconciler-apply-plan_file"
    assert _slug("Oempro / Octeth (`provider: oempro`)") == "oempro--octeth-provider-oempro"
    assert _slug("Retries are bounded; every run has a deadline") == (
        "retries-are-bounded-every-run-has-a-deadline"
    )


def test_documents_have_links() -> None:
    assert _links(README_PATH), "the README links to no page"
    assert len(PAGES) >= 2 + len(list(load_registry()))


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in _links(path):
        if not _relative(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if file_part.startswith("/") or not linked.is_relative_to(ROOT) or not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in _anchors(linked)):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{_name(path)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "index.md"], ids=_name)
def test_page_is_linked_from_an_index(page: Path) -> None:
    index = page.parent / "index.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in _links(index)}
    assert page.resolve() in linked, f"{_name(index)} does not link {_name(page)}"


def test_readme_links_the_documentation_index() -> None:
    assert "](docs/index.md)" in README
    assert "](providers/index.md)" in _read(DOCS / "index.md")


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_documents_name_no_local_paths(path: Path) -> None:
    text = _read(path)
    for marker in ("/tmp/", "/work/", "/home/", "/root/", "/Users/"):
        assert marker not in text, f"{_name(path)} names {marker}"


# -- benchmarks and the documented defaults -----------------------------------------------

BENCHMARKS = ROOT / "tests" / "benchmarks"
BENCHMARKS_README = BENCHMARKS / "README.md"
PERFORMANCE = DOCS / "performance.md"
SCRIPT_NAME = re.compile(r"tests/benchmarks/(\w+\.py)")


@pytest.mark.parametrize("path", [*DOCUMENTS, BENCHMARKS_README, ROOT / ".ci" / "run"], ids=_name)
def test_benchmark_scripts_named_exist(path: Path) -> None:
    missing = sorted(
        {name for name in SCRIPT_NAME.findall(_read(path)) if not (BENCHMARKS / name).is_file()}
    )
    assert not missing, f"{_name(path)} names benchmark scripts that do not exist: {missing}"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_benchmark_is_documented_and_run_by_ci(script: str) -> None:
    assert f"`{script}`" in _read(BENCHMARKS_README), f"{script}: not in tests/benchmarks/README.md"
    assert f"tests/benchmarks/{script}" in _read(PERFORMANCE), (
        f"{script}: no command in performance.md"
    )
    assert f"python tests/benchmarks/{script} --quick\n" in CI_SCRIPT, (
        f"{script}: not run by .ci/run"
    )


def test_documented_default_concurrency_is_the_code_s() -> None:
    """Every "`max_concurrency` ... (default N)" in the README and docs/ says the default
    the applier and the HTTP client use."""
    from providers._http.client import DEFAULT_CONCURRENCY as HTTP_DEFAULT
    from reconciler.applying import DEFAULT_CONCURRENCY

    assert HTTP_DEFAULT == DEFAULT_CONCURRENCY
    said = [
        (_name(path), int(number))
        for path in DOCUMENTS
        for number in re.findall(
            r"max_concurrency\W[^.]{0,80}?defaults?(?: to)?\W{0,3}(\d+)",
            " ".join(_read(path).split()),
        )
    ]
    assert len(said) >= 5, said
    wrong = [(name, number) for name, number in said if number != DEFAULT_CONCURRENCY]
    assert not wrong, f"the default max_concurrency is {DEFAULT_CONCURRENCY}: {wrong}"
