"""`ClusterNode`: one hub process's membership of a cluster sharing one Redis.

How this part works:

- Joining gives the node a number (`INCR`) and an id `n<number>`; it heart-beats in a sorted
  set. Every `renew` seconds one script (`_scripts.LEASES`) renews the leases of the shards
  it holds (`lease_ttl` ms each) and claims free ones up to its fair share, ceil(shards /
  live nodes). A node holding more than its share gives the extra ones back gracefully: it
  stops their actors, commits, then deletes the leases. A node that stops renewing (killed,
  frozen, cut off) loses its shards when their leases expire; the others claim them within
  `lease_ttl + renew` seconds and load the twins' states from Redis.
- Taking a shard: load its actors (`Host.host_shards`), create its stream's consumer group,
  claim the entries the previous holder read but never acknowledged (`XAUTOCLAIM`), handle
  those, then new ones. One reader task reads every held shard's stream and the node's own
  stream (replies to its asks, envelopes to its links, pushes to its sessions) with
  `XREADGROUP` and delivers each entry in memory.
- Committing (`commit`, the state writer's commit function): one `_scripts.COMMIT` call
  writes the dirty states and every op the router gathered since the last one, fenced by the
  leases. Shards the script finds lost are dropped here at once.
- A node whose heartbeat is older than the lease ttl is dead: the first live node sweeps it
  (forgets its stream and its links' locations) and tells each of its links' cars that its
  link is gone, so they answer `offline` rather than time out. A node that was only frozen
  (or whose Redis came back empty) finds its heartbeat gone at its next round and announces
  again where its links and sessions are, and tells its links' cars they are online.
- Redis unreachable: every loop logs, waits and retries; once the node has not renewed its
  leases for `lease_ttl` it drops every shard (another node may hold them by now), and
  claims again when Redis answers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import coredis
import coredis.exceptions
import trio

from twin.actors import is_request
from twin.protocol import CoverageChanged, Envelope, Error, decode
from twin.store import StoreError
from twin.store._codec import state_to_bytes

from ._router import ClusterRouter
from ._scripts import COMMIT, LEASES, RELEASE, SWEEP
from ._shards import DEFAULT_SHARDS, shard_of

__all__ = ["ClusterNode", "Host"]

log = logging.getLogger("twin.cluster")

_GROUP = "twin"
_READ_COUNT = 512
_BLOCK_MS = 100
_RETRY_S = 0.5
_NOT_MINE = (coredis.exceptions.ConnectionError, TimeoutError, OSError, StoreError)


class Host(Protocol):
    """What a node needs of the hub it runs in."""

    async def host_shards(self, shards: set[int]) -> None:
        """Load and spawn every actor of `shards` (they are ours now)."""
        ...

    def drop_shards(self, shards: set[int]) -> None:
        """Stop every actor of `shards` here (another node takes them)."""
        ...

    async def load_actor(self, address: str) -> bool:
        """Spawn the actor at `address` (of a shard we hold) from its stored state; False if none is stored."""
        ...

    def remote_push(self, account: str, seq: int, frame: bytes) -> None:
        """A push for `account`'s sessions on this node, queued (seq > 0) or live-only (seq 0)."""
        ...

    def now(self) -> float:
        """Model time now."""
        ...


class _Seq:
    """A queued push waiting for the commit that numbers it."""

    __slots__ = ("done", "seq")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.seq = 0


class ClusterNode:
    """This process's node of the cluster; `router` is its `Router`."""

    def __init__(self, engine: Any, number: int, *, shards: int = DEFAULT_SHARDS, lease_ttl: float = 3.0,
                 renew: float = 1.0) -> None:
        if shards < 1:
            raise ValueError(f"a cluster needs at least one shard, not {shards}")
        if renew >= lease_ttl:
            raise ValueError(f"leases must be renewed (every {renew} s) more often than they expire ({lease_ttl} s)")
        self.engine = engine
        self.client: coredis.Redis[bytes] = engine._client
        self.prefix: str = engine.prefix
        self.number = number
        self.id = f"n{number}"
        self.shards = shards
        self.lease_ms = int(lease_ttl * 1000)
        self.renew = renew
        self.router = ClusterRouter(self.prefix, self.id, number, shards)
        self.host: Host | None = None
        self.live_nodes: list[str] = []
        self._leases = self.client.register_script(LEASES)
        self._release = self.client.register_script(RELEASE)
        self._sweep = self.client.register_script(SWEEP)
        self._commit = self.client.register_script(COMMIT)
        self._loading: set[int] = set()  # taken shards whose actors are being loaded
        self._fresh: dict[int, str] = {}  # taken shard -> last pending entry read, while some are left
        self._renewed = time.monotonic()
        self._reading = trio.Event()  # set while there is something to read
        self._seqs: list[_Seq] = []  # pushes in the ops, waiting for their seqs
        self._commits = 0
        self._moves = 0
        self._rounds = 0  # lease rounds Redis answered
        self._forgotten = False  # our heartbeat was found gone; set until we announced ourselves again
        self._present: set[str] = set()  # accounts with a session on this node

    @classmethod
    async def join(cls, engine: Any, **options: Any) -> ClusterNode:
        """A new node of the cluster in `engine`'s Redis (a `RedisEngine`)."""
        client: coredis.Redis[bytes] = engine._client
        number = int(await client.incr(engine.prefix + "nodeseq"))
        node = cls(engine, number, **options)
        await node._group(node.router.node_stream(node.id))
        log.info("joined the cluster at %s as node %s (%d shards)", engine.where, node.id, node.shards)
        return node

    # --- the state writer's commit

    async def commit(self, states: Mapping[str, tuple[str, object]]) -> None:
        """Write `states` and every op gathered so far in one fenced transaction."""
        router = self.router
        ops, requests = router.take()
        pushes, self._seqs = self._seqs, []
        if not states and not ops:
            return
        args: list[Any] = [self.prefix, self.id, self.lease_ms, repr(time.time()), *ops]  # W ops numbered from 1
        for address, (kind, state) in states.items():
            args += ["S", shard_of(address, self.shards), address, kind, state_to_bytes(kind, state)]
        try:
            lost, nobody, seqs = await self._commit(args=args)
        except BaseException:
            router.give_back(ops, requests)
            self._seqs = pushes + self._seqs
            raise
        self._commits += 1
        if lost:
            self._lose({int(s) for s in lost}, "a commit found its lease gone")
        now = self.host.now() if self.host is not None else 0.0
        for number in nobody:
            envelope = requests.get(int(number))
            if envelope is not None and is_request(envelope):
                error = Error(code="offline", message=f"{envelope.target[len('unit:'):]}'s vehicle link is not attached")
                try:
                    router.deliver_nowait(envelope.reply(error, now))
                except Exception:
                    log.debug("could not refuse %r to %s", envelope.type, envelope.sender)
        for waiter, seq in zip(pushes, seqs):
            waiter.seq = int(seq)
            waiter.done.set()

    async def enqueue_many(self, items: Iterable[tuple[str, bytes]], *, keep: int | None = None) -> list[int]:
        """Queue pushes in the next commit (the `PushQueue`'s store, for a cluster); their seqs."""
        waiters: list[_Seq] = []
        for account, frame in items:
            self.router.push(shard_of("user:" + account, self.shards), account, keep or 0, frame)
            waiter = _Seq()
            self._seqs.append(waiter)
            waiters.append(waiter)
        for waiter in waiters:
            await waiter.done.wait()
        return [waiter.seq for waiter in waiters]

    # --- membership

    async def run(self, host: Host, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold shards and read streams until cancelled; started once the first lease round
        is done (the node holds its first shards, or Redis did not answer)."""
        self.host = host
        send, receive = trio.open_memory_channel[Envelope](10_000)
        self.router.missing = send
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._load_loop, receive)
            try:
                await self._lease_round()
            except _NOT_MINE as exc:
                log.warning("node %s cannot reach Redis for its first leases (%s); retrying", self.id, exc)
            task_status.started()
            nursery.start_soon(self._lease_loop)
            nursery.start_soon(self._read_loop)

    async def attached(self, units: Iterable[str] | None = None) -> set[str]:
        """Which of `units` (None: all) have their link attached to some node now."""
        key = self.prefix + "where"
        if units is None:
            return {unit.decode() for unit in await self.client.hkeys(key)}
        wanted = list(units)
        if not wanted:
            return set()
        found = await self.client.hmget(key, wanted)
        return {unit for unit, node in zip(wanted, found) if node is not None}

    async def present(self, account: str) -> None:
        """This node has a session of `account`: its pushes are copied here from now on,
        wherever the account's actor lives (it moves with its shard)."""
        self._present.add(account)
        await self.client.sadd(f"{self.prefix}sessions:{account}", [self.id])

    def absent(self, account: str) -> None:
        """This node has no session of `account` any more (recorded in the next commit)."""
        self._present.discard(account)
        self.router.absent(account)

    async def leave(self) -> None:
        """Give every shard back (after the hub committed) and stop heart-beating."""
        held = sorted(self.router.owned)
        if self.host is not None and held:
            self.host.drop_shards(set(held))
        self.router.owned.clear()
        try:
            if held:
                await self._release(args=[self.prefix, self.id, *held])
            await self.client.zrem(self.prefix + "nodes", [self.id])
            await self.client.delete([self.router.node_stream(self.id)])
        except _NOT_MINE as exc:
            log.warning("could not leave the cluster cleanly (%s); the leases expire on their own", exc)
        log.info("node %s left the cluster", self.id)

    async def _lease_loop(self) -> None:
        while True:
            await trio.sleep(self.renew)
            try:
                await self._lease_round()
            except _NOT_MINE as exc:
                log.warning("node %s cannot reach Redis to renew its leases (%s: %s); retrying", self.id, type(exc).__name__, exc)
                if self.router.owned and time.monotonic() - self._renewed > self.lease_ms / 1000:
                    self._lose(set(self.router.owned), "its leases expired while Redis was unreachable")

    async def _lease_round(self) -> None:
        owned, live, dead, unknown = await self._leases(
            args=[self.prefix, self.id, self.lease_ms, self.shards, (self.number * 7) % self.shards])
        self._renewed = time.monotonic()
        if unknown and self._rounds:
            self._forgotten = True
        self._rounds += 1
        held = {int(s) for s in owned}
        self.live_nodes = sorted(n.decode() for n in live)
        router = self.router
        lost = router.owned - held
        if lost:
            self._lose(lost, "their leases expired")
        taken = held - router.owned
        if taken:
            await self._take(taken)
        share = math.ceil(self.shards / max(1, len(live)))
        if len(router.owned) > share:
            await self._give_back(sorted(router.owned)[share - len(router.owned):])
        if self._forgotten:  # kept across a failed attempt (Redis went away meanwhile)
            await self._announce_again()
            self._forgotten = False
        if dead and self.live_nodes and self.live_nodes[0] == self.id:
            for gone in dead:
                await self._sweep_node(gone.decode())

    async def _announce_again(self) -> None:
        """This node's heartbeat was gone from Redis though the node lives (it was swept as
        dead while frozen, or Redis came back empty): say again where its links and sessions
        are, and tell the links' cars that they are online (the sweep told them otherwise)."""
        assert self.host is not None
        router = self.router
        await self._group(router.node_stream(self.id))  # the sweep deleted the stream
        units = router.units()
        for unit in units:
            router.announce(unit)  # in the next commit, before the cars hear they are online
        now = self.host.now()
        for unit in units:
            car = "car:" + unit[len("unit:"):]
            try:
                router.deliver_nowait(Envelope(CoverageChanged(online=True), sender="hub", target=car, ts=now))
            except Exception:
                log.warning("could not tell %s that its link (on node %s) is attached again", car, self.id)
        for account in sorted(self._present):
            await self.present(account)
        log.warning("node %s was taken for dead (its heartbeat was gone from Redis): announced its %d links and "
                    "the sessions of %d accounts again", self.id, len(units), len(self._present))

    async def _take(self, shards: set[int]) -> None:
        assert self.host is not None
        started = time.monotonic()
        for shard in shards:
            await self._group(self.router.shard_stream(shard))
        self.router.owned |= shards  # ours from now on (actors spawned as ours), not read until loaded
        self._loading |= shards
        try:
            await self.host.host_shards(shards)
        except BaseException:
            self._lose(shards, "loading their actors failed")
            raise
        finally:
            self._loading -= shards
        for shard in shards:
            stream = self.router.shard_stream(shard)
            start = "0-0"
            while True:  # entries read by a previous holder and never acknowledged: ours now
                found = await self.client.xautoclaim(stream, _GROUP, self.id, 0, start, count=1000, justid=True)
                start = found[0]
                if start in (b"0-0", "0-0"):
                    break
        self._fresh.update((shard, "0") for shard in shards)
        self._moves += len(shards)
        self._reading.set()
        log.info("node %s took %d shards in %.2f s (holds %d)", self.id, len(shards), time.monotonic() - started, len(self.router.owned))

    async def _give_back(self, shards: Iterable[int]) -> None:
        give = set(shards)
        assert self.host is not None
        self.router.owned -= give
        for shard in give:
            self._fresh.pop(shard, None)
        self.host.drop_shards(give)
        self._forget_acks(give)
        await self._release(args=[self.prefix, self.id, *sorted(give)])
        log.info("node %s gave %d shards back (holds %d)", self.id, len(give), len(self.router.owned))

    def _lose(self, shards: set[int], why: str) -> None:
        shards &= self.router.owned
        if not shards:
            return
        self.router.owned -= shards
        for shard in shards:
            self._fresh.pop(shard, None)
        if self.host is not None:
            self.host.drop_shards(shards)
        self._forget_acks(shards)
        log.warning("node %s lost %d shards: %s", self.id, len(shards), why)

    def _forget_acks(self, shards: set[int]) -> None:
        acks = self.router.acks
        for key in [k for k, (shard, _, _) in acks.items() if shard in shards]:
            del acks[key]

    async def _sweep_node(self, gone: str) -> None:
        units = await self._sweep(args=[self.prefix, gone])
        assert self.host is not None
        for raw in units:
            unit = raw.decode()
            car = "car:" + unit[len("unit:"):]
            try:
                self.router.deliver_nowait(Envelope(CoverageChanged(online=False), sender="hub", target=car, ts=self.host.now()))
            except Exception:
                log.warning("could not tell %s that its link (on node %s) is gone", car, gone)
        log.warning("node %s swept dead node %s: %d links gone", self.id, gone, len(units))

    async def _group(self, stream: str) -> None:
        try:
            await self.client.xgroup_create(stream, _GROUP, "0", mkstream=True)
        except coredis.exceptions.StreamDuplicateConsumerGroupError:
            pass  # made by an earlier holder

    # --- reading

    async def _read_loop(self) -> None:
        router, client = self.router, self.client
        mine = router.node_stream(self.id)
        while True:
            try:
                if self._fresh:  # first the entries an earlier holder left pending, past the last read
                    fresh = {router.shard_stream(s): after for s, after in sorted(self._fresh.items())}
                    found = await client.xreadgroup(_GROUP, self.id, fresh, count=_READ_COUNT) or {}
                    for stream in fresh:
                        entries = found.get(stream.encode(), ())
                        shard = int(stream.rpartition(":")[2])
                        if entries:
                            last = entries[-1].identifier
                            self._fresh[shard] = last.decode() if isinstance(last, bytes) else last
                        else:
                            self._fresh.pop(shard, None)
                    if found:
                        await self._deliver_all(found)
                    continue
                streams = {mine: ">"}
                for shard in sorted(router.owned - self._loading):
                    streams[router.shard_stream(shard)] = ">"
                new = await client.xreadgroup(_GROUP, self.id, streams, count=_READ_COUNT, block=_BLOCK_MS)
                if new:
                    await self._deliver_all(new)
            except coredis.exceptions.UnblockedError:  # a stream was deleted under the read (leaving)
                await self._regroup()
            except (coredis.exceptions.ResponseError, coredis.exceptions.StreamConsumerGroupError) as exc:
                # coredis raises NOGROUP as StreamConsumerGroupError ("No such key ... or consumer group")
                if not isinstance(exc, coredis.exceptions.StreamConsumerGroupError) and "NOGROUP" not in str(exc):
                    raise
                log.warning("node %s: a stream lost its consumer group (Redis restarted empty?); recreating", self.id)
                await self._regroup()
            except _NOT_MINE as exc:
                log.warning("node %s cannot read its streams (%s: %s); retrying", self.id, type(exc).__name__, exc)
                await trio.sleep(_RETRY_S)

    async def _regroup(self) -> None:
        try:
            await self._group(self.router.node_stream(self.id))
            for shard in sorted(self.router.owned):
                await self._group(self.router.shard_stream(shard))
        except _NOT_MINE:
            await trio.sleep(_RETRY_S)

    async def _deliver_all(self, found: Mapping[Any, Any]) -> None:
        router = self.router
        for raw_stream, entries in found.items():
            stream = raw_stream.decode()
            shard = -1 if stream.startswith(router.node_stream("")) else int(stream.rpartition(":")[2])
            for entry in entries:
                await self._deliver_entry(shard, stream, entry)

    async def _deliver_entry(self, shard: int, stream: str, entry: Any) -> None:
        router = self.router
        ident = entry.identifier.decode() if isinstance(entry.identifier, bytes) else entry.identifier
        fields = entry.field_values
        if shard >= 0 and shard not in router.owned:  # given away meanwhile: its next holder reads it
            return
        if b"p" in fields:
            assert self.host is not None
            self.host.remote_push(fields[b"p"].decode(), int(fields[b"s"]), bytes(fields[b"f"]))
            router.ack(-1, stream, ident)
            return
        envelope = decode(bytes(fields[b"e"]), max_bytes=1 << 30)
        target = envelope.target
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s read %s %r %s -> %s id %d", self.id, stream, envelope.type, envelope.sender, target, envelope.id)
        if shard >= 0 and target not in router:  # shard streams hold no replies to asks
            assert self.host is not None
            if not await self.host.load_actor(target):
                router.ack(shard, stream, ident)
                self._refuse(envelope, f"nothing is registered at {target!r}")
                return
        if shard >= 0 and target in router:
            router.acks[id(envelope)] = (shard, stream, ident)
        else:
            router.ack(shard, stream, ident)
        try:
            await router.deliver(envelope)
        except Exception as exc:
            router.acks.pop(id(envelope), None)
            router.ack(shard, stream, ident)
            log.debug("dropped %r from %s to %s: %s", envelope.type, envelope.sender, target, exc)

    def _refuse(self, envelope: Envelope, message: str) -> None:
        if is_request(envelope):
            assert self.host is not None
            try:
                self.router.deliver_nowait(envelope.reply(Error(code="unknown_target", message=message), self.host.now()))
            except Exception:
                pass

    async def _load_loop(self, receive: trio.MemoryReceiveChannel[Envelope]) -> None:
        """Envelopes from this node to actors of its shards that are not loaded yet."""
        assert self.host is not None
        async for envelope in receive:
            target = envelope.target
            if target not in self.router and shard_of(target, self.shards) in self.router.owned:
                if not await self.host.load_actor(target):
                    self._refuse(envelope, f"nothing is registered at {target!r}")
                    continue
            try:
                await self.router.deliver(envelope)
            except Exception as exc:
                log.debug("dropped %r to %s: %s", envelope.type, target, exc)

    def statistics(self) -> dict[str, Any]:
        """Shards held, shard moves taken, commits, live nodes: for logs and benchmarks."""
        return {"node": self.id, "shards": len(self.router.owned), "taken": self._moves, "commits": self._commits,
                "live_nodes": self.live_nodes}
