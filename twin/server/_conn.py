"""One websocket connection of the hub and its protection: send queue, rate limit, pings.

How this part works: every connection is a `Conn`. Frames for it are queued (`send`, never
blocking the caller) and written by the connection's own writer task, so a slow reader slows
nobody else; past `send_queue` frames it is closed with 1008 and a reason. A command's own
task may write directly when nothing else is being written (`send_direct`: one task switch
less on the hot path). A token bucket bounds the frames a client may send per second; past
it, frames get `overloaded` and the connection stays. `doom` ends a connection: its reader
stops, its queue drains within `close_timeout`, and it closes with the code given. The hub's
pinger (`ping_idle`) pings every connection that sent nothing for `ping_interval` seconds,
a slice of them at a time, and dooms one whose pong does not come within `ping_timeout`: a
dead peer (a phone that left coverage, a killed process) is noticed and its car goes offline.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import msgpack
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled
from trio_websocket import ConnectionClosed, WebSocketConnection

from twin.errors import Code
from twin.protocol import MAX_FRAME_BYTES, Envelope, Error, Message, encode

if TYPE_CHECKING:
    from ._hub import Hub

HUB_ADDRESS = "hub"
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008


class Doomed(Exception):
    """Raised in a connection's handler to end it with a close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class Conn:
    """One websocket: a bounded send queue drained by its own writer task, a token bucket."""

    __slots__ = (
        "hub", "ws", "address", "queue", "writer", "doomed", "tokens", "stamp", "rate", "burst",
        "scope", "attempts", "inflight", "account", "sending", "seen", "peer", "asked", "pushes", "last_seq",
    )

    def __init__(self, hub: Hub, ws: WebSocketConnection) -> None:
        self.hub = hub
        self.ws = ws
        self.address = ""  # who this connection speaks as once logged in: user:<a> or unit:<id>
        self.account = ""  # the account, or the vehicle id of a link
        self.queue: deque[bytes] = deque()
        self.writer: Task | None = None  # parked writer waiting for frames
        self.sending = False  # a task is inside ws.send_message
        self.doomed: tuple[int, str] | None = None
        cfg = hub.config
        self.rate, self.burst = cfg.rate_per_s, cfg.burst
        self.tokens = cfg.burst
        self.stamp = self.seen = trio.current_time()
        self.scope: trio.CancelScope | None = None
        self.attempts = 0
        self.inflight: dict[int, str] = {}  # app: client id -> target, while a final reply is owed
        self.asked: dict[int, None] = {}  # link: ids of actuations it has not answered yet
        self.pushes: list[tuple[int, bytes]] | None = None  # app: pushes held while its backlog is read
        self.last_seq = 0  # app: the highest push seq sent to it
        remote = ws.remote
        self.peer = getattr(remote, "address", str(remote))

    # sending: never blocks the caller

    def send(self, frame: bytes) -> None:
        if self.doomed is not None:
            return
        if len(self.queue) >= self.hub.config.send_queue:
            self.hub._slow += 1
            self.queue.clear()  # only the frame being written, then the close, are still sent
            self.doom(CLOSE_POLICY, f"send queue full ({self.hub.config.send_queue} frames): the client does not read fast enough")
            return
        self.queue.append(frame)
        if self.writer is not None:
            reschedule(self.writer)
            self.writer = None

    async def send_direct(self, frame: bytes) -> None:
        """`send`, but written by the calling task itself when nothing else is being written
        (one task switch less on the hot path); queued behind the others otherwise."""
        if self.doomed is not None:
            return
        if self.sending or self.queue:
            self.send(frame)
            return
        self.sending = True
        try:
            await self.ws.send_message(frame)
            self.hub._frames_out += 1
        except ConnectionClosed:
            self.doom(CLOSE_NORMAL, "")
        finally:
            self.sending = False
            if (self.queue or self.doomed is not None) and self.writer is not None:
                reschedule(self.writer)
                self.writer = None

    def send_env(self, body: Message, sender: str, corr: int = 0) -> None:
        target = self.address or "anonymous"  # not logged in yet: nobody to name
        self.send(encode(Envelope(body, sender=sender, target=target, id=corr, ts=self.hub.now())))

    def error(self, code: Code, message: str, corr: int = 0, sender: str = HUB_ADDRESS) -> None:
        self.hub._errors += 1
        self.send_env(Error(code=code.value, message=message), sender, corr)

    def doom(self, code: int, reason: str) -> None:
        """End this connection: stop reading, drain what is queued, close with `code`."""
        if self.doomed is None:
            self.doomed = (code, reason)
            if self.writer is not None:
                reschedule(self.writer)
                self.writer = None
            if self.scope is not None:
                self.scope.cancel()

    async def write_loop(self) -> None:
        ws, queue = self.ws, self.queue
        while True:
            if not queue or self.sending:
                if self.doomed is not None and not self.sending:
                    return
                self.writer = current_task()

                def abort(_: object) -> Abort:
                    self.writer = None
                    return Abort.SUCCEEDED

                await wait_task_rescheduled(abort)
                continue
            frame = queue.popleft()
            self.sending = True
            try:
                await ws.send_message(frame)
            except ConnectionClosed:
                self.doom(CLOSE_NORMAL, "")
                return
            finally:
                self.sending = False
            self.hub._frames_out += 1

    def take_token(self) -> bool:
        """Count one frame received: False if it is over the connection's rate."""
        now = self.seen = trio.current_time()
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.stamp = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True

    async def ping(self, timeout: float) -> None:
        """Ping the peer; doom the connection if no pong comes within `timeout` seconds."""
        with trio.move_on_after(timeout) as waited:
            try:
                await self.ws.ping()
            except (ConnectionClosed, ValueError):  # closed meanwhile, or a ping already out
                return
        if waited.cancelled_caught:
            self.doom(CLOSE_POLICY, f"no pong within {timeout:g} s")


async def ping_idle(conns: set[Conn], interval: float, timeout: float) -> None:
    """Forever: ping each connection that sent nothing for `interval` seconds.

    The connections are visited in slices, one round per `interval`, rather than all at once:
    thousands of links that connected together would otherwise be pinged in one burst, and the
    burst stalls every command for a few hundred milliseconds. A dead peer is closed within
    two intervals and `timeout` of its last frame."""
    tick = min(0.1, interval / 4)
    due: list[Conn] = []
    per_tick = 1
    async with trio.open_nursery() as nursery:
        while True:
            await trio.sleep(tick)
            if not due:
                due = list(conns)  # the next round
                per_tick = max(1, math.ceil(len(due) * tick / interval))
            idle_since = trio.current_time() - interval
            for conn in due[-per_tick:]:
                if conn.seen <= idle_since and conn.doomed is None:
                    conn.seen = trio.current_time()  # one ping at a time per connection
                    nursery.start_soon(conn.ping, timeout)
            del due[-per_tick:]


def peek_id(frame: bytes | str) -> int:
    """The correlation id of a frame that failed to decode, if it has a readable one."""
    if not isinstance(frame, bytes) or len(frame) > 4 * MAX_FRAME_BYTES:
        return 0
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:
        return 0
    corr = raw.get("id") if isinstance(raw, dict) else None
    return corr if type(corr) is int and 0 <= corr < 2**63 else 0
