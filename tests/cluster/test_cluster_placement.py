"""Where accounts live in a cluster, and what that must not change.

- A node that takes shards hosts their accounts: the account's actor and its push inbox
  (`user:` and `app:`) come up with the shard, from the stored state, so that the car's
  `state_changed` reaches the owner's app and a session on that node does not start the
  account afresh (an empty garage written over the stored one).
- The reply to a command asked on node A goes back to A even when the account's own actor
  (the asker's address) lives on the node that answers.
- An app connected to the node where its account's actor lived keeps getting its alerts live
  after that actor moved to a node that joined.
- A node taken for dead while alive (swept) announces its links and sessions again: its
  links' cars come back online and commands and alerts flow as before.

Rules as in test_cluster_nodes.py: a real `redis-server`, loopback only, absolute bounds.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import trio

from twin.client import AppSession, open_app_session, open_vehicle_link
from twin.cluster import shard_of
from twin.model import new_vehicle
from twin.protocol import AlarmSounding, Alert, Role
from twin.server import HubConfig, serve_hub
from twin.store import open_engine

from .test_cluster_nodes import SHARDS, _account_on, _car_on, _node, _settled

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


async def test_a_command_asked_on_a_is_answered_on_a_when_the_account_and_the_car_live_on_b(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
            a, b = [await stack.enter_async_context(_node(redis_server.url, nursery)) for _ in range(2)]
            await _settled([a, b])
            email = _account_on(b)
            account = await b.create_account(email, "pw")
            vid = _car_on(b)
            secret = await b.add_car(new_vehicle(vid, owner=account), linked=True)
            assert secret is not None and f"user:{account}" in b.router
            async with open_vehicle_link(f"ws://127.0.0.1:{b.port}/", vid, secret), \
                    open_app_session(f"ws://127.0.0.1:{a.port}/", email=email, password="pw") as app:
                while b.fleet.state_of(f"car:{vid}").telematics.value != "online":
                    await trio.sleep(0.01)
                snapshot = await app.lock(f"car:{vid}")  # without the reply reaching A: a timeout
                assert snapshot.locked.value is True


async def _alert_within(app: AppSession, seconds: float) -> Alert | None:
    """The first alert pushed to `app` within `seconds`, or None."""
    with trio.move_on_after(seconds):
        async for push in app.events():
            if isinstance(push.body, Alert):
                return push.body
    return None


async def test_an_app_keeps_its_alerts_live_after_its_accounts_actor_moved_to_a_joining_node(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
            a, b = [await stack.enter_async_context(_node(redis_server.url, nursery)) for _ in range(2)]
            await _settled([a, b])
            given_back = set(sorted(b.cluster.router.owned)[-2:])  # type: ignore[union-attr]  # what B gives a third node
            email = next(f"u{i}@example.com" for i in range(1000) if shard_of(f"user:u{i}@example.com", SHARDS) in given_back)
            account = await b.create_account(email, "pw")
            vid = _car_on(a)
            secret = await a.add_car(new_vehicle(vid, owner=account), linked=True)
            assert secret is not None
            async with open_vehicle_link(f"ws://127.0.0.1:{a.port}/", vid, secret) as link, \
                    open_app_session(f"ws://127.0.0.1:{b.port}/", email=email, password="pw") as app:
                assert f"user:{account}" in b.router
                async with _node(redis_server.url, nursery) as c:
                    await _settled([a, b, c])
                    while f"user:{account}" not in c.router:  # the account's actor moved from B to C
                        await trio.sleep(0.01)
                    assert f"user:{account}" not in b.router
                    await link.send_event(AlarmSounding(cause="door forced"))
                    alert = await _alert_within(app, 3.0)
                    assert alert is not None and alert.car == f"car:{vid}", "the alarm did not reach the app on B live"


async def test_a_node_taken_for_dead_while_alive_announces_its_links_and_sessions_again(redis_server: Any) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
            a, b = [await stack.enter_async_context(_node(redis_server.url, nursery)) for _ in range(2)]
            await _settled([a, b])
            email = _account_on(a)
            account = await a.create_account(email, "pw")
            vid = _car_on(a)  # the twin on A, its link and the owner's app on B
            secret = await a.add_car(new_vehicle(vid, owner=account), linked=True)
            assert secret is not None
            acted: list[str] = []
            async with open_vehicle_link(f"ws://127.0.0.1:{b.port}/", vid, secret, on_actuation=lambda body: acted.append(body.TYPE)) as link, \
                    open_app_session(f"ws://127.0.0.1:{b.port}/", email=email, password="pw") as app:
                twin = f"car:{vid}"
                while a.fleet.state_of(twin).telematics.value != "online":
                    await trio.sleep(0.01)
                await a.cluster._sweep_node(b.cluster.id)  # type: ignore[union-attr]  # as if B had stopped heart-beating
                with trio.fail_after(1):  # the twin takes the sweep's coverage_changed in within a few ticks
                    while a.fleet.state_of(twin).telematics.value != "offline":
                        await trio.sleep(0)
                while a.fleet.state_of(twin).telematics.value != "online":  # B's next round: "I am still here"
                    await trio.sleep(0.01)
                assert (await app.lock(twin)).locked.value is True and acted == ["lock"]
                await link.send_event(AlarmSounding(cause="door forced"))
                alert = await _alert_within(app, 3.0)
                assert alert is not None and alert.car == twin, "the alarm did not reach the app on B"
