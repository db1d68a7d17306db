"""Which shard an address belongs to, and which addresses live in shards at all.

The car id space (and the accounts and the operator desk) is cut into a fixed number of
shards by a stable hash, so every node computes the same placement with no table: `car:7`,
`user:alice` and `app:alice` each belong to one shard, `user:alice` and `app:alice` to the
same one (an account's actor and its push inbox live together). Addresses that name a
connection rather than an actor (`unit:<id>`, the hub itself) are not sharded: they live on
the node the connection is attached to, which the cluster looks up in Redis.
"""

from __future__ import annotations

import zlib

__all__ = ["DEFAULT_SHARDS", "is_sharded", "shard_of"]

#: shards of the id space; more shards than nodes, so that they spread evenly
DEFAULT_SHARDS = 64

_SHARDED_PREFIXES = ("car:", "user:", "app:")
_SHARDED_NAMES = frozenset({"operator"})


def is_sharded(address: str) -> bool:
    """Whether `address` names an actor placed by shard (a car, an account, the desk)."""
    return address.startswith(_SHARDED_PREFIXES) or address in _SHARDED_NAMES


def shard_of(address: str, shards: int) -> int:
    """The shard of a sharded address: a CRC-32 of what follows its prefix, modulo `shards`."""
    key = address.partition(":")[2] or address
    return zlib.crc32(key.encode()) % shards
