"""`twin load` over real websockets, on small fleets.

The rules of the hub's tests hold here too: loopback only (port 0); the real clock (the hub
waits on sockets and worker threads), with bounds rather than exact instants; an absolute
`trio.fail_after` around every test that does I/O, so a hang is a failure; the generator
always starts the close (it leaves its links and sessions before the hub shuts down), except
where a test stops the hub on purpose and says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from twin.cli import main as twin_main
from twin.load import LOAD_HUB_CONFIG, Profile, provision, run_worker, split_work
from twin.load._procs import stop, wait_for
from twin.server import HubConfig, serve_hub
from twin.store import Store


def _spec(url: str, creds: dict, **over: object) -> dict:
    (apps, cars), = split_work(creds, 1)
    spec = {"url": url, "apps": apps, "cars": cars, "rate": 40.0, "duration": 1.5, "spawn_rate": 200.0,
            "profile": Profile().to_plain(), "timeout": 2.0, "seed": 1, "interval": 0.5}
    spec.update(over)
    return spec


async def test_counts_match_what_the_hub_saw(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hub.sqlite3")
    try:
        with trio.fail_after(40):
            async with trio.open_nursery() as nursery:
                hub = await nursery.start(serve_hub, store, HubConfig(port=0, **LOAD_HUB_CONFIG))
                creds = await provision(hub, store, cars=20, apps=4)
                await hub.settle()
                before = hub.statistics()
                busy_cars = Profile(events_per_car_per_min=120.0, alarm_share=0.3).to_plain()
                progress: list[dict] = []
                handed: list[tuple[dict, int]] = []

                def on_result(r: dict) -> None:  # before anything closes: every link still held
                    handed.append((dict(r), hub.statistics().vehicle_links))

                result = await run_worker(_spec(f"ws://127.0.0.1:{hub.port}/", creds, profile=busy_cars),
                                          on_progress=progress.append, on_result=on_result)
                after = hub.statistics()
                hub.shutdown()
    finally:
        store.close()
    assert result["cars"] == 20 and result["apps"] == 4
    assert result["sent"] > 20 and result["errors"] == {}
    assert after.commands - before.commands == result["sent"] == result["done"]
    assert sum(result["outcomes"].values()) == result["done"]
    assert result["arrivals"] == result["done"]  # open loop: every arrival was sent, none dropped
    # the cars lived: events were reported and the alarms reached the owners' apps (email + push)
    assert result["events"] > 10
    assert result["alert_types"].get("alarm", 0) >= 2
    assert any(p["phase"] == "run" for p in progress)
    # the result is handed over at the end of the window, complete, while the links are up
    (early, links_then), = handed
    assert links_then == 20 and early == {k: v for k, v in result.items() if k != "close_s"}
    assert 0 < result["close_s"] < 5  # each link closed with the handshake, none waited out a timeout
    assert progress[-1]["phase"] == "closed" and progress[-1]["links"] == 0


async def test_a_hub_that_stops_answering_gives_timeouts_not_a_hang(tmp_path: Path) -> None:
    """The hub runs in its own process; the test freezes it (SIGSTOP) mid-run."""
    hub = subprocess.Popen(  # noqa: ASYNC220 - starting it is quick; its READY is awaited in a thread
        [sys.executable, "-m", "twin.load._main", "hub", "--data", str(tmp_path), "--cars", "10", "--apps", "2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = (await trio.to_thread.run_sync(wait_for, hub, "READY")).split()[1]
        creds = json.loads((tmp_path / "creds.json").read_text())
        spec = _spec(f"ws://127.0.0.1:{port}/", creds, duration=2.0, timeout=0.5)

        async def freeze() -> None:
            await trio.sleep(0.7)
            os.kill(hub.pid, signal.SIGSTOP)

        async def ready() -> float:
            nursery.start_soon(freeze)
            return trio.current_time()

        started = time.monotonic()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                result = await run_worker(spec, ready=ready)
        elapsed = time.monotonic() - started
    finally:
        os.kill(hub.pid, signal.SIGCONT)
        stop(hub, timeout=10)
    assert result["done"] == result["arrivals"] > 0
    assert result["errors"].get("timeout", 0) > 0
    assert result["outcomes"].get("ok", 0) > 0  # before the freeze
    assert elapsed < 20


def test_cli_report_thresholds_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`twin load` end to end: embedded hub process, two workers, report files, exit codes."""
    out = tmp_path / "load.json"
    argv = ["load", "--cars", "30", "--apps", "4", "--duration", "2s", "--workers", "2", "--rate", "30", "--plain",
            "--json", str(out), "--csv", str(tmp_path / "load.csv"), "--plot", str(tmp_path / "load.svg")]
    started = time.monotonic()
    assert twin_main(argv + ["--fail-if", "p99<10s", "--fail-if", "errors<1%"]) == 0
    report = json.loads(out.read_text())
    for key in ("cars", "apps", "commands_per_s", "p50_ms", "p99_ms", "alert_p99_ms", "errors", "generator_cpu_s", "hub_cpu_s"):
        assert key in report
    assert report["cars"] == 30 and report["apps"] == 4 and report["workers"] == 2
    assert report["commands"] == report["hub"]["commands"] == report["completed"] > 0
    # the hub's statistics are read at the end of the window, its connections still held; then
    # the workers close everything and the hub is stopped only once it has let go of them all
    assert report["hub"]["vehicle_links"] == 30 and report["hub"]["app_sessions"] == 4
    assert report["hub_connections_left"] == 0 and 0 < report["close_s"] < 10
    assert report["generator_rss_kb"] > 0 and report["hub_rss_kb"] > 0
    assert report["errors"] == 0 and report["thresholds"]["failed"] == []
    assert (tmp_path / "load.csv").read_text().startswith("name,count")
    assert (tmp_path / "load.svg").read_text().startswith("<svg")
    assert "cars 30/30" in capsys.readouterr().err  # plain progress lines
    assert twin_main(argv + ["--fail-if", "p99<1us"]) == 1
    assert "threshold failed: p99<1us" in capsys.readouterr().err
    assert twin_main(["load", "--fail-if", "p99<fast"]) == 2
    assert time.monotonic() - started < 40
