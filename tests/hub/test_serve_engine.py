"""`twin serve --engine redis://...`: one hub node with everything durable in a real Redis.

Rules: loopback only; a real `redis-server` (tests/conftest.py) and real `twin serve`
processes; an absolute `fail_after` on the I/O; every process is stopped by the test.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import coredis
import trio

from twin.client import open_app_session
from twin.protocol import Alert


def _serve(port: int, engine: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--demo", "--port", str(port), "--engine", engine]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


async def test_a_hub_on_redis_killed_and_restarted_finds_every_account_car_state_and_unacked_push(
    redis_server: Any, until_listening: Any, free_port: Callable[[], int]
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/"
    alice = "alice@example.com"
    first = _serve(port, redis_server.url)
    second: subprocess.Popen[str] | None = None
    try:
        with trio.fail_after(60):
            printed = await until_listening(first)
            assert f"(store {redis_server.url})" in printed[-1]
            ready = [shlex.split(line.split("#")[0]) for line in printed if line.strip().startswith("twin car ")]
            alarm = next(args for args in ready if "alarm_sounding" in args)
            async with open_app_session(url, email=alice, password="twin-demo") as session:
                token = session.token
                assert (await session.unlock("car:demo-1")).locked.value is False  # durable before this reply
                done = await trio.run_process([sys.executable, "-m", "twin.cli", *alarm[1:]], capture_stdout=True, check=False)
                assert done.returncode == 0, done
                # the alarm's alert is queued for alice (in Redis) before any app sees it; she never acks it
                async with coredis.Redis.from_url(redis_server.url) as client:
                    while not await client.xlen(f"twin:push:{alice}"):
                        await trio.sleep(0.01)
                    queued = [int(e.identifier.split(b"-")[0]) for e in await client.xrange(f"twin:push:{alice}")]
            first.send_signal(signal.SIGKILL)  # no graceful shutdown: only what Redis holds survives
            first.wait()

            second = _serve(port, redis_server.url)
            printed = await until_listening(second)
            assert any("already has accounts: not provisioning the demo again" in line for line in printed)
            async with open_app_session(url, token=token) as again:  # the token survived
                assert (await again.remote_check("car:demo-1")).locked.value is False  # so did the car's state
                redelivered: list[tuple[int, Any]] = []
                async for env in again.events():
                    if env.seq > 0:
                        redelivered.append((env.seq, env.body))
                    if isinstance(env.body, Alert) and env.body.text and "door forced" in env.body.text:
                        break
                assert redelivered and redelivered[-1][0] in queued  # the unacked alert, with its seq
                assert [seq for seq, _ in redelivered] == sorted(seq for seq, _ in redelivered)
            async with open_app_session(url, email="bob@example.com", password="twin-demo") as bob:  # accounts too
                assert bob.token != token
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 0 and "every state is saved" in out, out
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)


async def test_serve_on_an_unreachable_redis_says_so_and_exits_2(free_port: Callable[[], int]) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, "-m", "twin.cli", "serve", "--port", str(free_port()), "--engine", dead],
            capture_stdout=True, capture_stderr=True, check=False,
        )
    assert done.returncode == 2, done
    assert f"Redis at {dead} is unreachable".encode() in done.stderr, done.stderr
