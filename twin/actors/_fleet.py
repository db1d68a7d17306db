"""The in-process fleet: actor tasks, supervision, passivation and the deadline scheduler.

How it works:

- Every actor is a `_Cell` registered in the `AddressBook`. The cell always holds the actor's
  current state (an immutable value); while the actor is *active* it also has a `Mailbox` and
  a task running `Fleet._live`: receive an envelope or wake at the next deadline, call the
  behaviour's `step` or `advance`, commit the new state, send the outbox. Nothing else.
- Supervision: an exception escaping the behaviour is a crash. The cell keeps its last good
  state (the failed call's result is discarded whole), a request gets an `Error("internal")`
  reply, the crash is counted and logged, and the loop goes on: that is the restart. A
  failing `advance` is retried after `crash_backoff` seconds rather than in a busy loop.
- The outbox is sent with nowait semantics, so two actors with full mailboxes can never wait
  on each other; an envelope that cannot be delivered becomes an `Error` reply to its sender
  if it was a request (a command), else it is dropped and counted.
- Passivation: an actor whose mailbox is empty and that did nothing for `idle` seconds ends
  its task; the cell drops its mailbox and keeps the state as plain data. The decision and
  the switch happen with no checkpoint in between, so a message either arrived before (the
  mailbox is not empty and the actor stays) or arrives after (the cell is passive, and the
  put respawns it with a fresh mailbox holding that message first). Nothing is lost or
  reordered, because the put path that respawns is synchronous.
- One scheduler task keeps a heap of (deadline, ticket, cell) for passive actors and runs
  `advance` inline when a deadline is due, leaving the actor passive. A ticket is valid only
  while the cell still holds it; reactivation clears it, so stale heap entries are skipped.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import math
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import attrs
import trio

from twin.errors import Code, DeliveryError
from twin.protocol import Envelope, Error, Message

from ._behaviour import Behaviour, Clock
from ._mailbox import Mailbox, MailboxStatistics
from ._router import AddressBook

__all__ = ["ActorStatistics", "Fleet", "FleetStatistics", "is_request", "open_fleet"]

log = logging.getLogger("twin.actors")

REQUEST_KINDS = frozenset({"command"})
_SCHEDULER_BATCH = 512


def is_request(envelope: Envelope) -> bool:
    """Whether `envelope` expects a reply (its body is a command)."""
    return envelope.body.KIND in REQUEST_KINDS


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


@attrs.frozen
class ActorStatistics:
    """One actor: active or passive, its mailbox while active, its crashes."""

    address: str
    active: bool
    mailbox: MailboxStatistics | None
    crashes: int
    last_crash: str | None


@attrs.frozen
class FleetStatistics:
    """The whole fleet: how many actors run, how many sleep, what went wrong."""

    active: int
    passive: int
    crashes: int
    delivered: int
    dropped: int
    pending_asks: int


@attrs.frozen
class _Crash:
    count: int
    last: str


class _Cell:
    """An actor's address-book entry: its state always, its mailbox only while active."""

    __slots__ = ("fleet", "address", "behaviour", "state", "idle", "mailbox", "ticket")

    def __init__(
        self, fleet: Fleet, address: str, behaviour: Behaviour[Any], state: Any, idle: float | None
    ) -> None:
        self.fleet = fleet
        self.address = address
        self.behaviour = behaviour
        self.state = state
        self.idle = idle
        self.mailbox: Mailbox | None = None
        self.ticket = 0

    def put_nowait(self, envelope: Envelope) -> None:
        if self.mailbox is None:
            self.fleet._activate(self)
        assert self.mailbox is not None
        self.mailbox.put_nowait(envelope)

    async def put(self, envelope: Envelope) -> None:
        if self.mailbox is None:
            self.fleet._activate(self)
        assert self.mailbox is not None
        await self.mailbox.put(envelope)


class _ChannelInbox:
    """Delivers into a trio memory channel: how callers subscribe to `app:<account>`."""

    __slots__ = ("channel", "address")

    def __init__(self, channel: trio.MemorySendChannel[Envelope], address: str) -> None:
        self.channel = channel
        self.address = address

    def put_nowait(self, envelope: Envelope) -> None:
        try:
            self.channel.send_nowait(envelope)
        except trio.WouldBlock:
            raise DeliveryError(
                f"the subscriber of {self.address} is not keeping up; retry later",
                Code.OVERLOADED,
            ) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise DeliveryError(f"nobody listens at {self.address} any more", Code.OFFLINE) from None

    async def put(self, envelope: Envelope) -> None:
        try:
            await self.channel.send(envelope)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise DeliveryError(f"nobody listens at {self.address} any more", Code.OFFLINE) from None


class Fleet:
    """A running set of actors; made by `open_fleet`, valid inside its `async with` block."""

    def __init__(
        self,
        nursery: trio.Nursery,
        clock: Clock,
        *,
        capacity: int,
        idle: float | None,
        crash_backoff: float,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, not {capacity}")
        self.clock = clock
        self.router = AddressBook()
        self._nursery = nursery
        self._capacity = capacity
        self._idle = idle
        self._backoff = crash_backoff
        self._actors = 0
        self._active = 0
        self._dropped = 0
        self._crash_count = 0
        self._crashes: dict[str, _Crash] = {}
        self._heap: list[tuple[float, int, _Cell]] = []
        self._tickets = itertools.count(1)
        self._wakeup: trio.CancelScope | None = None

    # --- public API

    def spawn(
        self,
        address: str,
        behaviour: Behaviour[Any],
        state: Any,
        *,
        idle: float | None | _Unset = UNSET,
    ) -> None:
        """Start an actor at `address` from `state`; nothing is awaited, so spawn in bulk.

        `idle` (seconds, default: the fleet's) is how long the actor may do nothing before it
        is passivated; `None` keeps it active for ever. An actor that may passivate starts
        passive: its first message or due deadline activates it.
        """
        cell = _Cell(self, address, behaviour, state, self._idle if idle is UNSET else idle)
        self.router.register(address, cell)
        self._actors += 1
        if cell.idle is None:
            self._activate(cell)
        else:
            self._park(cell, self._first_deadline(cell))

    async def tell(self, sender: str, target: str, body: Message) -> None:
        """Send `body` from `sender` to `target`, waiting while the target's mailbox is full.

        Raises `DeliveryError` (`unknown_target`, or `offline` for an unconnected app).
        """
        await self.router.deliver(Envelope(body, sender, target, ts=self.clock.now()))

    def tell_nowait(self, sender: str, target: str, body: Message) -> None:
        """Send `body` now, or raise `DeliveryError` (`overloaded` when the mailbox is full)."""
        self.router.deliver_nowait(Envelope(body, sender, target, ts=self.clock.now()))

    async def ask(self, sender: str, target: str, body: Message, *, timeout: float = 5.0) -> Envelope:
        """Send a request and return its reply envelope (`Ok` or `Error` body).

        Undeliverable requests come back as `Error` replies like any refusal (code
        `unknown_target`, or `offline` for an unconnected app), so a caller handles one shape;
        only silence raises: `DeliveryError(TIMEOUT)` after `timeout` seconds.
        """
        envelope = Envelope(body, sender, target, id=self.router.next_id(), ts=self.clock.now())
        try:
            return await self.router.ask(envelope, timeout)
        except DeliveryError as exc:
            if exc.code is Code.TIMEOUT:
                raise
            return envelope.reply(Error(code=exc.code.value, message=exc.message), self.clock.now())

    def state_of(self, address: str) -> Any:
        """The actor's current state, whether it is active or passive."""
        return self._cell(address).state

    @contextmanager
    def subscribe(
        self, address: str, *, capacity: int = 256
    ) -> Iterator[trio.MemoryReceiveChannel[Envelope]]:
        """Receive what is delivered to `address` (an `app:<account>`) while the block runs.

        If the subscriber falls `capacity` envelopes behind, further ones are refused as
        `overloaded` (requests get that `Error` back) rather than blocking the actors.
        """
        send, receive = trio.open_memory_channel[Envelope](capacity)
        self.router.register(address, _ChannelInbox(send, address))
        try:
            with send, receive:
                yield receive
        finally:
            self.router.unregister(address)

    def statistics(self) -> FleetStatistics:
        routed = self.router.statistics()
        return FleetStatistics(
            active=self._active,
            passive=self._actors - self._active,
            crashes=self._crash_count,
            delivered=routed.delivered,
            dropped=self._dropped,
            pending_asks=routed.pending_asks,
        )

    def actor_statistics(self, address: str) -> ActorStatistics:
        cell = self._cell(address)
        crash = self._crashes.get(address)
        return ActorStatistics(
            address=address,
            active=cell.mailbox is not None,
            mailbox=None if cell.mailbox is None else cell.mailbox.statistics(),
            crashes=0 if crash is None else crash.count,
            last_crash=None if crash is None else crash.last,
        )

    # --- the actor task

    async def _live(self, cell: _Cell) -> None:
        """Receive or wake at the next deadline; step or advance; send; passivate when idle."""
        clock, mailbox, idle = self.clock, cell.mailbox, cell.idle
        assert mailbox is not None
        deadline = self._first_deadline(cell)
        hold: float | None = None  # after a failed advance, no retry before this time
        idle_at = math.inf if idle is None else clock.now() + idle
        while True:
            due = _later(deadline, hold)
            due_t = math.inf if due is None else clock.to_trio(due)
            idle_t = clock.to_trio(idle_at)
            wake = min(due_t, idle_t)
            envelope = None
            if len(mailbox) or wake == math.inf:
                envelope = await mailbox.receive()
            elif wake > trio.current_time():
                with trio.CancelScope(deadline=wake):
                    envelope = await mailbox.receive()
            t = trio.current_time()
            if envelope is not None:
                now = clock.now()
            elif t >= due_t:
                assert due is not None
                now = max(clock.now(), due)
            elif t >= idle_t and not len(mailbox):
                self._active -= 1
                self._park(cell, due)
                return
            else:
                continue
            result = self._run(cell, envelope, now)
            if result is None:
                if envelope is None:
                    hold = now + self._backoff
            else:
                outbox, deadline = result
                hold = None
                self._send(outbox, now)
            if idle is not None:
                idle_at = now + idle

    def _run(
        self, cell: _Cell, envelope: Envelope | None, now: float
    ) -> tuple[list[Envelope], float | None] | None:
        """`step` (or `advance` if no envelope) under supervision.

        Commits the new state and returns (outbox, next deadline), or returns None after a
        crash, with the state untouched and the crash reported.
        """
        behaviour = cell.behaviour
        try:
            if envelope is None:
                state, outbox = behaviour.advance(cell.state, now)
            else:
                state, outbox = behaviour.step(cell.state, envelope, now)
            for out in outbox:
                if not isinstance(out, Envelope):
                    raise TypeError(f"the outbox holds {out!r}, which is not an Envelope")
            deadline = behaviour.next_deadline(state)
            if envelope is None and deadline is not None and deadline <= now:
                raise RuntimeError(f"advance(now={now}) left the deadline {deadline} due")
        except Exception as exc:
            self._crashed(cell, envelope, now, exc)
            return None
        cell.state = state
        return outbox, deadline

    def _first_deadline(self, cell: _Cell) -> float | None:
        try:
            return cell.behaviour.next_deadline(cell.state)
        except Exception as exc:
            self._crashed(cell, None, self.clock.now(), exc)
            return None

    def _crashed(self, cell: _Cell, envelope: Envelope | None, now: float, exc: Exception) -> None:
        crash = self._crashes.get(cell.address)
        text = "".join(traceback.format_exception(exc))
        self._crashes[cell.address] = _Crash(1 if crash is None else crash.count + 1, text)
        self._crash_count += 1
        doing = "advance" if envelope is None else f"step({envelope.type!r} from {envelope.sender})"
        log.error("%s crashed in %s; it keeps its last good state", cell.address, doing, exc_info=exc)
        if envelope is not None and is_request(envelope):
            message = f"{cell.address} failed on {envelope.type!r}; the failure was recorded"
            self._send([envelope.reply(Error(code=Code.INTERNAL.value, message=message), now)], now)

    def _send(self, outbox: list[Envelope], now: float) -> None:
        """Deliver without waiting; an undeliverable request is answered with an `Error`."""
        deliver = self.router.deliver_nowait
        for envelope in outbox:
            try:
                deliver(envelope)
            except DeliveryError as exc:
                if is_request(envelope):
                    error = Error(code=exc.code.value, message=exc.message)
                    try:
                        deliver(envelope.reply(error, now))
                        continue
                    except DeliveryError as again:
                        exc = again
                self._dropped += 1
                level = logging.DEBUG if exc.code is Code.OFFLINE else logging.WARNING
                log.log(level, "dropped %r from %s to %s: %s", envelope.type, envelope.sender,
                        envelope.target, exc.message)

    # --- activation, passivation and the scheduler

    def _activate(self, cell: _Cell) -> None:
        cell.mailbox = Mailbox(self._capacity, cell.address)
        cell.ticket = 0
        self._active += 1
        self._nursery.start_soon(self._live, cell, name=cell.address)

    def _park(self, cell: _Cell, due: float | None) -> None:
        """Make `cell` passive; the scheduler will run its `advance` at `due`."""
        cell.mailbox = None
        if due is None:
            return
        cell.ticket = ticket = next(self._tickets)
        heap = self._heap
        heapq.heappush(heap, (due, ticket, cell))
        if len(heap) > 2 * (self._actors - self._active) + 1024:  # drop stale entries
            heap[:] = [item for item in heap if item[2].ticket == item[1]]
            heapq.heapify(heap)
        if self._wakeup is not None:
            self._wakeup.deadline = min(self._wakeup.deadline, self.clock.to_trio(due))

    async def _schedule(self) -> None:
        """The one task that fires the deadlines of passive actors, inline."""
        clock, heap = self.clock, self._heap
        while True:
            with trio.CancelScope(deadline=clock.to_trio(heap[0][0]) if heap else math.inf) as scope:
                self._wakeup = scope
                await trio.sleep_forever()
            self._wakeup = None
            fired = 0
            while heap and clock.to_trio(heap[0][0]) <= trio.current_time():
                due, ticket, cell = heapq.heappop(heap)
                if cell.ticket != ticket:
                    continue
                cell.ticket = 0
                now = max(clock.now(), due)
                result = self._run(cell, None, now)
                if result is None:
                    self._park(cell, now + self._backoff)
                else:
                    outbox, deadline = result
                    self._park(cell, deadline)  # before sending: the outbox may wake it
                    self._send(outbox, now)
                fired += 1
                if fired % _SCHEDULER_BATCH == 0:
                    await trio.lowlevel.checkpoint()

    def _cell(self, address: str) -> _Cell:
        cell = self.router.lookup(address)
        if not isinstance(cell, _Cell):
            raise DeliveryError(f"no actor at {address!r}; spawn it first", Code.UNKNOWN_TARGET)
        return cell


def _later(deadline: float | None, hold: float | None) -> float | None:
    if deadline is None or hold is None:
        return deadline
    return max(deadline, hold)


@asynccontextmanager
async def open_fleet(
    *,
    epoch: float | None = None,
    capacity: int = 64,
    idle: float | None = None,
    crash_backoff: float = 60.0,
) -> AsyncIterator[Fleet]:
    """Run a fleet of actors for the duration of the block; leaving it stops every actor.

    `epoch` is the model time (POSIX seconds) at start, wall-clock now by default; `capacity`
    bounds each mailbox; `idle` is the default passivation delay (None: never passivate);
    `crash_backoff` is how long a failing `advance` waits before it is retried.
    """
    async with trio.open_nursery() as nursery:
        fleet = Fleet(
            nursery, Clock.start(epoch), capacity=capacity, idle=idle, crash_backoff=crash_backoff
        )
        nursery.start_soon(fleet._schedule, name="twin.actors.scheduler")
        try:
            yield fleet
        finally:
            nursery.cancel_scope.cancel()
