"""The group committer on trio: marks are cheap, one commit serves many waiters, flush means durable.

Rules for these tests: a real database file; real time (commits run in worker threads, which
an autojump clock would race), so nothing asserts a duration; an absolute `fail_after` on
every test. "Durable" is checked through a second connection or by reopening the file.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trio

from twin.model import new_user, new_vehicle
from twin.store import Store, StoreError, open_state_writer


def car(i: int, **changes: object) -> object:
    return attrs.evolve(new_vehicle(str(i), owner=f"owner-{i}"), **changes)


async def test_many_marks_one_flush_one_commit_all_durable_after_reopen(db_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open(db_path)
        expected = {f"car:{i}": ("vehicle", car(i)) for i in range(200)}
        async with open_state_writer(store, interval=60) as writer:  # no background commit in this test
            for address, (kind, state) in expected.items():
                writer.mark(address, kind, state)
            writer.mark("user:alice", "user", new_user("alice"))
            expected["user:alice"] = ("user", new_user("alice"))
            assert writer.statistics().dirty == 201
            await writer.flush()
            stats = writer.statistics()
            assert (stats.commits, stats.states_written, stats.dirty) == (1, 201, 0)
            await writer.flush()  # nothing new: no commit
            assert writer.statistics().commits == 1
        store.close()
        with Store.open(db_path) as again:
            assert {a: (k, s) for a, k, s in again.load_states()} == expected


async def test_latest_mark_wins(db_path: Path) -> None:
    with trio.fail_after(10), Store.open(db_path) as store:
        async with open_state_writer(store, interval=60) as writer:
            for n in range(1, 51):
                writer.mark("car:1", "vehicle", car(1, next_key_id=n))
            await writer.flush()
            assert writer.statistics().states_written == 1
        assert store.load_state("car:1") == ("vehicle", car(1, next_key_id=50))


async def test_concurrent_waiters_share_commits_and_each_returns_durable(db_path: Path) -> None:
    """100 tasks each mark their car and await flush: at most two transactions serve them all,
    and when a task's flush returns, a second connection already reads its state."""
    with trio.fail_after(10), Store.open(db_path) as store, Store.open(db_path) as reader:
        seen: dict[str, object] = {}

        async def command(i: int) -> None:
            writer.mark(f"car:{i}", "vehicle", car(i))
            await writer.flush()
            seen[f"car:{i}"] = reader.load_state(f"car:{i}")

        async with open_state_writer(store, interval=60) as writer:
            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(command, i)
            stats = writer.statistics()
        assert seen == {f"car:{i}": ("vehicle", car(i)) for i in range(100)}
        # the first flush leads a commit of what was marked so far; everyone marking meanwhile
        # waits for it and then shares the next one
        assert 1 <= stats.commits <= 2, stats
        assert stats.states_written == 100 and stats.flush_waits >= 100 - stats.commits


async def test_marks_made_during_a_commit_wait_for_the_next_one(db_path: Path) -> None:
    with trio.fail_after(10), Store.open(db_path) as store, Store.open(db_path) as reader:
        async with open_state_writer(store, interval=60) as writer:
            writer.mark("car:1", "vehicle", car(1))

            async def lead(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                task_status.started()
                await writer.flush()  # takes car:1 and commits it in a thread

            async with trio.open_nursery() as nursery:
                await nursery.start(lead)  # resumes once the leader is inside its commit
                writer.mark("car:2", "vehicle", car(2))
                await writer.flush()  # must not return with the first commit
                assert reader.load_state("car:2") == ("vehicle", car(2))
            assert writer.statistics().commits == 2


async def test_background_commit_without_flush(db_path: Path) -> None:
    with trio.fail_after(10), Store.open(db_path) as store, Store.open(db_path) as reader:
        async with open_state_writer(store, interval=0.01) as writer:
            writer.mark("car:1", "vehicle", car(1))
            while writer.statistics().commits == 0:
                await trio.sleep(0.01)
            assert reader.load_state("car:1") == ("vehicle", car(1))


async def test_leaving_the_block_flushes(db_path: Path) -> None:
    with trio.fail_after(10):
        with Store.open(db_path) as store:
            async with open_state_writer(store, interval=60) as writer:
                for i in range(10):
                    writer.mark(f"car:{i}", "vehicle", car(i))
            with pytest.raises(StoreError, match="closed"):
                writer.mark("car:99", "vehicle", car(99))
        with Store.open(db_path) as store:
            assert len(list(store.load_states())) == 10


async def test_leaving_the_block_by_cancellation_still_flushes(db_path: Path) -> None:
    with trio.fail_after(10):
        with Store.open(db_path) as store:
            with trio.move_on_after(0.05):
                async with open_state_writer(store, interval=60) as writer:
                    writer.mark("car:1", "vehicle", car(1))
                    await trio.sleep_forever()
        with Store.open(db_path) as store:
            assert store.load_state("car:1") == ("vehicle", car(1))


async def test_a_wrong_kind_is_refused_at_mark(db_path: Path) -> None:
    with trio.fail_after(10), Store.open(db_path) as store:
        async with open_state_writer(store) as writer:
            with pytest.raises(StoreError, match="must be a UserState"):
                writer.mark("user:alice", "user", car(1))
            assert writer.statistics().marks == 0


async def test_a_failed_commit_raises_in_flush_and_keeps_the_states(db_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open(db_path)
        with pytest.RaisesGroup(pytest.RaisesExc(StoreError, match="closed")):
            async with open_state_writer(store, interval=60) as writer:
                writer.mark("car:1", "vehicle", car(1))
                store.close()  # the disk is gone
                with pytest.raises(StoreError, match="closed"):
                    await writer.flush()
                stats = writer.statistics()
                assert (stats.dirty, stats.failures, stats.commits) == (1, 1, 0)
            # leaving the block flushes once more, and says it could not
