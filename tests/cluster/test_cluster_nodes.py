"""Three hub nodes sharing one real Redis, in one process: placement, routing across nodes,
links on a third node, pushes once, shards moving when a node leaves.

Rules: loopback only; a real `redis-server` (tests/conftest.py); fast leases (0.2 s renew)
so that shares settle within a second; waits poll a condition under an absolute bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from twin.client import open_app_session, open_vehicle_link
from twin.cluster import shard_of
from twin.model import new_vehicle
from twin.protocol import AlarmSounding, Alert
from twin.server import Hub, HubConfig, serve_hub
from twin.store import open_engine

SHARDS = 16
CONFIG = HubConfig(port=0, cluster=True, shards=SHARDS, lease_ttl=0.6, lease_renew=0.2, flush_interval=0.002)


@asynccontextmanager
async def _node(url: str, nursery: trio.Nursery) -> AsyncIterator[Hub]:
    async with open_engine(url) as engine:
        async with trio.open_nursery() as inner:
            hub: Hub = await inner.start(serve_hub, engine, CONFIG)
            try:
                yield hub
            finally:
                hub.shutdown()


async def _settled(hubs: list[Hub]) -> None:
    """Wait until every shard is held once, by nodes holding at most their fair share each."""
    share = -(-SHARDS // len(hubs))
    while True:
        held = [h.cluster.router.owned for h in hubs]  # type: ignore[union-attr]
        if sum(len(h) for h in held) == SHARDS and len(set().union(*held)) == SHARDS and all(0 < len(h) <= share for h in held):
            return
        await trio.sleep(0.02)


def _car_on(hub: Hub, avoid: set[str] = set()) -> str:
    owned = hub.cluster.router.owned  # type: ignore[union-attr]
    return next(f"c{i}" for i in range(1000) if shard_of(f"car:c{i}", SHARDS) in owned and f"c{i}" not in avoid)


def _account_on(hub: Hub) -> str:
    owned = hub.cluster.router.owned  # type: ignore[union-attr]
    return next(f"u{i}@example.com" for i in range(1000) if shard_of(f"user:u{i}@example.com", SHARDS) in owned)


@pytest.mark.parametrize("home", ["b", "c"])
async def test_an_app_on_a_commands_a_twin_on_b_through_a_link_on_c_and_the_alarm_reaches_a_once(redis_server: Any, home: str) -> None:
    """The owner's own actor on C, or on B beside the car (then the alarm loads it there, and
    the replies to her app on A must still go to A, not to her actor)."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
            a, b, c = [await stack.enter_async_context(_node(redis_server.url, nursery)) for _ in range(3)]
            await _settled([a, b, c])
            email = _account_on(c if home == "c" else b)  # alice's own actor; her app is on A
            account = await a.create_account(email, "pw")
            vid = _car_on(b)
            secret = await a.add_car(new_vehicle(vid, owner=account), linked=True)
            assert secret is not None
            acted: list[str] = []

            def carry_out(body: Any) -> None:
                acted.append(body.TYPE)

            async with open_vehicle_link(f"ws://127.0.0.1:{c.port}/", vid, secret, on_actuation=carry_out) as link:
                async with open_app_session(f"ws://127.0.0.1:{a.port}/", email=email, password="pw") as app:
                    # B loads the twin (provisioned through A) when the link's attach reaches it
                    while f"car:{vid}" not in b.router or b.fleet.state_of(f"car:{vid}").telematics.value != "online":
                        await trio.sleep(0.01)
                    assert f"car:{vid}" not in a.router and f"car:{vid}" not in c.router
                    snapshot = await app.lock(f"car:{vid}")
                    assert snapshot.locked.value is True and acted == ["lock"]
                    await link.send_event(AlarmSounding(cause="door forced"))
                    alerts: list[Alert] = []
                    with trio.move_on_after(0.5):  # every alert the alarm makes, on each of its channels
                        async for push in app.events():
                            if isinstance(push.body, Alert):
                                assert push.seq > 0 and push.body.car == f"car:{vid}"
                                alerts.append(push.body)
                    channels = [alert.channel.value for alert in alerts]
                    assert sorted(channels) == sorted(set(channels)) and channels, f"each alert once: {alerts}"
                    for _ in range(3):  # and commands go on working after the alarm
                        assert (await app.unlock(f"car:{vid}")).locked.value is False
                        assert (await app.lock(f"car:{vid}")).locked.value is True
                    assert acted == ["lock"] + ["unlock", "lock"] * 3

