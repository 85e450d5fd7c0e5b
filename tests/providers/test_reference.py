"""The reference backend against a real SQLite file: round-trips, changes, races, schema."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydantic
import pytest

from providers.reference import ReferenceProvider, ReferenceSettings
from providers.reference import store as store_module
from providers.reference.schema import MIGRATIONS, SCHEMA_VERSION, Migration, migrate
from providers.reference.store import Store
from reconciler.errors import ConflictError, NotFound, ProviderError
from reconciler.model import (
    BEHAVIOUR_EVENTS,
    FIELD_OPERATORS,
    FIELD_TYPES,
    MEMBERSHIP_OPERATORS,
    OPERATORS_BY_TYPE,
    FieldDef,
    LiveSegment,
    LiveState,
    Segment,
)
from reconciler.plan import Action, Change
from reconciler.provider import ProviderContext, Scope
from reconciler.registry import load_registry
from reconciler.rules import normalise
from tests.factories import make_group, make_rule, make_segment

TARGET = "local"


def make_provider(base_dir: Path, path: str = "state.db") -> ReferenceProvider:
    return ReferenceProvider(
        TARGET, ReferenceSettings(path=path), ProviderContext(base_dir=base_dir)
    )


@contextmanager
def opened(base_dir: Path, path: str = "state.db") -> Iterator[ReferenceProvider]:
    provider = make_provider(base_dir, path)
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ReferenceProvider]:
    with opened(tmp_path) as provider:
        yield provider


def change(action: Action, list_name: str = "News", **values: Any) -> Change:
    segment = values.get("after") or values.get("before")
    name = segment.name if segment is not None else None
    return Change(action=action, target=TARGET, list=list_name, segment=name, **values)


def create_list(provider: ReferenceProvider, name: str = "News") -> None:
    provider.apply(change(Action.CREATE_LIST, name))


def create_segment(
    provider: ReferenceProvider, segment: Segment, list_name: str = "News"
) -> LiveSegment:
    provider.apply(change(Action.CREATE_SEGMENT, list_name, after=segment))
    return live_segment(provider, segment.name, list_name)


def live_segment(provider: ReferenceProvider, name: str, list_name: str = "News") -> LiveSegment:
    state = provider.fetch(Scope(lists=frozenset({list_name})))
    (live_list,) = state.lists
    (found,) = [segment for segment in live_list.segments if segment.name == name]
    return found


def segment_names(provider: ReferenceProvider, list_name: str = "News") -> list[str]:
    (live_list,) = provider.fetch(Scope(lists=frozenset({list_name}))).lists
    return [segment.name for segment in live_list.segments]


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


def test_reference_fetch_of_an_empty_store_is_empty(provider: ReferenceProvider) -> None:
    assert provider.fetch(Scope()) == LiveState()


def test_reference_fetch_reports_progress(tmp_path: Path) -> None:
    messages: list[str] = []
    context = ProviderContext(base_dir=tmp_path, progress=messages.append)
    provider = ReferenceProvider(TARGET, ReferenceSettings(), context)
    provider.fetch(Scope())
    provider.close()
    assert messages == [f"{TARGET}: read 0 lists and 0 segments from {provider.location}"]


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


# -- settings and files ----------------------------------------------------------------


def test_reference_capabilities_cover_the_whole_language() -> None:
    capabilities = ReferenceProvider.capabilities
    assert capabilities.shape == "tree"
    assert capabilities.operators == OPERATORS_BY_TYPE
    every = set().union(*capabilities.operators.values())
    assert every == set(FIELD_OPERATORS)
    assert capabilities.events == frozenset(BEHAVIOUR_EVENTS)
    assert capabilities.membership == frozenset(MEMBERSHIP_OPERATORS)
    assert capabilities.within and capabilities.native
    assert capabilities.field_types == frozenset(FIELD_TYPES)
    assert Action.ADD_RULE_GROUP not in capabilities.changes
    assert len(capabilities.changes) == 5


def test_reference_is_registered_by_entry_point() -> None:
    assert load_registry()["reference"] is ReferenceProvider


def test_reference_settings_forbid_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError):
        ReferenceSettings.model_validate({"path": "x.db", "api_key": "secret"})
    assert ReferenceSettings().path == ".reconciler/state.db"


def test_reference_relative_path_starts_at_base_dir(tmp_path: Path) -> None:
    with opened(tmp_path, "nested/dir/state.db") as provider:
        assert not (tmp_path / "nested").exists()  # nothing is opened before first use
        provider.fetch(Scope())
    assert (tmp_path / "nested" / "dir" / "state.db").is_file()


def test_reference_accepts_settings_of_another_model(tmp_path: Path) -> None:
    class Loose(pydantic.BaseModel):
        path: str

    provider = ReferenceProvider(TARGET, Loose(path="x.db"), ProviderContext(base_dir=tmp_path))
    assert provider.location == str(tmp_path / "x.db")


def test_reference_in_memory_store(tmp_path: Path) -> None:
    with opened(tmp_path, ":memory:") as provider:
        create_list(provider)
        assert segment_names(provider) == []
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_reference_close_then_reopen(provider: ReferenceProvider) -> None:
    create_list(provider)
    provider.close()
    assert [lst.name for lst in provider.fetch(Scope()).lists] == ["News"]


def test_reference_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_text("hello, this is not SQLite" * 100)
    with pytest.raises(ProviderError, match="cannot be used as a reference store"):
        make_provider(tmp_path).fetch(Scope())


def test_reference_uses_wal_and_foreign_keys(tmp_path: Path, provider: ReferenceProvider) -> None:
    provider.fetch(Scope())
    store = Store.open(str(tmp_path / "state.db"))

    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("foreign_keys") == 1
    assert store.pragma("busy_timeout") == 10_000
    with pytest.raises(ConflictError, match="conflicts with stored data"), store.write() as tx:
        tx.insert_segment(12345, "orphan", "all", "[]", "{}")
    store.close()


def test_reference_waits_then_reports_a_locked_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_SECONDS", 0.05)
    holder = Store.open(str(tmp_path / "state.db"))
    waiter = Store.open(str(tmp_path / "state.db"))

    with holder.write(), pytest.raises(ConflictError, match="locked by another run"):  # noqa: SIM117
        with waiter.write():
            pass
    holder.close()
    waiter.close()


# -- schema versions -------------------------------------------------------------------

ADD_NOTES = Migration(
    version=2,
    summary="segment notes",
    statements=("ALTER TABLE segments ADD COLUMN notes TEXT NOT NULL DEFAULT ''",),
)


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        version = int(raw.execute("PRAGMA user_version").fetchone()[0])
    raw.close()
    return version


def test_reference_new_file_gets_the_current_schema(tmp_path: Path) -> None:
    make_provider(tmp_path).fetch(Scope())
    assert user_version(tmp_path / "state.db") == SCHEMA_VERSION == len(MIGRATIONS)


def test_reference_opens_an_existing_empty_database(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "state.db").close()  # version 0: no tables yet
    with opened(tmp_path) as provider:
        create_list(provider)
    assert user_version(tmp_path / "state.db") == SCHEMA_VERSION


def test_reference_old_version_is_migrated_keeping_data(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
        create_segment(provider, make_segment("S"))

    store = Store.open(str(tmp_path / "state.db"), migrations=(*MIGRATIONS, ADD_NOTES))
    store.close()

    assert user_version(tmp_path / "state.db") == 2
    with sqlite3.connect(tmp_path / "state.db") as raw:
        assert raw.execute("SELECT name, notes FROM segments").fetchall() == [("S", "")]
    raw.close()


def test_reference_migrations_run_all_or_nothing(tmp_path: Path) -> None:
    broken = Migration(version=3, summary="broken", statements=("CREATE TABLE x (",))
    raw = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    migrate(raw, "state.db")

    with pytest.raises(sqlite3.Error):
        migrate(raw, "state.db", (*MIGRATIONS, ADD_NOTES, broken))
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in raw.execute("PRAGMA table_info(segments)")]
    assert "notes" not in columns
    raw.close()


def test_reference_refuses_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()

    with pytest.raises(ProviderError, match="upgrade segment-reconciler") as caught:
        make_provider(tmp_path).fetch(Scope())

    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)
    assert user_version(path) == SCHEMA_VERSION + 1
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert raw.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    raw.close()


def test_reference_migrations_must_be_numbered_in_order() -> None:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(ValueError, match="numbered"):
        migrate(raw, ":memory:", (ADD_NOTES,))
    raw.close()


# -- concurrent runs -------------------------------------------------------------------

RACERS = 2
SEGMENTS = 25


def outcome(provider: ReferenceProvider, one: Change) -> str:
    try:
        provider.apply(one)
    except ConflictError:
        return "conflict"
    except NotFound:
        return "not_found"
    return "applied"


Work = Callable[[ReferenceProvider, int], list[Change]]


def race(tmp_path: Path, work: Work) -> list[list[str]]:
    """Each thread, with its own provider on the same file, applies its list of changes;
    the threads start every change at the same moment. Returns each thread's outcomes."""
    barrier = threading.Barrier(RACERS)
    results: list[list[str]] = [[] for _ in range(RACERS)]

    def run(index: int) -> None:
        with opened(tmp_path) as provider:
            provider.fetch(Scope())  # open and migrate before the start line
            for one in work(provider, index):
                barrier.wait()
                results[index].append(outcome(provider, one))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_consistent(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        duplicates = raw.execute(
            "SELECT list_id, name FROM segments GROUP BY list_id, name HAVING count(*) > 1"
        ).fetchall()
        assert duplicates == []
    raw.close()


def winners(results: list[list[str]]) -> list[list[str]]:
    """Per change, the outcomes of all racers, sorted."""
    return [sorted(column) for column in zip(*results, strict=True)]


def test_reference_racing_creates_have_one_winner_each(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)

    def work(provider: ReferenceProvider, index: int) -> list[Change]:
        return [
            change(
                Action.CREATE_SEGMENT,
                after=make_segment(f"S{n}", make_rule("by", "equals", index)),
            )
            for n in range(SEGMENTS)
        ]

    results = race(tmp_path, work)

    assert winners(results) == [["applied", "conflict"]] * SEGMENTS
    assert_consistent(tmp_path / "state.db")
    with opened(tmp_path) as provider:
        (live_list,) = provider.fetch(Scope()).lists
    stored = {segment.name: segment.rules for segment in live_list.segments}
    for n in range(SEGMENTS):
        (winner,) = [i for i in range(RACERS) if results[i][n] == "applied"]
        assert stored[f"S{n}"] == (make_rule("by", "equals", winner),)


def test_reference_racing_updates_and_deletes_have_one_winner_each(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
        for n in range(SEGMENTS):
            create_segment(provider, make_segment(f"S{n}"))
        (planned,) = provider.fetch(Scope()).lists

    def work(provider: ReferenceProvider, index: int) -> list[Change]:
        if index == 1:
            return [change(Action.DELETE_SEGMENT, before=before) for before in planned.segments]
        return [
            change(
                Action.UPDATE_SEGMENT,
                before=before,
                after=make_segment(f"{before.name} renamed", make_rule("by", "equals", index)),
            )
            for before in planned.segments
        ]

    updates, deletes = race(tmp_path, work)

    for updated, deleted in zip(updates, deletes, strict=True):
        assert sorted([updated, deleted]) in (["applied", "conflict"], ["applied", "not_found"])
    assert_consistent(tmp_path / "state.db")
    with opened(tmp_path) as provider:
        names = segment_names(provider)
    assert len(names) == updates.count("applied")
    assert all(name.endswith(" renamed") for name in names)


def create_in_process(base_dir: str, index: int, barrier: Any, queue: Any) -> None:
    """A second ``apply`` run in its own process: create S0..S9, report each outcome."""
    with opened(Path(base_dir)) as provider:
        provider.fetch(Scope())
        for n in range(10):
            segment = make_segment(f"S{n}", make_rule("by", "equals", index))
            barrier.wait()
            queue.put((index, n, outcome(provider, change(Action.CREATE_SEGMENT, after=segment))))


def test_reference_racing_processes_have_one_winner_each(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(RACERS), context.Queue()
    processes = [
        context.Process(target=create_in_process, args=(str(tmp_path), i, barrier, queue))
        for i in range(RACERS)
    ]
    for process in processes:
        process.start()
    reports = [queue.get(timeout=60) for _ in range(10 * RACERS)]
    for process in processes:
        process.join(timeout=60)

    assert [process.exitcode for process in processes] == [0] * RACERS
    by_segment: dict[int, list[str]] = {}
    for _, n, result in reports:
        by_segment.setdefault(n, []).append(result)
    assert {n: sorted(results) for n, results in by_segment.items()} == {
        n: ["applied", "conflict"] for n in range(10)
    }
    assert_consistent(tmp_path / "state.db")
