"""Three `twin serve --engine redis://...` nodes in their own processes, sharing one real Redis.

An app on node A commands a car whose twin is on node B while its link is attached to node
C; the link's alarm reaches the owner on A once; B is killed with SIGKILL in the middle of
traffic; Redis itself is restarted under the nodes.

Rules: loopback only; a real `redis-server` (tests/conftest.py) and real `twin serve`
processes, every one stopped by the test; absolute `fail_after` bounds; waits poll a
condition. Which node is "B" is found in Redis: the holder of the car's shard's lease.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import coredis
import trio

from twin.client import open_app_session, open_vehicle_link
from twin.cluster import DEFAULT_SHARDS, shard_of
from twin.protocol import AlarmSounding, Alert, Envelope, Lock, RemoteCheck, Unlock

CAR = "demo-7"  # alice's linked demo car
ALICE = "alice@example.com"


def _serve(port: int, engine: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--demo", "--port", str(port), "--engine", engine]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@asynccontextmanager
async def _cluster(redis_url: str, until_listening: Any, free_port: Callable[[], int]) -> AsyncIterator[dict[str, Any]]:
    """Three nodes: {node id: (url, process)}, plus "secret": demo-7's link secret."""
    procs: list[subprocess.Popen[str]] = []
    nodes: dict[str, Any] = {}
    try:
        secret = None
        for _ in range(3):
            port = free_port()
            proc = _serve(port, redis_url)
            procs.append(proc)
            printed = await until_listening(proc)
            node = re.search(r"cluster node (n\d+)", printed[-1])
            assert node, printed[-1]
            nodes[node.group(1)] = (f"ws://127.0.0.1:{port}/", proc)
            for line in printed:
                found = re.search(rf"car:{CAR} .*link secret (\S+)", line)
                if found:
                    secret = found.group(1)
        assert secret is not None
        yield {"nodes": nodes, "secret": secret}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                print(f"--- node process {proc.pid}:\n" + proc.stdout.read()[-4000:])  # shown when a test fails
                proc.stdout.close()


async def _holder(redis_url: str, address: str, among: set[str]) -> str:
    """The node holding `address`'s shard, once one of `among` holds it."""
    async with coredis.Redis.from_url(redis_url, decode_responses=True) as client:
        while True:
            held = await client.get(f"twin:lease:{shard_of(address, DEFAULT_SHARDS)}")
            share = {n: 0 for n in among}
            for key in await client.keys("twin:lease:*"):
                owner = await client.get(key)
                if owner in share:
                    share[owner] += 1
            if held in among and all(share.values()):  # placed, and every node took its share
                return held
            await trio.sleep(0.05)


async def test_app_on_a_twin_on_b_link_on_c_then_b_is_killed_mid_traffic(
    redis_server: Any, until_listening: Any, free_port: Callable[[], int]
) -> None:
    with trio.fail_after(90):
        async with _cluster(redis_server.url, until_listening, free_port) as cluster:
            nodes = cluster["nodes"]
            b = await _holder(redis_server.url, f"car:{CAR}", set(nodes))
            a, c = sorted(set(nodes) - {b})
            acted: list[str] = []

            def carry_out(body: Any) -> None:
                acted.append(body.TYPE)

            async with open_vehicle_link(nodes[c][0], CAR, cluster["secret"], on_actuation=carry_out) as link, \
                    open_app_session(nodes[a][0], email=ALICE, password="twin-demo") as app:
                target = f"car:{CAR}"
                while True:  # the attach has reached the twin on B
                    check = await app.command(target, RemoteCheck())
                    if check.telematics.value == "online":
                        break
                    await trio.sleep(0.05)
                assert (await app.command(target, Lock())).locked.value is True and acted == ["lock"]

                await link.send_event(AlarmSounding(cause="door forced"))
                alerts: list[Envelope] = []
                with trio.move_on_after(1.0):
                    async for push in app.events():
                        if isinstance(push.body, Alert) and "door forced" in (push.body.text or ""):
                            alerts.append(push)
                channels = [p.body.channel for p in alerts]
                assert channels and len(channels) == len(set(channels)), f"the alarm's alerts, once each: {alerts}"

                # traffic: lock/unlock in turn; B is killed after a few; every command gets an answer
                outcomes: list[tuple[str, str, float]] = []  # (command, "ok" or error code, time)
                expected_locked: bool | None = True
                killed_at = None
                for i in range(60):
                    body = Unlock() if i % 2 == 0 else Lock()
                    if i == 10:
                        nodes[b][1].send_signal(signal.SIGKILL)
                        killed_at = trio.current_time()
                    outcome = await app.request(target, body, timeout=20)  # raises only on silence
                    reply = outcome.reply.body
                    code = "ok" if reply.KIND == "reply" and reply.TYPE == "ok" else getattr(reply, "code", "?")
                    outcomes.append((body.TYPE, code, trio.current_time()))
                    if code == "ok":
                        expected_locked = body.TYPE == "lock"
                    else:
                        assert code in {"timeout", "offline"}, outcome
                    await trio.sleep(0.1)
                assert killed_at is not None
                assert all(code == "ok" for _, code, _ in outcomes[:10]), outcomes[:10]
                oks_after = [t for _, code, t in outcomes[11:] if code == "ok"]
                assert oks_after, f"no command succeeded after B died: {outcomes}"
                moved_in = oks_after[0] - killed_at
                print(f"first ok {moved_in:.2f} s after SIGKILL of node {b}; outcomes: {[code for _, code, _ in outcomes[10:]]}")
                assert moved_in < 12, f"the twin took {moved_in:.1f} s to come back"
                assert all(code == "ok" for _, code, t in outcomes if t > oks_after[0] + 1), outcomes
                # every acknowledged change survived the move; nothing was carried out twice
                check = await app.command(target, RemoteCheck())
                assert check.locked.value is expected_locked
                assert len(acted) - 1 <= len(outcomes), (len(acted), len(outcomes))
                assert sum(1 for _, code, _ in outcomes if code == "ok") <= len(acted) - 1
                survivor = await _holder(redis_server.url, target, {a, c})
                assert survivor in {a, c}
                # then C dies too, with the link: A sweeps it (or takes the twin with no link
                # attached anywhere), and the car answers offline
                nodes[c][1].send_signal(signal.SIGKILL)
                with trio.fail_after(20):
                    while True:
                        read = (await app.request(target, RemoteCheck(), timeout=20)).reply.body
                        if read.TYPE == "ok" and read.result.telematics.value == "offline":
                            break
                        await trio.sleep(0.2)
            assert nodes[a][1].poll() is None
            # pushes: every queued alert once, none again after acks (a fresh session sees none of them)
            async with open_app_session(nodes[a][0], email=ALICE, password="twin-demo") as again:
                with trio.move_on_after(1.0):
                    async for push in again.events():
                        assert push.seq == 0 or push.seq not in {p.seq for p in alerts}, push


async def test_redis_restarted_under_the_nodes_they_reconnect_and_serve(
    redis_server: Any, until_listening: Any, free_port: Callable[[], int]
) -> None:
    with trio.fail_after(90):
        async with _cluster(redis_server.url, until_listening, free_port) as cluster:
            nodes = cluster["nodes"]
            url = next(iter(nodes.values()))[0]
            async with open_app_session(url, email=ALICE, password="twin-demo") as app:
                assert (await app.command("car:demo-1", Lock())).locked.value is True
            redis_server.restart()  # SIGTERM: the AOF is flushed; leases and streams come back
            with trio.fail_after(30):
                while True:
                    try:
                        async with open_app_session(url, email=ALICE, password="twin-demo") as app:
                            outcome = await app.request("car:demo-1", Unlock(), timeout=10)
                            if outcome.reply.body.TYPE == "ok":
                                break
                    except Exception:
                        pass
                    await trio.sleep(0.2)
            assert all(proc.poll() is None for _, proc in nodes.values()), "a node died with Redis"
            async with open_app_session(url, email=ALICE, password="twin-demo") as app:
                assert (await app.command("car:demo-1", RemoteCheck())).locked.value is False
