"""Integration tests of the websocket hub, over real websockets.

The rules of this module, as trio-websocket's own tests state them:

1. Loopback only: every hub listens on 127.0.0.1 with port 0, every client connects there.
2. Timing with the autojump clock where possible. Here that is nowhere: the hub waits on
   sockets and on worker threads (scrypt, SQLite), and autojump would leap over those waits
   and fire every timeout. So these tests use the real clock with short, explicit timeouts,
   and assert bounds (`0.3 <= elapsed < 1.5`), not exact instants.
3. An absolute `trio.fail_after` around every test that does I/O, so a hang is a failure.
4. One side always starts the close: clients leave their `async with` before the hub is
   shut down, and a test that kills the hub says so.

The store is a real SQLite file in `tmp_path`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
import trio.testing
import trio_websocket
from trio_websocket import ConnectionClosed

from twin.client import LoginFailed, open_app_session, open_vehicle_link
from twin.client import open_websocket as open_websocket_url
from twin.errors import Code, CommandRefused, DeliveryError
from twin.model import new_vehicle
from twin.protocol import (
    AlarmSounding,
    Alert,
    DoorChanged,
    Door,
    Envelope,
    Error,
    HelloToken,
    HelloVehicle,
    Lock,
    Ok,
    Plan,
    Powertrain,
    RemoteCheck,
    Snapshot,
    StateChanged,
    Telematics,
    Unlock,
    Welcome,
    decode,
    encode,
)
from twin.server import Hub, HubConfig, serve_hub
from twin.store import Store

PASSWORD = "correct horse"


@asynccontextmanager
async def running_hub(path: Path, **config: Any) -> AsyncIterator[tuple[Hub, str]]:
    """A hub on a loopback port over the store file at `path`; shut down gracefully at exit."""
    store = Store.open(path)
    try:
        async with trio.open_nursery() as nursery:
            hub: Hub = await nursery.start(serve_hub, store, HubConfig(port=0, **config))
            try:
                yield hub, f"ws://127.0.0.1:{hub.port}/"
            finally:
                hub.shutdown()
    finally:
        store.close()


async def provision(hub: Hub) -> dict[str, str]:
    """alice owns car:1 (embedded) and car:2 (linked); bob owns car:3. Returns the link secret."""
    for who in ("alice", "bob"):
        await hub.create_account(f"{who}@example.com", PASSWORD)
    await hub.add_car(new_vehicle("1", owner="alice@example.com"))
    secret = await hub.add_car(new_vehicle("2", owner="alice@example.com", plan=Plan.LITE, powertrain=Powertrain.BEV), linked=True)
    await hub.add_car(new_vehicle("3", owner="bob@example.com"))
    assert secret is not None
    return {"car:2": secret}


def alice(url: str, **kw: Any) -> Any:
    return open_app_session(url, email="alice@example.com", password=PASSWORD, **kw)


def bob(url: str, **kw: Any) -> Any:
    return open_app_session(url, email="bob@example.com", password=PASSWORD, **kw)


@asynccontextmanager
async def raw_session(url: str, token: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A bare websocket logged in with `token`, for sending frames the client never would."""
    async with open_websocket_url(url) as ws:
        await ws.send_message(encode(Envelope(HelloToken(token=token), sender="", target="hub", id=1)))
        welcome = decode(await ws.get_message())  # type: ignore[arg-type]
        assert isinstance(welcome.body, Welcome)
        yield ws
        await ws.aclose()


@asynccontextmanager
async def raw_link(url: str, vehicle_id: str, secret: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A bare vehicle link after its welcome: it answers nothing unless the test does."""
    async with open_websocket_url(url) as ws:
        await ws.send_message(encode(Envelope(HelloVehicle(vehicle_id=vehicle_id, secret=secret), sender="", target="hub", id=1)))
        welcome = decode(await ws.get_message())  # type: ignore[arg-type]
        assert isinstance(welcome.body, Welcome) and welcome.body.address == "unit:" + vehicle_id
        yield ws


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` to hold (the caller's `fail_after` bounds the wait): for what the
    hub does in worker threads, such as queueing pushes in its store."""
    while not condition():
        await trio.sleep(0.005)


def queued_alerts(hub: Hub, account: str) -> int:
    return sum(isinstance(decode(frame).body, Alert) for _, frame in hub.store.undelivered(account))


async def next_reply(ws: trio_websocket.WebSocketConnection) -> Envelope:
    """The next frame that is not an `accepted` or a push."""
    while True:
        env = decode(await ws.get_message())  # type: ignore[arg-type]
        if env.body.KIND == "reply":
            return env


# --- logging in


async def test_login_with_password_then_token_and_the_garage(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                assert s.address == "user:alice@example.com"
                assert set(s.garage) == {"car:1", "car:2"}
                token = s.token
            async with open_app_session(url, token=token) as s:
                assert s.address == "user:alice@example.com"
            with pytest.raises(LoginFailed) as caught:
                async with open_app_session(url, email="alice@example.com", password="wrong"):
                    pass
            assert caught.value.code is Code.BAD_CREDENTIALS
            with pytest.raises(LoginFailed) as caught:
                async with open_app_session(url, token="not-a-token"):
                    pass
            assert caught.value.code is Code.BAD_CREDENTIALS


async def test_first_frame_must_be_a_hello(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            async with open_websocket_url(url) as ws:
                await ws.send_message(encode(Envelope(Lock(), sender="", target="car:1", id=7)))
                reply = decode(await ws.get_message())  # type: ignore[arg-type]
                assert isinstance(reply.body, Error) and reply.body.code == "login_required" and reply.id == 7
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.reason.code == 1008


async def test_login_attempts_are_limited_per_connection_and_per_email(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_hub(tmp_path / "hub.sqlite3", login_attempts=2, email_failures=3) as (hub, url):
            await provision(hub)
            from twin.protocol import HelloPassword

            async with open_websocket_url(url) as ws:
                for n in range(2):
                    await ws.send_message(encode(Envelope(HelloPassword(email="alice@example.com", password="x"), sender="", target="hub", id=n)))
                    reply = decode(await ws.get_message())  # type: ignore[arg-type]
                    assert isinstance(reply.body, Error) and reply.body.code == "bad_credentials"
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.reason.code == 1008
            with pytest.raises(LoginFailed):
                async with open_app_session(url, email="alice@example.com", password="y"):
                    pass
            # three failures for this e-mail: even the right password is refused for a while
            with pytest.raises(LoginFailed) as caught_limit:
                async with alice(url):
                    pass
            assert caught_limit.value.code is Code.LOGIN_LOCKED
            async with bob(url):  # other e-mails are not affected
                pass


# --- commands


async def test_lock_and_unlock_report_progress_then_the_new_state(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                outcome = await s.request("car:1", Lock())
                assert outcome.accepted
                assert isinstance(outcome.reply.body, Ok)
                assert outcome.reply.sender == "car:1"
                snap = outcome.reply.body.result
                assert isinstance(snap, Snapshot) and snap.locked.value is True and snap.locked.at is not None
                snap = await s.unlock("car:1")
                assert snap.locked.value is False
                assert (await s.lock("car:1")).locked.value is True


async def test_unknown_car_is_a_typed_error_without_progress(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                outcome = await s.request("car:404", Lock())
                assert not outcome.accepted
                assert isinstance(outcome.reply.body, Error) and outcome.reply.body.code == "unknown_target"
                with pytest.raises(DeliveryError) as caught:
                    await s.lock("car:404")
                assert caught.value.code is Code.UNKNOWN_TARGET


async def test_a_sharee_is_allowed_what_was_shared_and_refused_the_rest(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as a, bob(url) as b:
                with pytest.raises(CommandRefused) as caught:
                    await b.remote_check("car:1")  # not shared yet
                assert caught.value.code is Code.NOT_AUTHORIZED
                sharing = await a.share_invite("car:1", "bob@example.com")
                assert [s.account for s in sharing.sharees] == ["bob@example.com"]
                await b.share_accept("car:1")
                assert (await b.remote_check("car:1")).locked.value is True
                assert (await b.lock("car:1")).locked.value is True
                with pytest.raises(CommandRefused) as caught:
                    await b.unlock("car:1")  # owner only
                assert caught.value.code is Code.NOT_AUTHORIZED
                with pytest.raises(CommandRefused):
                    await b.share_list("car:1")
            async with bob(url) as b:
                assert b.garage.get("car:1") is not None


async def test_state_changes_reach_every_session_of_the_account(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as one, alice(url) as two:
                await hub.fleet.tell("car:1", "car:1", DoorChanged(door=Door.TRUNK, open=True))
                for s in (one, two):
                    async for env in s.events():
                        if isinstance(env.body, StateChanged):
                            assert env.body.snapshot.doors_open[Door.TRUNK].value is True
                            assert env.id == 0  # not durable: nothing to ack
                            break


# --- nothing lost


async def test_an_alert_to_an_offline_user_is_delivered_once_after_reconnect(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            await hub.fleet.tell("car:1", "car:1", AlarmSounding(cause="door forced"))
            await until(lambda: queued_alerts(hub, "alice@example.com") == 2)
            async with alice(url) as s:
                alerts = []
                async for env in s.events():  # first the garage changes of provisioning
                    if not isinstance(env.body, Alert):
                        continue
                    alerts.append(env)
                    if len(alerts) == 2:  # alarm alerts go to push and e-mail by default
                        break
                assert {a.body.channel.value for a in alerts} == {"push", "email"}
                assert all(a.body.text and a.seq > 0 and a.id == 0 for a in alerts)
                await s.remote_check("car:1")  # the acks went before this round trip
            async with alice(url) as s:
                await s.remote_check("car:1")  # undelivered pushes come before any reply
                assert s._events.statistics().current_buffer_used == 0
            assert hub.store.undelivered("alice@example.com") == []


async def test_an_account_keeps_only_its_newest_unacked_pushes(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_hub(tmp_path / "hub.sqlite3", push_queue=3) as (hub, url):
            await provision(hub)
            for cause in ("door forced", "window broken"):
                await hub.fleet.tell("car:1", "car:1", AlarmSounding(cause=cause))
            last = 2 + 4  # two garage changes from provisioning, then two alerts per alarm
            await until(lambda: hub.store.last_seq("alice@example.com") == last)
            async with alice(url) as s:
                got = []
                async for env in s.events():
                    got.append(env)
                    if env.seq == last:
                        break
            # the three newest, in order; the gap before them says older pushes were dropped
            assert [env.seq for env in got] == [last - 2, last - 1, last]
            assert all(isinstance(env.body, Alert) for env in got)


async def test_the_hub_killed_and_restarted_keeps_every_car_and_account(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    with trio.fail_after(40):
        store = Store.open(path)
        async with trio.open_nursery() as nursery:
            hub: Hub = await nursery.start(serve_hub, store, HubConfig(port=0))
            url = f"ws://127.0.0.1:{hub.port}/"
            secrets = await provision(hub)
            async with alice(url) as a, bob(url) as b:
                token = a.token
                await a.share_invite("car:1", "bob@example.com")
                await b.share_accept("car:1")
                await a.unlock("car:1")
                await a.climate_start("car:1", 10)
                async with open_vehicle_link(url, "2", secrets["car:2"]):
                    await a.unlock("car:2")  # committed before its reply
            nursery.cancel_scope.cancel()  # killed: no graceful shutdown
        store.close()

        async with running_hub(path) as (hub, url):
            async with open_app_session(url, token=token) as a, bob(url) as b:
                assert set(a.garage) == {"car:1", "car:2"}
                assert "car:1" in b.garage
                snap = await b.remote_check("car:1")
                assert snap.locked.value is False and snap.climate_running
                assert [s.account for s in (await a.share_list("car:1")).sharees] == ["bob@example.com"]
                with pytest.raises(CommandRefused):
                    await b.unlock("car:1")
                # the linked car is still linked: offline, read from its twin with report times
                snap = await a.remote_check("car:2")
                assert snap.locked.value is False and snap.locked.at is not None
                assert snap.telematics is Telematics.OFFLINE
                with pytest.raises(DeliveryError) as offline:
                    await a.lock("car:2")
                assert offline.value.code is Code.OFFLINE


# --- vehicle links


async def test_a_linked_car_carries_out_commands_and_reads_stay_offline(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            secrets = await provision(hub)
            async with alice(url) as s:
                offline = await s.remote_check("car:2")
                assert offline.telematics is Telematics.OFFLINE
                async with open_vehicle_link(url, "2", secrets["car:2"]) as link:
                    assert link.address == "unit:2"
                    assert (await s.unlock("car:2")).locked.value is False
                    assert link.actuations == 1  # the car carried it out before the twin said so
                    await link.send_event(DoorChanged(door=Door.FRONT_LEFT, open=True))
                    with pytest.raises(CommandRefused) as caught:
                        await s.lock("car:2")
                    assert caught.value.code is Code.DOOR_OPEN
                    assert link.actuations == 1  # refused by the twin: nothing reached the car
                # offline now: reads come from the twin, with report times
                snap = await s.remote_check("car:2")
                assert snap.telematics is Telematics.OFFLINE
                assert snap.locked.value is False and snap.locked.at is not None
                assert snap.doors_open[Door.FRONT_LEFT].value is True
                with pytest.raises(DeliveryError) as gone:
                    await s.unlock("car:2")
                assert gone.value.code is Code.OFFLINE and "last report" in gone.value.message
            stored = hub.store.load_state("car:2")
            assert stored is not None and stored[1].status.locked.value is False


async def test_a_link_refusing_an_actuation_reaches_the_app_and_changes_nothing(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            secrets = await provision(hub)
            async with alice(url) as s:
                async with open_vehicle_link(url, "2", secrets["car:2"], on_actuation=lambda body: "lock motor jammed"):
                    with pytest.raises(CommandRefused) as caught:
                        await s.unlock("car:2")
                    assert caught.value.code is Code.ACTUATION_FAILED and "lock motor jammed" in caught.value.message
                    assert (await s.remote_check("car:2")).locked.value is True


async def test_a_link_dropping_mid_command_gives_a_typed_error_at_once(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", command_timeout=10.0) as (hub, url):
            secrets = await provision(hub)
            async with alice(url) as s:
                async with raw_link(url, "2", secrets["car:2"]) as ws:
                    async with trio.open_nursery() as nursery:
                        result: list[Any] = []

                        async def unlock() -> None:
                            result.append(await s.request("car:2", Unlock()))

                        nursery.start_soon(unlock)
                        actuation = decode(await ws.get_message())  # type: ignore[arg-type]
                        assert actuation.body == Unlock() and actuation.sender == "car:2"
                        started = trio.current_time()
                        await ws.aclose()  # the link drops without answering
                    assert trio.current_time() - started < 1.0  # not the 10 s timeout
                outcome = result[0]
                assert outcome.accepted
                assert isinstance(outcome.reply.body, Error) and outcome.reply.body.code == "offline"
                # nothing corrupted: the twin still holds the last confirmed state
                assert (await s.remote_check("car:2")).locked.value is True
                async with open_vehicle_link(url, "2", secrets["car:2"]):
                    assert (await s.unlock("car:2")).locked.value is False


async def test_a_silent_car_times_out_with_a_typed_error(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", command_timeout=0.3) as (hub, url):
            secrets = await provision(hub)
            async with alice(url) as s:
                async with raw_link(url, "2", secrets["car:2"]):
                    started = trio.current_time()
                    outcome = await s.request("car:2", Lock())
                    elapsed = trio.current_time() - started
                    assert outcome.accepted
                    assert isinstance(outcome.reply.body, Error) and outcome.reply.body.code == "timeout"
                    assert 0.3 <= elapsed < 1.5


# --- protection


async def test_bad_frames_get_their_error_code_and_the_connection_keeps_working(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                token = s.token
            async with raw_session(url, token) as ws:
                good = {"type": "lock", "id": 9, "from": "", "to": "car:1", "ts": 0.0, "v": 1, "body": {}}
                cases = [
                    (b"\xc1 not msgpack", "malformed", 0),
                    (msgpack.packb({**good, "id": 10, "type": "teleport"}), "unknown_type", 10),
                    (msgpack.packb({**good, "id": 11, "type": "set_hazards", "body": {"on": "yes"}}), "wrong_type", 11),
                    (msgpack.packb({**good, "id": 12, "body": {"pad": "x" * 70_000}}), "frame_too_large", 12),
                    (msgpack.packb({**good, "id": 13, "from": "user:bob@example.com"}), "not_authorized", 13),
                    (msgpack.packb([1, 2]), "not_a_map", 0),
                    (msgpack.packb({**good, "id": 14, "type": "door_changed", "body": {"door": "trunk", "open": True}}), "not_authorized", 14),
                    (msgpack.packb({**good, "id": 15, "type": "hello_token", "to": "hub", "body": {"token": token}}), "already_logged_in", 15),
                ]
                for frame, code, corr in cases:
                    await ws.send_message(frame)
                    reply = await next_reply(ws)
                    assert isinstance(reply.body, Error), frame
                    assert (reply.body.code, reply.id) == (code, corr), reply
                    # ... and the connection still works
                    await ws.send_message(msgpack.packb(good))
                    reply = await next_reply(ws)
                    assert isinstance(reply.body, Ok) and reply.id == 9
            # the spoofed lock never ran as bob: bob's car is untouched and his garage unchanged
            assert hub.fleet.state_of("car:3").status.locked.at is None


async def test_a_frame_past_the_hard_limit_closes_with_1009(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", max_frame_bytes=1000, hard_frame_bytes=4000) as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                token = s.token
            async with open_websocket_url(url) as ws:
                await ws.send_message(encode(Envelope(HelloToken(token=token), sender="", target="hub", id=1)))
                await ws.get_message()
                await ws.send_message(b"\x00" * 5000)
                with pytest.raises(ConnectionClosed) as caught:
                    while True:  # the undelivered pushes first
                        await ws.get_message()
                assert caught.value.reason.code == 1009


@pytest.fixture
def wall_paced_clock() -> trio.testing.MockClock:
    """A mock clock that runs at wall speed (threads and sockets are waited for as usual) and
    that a test can also `jump`, to pass time the hub measures without sleeping through it."""
    return trio.testing.MockClock(rate=1.0)


async def test_the_rate_limit_answers_overloaded_and_keeps_the_connection(
    tmp_path: Path, wall_paced_clock: trio.testing.MockClock
) -> None:
    # the eight frames go out within milliseconds, refilling far less than one token
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", rate_per_s=5.0, burst=5.0) as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                token = s.token
            async with raw_session(url, token) as ws:
                frame = encode(Envelope(RemoteCheck(), sender="", target="car:1", id=1))
                for n in range(8):
                    await ws.send_message(frame.replace(b"\xa2id\x01", b"\xa2id" + bytes([n + 1])))
                codes = []
                while len(codes) < 8:
                    reply = await next_reply(ws)
                    codes.append("ok" if isinstance(reply.body, Ok) else reply.body.code)  # type: ignore[attr-defined]
                assert codes.count("ok") == 5 and codes.count("overloaded") == 3
                wall_paced_clock.jump(1.0)  # five tokens back in the bucket
                await ws.send_message(frame)
                assert isinstance((await next_reply(ws)).body, Ok)


async def test_a_slow_reader_is_closed_and_others_keep_their_latency(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_hub(tmp_path / "hub.sqlite3", send_queue=64, send_buffer=8192, close_timeout=5.0) as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                token = s.token
            async with trio.open_nursery() as nursery, bob(url) as fast:
                # the slow reader: a tiny receive buffer, and it does not read
                stream = await trio.open_tcp_stream("127.0.0.1", hub.port)
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                slow = await trio_websocket.wrap_client_stream(nursery, stream, "127.0.0.1", "/")
                await slow.send_message(encode(Envelope(HelloToken(token=token), sender="", target="hub", id=1)))
                assert isinstance(decode(await slow.get_message()).body, Welcome)  # type: ignore[arg-type]

                latencies = []
                for n in range(400):
                    state = n % 2 == 0
                    await hub.fleet.tell("car:1", "car:1", DoorChanged(door=Door.TRUNK, open=state))
                    if n % 20 == 0:
                        started = time.perf_counter()
                        await fast.remote_check("car:3")
                        latencies.append(time.perf_counter() - started)
                    if hub.statistics().slow_disconnects:
                        break
                    await trio.sleep(0)
                assert hub.statistics().slow_disconnects == 1
                assert max(latencies) < 0.25, latencies
                started = time.perf_counter()
                await fast.remote_check("car:3")
                assert time.perf_counter() - started < 0.25
                # the slow reader reads again: what was on the way, then the close and its reason
                with pytest.raises(ConnectionClosed) as caught:
                    while True:
                        await slow.get_message()
                assert caught.value.reason.code == 1008
                assert "send queue full" in (caught.value.reason.reason or "")
                await trio.aclose_forcefully(stream)  # trio-websocket's client leaves it open
                nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_thousand_concurrent_connections(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as s:
                token = s.token
            ready = 0
            done, go = trio.Event(), trio.Event()
            checked: list[bool] = []

            async def one(n: int) -> None:
                nonlocal ready
                async with open_app_session(url, token=token) as session:
                    ready += 1
                    if ready == 1000:
                        done.set()
                    await go.wait()
                    snap = await session.remote_check("car:1")
                    checked.append(snap.locked.value)

            async with trio.open_nursery() as nursery:
                for n in range(1000):
                    nursery.start_soon(one, n)
                await done.wait()
                while hub.statistics().app_sessions < 1000:  # the hub counts a session after its welcome
                    await trio.sleep(0.01)
                go.set()
            assert len(checked) == 1000 and all(checked)


# --- shutdown


async def test_graceful_shutdown_answers_in_flight_commands_and_closes_with_1001(tmp_path: Path) -> None:
    with trio.fail_after(20):
        store = Store.open(tmp_path / "hub.sqlite3")
        async with trio.open_nursery() as nursery:
            hub: Hub = await nursery.start(serve_hub, store, HubConfig(port=0, drain_timeout=0.2))
            url = f"ws://127.0.0.1:{hub.port}/"
            secrets = await provision(hub)
            async with alice(url) as s, raw_link(url, "2", secrets["car:2"]) as link:
                outcomes: list[Any] = []

                async def lock() -> None:
                    outcomes.append(await s.request("car:2", Lock()))

                nursery.start_soon(lock)
                while hub.statistics().in_flight == 0:
                    await trio.sleep(0.01)
                hub.shutdown()
                with pytest.raises(ConnectionClosed) as caught:
                    while True:
                        await link.get_message()
                assert caught.value.reason.code == 1001
                while not outcomes:
                    await trio.sleep(0.01)
                body = outcomes[0].reply.body
                assert isinstance(body, Error) and body.code == "offline" and "shut down" in body.message
                while s.closed is None:  # the error came first, then the close
                    await trio.sleep(0.01)
                assert s.closed.startswith("1001")
        store.close()


async def test_the_demo_fleet_of_twin_serve(tmp_path: Path) -> None:
    import io

    from twin.server._serve import DEMO_PASSWORD, provision_demo

    with trio.fail_after(30):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            out = io.StringIO()
            await provision_demo(hub, out)
            text = out.getvalue()
            assert "secret" in text and "shared by alice@example.com with bob@example.com" in text
            async with open_app_session(url, email="bob@example.com", password=DEMO_PASSWORD) as b:
                assert b.garage["car:demo-1"].value == "sharee"
                assert (await b.remote_check("car:demo-1")).locked.value is True
