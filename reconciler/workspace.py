"""The library behind the commands: a loaded configuration, its providers, and the verbs.

``Workspace.open`` loads and validates the YAML, narrows it to the selected targets and
lists, and builds one provider per target on first use. Each command of the CLI makes one
call here and renders the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .applying import apply_plan, check_safety, unconverged
from .config import load_config, locate_source, sorted_errors
from .errors import ConfigError, ConfigErrors, ConvergenceError, StalePlanError
from .feasibility import plan_problems
from .importing import Imported, import_document
from .model import Config, LiveField, LiveList, LiveState
from .plan import ApplyResult, DriftReport, Plan
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

__all__ = ["Selection", "Workspace"]


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
                max_concurrency=spec.max_concurrency,
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

    def fetch(self, scope: dict[str, tuple[str, ...]] | None = None) -> LiveState:
        """The live state of every list in scope, across targets."""
        lists: list[LiveList] = []
        account: dict[str, tuple[LiveField, ...]] = {}
        for target, names in (scope if scope is not None else self.scope).items():
            self.context.progress(f"Reading {len(names)} list(s) from target {target!r}...")
            found = self.provider(target).fetch(Scope(frozenset(names)))
            lists.extend(found.lists)
            account.update(found.account_fields)
        return LiveState(lists=tuple(lists), account_fields=account)

    def _providers_for(self, targets: Sequence[str]) -> dict[str, Provider]:
        return {target: self.provider(target) for target in targets}

    def plan(self, policy: SafetyPolicy | None = None) -> Plan:
        """The plan, refused (``ConfigErrors``, located in the YAML) if any change in it
        could not be applied as planned: a green plan is one apply can carry out."""
        live = self.fetch()
        providers = self._providers_for(list(self.scope))
        current = plan(self.config, live, providers, policy or SafetyPolicy())
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

    def check_converged(self) -> None:
        """Plan again after an apply: anything left to change is a convergence failure."""
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
        """After applying a saved plan, every change must read back as applied."""
        live = self.fetch(saved.scope)
        problems = unconverged(saved, live, self._providers_for(list(saved.scope)))
        if problems:
            raise ConvergenceError("apply did not converge: " + "; ".join(problems))

    def import_state(self, target: str, lists: Sequence[str]) -> LiveState:
        """Everything a target holds (or just the named lists), for ``import``."""
        names = frozenset(lists) if lists else None
        self.context.progress(f"Reading target {target!r}...")
        return self.provider(target).fetch(Scope(names))

    def import_document(self, target: str, lists: Sequence[str]) -> Imported:
        """``import``: the target's live lists as YAML that validates and plans clean."""
        live = self.import_state(target, lists)
        return import_document(live, self.config.defaults.target, self.provider(target))

    def _run(self, current: Plan) -> ApplyResult:
        providers = self._providers_for(sorted({c.target for c in current.changes}))
        return apply_plan(
            current,
            providers,
            locate=locate_source,
            progress=self.context.progress,
            deadline=self.context.deadline,
        )


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
