"""Settings shared by every test folder.

Hypothesis: no per-example deadline. Tests assert behaviour, not speed, and on a loaded
2-core CI machine the first example (which builds cattrs hooks) can take longer than the
default 200 ms, which made an otherwise correct property fail as "flaky". Speed is measured
by `bench/`, not here.

`until_listening`: for tests that run `twin serve` as a real process.

`redis_server`: a real `redis-server` of this test's own, on a free loopback port, with its
append-only file in the test's tmp dir (no mock: the Redis engine is tested against Redis).
Skipped, saying why, only where the binary is missing; under CI (`CI=true`, as `.ci/run`
runs) a missing binary fails instead, since `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import settings

settings.register_profile("twin", deadline=None)
settings.load_profile("twin")


@pytest.fixture
def until_listening() -> Callable[[subprocess.Popen[str]], Awaitable[list[str]]]:
    """`await until_listening(proc)`: the lines a `twin serve` process printed up to its
    "listening on ws://..." line (its fleet is provisioned by then); fails if it exits first."""

    async def wait(proc: subprocess.Popen[str]) -> list[str]:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or "listening on" not in lines[-1]:
            line = await trio.to_thread.run_sync(proc.stdout.readline, abandon_on_cancel=True)
            if not line:
                raise AssertionError("twin serve exited early:\n" + "".join(lines))
            lines.append(line)
        return lines

    return wait


class RedisServer:
    """One `redis-server` process: AOF on (`appendfsync everysec`, the default), no RDB
    snapshots, data in `directory`. `restart()` starts it again on the same port and files."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None, "already running"
        log = open(self.directory / "redis.log", "ab")
        with log:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                 "--dir", str(self.directory), "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise AssertionError(f"redis-server did not come up on port {self.port}:\n" + self.log()[-2000:])
            time.sleep(0.01)  # polling a condition, with the bound above

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: Redis flushes its AOF and exits; SIGKILL: a crash of the process."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(how)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self, how: signal.Signals = signal.SIGTERM) -> None:
        self.stop(how)
        self.start()

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """`free_port()`: a loopback port nothing listens on right now."""
    return _free_port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running `redis-server` of this test's own (see `RedisServer`); stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not on PATH; .ci/run installs it with apt-get, so CI must not skip")
        pytest.skip("redis-server is not installed (apt-get install redis-server); the Redis engine's tests need a real one")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
