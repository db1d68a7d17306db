"""What the runtime asks of a model, and how trio's clock becomes model time.

A behaviour is pure: it takes an immutable state and returns the next one with the envelopes
to send. It never sleeps; it only says when it next wants to be woken (`next_deadline`), and
the runtime calls `advance` at that time. Model time is absolute POSIX seconds, because
weekday schedules need the calendar; `Clock` maps it onto trio's clock so that
`trio.testing.MockClock` drives every model timer exactly.
"""

from __future__ import annotations

import time
from typing import Protocol, TypeVar

import attrs
import trio

from twin.protocol import Envelope

__all__ = ["Behaviour", "Clock"]

S = TypeVar("S")


class Behaviour(Protocol[S]):
    """The sans-I/O rules of one kind of actor (vehicle, user, operator).

    Any exception escaping `step` or `advance` is a bug: the runtime keeps the last good
    state and reports a crash. Refusals are not exceptions: they are `Error` replies.
    """

    def step(self, state: S, envelope: Envelope, now: float) -> tuple[S, list[Envelope]]:
        """Handle one envelope at `now`, after firing the deadlines due at or before `now`."""
        ...

    def advance(self, state: S, now: float) -> tuple[S, list[Envelope]]:
        """Fire every deadline due at or before `now`."""
        ...

    def next_deadline(self, state: S) -> float | None:
        """When `advance` should next be called, or None if nothing is pending."""
        ...


@attrs.frozen
class Clock:
    """Model time (POSIX seconds) = `epoch` + trio time elapsed since `t0`."""

    epoch: float
    t0: float

    @classmethod
    def start(cls, epoch: float | None = None) -> Clock:
        """A clock whose model time is `epoch` (default: wall-clock now) at this trio instant."""
        return cls(time.time() if epoch is None else epoch, trio.current_time())

    def now(self) -> float:
        """The current model time."""
        return self.epoch + (trio.current_time() - self.t0)

    def to_trio(self, when: float) -> float:
        """The trio time at which model time reaches `when` (for `sleep_until`, deadlines)."""
        return self.t0 + (when - self.epoch)
