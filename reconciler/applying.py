"""Run a plan through its providers: independent changes at once, dependent ones in order.

The changes wait for one another as ``ordering`` says (a list before its fields and
segments, a field before the segments using it, a segment before those whose membership
rules name it, one segment name's changes in plan order). Within that, a target whose
provider declares ``Capabilities.concurrent_apply`` runs up to its ``max_concurrency``
changes at once (its HTTP client still keeps ``requests_per_second``); any other provider
gets one change at a time, in plan order. Each change runs on a worker thread; the calling
thread only schedules, waits and reports, so Ctrl-C never lands inside a write.

A failed change does not stop the run: only the changes that depend on it (segments of a
list that could not be created, segments using a field that could not be created, a later
change of the same segment name, a segment whose membership rule names a segment that
could not be created) are skipped. The result lists every change in plan order: what was
applied, what failed (with the YAML position of the declaration) and what was skipped, and
why.

Stopping early:

- Once the run's deadline (``--timeout``) has passed, no further change is started; the
  changes in flight finish, and each change left is skipped as ``NOT_STARTED`` (the run
  counts as failed: ``timed_out``).
- Ctrl-C (``KeyboardInterrupt`` in the calling thread) starts nothing more and waits for
  the changes in flight; the result has ``interrupted`` set and the changes left skipped
  as ``INTERRUPTED``. A second Ctrl-C stops waiting: the changes still in flight are
  reported as failed with ``ABANDONED`` (they may or may not have been made).

Progress: ``advance("Applying", done, total)`` in the calling thread as changes finish;
each outcome is logged (logger ``reconciler.apply``, INFO: shown by ``-v``) in plan order.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

from .errors import PlatformOwned, ProviderError, UnsafePlanError
from .model import LiveSegment, LiveState, SourceRef, assembled
from .plan import Action, ApplyResult, Change, Outcome, Plan, SafetyLimit
from .planning import Canon, segment_diff
from .provider import Deadline, Provider

if TYPE_CHECKING:
    from .ordering import Ordering

__all__ = [
    "ABANDONED",
    "DEFAULT_CONCURRENCY",
    "INTERRUPTED",
    "NOT_STARTED",
    "apply_plan",
    "check_safety",
    "timed_out",
    "unconverged",
]

NOT_STARTED = "not started: the run's --timeout passed"
"""The reason of every change skipped because the run's deadline passed before it."""
INTERRUPTED = "not started: interrupted"
"""The reason of every change skipped because Ctrl-C stopped the run before it."""
ABANDONED = (
    "interrupted while it was being applied (Ctrl-C twice): it may or may not have been "
    "made; run plan to see"
)
"""The message of a change still in flight when a second Ctrl-C stopped the wait."""

DEFAULT_CONCURRENCY = 8
"""Changes (and requests) in flight per target when its ``max_concurrency`` is not set.

Against a platform answering in 50 ms, 1,000 creates take 50 s one at a time; 8 at once
bring that to about 6.5 s while keeping a self-hosted install's PHP workers (commonly 5 to
10) from queueing many more requests than they serve; see the documentation's
performance page for the measurements."""

Locate = Callable[[SourceRef, tuple[str | int, ...]], str]
"""``file:line:column`` of a path inside a declaration (``config.locate_source``)."""
Advance = Callable[[str, int, int], None]

REPORT_EVERY = 0.1
"""Seconds between two looks of the calling thread at the count of changes done (the
workers wake it only when the run has settled, not for each change)."""
_OUTCOME_FIELDS = {"change", "status", "message"}
"""The fields of every ``Outcome`` ``_decide`` builds: one set, shared."""

log = logging.getLogger("reconciler.apply")


def check_safety(plan: Plan) -> None:
    """Refuse (exit 3) a plan whose deletions, or segments shrinking past ``--max-shrink``,
    trip a limit nobody acknowledged."""
    tripped = plan.safety.tripped
    if tripped:
        reasons = "; ".join(limit.reason for limit in tripped)
        what = "deletion" if all(isinstance(t, SafetyLimit) for t in tripped) else "segment"
        raise UnsafePlanError(
            f"refused by a safety limit: {reasons}. Acknowledge each {what} with "
            "--allow-delete NAME, or all of them with --allow-deletes"
        )


def describe(change: Change) -> str:
    """``create_segment 'A' in list 'L'``: one change, for logs."""
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


def width(provider: Provider) -> int:
    """How many changes of ``provider``'s target may run at once."""
    if not provider.capabilities.concurrent_apply:
        return 1
    context = getattr(provider, "context", None)
    return getattr(context, "max_concurrency", None) or DEFAULT_CONCURRENCY


def apply_plan(
    plan: Plan,
    providers: Mapping[str, Provider],
    *,
    locate: Locate | None = None,
    progress: Callable[[str], None] | None = None,
    advance: Advance | None = None,
    deadline: Deadline | None = None,
) -> ApplyResult:
    """Execute every change; never stop at the first failure, only at the ``deadline`` or
    Ctrl-C (see the module docstring). ``progress`` gets the one-line messages about
    stopping; ``advance`` the count of changes finished."""
    changes = plan.changes
    if not changes:
        return ApplyResult()
    from .ordering import order  # apply alone needs it (not plan, drift or validate)

    graph = order(changes, lambda target: providers[target].capabilities.field_scope)
    run = _Run(plan, providers, graph, locate, deadline)
    return run.wait(progress or _quiet, advance or _still)


def _quiet(message: str) -> None:
    """No progress messages."""


def _still(label: str, done: int, total: int) -> None:
    """No counting progress."""


Stop = Literal["deadline", "interrupt", "error"]
Status = Literal["applied", "failed", "skipped"]


class _Run:
    """One apply: the scheduler's state, shared by the calling thread and the workers.

    Everything below ``lock`` is read and written under it. Workers run a change, record
    its outcome, release the changes waiting for it and start what may start (in plan
    order, per target up to its width); the calling thread only waits and reports.
    """

    def __init__(
        self,
        plan: Plan,
        providers: Mapping[str, Provider],
        graph: Ordering,
        locate: Locate | None,
        deadline: Deadline | None,
    ) -> None:
        self.changes = plan.changes
        self.providers = providers
        self.graph = graph
        self.children = graph.children()
        self.locate = locate
        self.deadline = deadline
        self.lock = threading.Condition()
        self.outcomes: list[Outcome | None] = [None] * len(self.changes)
        self.waiting = [len(edges) for edges in graph.parents]
        self.failed: set[int] = set()
        """Changes that failed, or were skipped because something they need failed."""
        targets = sorted({c.target for c in self.changes})
        self.width = {t: width(providers[t]) for t in targets}
        self.ready: dict[str, list[int]] = {t: [] for t in targets}
        self.busy = dict.fromkeys(targets, 0)
        self.in_flight: set[int] = set()
        self.done = 0
        self.stop: Stop | None = None
        self.error: BaseException | None = None
        self.closed = False
        self.interrupted = False
        for index, count in enumerate(self.waiting):
            if count == 0:
                self.ready[self.changes[index].target].append(index)
        counts = Counter(c.target for c in self.changes)
        workers = sum(min(self.width[t], counts[t]) for t in targets)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="reconciler-apply")

    # -- the calling thread ------------------------------------------------------------------

    def wait(self, progress: Callable[[str], None], advance: Advance) -> ApplyResult:
        """Start the run, wait for it to settle while reporting, and return the result.

        A ``KeyboardInterrupt`` only counts a press here; what it means is done on the next
        turn of the loop, so a press that lands anywhere in the loop is never lost. Any
        other exception here (from ``advance``, say) stops the run like a bug in a worker:
        nothing more starts, and it is raised once the changes in flight have finished."""
        total = len(self.changes)
        reported = -1
        logged = 0
        presses = 0
        started = False
        while True:
            try:
                if presses >= 2:
                    self._abandon()
                    break
                if presses and not self.interrupted:
                    self._interrupt(progress)
                if not started:
                    started = True
                    reported = 0
                    advance("Applying", 0, total)
                    self.pool.submit(self._start)
                with self.lock:
                    if not self._settled():
                        self.lock.wait(REPORT_EVERY)
                    done, settled = self.done, self._settled()
                if done != reported:
                    reported = done
                    advance("Applying", done, total)
                    logged = self._log(logged)
                if settled:
                    break
            except KeyboardInterrupt:
                presses += 1
            except BaseException as exc:
                with self.lock:
                    self.error = self.error or exc
                    self.stop = self.stop or "error"
        self.pool.shutdown(wait=not self.closed, cancel_futures=True)
        if self.error is not None:
            raise self.error
        return self._result(progress, logged)

    def _interrupt(self, progress: Callable[[str], None]) -> None:
        with self.lock:
            self.interrupted = True
            self.stop = self.stop or "interrupt"
            flying = len(self.in_flight)
        if flying:
            progress(
                f"Interrupted: waiting for the {flying} change(s) in flight to finish; "
                "nothing more starts (Ctrl-C again to stop waiting)."
            )

    def _abandon(self) -> None:
        """A second Ctrl-C: stop waiting; what is in flight may or may not be done."""
        with self.lock:
            self.closed = True
            for index in sorted(self.in_flight):
                change = self.changes[index]
                self.outcomes[index] = Outcome(change=change, status="failed", message=ABANDONED)
            self.in_flight.clear()

    def _settled(self) -> bool:
        if self.closed or self.in_flight:
            return self.closed
        return self.stop is not None or not any(self.ready.values())

    def _log(self, logged: int) -> int:
        """Log the outcomes known, in plan order, from ``logged`` on; the next to log."""
        if not log.isEnabledFor(logging.INFO):
            return logged
        while logged < len(self.outcomes):
            outcome = self.outcomes[logged]
            if outcome is None:
                break
            detail = f": {outcome.message}" if outcome.message else ""
            log.info("%s %s%s", outcome.status, describe(outcome.change), detail)
            logged += 1
        return logged

    def _result(self, progress: Callable[[str], None], logged: int) -> ApplyResult:
        reason = NOT_STARTED if self.stop == "deadline" else INTERRUPTED
        left = [i for i, outcome in enumerate(self.outcomes) if outcome is None]
        if left and self.stop is None:  # the graph points only backwards: cannot happen
            raise RuntimeError(f"apply settled with {len(left)} change(s) never ready")
        for index in left:
            self.outcomes[index] = Outcome.model_construct(
                change=self.changes[index], status="skipped", message=reason
            )
        self._log(logged)
        if left and self.stop == "deadline" and self.deadline is not None:
            progress(
                f"Stopped: the run's {self.deadline.describe()} passed; "
                f"{len(left)} of {len(self.changes)} change(s) not started."
            )
        outcomes = tuple(o for o in self.outcomes if o is not None)
        return ApplyResult.model_construct(outcomes=outcomes, interrupted=self.interrupted)

    # -- the workers -------------------------------------------------------------------------

    def _start(self) -> None:
        with self.lock:
            first = self._step(self._dispatch)
        self._work(first)

    def _step(self, step: Callable[[], int | None]) -> int | None:
        """Run a scheduling step under the lock; a bug in it stops the run (it is raised by
        the calling thread), it never hangs the wait. Wakes the calling thread once the run
        has settled (it looks at the count of changes done on its own, now and then)."""
        try:
            return step()
        except BaseException as exc:
            self.error = self.error or exc
            self.stop = "error"
            return None
        finally:
            if self._settled():
                self.lock.notify_all()

    def _dispatch(self) -> int | None:
        """Start every change that may start now, lowest plan index first per target; the
        first is returned for the calling worker to run itself, the others go to the pool."""
        inline: int | None = None
        for target, ready in self.ready.items():
            while ready and self.busy[target] < self.width[target]:
                if self.stop is not None or self.closed:
                    return inline
                index = ready[0]
                reason = self.graph.skip_reason(index, self.failed) if self.failed else None
                if reason is not None:
                    heapq.heappop(ready)
                    self._decide(index, "skipped", reason, failed=True)
                    continue
                if self.deadline is not None and self.deadline.passed():
                    self.stop = "deadline"
                    return inline
                heapq.heappop(ready)
                self.busy[target] += 1
                self.in_flight.add(index)
                if inline is None:
                    inline = index
                else:
                    self.pool.submit(self._work, index)
        return inline

    def _decide(self, index: int, status: Status, message: str, *, failed: bool) -> None:
        change = self.changes[index]
        values = {"change": change, "status": status, "message": message}
        self.outcomes[index] = assembled(Outcome, values, _OUTCOME_FIELDS)
        self.done += 1
        if failed:
            self.failed.add(index)
        for child in self.children[index]:
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                heapq.heappush(self.ready[self.changes[child].target], child)

    def _work(self, index: int | None) -> None:
        """Run change ``index``, then whatever its end lets start (one in this thread)."""
        while index is not None:
            index = self._run_one(index)

    def _run_one(self, index: int) -> int | None:
        change = self.changes[index]
        outcome: tuple[Status, str, bool] | None = None
        crash: BaseException | None = None
        try:
            self.providers[change.target].apply(change)
            outcome = ("applied", "", False)
        except PlatformOwned as exc:
            outcome = ("skipped", str(exc), False)
        except ProviderError as exc:
            try:
                outcome = ("failed", _failure(change, exc, self.locate), True)
            except BaseException as bug:
                crash = bug
        except BaseException as exc:
            crash = exc
        with self.lock:
            if self.closed:
                return None
            self.busy[change.target] -= 1
            self.in_flight.discard(index)

            def step() -> int | None:
                if crash is not None or outcome is None:
                    raise crash or RuntimeError("no outcome")
                status, message, failed = outcome
                self._decide(index, status, message, failed=failed)
                return self._dispatch()

            return self._step(step)


def timed_out(result: ApplyResult) -> bool:
    """Whether the run's deadline stopped ``result`` before every change was started (the
    apply then failed, even when nothing it started failed)."""
    return any(o.status == "skipped" and o.message == NOT_STARTED for o in result.outcomes)


def applied(result: ApplyResult) -> tuple[Change, ...]:
    """The changes of ``result`` that were applied."""
    return tuple(o.change for o in result.outcomes if o.status == "applied")


def unconverged(
    plan: Plan | Iterable[Change], live: LiveState, providers: Mapping[str, Canon]
) -> list[str]:
    """The changes of ``plan`` (or the changes given) that the re-read live state does not
    show, as the next plan would: a segment written must be there once under its name with
    no difference left, a field created must exist, a segment deleted must be gone."""
    problems: list[str] = []
    changes = plan.changes if isinstance(plan, Plan) else tuple(plan)
    lists = {(found.target, found.name): found for found in reversed(live.lists)}  # first wins
    named: dict[tuple[str, str], dict[str, list[LiveSegment]]] = {}  # built once per list
    for change in changes:
        live_list = lists.get((change.target, change.list))
        if live_list is None:
            problems.append(f'list "{change.list}" is missing after apply')
            continue
        if change.field is not None:
            fields = (*live_list.fields, *live.account_fields.get(change.target, ()))
            if not any(f.answers_to(change.field.name) for f in fields):
                problems.append(f'field "{change.field.name}" is missing from list "{change.list}"')
        elif change.action is Action.DELETE_SEGMENT and change.before is not None:
            if any(s.id == change.before.id for s in live_list.segments):
                problems.append(f'segment "{change.segment}" is still in list "{change.list}"')
        elif change.after is not None:
            by_name = named.get((change.target, change.list))
            if by_name is None:
                by_name = named[(change.target, change.list)] = {}
                for segment in live_list.segments:
                    by_name.setdefault(segment.name, []).append(segment)
            found = by_name.get(change.after.name, [])
            if len(found) != 1:
                problems.append(
                    f'list "{change.list}" has {len(found)} segments named "{change.after.name}"'
                    " after apply"
                )
            elif segment_diff(change.after, found[0], providers[change.target], change.list):
                problems.append(f'segment "{change.after.name}" does not read back as applied')
    return problems
