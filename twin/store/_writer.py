"""Group commit of actor states for trio: mark many, write them in one transaction.

How this part works: `mark(address, kind, state)` only records the state in memory (a later
mark of the same address replaces it) and wakes a background task, which waits `interval` to
gather more marks and then commits every dirty state in one transaction (one `save_states`
of the engine: a worker thread for the SQLite `Store`, one MULTI/EXEC for Redis).
`await flush()` does not wait for that timer: it returns once everything marked before the
call is on disk. If no commit is running, the caller becomes the leader and commits now;
otherwise it waits for the running commit and, if its marks came too late for that one, the
next. So any number of concurrent waiters share one commit per round, and there is at most
one transaction in flight. A failed commit puts its states back (unless marked again since)
and raises in the flush that led it; the waiters then lead a retry, and raise too if it fails.

Leaving `open_state_writer` refuses further marks, cancels the background task and flushes,
shielded, so everything marked is durable when the `async with` block is left (or the flush's
error is raised). Open it outside the fleet, so every actor has stopped marking by then.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import attrs
import trio

from ._codec import check_kind
from ._engine import Engine, as_engine
from ._errors import StoreError
from ._store import Store

__all__ = ["StateWriter", "WriterStatistics", "open_state_writer"]

log = logging.getLogger(__name__)

_RETRY_S = 1.0  # after a failed background commit

#: writes one batch of dirty states, address -> (kind, state), in one transaction
Commit = Callable[[Mapping[str, tuple[str, object]]], Awaitable[None]]


@attrs.frozen
class WriterStatistics:
    marks: int  # mark() calls so far
    dirty: int  # states marked and not yet committed
    commits: int  # transactions committed
    states_written: int  # states written by those transactions (a state marked twice in a round counts once)
    failures: int  # commits that raised
    flush_waits: int  # flush() calls that had to wait for a commit


class StateWriter:
    """Made by `open_state_writer`; use `mark` and `flush` from trio tasks of one run."""

    def __init__(self, store: Store | Engine, interval: float, commit: Commit | None = None) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval}")
        self._engine = as_engine(store)
        # a cluster node commits its outgoing messages in the same transaction as the states
        self._save: Commit = self._engine.save_states if commit is None else commit
        self._always = commit is not None
        self._interval = interval
        self._dirty: dict[str, tuple[str, object]] = {}
        self._marks = 0  # count of marks so far: the "position" a flush waits for
        self._durable = 0  # every mark up to this position is on disk
        self._committing: trio.Event | None = None  # set when the running commit ends
        self._wake = trio.Event()
        self._closed = False
        self._commits = self._written = self._failures = self._flush_waits = 0

    def mark(self, address: str, kind: str, state: object) -> None:
        """Record `state` as the latest of `address`; it is written by the next commit."""
        if self._closed:
            raise StoreError(f"the state writer is closed; {address} was not recorded")
        check_kind(kind, state)  # refuse here, in the caller, rather than poison every commit
        self._dirty.pop(address, None)  # keep dict order = order of last mark
        self._dirty[address] = (kind, state)
        self._marks += 1
        self._wake.set()

    def touch(self) -> None:
        """Something besides states waits for the next commit (a cluster node's messages)."""
        self._marks += 1
        self._wake.set()

    async def flush(self) -> None:
        """Return once every state marked before this call is durable; raise if it cannot be."""
        target = self._marks
        if self._durable >= target:
            await trio.lowlevel.checkpoint()
            return
        waited = False
        while self._durable < target:
            running = self._committing
            if running is None:
                await self._commit()
            else:
                if not waited:
                    waited = True
                    self._flush_waits += 1
                await running.wait()

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(
            marks=self._marks,
            dirty=len(self._dirty),
            commits=self._commits,
            states_written=self._written,
            failures=self._failures,
            flush_waits=self._flush_waits,
        )

    async def _commit(self) -> None:
        """Write every dirty state in one transaction; only one runs at a time."""
        assert self._committing is None
        batch, self._dirty = self._dirty, {}
        upto = self._marks
        done = self._committing = trio.Event()
        try:
            if batch or self._always:
                # SQLite's worker thread is not abandoned on cancel: the transaction finishes
                await self._save(batch)
        except BaseException as exc:
            if not isinstance(exc, trio.Cancelled):
                self._failures += 1
            for address, entry in batch.items():
                self._dirty.setdefault(address, entry)  # a newer mark wins over the failed one
            raise
        else:
            self._durable = max(self._durable, upto)
            if batch:
                self._commits += 1
                self._written += len(batch)
        finally:
            self._committing = None
            done.set()

    async def _run(self) -> None:
        """Background commits: after a mark, wait `interval` for more, then commit them."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep(self._interval)
            if self._durable < self._marks:
                try:
                    await self.flush()
                except Exception as exc:
                    # the states stay dirty; a flush reports the error to its caller
                    log.warning("background commit of %d actor states failed, retrying in %.1f s: %s", len(self._dirty), _RETRY_S, exc)
                    await trio.sleep(_RETRY_S)
                    self._wake.set()


@asynccontextmanager
async def open_state_writer(store: Store | Engine, *, interval: float = 0.05, commit: Commit | None = None) -> AsyncIterator[StateWriter]:
    """A `StateWriter` committing to `store` (a `Store` or any `Engine`) in the background every
    `interval` s of marks; flushed on exit. `commit` replaces the engine's `save_states` (and
    is called even with no states, after `touch`)."""
    writer = StateWriter(store, interval, commit)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer._run)
        try:
            yield writer
        finally:
            writer._closed = True  # a mark from now on raises rather than being lost
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await writer.flush()
