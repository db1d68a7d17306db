"""Load test of a cluster of hub nodes sharing one Redis, against one embedded SQLite hub.

    python bench/cluster.py [--nodes 2] [--cars 1000] [--apps 100] [--depth 1] [--seconds 10]
                            [--link-procs 2] [--command lock|remote_check] [--quick]

What it measures: the CPU one command costs a cluster (`twin.cluster`: every node's process,
and the redis-server process on top), next to what the same command costs the embedded engine
(one hub on a SQLite file), with the same fleet and the same load, in the same run. The
issue's target is the Redis engine's CPU per command at most 1.5x the embedded engine's:
`cpu_ratio` = (nodes + Redis) CPU per command / the single hub's CPU per command.

How (all on loopback, every process started and stopped by this script, even on an error or
Ctrl-C):

1. A redis-server of its own on a free port, its directory in a temporary folder in /dev/shm
   (where bench/hub.py keeps its SQLite file, so neither engine pays a disk): append-only file
   on (`appendonly yes`, `appendfsync everysec`, the durability `twin serve --engine` is
   documented with), RDB snapshots off (`save ""`), so that no fork lands in the measured
   window.
2. The fleet is provisioned once through the Hub's public API (`twin.load.provision`, as
   bench/hub.py does) by a provisioning node: a cluster node alone on the Redis (so it holds
   every shard), which then leaves the cluster. `redis_bytes_per_car` = Redis `used_memory`
   (INFO memory) after provisioning minus before, per car (the accounts' share included).
3. `--nodes` node processes serve that Redis (`serve_hub` with `HubConfig(cluster=True)` and
   the load limits of `twin.load.LOAD_HUB_CONFIG`, as `twin serve --engine redis://...` runs
   a node); the bench waits until they hold every shard between them, each its fair share.
4. The clients of bench/hub.py (its `links` and `apps` roles, `bench.hub.placement`): cars on
   vehicle links in `--link-procs` processes, the app sessions in one process, each keeping
   `--depth` commands in flight on its own cars (closed loop) for `--seconds`. App i connects
   to node i % N and its cars' links to the other nodes, so that a command really crosses
   nodes (where the twin lives is its shard's holder: any node). `lock` alternates lock and
   unlock (app -> node -> twin -> the car's link -> twin -> the app's node, each hop between
   nodes through a Redis stream, the state committed in the node's one Lua commit before the
   reply); `remote_check` is a read the twin answers itself.
5. The same fleet (provisioned the same way into a fresh SQLite file) and the same clients
   against one embedded hub, bench/hub.py's `hub` role.

CPU figures are each process's user+system time (/proc) during the measured seconds, divided
by the commands answered in them. On a 2-core machine the nodes, Redis and the load
generators share the two cores, so throughput (`commands_per_s`) says little about a cluster
on its own machines: CPU per command is the meaningful figure. Latencies are exact
percentiles of every command's round trip, as bench/hub.py computes them. Besides:
`pushes_per_command` (pushes that reached the app sessions during the run, per command: 1
for a lock's `state_changed`, so a cluster that loses pushes shows it), `commands_per_commit`
(the nodes' Lua commits), `redis_ops_per_command` (Redis commands executed, those inside the
commit scripts included: `total_commands_processed`), `cpu_ratio_nodes_only` (Redis's own
CPU left out). `--nodes 1` measures the Redis engine on one node, with no hop between nodes.

Set TWIN_BENCH_PROFILE=/tmp/prof and TWIN_BENCH_PROFILE_ROLE=node (or hub, links, apps) to
cProfile that role during the measured seconds only, as bench/hub.py does; the stats are
written to /tmp/prof.<role>.<pid>.

Human-readable lines first; the last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.hub import _signal_profiled, go, run_role, spawn, start_clients  # noqa: E402  (the clients, and how to start them)
from twin.load import LOAD_HUB_CONFIG, cpu_s, open_files_limit, provision  # noqa: E402
from twin.load._procs import stop, wait_for  # noqa: E402
from twin.server import HubConfig, tune_gc  # noqa: E402

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
#: the issue's target: CPU per command of the Redis engine / that of the embedded engine
TARGET_RATIO = 1.5

# --- roles, each run in its own process (`--role`)


class _Tokens:
    """The `store` that `provision` wants (a blocking `issue_token`, which it runs in a worker
    thread), for a Redis engine: the call is handed back to the engine on the trio loop."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def issue_token(self, account: str) -> str:
        return trio.from_thread.run(self.engine.issue_token, account)  # type: ignore[no-any-return]


async def role_provision(args: argparse.Namespace) -> None:
    """A node alone on the Redis (holding every shard): provision the fleet, write the
    credentials, leave the cluster."""
    from twin.server import serve_hub
    from twin.store import open_engine

    async with open_engine(args.redis) as engine:
        async with trio.open_nursery() as nursery:
            hub = await nursery.start(serve_hub, engine, HubConfig(port=0, cluster=True, **LOAD_HUB_CONFIG))
            held = len(hub.cluster.router.owned)
            if held != hub.cluster.shards:
                raise RuntimeError(f"the provisioning node holds {held} of {hub.cluster.shards} shards: is another node on this Redis?")
            creds = await provision(hub, _Tokens(engine), args.cars, args.apps)
            await hub.settle()
            Path(args.data, "creds.json").write_text(json.dumps(creds))
            hub.shutdown()  # commits, gives every shard back
    print("PROVISIONED", flush=True)


async def role_node(args: argparse.Namespace) -> None:
    """One node of the cluster: says READY <port> <node id>; a line `stats` on stdin prints
    STATS <json> (the node's and the hub's statistics), `freeze` moves what is loaded out of
    the collector's scans (FROZEN); closing stdin shuts the node down gracefully."""
    import attrs

    from twin.server import serve_hub
    from twin.store import open_engine

    async with open_engine(args.redis) as engine:
        async with trio.open_nursery() as nursery:
            hub = await nursery.start(serve_hub, engine, HubConfig(port=0, cluster=True, **LOAD_HUB_CONFIG))
            print(f"READY {hub.port} {hub.cluster.id}", flush=True)
            while True:
                line = (await trio.to_thread.run_sync(sys.stdin.readline)).strip()
                if not line:
                    break
                if line == "stats":
                    print("STATS " + json.dumps({**hub.cluster.statistics(), **attrs.asdict(hub.statistics())}), flush=True)
                elif line == "freeze":
                    tune_gc()
                    print("FROZEN", flush=True)
            hub.shutdown()


# --- Redis: the server, and a few words with it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_info(port: int, section: str = "everything") -> dict[str, str]:
    """`INFO section` of the Redis on `port`, as {field: value}."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, sock.makefile("rb") as f:
        sock.sendall(f"INFO {section}\r\n".encode())
        head = f.readline()
        if not head.startswith(b"$"):
            raise RuntimeError(f"redis-server answered INFO with {head!r}")
        body = f.read(int(head[1:]))
    fields = (line.split(":", 1) for line in body.decode().splitlines() if ":" in line and not line.startswith("#"))
    return {key: value for key, value in fields}


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of this bench's own on a free loopback port (AOF everysec, no RDB saves)."""
    directory.mkdir()
    port = free_port()
    with open(directory / "redis.log", "ab") as log:
        proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--daemonize", "no",
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis_info(port, "server")
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_redis(proc)
                raise RuntimeError(f"redis-server did not come up:\n{(directory / 'redis.log').read_text()[-2000:]}") from None
            time.sleep(0.02)  # polling a condition, with the bound above


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _calls(info: dict[str, str], command: str) -> int:
    """How many times `command` ran, from INFO commandstats."""
    stat = info.get(f"cmdstat_{command}", "")
    return int(stat.split("calls=", 1)[1].split(",", 1)[0]) if "calls=" in stat else 0


# --- the cluster's nodes


def node_stats(node: subprocess.Popen[str]) -> dict[str, Any]:
    assert node.stdin is not None
    node.stdin.write("stats\n")
    node.stdin.flush()
    return json.loads(wait_for(node, "STATS").split(" ", 1)[1])  # type: ignore[no-any-return]


def wait_settled(nodes: list[subprocess.Popen[str]], timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until the nodes hold every shard between them, each its fair share and knowing
    the others live; their statistics then."""
    deadline = time.monotonic() + timeout
    while True:
        stats = [node_stats(node) for node in nodes]
        shards = HubConfig().shards
        share = math.ceil(shards / len(nodes))
        held = [s["shards"] for s in stats]
        if sum(held) == shards and all(0 < h <= share for h in held) and all(len(s["live_nodes"]) == len(nodes) for s in stats):
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"the nodes did not settle their shares within {timeout:.0f} s: {stats}")
        time.sleep(0.2)


# --- the conductor


def _say(proc: subprocess.Popen[str], line: str, answer: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    wait_for(proc, answer)


def _spawn_own(role: str, args: argparse.Namespace, *extra: str) -> subprocess.Popen[str]:
    """A process running one of this file's roles."""
    cmd = [sys.executable, __file__, "--role", role, "--data", args.data, "--cars", str(args.cars),
           "--apps", str(args.apps), "--redis", args.redis, *extra]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _errors(run: dict[str, Any]) -> int:
    return sum(n for outcome, n in (run.get("outcomes") or {}).items() if outcome != "ok")


def measure_cluster(args: argparse.Namespace, base: Path, procs: list[subprocess.Popen[str]],
                    redis: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    """Redis, the provisioning node, `--nodes` nodes, the clients: the cluster's figures."""
    args.data = str(base / "cluster")
    os.mkdir(args.data)
    server, port = start_redis(base / "redis")
    redis.append(server)
    args.redis = f"redis://127.0.0.1:{port}/0"
    empty = int(redis_info(port, "memory")["used_memory"])

    started = time.monotonic()
    provisioner = _spawn_own("provision", args)
    procs.append(provisioner)
    wait_for(provisioner, "PROVISIONED")
    stop(provisioner)
    procs.remove(provisioner)
    provision_s = time.monotonic() - started
    provisioned = int(redis_info(port, "memory")["used_memory"])

    nodes = [_spawn_own("node", args) for _ in range(args.nodes)]
    procs.extend(nodes)
    ready = [wait_for(node, "READY").split() for node in nodes]
    ports = ",".join(word[1] for word in ready)
    settled = wait_settled(nodes)
    for node in nodes:
        _say(node, "freeze", "FROZEN")
    links, apps = start_clients(args, ports, procs)
    time.sleep(1.0)  # the links' attach reaches the twins on whichever node holds them

    before = [node_stats(node) for node in nodes]
    info = redis_info(port)
    nodes_cpu = [cpu_s(node.pid) for node in nodes]
    redis_cpu = cpu_s(server.pid)
    clients_cpu = sum(cpu_s(p.pid) for p in [*links, apps])
    everyone = {"node": nodes, "links": links, "apps": [apps]}
    _signal_profiled(everyone, signal.SIGUSR1)
    run = go(apps, "app")
    _signal_profiled(everyone, signal.SIGUSR2)
    nodes_cpu = [cpu_s(node.pid) - cpu for node, cpu in zip(nodes, nodes_cpu)]
    redis_cpu = cpu_s(server.pid) - redis_cpu
    clients_cpu = sum(cpu_s(p.pid) for p in [*links, apps]) - clients_cpu
    after = [node_stats(node) for node in nodes]
    info_after = redis_info(port)

    stop(apps, *links)
    stop(*nodes)
    for proc in [apps, *links, *nodes]:
        procs.remove(proc)
    stop_redis(server)
    redis.remove(server)
    commands = max(1, run["count"])
    commits = sum(a["commits"] - b["commits"] for a, b in zip(after, before))
    return {
        "run": run,
        "node_ids": [word[2] for word in ready],
        "shards_held": [s["shards"] for s in settled],
        "provision_s": round(provision_s, 1),
        "nodes_cpu_share": [round(c / args.seconds, 2) for c in nodes_cpu],
        "redis_cpu_share": round(redis_cpu / args.seconds, 2),
        "clients_cpu_share": round(clients_cpu / args.seconds, 2),
        "cpu_us_per_command": round(sum(nodes_cpu) / commands * 1e6),
        "redis_cpu_us_per_command": round(redis_cpu / commands * 1e6),
        "node_commands": [a["commands"] - b["commands"] for a, b in zip(after, before)],
        "commits": commits,
        "commands_per_commit": round(run["count"] / commits, 1) if commits else None,
        "redis_ops_per_command": round((int(info_after["total_commands_processed"]) - int(info["total_commands_processed"])) / commands, 1),
        "redis_xreadgroup_per_command": round((_calls(info_after, "xreadgroup") - _calls(info, "xreadgroup")) / commands, 2),
        "redis_bytes_per_car": round((provisioned - empty) / max(1, args.cars)),
        "redis_used_memory_mb": round(int(info_after["used_memory"]) / 2**20, 1),
        "redis_aof_rewrites": int(info_after.get("aof_rewrites", 0)) - int(info.get("aof_rewrites", 0)),
    }


def measure_single(args: argparse.Namespace, base: Path, procs: list[subprocess.Popen[str]]) -> dict[str, Any]:
    """The same fleet and clients against one embedded hub (bench/hub.py's `hub` role)."""
    args.data = str(base / "single")
    os.mkdir(args.data)
    hub = spawn("hub", args)
    procs.append(hub)
    port = wait_for(hub, "READY").split()[1]
    links, apps = start_clients(args, port, procs)
    time.sleep(1.0)  # as for the cluster
    hub_cpu = cpu_s(hub.pid)
    clients_cpu = sum(cpu_s(p.pid) for p in [*links, apps])
    everyone = {"hub": [hub], "links": links, "apps": [apps]}
    _signal_profiled(everyone, signal.SIGUSR1)
    run = go(apps, "app")
    _signal_profiled(everyone, signal.SIGUSR2)
    hub_cpu = cpu_s(hub.pid) - hub_cpu
    clients_cpu = sum(cpu_s(p.pid) for p in [*links, apps]) - clients_cpu
    stop(apps, *links, hub)
    for proc in [apps, *links, hub]:
        procs.remove(proc)
    return {
        "run": run,
        "hub_cpu_share": round(hub_cpu / args.seconds, 2),
        "clients_cpu_share": round(clients_cpu / args.seconds, 2),
        "cpu_us_per_command": round(hub_cpu / max(1, run["count"]) * 1e6),
    }


def stop_all(procs: list[subprocess.Popen[str]]) -> None:
    """After an error or Ctrl-C: terminate the client processes (bench/hub.py's links and apps
    hold nothing worth saving, and closing an app process's stdin would start its run), then
    shut the hub or nodes down gracefully."""
    for proc in procs:
        if proc.poll() is None and cast(list[str], proc.args)[2:4] in (["--role", "links"], ["--role", "apps"]):
            proc.terminate()
    stop(*procs, timeout=10)


def conduct(args: argparse.Namespace) -> dict[str, Any]:
    open_files_limit(2 * (args.cars + args.apps) + 1000)  # the children inherit it
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    base = Path(tempfile.mkdtemp(prefix="twin-bench-cluster-", dir=shm))
    procs: list[subprocess.Popen[str]] = []
    redis: list[subprocess.Popen[bytes]] = []
    try:
        cluster = measure_cluster(args, base, procs, redis)
        single = measure_single(args, base, procs)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        stop_all(procs)
        for server in redis:
            stop_redis(server)
        shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    run, alone = cluster.pop("run"), single.pop("run")
    single_cpu = single["cpu_us_per_command"]
    cluster_cpu = cluster["cpu_us_per_command"] + cluster["redis_cpu_us_per_command"]
    return {
        "nodes": args.nodes,
        "command": args.command if args.command == "remote_check" else "lock/unlock",
        "cars_on_links": args.cars,
        "app_sessions": args.apps,
        "in_flight": args.apps * args.depth,
        "seconds": args.seconds,
        "commands": run["count"],
        "commands_per_s": run["per_s"],
        "p50_ms": run.get("p50_ms"),
        "p99_ms": run.get("p99_ms"),
        "errors": _errors(run),
        "pushes_per_command": round(run.get("pushes", 0) / max(1, run["count"]), 2),
        "outcomes": run.get("outcomes"),
        **{key: value for key, value in cluster.items() if key != "cpu_us_per_command" and key != "redis_cpu_us_per_command"},
        "cpu_us_per_command": cluster["cpu_us_per_command"],
        "redis_cpu_us_per_command": cluster["redis_cpu_us_per_command"],
        "cluster_cpu_us_per_command": cluster_cpu,
        "single_node_commands": alone["count"],
        "single_node_commands_per_s": alone["per_s"],
        "single_node_p50_ms": alone.get("p50_ms"),
        "single_node_p99_ms": alone.get("p99_ms"),
        "single_node_errors": _errors(alone),
        "single_node_pushes_per_command": round(alone.get("pushes", 0) / max(1, alone["count"]), 2),
        "single_node_hub_cpu_share": single["hub_cpu_share"],
        "single_node_clients_cpu_share": single["clients_cpu_share"],
        "single_node_cpu_us_per_command": single_cpu,
        "cpu_ratio": round(cluster_cpu / single_cpu, 2) if single_cpu else None,
        "cpu_ratio_nodes_only": round(cluster["cpu_us_per_command"] / single_cpu, 2) if single_cpu else None,
        "target_cpu_ratio": TARGET_RATIO,
    }


def report(figures: dict[str, Any]) -> list[str]:
    """The human-readable lines printed before the JSON."""
    f = figures
    ratio = f["cpu_ratio"]
    verdict = "no figure" if ratio is None else ("met" if ratio <= TARGET_RATIO else "NOT met")
    return [
        f"{f['command']}: {f['cars_on_links']} cars on links, {f['app_sessions']} app sessions x {f['in_flight'] // max(1, f['app_sessions'])} "
        f"in flight, {f['seconds']:g} s each",
        f"cluster, {f['nodes']} node(s) on one Redis: {f['commands_per_s']:,.0f} commands/s, p50 {f['p50_ms']} ms, "
        f"p99 {f['p99_ms']} ms, {f['errors']} errors of {f['commands']:,}",
        f"  CPU per command: nodes {f['cpu_us_per_command']} us + redis-server {f['redis_cpu_us_per_command']} us "
        f"= {f['cluster_cpu_us_per_command']} us ({f['commands_per_commit']} commands per node commit)",
        f"embedded SQLite hub, one: {f['single_node_commands_per_s']:,.0f} commands/s, p50 {f['single_node_p50_ms']} ms, "
        f"p99 {f['single_node_p99_ms']} ms, {f['single_node_errors']} errors of {f['single_node_commands']:,}",
        f"  CPU per command: hub {f['single_node_cpu_us_per_command']} us",
        f"target: the Redis engine's CPU per command at most {TARGET_RATIO}x the embedded engine's: "
        f"{ratio}x (nodes alone {f['cpu_ratio_nodes_only']}x) -> {verdict}",
        f"Redis memory per car: {f['redis_bytes_per_car']:,} bytes (used_memory after provisioning - before, / cars)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="conductor")
    parser.add_argument("--data", default="")
    parser.add_argument("--redis", default="", help="(roles) the Redis URL")
    parser.add_argument("--nodes", type=int, default=2, help="node processes of the cluster")
    parser.add_argument("--cars", type=int, default=1000)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--depth", type=int, default=1, help="commands in flight per app session")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--link-procs", type=int, default=2)
    parser.add_argument("--command", choices=("remote_check", "lock"), default="lock")
    parser.add_argument("--quick", action="store_true", help="a small run (200 cars, 20 apps, 3 s)")
    args = parser.parse_args()
    roles = {"provision": role_provision, "node": role_node}
    if run_role(roles, args):
        return
    if args.nodes < 1 or args.cars < args.apps or args.apps < 1:
        parser.error("--nodes and --apps must be 1 or more, and --cars at least --apps")
    if args.quick:
        args.cars, args.apps, args.seconds = 200, 20, 3.0

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the conductor's `finally` stops every process

    signal.signal(signal.SIGTERM, terminated)
    figures = conduct(args)
    for line in report(figures):
        print(line)
    print(json.dumps(figures))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; every process this bench started is stopped", file=sys.stderr)
        sys.exit(130)
