"""The library behind the commands: a loaded configuration, its providers, and the verbs.

``Workspace.open`` loads and validates the YAML, narrows it to the selected targets and
lists, and builds one provider per target on first use. Each command of the CLI makes one
call here and renders the result.

Several targets are read at once (one thread per target, at most ``MAX_PARALLEL_TARGETS``);
their progress reaches the context's callbacks from the calling thread only. After an
apply, the convergence check re-reads only what the apply wrote (the segments' rules) plus
one listing per list it touched.
"""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .applying import DEFAULT_CONCURRENCY, applied, apply_plan, check_safety, unconverged
from .config import load_config, locate_source, sorted_errors
from .errors import ConfigError, ConfigErrors, ConvergenceError, StalePlanError
from .feasibility import plan_problems
from .model import Config, LiveField, LiveList, LiveState, Segment
from .plan import Action, ApplyResult, Change, DriftReport, Plan
from .planning import (
    SafetyPolicy,
    detect_drift,
    live_digests,
    plan,
    plan_differences,
    stale_reasons,
)
from .provider import Provider, ProviderContext, Scope
from .registry import Registry
from .validation import validate_config

if TYPE_CHECKING:
    from .importing import Imported

__all__ = ["MAX_PARALLEL_TARGETS", "Selection", "Workspace", "written_scope"]

MAX_PARALLEL_TARGETS = 8
"""Most targets read at once (each read runs its own ``max_concurrency`` requests)."""


@dataclass(frozen=True)
class Selection:
    """``--target`` and ``--list`` narrowing; empty means everything."""

    targets: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()


def _narrow(config: Config, selection: Selection) -> Config:
    known_targets = set(config.targets)
    for name in selection.targets:
        if name not in known_targets:
            raise ConfigError(f'--target "{name}": no such target in the configuration')
    known_lists = {item.name for item in config.lists}
    for name in selection.lists:
        if name not in known_lists:
            raise ConfigError(f'--list "{name}": no such list in the configuration')
    kept = tuple(
        item
        for item in config.lists
        if (not selection.targets or item.target in selection.targets)
        and (not selection.lists or item.name in selection.lists)
    )
    return config.model_copy(update={"lists": kept})


class Workspace:
    """A validated configuration narrowed to a selection, with its providers."""

    def __init__(
        self,
        config: Config,
        registry: Registry,
        context: ProviderContext,
        selection: Selection = Selection(),
    ) -> None:
        self.config = _narrow(config, selection)
        self.registry = registry
        self.context = context
        self._providers: dict[str, Provider] = {}
        self._relay = _Relay(context)
        self._applied: ApplyResult | None = None
        """The result of the last apply run here: what the convergence check re-reads."""

    @classmethod
    def open(
        cls,
        path: Path,
        registry: Registry,
        context: ProviderContext,
        selection: Selection = Selection(),
    ) -> Workspace:
        config = load_config(path)
        validate_config(config, registry)
        return cls(config, registry, context, selection)

    def provider(self, target: str) -> Provider:
        """The provider of one target, built on first use."""
        if target not in self._providers:
            if target not in self.config.targets:
                raise ConfigError(f'no target named "{target}" in the configuration')
            spec = self.config.targets[target]
            factory = self.registry[spec.provider]
            settings = factory.settings_model.model_validate(spec.settings)
            context = dataclasses.replace(
                self.context,
                progress=self._relay.progress,
                advance=self._relay.advance_for(target),
                max_concurrency=spec.max_concurrency or DEFAULT_CONCURRENCY,
                requests_per_second=spec.requests_per_second,
            )
            self._providers[target] = factory(target, settings, context)
        return self._providers[target]

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()
        self._providers.clear()

    @property
    def scope(self) -> dict[str, tuple[str, ...]]:
        """The declared list names of each target in the selection."""
        found: dict[str, list[str]] = {}
        for item in self.config.lists:
            found.setdefault(item.target or "", []).append(item.name)
        return {target: tuple(names) for target, names in found.items()}

    def fetch(self, scope: Mapping[str, Sequence[str]] | None = None) -> LiveState:
        """The live state of every list in scope, across targets. Each target's scope
        carries the declared segments of its lists as a hint (``Scope.expected``)."""
        names = scope if scope is not None else self.scope
        declared: dict[str, dict[str, dict[str, Segment]]] = {}
        for item in self.config.lists:
            by_name = {segment.name: segment for segment in item.segments}
            declared.setdefault(item.target or "", {})[item.name] = by_name
        return self.read(
            {
                target: Scope(frozenset(lists), expected=declared.get(target, {}))
                for target, lists in names.items()
            }
        )

    def read(self, scopes: Mapping[str, Scope]) -> LiveState:
        """What each target holds within its scope, merged in the order given; several
        targets are read at once (see ``_read_concurrently``)."""
        for target in scopes:
            self.provider(target)  # built here, in the calling thread
        if len(scopes) > 1:
            found = self._read_concurrently(scopes)
        else:
            found = [self._read_one(target, item) for target, item in scopes.items()]
        lists: list[LiveList] = []
        account: dict[str, tuple[LiveField, ...]] = {}
        for state in found:
            lists.extend(state.lists)
            account.update(state.account_fields)
        return LiveState(lists=tuple(lists), account_fields=account)

    def _read_one(self, target: str, scope: Scope) -> LiveState:
        what = "every list" if scope.lists is None else f"{len(scope.lists)} list(s)"
        self._relay.progress(f"Reading {what} from target {target!r}...")
        return self.provider(target).fetch(scope)

    def _read_concurrently(self, scopes: Mapping[str, Scope]) -> list[LiveState]:
        """One thread per target (at most ``MAX_PARALLEL_TARGETS`` at once). The providers'
        progress is queued and passed on from this thread. When a read fails, the reads not
        started are cancelled and the others finish; then the failure of the first target
        (in the order given) that failed is raised."""
        events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        items = list(scopes.items())
        pool = ThreadPoolExecutor(
            min(len(items), MAX_PARALLEL_TARGETS), thread_name_prefix="reconciler-read"
        )
        futures: list[Future[LiveState]] = []
        self._relay.queue = events
        try:
            for index, (target, scope) in enumerate(items):
                future = pool.submit(self._read_one, target, scope)
                future.add_done_callback(_announce(events, index))
                futures.append(future)
            self._relay.drain(events, futures)
        finally:
            self._relay.queue = None
            pool.shutdown(wait=False, cancel_futures=True)
        for future in futures:
            error = None if future.cancelled() else future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def _providers_for(self, targets: Sequence[str]) -> dict[str, Provider]:
        return {target: self.provider(target) for target in targets}

    def plan(self, policy: SafetyPolicy | None = None, *, digests: bool = True) -> Plan:
        """The plan, refused (``ConfigErrors``, located in the YAML) if any change in it
        could not be applied as planned: a green plan is one apply can carry out.

        ``digests=False`` leaves out the live state's digests (``fingerprint``,
        ``live_digests``): only a JSON plan shows them and only a saved plan needs them."""
        live = self.fetch()
        providers = self._providers_for(list(self.scope))
        current = plan(self.config, live, providers, policy or SafetyPolicy(), digests=digests)
        ConfigErrors.raise_if_any(
            sorted_errors(plan_problems(self.config, live, current, providers))
        )
        return current

    def drift(self) -> DriftReport:
        """Drift item by item, with the plan that would undo it (one read of the live state)."""
        live = self.fetch()
        providers = self._providers_for(list(self.scope))
        report = detect_drift(self.config, live, providers)
        return report.model_copy(update={"plan": plan(self.config, live, providers)})

    def apply(self, current: Plan) -> ApplyResult:
        """Apply a plan just made from this configuration (safety limits first)."""
        check_safety(current)
        return self._run(current)

    def check_converged(self, result: ApplyResult | None = None) -> None:
        """After an apply: every change it applied must read back as applied, so that the
        next plan is empty for what was written. Only what was written is re-read (see
        ``written_scope``). ``result`` defaults to the last apply run in this workspace;
        without any, plan again: anything left to change is a convergence failure."""
        result = result if result is not None else self._applied
        if result is not None:
            self._converged(applied(result))
            return
        again = self.plan()
        if again.changes:
            lines = [
                f"{c.action.value} {c.segment or c.list} ({'; '.join(c.diff) or 'missing'})"
                for c in again.changes
            ]
            raise ConvergenceError(
                "apply finished but planning again still shows changes, so the target did "
                "not store what it was sent: " + " | ".join(lines)
            )

    def apply_saved(self, saved: Plan, policy: SafetyPolicy) -> ApplyResult:
        """Apply a saved plan, trusting nothing in the file: the plan is made again from
        this configuration and the live state now, and applied only if its changes and
        safety limits are exactly the saved ones. Acknowledgements come from ``policy``
        (this command's flags), never from the file."""
        live = self.fetch(saved.scope)
        reasons = stale_reasons(saved.live_digests, live_digests(self.config, live))
        if reasons:
            raise StalePlanError(
                "the saved plan is stale: the live state changed since it was made ("
                + _first_ten(reasons)
                + "). Run plan again."
            )
        fresh = self._replan(saved.scope, live, policy)
        differences = plan_differences(saved, fresh)
        if differences:
            raise StalePlanError(
                "the saved plan is not what this configuration plans against the live state "
                f"now ({_first_ten(differences)}); it was edited or the configuration changed "
                "since. Run plan again."
            )
        check_safety(fresh)
        return self._run(fresh)

    def _replan(
        self, scope: Mapping[str, Sequence[str]], live: LiveState, policy: SafetyPolicy
    ) -> Plan:
        """The plan this configuration makes for ``scope`` (a saved plan's) against ``live``."""
        wanted = {(target, name) for target, names in scope.items() for name in names}
        kept = tuple(i for i in self.config.lists if ((i.target or ""), i.name) in wanted)
        config = self.config.model_copy(update={"lists": kept})
        providers = self._providers_for(list(scope))
        current = plan(config, live, providers, policy)
        ConfigErrors.raise_if_any(sorted_errors(plan_problems(config, live, current, providers)))
        return current

    def check_saved_converged(self, saved: Plan) -> None:
        """After applying a saved plan, every change applied must read back as applied
        (every change of ``saved`` when no apply ran in this workspace)."""
        written = applied(self._applied) if self._applied is not None else saved.changes
        self._converged(written)

    def _converged(self, written: Sequence[Change]) -> None:
        if not written:
            return
        live = self.read(written_scope(written))
        problems = unconverged(
            written, live, self._providers_for(sorted({c.target for c in written}))
        )
        if problems:
            raise ConvergenceError(
                "apply finished but the target does not read back what it was sent: "
                + "; ".join(problems)
            )

    def import_state(self, target: str, lists: Sequence[str]) -> LiveState:
        """Everything a target holds (or just the named lists), for ``import``."""
        names = frozenset(lists) if lists else None
        return self.read({target: Scope(names)})

    def import_document(self, target: str, lists: Sequence[str]) -> Imported:
        """``import``: the target's live lists as YAML that validates and plans clean."""
        from .importing import import_document  # ruamel.yaml writes it: loaded for import only

        live = self.import_state(target, lists)
        return import_document(live, self.config.defaults.target, self.provider(target))

    def _run(self, current: Plan) -> ApplyResult:
        providers = self._providers_for(sorted({c.target for c in current.changes}))
        self._applied = apply_plan(
            current,
            providers,
            locate=locate_source,
            progress=self.context.progress,
            advance=self.context.advance,
            deadline=self.context.deadline,
        )
        return self._applied


def written_scope(changes: Iterable[Change]) -> dict[str, Scope]:
    """What to re-read to see ``changes`` (applied): per target, the lists they touched,
    and in each only the segments they wrote, by name (casefolded) and by id; with the
    segments written as the hint (``Scope.expected``)."""
    lists: dict[str, set[str]] = {}
    segments: dict[str, dict[str, set[str]]] = {}
    expected: dict[str, dict[str, dict[str, Segment]]] = {}
    for change in changes:
        lists.setdefault(change.target, set()).add(change.list)
        wanted = segments.setdefault(change.target, {}).setdefault(change.list, set())
        names = [change.segment, change.after and change.after.name]
        if change.before is not None:
            names.append(change.before.name)
            wanted.add(change.before.id)
        wanted.update(name.casefold() for name in names if name)
        if change.after is not None and change.action is not Action.DELETE_SEGMENT:
            by_name = expected.setdefault(change.target, {}).setdefault(change.list, {})
            by_name[change.after.name] = change.after
    return {
        target: Scope(
            frozenset(names),
            {name: frozenset(found) for name, found in segments[target].items()},
            expected=expected.get(target, {}),
        )
        for target, names in lists.items()
    }


def _announce(
    events: queue.SimpleQueue[tuple[Any, ...]], index: int
) -> Callable[[Future[Any]], None]:
    """A done-callback telling the calling thread that read ``index`` ended."""

    def done(_: Future[Any]) -> None:
        events.put(("done", index))

    return done


class _Relay:
    """Where the providers' progress goes: to the context's callbacks directly, or, while
    several targets are read at once (``queue`` set), through a queue to the calling
    thread, which passes it on (counts summed over the targets)."""

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self.queue: queue.SimpleQueue[tuple[Any, ...]] | None = None

    def progress(self, message: str) -> None:
        found = self.queue
        if found is None:
            self.context.progress(message)
        else:
            found.put(("progress", message))

    def advance_for(self, target: str) -> Callable[[str, int, int], None]:
        def advance(label: str, done: int, total: int) -> None:
            found = self.queue
            if found is None:
                self.context.advance(label, done, total)
            else:
                found.put(("advance", target, label, done, total))

        return advance

    def drain(
        self, events: queue.SimpleQueue[tuple[Any, ...]], futures: Sequence[Future[Any]]
    ) -> None:
        """Pass the queued progress on until every future is done; after the first
        failure, cancel the futures not started."""
        counts: dict[str, dict[str, tuple[int, int]]] = {}
        finished: set[int] = set()
        failed = False
        while len(finished) < len(futures):
            event = events.get()
            if event[0] == "progress":
                self.context.progress(event[1])
            elif event[0] == "advance":
                _, target, label, done, total = event
                by_target = counts.setdefault(label, {})
                by_target[target] = (done, total)
                self.context.advance(
                    label,
                    sum(d for d, _ in by_target.values()),
                    sum(t for _, t in by_target.values()),
                )
            else:
                finished.add(event[1])
                future = futures[event[1]]
                if not failed and not future.cancelled() and future.exception() is not None:
                    failed = True
                    for other in futures:
                        other.cancel()


@contextmanager
def opened(
    path: Path, registry: Registry, context: ProviderContext, selection: Selection
) -> Iterator[Workspace]:
    """``Workspace.open`` as a context manager that closes every provider."""
    workspace = Workspace.open(path, registry, context, selection)
    try:
        yield workspace
    finally:
        workspace.close()


def _first_ten(reasons: Sequence[str]) -> str:
    more = f"; and {len(reasons) - 10} more" if len(reasons) > 10 else ""
    return "; ".join(reasons[:10]) + more
