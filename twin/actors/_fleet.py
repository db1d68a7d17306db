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
- Ask: the asker tells the router to hold the reply to (sender, id) for it, delivers without
  waiting when there is room, and parks. The router hands the reply to that waiter instead of
  the sender's mailbox and wakes the asker. A cancel scope per ask would cost a third of a
  whole ask, so the same scheduler task keeps a heap of ask deadlines and wakes an asker
  empty-handed when its deadline passes: that is the timeout.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import math
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import attrs
import trio

from twin.errors import Code, DeliveryError
from twin.protocol import Envelope, Error, Message

from ._behaviour import Behaviour, Clock
from ._mailbox import Mailbox, MailboxStatistics
from ._router import AddressBook, Waiter

__all__ = ["ActorStatistics", "Fleet", "FleetStatistics", "is_request", "open_fleet"]

log = logging.getLogger("twin.actors")

_SCHEDULER_BATCH = 512


def is_request(envelope: Envelope) -> bool:
    """Whether `envelope` expects a reply (a command, or an offer to a person's phone)."""
    body = envelope.body
    return body.KIND == "command" or body.EXPECTS_REPLY


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


class _Crashed(enum.Enum):
    CRASHED = enum.auto()


CRASHED = _Crashed.CRASHED


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

    __slots__ = ("fleet", "address", "behaviour", "state", "idle", "mailbox", "ticket", "retired")

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
        self.retired = False  # moved to another node: its task ends, its deadlines are void

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
        router: AddressBook | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, not {capacity}")
        self.clock = clock
        self.router = AddressBook() if router is None else router
        # told of every envelope an actor has handled (a cluster router acknowledges it then)
        self._handled: Callable[[Envelope], None] | None = getattr(self.router, "handled", None)
        self._nursery = nursery
        self._capacity = capacity
        self._idle = idle
        self._backoff = crash_backoff
        self._actors = 0
        self._active = 0
        self._dropped = 0
        self._crash_count = 0
        self._crashes: dict[str, _Crash] = {}
        self._deadlines: list[tuple[float, int, _Cell]] = []  # passive actors', model time
        self._timeouts: list[tuple[float, int, Waiter]] = []  # parked asks, trio time
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
        only silence raises: `DeliveryError(TIMEOUT)` after `timeout` seconds. Delivery waits
        for room in a full mailbox, within the same timeout.
        """
        router, clock = self.router, self.clock
        start = trio.current_time()
        deadline = start + timeout
        envelope = Envelope(body, sender, target, id=router.next_id(), ts=clock.epoch + (start - clock.t0))
        waiter = router.expect(sender, envelope.id, target)
        no_room = False
        try:
            try:
                try:
                    router.deliver_nowait(envelope)
                except DeliveryError as exc:
                    if exc.code is not Code.OVERLOADED:
                        raise
                    with trio.move_on_at(deadline) as waiting:  # a full mailbox: wait for room
                        await router.deliver(envelope)
                    no_room = waiting.cancelled_caught
            except DeliveryError as exc:
                await trio.lowlevel.checkpoint()
                return envelope.reply(Error(code=exc.code.value, message=exc.message), clock.now())
            if waiter.reply is None and not no_room:
                # park until the router hands the reply over or the scheduler times it out
                waiter.task = trio.lowlevel.current_task()
                timeouts = self._timeouts
                heapq.heappush(timeouts, (deadline, next(self._tickets), waiter))
                self._time_out_at(deadline, waiter)
                await trio.lowlevel.wait_task_rescheduled(waiter.abort)
            reply = waiter.reply
        finally:
            router.forget(waiter)
            waiter.reply = None  # the timeout heap may hold the waiter a while, not the reply
        if reply is None:
            error = _timed_out(envelope, timeout)
            raise DeliveryError(error.message, Code.TIMEOUT)
        return reply

    def ask_soon(
        self, sender: str, target: str, body: Message, on_reply: Callable[[Envelope], None], *, timeout: float = 5.0
    ) -> None:
        """`ask` without a task: send the request now and call `on_reply` exactly once, with its
        reply, or with an `Error` reply (`timeout` after `timeout` seconds; an undeliverable
        request's code at once). For callers that cannot afford a task per request (the hub).

        `on_reply` runs in whichever task delivers the reply, so it must not block.
        """
        envelope, waiter, now = self._expect_callback(sender, target, body, on_reply, timeout)
        try:
            self.router.deliver_nowait(envelope)
        except DeliveryError as exc:
            self._undeliverable(envelope, waiter, exc)
            return
        if waiter.waiting:
            self._time_out_at(now + timeout, waiter)

    async def ask_patiently(
        self, sender: str, target: str, body: Message, on_reply: Callable[[Envelope], None], *, timeout: float = 5.0
    ) -> None:
        """`ask_soon`, except that a full mailbox makes the caller wait for room (within
        `timeout`) instead of answering `overloaded`: backpressure on whoever sends."""
        router = self.router
        envelope, waiter, start = self._expect_callback(sender, target, body, on_reply, timeout)
        try:
            try:
                router.deliver_nowait(envelope)
            except DeliveryError as exc:
                if exc.code is not Code.OVERLOADED:
                    raise
                with trio.move_on_at(start + timeout):  # a full mailbox: wait for room
                    await router.deliver(envelope)
        except DeliveryError as exc:
            self._undeliverable(envelope, waiter, exc)
            return
        except BaseException:  # cancelled while waiting for room: nobody asks any more
            router.forget(waiter)
            raise
        if waiter.waiting:
            self._time_out_at(start + timeout, waiter)

    def _expect_callback(
        self, sender: str, target: str, body: Message, on_reply: Callable[[Envelope], None], timeout: float
    ) -> tuple[Envelope, Waiter, float]:
        """The request envelope of a callback ask, its registered waiter, and the trio time now."""
        router, clock = self.router, self.clock
        now = trio.current_time()
        envelope = Envelope(body, sender, target, id=router.next_id(), ts=clock.epoch + (now - clock.t0))
        waiter = router.expect(sender, envelope.id, target, on_reply)
        waiter.request, waiter.timeout = envelope, timeout
        return envelope, waiter, now

    def _undeliverable(self, envelope: Envelope, waiter: Waiter, exc: DeliveryError) -> None:
        """A callback ask that could not be delivered: answer it with the delivery's error now."""
        self.router.forget(waiter)
        waiter.answer(envelope.reply(Error(code=exc.code.value, message=exc.message), self.clock.now()))

    def _time_out_at(self, deadline: float, waiter: Waiter) -> None:
        """Have the scheduler give up on `waiter` at `deadline` (trio time) if still waiting."""
        timeouts, router = self._timeouts, self.router
        heapq.heappush(timeouts, (deadline, next(self._tickets), waiter))
        if len(timeouts) > 2 * router.awaited + 1024:  # drop the answered ones
            timeouts[:] = [item for item in timeouts if item[2].waiting]
            heapq.heapify(timeouts)
        self._wake_at(deadline)

    def retire(self, address: str) -> list[Envelope]:
        """Stop the actor at `address` for good, here (its twin now lives on another node):
        unregister it, end its task, forget its deadlines; return what its mailbox still held,
        unhandled. Its state stays wherever it was last committed."""
        cell = self.router.lookup(address)
        if not isinstance(cell, _Cell):
            return []
        self.router.unregister(address)
        cell.retired = True
        cell.ticket = 0
        self._actors -= 1
        mailbox, cell.mailbox = cell.mailbox, None
        return [] if mailbox is None else mailbox.abandon()  # its task sees `retired` and ends

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
        handle, current_time = self._handle, trio.current_time
        deadline = self._first_deadline(cell)
        hold: float | None = None  # after a failed advance, no retry before this time
        idle_t = math.inf if idle is None else current_time() + idle
        while True:
            if deadline is None:
                due, due_t = None, math.inf
            else:
                due = deadline if hold is None else max(deadline, hold)
                due_t = clock.to_trio(due)
            wake = due_t if due_t < idle_t else idle_t
            # mailbox.receive(wake), less one coroutine kept alive per parked actor
            if len(mailbox):
                await trio.lowlevel.checkpoint()
            elif wake == math.inf:
                await mailbox.parked()
            elif wake > current_time():
                with trio.CancelScope(deadline=wake):
                    await mailbox.parked()
            if cell.retired:
                self._active -= 1
                return
            envelope = mailbox.get_nowait()
            if envelope is not None:
                now = clock.now()
            elif current_time() >= due_t:
                assert due is not None
                now = max(clock.now(), due)
            elif current_time() >= idle_t:  # the mailbox is empty: receive returned None
                self._active -= 1
                self._park(cell, due)
                return
            else:
                continue
            advancing = envelope is None
            outcome = handle(cell, envelope, now)
            envelope = None  # keep nothing of the last message alive while waiting for the next
            if outcome is CRASHED:
                if advancing:
                    hold = now + self._backoff
            else:
                deadline, hold = outcome, None
            if idle is not None:
                idle_t = current_time() + idle

    def _handle(self, cell: _Cell, envelope: Envelope | None, now: float) -> float | None | _Crashed:
        """Run the behaviour and send its outbox; the next deadline, or CRASHED."""
        result = self._run(cell, envelope, now)
        if self._handled is not None and envelope is not None:
            self._handled(envelope)
        if result is None:
            return CRASHED
        outbox, deadline = result
        self._send(outbox, now)
        return deadline

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
        if cell.retired:
            raise DeliveryError(f"{cell.address} has moved to another node; retry", Code.OFFLINE)
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
        heap = self._deadlines
        heapq.heappush(heap, (due, ticket, cell))
        if len(heap) > 2 * (self._actors - self._active) + 1024:  # drop stale entries
            heap[:] = [item for item in heap if item[2].ticket == item[1]]
            heapq.heapify(heap)
        self._wake_at(self.clock.to_trio(due))

    def _wake_at(self, when: float) -> None:
        if self._wakeup is not None and when < self._wakeup.deadline:
            self._wakeup.deadline = when

    async def _schedule(self) -> None:
        """The one timer task: times out asks, and fires passive actors' deadlines inline."""
        clock, deadlines, timeouts = self.clock, self._deadlines, self._timeouts
        while True:
            wake = min(
                clock.to_trio(deadlines[0][0]) if deadlines else math.inf,
                timeouts[0][0] if timeouts else math.inf,
            )
            with trio.CancelScope(deadline=wake) as self._wakeup:
                await trio.sleep_forever()
            self._wakeup = None
            t = trio.current_time()
            while timeouts and timeouts[0][0] <= t:
                waiter = heapq.heappop(timeouts)[2]
                if waiter.task is not None:
                    trio.lowlevel.reschedule(waiter.task)  # wakes with no reply: a timeout
                    waiter.task = None
                elif waiter.on_reply is not None and waiter.request is not None:
                    self.router.forget(waiter)
                    waiter.answer(waiter.request.reply(_timed_out(waiter.request, waiter.timeout), clock.now()))
            fired = 0
            while deadlines and clock.to_trio(deadlines[0][0]) <= t:
                due, ticket, cell = heapq.heappop(deadlines)
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


def _timed_out(request: Envelope, timeout: float) -> Error:
    return Error(
        code=Code.TIMEOUT.value,
        message=f"{request.target} did not answer {request.type!r} within {timeout} s; it may be busy: retry, or ask with a longer timeout",
    )


@asynccontextmanager
async def open_fleet(
    *,
    cars: int = 0,
    users: int = 0,
    operator: bool = False,
    epoch: float | None = None,
    capacity: int = 64,
    idle: float | None = None,
    crash_backoff: float = 60.0,
    router: AddressBook | None = None,
) -> AsyncIterator[Fleet]:
    """Run a fleet of actors for the duration of the block; leaving it stops every actor.

    With the `twin.model` rules it starts `users` people `user:u0`... and `cars` cars
    `car:0`... (car i owned by `u<i % users>`, unlinked if there are no users), and the
    `operator` desk if asked; spawn more, or other behaviours, with `Fleet.spawn`.
    `epoch` is the model time (POSIX seconds) at start, wall-clock now by default; `capacity`
    bounds each mailbox; `idle` is the default passivation delay (None: never passivate);
    `crash_backoff` is how long a failing `advance` waits before it is retried; `router` is
    the routing to use (default: a new in-process `AddressBook`; a cluster node passes its own).

    With 100,000 actors or more, call `gc.freeze()` once they are spawned and raise the
    collector's thresholds (say `gc.set_threshold(10_000, 10, 100)`): each parked actor holds
    a few objects that trio renews whenever it wakes, and with the defaults full collections
    walk them all about once a second (see bench/actors.py). Passive actors hold none.
    """
    async with trio.open_nursery() as nursery:
        fleet = Fleet(
            nursery, Clock.start(epoch), capacity=capacity, idle=idle, crash_backoff=crash_backoff, router=router
        )
        nursery.start_soon(fleet._schedule, name="twin.actors.scheduler")
        try:
            if cars or users or operator:
                _populate(fleet, cars, users, operator)
            yield fleet
        finally:
            nursery.cancel_scope.cancel()


def _populate(fleet: Fleet, cars: int, users: int, operator: bool) -> None:
    """Spawn the model's people, cars and operator desk, each person's garage filled in."""
    import twin.model as model  # the runtime itself does not depend on the rules
    from twin.protocol import Role

    garages: list[dict[str, Role]] = [{} for _ in range(users)]
    for i in range(cars):
        owner = f"u{i % users}" if users else None
        if users:
            garages[i % users][f"car:{i}"] = Role.OWNER
        fleet.spawn(f"car:{i}", model.VEHICLE, model.new_vehicle(str(i), owner=owner))
    for j, garage in enumerate(garages):
        fleet.spawn(f"user:u{j}", model.USER, attrs.evolve(model.new_user(f"u{j}"), garage=garage))
    if operator:
        fleet.spawn("operator", model.OPERATOR, model.new_operator())
