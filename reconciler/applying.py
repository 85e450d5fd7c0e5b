"""Run a plan through its providers, one change at a time, in the plan's order.

A failed change does not stop the run: independent changes still go ahead, and only the
changes that depend on a failed one (segments in a list that could not be created, segments
using a field that could not be created) are skipped. The result says what was applied,
what failed (with the YAML position of the declaration) and what was skipped.

Once the run's deadline (``--timeout``) has passed, no further change is started: each is
skipped as ``not started``, and the run counts as failed (``timed_out``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from .errors import PlatformOwned, ProviderError, UnsafePlanError
from .model import FieldRule, Group, LiveState, Rule, SourceRef
from .plan import Action, ApplyResult, Change, Outcome, Plan
from .planning import Canon, segment_diff
from .provider import Deadline, Provider

__all__ = ["NOT_STARTED", "apply_plan", "check_safety", "timed_out", "unconverged"]

NOT_STARTED = "not started: the run's --timeout passed"
"""The reason of every change skipped because the run's deadline passed before it."""

Locate = Callable[[SourceRef, tuple[str | int, ...]], str]
"""``file:line:column`` of a path inside a declaration (``config.locate_source``)."""


def check_safety(plan: Plan) -> None:
    """Refuse (exit 3) a plan whose deletions trip a limit nobody acknowledged."""
    tripped = plan.safety.tripped
    if tripped:
        reasons = "; ".join(limit.reason for limit in tripped)
        raise UnsafePlanError(
            f"refused by a safety limit: {reasons}. Acknowledge each deletion with "
            "--allow-delete NAME, or all of them with --allow-deletes"
        )


def _fields_used(rules: Iterable[Rule]) -> set[str]:
    used: set[str] = set()
    for rule in rules:
        if isinstance(rule, Group):
            used |= _fields_used(rule.rules)
        elif isinstance(rule, FieldRule):
            used.add(rule.field.casefold())
    return used


class _Dependencies:
    """Remembers failed parents so that their children are skipped, not attempted."""

    def __init__(self) -> None:
        self.lists: set[tuple[str, str]] = set()
        self.fields: dict[tuple[str, str], set[str]] = {}

    def blocked(self, change: Change) -> str | None:
        where = (change.target, change.list)
        if where in self.lists and change.action is not Action.CREATE_LIST:
            return f'list "{change.list}" could not be created'
        missing = self.fields.get(where)
        if missing and change.after is not None:
            needed = sorted(missing & _fields_used(change.after.rules))
            if needed:
                return f"field {', '.join(repr(n) for n in needed)} could not be created"
        return None

    def failed(self, change: Change) -> None:
        where = (change.target, change.list)
        if change.action is Action.CREATE_LIST:
            self.lists.add(where)
        elif change.action is Action.CREATE_FIELD and change.field is not None:
            self.fields.setdefault(where, set()).add(change.field.name.casefold())


def _describe(change: Change) -> str:
    if change.action is Action.CREATE_LIST:
        return f"create_list {change.list!r}"
    name = change.segment or (change.field.name if change.field else "")
    return f"{change.action.value} {name!r} in list {change.list!r}"


def _failure(change: Change, exc: ProviderError, locate: Locate | None) -> str:
    """The provider's error, prefixed with the declaration's position and followed by the
    position of each rule the platform rejected."""
    if locate is None or change.source is None:
        return str(exc)
    message = f"{locate(change.source, ())}: {exc}"
    if exc.rule_paths:
        places = ", ".join(locate(change.source, path) for path in exc.rule_paths)
        message += f" (rejected rules at {places})"
    return message


def apply_plan(
    plan: Plan,
    providers: Mapping[str, Provider],
    *,
    locate: Locate | None = None,
    progress: Callable[[str], None] | None = None,
    deadline: Deadline | None = None,
) -> ApplyResult:
    """Execute every change; never stop at the first failure, only at the ``deadline``
    (after which the changes left are skipped as ``NOT_STARTED``)."""
    outcomes: list[Outcome] = []
    deps = _Dependencies()
    total = len(plan.changes)
    for index, change in enumerate(plan.changes, start=1):
        if deadline is not None and deadline.passed():
            left = plan.changes[index - 1 :]
            outcomes += [Outcome(change=c, status="skipped", message=NOT_STARTED) for c in left]
            if progress is not None:
                progress(
                    f"Stopped: the run's {deadline.describe()} passed; "
                    f"{len(left)} of {total} change(s) not started."
                )
            break
        reason = deps.blocked(change)
        if reason is not None:
            outcomes.append(Outcome(change=change, status="skipped", message=reason))
            deps.failed(change)
            continue
        if progress is not None:
            progress(f"[{index}/{total}] {_describe(change)}")
        try:
            providers[change.target].apply(change)
        except PlatformOwned as exc:
            outcomes.append(Outcome(change=change, status="skipped", message=str(exc)))
        except ProviderError as exc:
            message = _failure(change, exc, locate)
            outcomes.append(Outcome(change=change, status="failed", message=message))
            deps.failed(change)
        else:
            outcomes.append(Outcome(change=change, status="applied"))
    return ApplyResult(outcomes=tuple(outcomes))


def timed_out(result: ApplyResult) -> bool:
    """Whether the run's deadline stopped ``result`` before every change was started (the
    apply then failed, even when nothing it started failed)."""
    return any(o.status == "skipped" and o.message == NOT_STARTED for o in result.outcomes)


def unconverged(plan: Plan, live: LiveState, providers: Mapping[str, Canon]) -> list[str]:
    """The applied changes of ``plan`` that the re-read live state does not show."""
    problems: list[str] = []
    for change in plan.changes:
        live_list = live.find(change.target, change.list)
        if live_list is None:
            problems.append(f'list "{change.list}" is missing after apply')
            continue
        if change.field is not None:
            wanted = change.field.name.casefold()
            if not any(f.name.casefold() == wanted for f in live_list.fields):
                problems.append(f'field "{change.field.name}" is missing from list "{change.list}"')
        elif change.action is Action.DELETE_SEGMENT and change.before is not None:
            if any(s.id == change.before.id for s in live_list.segments):
                problems.append(f'segment "{change.segment}" is still in list "{change.list}"')
        elif change.after is not None:
            found = [s for s in live_list.segments if s.name == change.after.name]
            if len(found) != 1:
                problems.append(
                    f'list "{change.list}" has {len(found)} segments named "{change.after.name}"'
                    " after apply"
                )
            elif segment_diff(change.after, found[0], providers[change.target], change.list):
                problems.append(f'segment "{change.after.name}" does not read back as applied')
    return problems
