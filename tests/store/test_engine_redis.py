"""What only the Redis engine has: a server that can restart, vanish or hang, a key layout,
a prefix, an append-only file. A real `redis-server` per test (tests/conftest.py), nothing
mocked; an absolute `fail_after` on every test that waits on the network."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio

from twin.errors import CommandRefused
from twin.model import new_vehicle
from twin.store import StoreError, StoreUnavailable, open_engine

PASSWORD = "correct horse battery staple 4711"


def aof_bytes(directory: Path) -> bytes:
    """Everything Redis has written to its append-only files so far."""
    return b"".join(p.read_bytes() for p in sorted((directory / "appendonlydir").iterdir()))


async def fill(engine: Any) -> dict[str, Any]:
    """One of everything the engine keeps; what to look for after a restart."""
    account = await engine.create_account("alice@example.com", PASSWORD)
    cars = {f"car:{i}": ("vehicle", new_vehicle(str(i), owner=account)) for i in range(50)}
    await engine.save_states(cars)
    return {
        "token": await engine.issue_token(account),
        "secret": await engine.create_vehicle_secret("7"),
        "cars": cars,
        "seqs": await engine.enqueue_many([(account, b"p%d" % i) for i in range(5)], keep=100),
    }


async def check(engine: Any, kept: dict[str, Any]) -> None:
    account = "alice@example.com"
    assert await engine.accounts() == [account]
    assert await engine.check_password(account, PASSWORD) == account
    assert await engine.account_for_token(kept["token"]) == account
    assert await engine.check_vehicle_secret("7", kept["secret"])
    assert {a: (k, s) async for a, k, s in engine.load_states()} == kept["cars"]
    assert await engine.undelivered(account) == [(4, b"p3"), (5, b"p4")]  # 1-3 were acked before the restart
    assert await engine.last_seq(account) == 5


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
async def test_everything_survives_a_redis_restart_and_the_engine_reconnects_on_its_own(redis_server: Any, how: signal.Signals) -> None:
    """AOF on, `appendfsync everysec`: a Redis process that is stopped, or killed outright,
    comes back with every change it acknowledged (the kernel has the file). The open engine
    needs no reopening: its next call reconnects."""
    with trio.fail_after(20):
        async with open_engine(redis_server.url) as engine:
            kept = await fill(engine)
            assert await engine.ack("alice@example.com", 3) == 3
            redis_server.restart(how)
            await check(engine, kept)
            assert await engine.enqueue_many([("alice@example.com", b"after")]) == [6]
        async with open_engine(redis_server.url) as engine:  # and a fresh client sees the same
            assert await engine.undelivered("alice@example.com", after=5) == [(6, b"after")]


async def test_a_call_while_redis_is_down_raises_store_unavailable_then_works_again(redis_server: Any) -> None:
    with trio.fail_after(20):
        async with open_engine(redis_server.url, connect_timeout=1, timeout=1) as engine:
            await engine.create_vehicle_secret("7")
            redis_server.stop()
            for call in (engine.accounts(), engine.enqueue_many([("alice", b"x")]), engine.save_states({"car:1": ("vehicle", new_vehicle("1"))})):
                with pytest.raises(StoreUnavailable, match=r"unreachable or did not answer.*check that redis-server runs") as info:
                    await call
                assert redis_server.url in info.value.message
                assert isinstance(info.value, StoreError)
            redis_server.start()
            assert await engine.enqueue_many([("alice", b"x")]) == [1]


async def test_an_unreachable_redis_is_a_typed_error_at_open_not_a_hang(free_port: Callable[[], int]) -> None:
    port = free_port()
    with trio.fail_after(10):
        with pytest.raises(StoreUnavailable, match=rf"redis://127.0.0.1:{port}/0 is unreachable"):
            async with open_engine(f"redis://127.0.0.1:{port}/0", connect_timeout=1, timeout=1):
                raise AssertionError("opened an engine on a port where nothing listens")


async def test_a_redis_that_accepts_but_never_answers_times_out_as_store_unavailable() -> None:
    """A hung server (accepts the connection, reads, never replies): bounded by `timeout`."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, _swallow, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(StoreUnavailable, match="did not answer"):
                async with open_engine(f"redis://127.0.0.1:{port}/0", connect_timeout=1, timeout=0.5):
                    raise AssertionError("opened an engine on a server that never answers")
            nursery.cancel_scope.cancel()


async def _swallow(stream: trio.SocketStream) -> None:
    async for _ in stream:
        pass


async def test_errors_raised_inside_the_block_come_out_as_themselves(redis_server: Any) -> None:
    """The client's connection pool runs a nursery around the block; the caller sees its own
    exception, not an ExceptionGroup."""
    with trio.fail_after(10):
        with pytest.raises(KeyError, match="mine"):
            async with open_engine(redis_server.url):
                raise KeyError("mine")


async def test_the_key_layout_is_the_documented_one(redis_server: Any) -> None:
    """The keys twin/store/_redis.py documents, each of the documented type, and nothing else."""
    with trio.fail_after(10):
        async with open_engine(redis_server.url + "?prefix=acme:") as engine:
            kept = await fill(engine)
            assert engine.where == redis_server.url and repr(engine).endswith("prefix 'acme:'>")
        async with coredis.Redis.from_url(redis_server.url) as client:
            keys = {k.decode(): (await client.type(k)).decode() for k in await client.keys("*")}
            digest = hashlib.sha256(kept["token"].encode()).hexdigest()
            (batch,) = [k for k in keys if k.startswith("acme:pushbatch:")]
            assert await client.get(batch) == b"[1,2,3,4,5]" and 0 < await client.ttl(batch) <= 300
            assert keys == {
                "acme:layout": "string",
                "acme:account:alice@example.com": "hash",
                "acme:accounts": "zset",
                f"acme:token:{digest}": "string",
                "acme:vehicle:7": "string",
                **{f"acme:state:car:{i}": "hash" for i in range(50)},
                "acme:states": "zset",
                "acme:pushseq:alice@example.com": "string",
                "acme:push:alice@example.com": "stream",
                batch: "string",
            }
            stored = await client.hgetall("acme:account:alice@example.com")
            assert set(stored) == {b"salt", b"key", b"n", b"r", b"p", b"created_at", b"created_by"}
            assert {k: stored[k] for k in (b"n", b"r", b"p")} == {b"n": b"16384", b"r": b"8", b"p": b"1"}
            assert len(stored[b"salt"]) == 16 and len(stored[b"key"]) == 32
            assert await client.get("acme:layout") == b"1"


async def test_no_password_token_or_secret_is_in_the_append_only_file(redis_server: Any) -> None:
    with trio.fail_after(10):
        async with open_engine(redis_server.url) as engine:
            kept = await fill(engine)
        written = aof_bytes(redis_server.directory)
        assert b"alice@example.com" in written  # the file does hold what was written
        for text in (PASSWORD, kept["token"], kept["secret"]):
            assert text.encode() not in written


async def test_prefixes_keep_deployments_apart(redis_server: Any) -> None:
    with trio.fail_after(10):
        async with open_engine(redis_server.url + "?prefix=a:") as a, open_engine(redis_server.url, prefix="b:") as b:
            await a.create_account("alice@example.com", PASSWORD)
            await a.enqueue_many([("alice@example.com", b"x")])
            assert await b.accounts() == []
            assert await b.last_seq("alice@example.com") == 0
            await b.create_account("alice@example.com", "other")  # no conflict: another deployment
            assert await a.check_password("alice@example.com", "other") is None


async def test_a_newer_key_layout_is_refused(redis_server: Any) -> None:
    with trio.fail_after(10):
        async with coredis.Redis.from_url(redis_server.url) as client:
            await client.set("twin:layout", "2")
        with pytest.raises(StoreError, match=r"layout b'2'.*upgrade twin, or use another prefix"):
            async with open_engine(redis_server.url):
                raise AssertionError("opened a layout from the future")


async def test_a_prefix_is_only_for_redis(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prefix is for a Redis engine"):
        async with open_engine(tmp_path / "hub.sqlite3", prefix="x:"):
            raise AssertionError("unreachable")


async def test_a_repeated_step_after_a_lost_reply_is_not_applied_twice(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step is repeated when its connection broke, maybe after Redis applied it. With the
    call's id the same (here: pinned), the repeat returns what the first run did."""
    import twin.store._redis as redis_engine

    with trio.fail_after(10):
        async with open_engine(redis_server.url) as engine:
            monkeypatch.setattr(redis_engine, "new_secret", lambda: "call-1")
            items = [("alice", b"a"), ("bob", b"b"), ("alice", b"c")]
            assert await engine.enqueue_many(items) == [1, 1, 2]
            assert await engine.enqueue_many(items) == [1, 1, 2]  # the repeat: nothing queued again
            assert await engine.create_account("alice@example.com", PASSWORD) == "alice@example.com"
            assert await engine.create_account("alice@example.com", PASSWORD) == "alice@example.com"  # its own
            monkeypatch.setattr(redis_engine, "new_secret", lambda: "call-2")
            assert await engine.enqueue_many(items) == [3, 2, 4]  # another call queues
            with pytest.raises(CommandRefused):  # another call is refused
                await engine.create_account("alice@example.com", PASSWORD)
            assert await engine.undelivered("alice") == [(1, b"a"), (2, b"c"), (3, b"a"), (4, b"c")]
