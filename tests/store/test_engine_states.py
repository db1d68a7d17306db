"""The engine contract, actor states: exact round trips of the real model's states, batches
all or none, strict decoding. Every test runs against SQLite and Redis (rules: see
test_engine_accounts.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import msgpack
import pytest
from store_world import walk

from twin.model import new_user, new_vehicle
from twin.store import Engine, StoreError, open_engine, state_to_bytes

RawState = Callable[[str, str, bytes], Awaitable[None]]


async def test_save_close_reopen_load_is_equal(target: str, states: dict[str, tuple[str, object]]) -> None:
    async with open_engine(target) as engine:
        await engine.save_states(states)
    async with open_engine(target) as engine:
        loaded = {address: (kind, state) async for address, kind, state in engine.load_states()}
        assert await engine.load_state("car:1") == states["car:1"]
        assert await engine.load_state("car:nope") is None
    assert loaded == states
    for address in states:
        walk(states[address][1], loaded[address][1], address)


async def test_saving_again_keeps_only_the_latest(engine: Engine, states: dict[str, tuple[str, object]]) -> None:
    kind, car = states["car:1"]
    later = attrs.evolve(car, next_key_id=99)
    await engine.save_states({"car:1": (kind, car)})
    await engine.save_states({"car:1": (kind, later)})
    assert [entry async for entry in engine.load_states()] == [("car:1", "vehicle", later)]


async def test_a_batch_with_a_bad_state_writes_nothing(engine: Engine, states: dict[str, tuple[str, object]]) -> None:
    batch = dict(states)
    batch["user:zed"] = ("user", states["car:1"][1])
    with pytest.raises(StoreError, match="must be a UserState"):
        await engine.save_states(batch)
    with pytest.raises(StoreError, match="unknown state kind 'boat'"):
        await engine.save_states({"car:1": ("boat", states["car:1"][1])})
    assert [entry async for entry in engine.load_states()] == []
    await engine.save_states({})  # nothing to write is fine
    assert await engine.load_state("car:1") is None


async def test_a_large_fleet_batch_loads_page_by_page_in_order(target: str) -> None:
    """One batch of 5,000 cars and people (five pages of `load_states`), as a group commit of a
    busy hub writes it; every state back, by address, after a restart."""
    batch: dict[str, tuple[str, object]] = {f"car:{i:05}": ("vehicle", new_vehicle(f"{i:05}", owner=f"owner-{i}")) for i in range(4000)}
    batch |= {f"user:owner-{i}": ("user", new_user(f"owner-{i}")) for i in range(1000)}
    async with open_engine(target) as engine:
        await engine.save_states(batch)
    async with open_engine(target) as engine:
        loaded = [entry async for entry in engine.load_states()]
        assert await engine.delete_states(["car:00000", "car:00001", "car:nope"]) == 2
        assert await engine.delete_states([]) == 0
        assert await engine.load_state("car:00000") is None
        assert len([a async for a, _, _ in engine.load_states()]) == 4998
    assert [a for a, _, _ in loaded] == sorted(batch)
    assert {a: (k, s) for a, k, s in loaded} == batch


async def test_a_stored_state_that_no_longer_fits_names_its_address(engine: Engine, raw_state: RawState) -> None:
    good = msgpack.unpackb(state_to_bytes("vehicle", new_vehicle("7")))
    await raw_state("car:7", "vehicle", msgpack.packb({**good, "colour": "red"}))
    await raw_state("car:8", "vehicle", b"\xc1 not msgpack")
    with pytest.raises(StoreError, match=r"^car:7: .*does not fit VehicleState.*colour") as info:
        [entry async for entry in engine.load_states()]
    assert "migration" in info.value.message
    with pytest.raises(StoreError, match=r"^car:8: .*not valid msgpack"):
        await engine.load_state("car:8")
    with pytest.raises(StoreError, match=r"^car:7: "):
        await engine.load_state("car:7")
