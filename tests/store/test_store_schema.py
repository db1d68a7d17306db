"""Opening a database file: schema creation, WAL, the migrations table, reopening, refusals.

Every test here uses a real SQLite file under `tmp_path`; nothing is mocked.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import twin.store
from twin.store import SCHEMA_VERSION, Store, StoreError

TABLES = {"schema_migrations", "accounts", "tokens", "vehicle_secrets", "states", "push_seq", "push_queue"}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_open_creates_the_schema_in_wal_mode(db_path: Path) -> None:
    store = Store.open(db_path)
    try:
        assert db_path.exists()
        assert store.schema_version == SCHEMA_VERSION == 1
        assert TABLES <= tables(db_path)
        conn = sqlite3.connect(db_path)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT version, description, applied_at FROM schema_migrations").fetchall()
        conn.close()
        assert [r[0] for r in rows] == [1] and rows[0][1] and rows[0][2] > 0
    finally:
        store.close()


def test_reopen_keeps_data_and_applies_no_migration_twice(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.create_account("a@example.com", "pw-one")
    with sqlite3.connect(db_path) as conn:
        (applied_at,) = conn.execute("SELECT applied_at FROM schema_migrations WHERE version = 1").fetchone()
    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.accounts() == ["a@example.com"]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall() == [(1, applied_at)]


def test_a_file_from_a_newer_twin_is_refused(db_path: Path) -> None:
    Store.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this twin's") as info:
        Store.open(db_path)
    assert "upgrade twin" in info.value.message


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"certainly not sqlite " * 100)
    with pytest.raises(StoreError, match="not a usable twin database"):
        Store.open(db_path)


def test_a_closed_store_says_so(db_path: Path) -> None:
    store = Store.open(db_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.accounts()


def test_the_public_surface() -> None:
    """Like trio's test_exports: the names the hub may use, all from private modules."""
    assert sorted(twin.store.__all__) == [
        "Engine", "KINDS", "RedisEngine", "SCHEMA_VERSION", "SqliteEngine", "StateWriter", "Store", "StoreError",
        "StoreStatistics", "StoreUnavailable", "WriterStatistics", "as_engine", "kind_of", "normalise_email", "open_engine",
        "open_state_writer", "state_from_bytes", "state_from_plain", "state_to_bytes", "state_to_plain",
    ]
    for name in twin.store.__all__:
        obj = getattr(twin.store, name)
        if callable(obj):
            assert obj.__module__.startswith("twin.store._"), name
