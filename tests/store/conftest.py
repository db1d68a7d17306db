"""Fixtures for the store tests: a real database file, and states made by the real model.

`target` / `engine`: the contract tests (`test_engine_*.py`) run once per engine, against a
SQLite file and against a real `redis-server` (the `redis_server` fixture of tests/conftest.py);
`raw` writes bytes behind an engine's back, to show how it treats data it did not write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import coredis
import pytest
from store_world import World, lived_in_world

from twin.protocol import encode
from twin.store import Engine, Store, open_engine


@pytest.fixture
def fresh_world() -> World:
    """A lived-in world of its own, for a test that goes on stepping it."""
    return lived_in_world()


@pytest.fixture(scope="session")
def world() -> World:
    w = lived_in_world()
    car, alice, bob, carol, desk = (w.state(a) for a in ("car:1", "user:alice", "user:bob", "user:carol", "operator"))
    # the evening really touched what the round trip is meant to cover
    assert [(s.account, s.accepted) for s in car.shares] == [("bob", True), ("erin", False), ("dave", False)]
    assert [(k.account, k.active) for k in car.keys] == [("carol", True)]
    assert [d.account for d in car.drivers] == ["alice"]
    assert {"alice", "bob"} <= set(car.alert_prefs)
    assert len(car.climate.schedules) == 1 and car.climate.next_fire_at is not None
    assert car.security.alarm_sounded_at is not None and car.pending
    assert alice.inbox and bob.inbox and bob.garage and carol.key_cars and w.state("user:erin").offers
    assert desk.guards and desk.calls and desk.log
    return w


@pytest.fixture(scope="session")
def frames(world: World) -> dict[str, list[bytes]]:
    """The encoded frames the evening pushed to each account's apps, in order."""
    out: dict[str, list[bytes]] = {}
    for env in world.elsewhere:
        if env.target.startswith("app:"):
            out.setdefault(env.target.removeprefix("app:"), []).append(encode(env))
    return out


@pytest.fixture(scope="session")
def states(world: World) -> dict[str, tuple[str, object]]:
    """address -> (kind, state) of every actor of the lived-in world."""
    kinds = {"car": "vehicle", "user": "user", "operator": "operator"}
    return {address: (kinds[address.split(":")[0]], state) for address, (_, state) in world.actors.items()}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hub.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store.open(db_path)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "redis"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where an engine keeps its data: a SQLite file, or a Redis server of this test's own."""
    if request.param == "sqlite":
        return str(tmp_path / "hub.sqlite3")
    server = request.getfixturevalue("redis_server")
    return f"{server.url}?prefix=test:"


@pytest.fixture
async def engine(target: str) -> AsyncIterator[Engine]:
    async with open_engine(target) as opened:
        yield opened


RawState = Callable[[str, str, bytes], Awaitable[None]]


@pytest.fixture
def raw_state(target: str) -> RawState:
    """`await raw_state(address, kind, data)`: store a state's bytes as the engine would, unchecked."""

    async def put(address: str, kind: str, data: bytes) -> None:
        if target.startswith("redis://"):
            url, _, prefix = target.partition("?prefix=")
            async with coredis.Redis.from_url(url) as client:
                await client.hset(f"{prefix}state:{address}", {"kind": kind, "data": data, "saved_at": "0"})
                await client.zadd(f"{prefix}states", {address: 0})
        else:
            with sqlite3.connect(target) as conn:
                conn.execute("INSERT INTO states VALUES (?, ?, ?, 0)", (address, kind, data))

    return put
