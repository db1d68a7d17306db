"""`twin serve` as a person runs it: a real process, real websockets on loopback, SIGTERM.

Rules: loopback only; an absolute `fail_after` on the I/O; the server process is always
stopped by the test (SIGTERM, then kill as a last resort).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from twin.client import open_app_session
from twin.cli import main as twin_main
from twin.errors import CommandRefused


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_demo_records_a_trace_that_replays(tmp_path: Path, until_listening: Any) -> None:
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/"
    trace = tmp_path / "live.trace.jsonl"
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--demo", "--port", str(port), "--data", str(tmp_path / "hub.sqlite3"), "--record", str(trace)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with trio.fail_after(30):
            printed = await until_listening(proc)
            async with open_app_session(url, email="alice@example.com", password="twin-demo") as alice:
                await alice.lock("car:demo-1")
            async with open_app_session(url, email="bob@example.com", password="twin-demo") as bob:
                try:
                    await bob.unlock("car:demo-1")
                except CommandRefused as refused:
                    assert refused.code.value == "not_authorized"
                else:
                    raise AssertionError("a sharee unlocked the car")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "recording inbound frames" in printed[-1] and "alice@example.com" in "".join(printed)
    assert "SIGTERM: shutting down gracefully" in out and "every state is saved" in out
    assert await trio.to_thread.run_sync(twin_main, ["replay", str(trace)]) == 0
