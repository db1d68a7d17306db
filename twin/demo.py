"""`twin demo`: an in-process fleet living through one evening and night, on a virtual clock.

It shows what the twin does without any server: a shared car is broken into (alerts to owner
and sharee, tracking, a guard whose free hour ends with an extension prompt), a Lite car runs
into its climate cap, a sharee is refused an unlock, and then every car of the fleet answers
a remote check and a lock. Time is trio's `MockClock`, so hours pass in milliseconds.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

import trio
import trio.testing

from .actors import Fleet, open_fleet
from .model import OPERATOR, USER, VEHICLE, new_operator, new_user, new_vehicle
from .protocol import (
    AlarmSounding,
    ClimateStart,
    Envelope,
    GuardExtensionAnswer,
    GuardRequest,
    IgnitionChanged,
    Lock,
    Message,
    Plan,
    Position,
    PositionReported,
    Power,
    Powertrain,
    RemoteCheck,
    ShareAccept,
    ShareInvite,
    TrackingRequest,
    Unlock,
)

#: 2026-11-26 20:00 JST, so the break-in happens at a believable hour.
EPOCH = 1_764_154_800.0
PLANS = (Plan.STANDARD, Plan.LITE)
POWERTRAINS = tuple(Powertrain)


def describe(body: Message) -> str:
    """One short line for a message body."""
    fields = getattr(body, "__attrs_attrs__", ())
    shown = []
    for f in fields:
        value = getattr(body, f.name)
        if f.name in ("snapshot", "result", "at") or value in (None, "", ()):
            continue
        if isinstance(value, frozenset):
            text = "{" + ",".join(sorted(getattr(v, "value", str(v)) for v in value)) + "}"
        else:
            text = getattr(value, "value", value)
        shown.append(f"{f.name}={text}")
    result = getattr(body, "result", None)
    if result is not None:
        shown.insert(0, type(result).__name__)
    return f"{body.TYPE}({', '.join(shown)[:110]})"


class _Timeline:
    def __init__(self, fleet: Fleet, out: TextIO, quiet: bool) -> None:
        self.fleet, self.out, self.quiet = fleet, out, quiet

    def say(self, text: str) -> None:
        if self.quiet:
            return
        clock = time.strftime("%H:%M:%S", time.gmtime(self.fleet.clock.now() + 9 * 3600))
        print(f"[{clock} JST] {text}", file=self.out)

    async def ask(self, who: str, car: str, body: Message) -> Envelope:
        reply = await self.fleet.ask("user:" + who, car, body)
        self.say(f"{who:>6} -> {car}: {describe(body)}  =>  {describe(reply.body)}")
        return reply

    async def event(self, car: str, body: Message) -> None:
        await self.fleet.tell(car, car, body)
        self.say(f"{car} reports {describe(body)}")

    async def watch(self, account: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.fleet.subscribe("app:" + account) as inbox:
            task_status.started()
            async for env in inbox:
                if env.body.TYPE != "state_changed":
                    self.say(f"{'':>6}    app of {account} gets {describe(env.body)}")


async def run_demo(cars: int = 1000, out: TextIO = sys.stdout, quiet: bool = False) -> dict[str, float]:
    """Run the story and the fleet sweep; return the sweep's figures."""
    async with open_fleet(epoch=EPOCH, idle=300.0) as fleet:
        fleet.spawn("operator", OPERATOR, new_operator())
        for account in ("alice", "bob"):
            fleet.spawn("user:" + account, USER, new_user(account))
        home = Position(35.6586, 139.7454)
        fleet.spawn("car:demo-1", VEHICLE, new_vehicle("demo-1", owner="alice", plan=Plan.STANDARD, position=home))
        fleet.spawn("car:demo-2", VEHICLE, new_vehicle("demo-2", owner="alice", plan=Plan.LITE, powertrain=Powertrain.PHEV, position=home))
        for i in range(cars):
            owner = f"owner-{i}"
            fleet.spawn("user:" + owner, USER, new_user(owner))
            car = new_vehicle(f"fleet-{i}", owner=owner, plan=PLANS[i % 2], powertrain=POWERTRAINS[i % 4], position=home)
            fleet.spawn(f"car:fleet-{i}", VEHICLE, car)

        t = _Timeline(fleet, out, quiet)
        async with trio.open_nursery() as watchers:
            await watchers.start(t.watch, "alice")
            await watchers.start(t.watch, "bob")
            await _story(t)
            watchers.cancel_scope.cancel()
        return await _sweep(fleet, cars, out, quiet)


async def _story(t: _Timeline) -> None:
    one, two = "car:demo-1", "car:demo-2"
    t.say("-- alice shares her Standard car with bob")
    await t.ask("alice", one, ShareInvite(account="bob"))
    await t.ask("bob", one, ShareAccept())
    await t.ask("bob", one, RemoteCheck())
    await t.ask("bob", one, Unlock())
    await trio.sleep(6 * 3600 + 13 * 60)
    t.say("-- a night-time break-in")
    await t.event(one, AlarmSounding(cause="door forced"))
    await t.event(one, PositionReported(lat=35.6612, lon=139.7300, speed_kmh=32.0))
    await t.ask("alice", one, TrackingRequest())
    await t.ask("alice", one, GuardRequest())
    await trio.sleep(3600)
    await t.ask("alice", "operator", GuardExtensionAnswer(car=one, extend=False))
    t.say("-- before dawn: alice warms up her Lite PHEV twice, then drives it")
    await t.ask("alice", two, ClimateStart(duration_min=20))
    await trio.sleep(20 * 60)
    await t.ask("alice", two, ClimateStart(duration_min=10))
    await t.event(two, IgnitionChanged(power=Power.ON))
    await t.event(two, IgnitionChanged(power=Power.OFF))
    await t.ask("alice", two, ClimateStart(duration_min=10))


async def _sweep(fleet: Fleet, cars: int, out: TextIO, quiet: bool) -> dict[str, float]:
    """Every fleet car answers a remote check and a lock; report how the fleet held up."""
    outcomes: dict[str, int] = {}
    started = time.perf_counter()

    async def worker(indices: range, record: Callable[[str], None]) -> None:
        for i in indices:
            for body in (RemoteCheck(), Lock()):
                reply = await fleet.ask(f"user:owner-{i}", f"car:fleet-{i}", body)
                record(reply.body.TYPE if reply.body.TYPE == "ok" else reply.body.code)  # type: ignore[attr-defined]

    def record(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    workers = 32
    async with trio.open_nursery() as nursery:
        for w in range(workers):
            nursery.start_soon(worker, range(w, cars, workers), record)
    wall = time.perf_counter() - started
    stats = fleet.statistics()
    figures = {"cars": cars, "commands": sum(outcomes.values()), "wall_s": round(wall, 3)}
    figures["commands_per_s"] = round(figures["commands"] / wall) if wall > 0 else 0
    print(
        f"fleet of {cars} cars: {figures['commands']} commands in {wall:.2f} s wall"
        f" ({figures['commands_per_s']}/s); outcomes {dict(sorted(outcomes.items()))};"
        f" actors active {stats.active}, passive {stats.passive}, crashes {stats.crashes}",
        file=out,
    )
    return figures


def main(cars: int, quiet: bool) -> int:
    """Entry point of `twin demo`: exit status 0 when every fleet command succeeded."""
    figures = trio.run(run_demo, cars, sys.stdout, quiet, clock=trio.testing.MockClock(autojump_threshold=0))
    return 0 if figures["commands"] == 2 * cars else 1
