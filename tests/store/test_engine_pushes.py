"""The engine contract, durable pushes: per-account seq that never goes back, ack, bounds,
redelivery after a restart. Every test runs against SQLite and Redis (rules: see
test_engine_accounts.py)."""

from __future__ import annotations

import pytest
import trio

from twin.protocol import decode
from twin.store import Engine, open_engine


async def enqueue(engine: Engine, account: str, frame: bytes) -> int:
    (seq,) = await engine.enqueue_many([(account, frame)])
    return seq


async def test_seq_increases_per_account_and_undelivered_is_in_order(engine: Engine) -> None:
    assert [await enqueue(engine, "alice", f"a{i}".encode()) for i in range(5)] == [1, 2, 3, 4, 5]
    assert await engine.enqueue_many([("bob", b"b1"), ("alice", b"a5")]) == [1, 6]
    assert await engine.undelivered("alice") == [(i + 1, f"a{i}".encode()) for i in range(6)]
    assert await engine.undelivered("alice", after=4) == [(5, b"a4"), (6, b"a5")]
    assert await engine.undelivered("alice", after=1, limit=2) == [(2, b"a1"), (3, b"a2")]
    assert await engine.undelivered("alice", after=6) == []
    assert await engine.undelivered("bob") == [(1, b"b1")]
    assert await engine.undelivered("carol") == []
    assert await engine.last_seq("carol") == 0
    assert await engine.enqueue_many([]) == []


async def test_identical_frames_are_separate_pushes(engine: Engine) -> None:
    assert await engine.enqueue_many([("alice", b"same"), ("alice", b"same"), ("alice", b"")]) == [1, 2, 3]
    assert await engine.undelivered("alice") == [(1, b"same"), (2, b"same"), (3, b"")]


async def test_ack_deletes_up_to_seq_and_returns_how_many(engine: Engine) -> None:
    await engine.enqueue_many([("alice", bytes([i])) for i in range(5)] + [("bob", b"keep")])
    assert await engine.ack("alice", 3) == 3
    assert await engine.ack("alice", 3) == 0  # acks are idempotent
    assert await engine.ack("alice", 1) == 0  # and late ones harmless
    assert await engine.ack("alice", 0) == 0
    assert [seq for seq, _ in await engine.undelivered("alice")] == [4, 5]
    assert await engine.ack("alice", 10**9) == 2
    assert await engine.undelivered("alice") == []
    assert await engine.undelivered("bob") == [(1, b"keep")]
    assert await engine.ack("nobody", 5) == 0


async def test_seq_never_goes_back_even_when_all_was_acked_and_the_hub_restarted(target: str) -> None:
    async with open_engine(target) as engine:
        await engine.enqueue_many([("alice", b"1"), ("alice", b"2")])
        assert await engine.ack("alice", 2) == 2
    async with open_engine(target) as engine:
        assert await engine.last_seq("alice") == 2
        assert await enqueue(engine, "alice", b"3") == 3  # an app that acked 2 must not skip this one
        assert await engine.undelivered("alice") == [(3, b"3")]


async def test_only_unacked_frames_are_redelivered_after_a_restart(target: str, frames: dict[str, list[bytes]]) -> None:
    """Real frames the model pushed to apps: alice acks some, then the hub restarts."""
    alice, bob = frames["alice"], frames["bob"]
    assert len(alice) >= 3 and bob
    async with open_engine(target) as engine:
        seqs = await engine.enqueue_many([("alice", f) for f in alice] + [("bob", f) for f in bob])
        assert seqs == list(range(1, len(alice) + 1)) + list(range(1, len(bob) + 1))
        assert await engine.ack("alice", 2) == 2  # the app saw the first two
    async with open_engine(target) as engine:
        again = await engine.undelivered("alice")
        assert again == list(zip(range(3, len(alice) + 1), alice[2:]))
        assert [decode(frame) for _, frame in again] == [decode(f) for f in alice[2:]]
        assert [f for _, f in await engine.undelivered("bob")] == bob


async def test_a_bounded_queue_keeps_the_newest_frames_and_leaves_a_gap(engine: Engine) -> None:
    """An app that never acks: its queue stays at `keep` frames, the oldest are dropped."""
    await engine.enqueue_many([("alice", bytes([i])) for i in range(5)])
    await enqueue(engine, "bob", b"untouched")
    assert await engine.enqueue_many([("alice", b"x"), ("alice", b"y")], keep=3) == [6, 7]
    assert await engine.undelivered("alice") == [(5, bytes([4])), (6, b"x"), (7, b"y")]  # 1..4 dropped: a gap
    assert await engine.undelivered("bob") == [(1, b"untouched")]  # only the accounts written to are trimmed
    assert await engine.enqueue_many([("alice", b"z")], keep=1) == [8]
    assert await engine.undelivered("alice") == [(8, b"z")]
    assert await engine.last_seq("alice") == 8
    assert await engine.enqueue_many([("carol", b"c1"), ("carol", b"c2")], keep=5) == [1, 2]  # under the bound: all kept
    assert await engine.undelivered("carol") == [(1, b"c1"), (2, b"c2")]
    assert await engine.enqueue_many([("dave", b"d1"), ("dave", b"d2")], keep=1) == [1, 2]  # the smallest trim
    assert await engine.undelivered("dave") == [(2, b"d2")]


async def test_keep_must_be_positive(engine: Engine) -> None:
    with pytest.raises(ValueError):
        await engine.enqueue_many([("alice", b"x")], keep=0)
    assert await engine.undelivered("alice") == []
    assert await engine.last_seq("alice") == 0


async def test_concurrent_enqueues_get_distinct_gapless_seqs(engine: Engine) -> None:
    """Twenty tasks queueing at once for two accounts: every seq given once, none skipped."""
    got: dict[str, list[int]] = {"alice": [], "bob": []}

    async def writer(n: int) -> None:
        for i in range(10):
            seqs = await engine.enqueue_many([("alice", b"%d.%d" % (n, i)), ("bob", b"%d.%d" % (n, i))])
            got["alice"].append(seqs[0])
            got["bob"].append(seqs[1])

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(writer, n)
    for account in ("alice", "bob"):
        assert sorted(got[account]) == list(range(1, 201)), account
        assert [seq for seq, _ in await engine.undelivered(account)] == list(range(1, 201))
        assert await engine.last_seq(account) == 200
