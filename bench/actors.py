"""Benchmark of the actor runtime with the real vehicle model (`twin.model.VEHICLE`).

    python bench/actors.py [--cars N] [--passive-cars N] [--commands N] [--concurrency K]
                           [--gc-threshold 10000,10,100 | default]

Each memory measurement runs in a fresh subprocess, so one phase's freed memory does not
hide the next one's growth; resident memory is read from /proc/self/statm before and after
spawning, after a garbage collection. Commands are `RemoteCheck` asks from the car owner's
account (`user:u<i>` to `car:<i>`), K askers at once, each answered `Ok` by the model.

Throughput is compared with bare trio memory-channel ping-pong at the same concurrency
(K client/server pairs), measured first in the same process. The askers spread over all N
cars, whose tasks and twins do not fit in the CPU caches, while each floor client talks to
one hot server; so the commands are also measured paired like the floor (asker k to car k,
`commands_paired_per_s`), and the floor spread like the commands (K clients to random ones
of N server tasks, `floor_spread_per_s`).

The garbage collector: every parked actor task holds a few GC-tracked objects that trio
makes anew each time the actor wakes, so with Python's default thresholds full collections
walk all 100,000 of them about once a second (`gc_share` tells how much time that took).
The bench therefore runs, floor included, with `gc.set_threshold(10000, 10, 100)` and
`gc.freeze()` after spawning, as a service of that size would; `--gc-threshold default`
measures Python's defaults.
Prints human lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio  # noqa: E402
import trio.testing  # noqa: E402

from twin.actors import Fleet, open_fleet  # noqa: E402
from twin.model import VEHICLE, new_vehicle  # noqa: E402
from twin.protocol import Ok, RemoteCheck  # noqa: E402

EPOCH = 1_767_225_600.0


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def spawn_cars(fleet: Fleet, n: int) -> None:
    for i in range(n):
        fleet.spawn(f"car:{i}", VEHICLE, new_vehicle(str(i), owner=f"u{i}"))


class GcTimer:
    """Seconds spent in the garbage collector, through `gc.callbacks`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


GC = GcTimer()


async def commands(fleet: Fleet, plans: list[list[tuple[str, str]]]) -> tuple[float, float]:
    """(commands per second, share of that time in the GC): one asker per plan, all at once."""
    check = RemoteCheck()
    failures = 0

    async def asker(plan: list[tuple[str, str]]) -> None:
        nonlocal failures
        for sender, target in plan:
            reply = await fleet.ask(sender, target, check, timeout=60)
            if not isinstance(reply.body, Ok):
                failures += 1

    gc_before = GC.seconds
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for plan in plans:
            nursery.start_soon(asker, plan)
    elapsed = time.perf_counter() - start
    assert failures == 0, f"{failures} commands were not answered with Ok"
    return sum(map(len, plans)) / elapsed, (GC.seconds - gc_before) / elapsed


def spread(cars: int, total: int, concurrency: int) -> list[list[tuple[str, str]]]:
    """Each asker's commands, to cars drawn at random among `cars`."""
    targets = [(f"user:u{i}", f"car:{i}") for i in range(cars)]
    return [random.Random(k).choices(targets, k=total // concurrency) for k in range(concurrency)]


def paired(total: int, concurrency: int) -> list[list[tuple[str, str]]]:
    """Asker k commands car k only: the floor's pattern of one server per client."""
    return [[(f"user:u{k}", f"car:{k}")] * (total // concurrency) for k in range(concurrency)]


async def floor(total: int, concurrency: int, servers: int) -> float:
    """Bare memory-channel ping-pong: `concurrency` clients, each to random ones of `servers`."""
    per_client = total // concurrency

    async def server(requests: trio.MemoryReceiveChannel[tuple[int, trio.MemorySendChannel[int]]]) -> None:
        async for n, reply in requests:
            await reply.send(n)

    async def client(plan: list[trio.MemorySendChannel[tuple[int, trio.MemorySendChannel[int]]]]) -> None:
        reply_send, reply_receive = trio.open_memory_channel[int](1)
        for n, requests in enumerate(plan):
            await requests.send((n, reply_send))
            await reply_receive.receive()

    async with trio.open_nursery() as nursery:
        channels = []
        for _ in range(servers):
            send, receive = trio.open_memory_channel[tuple[int, trio.MemorySendChannel[int]]](1)
            channels.append(send)
            nursery.start_soon(server, receive)
        if servers == concurrency:  # one server per client, as in plain ping-pong
            plans = [[channels[k]] * per_client for k in range(concurrency)]
        else:
            plans = [random.Random(k).choices(channels, k=per_client) for k in range(concurrency)]
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        start = time.perf_counter()
        async with trio.open_nursery() as clients:
            for plan in plans:
                clients.start_soon(client, plan)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return per_client * concurrency / elapsed


async def active_phase(cars: int, total: int, concurrency: int) -> dict[str, float]:
    """Floor first; then `cars` active cars: memory, spawn time, commands; then the spread floor."""
    floor_per_s = await floor(total, concurrency, concurrency)
    gc.collect()
    async with open_fleet(epoch=EPOCH) as fleet:
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        before = rss()
        start = time.perf_counter()
        spawn_cars(fleet, cars)
        await trio.testing.wait_all_tasks_blocked()  # every actor task has run and parked
        spawn_s = time.perf_counter() - start
        gc.collect()
        per_car = (rss() - before) / cars
        assert fleet.statistics().active == cars
        gc.freeze()  # what a long-running service does after loading: full GCs skip the fleet
        commands_per_s, gc_share = await commands(fleet, spread(cars, total, concurrency))
        paired_per_s, paired_gc_share = await commands(fleet, paired(total, concurrency))
        crashes = fleet.statistics().crashes
    gc.unfreeze()
    gc.collect()
    return {
        "per_car_kb": per_car / 1024,
        "spawn_s": spawn_s,
        "commands": total // concurrency * concurrency,
        "commands_per_s": commands_per_s,
        "gc_share": gc_share,
        "floor_per_s": floor_per_s,
        "commands_paired_per_s": paired_per_s,
        "paired_gc_share": paired_gc_share,
        "floor_spread_per_s": await floor(total, concurrency, cars),
        "crashes": crashes,
    }


async def passive_phase(cars: int, total: int, concurrency: int) -> dict[str, float]:
    """`cars` passive cars (an idle time is set, so they start asleep): memory, spawn time,
    then commands that each wake a sleeping car."""
    async with open_fleet(epoch=EPOCH, idle=600.0) as fleet:
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        before = rss()
        start = time.perf_counter()
        spawn_cars(fleet, cars)
        spawn_s = time.perf_counter() - start
        gc.collect()
        per_car = (rss() - before) / cars
        stats = fleet.statistics()
        assert (stats.active, stats.passive) == (0, cars)
        gc.freeze()
        wake_per_s, _ = await commands(fleet, spread(cars, min(total, cars), concurrency))
        woken = fleet.statistics().active
    return {
        "passive_per_car_kb": per_car / 1024,
        "passive_spawn_s": spawn_s,
        "wake_commands_per_s": wake_per_s,
        "woken": woken,
    }


def run_phase(argv: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *argv], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cars", type=int, default=100_000)
    parser.add_argument("--passive-cars", type=int, default=1_000_000)
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=1_000)
    parser.add_argument(
        "--gc-threshold",
        default="10000,10,100",
        help="gc.set_threshold for every phase, or 'default' for Python's own (700,10,10)",
    )
    parser.add_argument("--phase", choices=["active", "passive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gc_threshold != "default":
        gc.set_threshold(*map(int, args.gc_threshold.split(",")))
    if args.phase == "active":
        print(json.dumps(trio.run(active_phase, args.cars, args.commands, args.concurrency)))
        return
    if args.phase == "passive":
        print(json.dumps(trio.run(passive_phase, args.passive_cars, args.commands, args.concurrency)))
        return

    k = args.concurrency
    result: dict[str, object] = {
        "behaviour": "twin.model.VEHICLE",
        "command": "RemoteCheck",
        "cars": args.cars,
        "concurrency": k,
        "passive_cars": args.passive_cars,
        "cpus": os.cpu_count(),
        "loadavg_1m_before": os.getloadavg()[0],  # other work on the machine skews the numbers
    }
    result["gc_threshold"] = list(gc.get_threshold())
    common = ["--commands", str(args.commands), "--concurrency", str(k), "--gc-threshold", args.gc_threshold]
    active = run_phase(["--phase", "active", "--cars", str(args.cars), *common])
    result.update(active)
    print(f"{args.cars} active cars: {active['per_car_kb']:.2f} KB each, spawned in {active['spawn_s']:.2f} s")
    result["ratio"] = active["commands_per_s"] / active["floor_per_s"]
    result["ratio_paired"] = active["commands_paired_per_s"] / active["floor_per_s"]
    result["ratio_spread"] = active["commands_per_s"] / active["floor_spread_per_s"]
    print(
        f"{active['commands']} RemoteCheck asks, {k} askers, to random cars among {args.cars}:"
        f" {active['commands_per_s']:.0f}/s ({active['gc_share']:.0%} of it in the GC);"
        f" floor ({k} memory-channel pairs) {active['floor_per_s']:.0f}/s: {result['ratio']:.0%}"
    )
    print(
        f"  paired like the floor (asker k to car k): {active['commands_paired_per_s']:.0f}/s"
        f" = {result['ratio_paired']:.0%} of the floor; spread like the asks ({k} clients to random"
        f" ones of {args.cars} channel servers) the floor is {active['floor_spread_per_s']:.0f}/s,"
        f" and the asks run at {result['ratio_spread']:.0%} of that"
    )
    passive = run_phase(["--phase", "passive", "--passive-cars", str(args.passive_cars), *common])
    result.update(passive)
    print(
        f"{args.passive_cars} passive cars: {passive['passive_per_car_kb']:.2f} KB each,"
        f" spawned in {passive['passive_spawn_s']:.2f} s;"
        f" asks that wake a sleeping car: {passive['wake_commands_per_s']:.0f}/s"
    )
    result["loadavg_1m_after"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
