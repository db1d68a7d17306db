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


async def test_twin_car_plays_a_demo_cars_unit_from_the_printed_lines(tmp_path: Path, until_listening: Any) -> None:
    """The ready lines of `twin serve --demo` work as printed: an event for a simulated car,
    and a linked car brought online (and carrying out a lock) while `twin car` stays attached."""
    import shlex

    from twin.errors import DeliveryError
    from twin.protocol import Alert, Telematics

    port = _free_port()
    url = f"ws://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--demo", "--port", str(port), "--data", str(tmp_path / "hub.sqlite3")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    unit: subprocess.Popen[str] | None = None
    try:
        with trio.fail_after(60):
            printed = await until_listening(proc)
            ready = [shlex.split(line.split("#")[0]) for line in printed if line.strip().startswith("twin car ")]
            alarm = next(args for args in ready if "alarm_sounding" in args)
            stay = next(args for args in ready if args[-1].startswith("--secret="))  # no event: stays attached
            async with open_app_session(url, email="alice@example.com", password="twin-demo") as alice:
                done = await trio.run_process([sys.executable, "-m", "twin.cli", *alarm[1:]], capture_stdout=True, check=False)
                assert done.returncode == 0, done
                assert b"alarm_sounding recorded" in done.stdout
                async for env in alice.events():
                    if isinstance(env.body, Alert) and env.body.text and "door forced" in env.body.text:
                        break
                wrong = await trio.run_process([sys.executable, "-m", "twin.cli", *alarm[1:alarm.index("alarm_sounding")], "alarm_sound"], capture_stderr=True, check=False)
                assert wrong.returncode == 2 and b"did you mean alarm_sounding" in wrong.stderr
                car = "car:" + stay[stay.index("--car") + 1]
                assert all(a.startswith("--secret=") for line in ready for a in line if "secret" in a)
                assert (await alice.remote_check(car)).telematics is Telematics.OFFLINE
                unit = subprocess.Popen([sys.executable, "-m", "twin.cli", *stay[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                assert unit.stdout is not None
                line = await trio.to_thread.run_sync(unit.stdout.readline)
                assert "is online" in line, line
                assert (await alice.lock(car)).locked.value is True
                line = await trio.to_thread.run_sync(unit.stdout.readline)
                assert "was told to lock: carried out" in line, line
                unit.send_signal(signal.SIGINT)
                assert await trio.to_thread.run_sync(unit.wait) == 0
                while (await alice.remote_check(car)).telematics is not Telematics.OFFLINE:
                    await trio.sleep(0.01)
                try:
                    await alice.unlock(car)
                except DeliveryError as offline:
                    assert offline.code.value == "offline"
                else:
                    raise AssertionError("an offline car carried out an unlock")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        for p in (unit, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
            if p is not None and p.stdout is not None:
                p.stdout.close()
