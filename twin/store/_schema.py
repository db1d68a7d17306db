"""The database schema as an ordered list of migrations, applied once each, in order.

How this part works: `schema_migrations` records every migration applied to the file (its
version, what it did, when). Opening a file applies the missing ones, each in its own
transaction together with its record, so a crash mid-upgrade leaves the file at the previous
version. A file written by a newer `twin` (a version past the last one here) is refused rather
than guessed at. To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Final

from ._errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

#: (version, description, statements). Versions start at 1 and increase by one.
MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "accounts, tokens, vehicle secrets, actor states, per-account push queue",
        (
            """CREATE TABLE accounts (
                account    TEXT PRIMARY KEY,           -- the normalised email
                salt       BLOB NOT NULL,
                key        BLOB NOT NULL,              -- scrypt(password, salt, n, r, p)
                n          INTEGER NOT NULL,
                r          INTEGER NOT NULL,
                p          INTEGER NOT NULL,
                created_at REAL NOT NULL
            ) STRICT""",
            """CREATE TABLE tokens (
                digest     BLOB PRIMARY KEY,           -- sha256 of the token
                account    TEXT NOT NULL REFERENCES accounts(account) ON DELETE CASCADE,
                issued_at  REAL NOT NULL
            ) STRICT, WITHOUT ROWID""",
            "CREATE INDEX tokens_by_account ON tokens(account)",
            """CREATE TABLE vehicle_secrets (
                vehicle_id TEXT PRIMARY KEY,
                digest     BLOB NOT NULL,              -- sha256 of the secret
                created_at REAL NOT NULL
            ) STRICT, WITHOUT ROWID""",
            """CREATE TABLE states (
                address    TEXT PRIMARY KEY,           -- "car:1", "user:alice", "operator"
                kind       TEXT NOT NULL CHECK (kind IN ('vehicle', 'user', 'operator')),
                data       BLOB NOT NULL,              -- msgpack, see twin/store/_codec.py
                saved_at   REAL NOT NULL
            ) STRICT""",
            """CREATE TABLE push_seq (
                account    TEXT PRIMARY KEY,
                last_seq   INTEGER NOT NULL            -- never goes down, even when all is acked
            ) STRICT, WITHOUT ROWID""",
            """CREATE TABLE push_queue (
                account    TEXT NOT NULL,
                seq        INTEGER NOT NULL,
                frame      BLOB NOT NULL,
                queued_at  REAL NOT NULL,
                PRIMARY KEY (account, seq)
            ) STRICT, WITHOUT ROWID""",
        ),
    ),
)

SCHEMA_VERSION: Final[int] = MIGRATIONS[-1][0]

_BOOKKEEPING = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
) STRICT"""


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema of `conn` (in autocommit mode) up to SCHEMA_VERSION; return that version."""
    conn.execute(_BOOKKEEPING)
    current = current_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {current}, newer than this twin's {SCHEMA_VERSION}; "
            "upgrade twin, or open a backup made before the upgrade"
        )
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # re-read under the write lock: another process may have migrated meanwhile
            if current_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current_version(conn)


def current_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(version)
