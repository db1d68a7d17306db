"""Fixtures for the store tests: a real database file, and states made by the real model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_world import World, lived_in_world

from twin.protocol import encode
from twin.store import Store


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
