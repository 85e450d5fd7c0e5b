"""SQL access to the reference store: connections, transactions, rows. No domain knowledge.

``Store.open`` connects with the pragmas the backend relies on (WAL journal with
``synchronous=NORMAL``, foreign keys, a busy timeout so a second writer waits instead of
failing) and runs the migrations of ``schema.py``; with ``create=False`` it opens only a
file that exists, never making one. Every statement then runs inside ``Store.read()`` (a
deferred transaction: one consistent snapshot for several queries) or ``Store.write()``
(``BEGIN IMMEDIATE``: the write lock is taken up front, so two writers serialise and
neither sees the other's half-done work). A ``Tx`` is the only way to run SQL; rows come
back as small frozen dataclasses whose JSON columns are still text.

Durability: in WAL mode with ``synchronous=NORMAL`` a commit appends the transaction to
the write-ahead log without waiting for the disk; the log is flushed to disk before each
checkpoint (SQLite runs one every 1,000 pages, and when the last connection closes). So a
committed transaction survives the process crashing or being killed; after a power loss
or an operating-system crash the store is still consistent and holds every transaction up
to some point, each whole, but may lack the most recent ones. Closing that gap would take
one ``fsync`` per change (``synchronous=FULL``), which makes a large apply several times
slower.

This module is the edge where ``sqlite3.Error`` is translated, once, into the core's
exceptions (``translate_errors``); nothing above it sees a sqlite3 exception.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConflictError, ProviderError

from .schema import MIGRATIONS, Migration, migrate, refuse_newer, schema_version

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "FieldRow",
    "ListRow",
    "SegmentRow",
    "Store",
    "Tx",
    "translate_errors",
]

BUSY_TIMEOUT_SECONDS = 10.0
"""How long a writer waits for another run's transaction before giving up."""

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


@dataclass(frozen=True, slots=True)
class ListRow:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class FieldRow:
    id: int
    list_id: int
    name: str
    type: str
    options: str
    """JSON text: an array of strings."""


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    list_id: int
    name: str
    match: str
    rules: str
    """JSON text: an array of rule objects."""
    options: str
    """JSON text: an object."""
    revision: int


@contextmanager
def translate_errors(location: str) -> Iterator[None]:
    """Re-raise ``sqlite3.Error`` as the core's exceptions (``raise ... from exc``)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"{location}: the change conflicts with stored data ({exc})") from exc
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES:
            raise ConflictError(
                f"{location} is locked by another run (waited {BUSY_TIMEOUT_SECONDS:g} s); "
                f"try again when it has finished"
            ) from exc
        raise ProviderError(f"{location}: {exc}") from exc
    except sqlite3.Error as exc:
        raise ProviderError(f"{location} cannot be used as a reference store: {exc}") from exc


_SEGMENT_COLUMNS = "s.id, s.list_id, s.name, s.match, s.rules, s.options, s.revision"
_IN_SCOPE = "(? IS NULL OR l.name IN (SELECT value FROM json_each(?)))"


class Tx:
    """The statements of the store, usable only inside ``Store.read()``/``Store.write()``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # -- reads -----------------------------------------------------------------------

    def lists(self, names: Sequence[str] | None) -> list[ListRow]:
        """The lists with these names (every list for ``None``), by name."""
        sql = f"SELECT l.id, l.name FROM lists l WHERE {_IN_SCOPE} ORDER BY l.name"
        return [ListRow(*row) for row in self._conn.execute(sql, _scope_args(names))]

    def fields(self, names: Sequence[str] | None) -> list[FieldRow]:
        """The fields of those lists, in creation order."""
        sql = (
            "SELECT f.id, f.list_id, f.name, f.type, f.options FROM fields f "
            f"JOIN lists l ON l.id = f.list_id WHERE {_IN_SCOPE} ORDER BY f.id"
        )
        return [FieldRow(*row) for row in self._conn.execute(sql, _scope_args(names))]

    def segments(self, names: Sequence[str] | None) -> list[SegmentRow]:
        """The segments of those lists, by list and name."""
        return list(self.iter_segments(names))

    def iter_segments(self, names: Sequence[str] | None) -> Iterator[SegmentRow]:
        """The segments of those lists, by list id and name, one row at a time (10,000
        segments' rule texts need not be in memory at once)."""
        sql = (
            f"SELECT {_SEGMENT_COLUMNS} FROM segments s "
            f"JOIN lists l ON l.id = s.list_id WHERE {_IN_SCOPE} ORDER BY s.list_id, s.name"
        )
        for row in self._conn.execute(sql, _scope_args(names)):
            yield SegmentRow(*row)

    def find_list(self, name: str) -> ListRow | None:
        row = self._conn.execute("SELECT id, name FROM lists WHERE name = ?", (name,)).fetchone()
        return ListRow(*row) if row else None

    def find_field(self, list_id: int, name: str) -> FieldRow | None:
        """The field of that name, compared case-insensitively."""
        row = self._conn.execute(
            "SELECT id, list_id, name, type, options FROM fields "
            "WHERE list_id = ? AND name = ? COLLATE NOCASE",
            (list_id, name),
        ).fetchone()
        return FieldRow(*row) if row else None

    def find_segment(self, list_id: int, name: str) -> SegmentRow | None:
        row = self._conn.execute(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments s WHERE s.list_id = ? AND s.name = ?",
            (list_id, name),
        ).fetchone()
        return SegmentRow(*row) if row else None

    def get_segment(self, segment_id: int) -> SegmentRow | None:
        row = self._conn.execute(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments s WHERE s.id = ?", (segment_id,)
        ).fetchone()
        return SegmentRow(*row) if row else None

    # -- writes ----------------------------------------------------------------------

    def insert_list(self, name: str) -> int:
        return self._insert("INSERT INTO lists (name) VALUES (?)", (name,))

    def insert_field(self, list_id: int, name: str, type_: str, options: str) -> int:
        return self._insert(
            "INSERT INTO fields (list_id, name, type, options) VALUES (?, ?, ?, ?)",
            (list_id, name, type_, options),
        )

    def insert_segment(self, list_id: int, name: str, match: str, rules: str, options: str) -> int:
        return self._insert(
            "INSERT INTO segments (list_id, name, match, rules, options) VALUES (?, ?, ?, ?, ?)",
            (list_id, name, match, rules, options),
        )

    def insert_segment_into(
        self, list_name: str, name: str, match: str, rules: str, options: str
    ) -> bool:
        """Insert a segment into the list named ``list_name``, in one statement that reads
        nothing first: whether it was inserted. ``False`` when no list has that name or the
        list already holds a segment of that name (for the caller to tell which); the list
        is the one ``find_list`` finds, and a constraint or trigger refusing the row raises
        as any statement does.
        """
        cursor = self._conn.execute(
            "INSERT INTO segments (list_id, name, match, rules, options) "
            "SELECT l.id, ?, ?, ?, ? FROM (SELECT id FROM lists WHERE name = ? LIMIT 1) AS l "
            "WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.list_id = l.id AND s.name = ?)",
            (name, match, rules, options, list_name, name),
        )
        return cursor.rowcount == 1

    def update_segment(
        self, segment_id: int, name: str, match: str, rules: str, options: str
    ) -> None:
        """Rewrite a segment in one statement and bump its revision."""
        self._conn.execute(
            "UPDATE segments SET name = ?, match = ?, rules = ?, options = ?, "
            "revision = revision + 1 WHERE id = ?",
            (name, match, rules, options, segment_id),
        )

    def delete_segment(self, segment_id: int) -> None:
        self._conn.execute("DELETE FROM segments WHERE id = ?", (segment_id,))

    def _insert(self, sql: str, args: tuple[object, ...]) -> int:
        rowid = self._conn.execute(sql, args).lastrowid
        assert rowid is not None
        return rowid


def _scope_args(names: Sequence[str] | None) -> tuple[str | None, str | None]:
    if names is None:
        return (None, None)
    text = json.dumps(list(names))
    return (text, text)


class Store:
    """One connection to a reference store file (or ``:memory:``), safe across threads."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.location = location

    @classmethod
    def open(
        cls,
        location: str,
        migrations: Sequence[Migration] = MIGRATIONS,
        *,
        create: bool = True,
    ) -> Store:
        """Connect, set the pragmas, refuse a newer schema, and run pending migrations.

        With ``create=False`` a file that does not exist is an error, not a new store."""
        with translate_errors(location):
            conn = sqlite3.connect(
                location if create else _existing_file_uri(location),
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                uri=not create,
            )
            try:
                _configure(conn, location, migrations)
            except BaseException:
                conn.close()
                raise
        return cls(conn, location)

    def read(self) -> AbstractContextManager[Tx]:
        """A deferred transaction: one consistent snapshot for several queries."""
        return self._transaction("BEGIN")

    def write(self) -> AbstractContextManager[Tx]:
        """An immediate transaction: the write lock first, then commit or roll back all."""
        return self._transaction("BEGIN IMMEDIATE")

    def pragma(self, name: str) -> object:
        """The value of one pragma on this connection (for diagnostics and tests)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        with self._lock, translate_errors(self.location):
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    def close(self) -> None:
        with self._lock, translate_errors(self.location):
            self._conn.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Tx]:
        with self._lock, translate_errors(self.location):
            self._conn.execute(begin)
            try:
                yield Tx(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise


def _existing_file_uri(location: str) -> str:
    """A URI that opens ``location`` for reading and writing, never creating it."""
    return f"{Path(location).absolute().as_uri()}?mode=rw"


def _configure(conn: sqlite3.Connection, location: str, migrations: Sequence[Migration]) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    # Refuse a newer file before changing anything in it, even its journal mode.
    refuse_newer(schema_version(conn), migrations[-1].version, location)
    conn.execute("PRAGMA journal_mode = WAL")
    # Per connection: a commit waits for the log write, not for the disk (see the docstring).
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn, location, migrations)
