"""One load worker: a trio loop hosting cars on vehicle links and running app users.

How it works, in order:

1. Ramp: car `i` of this worker starts connecting at `i / spawn_rate` seconds (its own
   websocket vehicle link: the car's telematics unit, which carries out every actuation its
   twin in the hub sends); app sessions log in alongside.
2. `ready()` (the conductor's GO, or at once) gives the common start instant.
3. Open loop: command arrivals are a Poisson process at `rate` per second, laid out in advance
   of any reply. Each arrival picks an app user, one of its cars and a command of the profile's
   mix, and runs in its own task; its latency is measured from the *intended* send time, so a
   slow hub shows up as latency instead of silently lowering the rate (no coordinated
   omission). How late the sends themselves started is kept apart (`send_lag`): it says when
   the generator, not the hub, is the bottleneck.
4. Car life, also open loop: each car walks through a day (unlock, door, ignition, driving,
   parking, door, lock) one step per event, reported by its link, with an alarm now and then;
   the alerts the twins send reach the apps, which measure alert latency from the car's event
   time (`Alert.at`, wall-clock model time) to receipt.
5. After `duration`, arrivals stop; the in-flight commands finish or time out (the client's
   timeout, plus its one second of slack). The result is complete then and handed over
   (`on_result`, the `RESULT` line) before anything closes: closing thousands of links cannot
   delay or lose it.
6. Every link and session closes at once, each with the full websocket close handshake (the
   generator starts it, the hub answers), so the hub is left with no socket half closed.
   Cancelling them instead would be slower, not faster: a cancelled connection cannot read
   the hub's answer to its close and waits out the client's close timeout (5 s). The close
   is CPU-bound (about 0.4 ms of this process per link on the 2-core reference machine);
   its duration is reported as `close_s`.

The result is a plain dict (histograms encoded) that the conductor merges across workers.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import trio

from twin.client import open_app_session, open_vehicle_link
from twin.errors import Code, TwinError
from twin.protocol import (
    AlarmSounding,
    Alert,
    Door,
    DoorChanged,
    Error,
    IgnitionChanged,
    LockedByKey,
    Message,
    PositionReported,
    Power,
)
from twin.server import pace_gc, tune_gc

from ._hist import encode, new_histogram, record
from ._procs import rss_kb
from ._profile import COMMANDS, Profile

__all__ = ["run_worker"]

#: Reply codes that say the hub or the transport failed (errors), as opposed to the car's rules
#: refusing a valid command (refusals, counted apart).
ERROR_CODES = {c.value for c in (Code.UNKNOWN_TARGET, Code.OFFLINE, Code.TIMEOUT, Code.OVERLOADED, Code.INTERNAL,
                                 Code.MALFORMED, Code.NOT_A_MAP, Code.UNKNOWN_TYPE, Code.MISSING_FIELD, Code.WRONG_TYPE,
                                 Code.UNSUPPORTED_VERSION, Code.FRAME_TOO_LARGE)}


def _day(rng: random.Random) -> list[Message]:
    """One car's day, one step per event."""
    lat, lon = 35.68 + rng.uniform(-0.2, 0.2), 139.76 + rng.uniform(-0.2, 0.2)
    return [
        LockedByKey(locked=False),
        DoorChanged(door=Door.FRONT_LEFT, open=True),
        DoorChanged(door=Door.FRONT_LEFT, open=False),
        IgnitionChanged(power=Power.ON),
        PositionReported(lat=lat, lon=lon, speed_kmh=40.0),
        PositionReported(lat=lat + 0.01, lon=lon + 0.01, speed_kmh=60.0),
        PositionReported(lat=lat + 0.02, lon=lon + 0.01, speed_kmh=0.0),
        IgnitionChanged(power=Power.OFF),
        DoorChanged(door=Door.FRONT_LEFT, open=True),
        DoorChanged(door=Door.FRONT_LEFT, open=False),
        LockedByKey(locked=True),
    ]


class _Stats:
    def __init__(self) -> None:
        self.latency = new_histogram()
        self.interval = new_histogram()
        self.send_lag = new_histogram()
        self.alerts = new_histogram()
        self.per_command: dict[str, Any] = {}
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.alert_types: Counter[str] = Counter()
        self.car_failures: Counter[str] = Counter()
        self.app_failures: Counter[str] = Counter()
        self.sent = 0  # written to the hub
        self.arrivals = 0  # intended
        self.done = 0
        self.interval_errors = 0
        self.events = 0
        self.event_failures = 0
        self.cars = 0
        self.linked = 0  # links open now (`cars` counts every link that connected)
        self.apps = 0
        self.timeline: list[dict[str, Any]] = []

    def command(self, name: str) -> Any:
        h = self.per_command.get(name)
        if h is None:
            h = self.per_command[name] = new_histogram()
        return h


#: What the app sessions only count, so leave undecoded (`twin.protocol.Unread`): the final
#: replies' results and the state pushes, the bulk of what they receive (about a sixth of
#: this process's CPU when decoded).
UNREAD = ("ok", "state_changed")

async def run_worker(
    spec: dict[str, Any],
    *,
    ready: Callable[[], Awaitable[float]] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    may_close: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Run one worker as `spec` says; return its result (see the module docstring), with
    `close_s` added: how long closing every link and session took.

    spec: url, apps [{account, token, cars, other, url?}], cars [[vehicle_id, secret, url?]], rate,
    duration, spawn_rate, profile (`Profile` fields), timeout, seed, interval, max_in_flight.
    `ready()` is awaited once everything is connected and returns the trio time to start at;
    `on_result(result)` is called once the measured window is over, before anything closes;
    then `may_close()`, if given, is awaited before the close starts (the conductor reads the
    hub's statistics in between, while every worker's links are still up).
    """
    profile = Profile(**spec["profile"])
    rng = random.Random(spec.get("seed", 0))
    timeout = float(spec.get("timeout", 5.0))
    interval = float(spec.get("interval", 1.0))
    max_in_flight = int(spec.get("max_in_flight", 10_000))
    url = spec["url"]
    st = _Stats()
    sessions: list[Any] = [None] * len(spec["apps"])
    links: list[Any] = []
    stop = trio.Event()
    connected = trio.Event()
    expected = len(spec["cars"]) + len(spec["apps"])
    settled = [0]  # connected or failed
    names = list(profile.commands)
    weights = [profile.commands[n] for n in names]
    phase = ["ramp"]
    start = [math.inf]

    def settle_one() -> None:
        settled[0] += 1
        if settled[0] >= expected:
            connected.set()

    async def host(vid: str, secret: str, at: str | None = None) -> None:
        counted = False
        try:
            async with open_vehicle_link(at or url, vid, secret, timeout=timeout) as link:
                st.cars += 1
                st.linked += 1
                links.append(link)
                counted = True
                settle_one()
                try:
                    await stop.wait()
                finally:
                    links.remove(link)  # no more events; the link closes as the block ends
        except Exception as exc:  # noqa: BLE001 - counted, not fatal
            st.car_failures[type(exc).__name__] += 1
            if not counted:
                settle_one()
        finally:
            if counted:
                st.linked -= 1

    async def app(i: int, entry: dict[str, Any]) -> None:
        counted = False
        try:
            async with open_app_session(entry.get("url", url), token=entry["token"], timeout=timeout,
                                        unread=UNREAD) as session:
                st.apps += 1
                sessions[i] = session
                counted = True
                settle_one()
                async with trio.open_nursery() as inner:
                    inner.start_soon(_alerts, session)
                    await stop.wait()
                    inner.cancel_scope.cancel()
        except Exception as exc:  # noqa: BLE001 - counted, not fatal
            st.app_failures[type(exc).__name__] += 1
            if not counted:
                settle_one()
        finally:
            sessions[i] = None

    async def _alerts(session: Any) -> None:
        async for env in session.events():
            body = env.body
            if type(body) is Alert:
                received = time.time()
                st.alert_types[body.alert.value] += 1
                if trio.current_time() >= start[0]:
                    record(st.alerts, received - body.at)

    in_flight = [0]

    async def one(intended: float, i: int, car: str, name: str, body: Message) -> None:
        session = sessions[i]
        in_flight[0] += 1
        try:
            if session is None:
                key = "error:not_connected"
            else:
                record(st.send_lag, trio.current_time() - intended)
                st.sent += 1
                try:
                    outcome = await session.request(car, body)
                    reply = outcome.reply.body
                    if reply.TYPE == "ok":
                        key = "ok"
                    elif isinstance(reply, Error):
                        key = ("error:" if reply.code in ERROR_CODES else "refused:") + reply.code
                    else:
                        key = "error:unexpected_reply"
                except TwinError as exc:
                    key = "error:" + str(getattr(exc.code, "value", exc.code))
                except Exception as exc:  # noqa: BLE001 - a closed socket mid-send and the like
                    key = "error:" + type(exc).__name__
            latency = trio.current_time() - intended
            record(st.latency, latency)
            record(st.interval, latency)
            record(st.command(name), latency)
        finally:
            in_flight[0] -= 1
        st.done += 1
        st.outcomes[key] += 1
        kind, _, code = key.partition(":")
        if kind == "error":
            st.errors[code] += 1
            st.interval_errors += 1
        elif kind == "refused":
            st.refused[code] += 1

    async def arrivals(nursery: trio.Nursery) -> None:
        rate = float(spec["rate"])
        apps = spec["apps"]
        owners = [i for i, entry in enumerate(apps) if entry["cars"]]  # an app without a car has nothing to command
        if rate <= 0 or not owners:
            return
        end = start[0] + float(spec["duration"])
        t = start[0] + rng.expovariate(rate)
        while t < end:
            await trio.sleep_until(t)
            st.arrivals += 1
            i = rng.choice(owners)
            entry = apps[i]
            name = rng.choices(names, weights)[0]
            body = COMMANDS[name](entry.get("other") or entry["account"])
            if in_flight[0] >= max_in_flight:
                st.done += 1
                st.outcomes["error:generator_overload"] += 1
                st.errors["generator_overload"] += 1
            else:
                nursery.start_soon(one, t, i, rng.choice(entry["cars"]), name, body)
            t += rng.expovariate(rate)

    async def car_life(nursery: trio.Nursery) -> None:
        per_car = profile.events_per_car_per_min / 60.0
        if per_car <= 0 or not spec["cars"]:
            return
        rate = per_car * len(spec["cars"])
        end = start[0] + float(spec["duration"])
        days: dict[str, list[Message]] = {}
        steps: dict[str, int] = {}
        t = start[0] + rng.expovariate(rate)
        while t < end:
            await trio.sleep_until(t)
            t += rng.expovariate(rate)
            if not links:
                continue
            link = rng.choice(links)
            if rng.random() < profile.alarm_share:
                event: Message = AlarmSounding(cause="intrusion")
            else:
                day = days.get(link.address)
                if day is None:
                    day = days[link.address] = _day(rng)
                k = steps.get(link.address, 0)
                event = day[k % len(day)]
                steps[link.address] = k + 1
            nursery.start_soon(report, link, event)

    async def report(link: Any, event: Message) -> None:
        try:
            await link.report(event)
            st.events += 1
        except Exception:  # noqa: BLE001 - the link closed under us
            st.event_failures += 1

    def progress() -> dict[str, Any]:
        now = trio.current_time()
        return {"phase": phase[0], "t": round(now - start[0], 3) if start[0] < math.inf else None,
                "cars": st.cars, "apps": st.apps, "links": st.linked, "sent": st.sent, "done": st.done,
                "errors": sum(st.errors.values()), "in_flight": in_flight[0], "alerts": st.alerts.get_total_count()}

    async def ticker() -> None:
        while True:
            await trio.sleep(interval)
            p = progress()
            if phase[0] == "run":
                entry = {"t": p["t"], "hist": encode(st.interval), "errors": st.interval_errors}
                st.timeline.append(entry)
                p["interval"] = entry
                st.interval.reset()
                st.interval_errors = 0
            if on_progress is not None:
                on_progress(p)

    cpu0 = time.process_time()
    async with trio.open_nursery() as top:
        top.start_soon(ticker)
        async with trio.open_nursery() as conns:
            ramp_rate = float(spec.get("spawn_rate") or math.inf)
            ramp0 = trio.current_time()
            for i, entry in enumerate(spec["apps"]):
                conns.start_soon(app, i, entry)
            if not spec["cars"] and not spec["apps"]:
                connected.set()

            async def ramp() -> None:
                for n, car in enumerate(spec["cars"]):
                    await trio.sleep_until(ramp0 + n / ramp_rate)
                    conns.start_soon(host, *car)

            conns.start_soon(ramp)
            await connected.wait()
            tune_gc()
            top.start_soon(partial(pace_gc, full_growth=None))  # a worker's run is short: no full collection
            phase[0] = "ready"
            start[0] = await ready() if ready is not None else trio.current_time()
            phase[0] = "run"
            cpu_run = time.process_time()
            with _profiled():
                async with trio.open_nursery() as work:
                    work.start_soon(arrivals, work)
                    work.start_soon(car_life, work)
            # every command finished (they time out on their own) and every arrival was made
            run_s = trio.current_time() - start[0]
            cpu_run = time.process_time() - cpu_run
            phase[0] = "closing"
            if on_progress is not None:
                on_progress(progress())  # the measured window ends here
            if st.interval.get_total_count() or st.interval_errors:
                st.timeline.append({"t": round(trio.current_time() - start[0], 3), "hist": encode(st.interval),
                                    "errors": st.interval_errors})
            result = {
                "cars": st.cars, "apps": st.apps, "car_failures": dict(st.car_failures), "app_failures": dict(st.app_failures),
                "arrivals": st.arrivals, "sent": st.sent, "done": st.done, "run_s": run_s,
                "latency": encode(st.latency), "send_lag": encode(st.send_lag), "alerts": encode(st.alerts),
                "commands": {name: encode(h) for name, h in st.per_command.items()},
                "outcomes": dict(st.outcomes), "errors": dict(st.errors), "refused": dict(st.refused),
                "alert_types": dict(st.alert_types), "events": st.events, "event_failures": st.event_failures,
                "timeline": st.timeline, "cpu_s": round(cpu_run, 3), "cpu_total_s": round(time.process_time() - cpu0, 3),
                "rss_kb": rss_kb(os.getpid()),
            }
            if on_result is not None:
                on_result(result)
            if may_close is not None:
                await may_close()
            closing = trio.current_time()
            stop.set()
        phase[0] = "closed"
        if on_progress is not None:
            on_progress(progress())
        top.cancel_scope.cancel()
    result["close_s"] = round(trio.current_time() - closing, 3)
    return result


@contextlib.contextmanager
def _profiled() -> Iterator[None]:
    """With TWIN_LOAD_PROFILE=PATH, cProfile the measured window into PATH.<pid>."""
    path = os.environ.get("TWIN_LOAD_PROFILE")
    if not path:
        yield
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(f"{path}.{os.getpid()}")


# --- as a process: python -m twin.load._main worker SPEC.json


def main(argv: list[str]) -> None:
    with open(argv[0]) as f:
        spec = json.load(f)

    async def go() -> float:
        print("READY", flush=True)
        line = await trio.to_thread.run_sync(sys.stdin.readline)
        if not line.startswith("GO"):
            raise SystemExit("the conductor went away before GO")
        wall = float(line.split()[1])
        at = trio.current_time() + (wall - time.time())
        return at

    def progress(p: dict[str, Any]) -> None:
        print("PROGRESS " + json.dumps(p), flush=True)

    def result(r: dict[str, Any]) -> None:
        print("RESULT " + json.dumps(r), flush=True)

    async def may_close() -> None:  # the conductor's CLOSE, or stdin closed: the conductor is gone
        await trio.to_thread.run_sync(sys.stdin.readline)

    closed = trio.run(lambda: run_worker(spec, ready=go, on_progress=progress, on_result=result, may_close=may_close))
    print("CLOSED " + json.dumps({"close_s": closed["close_s"]}), flush=True)

