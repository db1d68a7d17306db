"""`Engine`: what the hub needs of its storage, as async methods, whichever engine holds it.

How this part works: `Engine` is a Protocol with the same methods and meanings as the
embedded `Store` (accounts, tokens, vehicle secrets, actor states, per-account push queues),
but every method is a coroutine, so no call blocks the event loop: `SqliteEngine` runs the
`Store`'s methods in worker threads, `RedisEngine` awaits its server. Password hashing
(scrypt, tens of milliseconds of CPU) always runs in a worker thread, under the capacity
limiter the caller passes or else the engine's own, so logins cannot starve the loop or use
every core. `open_engine(target)` picks the engine from the target: a `redis://` (or
`rediss://`, `unix://`) URL, or else the path of a SQLite file.

    async with open_engine("redis://127.0.0.1:6379/0") as engine:   # or "hub.sqlite3"
        account = await engine.create_account("alice@example.com", "pw")
        token = await engine.issue_token(account)

What is durable when is the engine's: SQLite has committed to disk (`synchronous=FULL`) when a
write returns; Redis has applied it in memory and made it as durable as its persistence
settings say (README, "Storage engines").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import trio

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["REDIS_SCHEMES", "Engine", "as_engine", "open_engine"]

#: URL schemes that name a Redis server rather than a SQLite file
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@runtime_checkable
class Engine(Protocol):
    """The hub's storage. Each method means exactly what the `Store` method of the same name
    means (see `twin.store.Store`); engines differ only in where and how durably data lives."""

    #: where the data lives, for logs: a file path or a Redis URL (without its password)
    where: str

    async def create_account(self, email: str, password: str, *, limiter: trio.CapacityLimiter | None = None) -> str:
        """Create an account; its id. CommandRefused: CONFLICT if it exists, INVALID_VALUE if unusable."""
        ...

    async def check_password(self, email: str, password: str, *, limiter: trio.CapacityLimiter | None = None) -> str | None:
        """The account id if `password` is right for `email`, else None (same cost either way)."""
        ...

    async def issue_token(self, account: str) -> str:
        """A new session token for `account` (only its SHA-256 is kept). NOT_FOUND if no account."""
        ...

    async def account_for_token(self, token: str) -> str | None:
        """The account a token was issued to, or None if unknown or revoked."""
        ...

    async def revoke_token(self, token: str) -> bool:
        """Forget a token (log out); True if it existed."""
        ...

    async def accounts(self) -> list[str]:
        """Every account id, sorted."""
        ...

    async def create_vehicle_secret(self, vehicle_id: str) -> str:
        """A new link secret for the car, replacing any previous one (only its SHA-256 is kept)."""
        ...

    async def check_vehicle_secret(self, vehicle_id: str, secret: str) -> bool:
        """Whether `secret` is the car's current link secret (constant-time compare)."""
        ...

    async def save_states(self, states: Mapping[str, tuple[str, object]]) -> None:
        """Write many actor states, address -> (kind, state), all or none."""
        ...

    async def delete_states(self, addresses: Iterable[str]) -> int:
        """Forget the states of actors gone for good; how many were stored."""
        ...

    async def load_state(self, address: str) -> tuple[str, object] | None:
        """(kind, state) of one actor, or None."""
        ...

    def load_states(self) -> AsyncIterator[tuple[str, str, object]]:
        """Every stored (address, kind, state), by address, read a page at a time."""
        ...

    async def enqueue_many(self, items: Iterable[tuple[str, bytes]], *, keep: int | None = None) -> list[int]:
        """Queue (account, frame) pairs at once; their seq numbers, in order; each queue bounded to `keep`."""
        ...

    async def undelivered(self, account: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        """The frames queued for `account` with seq > `after`, oldest first (at most `limit`)."""
        ...

    async def ack(self, account: str, upto: int) -> int:
        """Delete `account`'s frames up to `upto`; how many."""
        ...

    async def last_seq(self, account: str) -> int:
        """The highest seq ever given to `account` (0 if none); it never goes back."""
        ...


def as_engine(storage: "Store | Engine", *, limiter: trio.CapacityLimiter | None = None) -> Engine:
    """`storage` as an `Engine`: an open `Store` wrapped in a `SqliteEngine`, an engine as is.

    So code written against `Engine` also takes the `Store` callers have always passed.
    """
    from ._sqlite_engine import SqliteEngine
    from ._store import Store

    if isinstance(storage, Store):
        return SqliteEngine(storage, limiter or trio.CapacityLimiter(os.cpu_count() or 1))
    return storage


@asynccontextmanager
async def open_engine(
    target: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    limiter: trio.CapacityLimiter | None = None,
    connect_timeout: float = 5.0,
    timeout: float = 10.0,
) -> AsyncIterator[Engine]:
    """The engine for `target`, open for the block and closed after it.

    `target` is `redis://HOST:PORT/DB` (also `rediss://`, `unix://PATH?db=N`; a `prefix=...`
    query parameter sets the key prefix, default `twin:`) or the path of a SQLite file.
    `limiter` bounds the threads hashing passwords (default: one per core). For Redis,
    `connect_timeout` and `timeout` (seconds to wait for an answer) bound every call, which
    raises `StoreUnavailable` rather than hang when the server is gone.
    """
    limiter = limiter or trio.CapacityLimiter(os.cpu_count() or 1)
    where = os.fspath(target)
    if where.startswith(REDIS_SCHEMES):
        from ._redis import open_redis_engine  # coredis loads only when Redis is used

        async with open_redis_engine(where, prefix=prefix, limiter=limiter, connect_timeout=connect_timeout, timeout=timeout) as engine:
            yield engine
    else:
        if prefix is not None:
            raise ValueError("a key prefix is for a Redis engine; a SQLite file holds one hub's data")
        from ._sqlite_engine import SqliteEngine

        sqlite = await SqliteEngine.open(where, limiter=limiter)
        try:
            yield sqlite
        finally:
            await sqlite.aclose()
