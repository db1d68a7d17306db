"""Load test of the websocket hub: cars on vehicle links, app sessions sending commands.

    python bench/hub.py [--cars 5000] [--apps 200] [--depth 1] [--seconds 10] [--link-procs 2]
                        [--command lock|remote_check] [--quick]

Processes (all on loopback): one hub (`twin.server.serve_hub` over a SQLite file in
/dev/shm, as `twin serve` runs it), `--link-procs` processes hosting the cars on vehicle links
(`twin.client.open_vehicle_link`, each car's telematics unit carrying out the actuations its
twin sends), and one process running the app sessions (`twin.client.open_app_session`), each
keeping `--depth` commands in flight on its own cars (closed loop). Every twin lives in the
hub. `lock` alternates lock and unlock: app -> hub, `accepted`, the approved command to the
car's link and its `ok` back, then the final reply and a `state_changed` push to the owner's
app, the new state committed before the reply; `remote_check` is a pure read the twin answers
itself (`accepted`, then the reply; no frame to the link).

Then, at the same concurrency (`apps` connections with `depth` requests in flight each), a
bare trio-websocket echo server in its own process is measured the same way: `echo_per_s`.

Last, the ceiling of any hub on this machine and library: a bare trio-websocket forwarder
with the same connections and the same frames per command (`accepted`; for `lock` the
actuation to the car's link, its answer, the reply and the state push; for `remote_check` the
reply), of the real sizes, and none of the hub's work (no decoding, rules, routing table or store), between link
and app processes that only answer and count frames: `forward_per_s`, and `commands_vs_forward`
for how close the hub comes to it.

Hub memory per connection = (hub RSS with every link and session connected - hub RSS with the
same cars and accounts loaded but nothing connected) / connections. CPU figures are each
process's user+system time during the measured seconds (`hub_cpu_us_per_command` is the hub's
CPU per command; `echo_server_cpu_us_per_echo` the echo server's per echo). Every process
freezes its start-up objects out of the garbage collector's scans (`gc.freeze`), and the hub
runs its collector on the clock (`pace_gc`), as `twin serve` does. Set TWIN_BENCH_PROFILE=/tmp/prof (and TWIN_BENCH_PROFILE_ROLE=hub) to cProfile
that role during the measured seconds only (the conductor signals SIGUSR1 and SIGUSR2 around
them); the stats are written to /tmp/prof.<role>.<pid>.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


from twin.load import LOAD_HUB_CONFIG, cpu_s, provision, rss_kb
from twin.load._procs import stop, wait_for
from twin.server import pace_gc, tune_gc

# --- roles, each run in its own process


async def role_hub(args: argparse.Namespace) -> None:
    """Provision (if the file is new), write credentials, serve until stdin closes."""
    from twin.server import HubConfig, serve_hub
    from twin.store import Store

    store = Store.open(Path(args.data) / "hub.sqlite3")
    config = HubConfig(port=0, **LOAD_HUB_CONFIG)
    async with trio.open_nursery() as nursery:
        hub = await nursery.start(serve_hub, store, config)
        creds = await provision(hub, store, args.cars, args.apps)
        Path(args.data, "creds.json").write_text(json.dumps(creds))
        tune_gc()
        gc_pacer = trio.CancelScope()

        async def collect() -> None:
            with gc_pacer:
                await pace_gc()

        nursery.start_soon(collect)  # as `twin serve` runs
        print(f"READY {hub.port}", flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # the parent closes stdin to stop us
        gc_pacer.cancel()
        print(hub.statistics(), file=sys.stderr)
        hub.shutdown()
    store.close()


async def role_links(args: argparse.Namespace) -> None:
    """Host cars [first, last) on vehicle links until stdin closes."""
    from twin.client import open_vehicle_link

    creds = json.loads(Path(args.data, "creds.json").read_text())
    cars = sorted(creds["cars"].items())[args.first:args.last]
    _, link_urls = placement(creds, args.port)
    stop = trio.Event()
    connected = 0

    async def host(vid: str, secret: str) -> None:
        nonlocal connected
        async with open_vehicle_link(link_urls[vid], vid, secret, timeout=60):
            connected += 1
            if connected == len(cars):
                tune_gc()
                print("LINKED", flush=True)
            await stop.wait()

    async with trio.open_nursery() as nursery:
        limit = trio.CapacityLimiter(50)  # connect 50 at a time

        async def start(vid: str, secret: str) -> None:
            async with limit:
                nursery.start_soon(host, vid, secret)
                await trio.sleep(0.002)

        for vid, secret in cars:
            await start(vid, secret)
        await trio.to_thread.run_sync(sys.stdin.read)
        stop.set()


class _ClosedLoop:
    """What the client processes of this bench share: wait until all `count` clients are
    connected, say APPS, start on the parent's word, run for `seconds`, print the figures."""

    def __init__(self, args: argparse.Namespace, count: int) -> None:
        self.count, self.seconds = count, args.seconds
        self.ready = 0
        self.all_ready, self.go = trio.Event(), trio.Event()
        self.deadline = 0.0
        self.latencies: list[float] = []
        self.extra: dict[str, Any] = {}  # more figures for the JSON line

    async def connected(self) -> None:
        """A client is connected: return when the measured run starts."""
        self.ready += 1
        if self.ready == self.count:
            self.all_ready.set()
        await self.go.wait()

    def running(self) -> bool:
        return time.perf_counter() < self.deadline

    async def run(self, clients: list[Callable[[], Awaitable[None]]], outcomes: dict[str, int] | None = None) -> None:
        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(client)
            await self.all_ready.wait()
            tune_gc()
            print("APPS", flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)  # the parent says go
            started = time.perf_counter()
            self.deadline = started + self.seconds
            self.go.set()
        wall = time.perf_counter() - started
        print(json.dumps({**_figures(self.latencies, wall, outcomes), **self.extra}), flush=True)


async def role_apps(args: argparse.Namespace) -> None:
    """Connect the app sessions, then run commands closed-loop for `seconds`; print figures."""
    from twin.client import open_app_session
    from twin.protocol import Lock, RemoteCheck, Unlock

    creds = json.loads(Path(args.data, "creds.json").read_text())
    app_urls, _ = placement(creds, args.port)
    loop = _ClosedLoop(args, len(creds["apps"]))
    outcomes: dict[str, int] = {}
    loop.extra["pushes"] = 0  # pushes (state_changed, ...) that arrived during the run

    async def app(url: str, entry: dict[str, Any]) -> None:
        async with open_app_session(url, token=entry["token"], timeout=10) as s:
            await loop.connected()
            backlog = s._events.statistics().current_buffer_used  # nobody reads them: they pile up

            async def worker(w: int) -> None:
                rng = random.Random(w)
                n = 0
                while loop.running():
                    car = rng.choice(entry["cars"])
                    body = RemoteCheck() if args.command == "remote_check" else (Lock() if n % 2 else Unlock())
                    n += 1
                    t = time.perf_counter()
                    outcome = await s.request(car, body)
                    loop.latencies.append(time.perf_counter() - t)
                    kind = outcome.reply.body.TYPE
                    key = kind if kind == "ok" else outcome.reply.body.code  # type: ignore[attr-defined]
                    outcomes[key] = outcomes.get(key, 0) + 1

            async with trio.open_nursery() as workers:
                for w in range(args.depth):
                    workers.start_soon(worker, hash((entry["token"], w)))
            loop.extra["pushes"] += s._events.statistics().current_buffer_used - backlog

    await loop.run([partial(app, url, entry) for url, entry in zip(app_urls, creds["apps"])], outcomes)


def placement(creds: dict[str, Any], ports: str) -> tuple[list[str], dict[str, str]]:
    """Where each app session and each car's link connects, given `ports` (`--port`): one
    hub's port, or the comma-separated ports of a cluster's nodes (`bench/cluster.py`).

    App i connects to node i % N; the cars it owns have their links on the other nodes in
    turn (on the same one only when there is one), so that a command crosses nodes. Returns
    the apps' URLs, in the order of `creds["apps"]`, and each car's link URL by vehicle id."""
    urls = [f"ws://127.0.0.1:{port}/" for port in ports.split(",")]
    n = len(urls)
    apps: list[str] = []
    links: dict[str, str] = {}
    for i, entry in enumerate(creds["apps"]):
        apps.append(urls[i % n])
        for k, car in enumerate(entry["cars"]):
            links[car[len("car:"):]] = urls[(i + 1 + k % (n - 1)) % n] if n > 1 else urls[0]
    return apps, links


def _figures(latencies: list[float], wall: float, outcomes: dict[str, int] | None = None) -> dict[str, Any]:
    latencies.sort()
    n = len(latencies)
    out: dict[str, Any] = {"count": n, "per_s": round(n / wall, 1)}
    if n:
        out["p50_ms"] = round(latencies[n // 2] * 1000, 2)
        out["p99_ms"] = round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2)
    if outcomes is not None:
        out["outcomes"] = outcomes
    return out


async def role_echo_server(args: argparse.Namespace) -> None:
    from trio_websocket import ConnectionClosed

    async def echo(request: Any) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass

    await _serve_until_stdin_closes(echo)


async def _serve_until_stdin_closes(handler: Callable[[Any], Awaitable[None]]) -> None:
    """A bare trio-websocket server on a free loopback port: says READY <port>, serves until
    the parent closes stdin."""
    from trio_websocket import serve_websocket

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        tune_gc()
        print(f"READY {server.port}", flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()


async def role_echo_clients(args: argparse.Namespace) -> None:
    """`apps` connections, `depth` requests in flight on each, like the app sessions."""
    payload = b"\x87" + b"x" * 80  # about a command frame

    def request(c: int, key: bytes, rng: random.Random) -> bytes:
        return key + payload

    await _closed_loop(args, request, hello=None, frames_back=1)


async def _closed_loop(
    args: argparse.Namespace,
    request: Callable[[int, bytes, random.Random], bytes],
    *,
    hello: Callable[[int], bytes] | None,
    frames_back: int,
) -> None:
    """`apps` bare websockets to `args.port`, each with `depth` requests in flight for
    `seconds` once the parent says go: `request(client, key, rng)` is a frame starting with its
    8-byte key; a request is done when `frames_back` frames starting with that key came back.
    Prints the figures as a JSON line."""
    from twin.client import open_websocket

    url = f"ws://127.0.0.1:{args.port}/"
    loop = _ClosedLoop(args, args.apps)

    async def client(c: int) -> None:
        async with open_websocket(url) as ws:
            if hello is not None:
                await ws.send_message(hello(c))
            await loop.connected()
            waiting: dict[bytes, list[Any]] = {}  # key -> [frames still due, done event]

            async def reader() -> None:
                while True:
                    entry = waiting[(await ws.get_message())[:8]]
                    entry[0] -= 1
                    if entry[0] == 0:
                        entry[1].set()

            async def worker(w: int) -> None:
                rng = random.Random(c * 1000 + w)
                n = 0
                while loop.running():
                    n += 1
                    key = w.to_bytes(4, "big") + n.to_bytes(4, "big")
                    done = trio.Event()
                    waiting[key] = [frames_back, done]
                    frame = request(c, key, rng)
                    t = time.perf_counter()
                    await ws.send_message(frame)
                    await done.wait()
                    loop.latencies.append(time.perf_counter() - t)
                    del waiting[key]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                async with trio.open_nursery() as workers:
                    for w in range(args.depth):
                        workers.start_soon(worker, w)
                nursery.cancel_scope.cancel()

    await loop.run([partial(client, c) for c in range(args.apps)])


def run_role(roles: Mapping[str, Callable[[argparse.Namespace], Awaitable[None]]], args: argparse.Namespace) -> bool:
    """Run `args.role` in this process if it is one of `roles` (cProfiled if
    TWIN_BENCH_PROFILE asks for it); whether it was one."""
    if args.role not in roles:
        return False
    profile = os.environ.get("TWIN_BENCH_PROFILE")
    if profile and os.environ.get("TWIN_BENCH_PROFILE_ROLE", args.role) == args.role:
        _profile_on_signals(f"{profile}.{args.role}.{os.getpid()}")
    trio.run(roles[args.role], args)
    return True


def _profile_on_signals(path: str) -> None:
    """cProfile this process between SIGUSR1 and SIGUSR2 (the measured window), then dump."""
    import cProfile

    profiler = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
    signal.signal(signal.SIGUSR2, lambda *_: (profiler.disable(), profiler.dump_stats(path)))


def _signal_profiled(roles: dict[str, list[subprocess.Popen[str]]], signum: int) -> None:
    """Send `signum` to the processes of the profiled roles (an unprofiled one would die of it)."""
    if os.environ.get("TWIN_BENCH_PROFILE"):
        wanted = os.environ.get("TWIN_BENCH_PROFILE_ROLE")
        for role, procs in roles.items():
            if wanted in (None, role):
                for proc in procs:
                    proc.send_signal(signum)


# --- the forwarder: the hub's frame pattern with none of its work, the ceiling of any hub here
#
# Frames start with an 8-byte key (worker, sequence) and the app's number; an app's command
# also names its car. The forwarder answers each command with an `accepted`; a `lock` it
# passes to the car's link as the actuation, the link answers it, and the forwarder sends the
# app the reply and the state push; a `remote_check` it answers with the reply at once, as the
# twin in the hub does. Sizes are those of the real frames.

_SIZES = {"command": 60, "accepted": 50, "reply": 430, "event": 440, "actuation": 60, "answer": 80}


def _frames_per_command(args: argparse.Namespace) -> int:
    """Frames an app waits for per command: `accepted`, the reply, and a lock's state push."""
    return 3 if args.command == "lock" else 2


async def role_forwarder(args: argparse.Namespace) -> None:
    from trio_websocket import ConnectionClosed

    links: dict[int, Any] = {}
    apps: dict[int, Any] = {}
    lock = args.command == "lock"
    accepted = b"a" * (_SIZES["accepted"] - 8)
    reply, event = b"r" * (_SIZES["reply"] - 12), b"e" * (_SIZES["event"] - 12)
    actuation = b"c" * (_SIZES["actuation"] - 16)

    async def handle(request: Any) -> None:
        ws = await request.accept()
        hello = await ws.get_message()
        who = int(hello[1:])
        try:
            if hello[:1] == b"L":
                links[who] = ws
                while True:
                    head = (await ws.get_message())[:12]  # the link carried the actuation out
                    app = apps.get(int.from_bytes(head[8:12], "big"))
                    if app is not None:
                        await app.send_message(head + reply)
                        await app.send_message(head + event)
            else:
                apps[who] = ws
                while True:
                    frame = await ws.get_message()
                    await ws.send_message(frame[:8] + accepted)
                    if lock:
                        await links[int.from_bytes(frame[12:16], "big")].send_message(frame[:16] + actuation)
                    else:
                        await ws.send_message(frame[:12] + reply)
        except ConnectionClosed:
            pass

    await _serve_until_stdin_closes(handle)


async def role_forward_links(args: argparse.Namespace) -> None:
    """Cars [first, last) of the forwarder: answer each actuation as the hub's links would."""
    from trio_websocket import ConnectionClosed

    from twin.client import open_websocket

    url = f"ws://127.0.0.1:{args.port}/"
    answer = b"k" * (_SIZES["answer"] - 12)
    connected = 0

    async def car(n: int) -> None:
        nonlocal connected
        async with open_websocket(url) as ws:
            await ws.send_message(b"L%d" % n)
            connected += 1
            if connected == args.last - args.first:
                tune_gc()
                print("LINKED", flush=True)
            try:
                while True:
                    head = (await ws.get_message())[:12]
                    await ws.send_message(head + answer)
            except ConnectionClosed:
                pass

    async with trio.open_nursery() as nursery:
        limit = trio.CapacityLimiter(50)

        async def start(n: int) -> None:
            async with limit:
                nursery.start_soon(car, n)
                await trio.sleep(0.002)

        for n in range(args.first, args.last):
            await start(n)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()


async def role_forward_apps(args: argparse.Namespace) -> None:
    """`apps` connections with `depth` commands in flight each, to their own cars, as the app
    sessions send them; a command is done when all its frames came back."""
    per_app = max(1, args.cars // args.apps)
    padding = b"x" * (_SIZES["command"] - 16)

    def request(a: int, key: bytes, rng: random.Random) -> bytes:
        car = a * per_app + rng.randrange(per_app)
        return key + a.to_bytes(4, "big") + car.to_bytes(4, "big") + padding

    await _closed_loop(args, request, hello=lambda a: b"A%d" % a, frames_back=_frames_per_command(args))


# --- the conductor


def spawn(role: str, args: argparse.Namespace, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--role", role, "--data", args.data, "--cars", str(args.cars),
           "--apps", str(args.apps), "--depth", str(args.depth), "--seconds", str(args.seconds),
           "--command", args.command, *extra]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def spawn_links(role: str, args: argparse.Namespace, port: str) -> list[subprocess.Popen[str]]:
    """`--link-procs` processes of `role` hosting the cars between them; once all are linked."""
    per = -(-args.cars // args.link_procs)
    links = [spawn(role, args, "--port", port, "--first", str(p * per), "--last", str(min(args.cars, (p + 1) * per)))
             for p in range(args.link_procs)]
    for proc in links:
        wait_for(proc, "LINKED")
    return links


def start_clients(args: argparse.Namespace, port: str, procs: list[subprocess.Popen[str]], prefix: str = "") -> tuple[
        list[subprocess.Popen[str]], subprocess.Popen[str]]:
    """The link processes and the app process (roles `<prefix>links`, `<prefix>apps`) of a run
    against `port` (or several, comma-separated), once every client is connected; each is
    added to `procs` as soon as it runs, for the caller's clean-up."""
    links = spawn_links(prefix + "links", args, port)
    procs.extend(links)
    apps = spawn(prefix + "apps", args, "--port", port)
    procs.append(apps)
    wait_for(apps, "APPS")
    return links, apps


def go(clients: subprocess.Popen[str], who: str) -> dict[str, Any]:
    """Start a waiting client process's measured run; return the JSON line it reports."""
    assert clients.stdin is not None and clients.stdout is not None
    clients.stdin.write("go\n")
    clients.stdin.flush()
    line = ""
    while not line.startswith("{"):
        line = clients.stdout.readline()
        if not line:
            raise RuntimeError(f"the {who} process died")
    return json.loads(line)  # type: ignore[no-any-return]


def conduct(args: argparse.Namespace) -> dict[str, Any]:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    args.data = tempfile.mkdtemp(prefix="twin-bench-", dir=base)
    procs: list[subprocess.Popen[str]] = []
    try:
        hub = spawn("hub", args)
        procs.append(hub)
        port = wait_for(hub, "READY").split()[1]
        time.sleep(1.0)
        rss_idle = rss_kb(hub.pid)
        links, apps = start_clients(args, port, procs)
        time.sleep(1.0)
        rss_connected = rss_kb(hub.pid)
        connections = args.cars + args.apps
        hub_cpu = cpu_s(hub.pid)
        links_cpu = sum(cpu_s(p.pid) for p in links)
        apps_cpu = cpu_s(apps.pid)
        everyone = {"hub": [hub], "links": links, "apps": [apps]}
        _signal_profiled(everyone, signal.SIGUSR1)
        run = go(apps, "app")
        _signal_profiled(everyone, signal.SIGUSR2)
        hub_cpu = cpu_s(hub.pid) - hub_cpu
        links_cpu = sum(cpu_s(p.pid) for p in links) - links_cpu
        apps_cpu = cpu_s(apps.pid) - apps_cpu
        rss_loaded = rss_kb(hub.pid)
        stop(apps, *links, hub)
        procs.clear()

        echo_server = spawn("echo-server", args)
        procs.append(echo_server)
        echo_port = wait_for(echo_server, "READY").split()[1]
        echo_clients = spawn("echo-clients", args, "--port", echo_port)
        procs.append(echo_clients)
        wait_for(echo_clients, "APPS")
        echo_cpu = cpu_s(echo_server.pid)
        echo = go(echo_clients, "echo client")
        echo_cpu = cpu_s(echo_server.pid) - echo_cpu
        stop(echo_clients, echo_server)
        procs.clear()

        forwarder = spawn("forwarder", args)
        procs.append(forwarder)
        forward_port = wait_for(forwarder, "READY").split()[1]
        forward_links, forward_apps = start_clients(args, forward_port, procs, "forward-")
        forward_cpu = cpu_s(forwarder.pid)
        forward = go(forward_apps, "forwarding app")
        forward_cpu = cpu_s(forwarder.pid) - forward_cpu
        stop(forward_apps, *forward_links, forwarder)
        procs.clear()
    finally:
        stop(*procs)
        shutil.rmtree(args.data, ignore_errors=True)
    return {
        "connections": connections,
        "cars_on_links": args.cars,
        "app_sessions": args.apps,
        "in_flight": args.apps * args.depth,
        "command": args.command if args.command == "remote_check" else "lock/unlock",
        "seconds": args.seconds,
        "commands_per_s": run["per_s"],
        "p50_ms": run.get("p50_ms"),
        "p99_ms": run.get("p99_ms"),
        "outcomes": run.get("outcomes"),
        "pushes_per_command": round(run.get("pushes", 0) / max(1, run["count"]), 2),
        "hub_cpu_share": round(hub_cpu / args.seconds, 2),
        "links_cpu_share": round(links_cpu / args.seconds, 2),
        "apps_cpu_share": round(apps_cpu / args.seconds, 2),
        "hub_rss_idle_mb": round(rss_idle / 1024, 1),
        "hub_rss_connected_mb": round(rss_connected / 1024, 1),
        "hub_rss_after_load_mb": round(rss_loaded / 1024, 1),
        "hub_kb_per_connection": round((rss_connected - rss_idle) / connections, 1),
        "hub_cpu_us_per_command": round(hub_cpu / max(1, run["count"]) * 1e6),
        "echo_per_s": echo["per_s"],
        "echo_server_cpu_us_per_echo": round(echo_cpu / max(1, echo["count"]) * 1e6),
        "echo_p99_ms": echo.get("p99_ms"),
        "commands_vs_echo": round(run["per_s"] / echo["per_s"], 3) if echo["per_s"] else None,
        "forward_per_s": forward["per_s"],
        "forward_p99_ms": forward.get("p99_ms"),
        "forwarder_cpu_us_per_command": round(forward_cpu / max(1, forward["count"]) * 1e6),
        "forward_vs_echo": round(forward["per_s"] / echo["per_s"], 3) if echo["per_s"] else None,
        "commands_vs_forward": round(run["per_s"] / forward["per_s"], 3) if forward["per_s"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="conductor")
    parser.add_argument("--data", default="")
    parser.add_argument("--cars", type=int, default=5000)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--depth", type=int, default=1, help="commands in flight per app session")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--link-procs", type=int, default=2)
    parser.add_argument("--command", choices=("remote_check", "lock"), default="lock")
    parser.add_argument("--port", default="0", help="the hub's port (or, for the clients, comma-separated node ports)")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--last", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small run (200 cars, 20 apps, 3 s)")
    args = parser.parse_args()
    roles = {"hub": role_hub, "links": role_links, "apps": role_apps,
             "echo-server": role_echo_server, "echo-clients": role_echo_clients,
             "forwarder": role_forwarder, "forward-links": role_forward_links, "forward-apps": role_forward_apps}
    if run_role(roles, args):
        return
    if args.quick:
        args.cars, args.apps, args.seconds = 200, 20, 3.0
    print(json.dumps(conduct(args)))


if __name__ == "__main__":
    main()
