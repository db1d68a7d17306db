"""`twin serve --engine ... --load-fleet` provisions a cluster's load fleet once, and `twin load
--hub A,B` spreads its apps and cars over the nodes.

Rules: loopback only; a real `redis-server` and real `twin serve` / `twin load` processes, all
stopped by the test; absolute `fail_after` bounds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from twin.load import split_work
from twin.load._run import hub_urls, spread


def _creds(apps: int, per_app: int) -> dict[str, Any]:
    names = [[f"b{a * per_app + k}" for k in range(per_app)] for a in range(apps)]
    return {"apps": [{"account": f"app{a}@load", "token": f"t{a}", "cars": ["car:" + n for n in names[a]]} for a in range(apps)],
            "cars": {n: "s" for group in names for n in group}}


def test_apps_go_round_robin_and_each_apps_cars_to_the_other_nodes_first() -> None:
    urls = ["ws://a/", "ws://b/", "ws://c/"]
    split = split_work(_creds(6, 2), 2, urls)
    apps = {e["account"]: e["url"] for mine, _ in split for e in mine}
    assert apps == {f"app{a}@load": urls[a % 3] for a in range(6)}
    cars = {c[0]: c[2] for _, group in split for c in group}
    assert cars["b0"] == "ws://b/" and cars["b1"] == "ws://c/"  # app0 on a: its cars elsewhere
    assert spread(urls, split) == {u: {"apps": 2, "cars": 4} for u in urls}
    assert all(len(c) == 2 for _, group in split_work(_creds(2, 1), 1) for c in group)  # one hub: as before
    assert hub_urls("ws://a/, ws://b/") == ["ws://a/", "ws://b/"]


def _serve(port: int, engine: str, creds: Path, fleet: str = "40:4") -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--port", str(port), "--engine", engine,
           "--load-fleet", fleet, "--creds", str(creds)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def test_one_node_provisions_the_load_fleet_the_other_reuses_it_and_twin_load_spreads_over_both(
    redis_server: Any, until_listening: Any, free_port: Callable[[], int], tmp_path: Path
) -> None:
    creds = tmp_path / "creds.json"
    procs: list[subprocess.Popen[str]] = []
    try:
        with trio.fail_after(120):
            ports = [free_port(), free_port()]
            procs.append(_serve(ports[0], redis_server.url, creds))
            first = await until_listening(procs[0])
            assert any("provisioning a load fleet: 40 cars" in line for line in first), first
            written = creds.read_text()
            procs.append(_serve(ports[1], redis_server.url, creds))
            second = await until_listening(procs[1])
            assert any("reusing the 40 cars and 4 app accounts" in line for line in second), second
            assert creds.read_text() == written
            mismatch = await trio.run_process(
                [sys.executable, "-m", "twin.cli", "serve", "--port", str(free_port()), "--engine", redis_server.url,
                 "--load-fleet", "50:4", "--creds", str(creds)], capture_stdout=True, capture_stderr=True, check=False)
            assert mismatch.returncode == 2 and b"describes 40:4" in mismatch.stderr, mismatch
            report = tmp_path / "report.json"
            hubs = ",".join(f"ws://127.0.0.1:{p}/" for p in ports)
            done = await trio.run_process(
                [sys.executable, "-m", "twin.cli", "load", "--hub", hubs, "--creds", str(creds), "--duration", "2s",
                 "--json", str(report)], capture_stdout=True, capture_stderr=True, check=False)
            assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
            figures = json.loads(report.read_text())
            nodes = figures["options"]["nodes"]
            assert nodes == {f"ws://127.0.0.1:{p}/": {"apps": 2, "cars": 20} for p in ports}, nodes
            assert figures["completed"] > 0 and figures["errors"] == 0, figures
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
