"""`SqliteEngine`: the embedded `Store` behind the async `Engine` interface.

How this part works: every method runs the `Store` method of the same name in a worker
thread (the `Store` is thread-safe: one lock, one transaction per write), so the event loop
never waits on the disk or on msgpack. Password hashing runs under a capacity limiter (the
caller's or the engine's), every other call under trio's default one. `load_states` reads a
page of states per thread call. `store` is the `Store` itself, for synchronous callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from functools import partial

import trio

from ._store import LOAD_PAGE, Store

__all__ = ["SqliteEngine"]


class SqliteEngine:
    """An `Engine` over one SQLite file. Open with `open_engine(path)`."""

    def __init__(self, store: Store, limiter: trio.CapacityLimiter) -> None:
        self.store = store
        self.where = store.path
        self._limiter = limiter

    @classmethod
    async def open(cls, path: str, *, limiter: trio.CapacityLimiter) -> "SqliteEngine":
        """Open (creating and migrating if needed) the file at `path`, in a worker thread."""
        return cls(await trio.to_thread.run_sync(Store.open, path), limiter)

    async def aclose(self) -> None:
        """Close the file (checkpointing its WAL)."""
        await trio.to_thread.run_sync(self.store.close)

    def __repr__(self) -> str:
        return f"<SqliteEngine {self.where!r}>"

    # --- accounts and tokens

    async def create_account(self, email: str, password: str, *, limiter: trio.CapacityLimiter | None = None) -> str:
        return await trio.to_thread.run_sync(self.store.create_account, email, password, limiter=limiter or self._limiter)

    async def check_password(self, email: str, password: str, *, limiter: trio.CapacityLimiter | None = None) -> str | None:
        return await trio.to_thread.run_sync(self.store.check_password, email, password, limiter=limiter or self._limiter)

    async def issue_token(self, account: str) -> str:
        return await trio.to_thread.run_sync(self.store.issue_token, account)

    async def account_for_token(self, token: str) -> str | None:
        return await trio.to_thread.run_sync(self.store.account_for_token, token)

    async def revoke_token(self, token: str) -> bool:
        return await trio.to_thread.run_sync(self.store.revoke_token, token)

    async def accounts(self) -> list[str]:
        return await trio.to_thread.run_sync(self.store.accounts)

    # --- vehicle link credentials

    async def create_vehicle_secret(self, vehicle_id: str) -> str:
        return await trio.to_thread.run_sync(self.store.create_vehicle_secret, vehicle_id)

    async def check_vehicle_secret(self, vehicle_id: str, secret: str) -> bool:
        return await trio.to_thread.run_sync(self.store.check_vehicle_secret, vehicle_id, secret)

    # --- actor states

    async def save_states(self, states: Mapping[str, tuple[str, object]]) -> None:
        await trio.to_thread.run_sync(self.store.save_states, states)

    async def delete_states(self, addresses: Iterable[str]) -> int:
        return await trio.to_thread.run_sync(self.store.delete_states, list(addresses))

    async def load_state(self, address: str) -> tuple[str, object] | None:
        return await trio.to_thread.run_sync(self.store.load_state, address)

    async def load_states(self) -> AsyncIterator[tuple[str, str, object]]:
        after = ""
        while True:
            page = await trio.to_thread.run_sync(self.store.load_page, after)
            for entry in page:
                yield entry
            if len(page) < LOAD_PAGE:
                return
            after = page[-1][0]

    # --- acknowledged delivery of pushes

    async def enqueue_many(self, items: Iterable[tuple[str, bytes]], *, keep: int | None = None) -> list[int]:
        return await trio.to_thread.run_sync(partial(self.store.enqueue_many, list(items), keep=keep))

    async def undelivered(self, account: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        return await trio.to_thread.run_sync(self.store.undelivered, account, after, limit)

    async def ack(self, account: str, upto: int) -> int:
        return await trio.to_thread.run_sync(self.store.ack, account, upto)

    async def last_seq(self, account: str) -> int:
        return await trio.to_thread.run_sync(self.store.last_seq, account)
