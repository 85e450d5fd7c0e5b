"""The reference store's schema and its ordered migrations.

The schema version lives in SQLite's ``PRAGMA user_version``: 0 is an empty file, and
migration *n* takes a database from version *n - 1* to *n*. ``migrate`` applies every
pending migration in one ``BEGIN IMMEDIATE`` transaction, so a crash or a second process
opening the same file never sees half a schema. A file written by a newer version (its
``user_version`` is past the last migration known here) is refused, never touched.

To change the schema, append a ``Migration`` to ``MIGRATIONS``; never edit a released one.
SQLite rebuilds tables for most column changes: create the new table, copy, drop, rename.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import ProviderError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate", "refuse_newer", "schema_version"]


@dataclass(frozen=True)
class Migration:
    """One schema step: the SQL statements that take version ``version - 1`` to ``version``."""

    version: int
    summary: str
    statements: tuple[str, ...]


_TABLES = Migration(
    version=1,
    summary="lists, fields and segments",
    statements=(
        """
        CREATE TABLE lists (
            id   INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        )
        """,
        """
        CREATE TABLE fields (
            id      INTEGER PRIMARY KEY,
            list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE RESTRICT,
            name    TEXT NOT NULL,
            type    TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '[]',
            UNIQUE (list_id, name COLLATE NOCASE)
        )
        """,
        # AUTOINCREMENT: a deleted segment's id is never reused, so a stale plan can never
        # address a different segment that happens to get the same id.
        """
        CREATE TABLE segments (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            list_id  INTEGER NOT NULL REFERENCES lists (id) ON DELETE RESTRICT,
            name     TEXT NOT NULL,
            match    TEXT NOT NULL CHECK (match IN ('all', 'any')),
            rules    TEXT NOT NULL,
            options  TEXT NOT NULL DEFAULT '{}',
            revision INTEGER NOT NULL DEFAULT 1,
            UNIQUE (list_id, name)
        )
        """,
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_TABLES,)
SCHEMA_VERSION = MIGRATIONS[-1].version
"""The schema version this code writes and reads."""


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the database file (0 for a new, empty file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def refuse_newer(version: int, latest: int, location: str) -> None:
    """Raise if the file was written by a newer schema than ``latest``."""
    if version > latest:
        raise ProviderError(
            f"{location} has schema version {version}, but this version of the reference "
            f"backend only knows versions up to {latest}; upgrade segment-reconciler to use "
            f"this file (it was left untouched)"
        )


def migrate(
    conn: sqlite3.Connection,
    location: str,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Bring the database up to the last of ``migrations``; return the version reached.

    ``conn`` must be in autocommit mode (``isolation_level=None``); the migrations run in
    one immediate transaction, so concurrent openers wait for each other and the schema
    is either fully migrated or not at all. Raises ``ProviderError`` for a newer file.
    """
    _check_sequence(migrations)
    latest = migrations[-1].version
    current = schema_version(conn)
    refuse_newer(current, latest, location)
    if current == latest:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)  # another process may have migrated meanwhile
        refuse_newer(current, latest, location)
        for migration in migrations[current:]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(latest)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return latest


def _check_sequence(migrations: Sequence[Migration]) -> None:
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, ... in order, not {versions}")
