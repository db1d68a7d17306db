"""Replay benchmark: a fleet through a day of realistic traffic on the in-process fleet.

    python bench/replay.py                      # 100 cars, 24 virtual hours
    python bench/replay.py --cars 300 --hours 48 --write /tmp/day.toml

Each car has an owner (a third of them a sharee too) and lives a plausible day: a morning
climate start (when the plan has remote climate), a drive to work with position and energy
reports, remote checks and car-finder look-ups during the day, a drive home, a night on the
charger for plug-ins, now and then doors left unlocked (forgot alerts) or an alarm (alerts
to owner and sharee). The scenario is built in memory with the scenario format's own values,
so it is exactly what `twin replay` would run from the file `--write` produces; it is
replayed under trio's MockClock with every expectation and invariant checked.

The last line printed is one JSON object: cars, virtual_hours, events (inbound messages:
commands and car reports, setup included), deliveries (messages apps and the operator desk
received), steps, checks, failures, wall_s, events_per_s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin.protocol import (  # noqa: E402
    AlarmSounding,
    ChargingChanged,
    ClimateStart,
    DoorChanged,
    Door,
    EnergyReported,
    IgnitionChanged,
    Locate,
    Lock,
    LockedByKey,
    Message,
    Plan,
    Position,
    PositionReported,
    Power,
    Powertrain,
    RemoteCheck,
)
from twin.scenarios import CarSpec, Expect, Scenario, ScenarioStep, ShareSpec, dump_scenario, replay  # noqa: E402

EPOCH = dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
HOME = (35.6586, 139.7454)
OK = Expect(ok=True)


def build(cars: int, hours: float, seed: int) -> Scenario:
    rng = random.Random(seed)
    fleet: list[CarSpec] = []
    raw: list[tuple[float, int, str, str, str, Message, Expect]] = []  # (t, order, kind, sender, target, body, expect)
    order = 0

    def add(t: float, kind: str, sender: str, target: str, body: Message, expect: Expect = Expect()) -> None:
        nonlocal order
        if t <= hours * 3600:
            raw.append((t, order, kind, sender, target, body, expect))
            order += 1

    for i in range(cars):
        plan = Plan.STANDARD if i % 3 else Plan.LITE
        powertrain = (Powertrain.HYBRID, Powertrain.PETROL, Powertrain.PHEV, Powertrain.BEV)[i % 4]
        owner = f"o{i}"
        sharee = f"s{i}" if i % 3 == 0 else None
        home = Position(HOME[0] + rng.uniform(-0.05, 0.05), HOME[1] + rng.uniform(-0.05, 0.05))
        spec = CarSpec(
            id=f"car{i}", owner=owner, plan=plan, powertrain=powertrain, navi_package=True, position=home,
            sharees=(ShareSpec(account=sharee),) if sharee else (),
        )
        fleet.append(spec)
        car = spec.address
        user = "user:" + owner
        work = Position(home.lat + rng.uniform(0.02, 0.1), home.lon + rng.uniform(0.02, 0.1))
        for day in range(int(hours // 24) + 1):
            base = day * 86400.0
            odo = 10_000.0 + 60 * day

            def drive(start: float, a: Position, b: Position, minutes: int) -> float:
                add(start, "report", car, car, IgnitionChanged(power=Power.ON))
                t = start
                for k in range(1, minutes // 5 + 1):
                    t = start + k * 300.0
                    f = k / (minutes // 5)
                    add(t, "report", car, car, PositionReported(lat=a.lat + (b.lat - a.lat) * f, lon=a.lon + (b.lon - a.lon) * f, speed_kmh=rng.uniform(20, 60)))
                add(t + 30, "report", car, car, EnergyReported(level_pct=rng.uniform(20, 90), range_km=rng.uniform(100, 500), odometer_km=odo))
                add(t + 60, "report", car, car, IgnitionChanged(power=Power.OFF))
                add(t + 80, "report", car, car, DoorChanged(door=Door.FRONT_LEFT, open=True))
                add(t + 90, "report", car, car, DoorChanged(door=Door.FRONT_LEFT, open=False))
                return t + 90

            leave = base + 7 * 3600 + rng.randrange(0, 3600, 60)
            add(leave - 1200, "send", user, car, ClimateStart(duration_min=10), OK)
            add(leave - 30, "report", car, car, LockedByKey(locked=False))
            parked = drive(leave, home, work, 30 + rng.randrange(0, 30, 5))
            add(parked + 20, "report", car, car, LockedByKey(locked=True))
            for _ in range(rng.randint(1, 3)):  # looking at the car during the day
                who = "user:" + (sharee if sharee and rng.random() < 0.4 else owner)
                add(base + rng.uniform(10, 17) * 3600, "send", who, car, RemoteCheck(), OK)
            add(base + rng.uniform(12, 13) * 3600, "send", user, car, Locate(), OK)
            back = base + 18 * 3600 + rng.randrange(0, 5400, 60)
            add(back - 30, "report", car, car, LockedByKey(locked=False))
            home_at = drive(back, work, home, 30 + rng.randrange(0, 30, 5))
            if rng.random() < 0.15:  # forgot to lock: the alert comes 5 minutes later, then a remote lock
                add(home_at + 900, "send", user, car, Lock(), OK)
            else:
                add(home_at + 20, "report", car, car, LockedByKey(locked=True))
            if powertrain.plugs_in:
                add(home_at + 60, "report", car, car, ChargingChanged(charging=True))
                add(base + 86400 + 5 * 3600, "report", car, car, ChargingChanged(charging=False))
            if rng.random() < 0.02:
                add(base + rng.uniform(1, 4) * 3600, "report", car, car, AlarmSounding(cause="intrusion"))

    raw.sort(key=lambda r: (r[0], r[1]))
    steps = tuple(
        ScenarioStep(index=n, kind=kind, t=t, start=t, sender=sender, target=target, body=body, expect=expect)
        for n, (t, _, kind, sender, target, body, expect) in enumerate(raw, 1)
    )
    end = hours * 3600.0
    last = steps[-1].t if steps else 0.0
    steps += (ScenarioStep(index=len(steps) + 1, kind="advance", t=end, start=last),)  # the rest of the day passes too
    return Scenario(name=f"bench: {cars} cars, {hours:g} h", epoch=EPOCH, cars=tuple(fleet), steps=steps, source="<bench>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-invariants", dest="invariants", action="store_false")
    parser.add_argument("--write", metavar="FILE", help="also write the scenario as a TOML file")
    args = parser.parse_args(argv)

    scenario = build(args.cars, args.hours, args.seed)
    if args.write:
        Path(args.write).write_text(dump_scenario(scenario), encoding="utf-8")
    started = time.perf_counter()
    report = replay(scenario, invariants=args.invariants, keep=False)
    wall = time.perf_counter() - started
    failures = report.failures
    for check in failures[:10]:
        print(f"FAIL step {check.step} {check.what}: {check.summary}", file=sys.stderr)
    figures = {
        "cars": args.cars,
        "virtual_hours": round(report.virtual_s / 3600, 3),
        "events": report.messages,
        "deliveries": report.deliveries,
        "steps": len(scenario.steps),
        "checks": len(report.checks),
        "failures": len(failures),
        "invariants": args.invariants,
        "wall_s": round(wall, 3),
        "events_per_s": round(report.messages / wall) if wall > 0 else 0,
    }
    print(json.dumps(figures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
