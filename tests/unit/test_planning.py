"""Planner unit tests on plain data: no files, no HTTP, no SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.errors import ConflictError
from reconciler.model import Config, LiveState, Rule
from reconciler.plan import Action
from reconciler.planning import SafetyPolicy, acknowledge, detect_drift, plan, stale_reasons
from reconciler.provider import Capabilities

EMAIL = {"field": "email", "op": "contains", "value": "@gmail.com"}
ACTIVE = {"field": "status", "op": "equals", "value": "active"}
RECENT = {"field": "date_subscribed", "op": "after", "value": "2024-01-01"}


class Canon:
    def __init__(self, *extra: Action) -> None:
        self.capabilities = Capabilities(
            shape="tree",
            operators={},
            changes=frozenset(
                {Action.CREATE_SEGMENT, Action.UPDATE_SEGMENT, Action.DELETE_SEGMENT, *extra}
            ),
        )

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return match, rules


def config(*lists: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "version": 1,
            "targets": {"t": {"provider": "reference"}},
            "defaults": {"target": "t"},
            "lists": [{"target": "t", **item} for item in lists],
        }
    )


def seg(name: str, *rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "rules": list(rules), **extra}


def live(*lists: tuple[str, list[tuple[str, str, list[dict[str, Any]]]]]) -> LiveState:
    return LiveState.model_validate(
        {
            "lists": [
                {
                    "target": "t",
                    "name": name,
                    "id": f"L-{name}",
                    "segments": [
                        {"id": sid, "name": sname, "rules": srules}
                        for sid, sname, srules in segments
                    ],
                }
                for name, segments in lists
            ]
        }
    )


def run(cfg: Config, state: LiveState, canon: Canon | None = None, **policy: Any):  # type: ignore[no-untyped-def]
    return plan(cfg, state, {"t": canon or Canon()}, SafetyPolicy(**policy))


def actions(result: Any) -> list[tuple[str, str | None]]:
    return [
        (c.action.value, c.segment or (c.field.name if c.field else c.list)) for c in result.changes
    ]


def test_plan_same_state_is_empty() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, ACTIVE)]})
    state = live(("N", [("1", "A", [ACTIVE, EMAIL])]))
    assert run(cfg, state).changes == ()


def test_plan_ignores_order_and_same_kind_nesting() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, {"all": [ACTIVE, RECENT]})]})
    state = live(("N", [("1", "A", [RECENT, {"all": [EMAIL, ACTIVE, EMAIL]}])]))
    assert run(cfg, state).is_empty


def test_plan_missing_list_creates_list_fields_and_segments_in_order() -> None:
    cfg = config(
        {
            "name": "N",
            "fields": [{"name": "Frequency", "type": "select", "options": ["Weekly"]}],
            "segments": [
                seg("B", EMAIL),
                seg("A", {"field": "Frequency", "op": "equals", "value": "Weekly"}),
            ],
        }
    )
    result = run(cfg, LiveState())
    assert actions(result) == [
        ("create_list", "N"),
        ("create_field", "Frequency"),
        ("create_segment", "A"),
        ("create_segment", "B"),
    ]
    assert result.summary() == {"create": 4, "update": 0, "delete": 0}


def test_plan_rule_change_is_one_update_with_rule_diff() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, RECENT)]})
    state = live(("N", [("1", "A", [EMAIL, ACTIVE])]))
    (change,) = run(cfg, state).changes
    assert change.action is Action.UPDATE_SEGMENT
    assert change.before is not None and change.before.id == "1"
    assert change.diff == ('- status equals "active"', '+ date_subscribed after "2024-01-01"')


def test_plan_rename_is_one_update_keeping_the_id() -> None:
    cfg = config({"name": "N", "segments": [seg("New", EMAIL, renamed_from=["Old"])]})
    state = live(("N", [("7", "Old", [EMAIL])]))
    (change,) = run(cfg, state).changes
    assert (change.action, change.before.id if change.before else None) == (
        Action.UPDATE_SEGMENT,
        "7",
    )
    assert change.diff == ('~ name: "Old" -> "New"',)


def test_plan_exact_name_wins_over_renamed_from() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, renamed_from=["B"])]})
    state = live(("N", [("1", "A", [EMAIL]), ("2", "B", [EMAIL])]))
    result = run(cfg, state)
    assert result.changes == ()
    assert [u.segment for u in result.unmanaged] == ["B"]


def test_plan_prune_deletes_undeclared_segments_last() -> None:
    cfg = config({"name": "N", "prune": True, "segments": [seg("A", EMAIL), seg("C", ACTIVE)]})
    state = live(("N", [("1", "A", [RECENT]), ("2", "B", [EMAIL])]))
    assert actions(run(cfg, state)) == [
        ("update_segment", "A"),
        ("create_segment", "C"),
        ("delete_segment", "B"),
    ]


def test_plan_without_prune_reports_unmanaged_and_deletes_nothing() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL)]})
    state = live(("N", [("1", "A", [EMAIL]), ("2", "B", [EMAIL])]))
    result = run(cfg, state)
    assert result.changes == ()
    assert [(u.segment, u.segment_id) for u in result.unmanaged] == [("B", "2")]


def test_plan_ignore_globs_hide_live_segments() -> None:
    cfg = config(
        {"name": "N", "prune": True, "ignore": ["System *"], "segments": [seg("A", EMAIL)]}
    )
    state = live(("N", [("1", "A", [EMAIL]), ("2", "System all", [EMAIL])]))
    result = run(cfg, state)
    assert (result.changes, result.unmanaged) == ((), ())


def test_plan_duplicate_live_names_is_a_conflict_naming_both_ids() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL)]})
    state = live(("N", [("1", "A", [EMAIL]), ("2", "A", [ACTIVE])]))
    with pytest.raises(ConflictError, match=r'2 live segments named "A" \(ids 1, 2\)'):
        run(cfg, state)


def test_plan_undeclared_duplicates_are_not_a_conflict() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL)]})
    state = live(("N", [("1", "A", [EMAIL]), ("2", "B", [ACTIVE]), ("3", "B", [ACTIVE])]))
    assert len(run(cfg, state).unmanaged) == 2


def _pruning(kept: int, total: int) -> tuple[Config, LiveState]:
    names = [f"S{i}" for i in range(total)]
    cfg = config({"name": "N", "prune": True, "segments": [seg(n, EMAIL) for n in names[:kept]]})
    state = live(("N", [(str(i), n, [EMAIL]) for i, n in enumerate(names)]))
    return cfg, state


@pytest.mark.parametrize(
    ("kept", "total", "tripped"),
    [
        (7, 10, False),  # 30% is the limit itself
        (6, 10, True),  # 40% of a list of 10
        (1, 5, False),  # under 10 segments the share does not apply
        (0, 3, True),  # would leave the list empty
        (0, 1, True),
    ],
)
def test_plan_safety_limits(kept: int, total: int, tripped: bool) -> None:
    cfg, state = _pruning(kept, total)
    result = run(cfg, state)
    assert bool(result.safety.tripped) is tripped
    assert len([c for c in result.changes if c.is_delete]) == total - kept


def test_plan_safety_reason_names_the_limit() -> None:
    (limit,) = run(*_pruning(6, 10)).safety.limits
    assert limit.reason == 'deleting 4 of 10 segments (40%) from list "N" exceeds the limit of 30%'
    assert limit.deletes == ("S6", "S7", "S8", "S9")


def test_plan_safety_acknowledged_per_name_or_all() -> None:
    cfg, state = _pruning(6, 10)
    assert run(cfg, state, allow_delete=frozenset({"S6", "S7", "S8"})).safety.tripped
    assert not run(cfg, state, allow_delete=frozenset({"S6", "S7", "S8", "S9"})).safety.tripped
    assert not run(cfg, state, allow_all=True).safety.tripped


def test_acknowledge_rejudges_a_saved_plan() -> None:
    saved = run(*_pruning(6, 10))
    assert acknowledge(saved, SafetyPolicy()).safety.tripped
    assert not acknowledge(saved, SafetyPolicy(allow_all=True)).safety.tripped


def test_plan_fingerprint_tracks_the_live_state() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL)]})
    one = run(cfg, live(("N", [("1", "A", [EMAIL])])))
    same = run(cfg, live(("N", [("1", "A", [EMAIL])])))
    other = run(cfg, live(("N", [("1", "A", [ACTIVE])])))
    assert one.fingerprint == same.fingerprint != other.fingerprint
    assert stale_reasons(one.live_digests, other.live_digests) == ["t/N/A#1 changed"]


def test_stale_reasons_names_appeared_and_gone() -> None:
    assert stale_reasons({"a": "1", "b": "2"}, {"b": "2", "c": "3"}) == ["a is gone", "c appeared"]


def test_plan_appended_group_is_add_rule_group_where_supported() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, {"any": [ACTIVE, RECENT]})]})
    state = live(("N", [("1", "A", [EMAIL])]))
    (change,) = run(cfg, state, Canon(Action.ADD_RULE_GROUP)).changes
    assert change.action is Action.ADD_RULE_GROUP
    (plain,) = run(cfg, state).changes
    assert plain.action is Action.UPDATE_SEGMENT


def test_plan_removed_group_is_never_add_rule_group() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL)]})
    state = live(("N", [("1", "A", [EMAIL, ACTIVE])]))
    (change,) = run(cfg, state, Canon(Action.ADD_RULE_GROUP)).changes
    assert change.action is Action.UPDATE_SEGMENT


def test_plan_options_compare_declared_keys_only() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, options={"isPublished": True})]})
    state = LiveState.model_validate(
        {
            "lists": [
                {
                    "target": "t",
                    "name": "N",
                    "id": "L",
                    "segments": [
                        {
                            "id": "1",
                            "name": "A",
                            "rules": [EMAIL],
                            "options": {"isPublished": True, "alias": "generated-alias"},
                        }
                    ],
                }
            ]
        }
    )
    assert run(cfg, state).is_empty
    changed = config({"name": "N", "segments": [seg("A", EMAIL, options={"isPublished": False})]})
    (change,) = run(changed, state).changes
    assert change.diff == ("~ options['isPublished']: True -> False",)


def test_plan_fields_created_only_when_missing_case_insensitively() -> None:
    cfg = config(
        {
            "name": "N",
            "fields": [{"name": "Frequency"}, {"name": "Plan"}],
            "segments": [seg("A", EMAIL)],
        }
    )
    state = LiveState.model_validate(
        {
            "lists": [
                {
                    "target": "t",
                    "name": "N",
                    "id": "L",
                    "fields": [{"name": "frequency"}],
                    "segments": [{"id": "1", "name": "A", "rules": [EMAIL]}],
                }
            ]
        }
    )
    assert actions(run(cfg, state)) == [("create_field", "Plan")]


def test_plan_scope_records_the_lists_planned() -> None:
    cfg = config(
        {"name": "N", "segments": [seg("A", EMAIL)]}, {"name": "M", "segments": [seg("A", EMAIL)]}
    )
    assert run(cfg, LiveState()).scope == {"t": ("N", "M")}


def test_detect_drift_statuses() -> None:
    cfg = config(
        {
            "name": "N",
            "segments": [seg("Same", EMAIL), seg("Changed", EMAIL), seg("Missing", EMAIL)],
        },
        {"name": "P", "prune": True, "segments": [seg("Kept", EMAIL)]},
    )
    state = live(
        ("N", [("1", "Same", [EMAIL]), ("2", "Changed", [ACTIVE]), ("3", "Stray", [EMAIL])]),
        ("P", [("4", "Kept", [EMAIL]), ("5", "Extra", [EMAIL])]),
    )
    report = detect_drift(cfg, state, {"t": Canon()})
    assert [(i.list, i.segment, i.status) for i in report.items] == [
        ("N", "Same", "in_sync"),
        ("N", "Changed", "changed"),
        ("N", "Missing", "missing"),
        ("N", "Stray", "unmanaged"),
        ("P", "Kept", "in_sync"),
        ("P", "Extra", "extra"),
    ]
    assert len(report.drifted) == 4


def test_plan_creates_segments_named_in_membership_rules_first() -> None:
    member = {"list": "Zulu", "op": "not_in"}
    chained = {"list": "Alpha", "op": "in"}
    cfg = config(
        {"name": "N", "segments": [seg("Alpha", member), seg("Beta", chained), seg("Zulu", EMAIL)]}
    )
    assert actions(run(cfg, LiveState())) == [
        ("create_list", "N"),
        ("create_segment", "Zulu"),
        ("create_segment", "Alpha"),
        ("create_segment", "Beta"),
    ]


def test_plan_membership_cycles_still_plan_every_create_deterministically() -> None:
    cfg = config({"name": "N", "segments": [seg("B", {"list": "A"}), seg("A", {"list": "B"})]})
    first = [a for a in actions(run(cfg, LiveState())) if a[0] == "create_segment"]
    assert sorted(first) == [("create_segment", "A"), ("create_segment", "B")]
    assert [a for a in actions(run(cfg, LiveState())) if a[0] == "create_segment"] == first


def test_plan_without_digests_leaves_them_out_and_changes_nothing_else() -> None:
    cfg = config({"name": "N", "segments": [seg("A", EMAIL), seg("B", ACTIVE)]})
    state = live(("N", [("1", "A", [ACTIVE])]))
    full = plan(cfg, state, {"t": Canon()})
    lean = plan(cfg, state, {"t": Canon()}, digests=False)
    assert full.fingerprint and full.live_digests
    assert lean.fingerprint == "" and lean.live_digests == {}
    assert lean.changes == full.changes and lean.changes


def test_plan_fingerprint_ignores_segments_the_list_ignores() -> None:
    cfg = config({"name": "N", "ignore": ["System *"], "segments": [seg("A", EMAIL)]})
    one = run(cfg, live(("N", [("1", "A", [EMAIL]), ("2", "System x", [EMAIL])])))
    other = run(cfg, live(("N", [("1", "A", [EMAIL]), ("2", "System x", [ACTIVE])])))
    assert one.fingerprint == other.fingerprint
    assert not any("System" in key for key in one.live_digests)


def test_plan_options_added_and_removed_inside_a_declared_key() -> None:
    live_state = LiveState.model_validate(
        {
            "lists": [
                {
                    "target": "t",
                    "name": "N",
                    "id": "L",
                    "segments": [
                        {
                            "id": "1",
                            "name": "A",
                            "rules": [EMAIL],
                            "options": {"tags": {"a": 1, "b": 2}},
                        }
                    ],
                }
            ]
        }
    )
    cfg = config({"name": "N", "segments": [seg("A", EMAIL, options={"tags": {"a": 1, "c": 3}})]})
    (change,) = run(cfg, live_state).changes
    assert change.diff == ("+ options['tags']['c']: 3", "- options['tags']['b']: 2")
