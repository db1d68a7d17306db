"""`coverage_changed` reaches a twin whose mailbox is full when its link attaches or drops.

A real `AddressBook` and `Mailbox` stand for the fleet; the test plays the twin by taking
envelopes out of its mailbox. Under the autojump clock, with a `fail_after` on each.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from twin.actors import AddressBook, Mailbox
from twin.errors import Code, DeliveryError
from twin.protocol import CoverageChanged, Envelope, Lock
from twin.server._coverage import Coverage

pytestmark = pytest.mark.trio

FILLER = Envelope(Lock(), sender="user:a", target="car:1", id=1)


def seen(box: Mailbox) -> list[object]:
    """What the twin takes out of its mailbox now: coverage values, or the filler."""
    out: list[object] = []
    while (env := box.get_nowait()) is not None:
        out.append(env.body.online if isinstance(env.body, CoverageChanged) else env.body)
    return out


async def fleet(nursery: trio.Nursery, capacity: int = 1, book: AddressBook | None = None) -> tuple[Coverage, Mailbox]:
    """A running `Coverage` over `book`, where car 1's twin has a mailbox of `capacity`."""
    book = AddressBook() if book is None else book
    box = Mailbox(capacity, "car:1")
    book.register("car:1", box)
    coverage = Coverage(book, trio.current_time)
    await nursery.start(coverage.run)
    return coverage, box


async def test_goes_straight_in_when_there_is_room(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            coverage, box = await fleet(nursery, capacity=4)
            coverage.tell("1", True)
            coverage.tell("1", False)
            assert coverage.waiting == 0
            envs = [box.get_nowait(), box.get_nowait()]
            assert [e.body for e in envs if e is not None] == [CoverageChanged(online=True), CoverageChanged(online=False)]
            assert all(e is not None and e.sender == "hub" and e.target == "car:1" for e in envs)
            nursery.cancel_scope.cancel()


async def test_waits_for_room_instead_of_being_dropped(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            coverage, box = await fleet(nursery)
            box.put_nowait(FILLER)
            coverage.tell("1", True)  # the link attached while the twin is busy
            with pytest.raises(DeliveryError):
                box.put_nowait(FILLER)  # still full: the notice waits outside
            assert coverage.waiting == 1
            await trio.testing.wait_all_tasks_blocked()  # the task waits in the mailbox's put
            assert seen(box) == [Lock(), True]  # taking one lets the waiting put in
            await trio.testing.wait_all_tasks_blocked()
            assert coverage.waiting == 0 and seen(box) == []
            nursery.cancel_scope.cancel()


async def test_a_later_notice_replaces_the_waiting_one_and_keeps_the_order(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            coverage, box = await fleet(nursery)
            box.put_nowait(FILLER)
            coverage.tell("1", False)  # the old link dropped ...
            coverage.tell("1", True)  # ... and the new one attached, both while the twin is busy
            assert seen(box) == [Lock()]
            # room now: without waiting for the task, a newer notice would jump the queue
            coverage.tell("1", False)
            await trio.testing.wait_all_tasks_blocked()
            assert seen(box) == [False]
            assert coverage.waiting == 0
            nursery.cancel_scope.cancel()


async def test_value_changed_while_delivering_is_delivered_again(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            coverage, box = await fleet(nursery)
            box.put_nowait(FILLER)
            coverage.tell("1", True)
            await trio.testing.wait_all_tasks_blocked()  # the task now waits in the mailbox's put
            coverage.tell("1", False)
            assert seen(box) == [Lock(), True]  # the waiting put went in; False is newer
            await trio.testing.wait_all_tasks_blocked()
            assert seen(box) == [False]
            assert coverage.waiting == 0
            nursery.cancel_scope.cancel()


async def test_one_busy_twin_holds_up_no_other(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            book = AddressBook()
            coverage, busy = await fleet(nursery, book=book)
            idle = Mailbox(1, "car:2")
            other = Mailbox(1, "car:3")
            book.register("car:2", idle)
            book.register("car:3", other)
            busy.put_nowait(FILLER)
            other.put_nowait(FILLER)
            coverage.tell("1", True)
            coverage.tell("3", True)
            coverage.tell("2", True)
            assert seen(idle) == [True]
            assert seen(other) == [Lock()]
            await trio.testing.wait_all_tasks_blocked()
            assert seen(other) == [True]
            assert coverage.waiting == 1  # car 1's twin is still busy
            nursery.cancel_scope.cancel()


async def test_a_car_that_is_gone_is_logged_not_queued(autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            coverage, _ = await fleet(nursery)
            coverage.tell("9", True)
            assert coverage.waiting == 0
            with pytest.raises(DeliveryError) as refused:
                AddressBook().deliver_nowait(FILLER)
            assert refused.value.code is Code.UNKNOWN_TARGET
            assert f"car:9 cannot take coverage_changed(online=True): {refused.value.message.replace('car:1', 'car:9')}" in caplog.text
            nursery.cancel_scope.cancel()
