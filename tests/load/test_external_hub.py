"""`twin load --hub` against a hub a person runs: `twin serve --load-fleet CARS:APPS --creds FILE`.

Both commands run as real processes on loopback, as in the two-step usage the help describes:
the hub listens on port 0 and its "listening on ws://..." line says the port; the load
generator is a second process reading the credentials file the hub wrote. The hub process
is always stopped by the test (SIGTERM, then kill as a last resort).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from twin.cli import main as twin_main
from twin.load import FleetMismatch, provision_fleet, reusable_fleet, select_fleet
from twin.server import HubConfig, open_hub
from twin.store import Store


def _serve(data: Path, creds: Path, fleet: str = "20:4") -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "twin.cli", "serve", "--port", "0", "--data", str(data), "--load-fleet", fleet, "--creds", str(creds)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _url(printed: list[str]) -> str:
    """The hub's URL, from its "listening on" line."""
    url = re.search(r"listening on (ws://\S+)", printed[-1])
    assert url is not None, printed[-1]
    return url.group(1)


def _terminate(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then what the hub printed until it stopped."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


async def test_load_a_hub_served_with_a_load_fleet(tmp_path: Path, until_listening: Any) -> None:
    data, creds, report = tmp_path / "hub.sqlite3", tmp_path / "creds.json", tmp_path / "load.json"
    hub = _serve(data, creds)
    try:
        with trio.fail_after(60):
            printed = await until_listening(hub)
            url = _url(printed)
            assert f"twin load --hub {url} --creds {creds}" in "".join(printed)
            load = await trio.run_process(
                [sys.executable, "-m", "twin.cli", "load", "--hub", url, "--creds", str(creds), "--duration", "2s",
                 "--rate", "20", "--timeout", "3s", "--plain", "--json", str(report)],
                capture_stdout=True, capture_stderr=True, check=False)
        out = _terminate(hub)
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
    assert load.returncode == 0, load.stderr.decode()
    assert hub.returncode == 0 and "every state is saved" in out
    r = json.loads(report.read_text())
    assert r["cars"] == 20 and r["apps"] == 4  # every link and session of the file connected
    assert r["car_failures"] == {} and r["app_failures"] == {}
    assert r["commands"] > 0 and r["errors"] == 0, r["errors_by_code"]
    assert r["arrivals"] == r["commands"] == r["completed"] == sum(r["outcomes"].values())
    assert r["options"]["hub"] == url and r["options"]["cars"] == 20 and r["options"]["apps"] == 4
    assert "hub" not in r  # a hub elsewhere: no statistics or CPU of its process

    # served again on the same store, the fleet and its file are reused, not provisioned again
    written = creds.read_text()
    again = _serve(data, creds)
    try:
        with trio.fail_after(30):
            printed = await until_listening(again)
        _terminate(again)
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert "reusing the 20 cars and 4 app accounts" in "".join(printed)
    assert creds.read_text() == written


def test_a_store_with_another_load_fleet_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, creds = tmp_path / "hub.sqlite3", tmp_path / "creds.json"

    async def provision() -> None:
        with Store.open(data) as store:
            async with open_hub(store, HubConfig(port=0)) as hub:
                await provision_fleet(hub, store, 6, 2, creds)

    trio.run(provision)
    with Store.open(data) as store:
        assert trio.run(reusable_fleet, store, 6, 2, creds) == json.loads(creds.read_text())
        with pytest.raises(FleetMismatch, match="describes 6:2"):
            trio.run(reusable_fleet, store, 8, 2, creds)
        with pytest.raises(FleetMismatch, match="does not exist"):
            trio.run(reusable_fleet, store, 6, 2, tmp_path / "lost.json")
    forged = json.loads(creds.read_text())
    forged["cars"]["b0"] = "not-the-secret"
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    with Store.open(data) as store, pytest.raises(FleetMismatch, match="not this store's"):
        trio.run(reusable_fleet, store, 6, 2, tmp_path / "forged.json")
    # the command refuses before it listens, and says why
    argv = ["serve", "--port", "0", "--data", str(data), "--load-fleet", "8:2", "--creds", str(creds)]
    assert twin_main(argv) == 2
    assert "describes 6:2 (cars:apps), not 8:2" in capsys.readouterr().err
    assert twin_main(["serve", "--load-fleet", "8:2"]) == 2  # no --creds
    # `twin load --hub` checks the file before it starts anything
    assert twin_main(["load", "--hub", "ws://127.0.0.1:9/", "--creds", str(creds), "--cars", "7"]) == 2
    assert "own 6 cars, not 7" in capsys.readouterr().err
    assert twin_main(["load", "--creds", str(creds)]) == 2  # --creds without --hub


def test_part_of_a_credentials_file() -> None:
    """`--cars`/`--apps` with `--hub`: the first apps, their cars taken round robin, and only
    cars that some worker hosts are commanded."""
    creds = {"apps": [{"account": f"app{a}@load", "token": f"t{a}", "cars": [f"car:b{a * 3 + k}" for k in range(3)]} for a in range(3)],
             "cars": {f"b{n}": f"s{n}" for n in range(9)}}
    assert select_fleet(creds, None, None) == creds
    part = select_fleet(creds, 4, 2)
    assert [e["cars"] for e in part["apps"]] == [["car:b0", "car:b1"], ["car:b3", "car:b4"]]
    assert part["cars"] == {"b0": "s0", "b1": "s1", "b3": "s3", "b4": "s4"}
    assert [e["token"] for e in part["apps"]] == ["t0", "t1"]
    assert select_fleet(creds, 1, None)["apps"][2]["cars"] == []  # an app without a car sends nothing
    with pytest.raises(ValueError, match="holds 3 apps, not 4"):
        select_fleet(creds, None, 4)
    with pytest.raises(ValueError, match="own 6 cars, not 7"):
        select_fleet(creds, 7, 2)
