"""The hub as a cluster of nodes sharing one Redis (`twin serve --engine redis://... --cluster`).

Every car's twin, every account's actor and the operator desk live on exactly one node at a
time: the id space is cut into shards (`shard_of`), each held by one node under a lease in
Redis. Apps and vehicle links connect to any node; what one node sends to an actor, a link
or a session on another travels through Redis Streams (consumer groups, acknowledged
entries), written in the same transaction as the states of the actors that sent it. The
embedded `AddressBook` and the `ClusterRouter` are the two implementations of
`twin.actors.Router`; the model knows nothing of either. docs/cluster.md tells the whole of it.
"""

from ._node import ClusterNode as ClusterNode, Host as Host
from ._router import ASK_BASE as ASK_BASE, ClusterRouter as ClusterRouter
from ._shards import DEFAULT_SHARDS as DEFAULT_SHARDS, is_sharded as is_sharded, shard_of as shard_of
