"""Telling a car's twin that its vehicle link attached or dropped, without ever losing it.

The hub learns of a link in a connection's task and cannot wait there, so `Coverage.tell` puts
`coverage_changed` straight into the twin's mailbox. When that mailbox is full the notice is
not dropped (a lost `online=True` would keep a linked car offline until its link reconnects):
the car's latest value waits in `_waiting`, and a task of `run` delivers it once the twin has
room, again if the value changed meanwhile. Later notices for a car that has one waiting only
replace it, so the twin always ends up with the link's true state, in order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import trio

from twin.actors import Router
from twin.errors import Code, DeliveryError
from twin.protocol import CoverageChanged, Envelope

__all__ = ["Coverage"]

log = logging.getLogger("twin.hub")


class Coverage:
    """Sends `coverage_changed` from `sender` to `car:<id>` through `router`; `run` must be
    running (in the hub's services) for notices that found a full mailbox."""

    def __init__(self, router: Router, now: Callable[[], float], sender: str = "hub") -> None:
        self._router = router
        self._now = now
        self._sender = sender
        self._waiting: dict[str, bool] = {}  # vehicle id -> latest value not yet delivered
        self._wake, self._woken = trio.open_memory_channel[str](math.inf)

    @property
    def waiting(self) -> int:
        """Cars whose latest notice waits for room in their twin's mailbox."""
        return len(self._waiting)

    def tell(self, vehicle_id: str, online: bool) -> None:
        """Tell car `vehicle_id`'s twin that its link is (`online`) or is not attached."""
        if vehicle_id in self._waiting:  # an older notice waits: this one must come after it
            self._waiting[vehicle_id] = online
            return
        try:
            self._router.deliver_nowait(self._envelope(vehicle_id, online))
        except DeliveryError as exc:
            if exc.code != Code.OVERLOADED:  # the car is gone: nobody to tell
                log.warning("car:%s cannot take coverage_changed(online=%s): %s", vehicle_id, online, exc.message)
                return
            self._waiting[vehicle_id] = online
            self._wake.send_nowait(vehicle_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver the notices that waited, one task per car so that one busy twin holds up
        no other."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for vehicle_id in self._woken:
                nursery.start_soon(self._deliver, vehicle_id)

    async def _deliver(self, vehicle_id: str) -> None:
        while True:
            online = self._waiting[vehicle_id]
            try:
                await self._router.deliver(self._envelope(vehicle_id, online))
            except DeliveryError as exc:
                log.warning("car:%s cannot take coverage_changed(online=%s): %s", vehicle_id, online, exc.message)
                del self._waiting[vehicle_id]
                return
            if self._waiting[vehicle_id] == online:
                del self._waiting[vehicle_id]
                return

    def _envelope(self, vehicle_id: str, online: bool) -> Envelope:
        return Envelope(CoverageChanged(online=online), sender=self._sender, target="car:" + vehicle_id, ts=self._now())
