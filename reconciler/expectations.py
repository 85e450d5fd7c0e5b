"""Run segment tests: every expectation, and the stored-form check. Results are data.

An expectation passes when its segment selects exactly the listed sample subscribers of
its list in its file; it fails when one subscriber is selected against it, and is
*undecided* when no subscriber fails but a ``native:`` rule would decide one (the tool
cannot evaluate a platform's own rule, so it cannot say the expectation holds).

The stored-form check evaluates every declared segment of a list that has sample
subscribers twice: as declared, and as its target's provider will store it
(:func:`reconciler.stored.stored_form`). The two must select the same subscribers;
subscribers a ``native:`` rule decides on either side are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .config import Unset
from .evaluate import Predicate, compile_segment, explain
from .model import Config, MailingList, Rule, Segment
from .planning import Canon
from .provider import Provider, ProviderContext
from .registry import Registry
from .sample import field_types
from .segment_tests import Expectation, Suite, load_suite
from .stored import NotStorable, stored_form
from .subscriber import Subscriber
from .workspace import Selection, Workspace

__all__ = [
    "ExpectationResult",
    "StoredFormResult",
    "SubscriberResult",
    "TestReport",
    "run_suite",
    "run_tests",
    "storing_providers",
]

Storers = Mapping[str, tuple[str, Canon]]
"""Per target: its provider's key and the provider (for ``canonical_rules``)."""


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubscriberResult(_Result):
    """One sample subscriber on whom a check failed, with the rule that decided."""

    email: str
    expected: bool | None = None
    """Expectations: whether the subscriber is listed in ``members``."""
    verdict: bool | None
    """Whether the declared segment selects the subscriber (None: undecided)."""
    explanation: str
    stored_verdict: bool | None = None
    """Stored-form check: whether the stored form selects the subscriber."""
    stored_explanation: str = ""


class ExpectationResult(_Result):
    file: str
    line: int
    column: int
    target: str
    list: str
    segment: str
    status: Literal["passed", "failed", "undecided"]
    expected: tuple[str, ...]
    members: tuple[str, ...]
    """The sample subscribers the segment selects."""
    subscribers: int
    """Sample subscribers of the list in the file."""
    differences: tuple[SubscriberResult, ...] = ()


class StoredFormResult(_Result):
    target: str
    list: str
    segment: str
    provider: str
    status: Literal["agrees", "differs", "unchecked"]
    subscribers: int
    """Sample subscribers compared."""
    undecided: int = 0
    """Sample subscribers not compared: a native rule decides them on one side."""
    reason: str = ""
    differences: tuple[SubscriberResult, ...] = ()


class TestReport(_Result):
    expectations: tuple[ExpectationResult, ...] = ()
    stored_forms: tuple[StoredFormResult, ...] = ()

    @property
    def passed(self) -> bool:
        """Every expectation passed and every stored form agrees."""
        return all(e.status == "passed" for e in self.expectations) and not any(
            s.status == "differs" for s in self.stored_forms
        )

    def count(self, status: str) -> int:
        return sum(1 for e in self.expectations if e.status == status) + sum(
            1 for s in self.stored_forms if s.status == status
        )


def run_tests(workspace: Workspace, selection: Selection | None = None) -> TestReport:
    """``reconciler test``: the tests files of the workspace's whole configuration, run
    for the lists ``selection`` keeps. Offline: providers are built, never asked to fetch."""
    suite = load_suite(workspace.config)
    config, registry, context = workspace.config, workspace.registry, workspace.context
    lists = Workspace(config, registry, context, selection or Selection()).config.lists
    targets = sorted({str(item.target) for item in lists})
    with storing_providers(config, registry, context, targets) as found:
        return run_suite(suite, lists, found)


@contextmanager
def storing_providers(
    config: Config, registry: Registry, context: ProviderContext, targets: Iterable[str]
) -> Iterator[dict[str, tuple[str, Canon]]]:
    """Each target's provider, built to ask ``canonical_rules`` only (closed after).

    Offline, a setting standing for an unset ``${VAR}`` is left out: ``canonical_rules``
    reads no setting, and nothing here connects."""
    built: dict[str, Provider] = {}
    try:
        for target in targets:
            spec = config.targets[target]
            factory = registry[spec.provider]
            try:
                settings = factory.settings_model.model_validate(spec.settings)
            except ValidationError:
                kept = {k: v for k, v in spec.settings.items() if not isinstance(v, Unset)}
                settings = factory.settings_model.model_construct(**kept)
            built[target] = factory(target, settings, context)
        yield {target: (provider.key, provider) for target, provider in built.items()}
    finally:
        for provider in built.values():
            provider.close()


def run_suite(suite: Suite, lists: Sequence[MailingList], storers: Storers) -> TestReport:
    """Every expectation about ``lists`` (those selected), and the stored form of each of
    their segments on their sample subscribers."""
    selected = {(str(item.target), item.name): item for item in lists}
    expectations = [
        _expectation(expectation, file.subscribers, selected[key], file.now)
        for file in suite.files
        for expectation in file.expectations
        if (key := (expectation.target, expectation.list)) in selected
    ]
    sample = suite.sample()
    stored: list[StoredFormResult] = []
    for item in lists:
        entries = sample.of_list(str(item.target), item.name)
        storer = storers.get(str(item.target))
        if entries and storer is not None:
            stored += [_stored(item, segment, entries, storer) for segment in item.segments]
    return TestReport(expectations=tuple(expectations), stored_forms=tuple(stored))


def _segment(mailing_list: MailingList, name: str) -> Segment:
    return next(segment for segment in mailing_list.segments if segment.name == name)


def _expectation(
    expectation: Expectation,
    subscribers: Iterable[Subscriber],
    mailing_list: MailingList,
    now: date,
) -> ExpectationResult:
    segment = _segment(mailing_list, expectation.segment)
    predicate = compile_segment(segment.match, segment.rules, field_types(mailing_list), now)
    wanted = {email.casefold() for email in expectation.members}
    members: list[str] = []
    failed: list[SubscriberResult] = []
    undecided: list[SubscriberResult] = []
    count = 0
    for subscriber in subscribers:
        if subscriber.list != mailing_list.name or subscriber.target != expectation.target:
            continue
        count += 1
        verdict = predicate.verdict(subscriber)
        expected = subscriber.email.casefold() in wanted
        if verdict:
            members.append(subscriber.email)
        if verdict is None or verdict != expected:
            result = SubscriberResult(
                email=subscriber.email,
                expected=expected,
                verdict=verdict,
                explanation=explain(subscriber, predicate.decide(subscriber)),
            )
            (undecided if verdict is None else failed).append(result)
    status: Literal["passed", "failed", "undecided"] = (
        "failed" if failed else "undecided" if undecided else "passed"
    )
    return ExpectationResult(
        file=expectation.file,
        line=expectation.line,
        column=expectation.column,
        target=expectation.target,
        list=expectation.list,
        segment=expectation.segment,
        status=status,
        expected=expectation.members,
        members=tuple(members),
        subscribers=count,
        differences=tuple(failed + undecided),
    )


class _Compiled:
    """One rule tree compiled once per clock."""

    def __init__(self, match: str, rules: Sequence[Rule], types: Mapping[str, str]) -> None:
        self.match, self.rules, self.types = match, rules, types
        self.by_day: dict[date, Predicate] = {}

    def at(self, now: date) -> Predicate:
        found = self.by_day.get(now)
        if found is None:
            found = self.by_day[now] = compile_segment(self.match, self.rules, self.types, now)
        return found


def _stored(
    mailing_list: MailingList,
    segment: Segment,
    entries: Sequence[tuple[Subscriber, date]],
    storer: tuple[str, Canon],
) -> StoredFormResult:
    provider, canon = storer
    base = {
        "target": str(mailing_list.target),
        "list": mailing_list.name,
        "segment": segment.name,
        "provider": provider,
    }
    try:
        stored_match, stored_rules = stored_form(
            canon, segment.match, segment.rules, mailing_list.name
        )
    except NotStorable as exc:
        return StoredFormResult(
            **base, status="unchecked", subscribers=0, reason=f"it cannot be stored: {exc}"
        )
    types = field_types(mailing_list)
    declared = _Compiled(segment.match, segment.rules, types)
    stored = _Compiled(stored_match, stored_rules, types)
    differences: list[SubscriberResult] = []
    compared = undecided = 0
    for subscriber, now in entries:
        want, have = declared.at(now), stored.at(now)
        verdict, stored_verdict = want.verdict(subscriber), have.verdict(subscriber)
        if verdict is None or stored_verdict is None:
            undecided += 1
            continue
        compared += 1
        if verdict != stored_verdict:
            differences.append(
                SubscriberResult(
                    email=subscriber.email,
                    verdict=verdict,
                    explanation=explain(subscriber, want.decide(subscriber)),
                    stored_verdict=stored_verdict,
                    stored_explanation=explain(subscriber, have.decide(subscriber)),
                )
            )
    if differences:
        status: Literal["agrees", "differs", "unchecked"] = "differs"
    else:
        status = "agrees" if compared else "unchecked"
    reason = "" if compared else "native rules decide every sample subscriber"
    return StoredFormResult(
        **base,
        status=status,
        subscribers=compared,
        undecided=undecided,
        reason=reason,
        differences=tuple(differences),
    )
