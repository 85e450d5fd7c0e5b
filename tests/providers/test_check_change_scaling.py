"""``check_change`` over a whole plan does work linear in the plan's size, and answers as a
check of each change on its own would.

The core calls ``check_change(change, planned)`` once per planned change with the whole
plan. Each provider derives what the plan does (lists and fields created, titles given)
once per plan (``providers._per_plan``): counted here by how many of the plan's changes
are visited in all, through a tuple that counts its own reads. No timing is asserted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, SupportsIndex, overload

import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

import providers.campaignmonitor.planned as cm_planned
from providers._per_plan import Kept, positions
from providers.campaignmonitor import CampaignMonitorProvider, CampaignMonitorSettings, _ListInfo
from providers.campaignmonitor import checks as cm_checks
from providers.campaignmonitor.api import CustomField
from providers.campaignmonitor.mapping import FieldIndex
from reconciler.model import FieldDef, FieldRule, LiveSegment, Segment
from reconciler.plan import Action, Change, Plan
from reconciler.planning import plan
from reconciler.provider import Problem, Provider, ProviderContext
from tests.providers.contract import ProviderHarness, Session
from tests.providers.test_contract import CampaignMonitorHarness
from tests.providers.test_greenarrow import GreenArrowHarness
from tests.providers.test_mailwizz import MailWizzHarness
from tests.providers.test_mautic import MauticHarness
from tests.providers.test_oempro import OemproHarness

N = 150
"""Segment creates per plan: the quadratic walks visited about N * N / 2 changes."""


class Counted(tuple[Change, ...]):
    """A plan's changes that count how many of them are read, however they are read."""

    reads: int = 0

    def __iter__(self) -> Iterator[Change]:
        for change in super().__iter__():
            self.reads += 1
            yield change

    @overload
    def __getitem__(self, key: SupportsIndex) -> Change: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Change, ...]: ...
    def __getitem__(self, key: SupportsIndex | slice) -> Change | tuple[Change, ...]:
        found = super().__getitem__(key)
        self.reads += len(found) if isinstance(found, tuple) else 1
        return found


def counted(current: Plan) -> tuple[Plan, Counted]:
    changes = Counted(current.changes)
    return current.model_copy(update={"changes": changes}), changes


# -- every provider, against its fake ---------------------------------------------------------

HARNESSES: dict[str, Callable[[respx.MockRouter], ProviderHarness]] = {
    "campaignmonitor": CampaignMonitorHarness,
    "mailwizz": MailWizzHarness,
    "mautic": MauticHarness,
    "oempro": OemproHarness,
    "greenarrow": GreenArrowHarness,
}


def creates_yaml(key: str, count: int) -> str:
    """One list of ``count`` new segments, every other one using the field ``Frequency``
    (which the plan creates where the platform lacks it; MailWizz has it, and is asked
    for a field ``Extra`` it cannot create, which every third segment uses)."""
    if key == "greenarrow":  # no custom fields; a membership rule needs the lists read
        fields, rules = "", ["{list: Partners, op: not_in}"] * 2
    else:
        kind = "text" if key == "oempro" else "select, options: [Weekly, Monthly]"
        fields = f"    fields:\n      - {{name: Frequency, type: {kind}}}\n"
        rules = ['{field: email, op: contains, value: "@x.com"}']
        rules.append("{field: Frequency, op: equals, value: Weekly}")
        if key == "mailwizz":
            fields += "      - {name: Extra, type: text}\n"
            rules.append("{field: Extra, op: equals, value: x}")
    lines = [
        f'      - {{name: "Segment {i}", rules: [{rules[i % len(rules)]}]}}' for i in range(count)
    ]
    return "lists:\n  - name: Newsletter\n" + fields + "    segments:\n" + "\n".join(lines) + "\n"


def fetched_plan(session: Session, key: str, count: int = N) -> tuple[Provider, Plan]:
    """The provider after a fetch, and the plan of ``count`` creates made against it."""
    session.write(creates_yaml(key, count))
    ws = session.workspace()
    live = ws.fetch()
    provider = ws.provider("main")
    current = plan(ws.config, live, {"main": provider})
    assert sum(c.action is Action.CREATE_SEGMENT for c in current.changes) == count
    return provider, current


@pytest.mark.parametrize("key", sorted(HARNESSES))
def test_check_change_reads_the_plan_a_bounded_number_of_times(
    key: str, no_real_http: respx.MockRouter, tmp_path: Path
) -> None:
    harness = HARNESSES[key](no_real_http)
    session = Session(harness, tmp_path, {key: harness.provider_class})
    provider, current = fetched_plan(session, key)
    watched, changes = counted(current)
    answers = [provider.check_change(c, watched) for c in current.changes]
    assert changes.reads <= 4 * len(changes), (changes.reads, len(changes))
    # A second plan object (equal, but another object) is derived afresh, once.
    again, changes_again = counted(current)
    assert [provider.check_change(c, again) for c in current.changes] == answers
    assert 0 < changes_again.reads <= 4 * len(changes_again)


@pytest.mark.parametrize("key", sorted(HARNESSES))
def test_kept_answers_equal_answers_derived_for_each_change_alone(
    key: str, no_real_http: respx.MockRouter, tmp_path: Path
) -> None:
    """Each change checked against a plan object of its own (nothing kept helps) gets the
    answer it gets among all the others."""
    harness = HARNESSES[key](no_real_http)
    session = Session(harness, tmp_path, {key: harness.provider_class})
    provider, current = fetched_plan(session, key, 40)  # checked alone: quadratic here
    together = [provider.check_change(c, current) for c in current.changes]
    alone = [provider.check_change(c, current.model_copy()) for c in current.changes]
    assert together == alone
    if key == "mailwizz":  # the API cannot create fields: refused, and counted as planned
        refused = [c.action for c, found in zip(current.changes, together, strict=True) if found]
        assert refused == [Action.CREATE_FIELD]


# -- Campaign Monitor: the list replayed once, with the answers of the replay per change -------

SETTINGS = CampaignMonitorSettings.model_validate({"client_id": "c", "api_key": "k"})
TITLES = ["Alpha", "alpha", "ALPHA", "Beta", "beta", "Gamma"]
FIELDS = [("Score", "number"), ("Note", "text"), ("score", "text")]


def provider_with(lists: Mapping[str, _ListInfo]) -> CampaignMonitorProvider:
    provider = CampaignMonitorProvider("main", SETTINGS, ProviderContext(base_dir=Path(".")))
    provider._lists = dict(lists)
    return provider


def segment(name: str, field: str | None) -> Segment:
    rule = (
        FieldRule(field=field, op="not_empty")
        if field is not None
        else FieldRule(field="email", op="contains", value="@x.com")
    )
    return Segment(name=name, rules=(rule,))


def _before(change: Change, planned: Plan) -> list[Change]:
    """The implementation before plan-time checks were indexed (quadratic): the oracle."""
    for index, other in enumerate(planned.changes):
        if other is change:
            return list(planned.changes[:index])
    return [c for c in planned.changes if c.sort_key() < change.sort_key()]


def previous_check_change(
    provider: CampaignMonitorProvider, change: Change, planned: Plan
) -> list[Problem]:
    """``check_change`` as it was: every earlier change walked for every change."""
    if change.action not in cm_planned.WRITES_RULES:
        return []
    info = provider._lists.get(change.list)
    earlier = _before(change, planned)
    fields = list(info.fields) if info is not None else []
    titles = dict(info.titles) if info is not None else {}
    for index, other in enumerate(earlier):
        if (other.target, other.list) != (change.target, change.list):
            continue
        created = cm_planned._created_field(other)
        if created is not None:
            fields.append(created)
        elif other.action is Action.DELETE_SEGMENT and other.before is not None:
            titles.pop(other.before.id, None)
        elif other.action in cm_planned.WRITES_RULES and other.after is not None:
            ident = other.before.id if other.before is not None else f"(new {index})"
            titles[ident] = other.after.name
    own = change.before.id if change.before is not None else None
    name = change.declared_segment.name
    clash = [t for i, t in titles.items() if i != own and t.casefold() == name.casefold()]
    problems = CampaignMonitorProvider._title_problems(change, clash[0] if clash else None)
    return problems + cm_checks.change_problems(change.declared_segment, FieldIndex(fields))


@st.composite
def changes(draw: st.DrawFn) -> tuple[dict[str, _ListInfo], list[Change]]:
    """Two lists' live titles and fields, and a plan (in any order) of creates, renames,
    rule changes and deletes of their segments and of field creates, with titles equal
    ignoring case and rules on fields created before, after or never."""
    lists: dict[str, _ListInfo] = {}
    for name in ("L", "M"):
        live = draw(st.lists(st.sampled_from(TITLES), max_size=4))
        titles = {f"{name}{i}": title for i, title in enumerate(live)}
        fields = [
            CustomField(name="Score", key="[Score]", data_type="Number")
            for _ in range(draw(st.integers(0, 1)))
        ]
        lists[name] = _ListInfo(f"id-{name}", fields, titles)
    made: list[Change] = []
    for _ in range(draw(st.integers(0, 12))):
        where = draw(st.sampled_from(["L", "M", "N"]))  # "N": a list not fetched
        action = draw(st.sampled_from(list(Action)))
        live_ids = list(lists[where].titles) if where in lists else []
        before = None
        if action in (Action.UPDATE_SEGMENT, Action.ADD_RULE_GROUP, Action.DELETE_SEGMENT):
            ident = draw(st.sampled_from([*live_ids, "gone"]))
            titles = lists[where].titles if where in lists else {}
            before = LiveSegment(id=ident, name=titles.get(ident, "x"))
        after = None
        if action in cm_planned.WRITES_RULES:
            field = draw(st.sampled_from([None, "Score", "Note", "score"]))
            after = segment(draw(st.sampled_from(TITLES)), field)
        field_def = None
        if action is Action.CREATE_FIELD:
            field_name, field_type = draw(st.sampled_from(FIELDS))
            field_def = FieldDef(name=field_name, type=field_type)  # type: ignore[arg-type]
        made.append(
            Change(
                action=action,
                target="main",
                list=where,
                segment=after.name if after else before.name if before else None,
                before=before,
                after=after,
                field=field_def,
            )
        )
    return lists, made


@settings(max_examples=300, deadline=None)
@given(changes())
def test_campaignmonitor_answers_equal_the_previous_implementation(
    drawn: tuple[dict[str, _ListInfo], list[Change]],
) -> None:
    lists, made = drawn
    provider = provider_with(lists)
    current = Plan(changes=tuple(made))
    for change in current.changes:
        assert provider.check_change(change, current) == previous_check_change(
            provider, change, current
        )
    # A change that is not one of the plan's own objects runs after those sorting before it.
    for change in made:
        copy = change.model_copy()
        assert provider.check_change(copy, current) == previous_check_change(
            provider, copy, current
        )


def test_campaignmonitor_replays_each_list_once_per_plan_and_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    replay = cm_planned.replay

    def counting(*args: Any) -> Any:
        calls.append(len(args[0]))
        return replay(*args)

    monkeypatch.setattr(cm_planned, "replay", counting)
    provider = provider_with({"L": _ListInfo("id-L", [], {"s1": "Taken"})})
    made = [
        Change(action=Action.CREATE_SEGMENT, target="main", list="L", after=segment(f"S{i}", None))
        for i in range(N)
    ]
    clashing = segment("taken", None)
    made.append(Change(action=Action.CREATE_SEGMENT, target="main", list="L", after=clashing))
    current = Plan(changes=tuple(made))
    answers = [provider.check_change(c, current) for c in current.changes]
    assert calls == [N + 1]  # one replay of the list's N + 1 changes for all N + 1 checks
    assert not any(answers[:N])
    assert 'already has a segment titled "Taken"' in answers[N][0].message
    # The same plan after a fetch that found the title gone: replayed again, not stale.
    provider._lists["L"] = _ListInfo("id-L", [], {})
    assert provider.check_change(made[N], current) == []
    assert calls == [N + 1, N + 1]
    # Another plan object: replayed again.
    provider.check_change(made[0], current.model_copy())
    assert len(calls) == 3


# -- the keeping itself --------------------------------------------------------------------


def test_kept_is_made_again_for_any_other_object() -> None:
    first, second = Plan(), Plan()
    state: list[str] = []
    kept: Kept[int] = Kept()
    made: list[int] = []

    def make(value: int) -> Callable[[], int]:
        return lambda: made.append(value) or value

    assert kept.get((first, state), make(1)) == 1
    assert kept.get((first, state), make(2)) == 1  # the same objects: kept
    assert kept.get((second, state), make(3)) == 3  # an equal plan, another object
    assert kept.get((second, []), make(4)) == 4  # an equal state, another object
    assert kept.get((second,), make(5)) == 5  # fewer sources
    assert made == [1, 3, 4, 5]


def test_positions_are_by_object_not_by_equality() -> None:
    change = Change(action=Action.CREATE_LIST, target="main", list="L")
    twin = change.model_copy()
    current = Plan(changes=(change, Change(action=Action.CREATE_LIST, target="main", list="M")))
    found = positions(current)
    assert found[id(change)] == 0
    assert id(twin) not in found and twin == change
