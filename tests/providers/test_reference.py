"""The reference backend against a real SQLite file: round-trips, fetch and changes.

Other modules: ``test_reference_store.py`` (settings, files, schema versions, durability,
a missing store), ``test_reference_codec.py`` (rows <-> models, hostile rows),
``test_reference_races.py`` (concurrent runs), ``test_reference_cli.py`` (the commands on
a missing store).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.reference import ReferenceProvider
from providers.reference.store import Store
from reconciler.errors import ConflictError, NotFound, ProviderError
from reconciler.model import (
    BEHAVIOUR_EVENTS,
    MEMBERSHIP_OPERATORS,
    FieldDef,
    LiveSegment,
    LiveState,
)
from reconciler.plan import Action, Change
from reconciler.provider import Scope
from reconciler.rules import normalise
from tests.factories import make_group, make_rule, make_segment
from tests.providers.reference_support import (
    TARGET,
    change,
    create_list,
    create_segment,
    live_segment,
    make_provider,
    opened,
    segment_names,
)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ReferenceProvider]:
    with opened(tmp_path) as provider:
        yield provider


# -- round-trips -----------------------------------------------------------------------

ROUND_TRIP_CASES: dict[str, list[Any]] = {
    "text equals": [make_rule("email", "equals", "a@example.com")],
    "unicode and quotes": [make_rule("name", "contains", 'Zoë "the" O\'Neil\n\t\u2028')],
    "int value": [make_rule("Age", "gt", 42)],
    "negative big int": [make_rule("Score", "lt", -(10**30))],
    "float value": [make_rule("Score", "gte", 2.5)],
    "integral float stays float": [make_rule("Score", "lte", 1.0)],
    "bool value": [make_rule("Vip", "equals", True)],
    "false value": [make_rule("Vip", "not_equals", False)],
    "between strings": [make_rule("date_subscribed", "between", ["2024-01-01", "2024-12-31"])],
    "between numbers": [make_rule("Age", "between", [18, 65.5])],
    "in mixed types": [make_rule("Frequency", "in", ["Weekly", 3, 1.5, True])],
    "not_in keeps order": [make_rule("status", "not_in", ["b", "a", "c"])],
    "empty": [make_rule("first_name", "empty")],
    "not_empty": [make_rule("last_name", "not_empty")],
    "every field operator": [
        make_rule("email", op, value)
        for op, value in [
            ("not_contains", "x"),
            ("starts_with", "a"),
            ("ends_with", ".org"),
            ("before", "2024-01-01"),
            ("after", "2023-01-01"),
        ]
    ],
    "behaviour events": [{"campaign": "1234abcd", "event": event} for event in BEHAVIOUR_EVENTS],
    "behaviour within": [{"campaign": "c9", "event": "clicked", "within": {"days": 30}}],
    "numeric campaign id": [{"campaign": 1234, "event": "opened"}],
    "membership default op": [{"list": "VIP"}],
    "membership ops": [{"list": "VIP", "op": op} for op in MEMBERSHIP_OPERATORS],
    "native simple": [{"native": {"RuleType": "CampaignOpenedNoClick", "Clause": "1234"}}],
    "native nested": [
        {
            "native": {
                "z": None,
                "a": [1, 2.0, True, None, "x", {"deep": [[], {}]}],
                "big": 2**70,
                "inf": float("-inf"),
            }
        }
    ],
    "nested groups": [
        make_rule("email", "contains", "@gmail.com"),
        make_group(
            "any",
            make_rule("date_subscribed", "after", "2024-01-01"),
            make_group("all", {"list": "VIP", "op": "not_in"}, make_rule("Age", "gt", 3)),
            make_group("any", {"native": {"k": "v"}}),
        ),
        make_group("all", make_group("all", make_group("any", make_rule("x", "empty")))),
    ],
    "duplicates kept as declared": [make_rule("a", "equals", 1), make_rule("a", "equals", 1)],
}


@pytest.mark.parametrize(
    "rules", list(ROUND_TRIP_CASES.values()), ids=list(ROUND_TRIP_CASES.keys())
)
@pytest.mark.parametrize("match", ["all", "any"])
def test_reference_round_trips_every_rule_kind(
    provider: ReferenceProvider, rules: list[Any], match: Any
) -> None:
    declared = make_segment("Seg", *rules, match=match, options={"b": [1, None], "a": {"x": 1.0}})
    create_list(provider)

    live = create_segment(provider, declared)

    assert live.name == declared.name
    assert live.match == declared.match
    # repr tells 1 from 1.0 from True, and tuples from lists; == would not.
    assert repr(live.rules) == repr(declared.rules)
    assert repr(live.options) == repr(declared.options)


def test_reference_round_trip_survives_reopening(tmp_path: Path) -> None:
    declared = make_segment("Seg", *ROUND_TRIP_CASES["nested groups"], match="any")
    with opened(tmp_path) as first:
        create_list(first)
        create_segment(first, declared)

    with opened(tmp_path) as second:
        assert repr(live_segment(second, "Seg").rules) == repr(declared.rules)


# -- fetch -----------------------------------------------------------------------------


def test_reference_fetch_by_scope(provider: ReferenceProvider) -> None:
    for name in ("C", "A", "B"):
        create_list(provider, name)
        create_segment(provider, make_segment(f"in {name}"), name)

    def fetched(lists: frozenset[str] | None) -> list[tuple[str, list[str]]]:
        state = provider.fetch(Scope(lists=lists))
        return [(lst.name, [s.name for s in lst.segments]) for lst in state.lists]

    assert fetched(None) == [("A", ["in A"]), ("B", ["in B"]), ("C", ["in C"])]
    assert fetched(frozenset({"C", "A", "missing"})) == [("A", ["in A"]), ("C", ["in C"])]
    assert fetched(frozenset()) == []


def test_reference_fetch_reports_target_ids_and_fields(provider: ReferenceProvider) -> None:
    create_list(provider)
    field = FieldDef(name="Frequency", type="select", options=("Weekly", "Emergency Only"))
    provider.apply(change(Action.CREATE_FIELD, field=field))
    create_segment(provider, make_segment("B"))
    create_segment(provider, make_segment("A"))

    (live_list,) = provider.fetch(Scope()).lists

    assert live_list.target == TARGET
    assert live_list.id.isdigit()
    (live_field,) = live_list.fields
    assert (live_field.name, live_field.type, live_field.options) == (
        "Frequency",
        "select",
        ("Weekly", "Emergency Only"),
    )
    assert live_field.id is not None and live_field.id.isdigit()
    assert [s.name for s in live_list.segments] == ["A", "B"]
    assert all(s.id.isdigit() for s in live_list.segments)


def test_reference_fetch_of_an_empty_store_is_empty(tmp_path: Path) -> None:
    Store.open(str(tmp_path / "state.db")).close()
    with opened(tmp_path) as provider:
        assert provider.fetch(Scope()) == LiveState()


def test_reference_fetch_reports_progress(tmp_path: Path) -> None:
    messages: list[str] = []
    provider = make_provider(tmp_path, progress=messages.append)
    create_list(provider)
    create_segment(provider, make_segment("S"))
    messages.clear()
    provider.fetch(Scope())
    provider.close()
    assert messages == [f"{TARGET}: read 1 lists and 1 segments from {provider.location}"]


def test_reference_fetch_refuses_unreadable_rows(
    tmp_path: Path, provider: ReferenceProvider
) -> None:
    create_list(provider)
    create_segment(provider, make_segment("Seg"))
    with sqlite3.connect(tmp_path / "state.db") as raw:
        raw.execute("""UPDATE segments SET rules = '[{"field": "x", "op": "nope"}]'""")
    raw.close()

    with pytest.raises(ProviderError, match="cannot read"):
        provider.fetch(Scope())


# -- changes ---------------------------------------------------------------------------


def test_reference_create_list_twice_conflicts(provider: ReferenceProvider) -> None:
    create_list(provider)
    with pytest.raises(ConflictError, match="list 'News' already exists"):
        create_list(provider)


def test_reference_create_field_conflicts_case_insensitively(provider: ReferenceProvider) -> None:
    create_list(provider)
    provider.apply(change(Action.CREATE_FIELD, field=FieldDef(name="Frequency")))

    with pytest.raises(ConflictError, match="'frequency' already exists in list 'News'"):
        provider.apply(change(Action.CREATE_FIELD, field=FieldDef(name="frequency")))


@pytest.mark.parametrize(
    "make_change",
    [
        lambda: change(Action.CREATE_FIELD, "Nope", field=FieldDef(name="F")),
        lambda: change(Action.CREATE_SEGMENT, "Nope", after=make_segment("S")),
        lambda: change(
            Action.UPDATE_SEGMENT,
            "Nope",
            before=LiveSegment(id="1", name="S"),
            after=make_segment("S"),
        ),
        lambda: change(Action.DELETE_SEGMENT, "Nope", before=LiveSegment(id="1", name="S")),
    ],
    ids=["field", "create", "update", "delete"],
)
def test_reference_change_in_unknown_list_is_not_found(
    provider: ReferenceProvider, make_change: Callable[[], Change]
) -> None:
    with pytest.raises(NotFound, match="list 'Nope' does not exist in target 'local'"):
        provider.apply(make_change())


@pytest.mark.parametrize(
    ("trigger", "error", "message"),
    [
        ("RAISE(ABORT, 'frozen by admin')", ConflictError, r"conflicts with stored data \(frozen"),
        ("RAISE(IGNORE)", ProviderError, "segment 'Gmail' could not be stored in list 'News'"),
    ],
    ids=["refused with a reason", "dropped silently"],
)
def test_reference_create_refused_by_the_store_is_an_error(
    provider: ReferenceProvider,
    tmp_path: Path,
    trigger: str,
    error: type[Exception],
    message: str,
) -> None:
    create_list(provider)
    with sqlite3.connect(tmp_path / "state.db") as raw:  # a hand-edited store
        raw.execute(f"CREATE TRIGGER no BEFORE INSERT ON segments BEGIN SELECT {trigger}; END")

    with pytest.raises(error, match=message):
        create_segment(provider, make_segment("Gmail"))
    assert segment_names(provider) == []


def test_reference_create_never_replaces_a_segment_in_a_store_edited_to_allow_it(
    provider: ReferenceProvider, tmp_path: Path
) -> None:
    create_list(provider)
    first = create_segment(provider, make_segment("Gmail", make_rule("email", "contains", "@x")))
    provider.close()
    raw = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    raw.executescript(  # the same table, but UNIQUE ... ON CONFLICT REPLACE
        "PRAGMA foreign_keys = OFF; BEGIN;"
        "CREATE TABLE s2 (id INTEGER PRIMARY KEY AUTOINCREMENT, list_id INTEGER NOT NULL"
        " REFERENCES lists(id), name TEXT NOT NULL, match TEXT NOT NULL, rules TEXT NOT NULL,"
        " options TEXT NOT NULL DEFAULT '{}', revision INTEGER NOT NULL DEFAULT 1,"
        " UNIQUE (list_id, name) ON CONFLICT REPLACE);"
        "INSERT INTO s2 SELECT * FROM segments; DROP TABLE segments;"
        "ALTER TABLE s2 RENAME TO segments; COMMIT;"
    )
    raw.close()

    with pytest.raises(ConflictError, match="segment 'Gmail' already exists in list 'News'"):
        create_segment(provider, make_segment("Gmail", make_rule("email", "contains", "@y")))
    assert live_segment(provider, "Gmail") == first


def test_reference_create_duplicate_segment_conflicts(provider: ReferenceProvider) -> None:
    create_list(provider)
    create_segment(provider, make_segment("Gmail"))

    with pytest.raises(ConflictError, match="segment 'Gmail' already exists in list 'News'"):
        create_segment(provider, make_segment("Gmail"))
    assert segment_names(provider) == ["Gmail"]


def test_reference_same_segment_name_in_two_lists(provider: ReferenceProvider) -> None:
    create_list(provider, "A")
    create_list(provider, "B")
    first = create_segment(provider, make_segment("Gmail"), "A")
    second = create_segment(provider, make_segment("Gmail"), "B")
    assert first.id != second.id


def test_reference_update_renames_in_place_and_keeps_the_id(provider: ReferenceProvider) -> None:
    create_list(provider)
    before = create_segment(provider, make_segment("Old", make_rule("a", "equals", 1)))
    after = make_segment(
        "New",
        make_rule("b", "equals", 2),
        make_group("all", {"list": "VIP"}, {"campaign": "c", "event": "opened"}),
        match="any",
        options={"isPublished": False},
        renamed_from=["Old"],
    )

    provider.apply(change(Action.UPDATE_SEGMENT, before=before, after=after))

    live = live_segment(provider, "New")
    assert live.id == before.id
    assert (live.match, repr(live.rules), live.options) == (
        "any",
        repr(after.rules),
        {"isPublished": False},
    )
    assert segment_names(provider) == ["New"]


def test_reference_update_counts_revisions(tmp_path: Path, provider: ReferenceProvider) -> None:
    create_list(provider)
    live = create_segment(provider, make_segment("S", make_rule("a", "equals", 1)))
    for value in (2, 3):
        after = make_segment("S", make_rule("a", "equals", value))
        provider.apply(change(Action.UPDATE_SEGMENT, before=live, after=after))
        live = live_segment(provider, "S")

    store = Store.open(str(tmp_path / "state.db"))
    with store.read() as tx:
        (row,) = tx.segments(None)
    store.close()
    assert row.revision == 3


def test_reference_update_of_a_changed_segment_conflicts(provider: ReferenceProvider) -> None:
    create_list(provider)
    planned = create_segment(provider, make_segment("S", make_rule("a", "equals", 1)))
    provider.apply(
        change(
            Action.UPDATE_SEGMENT,
            before=planned,
            after=make_segment("S", make_rule("a", "equals", "by hand")),
        )
    )

    stale = change(
        Action.UPDATE_SEGMENT,
        before=planned,
        after=make_segment("S", make_rule("a", "equals", 2)),
    )
    with pytest.raises(
        ConflictError,
        match="segment 'S' in list 'News' changed since the plan was made; run plan again",
    ):
        provider.apply(stale)
    assert repr(live_segment(provider, "S").rules) == repr((make_rule("a", "equals", "by hand"),))


@pytest.mark.parametrize(
    "edit",
    [
        {"name": "Renamed"},
        {"match": "any"},
        {"options": {"x": 1}},
        {"rules": (make_rule("a", "equals", 1), make_rule("c", "empty"))},
    ],
    ids=["name", "match", "options", "rules"],
)
def test_reference_every_part_of_a_segment_is_checked_for_staleness(
    provider: ReferenceProvider, edit: dict[str, Any]
) -> None:
    create_list(provider)
    live = create_segment(
        provider, make_segment("S", make_rule("a", "equals", 1), make_rule("b", "empty"))
    )
    seen_by_plan = live.model_copy(update=edit)

    with pytest.raises(ConflictError, match="changed since the plan was made"):
        provider.apply(change(Action.DELETE_SEGMENT, before=seen_by_plan))


def test_reference_staleness_compares_rules_in_normal_form(provider: ReferenceProvider) -> None:
    create_list(provider)
    live = create_segment(
        provider,
        make_segment("S", make_rule("b", "in", ["y", "x"]), make_rule("a", "equals", 1)),
    )
    normal = normalise(make_group("all", *live.rules))
    planned = live.model_copy(update={"rules": normal.rules})  # type: ignore[union-attr]
    assert repr(planned.rules) != repr(live.rules)

    provider.apply(change(Action.DELETE_SEGMENT, before=planned))
    assert segment_names(provider) == []


def test_reference_rename_onto_an_existing_name_conflicts(provider: ReferenceProvider) -> None:
    create_list(provider)
    first = create_segment(provider, make_segment("First"))
    create_segment(provider, make_segment("Second"))

    with pytest.raises(ConflictError, match="cannot rename segment 'First' to 'Second'"):
        provider.apply(change(Action.UPDATE_SEGMENT, before=first, after=make_segment("Second")))
    assert segment_names(provider) == ["First", "Second"]


def test_reference_delete_removes_the_segment(provider: ReferenceProvider) -> None:
    create_list(provider)
    keep = create_segment(provider, make_segment("Keep"))
    drop = create_segment(provider, make_segment("Drop"))

    provider.apply(change(Action.DELETE_SEGMENT, before=drop))

    assert segment_names(provider) == ["Keep"]
    assert live_segment(provider, "Keep") == keep


@pytest.mark.parametrize("action", [Action.UPDATE_SEGMENT, Action.DELETE_SEGMENT])
def test_reference_change_of_a_gone_segment_is_not_found(
    provider: ReferenceProvider, action: Action
) -> None:
    create_list(provider)
    live = create_segment(provider, make_segment("S"))
    provider.apply(change(Action.DELETE_SEGMENT, before=live))
    after = make_segment("S") if action is Action.UPDATE_SEGMENT else None

    with pytest.raises(NotFound, match=r"segment 'S' \(id \d+\) no longer exists in list"):
        provider.apply(change(action, before=live, after=after))


@pytest.mark.parametrize("segment_id", ["999", "not-a-number"])
def test_reference_unknown_segment_id_is_not_found(
    provider: ReferenceProvider, segment_id: str
) -> None:
    create_list(provider)
    with pytest.raises(NotFound):
        provider.apply(change(Action.DELETE_SEGMENT, before=LiveSegment(id=segment_id, name="S")))


def test_reference_segment_of_another_list_is_not_found(provider: ReferenceProvider) -> None:
    create_list(provider, "A")
    create_list(provider, "B")
    in_a = create_segment(provider, make_segment("S"), "A")

    with pytest.raises(NotFound, match="no longer exists in list 'B'"):
        provider.apply(change(Action.DELETE_SEGMENT, "B", before=in_a))
    assert segment_names(provider, "A") == ["S"]


def test_reference_deleted_ids_are_never_reused(provider: ReferenceProvider) -> None:
    create_list(provider)
    first = create_segment(provider, make_segment("S"))
    provider.apply(change(Action.DELETE_SEGMENT, before=first))
    second = create_segment(provider, make_segment("S"))
    assert int(second.id) > int(first.id)


def test_reference_refuses_unsupported_and_incomplete_changes(provider: ReferenceProvider) -> None:
    create_list(provider)
    with pytest.raises(ProviderError, match="cannot add_rule_group"):
        provider.apply(change(Action.ADD_RULE_GROUP, after=make_segment("S")))
    with pytest.raises(ProviderError, match="lacks the declared segment"):
        provider.apply(change(Action.CREATE_SEGMENT))


def test_reference_failed_change_writes_nothing(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "state.db"))
    with pytest.raises(ConflictError), store.write() as tx:
        list_id = tx.insert_list("News")
        tx.insert_segment(list_id, "S", "all", "[]", "{}")
        tx.insert_segment(list_id, "S", "all", "[]", "{}")  # UNIQUE(list_id, name)
    with store.read() as tx:
        assert (tx.lists(None), tx.segments(None)) == ([], [])
    store.close()
