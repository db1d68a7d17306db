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
        assert [(await box.receive()).id, (await box.receive()).id] == [1, 2]
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
                got.append((await box.receive()).id)
        assert got == [1, 2, 3]
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
        assert (await box.receive()).id == 1
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
            assert (await box.receive()).id == 7
            assert trio.current_time() == 3
        with trio.move_on_after(2):
            await box.receive()
        assert box.statistics().receiver_waiting is False


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


async def test_ask_reply_goes_to_the_asker_not_the_mailbox(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        book = AddressBook()
        car, user = Mailbox(4), Mailbox(4)
        book.register("car:1", car)
        book.register("user:a", user)

        async def answer() -> None:
            request = await car.receive()
            await trio.sleep(2)
            book.deliver_nowait(request.reply(Ok(result=Done(detail="locked")), 0.0))
            book.deliver_nowait(request.reply(Ok(result=Done(detail="again")), 0.0))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer)
            request = Envelope(Unlock(), sender="user:a", target="car:1", id=book.next_id())
            reply = await book.ask(request, timeout=5)
        assert reply.body == Ok(result=Done(detail="locked"))
        assert (reply.id, reply.target, trio.current_time()) == (request.id, "user:a", 2)
        # the second reply found no pending ask, so it was delivered like any envelope
        assert (await user.receive()).body == Ok(result=Done(detail="again"))
        assert book.statistics().pending_asks == 0


async def test_ask_timeout(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        book = AddressBook()
        book.register("car:1", Mailbox(4))
        with pytest.raises(DeliveryError) as caught:
            await book.ask(env(book.next_id()), timeout=1.5)
        assert caught.value.code is Code.TIMEOUT
        assert trio.current_time() == 1.5
        assert book.statistics().pending_asks == 0
