"""The hub trusts no client: one test per hole found in the hub where links ran the rules.

Same rules as test_hub.py: loopback only, the real clock with short explicit timeouts, an
absolute `fail_after` around each test, clients close before the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from twin.errors import Code
from twin.model import new_vehicle
from twin.protocol import (
    AlarmSounding,
    Alert,
    AlertType,
    Channel,
    Door,
    Done,
    Envelope,
    Error,
    HelloPassword,
    HelloToken,
    Lock,
    Ok,
    RemoteCheck,
    Telematics,
    Unlock,

    decode,
    encode,
)
from twin.server import Hub

from .test_hub import PASSWORD, alice, next_reply, raw_link, raw_session, running_hub, until

import msgpack


async def provision(hub: Hub) -> dict[str, str]:
    """alice owns linked car:2, bob owns linked car:5; returns both link secrets."""
    for who in ("alice", "bob"):
        await hub.create_account(f"{who}@example.com", PASSWORD)
    two = await hub.add_car(new_vehicle("2", owner="alice@example.com"), linked=True)
    five = await hub.add_car(new_vehicle("5", owner="bob@example.com"), linked=True)
    assert two and five
    return {"2": two, "5": five}


async def answer(ws: trio_websocket.WebSocketConnection, body: Any, to: str, id: int) -> Envelope:
    """Send `body` as a reply frame and return the hub's answer to it."""
    await ws.send_message(encode(Envelope(body, sender="", target=to, id=id)))
    return await next_reply(ws)


def refused_with(env: Envelope, code: Code) -> str:
    assert isinstance(env.body, Error), env
    assert env.body.code == code.value, env.body
    return env.body.message


async def test_a_link_cannot_answer_a_command_meant_for_another_car(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", command_timeout=1.0) as (hub, url):
            secrets = await provision(hub)
            async with alice(url) as a, raw_link(url, "2", secrets["2"]) as two, raw_link(url, "5", secrets["5"]) as five:
                outcome: list[Any] = []

                async def lock() -> None:
                    outcome.append(await a.request("car:2", Unlock()))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(lock)
                    actuation = decode(await two.get_message())  # type: ignore[arg-type]
                    # car 5's link tries every way to answer in car 2's place
                    message = refused_with(await answer(five, Ok(result=Done()), "car:2", actuation.id), Code.NOT_AUTHORIZED)
                    assert "car:5 only" in message
                    refused_with(await answer(five, Ok(result=Done()), "user:alice@example.com", actuation.id), Code.NOT_AUTHORIZED)
                    for guess in range(1, 6):  # its own car asked nothing: no id is open to it
                        refused_with(await answer(five, Ok(result=Done()), "car:5", guess), Code.NOT_FOUND)
                # nobody answered for real: the app hears the truth, not a forged ok
                body = outcome[0].reply.body
                assert isinstance(body, Error) and body.code == Code.TIMEOUT.value
                assert (await a.remote_check("car:2")).locked.value is True


async def test_an_app_cannot_write_into_another_accounts_queue(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            await provision(hub)
            async with alice(url) as a:
                token = a.token
            before = hub.store.undelivered("bob@example.com")
            forged = Alert(alert=AlertType.ALARM, channel=Channel.PUSH, car="car:5", text="pay here", at=0.0)
            async with raw_session(url, token) as ws:
                for target in ("app:bob@example.com", "user:bob@example.com", "unit:5", "hub"):
                    for body in (forged, Lock()):
                        await ws.send_message(encode(Envelope(body, sender="", target=target, id=7)))
                        refused_with(await next_reply(ws), Code.NOT_AUTHORIZED)
                await ws.send_message(encode(Envelope(RemoteCheck(), sender="user:bob@example.com", target="car:5", id=8)))
                assert "speaks as user:alice@example.com" in refused_with(await next_reply(ws), Code.NOT_AUTHORIZED)
            await hub.settle()
            assert hub.store.undelivered("bob@example.com") == before


async def test_a_link_sends_only_events_about_its_own_car(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            secrets = await provision(hub)
            before = hub.store.undelivered("alice@example.com")
            forged = Alert(alert=AlertType.ALARM, channel=Channel.PUSH, car="car:2", text="stolen!", at=0.0)
            async with raw_link(url, "5", secrets["5"]) as five:
                for target, body, code in (
                    ("user:alice@example.com", forged, Code.NOT_AUTHORIZED),
                    ("app:alice@example.com", forged, Code.NOT_AUTHORIZED),
                    ("car:2", AlarmSounding(cause="door forced"), Code.NOT_AUTHORIZED),
                    ("car:5", Lock(), Code.NOT_AUTHORIZED),
                    ("car:5", Error(code="made_up", message="gotcha"), Code.NOT_FOUND),
                ):
                    await five.send_message(encode(Envelope(body, sender="", target=target, id=3)))
                    refused_with(await next_reply(five), code)
                # what it may send: an event about its own car, which alerts that car's owner only
                await five.send_message(encode(Envelope(AlarmSounding(cause="door forced"), sender="", target="car:5", id=4)))
                taken = await next_reply(five)
                assert isinstance(taken.body, Ok)
            await until(lambda: any(isinstance(decode(f).body, Alert) for _, f in hub.store.undelivered("bob@example.com")))
            assert hub.store.undelivered("alice@example.com") == before


async def test_a_link_cannot_rewrite_who_may_use_its_car(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            secrets = await provision(hub)
            whole_twin = {"vehicle_id": "5", "contract": {"owner": "mallory@example.com", "plan": "standard"}}
            async with raw_link(url, "5", secrets["5"]) as five:
                frame = msgpack.packb({"type": "checkpoint", "to": "hub", "id": 9, "body": {"state": whole_twin, "at": 0.0}})
                await five.send_message(frame)
                refused_with(await next_reply(five), Code.UNKNOWN_TYPE)
            assert hub.fleet.state_of("car:5").contract.owner == "bob@example.com"


async def test_offline_reads_keep_the_report_times_of_a_raw_msgpack_link(tmp_path: Path) -> None:
    """A link written with no code of this project: plain msgpack maps, as docs/protocol.md says."""
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, url):
            secrets = await provision(hub)
            async with trio_websocket.open_websocket_url(url) as ws:
                await ws.send_message(msgpack.packb({"type": "hello_vehicle", "to": "hub", "id": 1, "body": {"vehicle_id": "2", "secret": secrets["2"]}}))
                welcome = msgpack.unpackb(await ws.get_message())
                assert welcome["type"] == "welcome" and welcome["body"]["address"] == "unit:2"
                await ws.send_message(msgpack.packb({"type": "door_changed", "to": "car:2", "id": 2, "body": {"door": "trunk", "open": True}}))
                taken = msgpack.unpackb(await ws.get_message())
                while taken["type"] != "ok":  # the twin answers numbered events
                    taken = msgpack.unpackb(await ws.get_message())
                assert taken["id"] == 2
                reported_at = hub.now()
            async with alice(url) as a:
                snap = await a.remote_check("car:2")
                assert snap.telematics is Telematics.OFFLINE
                assert snap.doors_open[Door.TRUNK].value is True
                at = snap.doors_open[Door.TRUNK].at
                assert at is not None and abs(at - reported_at) < 1.0


async def test_a_flood_of_wrong_password_logins_does_not_slow_logged_in_clients(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_hub(tmp_path / "hub.sqlite3", login_attempts=1) as (hub, url):
            await hub.create_account("alice@example.com", PASSWORD)
            await hub.add_car(new_vehicle("1", owner="alice@example.com"))
            answers: dict[str, int] = {}
            slowest = 0.0
            async with alice(url) as a:
                flooding = True

                async def wrong_login(n: int) -> None:
                    async with trio_websocket.open_websocket_url(url) as ws:
                        await ws.send_message(encode(Envelope(HelloPassword(email=f"nobody{n}@example.com", password="x"), sender="", target="hub", id=1)))
                        reply = decode(await ws.get_message())  # type: ignore[arg-type]
                        assert isinstance(reply.body, Error)
                        answers[reply.body.code] = answers.get(reply.body.code, 0) + 1

                async def commands() -> None:
                    nonlocal slowest
                    while flooding:
                        started = trio.current_time()
                        await a.lock("car:1")
                        slowest = max(slowest, trio.current_time() - started)
                        await trio.sleep(0.02)  # a person's pace, well under the session's rate limit

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(commands)
                    async with trio.open_nursery() as flood:
                        for n in range(400):
                            flood.start_soon(wrong_login, n)
                    flooding = False
            assert sum(answers.values()) == 400
            # a few are hashed: at most those admitted before the address had failed enough
            # (the waiting room, the thread, the address's failures); the rest are refused at once
            cfg = hub.config
            assert answers.get(Code.BAD_CREDENTIALS.value, 0) <= cfg.login_queue + cfg.login_threads + cfg.peer_failures
            assert answers.get(Code.LOGIN_LOCKED.value, 0) + answers.get(Code.OVERLOADED.value, 0) >= 300
            assert slowest < 1.0, f"a lock took {slowest:.2f} s during the flood"


async def test_dead_peers_are_pinged_and_closed_and_live_ones_stay(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", ping_interval=0.2, ping_timeout=0.3) as (hub, url):
            await provision(hub)
            async with alice(url) as a:
                token = a.token
                # a peer that stopped reading (a phone out of coverage): speaks wsproto by hand
                stream = await trio.open_tcp_stream("127.0.0.1", hub.port)
                wsc = WSConnection(ConnectionType.CLIENT)
                await stream.send_all(wsc.send(Request(host="127.0.0.1", subprotocols=[], target="/")))
                while not any(isinstance(e, AcceptConnection) for e in _events(wsc, await stream.receive_some())):
                    pass
                await stream.send_all(wsc.send(BytesMessage(data=encode(Envelope(HelloToken(token=token), sender="", target="hub", id=1)))))
                await until(lambda: hub.statistics().app_sessions == 2)
                # it never reads again, so it never answers a ping
                await until(lambda: hub.statistics().app_sessions == 1)
                await trio.sleep(0.8)  # several ping intervals: the live session answered each
                assert hub.statistics().app_sessions == 1
                assert (await a.remote_check("car:2")).locked.value is True
                await trio.aclose_forcefully(stream)


def _events(wsc: WSConnection, data: bytes) -> list[Any]:
    wsc.receive_data(data)
    return list(wsc.events())


