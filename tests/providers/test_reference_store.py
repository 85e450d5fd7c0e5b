"""The reference store as a file: settings, creation, schema versions and durability."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from providers.reference import ReferenceProvider, ReferenceSettings
from providers.reference import store as store_module
from providers.reference.schema import MIGRATIONS, SCHEMA_VERSION, Migration, migrate
from providers.reference.store import Store
from reconciler.errors import ConflictError, ProviderError
from reconciler.model import (
    BEHAVIOUR_EVENTS,
    FIELD_OPERATORS,
    FIELD_TYPES,
    MEMBERSHIP_OPERATORS,
    OPERATORS_BY_TYPE,
    LiveState,
)
from reconciler.plan import Action
from reconciler.provider import ProviderContext, Scope
from reconciler.registry import load_registry
from tests.factories import make_segment
from tests.providers.reference_support import (
    TARGET,
    create_list,
    create_segment,
    make_provider,
    opened,
    segment_names,
)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ReferenceProvider]:
    with opened(tmp_path) as provider:
        yield provider


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
        create_list(provider)
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
    create_list(provider)
    store = Store.open(str(tmp_path / "state.db"))

    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 1  # NORMAL: a commit waits for the log write only
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
    with opened(tmp_path) as provider:
        create_list(provider)
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


# -- a missing store -------------------------------------------------------------------


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.name != "home")


@pytest.mark.parametrize("path", ["state.db", "nested/dir/state.db"])
def test_reference_fetch_of_a_missing_store_creates_nothing(tmp_path: Path, path: str) -> None:
    messages: list[str] = []
    provider = make_provider(tmp_path, path, progress=messages.append)

    assert provider.fetch(Scope()) == LiveState()
    assert provider.fetch(Scope(lists=frozenset({"News"}))) == LiveState()
    provider.close()

    assert files_under(tmp_path) == []
    assert (
        messages
        == [
            f"{TARGET}: the reference store {path!r} does not exist yet (at {tmp_path / path}); "
            "reading it as empty, and apply will create it there"
        ]
        * 2
    )


def test_reference_missing_store_note_shows_an_absolute_path_once(tmp_path: Path) -> None:
    messages: list[str] = []
    absolute = str(tmp_path / "typo.db")
    with opened(tmp_path) as other:
        create_list(other)  # the store meant exists, at another path
    provider = make_provider(tmp_path, absolute, progress=messages.append)

    assert provider.fetch(Scope()) == LiveState()

    assert messages == [
        f"{TARGET}: the reference store {absolute!r} does not exist yet; "
        "reading it as empty, and apply will create it there"
    ]
    assert not Path(absolute).exists()


def test_reference_apply_after_a_missing_fetch_creates_the_store(tmp_path: Path) -> None:
    with opened(tmp_path, "nested/dir/state.db") as provider:
        provider.fetch(Scope())
        create_list(provider)
        create_segment(provider, make_segment("S"))
        assert segment_names(provider) == ["S"]
    assert (tmp_path / "nested" / "dir" / "state.db").is_file()


def test_reference_store_created_by_another_run_is_read(tmp_path: Path) -> None:
    with opened(tmp_path) as reader:
        assert reader.fetch(Scope()) == LiveState()
        with opened(tmp_path) as writer:
            create_list(writer)
        assert [lst.name for lst in reader.fetch(Scope()).lists] == ["News"]


def test_reference_open_without_create_never_makes_a_file(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="unable to open"):
        Store.open(str(tmp_path / "missing.db"), create=False)
    assert files_under(tmp_path) == []


def test_reference_open_without_create_finds_a_path_with_uri_characters(tmp_path: Path) -> None:
    odd = tmp_path / "a b?c#d%20e&mode=ro" / "state.db"
    odd.parent.mkdir()
    with opened(odd.parent) as provider:
        create_list(provider)

    store = Store.open(str(odd), create=False)
    with store.read() as tx:
        assert [row.name for row in tx.lists(None)] == ["News"]
    store.close()
    assert sorted(path.name for path in odd.parent.iterdir()) == ["state.db"]


# -- durability ------------------------------------------------------------------------


def test_reference_a_crash_keeps_every_applied_change(tmp_path: Path) -> None:
    """What a killed process leaves: the files as they are, never closed or checkpointed."""
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    with opened(tmp_path) as provider:
        create_list(provider)
        for name in ("A", "B", "C"):
            create_segment(provider, make_segment(name))
        assert (tmp_path / "state.db-wal").stat().st_size > 0  # not yet checkpointed
        for name in ("state.db", "state.db-wal"):
            shutil.copy(tmp_path / name, crashed / name)

    with opened(crashed) as survivor:
        assert segment_names(survivor) == ["A", "B", "C"]


def test_reference_close_checkpoints_the_log_into_the_file(tmp_path: Path) -> None:
    with opened(tmp_path) as provider:
        create_list(provider)
        create_segment(provider, make_segment("S"))
        assert (tmp_path / "state.db-wal").exists()

    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "state.db"]
    with sqlite3.connect(f"file:{tmp_path / 'state.db'}?immutable=1", uri=True) as raw:
        assert raw.execute("SELECT name FROM segments").fetchall() == [("S",)]
    raw.close()
