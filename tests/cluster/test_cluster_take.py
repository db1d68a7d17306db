"""A node that takes shards hosts their accounts: the account's actor and its push inbox
(`user:` and `app:`) come up with the shard, from the stored state, so that the car's
`state_changed` reaches the owner's app and a session on that node does not start the
account afresh (an empty garage written over the stored one).

Rules as in test_cluster_nodes.py: a real `redis-server`, loopback only, absolute bounds.
"""

from __future__ import annotations

from typing import Any

import trio

from twin.client import open_app_session
from twin.model import new_vehicle
from twin.protocol import Role
from twin.server import HubConfig, serve_hub
from twin.store import open_engine

CONFIG = HubConfig(port=0, cluster=True, shards=8, lease_ttl=0.6, lease_renew=0.2, flush_interval=0.002)
EMAIL = "alice@example.com"


async def test_a_node_taking_shards_hosts_their_accounts_from_their_stored_state(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with open_engine(redis_server.url) as engine:
            async with trio.open_nursery() as nursery:
                first = await nursery.start(serve_hub, engine, CONFIG)  # alone: it holds every shard
                account = await first.create_account(EMAIL, "pw")
                await first.add_car(new_vehicle("c1", owner=account), linked=True)
                first.shutdown()  # gives every shard back
            async with trio.open_nursery() as nursery:
                taker = await nursery.start(serve_hub, engine, CONFIG)  # takes every shard
                assert len(taker.cluster.router.owned) == CONFIG.shards  # type: ignore[union-attr]
                assert f"user:{account}" in taker.router and f"app:{account}" in taker.router
                async with open_app_session(f"ws://127.0.0.1:{taker.port}/", email=EMAIL, password="pw") as app:
                    assert app.garage == {"car:c1": Role.OWNER}
                await taker.settle()
                taker.shutdown()
            stored = await engine.load_state("user:" + account)
            assert stored is not None and dict(stored[1].garage) == {"car:c1": Role.OWNER}
