"""A green plan is a promise: generated configurations against each provider's stateful fake.

For every generated configuration that ``validate`` and ``plan`` accept, ``apply`` must
succeed with exactly one write per planned change, and the next plan must be empty; a plan
that is refused must have written nothing. After each apply, ``import`` of the target must
write YAML that validates and plans to no changes.

A provider's test module plugs in with a :class:`PromiseHarness` (how to build its harness
on a fresh fake, and the custom fields and values worth trying) and one line::

    test_promise = promise_test(MauticPromise())

Leaves are drawn mostly from what the provider's capabilities allow for the field, so most
examples get past ``validate``; the rest probe what ``validate`` and ``plan`` must refuse.
"""

from __future__ import annotations

import tempfile
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import respx
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from reconciler.errors import ConfigError, ConflictError
from reconciler.importing import import_yaml
from reconciler.model import FIELD_OPERATORS, STANDARD_FIELDS
from reconciler.planning import SafetyPolicy
from reconciler.provider import Capabilities
from tests.providers.contract import ProviderHarness, Session

__all__ = ["FieldSpec", "PromiseHarness", "Seeder", "import_test", "promise_test"]

Seeder = Callable[[Any], None]
"""Writes one raw live state into a harness's fake."""

LIST = "Newsletter"
OTHER = "Partners"

TEXTS = ["@gmail.com", "Weekly", "a_b", "50%", " spaced ", "<b>x</b>", "Ünïcode", "x", "5"]
NUMBERS = [5, 42, "7", 3.5, -1]
DATES = ["2024-01-01", "2023-12-31", "2025-02-28", "yesterday", "2024-13-01"]
NAMES = ["Alpha", "alpha", "Beta", "Gmail 2024", "VIP readers", "Weekly", "x"]


@dataclass(frozen=True)
class FieldSpec:
    """A custom field the generated lists may declare and use."""

    name: str
    type: str
    options: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()

    def yaml(self) -> str:
        options = f", options: [{', '.join(self.options)}]" if self.options else ""
        return f"{{name: {self.name}, type: {self.type}{options}}}"


class PromiseHarness(ABC):
    """How the promise test builds one provider's harness and what it may declare."""

    fields: ClassVar[tuple[FieldSpec, ...]] = ()
    """Custom fields the lists declare; the harness provisions them where the provider
    cannot create fields."""
    campaigns: ClassVar[tuple[str, ...]] = ("42",)
    """Campaign ids behaviour rules may name."""
    lists: ClassVar[tuple[str, ...]] = (LIST, OTHER)
    standard_values: ClassVar[dict[str, tuple[Any, ...]]] = {
        "status": ("active", "unsubscribed", "bounced")
    }
    """Values worth trying per standard field, besides the pool of its type."""

    @abstractmethod
    def harness(self, router: respx.MockRouter, root: Path) -> ProviderHarness:
        """A harness on a fresh fake mounted on ``router``."""

    def capabilities(self, harness: ProviderHarness) -> Capabilities:
        return harness.provider_class.capabilities

    def live_states(self) -> st.SearchStrategy[Seeder] | None:
        """Raw live states the provider's fake can hold, written straight into the fake (as
        a person in the platform's UI would), for :func:`import_test`; None: none."""
        return None


def _value_for(field_type: str, known: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    pool: list[Any] = list(known) * 3  # the values that fit, most often
    pool += {"number": NUMBERS, "date": DATES}.get(field_type, TEXTS)
    return st.sampled_from(pool)


@st.composite
def _field_rule(draw: st.DrawFn, promise: PromiseHarness, caps: Capabilities) -> dict[str, Any]:
    specs = promise.fields
    usable = [n for n in STANDARD_FIELDS if caps.operators_for(n, None)]
    names = [*usable, *(s.name for s in specs)] or list(STANDARD_FIELDS)
    if draw(st.integers(0, 9)) == 0:  # now and then, a field the provider cannot test
        names = list(STANDARD_FIELDS)
    name = draw(st.sampled_from(names))
    spec = next((s for s in specs if s.name == name), None)
    field_type = spec.type if spec is not None else STANDARD_FIELDS[name]
    known = spec.values if spec is not None else promise.standard_values.get(name, ())
    allowed = sorted(caps.operators_for(name, field_type if spec is not None else None))
    if allowed and draw(st.integers(0, 9)) < 8:
        op = draw(st.sampled_from(allowed))
    else:
        op = draw(st.sampled_from(FIELD_OPERATORS))
    rule: dict[str, Any] = {"field": name, "op": op}
    value = _value_for(field_type, known)
    if op in ("in", "not_in"):
        rule["value"] = draw(st.lists(value, min_size=1, max_size=3, unique_by=str))
    elif op == "between":
        rule["value"] = [draw(value), draw(value)]
    elif op not in ("empty", "not_empty"):
        rule["value"] = draw(value)
    return rule


def _leaf(harness: PromiseHarness, caps: Capabilities) -> st.SearchStrategy[dict[str, Any]]:
    events = sorted(caps.events) or ["opened"]
    every_event = ["opened", "clicked", "not_opened", "not_clicked"]
    window = st.fixed_dictionaries({"days": st.sampled_from([1, 30])})
    behaviour = st.fixed_dictionaries(
        {
            "campaign": st.sampled_from(harness.campaigns),
            "event": st.one_of(*[st.sampled_from(events)] * 4, st.sampled_from(every_event)),
        },
        optional={"within": window} if caps.within else {},
    )
    membership_ops = sorted(caps.membership) or ["in"]
    every_op = ["in", "not_in", "active_in", "not_active_in"]
    membership = st.fixed_dictionaries(
        {
            "list": st.sampled_from([OTHER, *NAMES[:3]]),
            "op": st.one_of(*[st.sampled_from(membership_ops)] * 4, st.sampled_from(every_op)),
        }
    )
    fields = _field_rule(harness, caps)
    kinds = [fields, fields, fields]
    kinds += [behaviour] * (2 if caps.events else 1)
    kinds += [membership] * (2 if caps.membership else 1)
    return st.one_of(*kinds)


def _rules(harness: PromiseHarness, caps: Capabilities) -> st.SearchStrategy[list[Any]]:
    leaf = _leaf(harness, caps)
    group = st.builds(
        lambda kind, members: {kind: members},
        st.sampled_from(["any", "all"]),
        st.lists(leaf, min_size=1, max_size=3),
    )
    return st.lists(st.one_of(leaf, leaf, group), min_size=1, max_size=3)


@st.composite
def _lists(draw: st.DrawFn, harness: PromiseHarness, caps: Capabilities) -> dict[str, Any]:
    """One generation of the ``lists:`` block: the main list, sometimes a second one."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    segments = []
    for name in names:
        segment: dict[str, Any] = {"name": name, "rules": draw(_rules(harness, caps))}
        if draw(st.booleans()):
            segment["match"] = "any"
        if draw(st.integers(0, 4)) == 0:
            segment["renamed_from"] = [draw(st.sampled_from([n for n in NAMES if n != name]))]
        segments.append(segment)
    lists = [
        {
            "name": LIST,
            "prune": draw(st.booleans()),
            "fields": [yaml.safe_load(s.yaml()) for s in harness.fields],
            "segments": segments,
        }
    ]
    if len(harness.lists) > 1 and draw(st.booleans()):
        rules = draw(_rules(harness, caps))
        other = {"name": OTHER, "segments": [{"name": "Partners all", "rules": rules}]}
        if harness.fields:
            other["fields"] = [yaml.safe_load(s.yaml()) for s in harness.fields]
        lists.append(other)
    return {"lists": lists}


def _text(block: dict[str, Any]) -> str:
    return yaml.safe_dump(block, sort_keys=False, allow_unicode=True, width=10_000)


@dataclass
class _Run:
    session: Session
    harness: ProviderHarness

    def writes(self) -> int | None:
        found = self.harness.writes()
        return None if found is None else len(found)

    def step(self, lists: str) -> bool:
        """One configuration: refused cleanly, or applied with one write per change and
        converged. True when it was applied (so the next step starts from it)."""
        self.session.write(lists)
        before = self.writes()
        try:
            ws = self.session.workspace()
        except ConfigError as exc:
            note(f"validate refused: {exc}")
            return False
        try:
            try:
                current = ws.plan(SafetyPolicy(allow_all=True))
            except ConfigError as exc:
                note(f"plan refused: {exc}")
                assert self.writes() == before, "plan wrote something"
                return False
            note(f"plan: {[(c.action.value, c.segment) for c in current.changes]}")
            result = ws.apply(current)
            failed = [
                (o.change.action.value, o.change.segment, o.message)
                for o in result.outcomes
                if o.status != "applied"
            ]
            assert not failed, f"a green plan failed at apply: {failed}"
            after = self.writes()
            if before is not None and after is not None:  # else calls are not visible
                assert after - before == len(current.changes), (
                    f"{after - before} writes for {len(current.changes)} changes: "
                    f"{(self.harness.writes() or [])[before:]}"
                )
            again = ws.plan()
            assert again.is_empty, (
                f"not converged: {[(c.action.value, c.segment, c.diff) for c in again.changes]}"
            )
        finally:
            ws.close()
        return True

    def import_round_trip(self) -> None:
        """``import`` of the whole target validates and plans to nothing."""
        ws = self.session.workspace()
        try:
            live = ws.import_state("main", ())
            text = import_yaml(live, "main", ws.provider("main"))
        finally:
            ws.close()
        note(f"imported:\n{text}")
        self.session.write(text)
        ws = self.session.workspace()  # validate
        try:
            again = ws.plan()
            changes = [(c.action.value, c.segment, c.diff) for c in again.changes]
            assert again.is_empty, f"import plans changes: {changes}"
        finally:
            ws.close()


def promise_test(promise: PromiseHarness, examples: int = 40) -> Callable[..., None]:
    """The property test for one provider, to assign to a ``test_*`` name."""

    probe = promise.harness  # capabilities are class data: no fake needed to read them

    def capabilities() -> Capabilities:
        with (
            respx.mock(assert_all_mocked=True, assert_all_called=False) as router,
            tempfile.TemporaryDirectory() as root,
        ):
            return promise.capabilities(probe(router, Path(root)))

    caps = capabilities()

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(first=_lists(promise, caps), second=_lists(promise, caps))
    def test(no_real_http: respx.MockRouter, first: dict[str, Any], second: dict[str, Any]) -> None:
        no_real_http.clear()
        with tempfile.TemporaryDirectory() as root:
            harness = promise.harness(no_real_http, Path(root))
            run = _Run(Session(harness, Path(root), {harness.key: harness.provider_class}), harness)
            if run.step(_text(first)):
                run.import_round_trip()
            if run.step(_text(second)):
                run.import_round_trip()

    test.__doc__ = textwrap.dedent(
        f"""Generated configurations against the {type(promise).__name__} fake: what
        validate and plan accept applies with one write per change and converges."""
    )
    return test


def import_test(promise: PromiseHarness, examples: int = 30) -> Callable[..., None]:
    """The import property for one provider: for every raw live state its fake can hold
    (``promise.live_states()``), ``import`` writes YAML that validates and plans to no
    changes; where it reports two live segments with one name, plan reports the conflict."""
    strategy = promise.live_states()
    assert strategy is not None, f"{type(promise).__name__} has no live_states()"

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(seeders=st.lists(strategy, min_size=1, max_size=4))
    def test(no_real_http: respx.MockRouter, seeders: list[Seeder]) -> None:
        no_real_http.clear()
        with tempfile.TemporaryDirectory() as root:
            harness = promise.harness(no_real_http, Path(root))
            for seed in seeders:
                seed(harness)
            session = Session(harness, Path(root), {harness.key: harness.provider_class})
            session.write("lists: []\n")
            ws = session.workspace()
            try:
                imported = ws.import_document("main", ())
                held = [s.name for item in ws.import_state("main", ()).lists for s in item.segments]
            finally:
                ws.close()
            assert held, "the seeders wrote no segment"
            missing = [name for name in held if name not in imported.text]
            assert not missing, f"import lost segments {missing}"  # declared or commented
            note(f"imported:\n{imported.text}")
            session.write(imported.text)
            duplicates = any("has the name" in n for n in imported.notes)
            ws = session.workspace()  # validate
            try:
                again = ws.plan()
            except ConflictError:
                assert duplicates, "plan found a conflict that import did not report"
                return
            finally:
                ws.close()
            changes = [(c.action.value, c.segment, c.diff) for c in again.changes]
            assert again.is_empty, f"import plans changes: {changes}"

    test.__doc__ = f"Raw live states of the {type(promise).__name__} fake import cleanly."
    return test
