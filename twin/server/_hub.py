"""The websocket hub: the centre that holds every car's twin, and the sockets around it.

How it works:

- One `Fleet` runs every actor: the operator desk, one `user:<account>` actor per account and
  one twin per car (the `VEHICLE` model), each wrapped in `Durable` (`_durable.py`), with
  passivation of idle ones. The twin is the authority: sharing, plans, keys, alerts and the
  desk are decided here, never by a client.
- A car is *simulated* (the twin carries its commands out itself: `--demo`, tests) or
  *linked*: its telematics unit connects as a vehicle link (`hello_vehicle` with the car's
  secret) and is registered at `unit:<id>` while attached (`Unit`). The link reports events;
  the twin sends it the approved commands it must carry out and waits for its answer
  (`twin.model.telematics`). The hub tells the twin when its link attaches or drops
  (`coverage_changed`); while none is attached the car is offline. A simulated car may have a
  secret too: a link attached to it reports events (app developers' event injection), and
  the twin goes on carrying commands out itself.
- Every connection is a `Conn` (`_conn.py`); logging in is `_login.py`; every frame a
  logged-in client sends passes the trust check (`_trust.py`) before anything else sees it.
- Routing goes through the fleet's `AddressBook` (the `Router` interface) only. The hub
  registers an `Account` inbox at `app:<account>` for every account (fan-out to its
  sessions, and durable pushes into the store's queue while nobody is connected).
- An app command: unknown target -> `unknown_target` at once; otherwise `accepted`, then the
  command goes to its target with a fresh correlation id by `Fleet.ask_patiently` (no task
  per command; a full mailbox makes the session wait), and the target's reply, or the fleet's timeout, is sent back under the app's own
  id once the states it changed are committed (`Committed`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketRequest

from twin.actors import Fleet, is_request, open_fleet
from twin.cluster import ClusterNode, is_sharded, shard_of
from twin.errors import Code, DeliveryError, ProtocolError
from twin.model import OPERATOR, USER, VEHICLE, VehicleState, new_operator, new_user
from twin.protocol import (
    MAX_FRAME_BYTES,
    Accepted,
    Ack,
    Envelope,
    Error,
    GarageChanged,
    Role,
    Telematics,
    Welcome,
    decode,
    encode,
)
from twin.store import StateWriter, as_engine, open_state_writer

from ._conn import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, HUB_ADDRESS, Conn, Doomed, peek_id, ping_idle
from ._coverage import Coverage
from ._durable import Committed, CountingWriter, Durable, PushQueue, send_push
from ._login import Logins
from ._states import OPERATOR_KIND, USER_KIND, VEHICLE_KIND
from ._trust import Untrusted, app_frame, link_frame
from ._web import WebApp, WebFront

__all__ = ["Hub", "HubConfig", "HubStatistics", "open_hub", "serve_hub"]

log = logging.getLogger("twin.server")

#: where an earlier version kept a linked car's state; loaded once as that car's twin
_OLD_LINK_PREFIX = "link:"
#: actuations a link may leave unanswered before the oldest are forgotten
_ASKED_LIMIT = 256


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
    email_failures: int = 10  # failed passwords per e-mail within login_window ...
    peer_failures: int = 30  # ... or per client address ...
    login_window: float = 300.0  # ... before it is refused for the rest of the window
    login_threads: int = 1  # password hashes (scrypt) computed at once
    login_queue: int = 64  # password logins waiting for a thread; past it: `overloaded`
    ping_interval: float = 20.0  # a connection silent this long is pinged ...
    ping_timeout: float = 20.0  # ... and closed if its pong does not come within this
    flush_interval: float = 0.01  # group-commit window of the state writer
    drain_timeout: float = 2.0  # at shutdown: how long in-flight commands may still finish
    mailbox_capacity: int = 64
    idle: float | None = 300.0  # passivation of idle actors
    epoch: float | None = None  # model time at start (None: wall clock)
    send_buffer: int | None = None  # SO_SNDBUF of accepted sockets (None: the system's)
    allowed_origins: frozenset[str] = frozenset()  # browser pages (Origin) that may open a websocket; see _web.py
    web: WebApp | None = None  # a web app served over HTTP on the same port (twin serve --demo)
    cluster: bool = False  # one node of a cluster sharing the (Redis) engine; see twin.cluster
    shards: int = 64  # with `cluster`: shards of the id space (every node must agree)
    lease_ttl: float = 3.0  # with `cluster`: a node that stops renewing loses its shards after this
    lease_renew: float = 1.0  # with `cluster`: how often leases are renewed and shares rebalanced


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


# --- inboxes the hub registers in the router


class Account:
    """Inbox at `app:<account>`: fan-out to the account's sessions; durable pushes queued."""

    __slots__ = ("hub", "account", "address", "sessions", "hosted")

    def __init__(self, hub: Hub, account: str) -> None:
        self.hub = hub
        self.account = account
        self.address = "user:" + account
        self.sessions: list[Conn] = []
        self.hosted = False  # its actor and this inbox live on this node (always, but in a cluster)

    def put_nowait(self, envelope: Envelope) -> None:
        self.hub._pushes.push(self, envelope)

    async def put(self, envelope: Envelope) -> None:
        self.hub._pushes.push(self, envelope)
        await trio.lowlevel.checkpoint()


class Unit:
    """Inbox at `unit:<id>` while the car's vehicle link is attached: frames to the link."""

    __slots__ = ("link",)

    def __init__(self, link: Conn) -> None:
        self.link = link

    def put_nowait(self, envelope: Envelope) -> None:
        link = self.link
        if is_request(envelope):  # an actuation: the link may answer it, once
            asked = link.asked
            asked[envelope.id] = None
            if len(asked) > _ASKED_LIMIT:
                del asked[next(iter(asked))]  # its twin timed it out long ago
        link.send(encode(envelope))

    async def put(self, envelope: Envelope) -> None:
        self.put_nowait(envelope)
        await trio.lowlevel.checkpoint()


# --- the hub


class Hub:
    """A running hub; made by `serve_hub` (or `open_hub`) and valid while it runs."""

    def __init__(self, store: Any, config: HubConfig, fleet: Fleet, writer: StateWriter, cluster: ClusterNode | None = None) -> None:
        self.store = store
        self.engine = as_engine(store)
        self.config = config
        self.fleet = fleet
        self.router = fleet.router
        self.cluster = cluster
        self.port = 0
        self._writer = CountingWriter(writer)
        self._committed = Committed(self._writer)
        self._pushes = PushQueue(self.engine, config.push_queue, cluster)
        self._coverage = Coverage(self.router, self.now, HUB_ADDRESS)
        self._logins = Logins(self)
        self._vehicle = Durable(VEHICLE, VEHICLE_KIND, self._writer)
        self._user = Durable(USER, USER_KIND, self._writer)
        self._operator = Durable(OPERATOR, OPERATOR_KIND, self._writer)
        self._accounts: dict[str, Account] = {}
        self._linked: set[str] = set()  # vehicle ids of linked (not simulated) cars
        self._links: dict[str, Conn] = {}  # vehicle id -> its attached link
        self._conns: set[Conn] = set()
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
            vehicle_links=len(self._links),
            accounts=len(self._accounts),
            linked_cars=len(self._linked),
            commands=self._commands,
            in_flight=self._inflight,
            frames_in=self._frames_in,
            frames_out=self._frames_out,
            errors_sent=self._errors,
            slow_disconnects=self._slow,
            login_failures=self._logins.failures,
        )

    async def create_account(self, email: str, password: str) -> str:
        """Create an account (raises `CommandRefused` if it exists); return its id."""
        account = await self.engine.create_account(email, password)
        if self._home("user:" + account):
            self._ensure_account(account)
        else:  # its shard is on another node, which loads it when it is first needed
            await self.engine.save_states({"user:" + account: (USER_KIND, new_user(account))})
        await self._writer.flush()
        return account

    async def add_car(self, state: VehicleState, *, linked: bool = False, secret: bool = False) -> str | None:
        """Provision a car; return the secret of its vehicle link if `linked` or `secret`.

        A linked car is offline until its link attaches with that secret; any other car is
        simulated by its twin, and with `secret` a link may report its events too. The
        owner's garage is told either way.
        """
        return (await self.add_cars([state], linked=linked, secret=secret))[0]

    async def add_cars(self, states: list[VehicleState], *, linked: bool = False, secret: bool = False) -> list[str | None]:
        """`add_car` for many cars, with one commit at the end."""
        secrets: list[str | None] = []
        for state in states:
            address = state.address
            if await self._exists(address):
                raise ValueError(f"{address} already exists")
            if linked:
                state = attrs.evolve(state, telematics=Telematics.OFFLINE)
                self._linked.add(state.vehicle_id)
            made = None
            if linked or secret:
                made = await self.engine.create_vehicle_secret(state.vehicle_id)
            if self._home(address):
                self.fleet.spawn(address, self._vehicle, state)
                self._writer.mark(address, VEHICLE_KIND, state)
            else:  # its shard is on another node, which loads it when it is first needed
                await self.engine.save_states({address: (VEHICLE_KIND, state)})
            owner = state.contract.owner
            if owner is not None and self._home("user:" + owner):
                self._ensure_account(owner)
            if owner is not None:
                change = GarageChanged(car=address, role=Role.OWNER, added=True)
                await self.router.deliver(Envelope(change, sender=address, target="user:" + owner, ts=self.now()))
            secrets.append(made)
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

    async def ask(self, sender: str, target: str, body: Any) -> Envelope:
        """Send a command as `sender` inside the hub (provisioning, demos) and return the reply."""
        reply = await self.fleet.ask(sender, target, body, timeout=self.config.command_timeout)
        await self._writer.flush()
        return reply

    # --- placement (a cluster's nodes each hold some shards; one hub holds everything)

    def _home(self, address: str) -> bool:
        """Whether the actor at `address` lives on this hub."""
        cluster = self.cluster
        return cluster is None or shard_of(address, cluster.shards) in cluster.router.owned

    async def _exists(self, address: str) -> bool:
        """Whether an actor (or, in a cluster, a stored one) is at `address`."""
        if address in self.router:
            return True
        cluster = self.cluster
        if cluster is None or not is_sharded(address):
            return False
        known = cluster.router.known
        if address not in known:
            if await self.engine.load_state(address) is None:
                return False
            known.add(address)
        return True

    async def host_shards(self, shards: set[int]) -> None:
        """Cluster: load and spawn every stored actor of `shards`, which this node now holds."""
        assert self.cluster is not None
        count = self.cluster.shards
        operator = shard_of("operator", count) in shards
        attached = await self.cluster.attached()
        state: Any
        async for address, kind, state in self.engine.load_states_where(  # type: ignore[attr-defined]
                lambda a: is_sharded(a) and shard_of(a, count) in shards):
            if address in self.router:
                continue
            self._spawn_stored(address, kind, state, attached)
        if operator and "operator" not in self.router:
            self.fleet.spawn("operator", self._operator, new_operator())
            self._writer.mark("operator", OPERATOR_KIND, new_operator())

    def drop_shards(self, shards: set[int]) -> None:
        """Cluster: stop every actor of `shards` here; the node that takes them loads them."""
        assert self.cluster is not None
        count = self.cluster.shards
        for address in [a for a in self.router._inboxes if is_sharded(a) and shard_of(a, count) in shards]:  # type: ignore[attr-defined]
            if address.startswith("app:"):
                acct = self._accounts.get(address[len("app:"):])
                if acct is not None:
                    acct.hosted = False
                self.router.unregister(address)
            else:
                for envelope in self.fleet.retire(address):
                    self.cluster.router.acks.pop(id(envelope), None)

    async def load_actor(self, address: str) -> bool:
        """Cluster: spawn the actor at `address` (of a shard held here) from its stored state."""
        assert self.cluster is not None
        if address.startswith("app:"):  # an account's push inbox comes with its actor
            address = "user:" + address[len("app:"):]
        found = await self.engine.load_state(address)
        attached = await self.cluster.attached(["unit:" + address[len("car:"):]]) if address.startswith("car:") else set()
        if address in self.router:
            return True
        if found is None or not self._home(address):
            return False
        self._spawn_stored(address, *found, attached)
        return True

    def remote_push(self, account: str, seq: int, frame: bytes) -> None:
        """Cluster: a push the account's home node sends this node's sessions of the account."""
        acct = self._accounts.get(account)
        if acct is not None:
            for conn in acct.sessions:
                send_push(conn, seq, frame)

    def _spawn_stored(self, address: str, kind: str, state: Any, attached: set[str]) -> None:
        """Spawn a stored actor; a linked car is online if its link is attached to some node."""
        if kind == VEHICLE_KIND:
            if state.telematics is not Telematics.SIMULATED:
                self._linked.add(state.vehicle_id)
                online = Telematics.ONLINE if state.unit in attached else Telematics.OFFLINE
                if state.telematics is not online:
                    state = attrs.evolve(state, telematics=online)
            self.fleet.spawn(address, self._vehicle, state)
        elif kind == USER_KIND:
            self._ensure_account(state.account, state)
        elif kind == OPERATOR_KIND:
            self.fleet.spawn(address, self._operator, state)

    # --- start-up

    async def _load(self) -> None:
        operator = False
        cars: dict[str, VehicleState] = {}
        state: Any
        async for address, kind, state in self.engine.load_states():
            if kind == VEHICLE_KIND:
                if address.startswith(_OLD_LINK_PREFIX):  # hosted by its link before: now linked
                    state = attrs.evolve(state, telematics=Telematics.OFFLINE)
                    cars.setdefault(state.address, state)
                    self._writer.mark(state.address, VEHICLE_KIND, state)
                else:
                    cars[address] = state
            elif kind == USER_KIND:
                self._ensure_account(state.account, state)
            elif kind == OPERATOR_KIND:
                self.fleet.spawn(address, self._operator, state)
                operator = True
        for address, state in cars.items():
            if state.telematics is not Telematics.SIMULATED:
                self._linked.add(state.vehicle_id)
                if state.telematics is Telematics.ONLINE:  # the hub stopped under it: no link now
                    state = attrs.evolve(state, telematics=Telematics.OFFLINE)
            self.fleet.spawn(address, self._vehicle, state)
        if not operator:
            self.fleet.spawn("operator", self._operator, new_operator())
        for account in await self.engine.accounts():
            self._ensure_account(account)

    def _ensure_account(self, account: str, state: Any = None) -> Account:
        """The account's inbox and session list; its actor too, if it lives on this hub."""
        acct = self._accounts.get(account)
        if acct is None:
            acct = self._accounts[account] = Account(self, account)
        if acct.hosted or not self._home(acct.address):
            return acct
        if state is None:
            state = new_user(account)
            self._writer.mark("user:" + account, USER_KIND, state)
        self.fleet.spawn("user:" + account, self._user, state)
        self.router.register("app:" + account, acct)
        acct.hosted = True
        return acct

    # --- connections

    async def _handle(self, request: WebSocketRequest) -> None:
        if self._closing:
            await request.reject(503, body=b"the hub is shutting down")
            return
        ws = await request.accept()
        conn = Conn(self, ws)
        self._conns.add(conn)
        try:
            await self._serve_conn(conn)
        except Exception:  # a bug in one connection must not take the hub down
            log.exception("connection of %s failed", conn.address or "an unknown peer")
        finally:
            self._conns.discard(conn)

    async def _serve_conn(self, conn: Conn) -> None:
        ws = conn.ws
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.write_loop)
                with trio.CancelScope() as conn.scope:
                    try:
                        await self._session(conn)
                    except ConnectionClosed:
                        conn.doomed = conn.doomed or (CLOSE_NORMAL, "")
                        nursery.cancel_scope.cancel()
                    except Doomed as doomed:
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

    def _leave(self, conn: Conn) -> None:
        if conn.address.startswith("user:"):
            account = self._accounts.get(conn.account)
            if account is not None and conn in account.sessions:
                account.sessions.remove(conn)
                if not account.sessions and self.cluster is not None:
                    self.cluster.absent(account.account)
        elif conn.address.startswith("unit:"):
            self._detach_link(conn)
        for corr in list(conn.inflight):  # nobody to answer any more
            self._settle(conn, corr)

    async def _session(self, conn: Conn) -> None:
        await self._logins.hello(conn)
        if conn.address.startswith("unit:"):
            await self._link_loop(conn)
        else:
            await self._app_loop(conn)

    async def _welcome_app(self, conn: Conn, env: Envelope, account: str, token: str) -> None:
        if self.cluster is not None and "user:" + account not in self.router and self._home("user:" + account):
            await self.load_actor("user:" + account)  # ours, not loaded yet: its stored state, not a new one
        acct = self._ensure_account(account)
        conn.address = acct.address
        conn.account = account
        if self.cluster is not None and not acct.sessions:
            await self.cluster.present(account)  # also when its actor is here: it may move
        if acct.hosted:
            user = self.fleet.state_of(acct.address)
        else:  # its actor is on another node: the garage as last committed there
            stored = await self.engine.load_state(acct.address)
            user = new_user(account) if stored is None else stored[1]
        conn.send_env(Welcome(address=acct.address, token=token, garage=dict(user.garage)), HUB_ADDRESS, env.id)
        await self._pushes.backlog(acct, conn)

    # --- app sessions

    async def _app_loop(self, conn: Conn) -> None:
        ws, max_bytes, address = conn.ws, self.config.max_frame_bytes, conn.address
        while True:
            frame = await ws.get_message()
            self._frames_in += 1
            if not conn.take_token():
                conn.error(Code.OVERLOADED, f"over {self.config.rate_per_s:g} frames/s; slow down", peek_id(frame))
                continue
            if not isinstance(frame, bytes):
                conn.error(Code.MALFORMED, "send msgpack in binary frames, not text")
                continue
            try:
                env = app_frame(address, decode(frame, max_bytes=max_bytes), self.now())
            except (ProtocolError, Untrusted) as exc:
                conn.error(exc.code, exc.message, peek_id(frame))
                continue
            if type(env.body) is Ack:
                await self.engine.ack(conn.account, env.body.upto)  # type: ignore[attr-defined]
            else:
                await self._command(conn, env)

    async def _command(self, conn: Conn, env: Envelope) -> None:
        """Route an app's command: `accepted` now, the final reply when its target answers."""
        corr, target = env.id, env.target
        if corr in conn.inflight:
            conn.error(Code.CONFLICT, f"command id {corr} is still in flight; use a new id per command", corr)
            return
        if self._closing:
            conn.error(Code.OFFLINE, "the hub is shutting down; retry after reconnecting", corr)
            return
        if self.cluster is None:
            try:
                self.router.inbox(target)  # an unknown target is answered without `accepted`
            except DeliveryError as exc:
                conn.error(exc.code, exc.message, corr, sender=target)
                return
        elif not await self._exists(target):
            message = f"nothing is registered at {target!r}; commands go to car:<id> or operator"
            conn.error(Code.UNKNOWN_TARGET, message, corr, sender=target)
            return
        self._commands += 1
        conn.inflight[corr] = target
        self._inflight += 1
        if self._idle.is_set():
            self._idle = trio.Event()

        def finish(reply: Envelope) -> None:
            if self._settle(conn, corr):
                body = reply.body
                if isinstance(body, Error):
                    self._errors += 1
                frame = encode(Envelope(body, sender=target, target=conn.address, id=corr, ts=reply.ts))
                self._committed.send_after(conn, corr, target, frame)

        # routed: say so first, written by this task, so that no reply can overtake it
        await conn.send_direct(encode(Envelope(Accepted(), sender=target, target=conn.address, id=corr, ts=self.now())))
        await self.fleet.ask_patiently(conn.address, target, env.body, finish, timeout=self.config.command_timeout)

    def _settle(self, conn: Conn, corr: int) -> bool:
        """Mark the command's final reply as given; False if it was given already."""
        if conn.inflight.pop(corr, None) is None:
            return False
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()
        return True

    # --- vehicle links

    def _attach_link(self, conn: Conn, vehicle_id: str, corr: int) -> None:
        """`conn` is now the telematics unit of car `vehicle_id` (replacing an older link);
        its `welcome` (answering hello `corr`) goes out before anything else can."""
        old = self._links.get(vehicle_id)
        if old is not None:
            old.doom(CLOSE_POLICY, "replaced by a newer link of the same car")
            self._detach_link(old)
        conn.address = "unit:" + vehicle_id
        conn.account = vehicle_id
        conn.rate, conn.burst = self.config.link_rate_per_s, self.config.link_burst
        conn.tokens = conn.burst
        conn.send_env(Welcome(address=conn.address), HUB_ADDRESS, corr)
        self._links[vehicle_id] = conn
        self.router.register(conn.address, Unit(conn))
        self._coverage.tell(vehicle_id, True)

    def _detach_link(self, conn: Conn) -> None:
        vehicle_id = conn.account
        if self._links.get(vehicle_id) is not conn:
            return
        del self._links[vehicle_id]
        self.router.unregister(conn.address)
        self._coverage.tell(vehicle_id, False)

    async def _link_loop(self, conn: Conn) -> None:
        ws = conn.ws
        while True:
            # one call per frame, so that nothing decoded stays referenced while the link idles
            # (thousands of idle links would otherwise keep their last message for the collector)
            self._link_frame(conn, await ws.get_message())

    def _link_frame(self, conn: Conn, frame: bytes | str) -> None:
        self._frames_in += 1
        if not conn.take_token():
            conn.error(Code.OVERLOADED, f"over {self.config.link_rate_per_s:g} frames/s; slow down", peek_id(frame))
            return
        if not isinstance(frame, bytes):
            conn.error(Code.MALFORMED, "send msgpack in binary frames, not text")
            return
        try:
            env = link_frame(conn.address, "car:" + conn.account, conn.asked, decode(frame, max_bytes=self.config.max_frame_bytes), self.now())
        except (ProtocolError, Untrusted) as exc:
            conn.error(exc.code, exc.message, peek_id(frame))
            return
        try:
            self.router.deliver_nowait(env)
        except DeliveryError as exc:  # its twin's mailbox is full
            conn.error(exc.code, exc.message, env.id, sender=env.target)

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
        await self.settle(0.2)  # the twins take their links' coverage_changed in


async def serve_hub(
    store: Any,
    config: HubConfig = HubConfig(),
    *,
    task_status: trio.TaskStatus[Hub] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a hub on `config.host:config.port` until `Hub.shutdown()` (graceful) or cancellation.

    `store` is an open `twin.store.Store` or `Engine`. Reports the running `Hub` to `nursery.start`
    (its `port` is the bound port, useful with port 0).
    """
    cluster = None
    if config.cluster:
        cluster = await ClusterNode.join(as_engine(store), shards=config.shards, lease_ttl=config.lease_ttl, renew=config.lease_renew)
    commit = None if cluster is None else cluster.commit
    async with open_state_writer(store, interval=config.flush_interval, commit=commit) as writer:
        router = None if cluster is None else cluster.router
        async with open_fleet(epoch=config.epoch, capacity=config.mailbox_capacity, idle=config.idle, router=router) as fleet:
            async with trio.open_nursery() as services:
                hub = Hub(store, config, fleet, writer, cluster)
                if cluster is None:
                    await hub._load()
                else:
                    cluster.router.on_ops = writer.touch
                    await services.start(cluster.run, hub)
                services.start_soon(hub._pushes.run)
                await services.start(hub._coverage.run)
                services.start_soon(hub._committed.run)
                services.start_soon(ping_idle, hub._conns, config.ping_interval, config.ping_timeout)
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
                if cluster is not None:
                    await hub._writer.flush()
                    await cluster.leave()
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
