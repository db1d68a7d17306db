"""The websocket hub: accounts, routing, persistence and protection around one actor fleet.

How it works:

- One `Fleet` runs the embedded actors: the operator desk, one `user:<account>` actor per
  account and every car that lives in the hub process. Each is wrapped in `_Durable`, which
  marks every new state in the store's `StateWriter` (group commit in a worker thread).
- Every connection is a `_Conn`: trio-websocket's reader task, the handler task reading
  frames, and one writer task draining a bounded send queue. Only tasks of that connection
  ever await its socket (its writer, or a command task of that session writing its own
  `accepted` and reply directly when nothing else is being written), so a slow reader slows
  nobody else; when its queue is full it is closed with 1008 and a reason.
- Routing goes through the fleet's `AddressBook` (the `Router` interface) only. The hub
  registers an `_Account` inbox at `app:<account>` for every account (fan-out to its
  sessions, and durable pushes into the store's queue even while nobody is connected), and
  a `_Remote` inbox at `car:<id>` for every car hosted by a vehicle link: it forwards to the
  link while it is connected and answers from the last checkpoint while it is not.
- The hub stamps the sender: frames from an app go out as `user:<account>`, frames from a
  link as `car:<id>`; a frame claiming any other sender is answered `not_authorized`.
- An app command: look the target up (unknown -> `unknown_target`), send `accepted`, ask the
  target with a fresh correlation id (timeout -> `timeout`), wait until every state changed
  so far is committed (skipped when nothing was marked since the last commit), then send the
  one final reply under the app's own id. For a car on a connected link the hot path needs
  no task: `Fleet.ask_soon` forwards the command at once, and the link's reply, the link
  dropping or the fleet's timeout calls back to send the final reply.

What is durable when (see docs/protocol.md):
- accounts, tokens and vehicle secrets: when the call creating them returns;
- embedded actors' states: before the final reply of the command that changed them is sent
  (other changes, such as events and timers, within `flush_interval` seconds);
- a linked car's state: when its `checkpoint` is committed (the link sends one at most
  about once a second while its state changes, and when it closes);
- a push to an account (alert, offer, garage change, operator notice): queued in the store
  before it is sent to any app; deleted when an app acks it.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import msgpack
import trio
import trio.testing
from trio.lowlevel import Task, current_task, reschedule, wait_task_rescheduled, Abort
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from twin.actors import Fleet, is_request, open_fleet
from twin.errors import Code, DeliveryError, ProtocolError
from twin.model import OPERATOR, USER, VEHICLE, VehicleState, new_operator, new_user
from twin.protocol import (
    MAX_FRAME_BYTES,
    Accepted,
    Ack,
    AlertSettingsGet,
    Checkpoint,
    ContractGet,
    DriverList,
    Envelope,
    Error,
    GarageChanged,
    GetVehicleInfo,
    HelloPassword,
    HelloToken,
    HelloVehicle,
    KeyList,
    Locate,
    Message,
    RemoteCheck,
    Role,
    ShareList,
    Welcome,
    WifiStatus,
    decode,
    encode,
)

from twin.store import StateWriter, open_state_writer

from ._web import WebApp, WebFront
from ._states import OPERATOR_KIND, USER_KIND, VEHICLE_KIND, from_plain, to_plain

__all__ = ["Hub", "HubConfig", "HubStatistics", "READ_COMMANDS", "serve_hub"]

log = logging.getLogger("twin.server")

HUB_ADDRESS = "hub"
#: a linked car's last checkpoint is stored at link:<id> (kind "vehicle"): the address says
#: the car is hosted by a vehicle link, not by the hub's fleet
LINK_PREFIX = "link:"
#: commands an offline linked car still answers, from its last checkpoint
READ_COMMANDS: frozenset[type[Message]] = frozenset(
    {RemoteCheck, Locate, GetVehicleInfo, ShareList, KeyList, DriverList, ContractGet, AlertSettingsGet, WifiStatus}
)
#: pushes that are only useful live; every other notice to an account is durable
EPHEMERAL_PUSHES = frozenset({"state_changed"})

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


@attrs.frozen(kw_only=True)
class HubConfig:
    """Every limit of the hub; the defaults suit a laptop and the tests."""

    host: str = "127.0.0.1"
    port: int = 8765
    max_frame_bytes: int = MAX_FRAME_BYTES  # larger frames get an error reply ...
    hard_frame_bytes: int = 4 * MAX_FRAME_BYTES  # ... and past this the socket is closed (1009)
    command_timeout: float = 5.0
    hello_timeout: float = 10.0
    rate_per_s: float = 200.0  # token bucket per app connection
    burst: float = 400.0
    link_rate_per_s: float = 1000.0  # token bucket per vehicle link
    link_burst: float = 2000.0
    send_queue: int = 512  # frames waiting for a slow reader before it is closed
    push_queue: int = 1000  # durable pushes kept per account until acked; older ones are dropped
    close_timeout: float = 2.0  # closing handshake, and draining a doomed writer
    login_attempts: int = 3  # failed hellos per connection, then close 1008
    email_failures: int = 10  # failed passwords per e-mail within email_window ...
    email_window: float = 300.0  # ... before the e-mail is refused for the rest of the window
    flush_interval: float = 0.01  # group-commit window of the state writer
    drain_timeout: float = 2.0  # at shutdown: how long in-flight commands may still finish
    mailbox_capacity: int = 64
    idle: float | None = 300.0  # passivation of idle embedded actors
    epoch: float | None = None  # model time at start (None: wall clock)
    send_buffer: int | None = None  # SO_SNDBUF of accepted sockets (None: the system's)
    allowed_origins: frozenset[str] = frozenset()  # browser pages (Origin) that may open a websocket; see _web.py
    web: WebApp | None = None  # a web app served over HTTP on the same port (twin serve --demo)


@attrs.frozen
class HubStatistics:
    app_sessions: int
    vehicle_links: int
    accounts: int
    linked_cars: int
    commands: int
    in_flight: int
    frames_in: int
    frames_out: int
    errors_sent: int
    slow_disconnects: int
    login_failures: int


# --- persistence


class _CountingWriter:
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


class _Durable:
    """A behaviour that delegates to a model and marks each new state for the writer."""

    __slots__ = ("model", "kind", "writer")

    def __init__(self, model: Any, kind: str, writer: _CountingWriter) -> None:
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


# --- connections


class _Doomed(Exception):
    """Raised in a connection's handler to end it with a close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class _Conn:
    """One websocket: a bounded send queue drained by its own writer task, a token bucket."""

    __slots__ = (
        "hub", "ws", "address", "queue", "writer", "doomed", "tokens", "stamp", "rate", "burst",
        "scope", "attempts", "inflight", "account", "sending",
    )

    def __init__(self, hub: Hub, ws: WebSocketConnection) -> None:
        self.hub = hub
        self.ws = ws
        self.address = ""
        self.account = ""
        self.queue: deque[bytes] = deque()
        self.writer: Task | None = None  # parked writer waiting for frames
        self.sending = False  # a task is inside ws.send_message
        self.doomed: tuple[int, str] | None = None
        cfg = hub.config
        self.rate, self.burst = cfg.rate_per_s, cfg.burst
        self.tokens = cfg.burst
        self.stamp = trio.current_time()
        self.scope: trio.CancelScope | None = None
        self.attempts = 0
        self.inflight: dict[int, str] = {}  # client id -> target, while a final reply is owed

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
        self.send(encode(Envelope(body, sender=sender, target=self.address or "?", id=corr, ts=self.hub.now())))

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
        now = trio.current_time()
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.stamp = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


def _peek_id(frame: bytes | str) -> int:
    """The correlation id of a frame that failed to decode, if it has a readable one."""
    if not isinstance(frame, bytes) or len(frame) > 4 * MAX_FRAME_BYTES:
        return 0
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:
        return 0
    corr = raw.get("id") if isinstance(raw, dict) else None
    return corr if type(corr) is int and 0 <= corr < 2**63 else 0


def _with_seq(frame: bytes, seq: int) -> bytes:
    raw = msgpack.unpackb(frame, raw=False)
    raw["id"] = seq
    return msgpack.packb(raw, use_bin_type=True)  # type: ignore[no-any-return]


# --- inboxes the hub registers in the router


class _Account:
    """Inbox at `app:<account>`: fan-out to the account's sessions; durable pushes queued."""

    __slots__ = ("hub", "account", "address", "sessions")

    def __init__(self, hub: Hub, account: str) -> None:
        self.hub = hub
        self.account = account
        self.address = "user:" + account
        self.sessions: list[_Conn] = []

    def put_nowait(self, envelope: Envelope) -> None:
        self.hub._push(self, envelope)

    async def put(self, envelope: Envelope) -> None:
        self.hub._push(self, envelope)
        await trio.lowlevel.checkpoint()


class _Remote:
    """Inbox at `car:<id>` of a car hosted by a vehicle link; its last checkpoint in between."""

    __slots__ = ("hub", "address", "state", "at", "link", "inflight")

    def __init__(self, hub: Hub, state: VehicleState, at: float | None) -> None:
        self.hub = hub
        self.address = state.address
        self.state = state
        self.at = at  # model time of the last checkpoint (None: nothing reported yet)
        self.link: _Conn | None = None
        self.inflight: dict[tuple[str, int], None] = {}  # requests the link has not answered

    def put_nowait(self, envelope: Envelope) -> None:
        link = self.link
        if link is not None:
            if is_request(envelope):
                self.inflight[(envelope.sender, envelope.id)] = None
            link.send(encode(envelope))
            return
        if is_request(envelope):
            self._answer_offline(envelope)

    async def put(self, envelope: Envelope) -> None:
        self.put_nowait(envelope)
        await trio.lowlevel.checkpoint()

    def _answer_offline(self, envelope: Envelope) -> None:
        hub = self.hub
        body: Message | None = None
        if type(envelope.body) in READ_COMMANDS:
            try:
                _, outbox = VEHICLE.step(self.state, envelope, hub.now() if self.at is None else self.at)
            except Exception:  # a model bug must not take the hub down
                log.exception("%s: reading the checkpoint failed", self.address)
                outbox = []
            for out in outbox:
                if out.target == envelope.sender and out.id == envelope.id and out.body.KIND == "reply":
                    body = out.body
                    break
        if body is None:
            body = Error(
                code=Code.OFFLINE.value,
                message=f"{self.address} is offline (last report {_iso(self.at)}); only reads are answered, from that report",
            )
        hub._reply(envelope.reply(body, hub.now()))

    def detach(self, link: _Conn) -> None:
        """The link is gone: every command it still owed an answer gets `offline` now."""
        if self.link is not link:
            return
        self.link = None
        inflight, self.inflight = self.inflight, {}
        now = self.hub.now()
        for sender, corr in inflight:
            error = Error(
                code=Code.OFFLINE.value,
                message=f"the link of {self.address} dropped before it answered; the command may not have run, check with remote_check",
            )
            self.hub._reply(Envelope(error, sender=self.address, target=sender, id=corr, ts=now))


def _last_report(state: VehicleState) -> float | None:
    """The latest time the car reported any value of its status (None: never)."""
    latest: float | None = None
    status = state.status
    for name in ("locked", "alarm_armed", "hazards", "power", "position", "level_pct", "range_km", "odometer_km"):
        at = getattr(status, name).at
        if at is not None and (latest is None or at > latest):
            latest = at
    for reading in status.doors_open + status.windows_pct:
        if reading.at is not None and (latest is None or reading.at > latest):
            latest = reading.at
    return latest


def _iso(t: float | None) -> str:
    if t is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# --- the hub


class Hub:
    """A running hub; made by `serve_hub` (or `open_hub`) and valid while it runs."""

    def __init__(self, store: Any, config: HubConfig, fleet: Fleet, writer: StateWriter) -> None:
        self.store = store
        self.config = config
        self.fleet = fleet
        self.router = fleet.router
        self.port = 0
        self._writer = _CountingWriter(writer)
        self._vehicle = _Durable(VEHICLE, VEHICLE_KIND, self._writer)
        self._user = _Durable(USER, USER_KIND, self._writer)
        self._operator = _Durable(OPERATOR, OPERATOR_KIND, self._writer)
        self._accounts: dict[str, _Account] = {}
        self._remotes: dict[str, _Remote] = {}
        self._conns: set[_Conn] = set()
        self._links = 0
        self._pushes: list[tuple[_Account, Envelope]] = []
        self._push_wake = trio.Event()
        self._push_lock = trio.Lock()
        self._email_failures: dict[str, deque[float]] = {}
        self._closing = False
        self._shutdown = trio.Event()
        self._inflight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._commands = 0
        self._frames_in = 0
        self._frames_out = 0
        self._errors = 0
        self._slow = 0
        self._login_failures = 0

    # --- public API

    def now(self) -> float:
        return self.fleet.clock.now()

    def shutdown(self) -> None:
        """Ask for a graceful shutdown; `serve_hub` returns once it is done."""
        self._shutdown.set()

    def statistics(self) -> HubStatistics:
        apps = sum(len(a.sessions) for a in self._accounts.values())
        return HubStatistics(
            app_sessions=apps,
            vehicle_links=self._links,
            accounts=len(self._accounts),
            linked_cars=len(self._remotes),
            commands=self._commands,
            in_flight=self._inflight,
            frames_in=self._frames_in,
            frames_out=self._frames_out,
            errors_sent=self._errors,
            slow_disconnects=self._slow,
            login_failures=self._login_failures,
        )

    async def create_account(self, email: str, password: str) -> str:
        """Create an account (raises `CommandRefused` if it exists); return its id."""
        account = await trio.to_thread.run_sync(self.store.create_account, email, password)
        self._ensure_account(account)
        await self._writer.flush()
        return account  # type: ignore[no-any-return]

    async def add_car(self, state: VehicleState, *, linked: bool = False) -> str | None:
        """Provision a car; return the secret of its vehicle link if `linked`, else None.

        An embedded car runs in the hub's fleet; a linked one is hosted by whoever connects
        with `open_vehicle_link` and that secret. The owner's garage is told either way.
        """
        return (await self.add_cars([state], linked=linked))[0]

    async def add_cars(self, states: list[VehicleState], *, linked: bool = False) -> list[str | None]:
        """`add_car` for many cars, with one commit at the end."""
        secrets: list[str | None] = []
        for state in states:
            address = state.address
            if address in self.router:
                raise ValueError(f"{address} already exists")
            secret = None
            if linked:
                secret = await trio.to_thread.run_sync(self.store.create_vehicle_secret, state.vehicle_id)
                self._remotes[state.vehicle_id] = remote = _Remote(self, state, _last_report(state))
                self.router.register(address, remote)
                self._writer.mark(LINK_PREFIX + state.vehicle_id, VEHICLE_KIND, state)
            else:
                self.fleet.spawn(address, self._vehicle, state)
                self._writer.mark(address, VEHICLE_KIND, state)
            owner = state.contract.owner
            if owner is not None:
                self._ensure_account(owner)
                change = GarageChanged(car=address, role=Role.OWNER, added=True)
                await self.router.deliver(Envelope(change, sender=address, target="user:" + owner, ts=self.now()))
            secrets.append(secret)
        await self.settle()  # the owners' actors take the garage changes in
        return secrets

    async def settle(self, timeout: float = 1.0) -> None:
        """Let the messages already sent inside the hub be handled, then write every state.

        For provisioning and the start of a recorded trace, before traffic: it waits (at most
        `timeout` seconds) until every task of the process is blocked, then flushes.
        """
        with trio.move_on_after(timeout):
            await trio.testing.wait_all_tasks_blocked(cushion=0.001)
        await self._writer.flush()

    async def ask(self, sender: str, target: str, body: Message) -> Envelope:
        """Send a command as `sender` inside the hub (provisioning, demos) and return the reply."""
        reply = await self.fleet.ask(sender, target, body, timeout=self.config.command_timeout)
        await self._writer.flush()
        return reply

    # --- start-up

    def _load(self) -> None:
        operator = False
        for address, kind, state in self.store.load_states():
            if kind == VEHICLE_KIND and address.startswith(LINK_PREFIX):
                self._remotes[state.vehicle_id] = remote = _Remote(self, state, _last_report(state))
                self.router.register(state.address, remote)
            elif kind == VEHICLE_KIND:
                self.fleet.spawn(address, self._vehicle, state)
            elif kind == USER_KIND:
                self._ensure_account(state.account, state)
            elif kind == OPERATOR_KIND:
                self.fleet.spawn(address, self._operator, state)
                operator = True
        if not operator:
            self.fleet.spawn("operator", self._operator, new_operator())
        accounts = getattr(self.store, "accounts", None)
        if accounts is not None:
            for account in accounts():
                self._ensure_account(account)

    def _ensure_account(self, account: str, state: Any = None) -> _Account:
        found = self._accounts.get(account)
        if found is not None:
            return found
        if state is None:
            state = new_user(account)
            self._writer.mark("user:" + account, USER_KIND, state)
        self.fleet.spawn("user:" + account, self._user, state)
        self._accounts[account] = acct = _Account(self, account)
        self.router.register("app:" + account, acct)
        return acct

    # --- pushes to accounts

    def _push(self, account: _Account, envelope: Envelope) -> None:
        if envelope.body.TYPE in EPHEMERAL_PUSHES or envelope.body.KIND == "reply":
            if account.sessions:
                frame = encode(Envelope(envelope.body, sender=envelope.sender, target=account.address, id=0, ts=envelope.ts))
                for conn in account.sessions:
                    conn.send(frame)
            return
        self._pushes.append((account, envelope))
        self._push_wake.set()

    async def _pusher(self) -> None:
        """Queue durable pushes in the store (a batch per transaction), then send them."""
        while True:
            await self._push_wake.wait()
            self._push_wake = trio.Event()
            batch, self._pushes = self._pushes, []
            frames = [
                (account, encode(Envelope(env.body, sender=env.sender, target=account.address, id=0, ts=env.ts)))
                for account, env in batch
            ]
            async with self._push_lock:
                try:
                    seqs = await trio.to_thread.run_sync(
                        partial(self.store.enqueue_many, [(a.account, frame) for a, frame in frames], keep=self.config.push_queue)
                    )
                except Exception:
                    log.exception("could not queue %d pushes; retrying in 1 s", len(frames))
                    self._pushes[:0] = batch  # nothing is dropped: retried, in order
                    self._push_wake.set()
                    await trio.sleep(1.0)
                    continue
                for (account, frame), seq in zip(frames, seqs):
                    if account.sessions:
                        framed = _with_seq(frame, seq)
                        for conn in account.sessions:
                            conn.send(framed)

    # --- connections

    async def _handle(self, request: WebSocketRequest) -> None:
        if self._closing:
            await request.reject(503, body=b"the hub is shutting down")
            return
        ws = await request.accept()
        conn = _Conn(self, ws)
        self._conns.add(conn)
        try:
            await self._serve_conn(conn)
        except Exception:  # a bug in one connection must not take the hub down
            log.exception("connection of %s failed", conn.address or "an unknown peer")
        finally:
            self._conns.discard(conn)

    async def _serve_conn(self, conn: _Conn) -> None:
        ws = conn.ws
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.write_loop)
                with trio.CancelScope() as conn.scope:
                    try:
                        async with trio.open_nursery() as commands:
                            await self._session(conn, commands)
                    except* ConnectionClosed:
                        conn.doomed = conn.doomed or (CLOSE_NORMAL, "")
                        nursery.cancel_scope.cancel()
                    except* _Doomed as group:
                        doomed = group.exceptions[0]
                        assert isinstance(doomed, _Doomed)
                        conn.doom(doomed.code, doomed.reason)
                if conn.doomed is None:
                    conn.doom(CLOSE_NORMAL, "")
                # let the writer drain what is queued, within a bound
                nursery.cancel_scope.deadline = trio.current_time() + self.config.close_timeout
        finally:
            self._leave(conn)
            code, reason = conn.doomed or (CLOSE_NORMAL, "")
            with trio.move_on_after(self.config.close_timeout) as scope:
                scope.shield = True
                await ws.aclose(code, reason or None)

    def _leave(self, conn: _Conn) -> None:
        if conn.address.startswith("user:"):
            account = self._accounts.get(conn.account)
            if account is not None and conn in account.sessions:
                account.sessions.remove(conn)
        elif conn.address.startswith("car:"):
            remote = self._remotes.get(conn.account)
            if remote is not None and remote.link is conn:
                remote.detach(conn)
                self._links -= 1
        for corr in list(conn.inflight):  # nobody to answer any more
            self._settle(conn, corr)

    async def _session(self, conn: _Conn, nursery: trio.Nursery) -> None:
        ws = conn.ws
        while not conn.address:
            frame: bytes | str | None = None
            with trio.move_on_after(self.config.hello_timeout):
                frame = await ws.get_message()
            if frame is None:
                raise _Doomed(CLOSE_POLICY, f"no hello within {self.config.hello_timeout} s")
            self._frames_in += 1
            try:
                env = decode(frame, max_bytes=self.config.max_frame_bytes) if isinstance(frame, bytes) else None
            except ProtocolError as exc:
                conn.error(exc.code, exc.message, _peek_id(frame))
                raise _Doomed(CLOSE_POLICY, "the first frame must be a hello") from None
            if env is None:
                conn.error(Code.LOGIN_REQUIRED, "log in first: the first frame must be a hello, not a text frame", _peek_id(frame))
                raise _Doomed(CLOSE_POLICY, "the first frame must be a hello")
            match env.body:
                case HelloPassword(email=email, password=password):
                    await self._hello_password(conn, env, email, password)
                case HelloToken(token=token):
                    await self._hello_token(conn, env, token)
                case HelloVehicle(vehicle_id=vehicle_id, secret=secret):
                    await self._hello_vehicle(conn, env, vehicle_id, secret)
                case _:
                    conn.error(Code.LOGIN_REQUIRED, f"log in first: the first frame must be a hello, not {env.type!r}", _peek_id(frame))
                    raise _Doomed(CLOSE_POLICY, "the first frame must be a hello")
        if conn.address.startswith("car:"):
            await self._link_loop(conn)
        else:
            await self._app_loop(conn, nursery)

    # --- logging in

    def _failed_login(self, conn: _Conn, corr: int, message: str, code: Code = Code.BAD_CREDENTIALS) -> None:
        self._login_failures += 1
        conn.attempts += 1
        conn.error(code, message, corr)
        if conn.attempts >= self.config.login_attempts:
            raise _Doomed(CLOSE_POLICY, f"{conn.attempts} failed logins on this connection")

    async def _hello_password(self, conn: _Conn, env: Envelope, email: str, password: str) -> None:
        key = email.strip().lower()
        now = trio.current_time()
        failures = self._email_failures.get(key)
        if failures is not None:
            while failures and failures[0] <= now - self.config.email_window:
                failures.popleft()
            if len(failures) >= self.config.email_failures:
                wait = failures[0] + self.config.email_window - now
                self._failed_login(conn, env.id, f"too many failed logins for this e-mail; try again in {math.ceil(wait)} s", Code.LOGIN_LOCKED)
                return
        account = await trio.to_thread.run_sync(self.store.check_password, email, password)
        if account is None:
            self._email_failures.setdefault(key, deque()).append(now)
            self._failed_login(conn, env.id, "wrong e-mail or password")
            return
        token = await trio.to_thread.run_sync(self.store.issue_token, account)
        await self._welcome_app(conn, env, account, token)

    async def _hello_token(self, conn: _Conn, env: Envelope, token: str) -> None:
        account = await trio.to_thread.run_sync(self.store.account_for_token, token)
        if account is None:
            self._failed_login(conn, env.id, "unknown or revoked token; log in with e-mail and password")
            return
        await self._welcome_app(conn, env, account, token)

    async def _welcome_app(self, conn: _Conn, env: Envelope, account: str, token: str) -> None:
        acct = self._ensure_account(account)
        conn.address = acct.address
        conn.account = account
        garage = dict(self.fleet.state_of(acct.address).garage)
        conn.send_env(Welcome(address=acct.address, token=token, garage=garage), HUB_ADDRESS, env.id)
        async with self._push_lock:  # no push is sent twice or out of order
            acct.sessions.append(conn)
            waiting = await trio.to_thread.run_sync(self.store.undelivered, account)
            for seq, frame in waiting:
                conn.send(_with_seq(frame, seq))

    async def _hello_vehicle(self, conn: _Conn, env: Envelope, vehicle_id: str, secret: str) -> None:
        remote = self._remotes.get(vehicle_id)
        ok = await trio.to_thread.run_sync(self.store.check_vehicle_secret, vehicle_id, secret)
        if remote is None or not ok:
            self._failed_login(conn, env.id, "unknown vehicle or wrong secret")
            return
        old = remote.link
        if old is not None:
            old.doom(CLOSE_POLICY, "replaced by a newer link of the same car")
            remote.detach(old)
            self._links -= 1
        conn.address = remote.address
        conn.account = vehicle_id
        conn.rate, conn.burst = self.config.link_rate_per_s, self.config.link_burst
        conn.tokens = conn.burst
        conn.send_env(Welcome(address=remote.address), HUB_ADDRESS, env.id)
        at = self.now() if remote.at is None else remote.at
        conn.send_env(Checkpoint(state=to_plain(remote.state), at=at), HUB_ADDRESS)
        remote.link = conn
        self._links += 1

    # --- app sessions

    async def _app_loop(self, conn: _Conn, nursery: trio.Nursery) -> None:
        ws, max_bytes = conn.ws, self.config.max_frame_bytes
        address, router = conn.address, self.router
        while True:
            frame = await ws.get_message()
            self._frames_in += 1
            if not conn.take_token():
                conn.error(Code.OVERLOADED, f"over {self.config.rate_per_s:g} frames/s; slow down", _peek_id(frame))
                continue
            if not isinstance(frame, bytes):
                conn.error(Code.MALFORMED, "send msgpack in binary frames, not text")
                continue
            try:
                env = decode(frame, max_bytes=max_bytes)
            except ProtocolError as exc:
                conn.error(exc.code, exc.message, _peek_id(frame))
                continue
            if env.sender and env.sender != address:
                conn.error(Code.NOT_AUTHORIZED, f"this session speaks as {address}, not {env.sender!r}; leave 'from' empty", env.id)
                continue
            kind = env.body.KIND
            if kind == "command":
                if env.id in conn.inflight:
                    conn.error(Code.CONFLICT, f"command id {env.id} is still in flight; use a new id per command", env.id)
                elif self._closing:
                    conn.error(Code.OFFLINE, "the hub is shutting down; retry after reconnecting", env.id)
                else:
                    conn.inflight[env.id] = env.target
                    self._inflight += 1
                    self._idle = trio.Event() if self._idle.is_set() else self._idle
                    remote = router.lookup(env.target)
                    if type(remote) is _Remote and remote.link is not None:
                        self._command_to_link(conn, env)
                        # routed: say so, written by this task (the reply cannot overtake it)
                        accepted = Envelope(Accepted(), sender=env.target, target=address, id=env.id, ts=self.now())
                        await conn.send_direct(encode(accepted))
                    else:
                        nursery.start_soon(self._command, conn, env)
            elif type(env.body) is Ack:
                await trio.to_thread.run_sync(self.store.ack, conn.account, env.body.upto)  # type: ignore[attr-defined]
            elif kind == "session":
                conn.error(Code.ALREADY_LOGGED_IN, f"already logged in as {address}", env.id)
            else:
                conn.error(Code.NOT_AUTHORIZED, f"apps send commands and acks, not {kind} messages like {env.type!r}", env.id)

    async def _command(self, conn: _Conn, env: Envelope) -> None:
        target, corr, router = env.target, env.id, self.router
        self._commands += 1
        body: Message
        try:
            try:
                router.inbox(target)  # an unknown target is answered without `accepted`
            except DeliveryError as exc:
                body = Error(code=exc.code.value, message=exc.message)
            else:
                await conn.send_direct(encode(Envelope(Accepted(), sender=target, target=conn.address, id=corr, ts=self.now())))
                try:
                    reply = await self.fleet.ask(conn.address, target, env.body, timeout=self.config.command_timeout)
                except DeliveryError as exc:
                    body = Error(code=exc.code.value, message=exc.message)
                else:
                    body = reply.body
                    if self._writer.dirty:
                        try:
                            await self._writer.flush()  # durable before the reply is sent
                        except Exception as exc:
                            log.exception("could not commit the states changed by %r", env.type)
                            body = Error(code=Code.INTERNAL.value, message=f"the hub could not save the result ({type(exc).__name__}); retry, and check the outcome with a read")
        finally:
            owed = self._settle(conn, corr)
        if owed:
            if isinstance(body, Error):
                self._errors += 1
            await conn.send_direct(encode(Envelope(body, sender=target, target=conn.address, id=corr, ts=self.now())))

    def _command_to_link(self, conn: _Conn, env: Envelope) -> None:
        """The hot path for a car on a connected link, with no task: forward the command, and
        let its reply (or the link dropping, or the fleet's timeout) finish it. The caller
        sends `accepted` right after."""
        self._commands += 1
        target, corr = env.target, env.id

        def finish(reply: Envelope) -> None:
            if self._settle(conn, corr):
                body = reply.body
                if isinstance(body, Error):
                    self._errors += 1
                conn.send(encode(Envelope(body, sender=target, target=conn.address, id=corr, ts=reply.ts)))

        self.fleet.ask_soon(conn.address, target, env.body, finish, timeout=self.config.command_timeout)

    def _reply(self, envelope: Envelope) -> None:
        """Deliver a reply from outside the fleet (a link, an offline car's checkpoint); one
        nobody waits for any more is dropped."""
        try:
            self.router.deliver_nowait(envelope)
        except DeliveryError:
            pass

    def _settle(self, conn: _Conn, corr: int) -> bool:
        """Mark the command's final reply as given; False if it was given already."""
        if conn.inflight.pop(corr, None) is None:
            return False
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()
        return True

    # --- vehicle links

    async def _link_loop(self, conn: _Conn) -> None:
        ws, remote = conn.ws, self._remotes[conn.account]
        while True:
            # one call per frame, so that nothing decoded stays referenced while the link idles
            # (thousands of idle links would otherwise keep their last message for the collector)
            self._link_frame(conn, remote, await ws.get_message())

    def _link_frame(self, conn: _Conn, remote: _Remote, frame: bytes | str) -> None:
        self._frames_in += 1
        address = conn.address
        if not conn.take_token():
            conn.error(Code.OVERLOADED, f"over {self.config.link_rate_per_s:g} frames/s; slow down", _peek_id(frame))
            return
        try:
            env = decode(frame, max_bytes=self.config.max_frame_bytes) if isinstance(frame, bytes) else None
        except ProtocolError as exc:
            conn.error(exc.code, exc.message, _peek_id(frame))
            return
        if env is None:
            conn.error(Code.MALFORMED, "send msgpack in binary frames, not text")
            return
        if env.sender and env.sender != address:
            conn.error(Code.NOT_AUTHORIZED, f"this link speaks as {address}, not {env.sender!r}", env.id)
            return
        body = env.body
        kind = body.KIND
        if kind == "reply":
            remote.inflight.pop((env.target, env.id), "")
            self._reply(Envelope(body, sender=address, target=env.target, id=env.id, ts=env.ts))
        elif kind == "session":
            if type(body) is Checkpoint:
                self._checkpoint(conn, remote, env, body)  # type: ignore[arg-type]
            else:
                conn.error(Code.ALREADY_LOGGED_IN, f"already linked as {address}", env.id)
        else:
            out = Envelope(body, sender=address, target=env.target, id=env.id, ts=env.ts)
            try:
                self.router.deliver_nowait(out)
            except DeliveryError as exc:
                if is_request(out):
                    conn.send(encode(out.reply(Error(code=exc.code.value, message=exc.message), self.now())))

    def _checkpoint(self, conn: _Conn, remote: _Remote, env: Envelope, body: Checkpoint) -> None:
        try:
            state = from_plain(VEHICLE_KIND, body.state)
        except ProtocolError as exc:
            conn.error(exc.code, f"checkpoint refused: {exc.message}", env.id)
            return
        if state.vehicle_id != conn.account:
            conn.error(Code.NOT_AUTHORIZED, f"a checkpoint of {conn.address} must have vehicle_id {conn.account!r}", env.id)
            return
        remote.state, remote.at = state, body.at
        self._writer.mark(LINK_PREFIX + state.vehicle_id, VEHICLE_KIND, state)

    # --- shutdown

    async def _graceful(self, listener: trio.CancelScope) -> None:
        """Stop accepting, let in-flight commands finish (bounded), persist, close with 1001."""
        self._closing = True
        listener.cancel()
        with trio.move_on_after(self.config.drain_timeout):
            await self._idle.wait()
        for conn in list(self._conns):
            for corr, target in list(conn.inflight.items()):
                if self._settle(conn, corr):
                    message = "the hub shut down before the command finished; its outcome is unknown: check after reconnecting"
                    conn.error(Code.OFFLINE, message, corr, sender=target)
            conn.doom(CLOSE_GOING_AWAY, "the hub is shutting down")
        await self._writer.flush()
        with trio.move_on_after(self.config.close_timeout + 1):
            while self._conns:
                await trio.sleep(0.01)
        await self._writer.flush()


async def serve_hub(
    store: Any,
    config: HubConfig = HubConfig(),
    *,
    task_status: trio.TaskStatus[Hub] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a hub on `config.host:config.port` until `Hub.shutdown()` (graceful) or cancellation.

    `store` is an open `twin.store.Store`. Reports the running `Hub` to `nursery.start`
    (its `port` is the bound port, useful with port 0).
    """
    async with open_state_writer(store, interval=config.flush_interval) as writer:
        async with open_fleet(epoch=config.epoch, capacity=config.mailbox_capacity, idle=config.idle) as fleet:
            async with trio.open_nursery() as services:
                hub = Hub(store, config, fleet, writer)
                hub._load()
                services.start_soon(hub._pusher)
                async with trio.open_nursery() as connections:
                    listener = trio.CancelScope()

                    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
                    if config.send_buffer is not None:  # accepted sockets inherit it
                        for each in listeners:
                            each.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config.send_buffer)
                    server = WebFront(  # websockets, plus plain HTTP for `config.web`
                        hub._handle,
                        listeners,
                        config,
                        handler_nursery=connections,
                        message_queue_size=1,
                        max_message_size=config.hard_frame_bytes,
                        connect_timeout=config.hello_timeout,
                        disconnect_timeout=config.close_timeout,
                    )

                    async def listen(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
                        with listener:
                            await server.run(task_status=task_status)

                    await connections.start(listen)
                    hub.port = server.port
                    task_status.started(hub)
                    await hub._shutdown.wait()
                    await hub._graceful(listener)
                    connections.cancel_scope.cancel()
                services.cancel_scope.cancel()


@asynccontextmanager
async def open_hub(store: Any, config: HubConfig = HubConfig()) -> AsyncIterator[Hub]:
    """Run a hub for the duration of the block; leaving it shuts the hub down gracefully."""
    async with trio.open_nursery() as nursery:
        hub: Hub = await nursery.start(serve_hub, store, config)
        try:
            yield hub
        finally:
            hub.shutdown()
