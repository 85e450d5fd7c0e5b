"""The ``reconciler`` command line: parse options, make one library call, render, exit.

Exit codes (the same for every command): 0 success and nothing to change; 1 error;
2 changes pending (``plan --detailed-exitcode``) or drift found (``drift``); 3 refused by a
safety limit. They are decided in ``ReconcilerGroup.main`` and the commands' return values;
no command calls ``sys.exit``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import click
from pydantic import ValidationError

from . import __version__
from .applying import timed_out
from .cli_state import State, common_options, write_atomic
from .errors import ConfigError, ReconcilerError
from .model import Config
from .plan import Plan
from .planning import SafetyPolicy
from .render import (
    printable,
    render_apply_result,
    render_drift,
    render_operator_table,
    render_plan,
    render_providers,
)
from .shapes import describe_capabilities
from .yamlguard import read_text

__all__ = ["cli", "main", "run"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_UNSAFE = 0, 1, 2, 3


class _Printable:
    """A text stream that shows control and bidirectional characters escaped (line breaks
    kept): click's own messages quote what was typed."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text, keep="\n"))

    def flush(self) -> None:
        self._stream.flush()


class ReconcilerGroup(click.Group):
    """Maps every error to its exit code and a one-line message on stderr."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args, prog_name or "reconciler", complete_var, standalone_mode=False, **extra
            )
        except click.ClickException as exc:
            exc.show(file=cast(IO[Any], _Printable(sys.stderr)))
            code = EXIT_ERROR  # usage errors too: 2 means "changes pending" here
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            code = EXIT_ERROR
        except ReconcilerError as exc:
            for line in exc.lines():
                click.echo(f"Error: {printable(line)}", err=True)
            code = exc.exit_code
        code = code if isinstance(code, int) else EXIT_OK
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Plan and apply email list segments declared in YAML, like Terraform for segments.

    Exit codes: 0 nothing to change, 1 error, 2 changes pending or drift found,
    3 refused by a safety limit.
    """


def _state() -> State:
    return click.get_current_context().ensure_object(State)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
        _state().progress(f"Wrote {output}")


@cli.command()
@common_options
def validate() -> int:
    """Check the YAML offline: schema, references, and what each provider can express."""
    with _state().workspace() as ws:
        config = ws.config
        segments = sum(len(item.segments) for item in config.lists)
        click.echo(
            f"Configuration is valid: {len(config.lists)} list(s), {segments} segment(s), "
            f"{len(ws.scope)} target(s)."
        )
    return EXIT_OK


def _policy(allow_delete: tuple[str, ...], allow_deletes: bool) -> SafetyPolicy:
    return SafetyPolicy(allow_delete=frozenset(allow_delete), allow_all=allow_deletes)


allow_delete_options = [
    click.option(
        "--allow-delete",
        multiple=True,
        metavar="NAME",
        help="Acknowledge deleting this segment past a safety limit (repeatable).",
    ),
    click.option(
        "--allow-deletes", is_flag=True, help="Acknowledge every deletion past the safety limits."
    ),
]


def with_allow_delete(func: F) -> F:
    for option in reversed(allow_delete_options):
        func = option(func)
    return func


@cli.command()
@common_options
@click.option(
    "-o",
    "--out",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also save the plan (JSON) to this file, for `apply FILE`.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format on stdout.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0 when none)."
)
@with_allow_delete
def plan(
    output: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    allow_delete: tuple[str, ...],
    allow_deletes: bool,
) -> int:
    """Read the live state and show what apply would change, rule by rule.

    Exits 3 when a deletion would trip a safety limit that no --allow-delete acknowledges.
    """
    state = _state()
    with state.workspace() as ws:
        result = ws.plan(_policy(allow_delete, allow_deletes))
    if output is not None:
        write_atomic(output, json.dumps(result.to_document(), indent=2) + "\n")
        state.progress(f"Saved plan to {output}; apply it with: reconciler apply {output}")
    click.echo(render_plan(result, fmt, color=state.color and fmt == "text"), nl=False)  # type: ignore[arg-type]
    if result.safety.tripped:
        return EXIT_UNSAFE
    return EXIT_CHANGES if detailed_exitcode and result.changes else EXIT_OK


MAX_PLAN_BYTES = 256 * 1024 * 1024
"""The largest saved plan ``apply`` reads (a 10,000-segment plan is some tens of MiB)."""


def _read_plan(path: Path) -> Plan:
    """A saved plan, read as untrusted input: a regular file of bounded size (a FIFO or a
    device is refused before it is read), valid JSON of the plan document."""
    text = read_text(path, str(path), MAX_PLAN_BYTES, "a saved plan")
    try:
        return Plan.from_document(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise ConfigError(
            f"{path}: not a plan file written by `reconciler plan -o` ({where}: {first['msg']})"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not a plan file (invalid JSON: {exc})") from exc


def _confirm(state: State, auto_approve: bool) -> bool:
    if auto_approve:
        return True
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError(
            "apply does not prompt without a terminal: pass --auto-approve, "
            "or apply a saved plan file (reconciler plan -o plan.json; reconciler apply plan.json)"
        )
    return click.confirm("Apply these changes?", default=False, err=True)


@cli.command()
@common_options
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@with_allow_delete
def apply(
    plan_file: Path | None, auto_approve: bool, allow_delete: tuple[str, ...], allow_deletes: bool
) -> int:
    """Plan (or load PLAN_FILE), confirm, apply, then re-read to confirm convergence.

    A saved plan is made again and refused if the live state changed since, or if its
    changes or safety limits differ from what is planned now (an edited file counts for
    nothing); deletions past a limit are acknowledged only by this command's flags.
    """
    state = _state()
    policy = _policy(allow_delete, allow_deletes)
    with state.workspace(narrow=plan_file is None) as ws:
        if plan_file is not None:
            saved = _read_plan(plan_file)
            result = ws.apply_saved(saved, policy)
            click.echo(render_apply_result(result, color=state.color), nl=False)
            if not result.ok or timed_out(result):
                return EXIT_ERROR
            ws.check_saved_converged(saved)
            state.progress("Re-read the live state: every change is in place.")
            return EXIT_OK
        current = ws.plan(policy)
        click.echo(render_plan(current, "text", color=state.color), nl=False)
        if current.is_empty:
            return EXIT_OK
        if current.safety.tripped:
            ws.apply(current)  # raises UnsafePlanError before any change
        deadline = ws.context.deadline
        with deadline.paused() if deadline is not None else nullcontext():  # a person reads
            confirmed = _confirm(state, auto_approve)
        if not confirmed:
            click.echo("Apply cancelled.", err=True)
            return EXIT_ERROR
        result = ws.apply(current)
        click.echo(render_apply_result(result, color=state.color), nl=False)
        if not result.ok or timed_out(result):
            return EXIT_ERROR
        ws.check_converged()
        state.progress("Re-read the live state: it matches the configuration.")
        return EXIT_OK


@cli.command()
@common_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown", "junit"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option(
    "-o",
    "--out",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report to this file instead of stdout.",
)
def drift(fmt: str, output: Path | None) -> int:
    """Report live segments that differ from the YAML, and unmanaged ones. Exits 2 on drift."""
    state = _state()
    with state.workspace() as ws:
        report = ws.drift()
    color = state.color and fmt == "text" and output is None
    _emit(render_drift(report, fmt, color=color), output)  # type: ignore[arg-type]
    return EXIT_CHANGES if report.drifted else EXIT_OK


@cli.command(name="import")
@common_options
@click.option(
    "-o",
    "--out",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the YAML to this file instead of stdout.",
)
def import_(output: Path | None) -> int:
    """Write a target's live lists as YAML (`lists:`) that plans to no changes.

    Needs exactly one --target; --list narrows to the named live lists.
    """
    state = _state()
    if len(state.targets) != 1:
        raise click.UsageError("import needs exactly one --target NAME")
    with state.workspace(narrow=False) as ws:
        imported = ws.import_document(state.targets[0], state.lists)
    for note in imported.notes:
        click.echo(f"Note: {printable(note)}", err=True)
    _emit(imported.text, output)
    return EXIT_OK


@cli.command()
@common_options
def schema() -> int:
    """Print the JSON Schema of the YAML configuration (for editors and CI)."""
    document = Config.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "reconciler configuration"
    click.echo(json.dumps(document, indent=2))
    return EXIT_OK


@cli.command()
@common_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format (markdown: each provider's table of operators per field).",
)
def providers(fmt: str) -> int:
    """List the installed providers and what each can express."""
    installed = _state().providers()
    found = {key: describe_capabilities(cls.capabilities) for key, cls in installed.items()}
    if fmt == "markdown":
        for key, cls in installed.items():
            click.echo(f"### `{key}`\n\n{render_operator_table(cls.capabilities)}")
    elif fmt == "json":
        click.echo(json.dumps(found, indent=2))
    else:
        click.echo(render_providers(found), nl=False)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; ``run`` exits with it)."""
    code: int = cli.main(args=argv, standalone_mode=False)
    return code


def run() -> None:
    """The console script and ``python -m reconciler``: one short-lived process.

    The cyclic garbage collector is off for the run (the objects built hold no cycles, and
    collections over a million long-lived objects cost more than the work), and the process
    ends without tearing those objects down one by one, after flushing its output.
    """
    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
