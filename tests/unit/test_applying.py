"""The applier: order, independent changes after a failure, skipped dependents, safety."""

from __future__ import annotations

import pytest

from reconciler.applying import NOT_STARTED, apply_plan, check_safety, timed_out, unconverged
from reconciler.errors import ApiError, PlatformOwned, UnsafePlanError
from reconciler.model import FieldDef, LiveState, Rule, SourceRef
from reconciler.plan import Action, Change, Plan, SafetyLimit, SafetyReport
from reconciler.provider import Capabilities, Deadline, Provider, Scope
from tests.factories import make_live_segment, make_rule, make_segment
from tests.providers.fakes import FakeClock


class Recorder(Provider):
    """Records the changes it is asked to apply; fails those named in ``failing``."""

    key = "recorder"
    capabilities = Capabilities(shape="tree", operators={})

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.applied: list[str] = []

    def fetch(self, scope: Scope) -> LiveState:
        return LiveState()

    def apply(self, change: Change) -> None:
        name = change.segment or (change.field.name if change.field else change.list)
        if name in self.failing:
            raise ApiError("refused", method="POST", url="/x", status=400)
        self.applied.append(f"{change.action.value}:{name}")


def _segment(name: str, list_: str = "L", field: str = "email") -> Change:
    return Change(
        action=Action.CREATE_SEGMENT,
        target="t",
        list=list_,
        segment=name,
        after=make_segment(name, make_rule(field, "equals", "x")),
        source=SourceRef(file="lists/l.yaml", path=("lists", 0, "segments", 0)),
    )


def test_apply_runs_changes_in_order() -> None:
    provider = Recorder(set())
    changes = (
        Change(action=Action.CREATE_LIST, target="t", list="L"),
        _segment("A"),
        _segment("B"),
    )
    result = apply_plan(Plan(changes=changes), {"t": provider})
    assert provider.applied == ["create_list:L", "create_segment:A", "create_segment:B"]
    assert (result.ok, result.count("applied")) == (True, 3)


def test_apply_continues_after_an_independent_failure() -> None:
    provider = Recorder({"A"})
    result = apply_plan(Plan(changes=(_segment("A"), _segment("B"))), {"t": provider})
    assert provider.applied == ["create_segment:B"]
    assert [o.status for o in result.outcomes] == ["failed", "applied"]
    assert not result.ok


def test_apply_failure_message_points_at_the_yaml() -> None:
    result = apply_plan(
        Plan(changes=(_segment("A"),)),
        {"t": Recorder({"A"})},
        locate=lambda source, path: f"{source.file}:{7 + len(path)}:9",
    )
    assert result.outcomes[0].message == "lists/l.yaml:7:9: refused (POST /x -> 400)"


def test_apply_failure_points_at_each_rejected_rule() -> None:
    class Rejecting(Recorder):
        def apply(self, change: Change) -> None:
            error = ApiError("rules rejected", status=400)
            error.rule_paths = (("rules", 0), ("rules", 1, "any", 0))
            raise error

    result = apply_plan(
        Plan(changes=(_segment("A"),)),
        {"t": Rejecting(set())},
        locate=lambda source, path: f"{source.file}:{10 + len(path)}:1",
    )
    assert result.outcomes[0].message == (
        "lists/l.yaml:10:1: rules rejected (400) (rejected rules at lists/l.yaml:12:1, "
        "lists/l.yaml:14:1)"
    )


def test_apply_skips_segments_of_a_list_that_failed_to_be_created() -> None:
    provider = Recorder({"L"})
    changes = (
        Change(action=Action.CREATE_LIST, target="t", list="L"),
        _segment("A"),
        _segment("B", list_="M"),
    )
    result = apply_plan(Plan(changes=changes), {"t": provider})
    assert [(o.status, o.message) for o in result.outcomes] == [
        ("failed", "refused (POST /x -> 400)"),
        ("skipped", 'list "L" could not be created'),
        ("applied", ""),
    ]


def test_apply_skips_only_segments_that_use_a_field_that_failed() -> None:
    provider = Recorder({"Plan"})
    changes = (
        Change(action=Action.CREATE_FIELD, target="t", list="L", field=FieldDef(name="Plan")),
        _segment("Uses", field="plan"),
        _segment("Other", field="email"),
    )
    result = apply_plan(Plan(changes=changes), {"t": provider})
    assert [o.status for o in result.outcomes] == ["failed", "skipped", "applied"]
    assert provider.applied == ["create_segment:Other"]


def test_apply_does_not_catch_non_provider_errors() -> None:
    class Broken(Recorder):
        def apply(self, change: Change) -> None:
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        apply_plan(Plan(changes=(_segment("A"),)), {"t": Broken(set())})


def test_check_safety_refuses_unacknowledged_limits() -> None:
    limit = SafetyLimit(target="t", list="L", reason="too many", deletes=("A",))
    with pytest.raises(UnsafePlanError, match="too many") as caught:
        check_safety(Plan(safety=SafetyReport(limits=(limit,))))
    assert caught.value.exit_code == 3
    acknowledged = limit.model_copy(update={"acknowledged": True})
    check_safety(Plan(safety=SafetyReport(limits=(acknowledged,))))


def test_apply_leaves_platform_owned_objects_alone() -> None:
    class Owning(Recorder):
        def apply(self, change: Change) -> None:
            raise PlatformOwned("left alone: a system segment")

    result = apply_plan(Plan(changes=(_segment("A"),)), {"t": Owning(set())})
    assert [(o.status, o.message) for o in result.outcomes] == [
        ("skipped", "left alone: a system segment")
    ]
    assert result.ok


class Slow(Recorder):
    """Each change takes ten seconds on the clock."""

    def __init__(self, clock: FakeClock, failing: frozenset[str] = frozenset()) -> None:
        super().__init__(set(failing))
        self.clock = clock

    def apply(self, change: Change) -> None:
        self.clock.time += 10
        super().apply(change)


def test_apply_starts_no_change_once_the_deadline_has_passed() -> None:
    clock = FakeClock()
    provider = Slow(clock, frozenset({"B"}))
    messages: list[str] = []
    changes = tuple(_segment(name) for name in "ABCDE")
    result = apply_plan(
        Plan(changes=changes),
        {"t": provider},
        progress=messages.append,
        deadline=Deadline(clock, 25),
    )
    assert [(o.change.segment, o.status) for o in result.outcomes] == [
        ("A", "applied"),
        ("B", "failed"),
        ("C", "applied"),
        ("D", "skipped"),
        ("E", "skipped"),
    ]
    assert [o.message for o in result.outcomes[3:]] == [NOT_STARTED, NOT_STARTED]
    assert provider.applied == ["create_segment:A", "create_segment:C"]
    assert timed_out(result) and not result.ok
    assert messages[-1] == (
        "Stopped: the run's --timeout (25s) passed; 2 of 5 change(s) not started."
    )


def test_a_run_stopped_by_the_deadline_is_timed_out_even_without_failures() -> None:
    clock = FakeClock()
    changes = (_segment("A"), _segment("B"))
    result = apply_plan(Plan(changes=changes), {"t": Slow(clock)}, deadline=Deadline(clock, 5))
    assert [o.status for o in result.outcomes] == ["applied", "skipped"]
    assert result.ok and timed_out(result)  # ok says nothing failed; the CLI exits 1 anyway


def test_apply_without_a_deadline_runs_to_the_end() -> None:
    clock = FakeClock()
    result = apply_plan(Plan(changes=(_segment("A"), _segment("B"))), {"t": Slow(clock)})
    assert [o.status for o in result.outcomes] == ["applied", "applied"]
    assert not timed_out(result)


class _Canon:
    capabilities = Capabilities(shape="tree", operators={})

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return match, rules


def _live(fields: tuple[str, ...], *segments: tuple[str, str, str]) -> LiveState:
    return LiveState.model_validate(
        {
            "lists": [
                {
                    "target": "t",
                    "name": "L",
                    "id": "1",
                    "fields": [{"name": name} for name in fields],
                    "segments": [
                        {
                            "id": sid,
                            "name": name,
                            "rules": [{"field": "email", "op": "equals", "value": v}],
                        }
                        for sid, name, v in segments
                    ],
                }
            ]
        }
    )


def test_unconverged_is_empty_when_every_change_reads_back() -> None:
    changes = (
        Change(action=Action.CREATE_FIELD, target="t", list="L", field=FieldDef(name="Plan")),
        _segment("A"),
    )
    live = _live(("plan",), ("1", "A", "x"))
    assert unconverged(Plan(changes=changes), live, {"t": _Canon()}) == []


def test_unconverged_names_what_did_not_read_back() -> None:
    delete = Change(
        action=Action.DELETE_SEGMENT,
        target="t",
        list="L",
        segment="Old",
        before=make_live_segment("Old", make_rule("email", "equals", "x"), id="9"),
    )
    changes = (
        Change(action=Action.CREATE_FIELD, target="t", list="L", field=FieldDef(name="Plan")),
        _segment("A"),
        _segment("B"),
        delete,
    )
    live = _live((), ("1", "A", "other"), ("2", "B", "x"), ("3", "B", "x"), ("9", "Old", "x"))
    assert unconverged(Plan(changes=changes), live, {"t": _Canon()}) == [
        'field "Plan" is missing from list "L"',
        'segment "A" does not read back as applied',
        'list "L" has 2 segments named "B" after apply',
        'segment "Old" is still in list "L"',
    ]
