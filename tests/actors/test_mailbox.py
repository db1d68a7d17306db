"""The mailbox and the address book on their own, under the autojump clock.

Rules for these tests: in memory only, virtual time asserted exactly, a `fail_after` on each.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from twin.actors import AddressBook, Mailbox, MailboxStatistics
from twin.errors import Code, DeliveryError
from twin.protocol import Done, Envelope, Lock, Ok, Unlock

pytestmark = pytest.mark.trio


def env(n: int, target: str = "car:1") -> Envelope:
    return Envelope(Lock(), sender="user:a", target=target, id=n)


async def test_fifo_and_overloaded(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        box = Mailbox(2, "car:1")
        box.put_nowait(env(1))
        box.put_nowait(env(2))
        with pytest.raises(DeliveryError) as caught:
            box.put_nowait(env(3))
        assert caught.value.code is Code.OVERLOADED
        assert "car:1" in caught.value.message
        assert box.statistics() == MailboxStatistics(2, 2, 0, False)
        assert box.get_nowait() == env(1)
        box.put_nowait(env(3))
        assert [await box.receive(), await box.receive()] == [env(2), env(3)]
        assert box.get_nowait() is None and len(box) == 0
        box.put_nowait(env(1))
        box.put_nowait(env(2))
        assert [await box.receive(), await box.receive()] == [env(1), env(2)]
        assert box.statistics().queued == 0


async def test_put_waits_for_room_and_keeps_order(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        box = Mailbox(1)
        box.put_nowait(env(1))
        sent_at: dict[int, float] = {}

        async def put(n: int) -> None:
            await box.put(env(n))
            sent_at[n] = trio.current_time()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(put, 2)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(put, 3)
            await trio.testing.wait_all_tasks_blocked()
            assert box.statistics().waiting_senders == 2
            got = []
            for _ in range(3):
                await trio.sleep(1)
                got.append(await box.receive())
        assert got == [env(1), env(2), env(3)]
        assert sent_at == {2: 1.0, 3: 2.0}
        assert box.statistics() == MailboxStatistics(1, 0, 0, False)


async def test_cancelled_put_leaves_nothing_behind(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        box = Mailbox(1)
        box.put_nowait(env(1))
        with trio.move_on_after(5):
            await box.put(env(2))
        assert trio.current_time() == 5
        assert box.statistics().waiting_senders == 0
        assert await box.receive() == env(1)
        assert box.statistics().queued == 0


async def test_receive_parks_until_a_put(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        box = Mailbox(4)

        async def later() -> None:
            await trio.sleep(3)
            box.put_nowait(env(7))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            await trio.testing.wait_all_tasks_blocked()
            assert await box.receive() == env(7)
            assert trio.current_time() == 3
        assert await box.receive(deadline=5.5) is None
        assert trio.current_time() == 5.5
        assert box.statistics().receiver_waiting is False
        assert await box.receive(deadline=1) is None  # passed: no wait
        assert trio.current_time() == 5.5
        box.put_nowait(env(8))
        received = await box.receive(deadline=1)  # something queued: returned even so
        assert received is not None and received.id == 8


async def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox(0)


async def test_address_book_errors(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1):
        book = AddressBook()
        book.register("car:1", Mailbox(4))
        with pytest.raises(ValueError, match="already registered"):
            book.register("car:1", Mailbox(4))
        with pytest.raises(DeliveryError) as caught:
            book.deliver_nowait(env(1, "car:2"))
        assert caught.value.code is Code.UNKNOWN_TARGET
        with pytest.raises(DeliveryError) as caught:
            await book.deliver(env(1, "app:alice"))
        assert caught.value.code is Code.OFFLINE
        book.unregister("car:1")
        book.unregister("car:1")
        assert "car:1" not in book


async def test_an_expected_reply_goes_to_its_waiter_not_the_mailbox(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        book = AddressBook()
        user = Mailbox(4)
        book.register("user:a", user)
        request = Envelope(Unlock(), sender="user:a", target="car:1", id=book.next_id())
        waiter = book.expect("user:a", request.id, "car:1")
        with pytest.raises(ValueError, match="already awaited"):
            book.expect("user:a", request.id, "car:1")
        assert book.statistics().pending_asks == 1
        # not a reply: delivered as usual even though its (target, id) is awaited
        await book.deliver(Envelope(Lock(), sender="car:1", target="user:a", id=request.id))
        # a reply with the awaited (target, id) from an address that was not asked resolves nothing
        book.deliver_nowait(Envelope(Ok(result=Done(detail="forged")), sender="car:2", target="user:a", id=request.id))
        assert waiter.reply is None and book.statistics().pending_asks == 1
        book.deliver_nowait(request.reply(Ok(result=Done(detail="first")), 0.0))
        book.deliver_nowait(request.reply(Ok(result=Done(detail="again")), 0.0))
        assert waiter.reply is not None and waiter.reply.body == Ok(result=Done(detail="first"))
        assert book.statistics().pending_asks == 0
        assert [(await user.receive()).body for _ in range(3)] == [
            Lock(),
            Ok(result=Done(detail="forged")),
            Ok(result=Done(detail="again")),
        ]
        assert book.statistics().delivered == 4
        book.forget(waiter)
        other = book.expect("user:a", 99, "car:1")
        book.forget(other)
        book.deliver_nowait(Envelope(Ok(result=Done()), sender="car:1", target="user:a", id=99))
        assert other.reply is None and len(user) == 1


async def test_a_callback_waiter_is_called_once_and_keeps_nothing() -> None:
    """The fleet's timeout heap holds answered waiters for a while: a callback's waiter must
    not keep the reply or the request alive there (thousands of them burdened the collector)."""
    book = AddressBook()
    book.register("user:a", Mailbox(4))
    request = Envelope(Unlock(), sender="user:a", target="car:1", id=book.next_id())
    got: list[Envelope] = []
    waiter = book.expect("user:a", request.id, "car:1", got.append)
    waiter.request = request
    assert waiter.waiting
    reply = request.reply(Ok(result=Done(detail="done")), 0.0)
    book.deliver_nowait(reply)
    assert got == [reply]
    assert not waiter.waiting and waiter.reply is None and waiter.request is None
    book.deliver_nowait(reply)  # no longer awaited: it would go to user:a's inbox, not the callback
    assert got == [reply]
