"""`Store`: the hub's one SQLite file (WAL), so nothing is lost across a restart.

How this part works: one connection in autocommit mode, shared by the event-loop thread and
worker threads (`check_same_thread=False`), every use under one lock; every write is one
explicit `BEGIN IMMEDIATE ... COMMIT`, so a method either happened completely or not at all.
With `synchronous=FULL` a write is on disk when its method returns: that is the meaning of
"durable" throughout. Slow work (scrypt, msgpack) runs before the lock is taken.
`secure_delete` zeroes what a delete or an overwrite frees, so a wiped car's old state or an
acknowledged push is not left readable in the file.

What lives here: accounts (scrypt-hashed passwords), session tokens and vehicle link secrets
(SHA-256 digests), the latest state of every actor (msgpack, see `_codec.py`), and each
account's queue of pushes not yet acknowledged by any of its apps.
"""

from __future__ import annotations

import hmac
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import attrs

from ._accounts import account_exists, check_keep, login_id, login_matches, new_account, no_such_account, normalise_email
from ._codec import KINDS, decode_stored, state_to_bytes
from ._errors import StoreError
from ._schema import migrate
from ._secrets import new_secret, secret_digest

__all__ = ["LOAD_PAGE", "Store", "StoreStatistics", "normalise_email"]

#: how many states `load_states` reads at a time
LOAD_PAGE: Final = 1000


@attrs.frozen
class StoreStatistics:
    """What the file holds right now."""

    schema_version: int
    accounts: int
    tokens: int
    vehicle_secrets: int
    states: int
    states_by_kind: Mapping[str, int]
    queued_frames: int
    file_bytes: int


class Store:
    """The embedded database of one hub. Open with `Store.open(path)`; close when done.

    Every method is safe to call from any thread. Account creation and password checks run
    scrypt (tens of milliseconds of CPU): from trio, call them via `trio.to_thread.run_sync`.
    """

    def __init__(self, conn: sqlite3.Connection, path: str, schema_version: int) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.path = path
        self.schema_version = schema_version

    # --- opening and closing

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "Store":
        """Open (creating if needed) the database at `path` and bring its schema up to date."""
        if sqlite3.sqlite_version_info < (3, 37, 0):
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old for the store (needs 3.37 or newer for STRICT tables)")
        where = os.fspath(path)
        try:
            conn = sqlite3.connect(where, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {where}: {exc}; check that the directory exists and is writable") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{where} cannot use WAL journaling (got {mode!r}); put the file on a local disk")
            conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            conn.execute("PRAGMA foreign_keys=ON")
            # a hand-over wipe or an acked alert must not stay readable in freed pages (SPEC p.40)
            conn.execute("PRAGMA secure_delete=ON")
            version = migrate(conn, where)
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreError(f"cannot use {where} right now ({exc}); if another program holds it, stop that program and retry") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{where} is not a usable twin database ({exc}); restore it from a backup or move it away") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, where, version)

    def close(self) -> None:
        """Close the file (checkpointing the WAL). Further calls raise StoreError. Idempotent."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path!r} v{self.schema_version}{'' if self._conn else ' closed'}>"

    # --- accounts and tokens

    def create_account(self, email: str, password: str) -> str:
        """Create an account; return its id (the normalised email).

        Refused with CONFLICT if the account exists, INVALID_VALUE for an unusable email or
        an empty password.
        """
        account, *hashed = new_account(email, password)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO accounts (account, salt, key, n, r, p, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (account, *hashed, time.time()),
                )
        except sqlite3.IntegrityError:
            raise account_exists(account) from None
        return account

    def check_password(self, email: str, password: str) -> str | None:
        """The account id if `password` is right for `email`, else None (same cost either way)."""
        account = login_id(email)
        with self._read() as conn:
            row = conn.execute("SELECT salt, key, n, r, p FROM accounts WHERE account = ?", (account,)).fetchone()
        return account if login_matches(password, row) else None

    def issue_token(self, account: str) -> str:
        """A new session token for `account` (shown once; only its SHA-256 is kept)."""
        token = new_secret()
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO tokens (digest, account, issued_at) VALUES (?, ?, ?)", (secret_digest(token), account, time.time()))
        except sqlite3.IntegrityError:
            raise no_such_account(account) from None
        return token

    def account_for_token(self, token: str) -> str | None:
        """The account a token was issued to, or None if it is unknown or revoked."""
        if not isinstance(token, str):
            return None
        with self._read() as conn:
            row = conn.execute("SELECT account FROM tokens WHERE digest = ?", (secret_digest(token),)).fetchone()
        return None if row is None else str(row[0])

    def revoke_token(self, token: str) -> bool:
        """Forget a token (log out); True if it existed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM tokens WHERE digest = ?", (secret_digest(token),)).rowcount > 0

    def accounts(self) -> list[str]:
        """Every account id, sorted."""
        with self._read() as conn:
            return [row[0] for row in conn.execute("SELECT account FROM accounts ORDER BY account")]

    # --- vehicle link credentials

    def create_vehicle_secret(self, vehicle_id: str) -> str:
        """A new link secret for the car (returned once; replaces any previous one)."""
        secret = new_secret()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO vehicle_secrets (vehicle_id, digest, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (vehicle_id) DO UPDATE SET digest = excluded.digest, created_at = excluded.created_at",
                (vehicle_id, secret_digest(secret), time.time()),
            )
        return secret

    def check_vehicle_secret(self, vehicle_id: str, secret: str) -> bool:
        """Whether `secret` is the car's current link secret (constant-time compare)."""
        if not isinstance(secret, str):
            return False
        with self._read() as conn:
            row = conn.execute("SELECT digest FROM vehicle_secrets WHERE vehicle_id = ?", (vehicle_id,)).fetchone()
        return row is not None and hmac.compare_digest(row[0], secret_digest(secret))

    # --- actor states

    def save_states(self, states: Mapping[str, tuple[str, object]]) -> None:
        """Write many actor states, address -> (kind, state), in one transaction (all or none)."""
        now = time.time()
        rows = [(address, kind, state_to_bytes(kind, state), now) for address, (kind, state) in states.items()]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO states (address, kind, data, saved_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET kind = excluded.kind, data = excluded.data, saved_at = excluded.saved_at",
                rows,
            )

    def delete_states(self, addresses: Iterable[str]) -> int:
        """Forget the states of actors that are gone for good; return how many were stored."""
        with self._write() as conn:
            return sum(conn.execute("DELETE FROM states WHERE address = ?", (a,)).rowcount for a in addresses)

    def load_state(self, address: str) -> tuple[str, object] | None:
        """(kind, state) of one actor, or None if nothing is stored for it."""
        with self._read() as conn:
            row = conn.execute("SELECT kind, data FROM states WHERE address = ?", (address,)).fetchone()
        return None if row is None else (row[0], decode_stored(address, row[0], row[1]))

    def load_states(self) -> Iterator[tuple[str, str, object]]:
        """Every stored (address, kind, state), by address, read a page at a time."""
        after = ""
        while True:
            page = self.load_page(after)
            yield from page
            if len(page) < LOAD_PAGE:
                return
            after = page[-1][0]

    def load_page(self, after: str = "", limit: int | None = None) -> list[tuple[str, str, object]]:
        """The stored (address, kind, state) with address > `after`, by address; at most `limit`
        (default LOAD_PAGE). What `load_states` reads at a time, and what an async engine runs in
        one worker thread."""
        with self._read() as conn:
            page = conn.execute(
                "SELECT address, kind, data FROM states WHERE address > ? ORDER BY address LIMIT ?", (after, limit or LOAD_PAGE)
            ).fetchall()
        return [(address, kind, decode_stored(address, kind, data)) for address, kind, data in page]

    # --- acknowledged delivery of pushes to people's apps

    def enqueue(self, account: str, frame: bytes) -> int:
        """Queue one frame for `account`'s apps; return its sequence number (durable on return)."""
        return self.enqueue_many([(account, frame)])[0]

    def enqueue_many(self, items: Iterable[tuple[str, bytes]], *, keep: int | None = None) -> list[int]:
        """Queue many (account, frame) in one transaction; their sequence numbers, in order.

        With `keep`, an account's queue holds at most its `keep` newest frames: older ones are
        deleted, so an app that never acks cannot grow the file without bound. Its next
        delivery then starts past a gap in the sequence numbers, which tells it pushes were
        dropped.
        """
        check_keep(keep)
        now = time.time()
        items = list(items)
        seqs: list[int] = []
        last: dict[str, int] = {}
        with self._write() as conn:
            for account, frame in items:
                (seq,) = conn.execute(
                    "INSERT INTO push_seq (account, last_seq) VALUES (?, 1)"
                    " ON CONFLICT (account) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
                    (account,),
                ).fetchone()
                conn.execute("INSERT INTO push_queue (account, seq, frame, queued_at) VALUES (?, ?, ?, ?)", (account, seq, bytes(frame), now))
                seqs.append(int(seq))
                last[account] = int(seq)
            if keep is not None:
                for account, seq in last.items():
                    conn.execute("DELETE FROM push_queue WHERE account = ? AND seq <= ?", (account, seq - keep))
        return seqs

    def undelivered(self, account: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        """The frames queued for `account` with seq > `after`, oldest first (at most `limit`)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, frame FROM push_queue WHERE account = ? AND seq > ? ORDER BY seq LIMIT ?",
                (account, after, -1 if limit is None else limit),
            ).fetchall()
        return [(int(seq), bytes(frame)) for seq, frame in rows]

    def ack(self, account: str, upto: int) -> int:
        """An app of `account` has every frame up to `upto`: delete them; return how many."""
        with self._write() as conn:
            return conn.execute("DELETE FROM push_queue WHERE account = ? AND seq <= ?", (account, upto)).rowcount

    def last_seq(self, account: str) -> int:
        """The highest seq ever given to `account` (0 if none), acknowledged or not."""
        with self._read() as conn:
            row = conn.execute("SELECT last_seq FROM push_seq WHERE account = ?", (account,)).fetchone()
        return 0 if row is None else int(row[0])

    # --- inspection

    def statistics(self) -> StoreStatistics:
        with self._read() as conn:
            def count(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            by_kind = {kind: 0 for kind in KINDS}
            by_kind.update(conn.execute("SELECT kind, count(*) FROM states GROUP BY kind").fetchall())
            return StoreStatistics(
                schema_version=self.schema_version,
                accounts=count("SELECT count(*) FROM accounts"),
                tokens=count("SELECT count(*) FROM tokens"),
                vehicle_secrets=count("SELECT count(*) FROM vehicle_secrets"),
                states=sum(by_kind.values()),
                states_by_kind=by_kind,
                queued_frames=count("SELECT count(*) FROM push_queue"),
                file_bytes=sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p)),
            )

    # --- transactions

    def _read(self) -> "_Locked":
        return _Locked(self, write=False)

    def _write(self) -> "_Locked":
        return _Locked(self, write=True)


class _Locked:
    """`with`: hold the store's lock; for writes, one BEGIN IMMEDIATE .. COMMIT (ROLLBACK on error)."""

    __slots__ = ("store", "write")

    def __init__(self, store: Store, *, write: bool) -> None:
        self.store, self.write = store, write

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        conn = self.store._conn
        if conn is None:
            self.store._lock.release()
            raise StoreError(f"the store at {self.store.path} is closed; open it again with Store.open")
        if self.write:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
        return conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn = self.store._conn
        assert conn is not None  # only close() clears it, and close() takes the lock
        try:
            if self.write:
                if exc_type is None:
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.Error as failed:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise _trouble(self.store, failed) from failed
                elif conn.in_transaction:
                    conn.execute("ROLLBACK")
        finally:
            self.store._lock.release()
        if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
            raise _trouble(self.store, exc) from exc


def _trouble(store: Store, exc: sqlite3.Error) -> StoreError:
    return StoreError(
        f"{store.path}: {exc}; nothing was written. Check free disk space and that no other "
        "program holds the file, then retry"
    )
