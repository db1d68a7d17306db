"""The fleet running the real `twin.model` rules: people, cars and the operator desk.

Rules for these tests: in memory only; the autojump clock, virtual times asserted exactly;
an absolute `fail_after` on every test.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from twin.actors import open_fleet
from twin.protocol import ClimateStart, Error, KeyIssue, Lock, Ok, RemoteCheck, Role, ShareInvite, Snapshot, StateChanged

pytestmark = pytest.mark.trio

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


async def test_open_fleet_with_the_model(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with open_fleet(cars=3, users=2, operator=True, epoch=EPOCH) as fleet:
            stats = fleet.statistics()
            assert (stats.active, stats.passive) == (6, 0)
            assert fleet.state_of("user:u0").garage == {"car:0": Role.OWNER, "car:2": Role.OWNER}
            assert fleet.state_of("car:1").contract.owner == "u1"
            with fleet.subscribe("app:u0") as app:
                reply = await fleet.ask("user:u0", "car:0", Lock())
                assert isinstance(reply.body, Ok) and isinstance(reply.body.result, Snapshot)
                pushed = await app.receive()
                assert isinstance(pushed.body, StateChanged) and pushed.sender == "car:0"
            refused = await fleet.ask("user:u1", "car:0", Lock())
            assert isinstance(refused.body, Error) and refused.body.code == "not_authorized"
            assert fleet.statistics().crashes == 0


async def climate_run(idle: float | None) -> tuple[Any, Any, Any]:
    """Start a 10-minute climate run: the car's climate at 599 s and 601 s, and at the end."""
    async with open_fleet(cars=1, users=1, epoch=EPOCH, idle=idle) as fleet:
        started = await fleet.ask("user:u0", "car:0", ClimateStart(duration_min=10))
        assert isinstance(started.body, Ok), started
        await trio.sleep_until(fleet.clock.t0 + 599)
        before = fleet.state_of("car:0").climate
        await trio.sleep_until(fleet.clock.t0 + 601)
        after = fleet.state_of("car:0").climate
        if idle is not None:  # it slept through the end of the run
            assert not fleet.actor_statistics("car:0").active
        check = await fleet.ask("user:u0", "car:0", RemoteCheck())
        assert isinstance(check.body, Ok) and isinstance(check.body.result, Snapshot)
        assert check.body.result.climate_running is False
        return before, after, fleet.state_of("car:0")


async def test_climate_run_stops_on_time_asleep_or_awake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10_000):
        awake = await climate_run(None)
        before, after, _ = awake
        assert (before.started_at, before.ends_at) == (EPOCH, EPOCH + 600)
        assert (after.ends_at, after.used_s) == (None, 600.0)
        for idle in (0.0, 30.0):
            assert await climate_run(idle) == awake


@pytest.mark.parametrize("body", [ShareInvite(account="ghost"), KeyIssue(account="ghost")], ids=["share", "key"])
async def test_an_offer_to_an_unknown_account_is_refused_at_once(body: Any, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with open_fleet(cars=1, users=1, epoch=EPOCH) as fleet:
            start = trio.current_time()
            reply = await fleet.ask("user:u0", "car:0", body, timeout=60)
            assert trio.current_time() == start  # not after the 30 s offer timeout
            assert isinstance(reply.body, Error) and reply.body.code == "unknown_target"
            assert "ghost" in reply.body.message
            car = fleet.state_of("car:0")
            assert (car.shares, car.keys, car.pending) == ((), (), ())
