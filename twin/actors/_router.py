"""Routing: the one small interface every transport implements, and the in-process one.

A `Router` delivers an envelope to the inbox registered at its target address; failures are
raised as `DeliveryError` with a code (`unknown_target`, `offline`, `overloaded`) and turning
them into `Error` replies is the caller's policy, not the transport's. The in-process
`AddressBook` also holds replies for askers: a reply whose (target, id) is `expect`ed, and
that comes from the address that was asked, goes to that waiter, waking its parked task, and
never reaches the target's mailbox. A reply from anyone else resolves nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

import attrs
import trio
from trio.lowlevel import Abort, Task, reschedule

from twin.errors import Code, DeliveryError
from twin.protocol import Envelope

__all__ = ["AddressBook", "Inbox", "Router", "RouterStatistics"]

APP_PREFIX = "app:"  # the connected apps of an account, inside the hub
UNIT_PREFIX = "unit:"  # a car's telematics unit (its vehicle link), inside the hub


class Inbox(Protocol):
    """Where a router puts envelopes for one address (a mailbox, an actor, an app)."""

    def put_nowait(self, envelope: Envelope) -> None:
        """Accept `envelope` now or raise `DeliveryError(OVERLOADED)`."""
        ...

    async def put(self, envelope: Envelope) -> None:
        """Accept `envelope`, waiting for room."""
        ...


class Router(Protocol):
    """Deliver envelopes to their target's inbox; the interface shared by every transport."""

    async def deliver(self, envelope: Envelope) -> None:
        """Deliver, waiting while the target's inbox is full."""
        ...

    def deliver_nowait(self, envelope: Envelope) -> None:
        """Deliver now or raise `DeliveryError` (`overloaded` if the inbox is full)."""
        ...

    def register(self, address: str, inbox: Inbox) -> None:
        """Make `address` reachable; raise `ValueError` if it already is."""
        ...

    def unregister(self, address: str) -> None:
        """Make `address` unreachable again (a no-op if it is not registered)."""
        ...


@attrs.frozen
class RouterStatistics:
    """Registered addresses, envelopes delivered so far, replies awaited by askers now."""

    addresses: int
    delivered: int
    pending_asks: int


class Waiter:
    """An asker waiting for one reply: a parked task (`task`, set only while it is parked) or a
    callback (`on_reply`, cleared once called), which the reply's deliverer calls at once."""

    __slots__ = ("key", "asked", "task", "reply", "on_reply", "request", "timeout")

    def __init__(self, key: tuple[str, int], asked: str, on_reply: Callable[[Envelope], None] | None = None) -> None:
        self.key = key
        self.asked = asked  # only a reply from this address answers
        self.task: Task | None = None
        self.reply: Envelope | None = None
        self.on_reply = on_reply
        self.request: Envelope | None = None  # what was asked, and within how long (for a
        self.timeout = 0.0  # callback's timeout reply)

    @property
    def waiting(self) -> bool:
        """Whether someone still waits: a parked task or an uncalled callback."""
        return self.task is not None or self.on_reply is not None

    def answer(self, reply: Envelope) -> None:
        """Hand `reply` over: wake the parked task or call the callback (once)."""
        on_reply, self.on_reply = self.on_reply, None
        if on_reply is not None:
            # keep neither the request nor the reply: the timeout heap may hold the waiter a
            # while, and thousands of held replies would weigh on the garbage collector
            self.request = None
            on_reply(reply)
            return
        self.reply = reply
        if self.task is not None:
            reschedule(self.task)
            self.task = None

    def abort(self, _: object) -> Abort:
        """The `abort_fn` of the parked asker: it was cancelled, stop waking it."""
        self.task = None
        return Abort.SUCCEEDED


class AddressBook:
    """The in-process `Router`: a dict from address to inbox, plus the replies awaited.

    An unregistered `app:<account>` address means nobody's app is connected: delivering there
    raises `DeliveryError(OFFLINE)`; any other unregistered address raises `UNKNOWN_TARGET`.
    """

    def __init__(self) -> None:
        self._inboxes: dict[str, Inbox] = {}
        self._pending: dict[tuple[str, int], Waiter] = {}
        self._ids = itertools.count(1)
        self._delivered = 0

    def __contains__(self, address: str) -> bool:
        return address in self._inboxes

    def lookup(self, address: str) -> Inbox | None:
        return self._inboxes.get(address)

    def register(self, address: str, inbox: Inbox) -> None:
        if address in self._inboxes:
            raise ValueError(f"{address!r} is already registered; unregister it first")
        self._inboxes[address] = inbox

    def unregister(self, address: str) -> None:
        self._inboxes.pop(address, None)

    def next_id(self) -> int:
        """A correlation id no other ask through this router uses."""
        return next(self._ids)

    @property
    def awaited(self) -> int:
        """How many replies are being held for askers."""
        return len(self._pending)

    def statistics(self) -> RouterStatistics:
        return RouterStatistics(len(self._inboxes), self._delivered, len(self._pending))

    def deliver_nowait(self, envelope: Envelope) -> None:
        if not self._resolved(envelope):
            self._inbox_for(envelope).put_nowait(envelope)
        self._delivered += 1

    async def deliver(self, envelope: Envelope) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._resolved(envelope):
            self._delivered += 1
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            await self._inbox_for(envelope).put(envelope)
            self._delivered += 1

    def expect(self, sender: str, id: int, asked: str, on_reply: Callable[[Envelope], None] | None = None) -> Waiter:
        """Hold the reply from `asked` to (`sender`, `id`) for an asker instead of delivering
        it; with `on_reply`, call that with the reply as soon as it is delivered."""
        key = (sender, id)
        if key in self._pending:
            raise ValueError(f"a reply to {sender!r} with id {id} is already awaited")
        waiter = self._pending[key] = Waiter(key, asked, on_reply)
        return waiter

    def forget(self, waiter: Waiter) -> None:
        """Stop holding `waiter`'s reply (after it came, or the asker gave up)."""
        if self._pending.get(waiter.key) is waiter:
            del self._pending[waiter.key]

    def _resolved(self, envelope: Envelope) -> bool:
        """Hand `envelope` to the ask awaiting it, if it is that ask's reply."""
        if not self._pending or envelope.body.KIND != "reply":
            return False
        key = (envelope.target, envelope.id)
        waiter = self._pending.get(key)
        if waiter is None or waiter.asked != envelope.sender:
            return False
        del self._pending[key]
        waiter.answer(envelope)
        return True

    def _inbox_for(self, envelope: Envelope) -> Inbox:
        """Where `envelope` goes (a reply awaited by an asker aside); a cluster's router also
        knows of other nodes."""
        return self.inbox(envelope.target)

    def inbox(self, address: str) -> Inbox:
        """The inbox at `address`, or the `DeliveryError` a delivery there would raise."""
        inbox = self._inboxes.get(address)
        if inbox is not None:
            return inbox
        if address.startswith(APP_PREFIX):
            raise DeliveryError(
                f"no app of {address[len(APP_PREFIX):]!r} is connected; it will not see this",
                Code.OFFLINE,
            )
        if address.startswith(UNIT_PREFIX):
            raise DeliveryError(f"the vehicle link of {address[len(UNIT_PREFIX):]!r} is not attached", Code.OFFLINE)
        raise DeliveryError(
            f"nothing is registered at {address!r}; commands go to car:<id> or operator",
            Code.UNKNOWN_TARGET,
        )
