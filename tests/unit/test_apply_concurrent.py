"""Concurrent apply and reads: dependencies, plan order, the deadline, Ctrl-C, the narrowed
re-read after apply, and several targets read at once.

Interleavings are forced with events, never sleeps: a change of the ``Gate`` provider can
wait until another has started or finished. Every wait has a generous timeout, so a
scheduler that ran the changes one by one fails the test instead of hanging it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import respx
from pydantic import BaseModel

from reconciler.applying import (
    ABANDONED,
    INTERRUPTED,
    NOT_STARTED,
    apply_plan,
    timed_out,
)
from reconciler.errors import ApiError, ConflictError, ConvergenceError
from reconciler.model import (
    Config,
    FieldDef,
    LiveList,
    LiveState,
    MembershipRule,
    NativeRule,
    Rule,
)
from reconciler.ordering import order
from reconciler.plan import Action, ApplyResult, Change, Plan
from reconciler.provider import Capabilities, Deadline, Provider, ProviderContext, Scope
from reconciler.workspace import Workspace, written_scope
from tests.factories import make_live_segment, make_rule, make_segment
from tests.providers.contract import LIST, Session, lists_yaml
from tests.providers.fakes import FakeClock
from tests.providers.test_contract import CampaignMonitorHarness, FakeYearCampaignMonitor
from tests.providers.test_greenarrow import GreenArrowHarness, GreenArrowSession
from tests.providers.test_mailwizz import MailWizzHarness
from tests.providers.test_mautic import MauticHarness
from tests.providers.test_oempro import OemproHarness, OemproSession

WAIT = 10.0
"""Seconds any one wait may take before the test fails (never reached when it passes)."""


def wait(event: threading.Event, what: str) -> None:
    assert event.wait(WAIT), f"timed out waiting until {what}"


def name_of(change: Change) -> str:
    if change.action is Action.CREATE_LIST:
        return change.list
    return change.segment or (change.field.name if change.field else change.list)


class Gate(Provider):
    """Applies changes on any number of threads; ``hold`` runs inside a change's apply (to
    wait for another change), ``failing`` names the changes that fail."""

    key = "gate"
    capabilities: ClassVar[Capabilities] = Capabilities(
        shape="tree", operators={}, concurrent_apply=True
    )

    def __init__(
        self,
        width: int = 8,
        failing: frozenset[str] = frozenset(),
        hold: dict[str, Callable[[], None]] | None = None,
    ) -> None:
        self.context = ProviderContext(max_concurrency=width)
        self.failing = failing
        self.hold = hold or {}
        self.lock = threading.Lock()
        self.log: list[tuple[str, str]] = []
        self.started: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.finished: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.flying = 0
        self.peak = 0

    def fetch(self, scope: Scope) -> LiveState:
        return LiveState()

    def apply(self, change: Change) -> None:
        name = name_of(change)
        with self.lock:
            self.log.append(("start", name))
            self.flying += 1
            self.peak = max(self.peak, self.flying)
        self.started[name].set()
        try:
            if name in self.hold:
                self.hold[name]()
        finally:
            with self.lock:
                self.log.append(("end", name))
                self.flying -= 1
            self.finished[name].set()
        if name in self.failing:
            raise ApiError("refused", method="POST", url="/x", status=400)

    def position(self, kind: str, name: str) -> int:
        return self.log.index((kind, name))

    def runs_after(self, later: str, earlier: str) -> bool:
        return self.position("start", later) > self.position("end", earlier)


class AccountGate(Gate):
    capabilities: ClassVar[Capabilities] = Capabilities(
        shape="tree", operators={}, concurrent_apply=True, field_scope="account"
    )


class SerialGate(Gate):
    capabilities: ClassVar[Capabilities] = Capabilities(shape="tree", operators={})


def segment(
    name: str, list_: str = "L", field: str = "email", rules: tuple[Rule, ...] = ()
) -> Change:
    return Change(
        action=Action.CREATE_SEGMENT,
        target="t",
        list=list_,
        segment=name,
        after=make_segment(name, *(rules or (make_rule(field, "equals", "x"),))),
    )


def create_list(name: str) -> Change:
    return Change(action=Action.CREATE_LIST, target="t", list=name)


def create_field(name: str, list_: str = "L") -> Change:
    return Change(action=Action.CREATE_FIELD, target="t", list=list_, field=FieldDef(name=name))


def delete(name: str, list_: str = "L", rules: tuple[Rule, ...] = ()) -> Change:
    live = make_live_segment(name, *(rules or (make_rule("email", "equals", "x"),)), id="9")
    return Change(action=Action.DELETE_SEGMENT, target="t", list=list_, segment=name, before=live)


def finished(gate: Gate, name: str) -> Callable[[], None]:
    """A hold: wait until change ``name`` has finished."""
    return lambda: wait(gate.finished[name], f"{name} finished")


def run(provider: Provider, *changes: Change, **kwargs: Any) -> ApplyResult:
    return apply_plan(Plan(changes=changes), {"t": provider}, **kwargs)


def statuses(result: ApplyResult) -> list[tuple[str, str, str]]:
    return [(name_of(o.change), o.status, o.message) for o in result.outcomes]


# -- the dependency graph ------------------------------------------------------------------------


def parents(changes: list[Change], account: bool = False) -> list[set[int]]:
    graph = order(changes, lambda target: "account" if account else "list")
    return [{edge.parent for edge in edges} for edges in graph.parents]


def test_order_links_each_change_to_what_it_needs_and_nothing_else() -> None:
    changes = [
        create_list("L"),  # 0
        create_field("Plan"),  # 1
        segment("Uses", field="plan"),  # 2
        segment("Plain"),  # 3
        segment("Elsewhere", list_="M"),  # 4
        segment("Member", rules=(MembershipRule.model_validate({"list": "uses"}),)),  # 5
        delete("X"),  # 6
        segment("x"),  # 7: the same name, another case
        segment("Native", rules=(NativeRule(native={"RuleType": "[Plan]"}),)),  # 8
        segment("Other target", list_="L").model_copy(update={"target": "u"}),  # 9
    ]
    assert parents(changes) == [
        set(),
        {0},
        {0, 1},
        {0},
        set(),
        {0, 2},
        {0},
        {0, 6},
        {0, 1},
        set(),
    ]


def test_order_uses_one_scope_for_account_fields() -> None:
    changes = [create_field("Plan", list_="L"), segment("Uses", "M", "plan"), segment("Not", "M")]
    assert parents(changes, account=True) == [set(), {0}, set()]
    assert parents(changes, account=False) == [set(), set(), set()]


def test_a_segment_named_by_a_live_rule_is_deleted_after_the_rule_is_rewritten() -> None:
    uses = segment("S").model_copy(
        update={
            "action": Action.UPDATE_SEGMENT,
            "before": make_live_segment("S", MembershipRule.model_validate({"list": "X"})),
        }
    )
    graph = order([uses, delete("X")], lambda target: "list")
    (edge,) = graph.parents[1]
    assert (edge.parent, edge.blocks) == (0, None)  # ordered, but a failure skips nothing


def test_a_segment_naming_itself_waits_for_nothing() -> None:
    changes = [segment("Alpha", rules=(MembershipRule.model_validate({"list": "Alpha"}),))]
    assert parents(changes) == [set()]


# -- concurrency and plan order ----------------------------------------------------------------


def test_independent_changes_run_together_and_outcomes_keep_plan_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate(width=3)
    gate.hold = {
        "A": lambda: wait(gate.finished["C"], "C finished"),
        "B": lambda: wait(gate.finished["C"], "C finished"),
    }
    counts: list[tuple[str, int, int]] = []
    with caplog.at_level(logging.INFO, logger="reconciler.apply"):
        result = run(
            gate,
            segment("A"),
            segment("B"),
            segment("C"),
            advance=lambda *args: counts.append(args),
        )
    assert statuses(result) == [("A", "applied", ""), ("B", "applied", ""), ("C", "applied", "")]
    assert gate.position("end", "C") < min(gate.position("end", "A"), gate.position("end", "B"))
    assert [r.getMessage() for r in caplog.records] == [
        f"applied create_segment {n!r} in list 'L'" for n in "ABC"
    ]
    assert counts[0] == ("Applying", 0, 3) and counts[-1] == ("Applying", 3, 3)
    assert [done for _, done, _ in counts] == sorted(done for _, done, _ in counts)


def test_no_more_changes_run_at_once_than_the_target_allows() -> None:
    together = threading.Barrier(2, timeout=WAIT)
    gate = Gate(width=2)
    names = [f"S{n}" for n in range(6)]

    def meet() -> None:
        together.wait()

    gate.hold = dict.fromkeys(names, meet)
    result = run(gate, *(segment(n) for n in names))
    assert result.count("applied") == 6 and gate.peak == 2


def test_a_provider_without_concurrent_apply_gets_one_change_at_a_time_in_plan_order() -> None:
    gate = SerialGate(width=8)
    changes = [segment(n) for n in "DCBA"]
    assert run(gate, *changes).count("applied") == 4
    assert gate.peak == 1
    assert [name for kind, name in gate.log if kind == "start"] == list("DCBA")


def test_many_changes_finishing_in_reverse_keep_plan_order() -> None:
    gate = Gate(width=20)
    names = [f"S{n:02}" for n in range(20)]
    for here, after in itertools.pairwise(names):
        gate.hold[here] = finished(gate, after)
    result = run(gate, *(segment(n) for n in names))
    assert [name_of(o.change) for o in result.outcomes] == names
    ends = [name for kind, name in gate.log if kind == "end"]
    assert ends == names[::-1]


# -- dependencies under concurrency ----------------------------------------------------------------


def test_a_list_comes_before_its_segments_and_its_failure_skips_only_them() -> None:
    gate = Gate(failing=frozenset({"L"}))
    early: list[bool] = []

    def create_l() -> None:
        wait(gate.started["B"], "B (another list) started")
        early.append(gate.started["A"].is_set() or gate.started["C"].is_set())

    gate.hold = {"L": create_l}
    result = run(gate, create_list("L"), segment("A"), segment("B", "M"), segment("C"))
    assert early == [False]
    assert statuses(result) == [
        ("L", "failed", "refused (POST /x -> 400)"),
        ("A", "skipped", 'list "L" could not be created'),
        ("B", "applied", ""),
        ("C", "skipped", 'list "L" could not be created'),
    ]


def test_a_list_created_lets_its_segments_run_after_it() -> None:
    gate = Gate()
    gate.hold = {"L": lambda: wait(gate.started["B"], "B started")}
    result = run(gate, create_list("L"), segment("A"), segment("B", "M"))
    assert result.count("applied") == 3
    assert gate.runs_after("A", "L") and not gate.runs_after("B", "L")


@pytest.mark.parametrize("fails", [False, True])
def test_a_field_comes_before_the_segments_using_it_and_only_those(fails: bool) -> None:
    gate = Gate(failing=frozenset({"Plan"} if fails else ()))
    gate.hold = {"Plan": lambda: wait(gate.started["Other"], "Other started")}
    result = run(gate, create_field("Plan"), segment("Uses", field="plan"), segment("Other"))
    assert not gate.runs_after("Other", "Plan")
    if fails:
        assert statuses(result)[1:] == [
            ("Uses", "skipped", "field 'plan' could not be created"),
            ("Other", "applied", ""),
        ]
        assert not gate.started["Uses"].is_set()
    else:
        assert result.count("applied") == 3 and gate.runs_after("Uses", "Plan")


def test_an_account_field_comes_before_the_segments_of_every_list_using_it() -> None:
    gate = AccountGate(failing=frozenset({"Plan"}))
    gate.hold = {"Plan": lambda: wait(gate.started["Other"], "Other started")}
    result = run(
        gate, create_field("Plan", "L"), segment("Uses", "M", "plan"), segment("Other", "M")
    )
    assert statuses(result)[1:] == [
        ("Uses", "skipped", "field 'plan' could not be created"),
        ("Other", "applied", ""),
    ]


@pytest.mark.parametrize("fails", [False, True])
def test_a_segment_comes_before_the_segments_whose_membership_rules_name_it(fails: bool) -> None:
    gate = Gate(failing=frozenset({"X"} if fails else ()))
    gate.hold = {"X": lambda: wait(gate.started["Y"], "Y started")}
    member = segment("S", rules=(MembershipRule.model_validate({"list": "X"}),))
    result = run(gate, segment("X"), member, segment("Y"))
    if fails:
        assert statuses(result)[1] == (
            "S",
            "skipped",
            '"X", which its membership rules name, could not be written',
        )
    else:
        assert result.count("applied") == 3 and gate.runs_after("S", "X")
    assert not gate.runs_after("Y", "X")


@pytest.mark.parametrize("fails", [False, True])
def test_changes_of_one_segment_name_keep_their_order(fails: bool) -> None:
    gate = Gate(failing=frozenset({"X"} if fails else ()))
    deleting = delete("X")
    creating = segment("x")  # another case of the same name
    gate.hold = {"X": lambda: wait(gate.started["Y"], "Y started")}
    result = run(gate, deleting, segment("Y"), creating)
    if fails:
        assert statuses(result)[2] == (
            "x",
            "skipped",
            'the earlier change of segment "x" in this list did not apply',
        )
    else:
        assert result.count("applied") == 3 and gate.runs_after("x", "X")


# -- stopping: the deadline, Ctrl-C, bugs ---------------------------------------------------------


def test_the_deadline_stops_new_changes_while_those_in_flight_finish() -> None:
    clock = FakeClock()
    gate = Gate(width=2)
    moved = threading.Event()

    def late() -> None:
        wait(gate.started["B"], "B started")
        clock.time += 100
        moved.set()

    gate.hold = {"A": late, "B": lambda: wait(moved, "the clock moved")}
    messages: list[str] = []
    result = run(
        gate,
        *(segment(n) for n in "ABCD"),
        deadline=Deadline(clock, 30),
        progress=messages.append,
    )
    assert [(n, s) for n, s, _ in statuses(result)] == [
        ("A", "applied"),
        ("B", "applied"),
        ("C", "skipped"),
        ("D", "skipped"),
    ]
    assert [o.message for o in result.outcomes[2:]] == [NOT_STARTED, NOT_STARTED]
    assert timed_out(result) and not result.interrupted
    assert messages == ["Stopped: the run's --timeout (30s) passed; 2 of 4 change(s) not started."]


class CtrlC:
    """``advance`` that presses Ctrl-C (raises ``KeyboardInterrupt`` in the calling thread)
    once ``at`` changes are done; ``progress`` that releases the changes in flight, or
    presses Ctrl-C a second time."""

    def __init__(self, at: int, release: threading.Event, twice: bool = False) -> None:
        self.at = at
        self.release = release
        self.twice = twice
        self.pressed = 0
        self.messages: list[str] = []

    def advance(self, label: str, done: int, total: int) -> None:
        if done == self.at and not self.pressed:
            self.pressed += 1
            raise KeyboardInterrupt

    def progress(self, message: str) -> None:
        self.messages.append(message)
        if self.twice:
            self.pressed += 1
            raise KeyboardInterrupt
        self.release.set()


def test_ctrl_c_lets_changes_in_flight_finish_and_starts_nothing_more() -> None:
    release = threading.Event()
    gate = Gate(width=2)
    gate.hold = {n: lambda: wait(release, "released") for n in "BC"}
    press = CtrlC(at=1, release=release)
    result = run(
        gate, *(segment(n) for n in "ABCD"), advance=press.advance, progress=press.progress
    )
    assert statuses(result) == [
        ("A", "applied", ""),
        ("B", "applied", ""),
        ("C", "applied", ""),
        ("D", "skipped", INTERRUPTED),
    ]
    assert result.interrupted and result.ok and not timed_out(result)
    assert not gate.started["D"].is_set()
    assert press.messages == [
        "Interrupted: waiting for the 2 change(s) in flight to finish; nothing more starts "
        "(Ctrl-C again to stop waiting)."
    ]


def test_ctrl_c_during_a_serial_providers_change_lets_it_finish() -> None:
    release = threading.Event()
    gate = SerialGate()
    gate.hold = {"B": lambda: wait(release, "released")}
    press = CtrlC(at=1, release=release)
    result = run(gate, *(segment(n) for n in "ABC"), advance=press.advance, progress=press.progress)
    assert [s for _, s, _ in statuses(result)] == ["applied", "applied", "skipped"]
    assert result.outcomes[2].message == INTERRUPTED and result.interrupted


def test_a_second_ctrl_c_stops_waiting_and_reports_what_was_in_flight() -> None:
    release = threading.Event()
    gate = Gate(width=2)
    gate.hold = {n: lambda: wait(release, "released") for n in "BC"}
    press = CtrlC(at=1, release=release, twice=True)
    try:
        result = run(
            gate, *(segment(n) for n in "ABCD"), advance=press.advance, progress=press.progress
        )
    finally:
        release.set()
        wait(gate.finished["B"], "B finished")
        wait(gate.finished["C"], "C finished")
    assert statuses(result) == [
        ("A", "applied", ""),
        ("B", "failed", ABANDONED),
        ("C", "failed", ABANDONED),
        ("D", "skipped", INTERRUPTED),
    ]
    assert result.interrupted and not result.ok


def test_a_bug_in_a_provider_is_raised_after_the_changes_in_flight_finish() -> None:
    gate = Gate(width=2)

    def broken() -> None:
        wait(gate.started["B"], "B started")
        raise RuntimeError("bug")

    gate.hold = {"A": broken, "B": lambda: wait(gate.finished["A"], "A finished")}
    with pytest.raises(RuntimeError, match="bug"):
        run(gate, *(segment(n) for n in "AB"))
    assert gate.finished["B"].is_set()  # the change in flight finished before the raise


def test_an_error_in_the_calling_thread_stops_the_run_once_changes_in_flight_finish() -> None:
    release = threading.Event()
    gate = Gate(width=2)
    gate.hold = {n: lambda: wait(release, "released") for n in "BCD"}

    def advance(label: str, done: int, total: int) -> None:
        if done == 1:
            release.set()
            raise ValueError("a broken progress bar")

    with pytest.raises(ValueError, match="broken progress bar"):
        run(gate, *(segment(n) for n in "ABCD"), advance=advance)
    assert gate.finished["B"].is_set() and gate.finished["C"].is_set()
    assert not gate.started["D"].is_set()


# -- the re-read after apply ---------------------------------------------------------------------


def test_written_scope_names_each_list_and_each_segment_written() -> None:
    renamed = Change(
        action=Action.UPDATE_SEGMENT,
        target="t",
        list="L",
        segment="New",
        before=make_live_segment("Old", make_rule("email", "equals", "x"), id="7"),
        after=make_segment("New", make_rule("email", "equals", "y")),
    )
    changes = [create_list("M"), create_field("F", "M"), renamed, delete("Gone", "L")]
    assert written_scope(changes) == {
        "t": Scope(
            frozenset({"L", "M"}),
            {"M": frozenset(), "L": frozenset({"new", "old", "7", "gone", "9"})},
        )
    }
    # The hint: the segments written, under their lists (a deleted one is not expected).
    assert written_scope(changes)["t"].expected == {"L": {"New": renamed.after}}


@pytest.fixture
def cm(no_real_http: respx.MockRouter, tmp_path: Path) -> tuple[Session, CampaignMonitorHarness]:
    harness = CampaignMonitorHarness(no_real_http)
    registry: dict[str, type[Provider]] = {"campaignmonitor": FakeYearCampaignMonitor}
    return Session(harness, tmp_path, registry), harness


def test_the_convergence_check_reads_only_what_apply_wrote(
    cm: tuple[Session, CampaignMonitorHarness],
) -> None:
    session, harness = cm
    fake = harness.fake
    list_id = fake.add_list(LIST)
    fake.add_field(list_id, "Frequency", "MultiSelectOne", ["Weekly", "Monthly"])
    for n in range(30):
        fake.add_segment(list_id, f"Old {n}", [[("EmailAddress", f"CONTAINS @old{n}.com")]])
    session.write(lists_yaml())
    ws = session.workspace()
    try:
        result = ws.apply(ws.plan())
        assert result.count("applied") == 2
        before = len(fake.requests)
        ws.check_converged()
        reread = [(r.method, r.url.path) for r in fake.requests[before:]]
    finally:
        ws.close()
    created = sorted(i for i, s in fake.segments.items() if s["Title"] in ("Gmail", "Weekly 2024"))
    base = "/api/v3.3"
    assert sorted(reread) == sorted(
        [
            ("GET", f"{base}/clients/{fake.client_id}/lists.json"),
            ("GET", f"{base}/lists/{list_id}/customfields.json"),
            ("GET", f"{base}/lists/{list_id}/segments.json"),
            *[("GET", f"{base}/segments/{i}.json") for i in created],
        ]
    )


def test_plan_hints_each_target_with_its_declared_segments(
    cm: tuple[Session, CampaignMonitorHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = cm
    session.write(lists_yaml())
    ws = session.workspace()
    scopes: list[Scope] = []
    provider = ws.provider("main")
    fetch = provider.fetch
    monkeypatch.setattr(provider, "fetch", lambda scope: scopes.append(scope) or fetch(scope))
    try:
        ws.plan()
    finally:
        ws.close()
    (scope,) = scopes
    declared = {item.name: item for item in ws.config.lists}
    assert scope.expected == {
        name: {segment.name: segment for segment in item.segments}
        for name, item in declared.items()
    }
    assert scope.expected_segment(LIST, "Gmail") is declared[LIST].segments[0]
    assert scope.expected_segment(LIST, b"Gmail") is None  # a store's name need not be text


def test_the_convergence_check_fails_when_a_write_does_not_read_back(
    cm: tuple[Session, CampaignMonitorHarness],
) -> None:
    session, harness = cm
    session.write(lists_yaml())
    ws = session.workspace()
    try:
        assert ws.apply(ws.plan()).ok
        harness.edit_out_of_band(LIST, "Gmail")  # as if the platform stored something else
        with pytest.raises(ConvergenceError, match='segment "Gmail" does not read back'):
            ws.check_converged()
    finally:
        ws.close()


def test_the_reference_convergence_check_reads_what_the_store_holds(tmp_path: Path) -> None:
    from providers.reference import ReferenceProvider
    from tests.providers.test_contract import ReferenceHarness

    harness = ReferenceHarness(tmp_path)
    session = Session(harness, tmp_path, {"reference": ReferenceProvider})
    session.write(lists_yaml())
    ws = session.workspace()
    try:
        assert ws.apply(ws.plan()).ok
        ws.check_converged()  # the bytes written are the bytes sent: taken as read back
        harness.edit_out_of_band(LIST, "Gmail")  # other bytes: decoded, and they differ
        with pytest.raises(ConvergenceError, match='segment "Gmail" does not read back'):
            ws.check_converged()
    finally:
        ws.close()


HTTP_HARNESSES: dict[str, tuple[Any, type[Session], int]] = {
    "campaignmonitor": (CampaignMonitorHarness, Session, 1),
    "mailwizz": (MailWizzHarness, Session, 1),
    "greenarrow": (GreenArrowHarness, GreenArrowSession, 1),
    "mautic": (MauticHarness, Session, 0),
    "oempro": (OemproHarness, OemproSession, 0),
}
"""Each HTTP provider's contract harness and session, and how many detail reads one
unwanted segment costs (Mautic and Oempro read rules with the listing: they only leave the
segment out)."""


@pytest.mark.parametrize("key", sorted(HTTP_HARNESSES))
def test_a_narrowed_fetch_reads_only_the_segments_wanted(
    key: str, no_real_http: respx.MockRouter, tmp_path: Path
) -> None:
    harness_class, session_class, detail_reads = HTTP_HARNESSES[key]
    harness = harness_class(no_real_http)
    session = session_class(harness, tmp_path, {harness.key: harness.provider_class})
    session.write(lists_yaml(harness.segments))
    assert session.apply()[1].ok
    requests = harness.fake.requests  # type: ignore[attr-defined]

    def read(scope: Scope) -> tuple[list[str], int]:
        ws = session.workspace()
        try:
            before = len(requests)
            (found,) = ws.read({"main": scope}).lists
            return [s.name for s in found.segments], len(requests) - before
        finally:
            ws.close()

    every, full = read(Scope(frozenset({LIST})))
    wanted, narrowed = read(Scope(frozenset({LIST}), {LIST: frozenset({"gmail"})}))
    assert sorted(every) == ["Gmail", "Weekly 2024"]
    assert wanted == ["Gmail"]
    assert narrowed == full - detail_reads


# -- several targets read at once --------------------------------------------------------------


class Board:
    """What the reading providers of one test share: events per target, and failures."""

    def __init__(self) -> None:
        self.started: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.finished: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.hold: dict[str, Callable[[], None]] = {}
        self.failing: dict[str, Exception] = {}


class Settings(BaseModel):
    pass


def reader(board: Board) -> type[Provider]:
    class Reader(Provider):
        key = "reader"
        capabilities = Capabilities(shape="tree", operators={})
        settings_model = Settings

        def fetch(self, scope: Scope) -> LiveState:
            board.started[self.target].set()
            try:
                self.context.progress(f"{self.target}: reading")
                self.context.advance("Reading", 1, 2)
                if self.target in board.hold:
                    board.hold[self.target]()
                if self.target in board.failing:
                    raise board.failing[self.target]
                self.context.advance("Reading", 2, 2)
            finally:
                board.finished[self.target].set()
            names = sorted(scope.lists or ())
            return LiveState(lists=tuple(LiveList(target=self.target, name=n, id=n) for n in names))

        def apply(self, change: Change) -> None:
            raise NotImplementedError

    return Reader


@pytest.fixture
def board() -> Board:
    return Board()


@pytest.fixture
def workspace(board: Board) -> Iterator[tuple[Workspace, list[tuple[Any, ...]]]]:
    calls: list[tuple[Any, ...]] = []

    def progress(message: str) -> None:
        calls.append(("progress", message, threading.get_ident()))

    def advance(label: str, done: int, total: int) -> None:
        calls.append(("advance", (label, done, total), threading.get_ident()))

    config = Config.model_validate(
        {
            "version": 1,
            "targets": {t: {"provider": "reader"} for t in "abc"},
            "lists": [{"name": f"{t}-list", "target": t} for t in "abc"],
        }
    )
    context = ProviderContext(progress=progress, advance=advance)
    ws = Workspace(config, {"reader": reader(board)}, context)
    yield ws, calls
    ws.close()


def test_targets_are_read_at_once_and_report_from_the_calling_thread(
    board: Board, workspace: tuple[Workspace, list[tuple[Any, ...]]]
) -> None:
    ws, calls = workspace
    board.hold = {
        "a": lambda: wait(board.finished["c"], "c finished"),
        "b": lambda: wait(board.started["a"], "a started"),
        "c": lambda: wait(board.started["b"], "b started"),
    }
    live = ws.fetch()
    assert [item.target for item in live.lists] == ["a", "b", "c"]  # the order given
    assert {ident for *_, ident in calls} == {threading.get_ident()}
    messages = sorted(m for kind, m, _ in calls if kind == "progress")
    assert messages == sorted(
        [f"Reading 1 list(s) from target {t!r}..." for t in "abc"]
        + [f"{t}: reading" for t in "abc"]
    )
    counts = [c for kind, c, _ in calls if kind == "advance"]
    assert counts[-1] == ("Reading", 6, 6)


def test_the_first_target_in_order_that_failed_is_reported_after_the_others_finish(
    board: Board, workspace: tuple[Workspace, list[tuple[Any, ...]]]
) -> None:
    ws, _ = workspace
    board.failing = {"a": ConflictError("a failed"), "c": ConflictError("c failed")}
    board.hold = {
        "a": lambda: wait(board.finished["c"], "c failed"),
        "b": lambda: wait(board.finished["a"], "a failed"),
    }
    with pytest.raises(ConflictError, match="a failed"):
        ws.fetch()
    assert all(board.finished[t].is_set() for t in "abc")


def test_one_target_is_read_in_the_calling_thread(
    board: Board, workspace: tuple[Workspace, list[tuple[Any, ...]]]
) -> None:
    ws, _ = workspace
    seen: list[int] = []
    board.hold = {"b": lambda: seen.append(threading.get_ident())}
    live = ws.fetch({"b": ("b-list",)})
    assert [item.name for item in live.lists] == ["b-list"]
    assert seen == [threading.get_ident()]
