"""Acknowledged delivery of pushes to people's apps: per-account sequence, ack, redelivery."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.protocol import decode
from twin.store import Store


def test_seq_increases_per_account_and_undelivered_is_in_order(store: Store) -> None:
    assert [store.enqueue("alice", f"a{i}".encode()) for i in range(5)] == [1, 2, 3, 4, 5]
    assert [store.enqueue("bob", b"b1"), store.enqueue("alice", b"a5")] == [1, 6]
    assert store.undelivered("alice") == [(i + 1, f"a{i}".encode()) for i in range(6)]
    assert store.undelivered("alice", after=4) == [(5, b"a4"), (6, b"a5")]
    assert store.undelivered("alice", after=1, limit=2) == [(2, b"a1"), (3, b"a2")]
    assert store.undelivered("bob") == [(1, b"b1")]
    assert store.undelivered("carol") == []


def test_ack_deletes_up_to_seq_and_returns_how_many(store: Store) -> None:
    for i in range(5):
        store.enqueue("alice", bytes([i]))
    store.enqueue("bob", b"keep")
    assert store.ack("alice", 3) == 3
    assert store.ack("alice", 3) == 0  # acks are idempotent
    assert store.ack("alice", 1) == 0  # and late ones harmless
    assert [seq for seq, _ in store.undelivered("alice")] == [4, 5]
    assert store.ack("alice", 10**9) == 2
    assert store.undelivered("alice") == []
    assert store.undelivered("bob") == [(1, b"keep")]


def test_seq_never_goes_back_even_when_all_was_acked_and_the_hub_restarted(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.enqueue("alice", b"1")
        store.enqueue("alice", b"2")
        store.ack("alice", 2)
    with Store.open(db_path) as store:
        assert store.last_seq("alice") == 2
        assert store.enqueue("alice", b"3") == 3  # an app that acked 2 must not skip this one


def test_only_unacked_frames_are_redelivered_after_a_restart(db_path: Path, frames: dict[str, list[bytes]]) -> None:
    """Real frames the model pushed to apps: alice acks some, then the hub restarts."""
    alice, bob = frames["alice"], frames["bob"]
    assert len(alice) >= 3 and bob
    with Store.open(db_path) as store:
        seqs = store.enqueue_many([("alice", f) for f in alice] + [("bob", f) for f in bob])
        assert seqs == list(range(1, len(alice) + 1)) + list(range(1, len(bob) + 1))
        assert store.ack("alice", 2) == 2  # the app saw the first two
    with Store.open(db_path) as store:
        again = store.undelivered("alice")
        assert again == list(zip(range(3, len(alice) + 1), alice[2:]))
        assert [decode(frame) for _, frame in again] == [decode(f) for f in alice[2:]]
        assert [f for _, f in store.undelivered("bob")] == bob
        assert store.statistics().queued_frames == len(alice) - 2 + len(bob)


def test_a_bounded_queue_keeps_the_newest_frames_and_leaves_a_gap(store: Store) -> None:
    """An app that never acks: its queue stays at `keep` frames, the oldest are dropped."""
    for i in range(5):
        store.enqueue("alice", bytes([i]))
    store.enqueue("bob", b"untouched")
    assert store.enqueue_many([("alice", b"x"), ("alice", b"y")], keep=3) == [6, 7]
    assert store.undelivered("alice") == [(5, bytes([4])), (6, b"x"), (7, b"y")]  # 1..4 dropped: a gap
    assert store.undelivered("bob") == [(1, b"untouched")]  # only the accounts written to are trimmed
    assert store.enqueue_many([("alice", b"z")], keep=1) == [8]
    assert store.undelivered("alice") == [(8, b"z")]
    assert store.last_seq("alice") == 8


def test_keep_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError):
        store.enqueue_many([("alice", b"x")], keep=0)
    assert store.undelivered("alice") == []
