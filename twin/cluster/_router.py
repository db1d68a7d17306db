"""`ClusterRouter`: the `Router` of a cluster node, an `AddressBook` whose misses go to Redis.

How this part works: an address registered on this node (an actor of a shard it holds, an
account's push inbox, a link attached here) is delivered to in memory, exactly as the
embedded router does. Anything else becomes an *op* of the node's next commit (see
`_scripts.COMMIT`): an envelope to a sharded address is appended to its shard's stream, a
reply to an ask goes to the stream of the node that asked (ask ids carry the asking node's
number: `number * ASK_BASE + n`), an envelope to a link goes to the stream of the node the
link is attached to, looked up in Redis inside the commit. Nothing leaves before the states
of the actors that sent it are written in the same transaction, so a node killed between
two commits has sent nothing it did not record.

Envelopes read from streams are acknowledged when the actor they were for has handled them
(`handled`, called by the fleet), in the commit that writes what handling them changed; an
entry the node read but did not get to commit stays pending and the next holder of its
shard handles it: nothing is lost, nothing is done twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import trio

from twin.actors import AddressBook
from twin.errors import Code, DeliveryError
from twin.protocol import Envelope, encode

from ._shards import is_sharded, shard_of

__all__ = ["ASK_BASE", "ClusterRouter"]

#: ask ids of node n are n * ASK_BASE + 1, ...; a model's own ids (actuations) stay far below
ASK_BASE = 1 << 40
#: ops waiting for a commit before deliveries are refused as `overloaded`
_MAX_OPS = 200_000


class ClusterRouter(AddressBook):
    """The `Router` of one node of a cluster: local addresses in memory, the rest via Redis."""

    def __init__(self, prefix: str, node_id: str, number: int, shards: int) -> None:
        super().__init__()
        self.prefix = prefix
        self.node_id = node_id
        self.number = number
        self.shards = shards
        self._ids = itertools.count(number * ASK_BASE + 1)
        self.owned: set[int] = set()  # shards whose actors live here now
        self.ops: list[Any] = []  # flat, as the COMMIT script reads them
        self.requests: dict[int, Envelope] = {}  # op number of a W op -> its envelope (to refuse it if nobody is there)
        self.op_count = 0
        self.acks: dict[int, tuple[int, str, str]] = {}  # id(envelope) read from a stream -> (shard, stream, entry id)
        self.missing: trio.MemorySendChannel[Envelope] | None = None  # for envelopes to actors of our shards not loaded yet
        self.on_ops: Callable[[], None] = lambda: None  # wakes the committer
        self.known: set[str] = set()  # addresses seen to exist (they are never deleted while serving)
        self._other_nodes = _OtherNodes(self)

    # --- keys

    def shard_stream(self, shard: int) -> str:
        return f"{self.prefix}shard:{shard}"

    def node_stream(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    # --- the Router interface

    def _inbox_for(self, envelope: Envelope) -> Any:
        if not self._asked_elsewhere(envelope):
            found = self._inboxes.get(envelope.target)
            if found is not None:
                return found
        return self._other_nodes

    def register(self, address: str, inbox: Any) -> None:
        super().register(address, inbox)
        if address.startswith("unit:"):
            self.announce(address)

    def unregister(self, address: str) -> None:
        if address in self._inboxes and address.startswith("unit:"):
            self._op("D", address)
        super().unregister(address)

    def inbox(self, address: str) -> Any:
        found = self._inboxes.get(address)
        if found is not None:
            return found
        raise DeliveryError(f"{address} is not on this node", Code.UNKNOWN_TARGET)

    # --- what the fleet and the node call

    def units(self) -> list[str]:
        """The vehicle links attached to this node (`unit:<id>`)."""
        return [address for address in self._inboxes if address.startswith("unit:")]

    def announce(self, unit: str) -> None:
        """Record in the next commit that the link `unit` is attached to this node."""
        self._op("H", unit)

    def handled(self, envelope: Envelope) -> None:
        """An actor handled `envelope`: if it came from a stream, acknowledge it in the next commit."""
        entry = self.acks.pop(id(envelope), None)
        if entry is not None:
            self._op("A", entry[0], entry[1], entry[2])

    def ack(self, shard: int, stream: str, entry: str) -> None:
        """Acknowledge a stream entry in the next commit (one nobody needs to handle)."""
        self._op("A", shard, stream, entry)

    def push(self, shard: int, account: str, keep: int, frame: bytes) -> None:
        """Queue a durable push in the next commit (its seq comes back from the commit)."""
        self._op("P", shard, account, keep, frame)

    def copy_live(self, account: str, frame: bytes) -> None:
        """Copy a live-only push to the account's sessions on other nodes, in the next commit."""
        self._op("E", account, frame)

    def absent(self, account: str) -> None:
        """This node has no session of `account` any more."""
        self._op("R", account)

    def take(self) -> tuple[list[Any], dict[int, Envelope]]:
        """The ops for one commit, and its W ops' envelopes; the next commit starts afresh."""
        ops, requests = self.ops, self.requests
        self.ops, self.requests, self.op_count = [], {}, 0
        return ops, requests

    def give_back(self, ops: list[Any], requests: dict[int, Envelope]) -> None:
        """A commit failed: its ops go first in the next one."""
        first = _count_ops(ops)
        later = {number + first: envelope for number, envelope in self.requests.items()}
        self.ops = ops + self.ops
        self.requests = {**requests, **later}
        self.op_count += first
        self.on_ops()

    # --- elsewhere

    def _asked_elsewhere(self, envelope: Envelope) -> bool:
        """Whether `envelope` answers an ask of another node: it goes there, even when its
        target (`user:<a>` of an app session there) also names an actor here."""
        corr = envelope.id
        return corr >= ASK_BASE and corr // ASK_BASE != self.number and envelope.body.KIND == "reply"

    def _elsewhere(self, envelope: Envelope) -> None:
        """Deliver to an address not on this node: an op of the next commit, or a refusal."""
        target = envelope.target
        source = self._fence(envelope.sender)
        if envelope.id >= ASK_BASE and envelope.body.KIND == "reply":
            number = envelope.id // ASK_BASE
            if number == self.number:  # our asker gave up (timed out) and nobody is at the target
                raise DeliveryError(f"the ask {envelope.id} of {target} is over", Code.OFFLINE)
            self._op("X", source, self.node_stream(f"n{number}"), encode(envelope))
        elif is_sharded(target):
            shard = shard_of(target, self.shards)
            if shard in self.owned:
                if self.missing is None:
                    raise DeliveryError(f"nothing is registered at {target!r}", Code.UNKNOWN_TARGET)
                try:  # ours, but not loaded here yet (provisioned by another node): load it first
                    self.missing.send_nowait(envelope)
                except trio.WouldBlock:
                    raise DeliveryError(f"{target} is being loaded; retry", Code.OVERLOADED) from None
                return
            self._op("X", source, self.shard_stream(shard), encode(envelope))
        elif target.startswith("unit:"):
            self._op("W", source, target, encode(envelope))
            self.requests[self.op_count] = envelope
        else:
            raise DeliveryError(
                f"nothing is registered at {target!r}; commands go to car:<id> or operator", Code.UNKNOWN_TARGET
            )

    def _fence(self, sender: str) -> int:
        """The shard whose lease must still be ours for `sender`'s message to leave (-1: none)."""
        if is_sharded(sender) and sender in self._inboxes:
            return shard_of(sender, self.shards)
        return -1

    def _op(self, tag: str, *fields: Any) -> None:
        if self.op_count >= _MAX_OPS:
            raise DeliveryError("the node's link to Redis is behind; retry later", Code.OVERLOADED)
        self.ops.append(tag)
        self.ops.extend(fields)
        self.op_count += 1
        self.on_ops()


class _OtherNodes:
    """The inbox of every address not on this node: an op of the next commit, or a refusal."""

    __slots__ = ("router",)

    def __init__(self, router: ClusterRouter) -> None:
        self.router = router

    def put_nowait(self, envelope: Envelope) -> None:
        self.router._elsewhere(envelope)

    async def put(self, envelope: Envelope) -> None:
        self.router._elsewhere(envelope)
        await trio.lowlevel.cancel_shielded_checkpoint()


_FIELDS = {"S": 4, "A": 3, "X": 3, "W": 3, "H": 1, "D": 1, "P": 4, "E": 2, "R": 1}


def _count_ops(ops: list[Any]) -> int:
    """How many ops a flat op list holds."""
    i = n = 0
    while i < len(ops):
        i += 1 + _FIELDS[ops[i]]
        n += 1
    return n
