"""A bounded FIFO mailbox with one consumer, small enough to give to 100,000 actors.

A trio memory channel pair costs a few objects per actor; this is one slotted object whose
queue exists only while something is queued. The consumer parks with
`wait_task_rescheduled` and is rescheduled by the put that fills the empty queue. Producers
that find it full park in FIFO order with their envelope; each `receive` hands the oldest
waiting envelope over into the queue, so order is kept and no producer is woken for nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import overload

import attrs
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from twin.errors import Code, DeliveryError
from twin.protocol import Envelope

__all__ = ["Mailbox", "MailboxStatistics"]


@attrs.frozen
class MailboxStatistics:
    """A snapshot of a mailbox: how full it is and who is waiting on it."""

    capacity: int
    queued: int
    waiting_senders: int
    receiver_waiting: bool


class Mailbox:
    """Bounded FIFO of envelopes for one consumer task; `owner` names it in errors."""

    __slots__ = ("owner", "capacity", "_queue", "_receiver", "_senders", "_abort")

    def __init__(self, capacity: int, owner: str = "") -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, not {capacity}")
        self.owner = owner
        self.capacity = capacity
        self._queue: deque[Envelope] | None = None
        self._receiver: Task | None = None
        self._senders: deque[tuple[Task, Envelope]] | None = None
        self._abort: Callable[[object], Abort] | None = None

    def __len__(self) -> int:
        return 0 if self._queue is None else len(self._queue)

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            capacity=self.capacity,
            queued=len(self),
            waiting_senders=0 if self._senders is None else len(self._senders),
            receiver_waiting=self._receiver is not None,
        )

    def put_nowait(self, envelope: Envelope) -> None:
        """Queue `envelope`, or raise `DeliveryError(OVERLOADED)` if the mailbox is full."""
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self.capacity:
            raise DeliveryError(
                f"mailbox of {self.owner or 'actor'} is full ({self.capacity} envelopes);"
                " retry later, or use a waiting send",
                Code.OVERLOADED,
            )
        queue.append(envelope)
        if self._receiver is not None:
            reschedule(self._receiver)
            self._receiver = None

    async def put(self, envelope: Envelope) -> None:
        """Queue `envelope`, waiting for room if the mailbox is full (backpressure)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if len(self) < self.capacity:
            self.put_nowait(envelope)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        task = current_task()
        if self._senders is None:
            self._senders = deque()
        self._senders.append((task, envelope))

        def abort(_: object) -> Abort:
            senders = self._senders
            assert senders is not None
            for i, (waiting, _envelope) in enumerate(senders):
                if waiting is task:
                    del senders[i]
                    break
            if not senders:
                self._senders = None
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    @overload
    async def receive(self) -> Envelope: ...

    @overload
    async def receive(self, deadline: float) -> Envelope | None: ...

    async def receive(self, deadline: float = math.inf) -> Envelope | None:
        """The oldest envelope, waiting for one until `deadline` (trio time), else None.

        Returns None at once, without a checkpoint, if the mailbox is empty and `deadline`
        has passed: the caller has something due and will come back.
        """
        if self._queue is not None:
            await trio.lowlevel.checkpoint()
        elif deadline == math.inf:
            await self.parked()
        elif deadline > trio.current_time():
            with trio.CancelScope(deadline=deadline):
                await self.parked()
        return self.get_nowait()

    def parked(self) -> Awaitable[object]:
        """Park the consumer until a put fills the empty mailbox; await the result at once.

        `receive` is this, then `get_nowait`. A loop that calls the two itself keeps one
        coroutine less alive while it waits, which counts with 100,000 parked actors.
        """
        self._receiver = current_task()
        if self._abort is None:
            self._abort = self._abort_receive  # made once: a parked consumer holds it anyway
        return wait_task_rescheduled(self._abort)

    def get_nowait(self) -> Envelope | None:
        """The oldest envelope, or None if the mailbox is empty."""
        queue = self._queue
        if queue is None:
            return None
        envelope = queue.popleft()
        if self._senders is not None:  # hand the oldest waiting sender's envelope over
            task, waiting = self._senders.popleft()
            if not self._senders:
                self._senders = None
            queue.append(waiting)
            reschedule(task)
        elif not queue:
            self._queue = None
        return envelope

    def abandon(self) -> list[Envelope]:
        """Give up on this mailbox (its actor moved away): wake the parked consumer, let every
        waiting sender go, and return what was queued or waiting, undelivered."""
        dropped = list(self._queue or ())
        self._queue = None
        for task, envelope in self._senders or ():
            dropped.append(envelope)
            reschedule(task)
        self._senders = None
        if self._receiver is not None:
            reschedule(self._receiver)
            self._receiver = None
        return dropped

    def _abort_receive(self, _: object) -> Abort:
        self._receiver = None
        return Abort.SUCCEEDED
