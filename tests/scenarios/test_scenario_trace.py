"""Recorded traces: a session recorded over real websockets (through the recording proxy in
front of a real hub) replays offline with identical replies, pushes and final states, and a
rule changed since the recording shows up as a difference.

Like the hub's own tests: loopback only, the real clock (the hub waits on threads), an
absolute `trio.fail_after` around the I/O, and the clients leave before the hub shuts down.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
import trio

from twin.cli import main as twin
from twin.client import open_app_session, open_vehicle_link
from twin.model import new_vehicle
from twin.model._dispatch import HANDLERS
from twin.protocol import AlarmSounding, Error, KeyAction, Plan, Position, Powertrain, Unlock
from twin.scenarios.trace import load_trace, open_recorded_hub, replay_trace
from twin.server import HubConfig
from twin.store import Store

PASSWORD = "correct horse"
ALICE, BOB = "alice@example.com", "bob@example.com"


async def record(path: Path, store_path: Path) -> None:
    """What `twin serve --record` does, with a session of two apps and a vehicle link."""
    store = Store.open(store_path)
    try:
        async with open_recorded_hub(store, path, HubConfig(port=0), begin=False) as recorded:
            hub = recorded.hub
            for who in (ALICE, BOB):
                await hub.create_account(who, PASSWORD)
            await hub.add_car(new_vehicle("1", owner=ALICE, position=Position(35.6586, 139.7454)))
            secret = await hub.add_car(new_vehicle("2", owner=ALICE, plan=Plan.LITE, powertrain=Powertrain.BEV), linked=True)
            assert secret is not None
            recorded.begin()  # the world as provisioned is the trace's start
            url = recorded.url
            async with open_vehicle_link(url, "2", secret) as link:
                async with open_app_session(url, email=ALICE, password=PASSWORD) as a:
                    async with open_app_session(url, email=BOB, password=PASSWORD) as b:
                        await a.share_invite("car:1", BOB)
                        await b.share_accept("car:1")
                        await b.remote_check("car:1")
                        refused = await b.request("car:1", Unlock())
                        assert isinstance(refused.reply.body, Error)
                        await a.lock("car:1")
                        await a.climate_start("car:1", 10)
                        await a.key_issue("car:1", BOB)
                        await b.key_use("car:1", KeyAction.UNLOCK)
                        await link.report(AlarmSounding(cause="glass"))
                        await a.lock("car:2")  # forwarded to the link, answered by it
                        await a.remote_check("car:2")
                        await trio.sleep(0.3)  # let the pushes reach both apps
    finally:
        store.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trace")
    path = folder / "live.trace.jsonl"

    async def main() -> None:
        with trio.fail_after(60):
            await record(path, folder / "hub.sqlite3")

    trio.run(main)
    return path


def test_the_trace_holds_no_credentials(recorded: Path) -> None:
    text = recorded.read_text()
    assert PASSWORD not in text and "secret" not in text.lower().replace('"hello_vehicle"', "")
    kinds = [next(k for k in ("trace", "hello", "session", "in", "out", "closed", "end") if k in json.loads(line)) for line in text.splitlines()]
    assert kinds[0] == "trace" and kinds[-1] == "end"
    assert kinds.count("hello") == 3 and kinds.count("session") == 3


def test_a_recorded_trace_replays_with_identical_results(recorded: Path) -> None:
    report = replay_trace(load_trace(recorded))
    assert report.failures == (), "\n".join(f"{c.what}: {c.summary}\n  " + "\n  ".join(c.diff) for c in report.failures)
    tags = [s.body.TYPE for s in report.steps]
    assert tags == ["share_invite", "share_accept", "remote_check", "unlock", "lock", "climate_start", "key_issue", "key_use", "lock", "remote_check"]
    names = {c.what for c in report.final}
    assert {"pushes to alice@example.com", "pushes to bob@example.com", "final state of car:1", "final state of user:bob@example.com"} <= names
    alarm = [c for c in report.final if c.what == "pushes to bob@example.com"]
    assert alarm and alarm[0].passed


def test_twin_replay_reads_traces(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert twin(["replay", str(recorded)]) == 0
    out = capsys.readouterr().out
    assert "bob@example.com -> car:1: unlock  =>  error" in out
    assert "pass pushes to alice@example.com" in out and "PASS" in out


def test_a_changed_rule_shows_as_a_difference(recorded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = HANDLERS[Unlock]

    def sharee_may_unlock(state, msg, cx):  # type: ignore[no-untyped-def]
        if any(s.account == cx.account and s.accepted for s in state.shares):
            cx = attrs.evolve(cx, env=attrs.evolve(cx.env, sender="user:" + state.contract.owner))
        return real(state, msg, cx)

    monkeypatch.setitem(HANDLERS, Unlock, sharee_may_unlock)
    report = replay_trace(load_trace(recorded))
    failed = {c.what: c for c in report.failures}
    assert set(failed) == {"reply"}  # bob's later key unlock and alice's lock leave the same final state
    (unlock,) = [s for s in report.steps if not s.check.passed]
    assert unlock.body == Unlock() and unlock.account == BOB
    assert "- type = \"error\"" in unlock.check.diff and "+ type = \"ok\"" in unlock.check.diff
    assert twin(["replay", "-q", str(recorded)]) == 1
    assert "differs from the recording" in capsys.readouterr().out


def test_bad_traces_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.trace.jsonl"
    bad.write_text('{"trace": 1, "t": 0, "states": {}}\n{"t": 1, "conn": 1, "sideways": 2}\n')
    assert twin(["replay", str(bad)]) == 2
    assert "line 2: not a trace record" in capsys.readouterr().out
