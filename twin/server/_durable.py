"""What the hub keeps: every actor's state, and the durable push queue of each account.

How this part works: every actor of the hub's fleet is wrapped in `Durable`, which marks each
new state in the store's group-committing `StateWriter`. A command's final reply is sent only
once the states marked before it are committed: `Committed.send_after` sends it at once when
nothing is waiting to be written, and otherwise hands it to one committer task that flushes
and then sends every reply gathered meanwhile (one commit for many replies, no task per
command). A push to an account (alert, offer, garage change, operator notice) is queued in
the store before any app sees it, numbered by the store's `seq`, sent to the account's
sessions with that number in the envelope's `seq` field, and deleted once an app acks it;
`state_changed` pushes only matter live, so they are sent to connected sessions and never
queued.

What is durable when (docs/protocol.md says the same):
- accounts, tokens and vehicle secrets: when the call creating them returns;
- a car's, person's or the desk's state: before the final reply of the command that changed
  it is sent (changes from events and timers within `flush_interval` seconds);
- a push to an account: queued in the store before it is sent to any app.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgpack
import trio

from twin.errors import Code
from twin.protocol import Envelope, encode
from twin.store import StateWriter

if TYPE_CHECKING:
    from ._conn import Conn
    from ._hub import Account

log = logging.getLogger("twin.server")

#: pushes that are only useful live; every other notice to an account is durable
EPHEMERAL_PUSHES = frozenset({"state_changed"})


class CountingWriter:
    """The store's `StateWriter`, counting marks so a reply skips `flush` when nothing changed."""

    __slots__ = ("writer", "marks", "flushed")

    def __init__(self, writer: StateWriter) -> None:
        self.writer = writer
        self.marks = 0
        self.flushed = 0

    @property
    def dirty(self) -> bool:
        return self.marks != self.flushed

    def mark(self, address: str, kind: str, state: Any) -> None:
        self.writer.mark(address, kind, state)
        self.marks += 1

    async def flush(self) -> None:
        target = self.marks
        await self.writer.flush()
        if target > self.flushed:
            self.flushed = target


class Durable:
    """A behaviour that delegates to a model and marks each new state for the writer."""

    __slots__ = ("model", "kind", "writer")

    def __init__(self, model: Any, kind: str, writer: CountingWriter) -> None:
        self.model, self.kind, self.writer = model, kind, writer

    def step(self, state: Any, envelope: Envelope, now: float) -> tuple[Any, list[Envelope]]:
        new, outbox = self.model.step(state, envelope, now)
        if new is not state:
            self.writer.mark(getattr(new, "address", "operator"), self.kind, new)
        return new, outbox

    def advance(self, state: Any, now: float) -> tuple[Any, list[Envelope]]:
        new, outbox = self.model.advance(state, now)
        if new is not state:
            self.writer.mark(getattr(new, "address", "operator"), self.kind, new)
        return new, outbox

    def next_deadline(self, state: Any) -> float | None:
        return self.model.next_deadline(state)  # type: ignore[no-any-return]


class Committed:
    """Sends commands' final replies only once what was marked before them is on disk."""

    def __init__(self, writer: CountingWriter) -> None:
        self.writer = writer
        self._waiting: list[tuple[Conn, int, str, bytes]] = []
        self._wake = trio.Event()

    def send_after(self, conn: Conn, corr: int, sender: str, frame: bytes) -> None:
        """Send `frame` (the reply to `conn`'s command `corr`) now if nothing is waiting to be
        written, else right after the next commit."""
        if not self.writer.dirty:
            conn.send(frame)
            return
        self._waiting.append((conn, corr, sender, frame))
        self._wake.set()

    async def run(self) -> None:
        """The committer task: flush, then send what waited for that flush."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._waiting = self._waiting, []
            try:
                await self.writer.flush()
            except Exception as exc:
                log.exception("could not commit the states of %d commands", len(batch))
                message = f"the hub could not save the result ({type(exc).__name__}); retry, and check the outcome with a read"
                for conn, corr, sender, _ in batch:
                    conn.error(Code.INTERNAL, message, corr, sender=sender)
                continue
            for conn, _, _, frame in batch:
                conn.send(frame)


def with_seq(frame: bytes, seq: int) -> bytes:
    """A queued push frame with its sequence number set."""
    raw = msgpack.unpackb(frame, raw=False)
    raw["seq"] = seq
    return msgpack.packb(raw, use_bin_type=True)  # type: ignore[no-any-return]


def send_push(conn: Conn, seq: int, frame: bytes) -> None:
    """Send a push to one session: live-only (`seq` 0) as is, a queued one numbered, once and
    in order (a session catching up on its backlog holds new ones until it is done)."""
    if conn.pushes is not None:
        conn.pushes.append((seq, frame))
    elif seq == 0:
        conn.send(frame)
    elif seq > conn.last_seq:
        conn.last_seq = seq
        conn.send(with_seq(frame, seq))


class PushQueue:
    """Durable pushes to accounts: into the store (a batch per transaction), then to apps.

    In a cluster (`cluster`), the push is queued in the node's next commit, with the
    acknowledgement of the stream entry that brought it and its copies to the account's
    sessions on other nodes; live-only pushes are copied there too."""

    def __init__(self, store: Any, keep: int, cluster: Any = None) -> None:
        self.store = store
        self.keep = keep
        self.cluster = cluster
        self._enqueue = store.enqueue_many if cluster is None else cluster.enqueue_many
        self.lock = trio.Lock()  # held while pushes are sent, so a login's backlog never interleaves
        self._batch: list[tuple[Account, Envelope]] = []
        self._wake = trio.Event()

    def push(self, account: Account, envelope: Envelope) -> None:
        if envelope.body.TYPE in EPHEMERAL_PUSHES or envelope.body.KIND == "reply":
            frame = encode(Envelope(envelope.body, sender=envelope.sender, target=account.address, ts=envelope.ts))
            for conn in account.sessions:
                send_push(conn, 0, frame)
            if self.cluster is not None:
                self.cluster.router.copy_live(account.account, frame)
                self.cluster.router.handled(envelope)
            return
        self._batch.append((account, envelope))
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._batch = self._batch, []
            frames = [
                (account, encode(Envelope(env.body, sender=env.sender, target=account.address, ts=env.ts)))
                for account, env in batch
            ]
            async with self.lock:
                if self.cluster is not None:  # acknowledged in the commit that queues them
                    for _, env in batch:
                        self.cluster.router.handled(env)
                try:
                    seqs = await self._enqueue([(a.account, frame) for a, frame in frames], keep=self.keep)
                except Exception:
                    log.exception("could not queue %d pushes; retrying in 1 s", len(frames))
                    self._batch[:0] = batch  # nothing is dropped: retried, in order
                    self._wake.set()
                    await trio.sleep(1.0)
                    continue
                for (account, frame), seq in zip(frames, seqs):
                    for conn in account.sessions:
                        send_push(conn, seq, frame)

    async def backlog(self, account: Account, conn: Conn) -> None:
        """Send `conn` every push of `account` not acked yet, then let new ones follow."""
        async with self.lock:  # no push is sent twice or out of order
            conn.pushes = []  # pushes copied from another node meanwhile wait here
            account.sessions.append(conn)
            try:
                waiting = await self.store.undelivered(account.account)
            finally:
                held, conn.pushes = conn.pushes, None
            for seq, frame in waiting:
                send_push(conn, seq, frame)
            for seq, frame in held:
                send_push(conn, seq, frame)
