"""Planner properties: plan(s, s) is empty, and applying a plan reaches the desired state."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import Config, LiveList, LiveSegment, LiveState, MailingList, Rule, Segment
from reconciler.plan import Action, Change
from reconciler.planning import SafetyPolicy, plan
from reconciler.provider import Capabilities
from tests.strategies import segments


class Tree:
    """Stands for a provider that stores any rule tree exactly (like the reference one)."""

    capabilities = Capabilities(shape="tree", operators={})

    def canonical_rules(
        self, match: str, rules: tuple[Rule, ...], list_name: str
    ) -> tuple[str, tuple[Rule, ...]]:
        return match, rules


def _unique(items: list[Segment]) -> list[Segment]:
    seen: dict[str, Segment] = {}
    for item in items:
        seen.setdefault(item.name, item)
    return list(seen.values())


def _config(items: list[Segment], prune: bool) -> Config:
    declared = MailingList(name="L", target="t", prune=prune, segments=tuple(items))
    return Config.model_validate({"version": 1, "lists": [declared]})


def _live(items: list[Segment], start: int = 0) -> LiveState:
    live = tuple(
        LiveSegment(id=str(start + i), name=s.name, match=s.match, rules=s.rules, options=s.options)
        for i, s in enumerate(items)
    )
    return LiveState(lists=(LiveList(target="t", name="L", id="1", segments=live),))


def _apply(state: LiveState, change: Change, next_id: int) -> LiveState:
    """A tiny in-memory store executing one change the way a provider must."""
    (current,) = state.lists
    kept = list(current.segments)
    if change.action is Action.CREATE_SEGMENT and change.after is not None:
        after = change.after
        kept.append(
            LiveSegment(
                id=str(next_id),
                name=after.name,
                match=after.match,
                rules=after.rules,
                options=after.options,
            )
        )
    elif change.before is not None:
        index = next(i for i, s in enumerate(kept) if s.id == change.before.id)
        if change.action is Action.DELETE_SEGMENT:
            del kept[index]
        elif change.after is not None:
            after = change.after
            kept[index] = LiveSegment(
                id=change.before.id,
                name=after.name,
                match=after.match,
                rules=after.rules,
                options=after.options,
            )
    return LiveState(lists=(current.model_copy(update={"segments": tuple(kept)}),))


@given(st.lists(segments(), max_size=5))
def test_plan_of_a_state_against_itself_is_empty(items: list[Segment]) -> None:
    items = _unique(items)
    result = plan(_config(items, prune=True), _live(items), {"t": Tree()})
    assert result.changes == ()


@given(st.lists(segments(), max_size=5), st.lists(segments(), max_size=5), st.booleans())
def test_applying_a_plan_reaches_the_desired_state(
    desired: list[Segment], existing: list[Segment], prune: bool
) -> None:
    desired, existing = _unique(desired), _unique(existing)
    config = _config(desired, prune)
    state = _live(existing, start=100)
    policy = SafetyPolicy(allow_all=True)
    first = plan(config, state, {"t": Tree()}, policy)
    for number, change in enumerate(first.changes):
        state = _apply(state, change, next_id=1000 + number)
    assert plan(config, state, {"t": Tree()}, policy).changes == ()
