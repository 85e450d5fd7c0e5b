"""The ``reconciler`` command line: parse options, make one library call, render, exit.

Exit codes (the same for every command): 0 success and nothing to change; 1 error;
2 changes pending (``plan --detailed-exitcode``) or drift found (``drift``); 3 refused by a
safety limit; 130 interrupted (Ctrl-C). They are decided in ``ReconcilerGroup.main`` and the
commands' return values; no command calls ``sys.exit``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click
from pydantic import ValidationError

from . import __version__
from .applying import timed_out
from .cli_reports import report_files, report_targets, write_reports
from .cli_state import State, common_options, write_atomic
from .cli_test import test_command
from .config import load_config, unset_variables
from .errors import ConfigError, ReconcilerError
from .plan import ApplyResult, Plan
from .planning import SafetyPolicy
from .registry import partition
from .render import (
    DriftFormat,
    PlanFormat,
    not_started,
    printable,
    render_apply_result,
    render_drift,
    render_operator_table,
    render_plan,
    render_providers,
)
from .shapes import describe_capabilities
from .yamlguard import read_text

if TYPE_CHECKING:
    from .sample import Sample
    from .workspace import Workspace

__all__ = ["cli", "main", "run"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_UNSAFE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report a process ended by SIGINT (128 + 2)."""


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
        state = extra.setdefault("obj", State())
        try:
            code = super().main(
                args, prog_name or "reconciler", complete_var, standalone_mode=False, **extra
            )
        except click.ClickException as exc:
            state.finish_progress()
            exc.show(file=cast(IO[Any], _Printable(sys.stderr)))
            code = EXIT_ERROR  # usage errors too: 2 means "changes pending" here
        except click.exceptions.Abort as exc:
            state.finish_progress()
            code = _aborted(exc)
        except KeyboardInterrupt:
            state.finish_progress()
            click.echo("\nInterrupted.", err=True)
            code = EXIT_INTERRUPTED
        except ReconcilerError as exc:
            state.finish_progress()
            for line in exc.lines():
                click.echo(f"Error: {printable(line)}", err=True)
            code = exc.exit_code
        code = code if isinstance(code, int) else EXIT_OK
        if standalone_mode:
            sys.exit(code)
        return code


def _aborted(exc: click.exceptions.Abort) -> int:
    """Ctrl-C (click turns it into ``Abort``) exits 130; end of input at a prompt, 1."""
    if isinstance(exc.__cause__, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)  # click has already ended the ^C line
        return EXIT_INTERRUPTED
    click.echo("Aborted.", err=True)
    return EXIT_ERROR


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Plan and apply email list segments declared in YAML, like Terraform for segments.

    Exit codes: 0 nothing to change, 1 error, 2 changes pending or drift found,
    3 refused by a safety limit, 130 interrupted (Ctrl-C).

    Shell completion of commands, options, and --target and --list names from the
    configuration:

    \b
      bash (~/.bashrc):  eval "$(_RECONCILER_COMPLETE=bash_source reconciler)"
      zsh (~/.zshrc):    eval "$(_RECONCILER_COMPLETE=zsh_source reconciler)"
      fish:              _RECONCILER_COMPLETE=fish_source reconciler | source
    """


def _state() -> State:
    return click.get_current_context().ensure_object(State)


def _out(text: str) -> None:
    """Text for stdout (a report), after any progress bar on stderr is finished."""
    state = _state()
    state.finish_progress()
    click.echo(text, nl=not text.endswith("\n"), color=state.color or None)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        _out(text)
    else:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
        _state().progress(f"Wrote {output}")


@cli.command()
@common_options
@click.option(
    "--offline",
    is_flag=True,
    help=(
        "Need no environment variable: a ${VAR} that is not set is no error, settings "
        "that stand for one are not checked, and credentials are not required to be set "
        "(for pre-commit hooks and pull requests from forks)."
    ),
)
def validate(offline: bool) -> int:
    """Check the YAML offline: schema, references, and what each provider can express.

    Never connects to any platform. Without --offline, every ${VAR} must be set.
    """
    state = _state()
    with state.workspace(offline=offline, tests=True) as ws:
        config = ws.config
        segments = sum(len(item.segments) for item in config.lists)
        click.echo(
            f"Configuration is valid: {len(config.lists)} list(s), {segments} segment(s), "
            f"{len(ws.scope)} target(s)."
        )
        unset = sorted(unset_variables(config))
    if unset:
        click.echo(
            "Note: checked offline; not set, so the values using them were not checked: "
            + ", ".join(unset),
            err=True,
        )
    return EXIT_OK


def _policy(
    allow_delete: tuple[str, ...],
    allow_deletes: bool,
    sample: Sample | None = None,
    max_shrink: float | None = None,
) -> SafetyPolicy:
    return SafetyPolicy(
        allow_delete=frozenset(allow_delete),
        allow_all=allow_deletes,
        sample=sample,
        max_shrink=None if max_shrink is None else max_shrink / 100,
    )


allow_delete_options = [
    click.option(
        "--allow-delete",
        multiple=True,
        metavar="NAME",
        help=(
            "Acknowledge deleting this segment, or its shrinking past --max-shrink, past a "
            "safety limit (repeatable)."
        ),
    ),
    click.option(
        "--allow-deletes",
        is_flag=True,
        help="Acknowledge every deletion (and shrinking) past the safety limits.",
    ),
]


def with_allow_delete(func: F) -> F:
    for option in reversed(allow_delete_options):
        func = option(func)
    return func


sample_options = [
    click.option(
        "--sample",
        "sample_file",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE",
        help=(
            "Show each segment change's members among these sample subscribers, before "
            "and after: a tests file (.yaml), CSV (.csv) or JSON Lines (.jsonl)."
        ),
    ),
    click.option(
        "--max-shrink",
        type=click.FloatRange(0, 100),
        metavar="PCT",
        help=(
            "Refuse (exit 3) when a segment updated would lose more than PCT % of its "
            "sample members (needs --sample); acknowledged like deletions, with "
            "--allow-delete NAME or --allow-deletes."
        ),
    ),
]


def with_sample(func: F) -> F:
    for option in reversed(sample_options):
        func = option(func)
    return func


def _narrowed(state: State) -> bool:
    return bool(state.targets or state.lists)


def _sample(
    state: State, ws: Workspace, path: Path | None, max_shrink: float | None, narrowed: bool
) -> Sample | None:
    """The sample subscribers of ``--sample``, read and checked before any live read."""
    if path is None:
        if max_shrink is not None:
            raise click.UsageError("--max-shrink needs --sample FILE: the members it counts")
        return None
    from .sample_files import load_sample_file  # only with --sample: the evaluator

    # A sample may name any declared list: check it against the whole configuration.
    # (The workspace holds it narrowed to --target/--list; reading it again is the price.)
    whole = load_config(state.config_path) if narrowed else ws.config
    return load_sample_file(whole, path, datetime.now(UTC).date())


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
@report_files("text", "json", "markdown")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0 when none)."
)
@with_allow_delete
@with_sample
def plan(
    output: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    allow_delete: tuple[str, ...],
    allow_deletes: bool,
    sample_file: Path | None,
    max_shrink: float | None,
    **files: tuple[Path, ...],
) -> int:
    """Read the live state and show what apply would change, rule by rule.

    One read of the live state makes every report: stdout in --format, and each --text,
    --json, --markdown FILE (written whole, or none if one cannot be written).
    Exits 3 when a deletion, or a segment shrinking past --max-shrink, would trip a safety
    limit that no --allow-delete acknowledges.
    """
    state = _state()
    wanted = report_targets([("json", output)] if output is not None else [], files)
    # The live state's digests show only in JSON (and make a saved plan checkable).
    digests = fmt == "json" or any(f == "json" for f, _ in wanted)
    with state.workspace() as ws:
        sample = _sample(state, ws, sample_file, max_shrink, _narrowed(state))
        policy = _policy(allow_delete, allow_deletes, sample, max_shrink)
        result = ws.plan(policy, digests=digests)
    reports = [(path, render_plan(result, cast(PlanFormat, f))) for f, path in wanted]
    saved = {} if output is None else {output: _saved_note(output)}
    write_reports(reports, saved, _state().progress)
    _out(render_plan(result, cast(PlanFormat, fmt), color=state.color and fmt == "text"))
    if result.safety.tripped:
        return EXIT_UNSAFE
    return EXIT_CHANGES if detailed_exitcode and result.changes else EXIT_OK


def _saved_note(path: Path) -> str:
    return f"Saved plan to {path}; apply it with: reconciler apply {path}"


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
    if not state.interactive:
        raise ConfigError(
            "apply does not prompt without a terminal on stdin: pass --auto-approve, "
            "or apply a saved plan file (reconciler plan -o plan.json; reconciler apply plan.json)"
        )
    return state.confirm("Apply these changes?")


def _applied(state: State, result: ApplyResult) -> int | None:
    """Report an apply's result; the exit code if the run cannot go on to its re-read."""
    _out(render_apply_result(result, color=state.color))
    if result.interrupted:
        click.echo(
            f"Interrupted: {result.count('applied')} applied, {result.count('failed')} "
            f"failed, {not_started(result)} not started. Run apply again to finish: it "
            "plans from the live state.",
            err=True,
        )
        return EXIT_INTERRUPTED
    if not result.ok or timed_out(result):
        return EXIT_ERROR
    return None


@cli.command()
@common_options
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--auto-approve",
    is_flag=True,
    help=(
        "Apply without asking. Without it, apply asks on stderr when stdin is a terminal "
        "(also when stdout is piped, as in `apply | tee log`) and refuses otherwise."
    ),
)
@with_allow_delete
@with_sample
def apply(
    plan_file: Path | None,
    auto_approve: bool,
    allow_delete: tuple[str, ...],
    allow_deletes: bool,
    sample_file: Path | None,
    max_shrink: float | None,
) -> int:
    """Plan (or load PLAN_FILE), confirm, apply, then re-read to confirm convergence.

    A saved plan is made again and refused if the live state changed since, or if its
    changes or safety limits differ from what is planned now (an edited file counts for
    nothing); deletions past a limit are acknowledged only by this command's flags.
    Ctrl-C lets the changes being written finish, starts no other, reports what was
    applied, failed and not started, and exits 130. --max-shrink is checked on the plan
    made now, with this command's --sample (a saved plan's impact is never trusted).
    """
    state = _state()
    with state.workspace(narrow=plan_file is None) as ws:
        narrowed = plan_file is None and _narrowed(state)
        sample = _sample(state, ws, sample_file, max_shrink, narrowed)
        policy = _policy(allow_delete, allow_deletes, sample, max_shrink)
        if plan_file is not None:
            saved = _read_plan(plan_file)
            stopped = _applied(state, ws.apply_saved(saved, policy))
            if stopped is not None:
                return stopped
            ws.check_saved_converged(saved)
            state.progress("Re-read the live state: every change is in place.")
            return EXIT_OK
        current = ws.plan(policy)
        _out(render_plan(current, "text", color=state.color))
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
        stopped = _applied(state, ws.apply(current))
        if stopped is not None:
            return stopped
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
    help="Write the --format report to this file instead of stdout.",
)
@report_files("text", "json", "markdown", "junit")
def drift(fmt: str, output: Path | None, **files: tuple[Path, ...]) -> int:
    """Report live segments that differ from the YAML, and unmanaged ones. Exits 2 on drift.

    One read of the live state makes every report: the --format one (stdout, or -o FILE),
    and each --text, --json, --markdown, --junit FILE (written whole, or none if one
    cannot be written). For example: drift --json drift.json --markdown drift.md
    --junit drift.xml.
    """
    state = _state()
    wanted = report_targets([(fmt, output)] if output is not None else [], files)
    with state.workspace() as ws:
        report = ws.drift()
    outputs = [(path, render_drift(report, cast(DriftFormat, f))) for f, path in wanted]
    write_reports(outputs, {}, state.progress)
    if output is None:
        _out(render_drift(report, cast(DriftFormat, fmt), color=state.color and fmt == "text"))
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
    state.finish_progress()
    for note in imported.notes:
        click.echo(f"Note: {printable(note)}", err=True)
    _emit(imported.text, output)
    return EXIT_OK


@cli.command()
@common_options
@click.option(
    "--included",
    is_flag=True,
    help="The schema of an included file (one holding only lists:), instead of the root file's.",
)
def schema(included: bool) -> int:
    """Print the JSON Schema of the YAML configuration (for editors and CI).

    Target settings are described for each installed provider."""
    from .schema import schema_document  # only this command needs it

    document = schema_document(_state().providers(), included=included)
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
    """List the installed providers and what each can express.

    A provider whose package is broken (it fails to import, or does not name a complete
    Provider class) is listed as broken, with the reason; it breaks only the
    configurations that use it.
    """
    installed, broken = partition(_state().providers())
    found = {key: describe_capabilities(cls.capabilities) for key, cls in installed.items()}
    if fmt == "markdown":
        for key in sorted({*installed, *broken}):
            if key in broken:
                click.echo(f"### `{key}`\n\nBroken: {printable(broken[key])}\n")
            else:
                table = render_operator_table(installed[key].capabilities)
                click.echo(f"### `{key}`\n\n{table}")
    elif fmt == "json":
        document = {**found, **{key: {"broken": reason} for key, reason in broken.items()}}
        click.echo(json.dumps(dict(sorted(document.items())), indent=2))
    else:
        click.echo(render_providers(found, broken), nl=False)
    return EXIT_OK


cli.add_command(test_command)


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
