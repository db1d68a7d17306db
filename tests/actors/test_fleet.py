"""The fleet runtime with small test behaviours: timers, ask and tell, supervision, passivation.

Rules for these tests: in memory only; `MockClock(autojump_threshold=0)` so every timer is
virtual and asserted exactly; an absolute `fail_after` on every test. The behaviours below
stand in for the real model: a counter with alarms, and ways to crash.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from twin.actors import Fleet, open_fleet
from twin.errors import Code, DeliveryError
from twin.protocol import Done, Envelope, Error, Message, Ok

pytestmark = pytest.mark.trio

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@attrs.frozen(kw_only=True)
class Add(Message):  # not registered: a test message never goes on the wire
    TYPE = "t_add"
    KIND = "command"
    n: int


@attrs.frozen(kw_only=True)
class SetAlarm(Message):  # not registered: a test message never goes on the wire
    TYPE = "t_alarm"
    KIND = "command"
    at: float


@attrs.frozen(kw_only=True)
class Forward(Message):  # not registered: a test message never goes on the wire
    TYPE = "t_forward"
    KIND = "command"
    target: str
    n: int


@attrs.frozen(kw_only=True)
class Silent(Message):  # not registered: a test message never goes on the wire
    TYPE = "t_silent"
    KIND = "command"


@attrs.frozen(kw_only=True)
class Boom(Message):  # not registered: a test message never goes on the wire
    TYPE = "t_boom"
    KIND = "command"


@attrs.frozen(kw_only=True)
class Rang(Message):  # not registered: a test message never goes on the wire
    TYPE = "t_rang"
    KIND = "notice"
    at: float


@attrs.frozen
class Counter:
    address: str
    owner: str
    count: int = 0
    seen: tuple[int, ...] = ()
    alarms: tuple[float, ...] = ()
    rang: tuple[float, ...] = ()
    errors: tuple[str, ...] = ()


def counter(n: int) -> Counter:
    return Counter(address=f"car:{n}", owner=f"owner{n}")


class Counting:
    """Adds numbers, rings alarms (a notice to the owner's app), forwards adds, may crash."""

    def step(self, state: Counter, envelope: Envelope, now: float) -> tuple[Counter, list[Envelope]]:
        state, out = self.advance(state, now)
        match envelope.body:
            case Add(n=n):
                state = attrs.evolve(state, count=state.count + n, seen=state.seen + (n,))
            case SetAlarm(at=at):
                state = attrs.evolve(state, alarms=tuple(sorted(state.alarms + (at,))))
            case Forward(target=target, n=n):
                out.append(Envelope(Add(n=n), state.address, target, id=1, ts=now))
            case Error(code=code):
                return attrs.evolve(state, errors=state.errors + (code,)), out
            case Boom():
                raise RuntimeError("boom")
            case Silent() | Ok():
                return state, out
        out.append(envelope.reply(Ok(result=Done(detail=str(state.count))), now))
        return state, out

    def advance(self, state: Counter, now: float) -> tuple[Counter, list[Envelope]]:
        due = tuple(a for a in state.alarms if a <= now)
        if not due:
            return state, []
        state = attrs.evolve(state, alarms=state.alarms[len(due):], rang=state.rang + due)
        return state, [Envelope(Rang(at=a), state.address, f"app:{state.owner}", ts=now) for a in due]

    def next_deadline(self, state: Counter) -> float | None:
        return state.alarms[0] if state.alarms else None


class FragileAlarms(Counting):
    """Counts fine, but every alarm crashes it."""

    def advance(self, state: Counter, now: float) -> tuple[Counter, list[Envelope]]:
        if any(a <= now for a in state.alarms):
            raise ValueError("alarm circuit fried")
        return state, []


class AlwaysCrashing(Counting):
    def step(self, state: Counter, envelope: Envelope, now: float) -> tuple[Counter, list[Envelope]]:
        raise RuntimeError("always")


COUNTING = Counting()


def count_of(reply: Envelope) -> int:
    assert isinstance(reply.body, Ok), reply
    assert isinstance(reply.body.result, Done)
    return int(reply.body.result.detail)


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    """A fleet; its test must request `autojump_clock` itself (pytest-trio reads the test's)."""
    assert isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
    async with open_fleet(epoch=EPOCH) as fleet:
        yield fleet


# --- timers, ask, tell


async def test_deadline_fires_at_exactly_its_time(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        fleet.spawn("car:1", COUNTING, counter(1))
        with fleet.subscribe("app:owner1") as app:
            await fleet.ask("user:a", "car:1", SetAlarm(at=EPOCH + 600))
            await fleet.ask("user:a", "car:1", SetAlarm(at=EPOCH + 90.5))
            first = await app.receive()
            assert trio.current_time() == 90.5
            second = await app.receive()
            assert trio.current_time() == 600
        assert (first.body, first.ts, first.sender) == (Rang(at=EPOCH + 90.5), EPOCH + 90.5, "car:1")
        assert (second.body, second.ts) == (Rang(at=EPOCH + 600), EPOCH + 600)
        assert fleet.state_of("car:1").rang == (EPOCH + 90.5, EPOCH + 600)


async def test_ask_returns_the_reply(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        fleet.spawn("car:1", COUNTING, counter(1))
        replies = [await fleet.ask("user:a", "car:1", Add(n=n)) for n in (1, 2, 3)]
        assert [count_of(r) for r in replies] == [1, 3, 6]
        assert [(r.sender, r.target) for r in replies] == [("car:1", "user:a")] * 3
        assert len({r.id for r in replies}) == 3
        assert trio.current_time() == 0
        assert fleet.statistics().pending_asks == 0


async def test_ask_times_out_at_exactly_the_timeout(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        fleet.spawn("car:1", COUNTING, counter(1))
        with pytest.raises(DeliveryError) as caught:
            await fleet.ask("user:a", "car:1", Silent(), timeout=2.5)
        assert caught.value.code is Code.TIMEOUT
        assert trio.current_time() == 2.5
        assert fleet.statistics().pending_asks == 0


async def test_ask_waits_for_room_within_its_timeout(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(10):
        with fleet.subscribe("app:slow", capacity=1) as slow:
            fleet.tell_nowait("car:1", "app:slow", Rang(at=0))  # the app's inbox is now full
            with pytest.raises(DeliveryError) as caught:
                await fleet.ask("user:a", "app:slow", Add(n=1), timeout=3)
            assert caught.value.code is Code.TIMEOUT and trio.current_time() == 3

            async def app() -> None:
                await trio.sleep(1)
                assert (await slow.receive()).body == Rang(at=0)
                request = await slow.receive()  # the ask below got in once there was room
                await trio.sleep(1)
                fleet.router.deliver_nowait(request.reply(Ok(result=Done(detail="7")), 0.0))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(app)
                assert count_of(await fleet.ask("user:a", "app:slow", Add(n=1), timeout=3)) == 7
            assert trio.current_time() == 5
            assert fleet.statistics().pending_asks == 0


async def test_ask_soon_calls_back_once_with_the_reply_a_timeout_or_a_delivery_error(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(10):
        fleet.spawn("car:1", COUNTING, counter(1))
        got: list[tuple[float, Envelope]] = []

        def record(reply: Envelope) -> None:
            got.append((trio.current_time(), reply))

        fleet.ask_soon("user:a", "car:1", Add(n=4), record)
        fleet.ask_soon("user:a", "car:1", Silent(), record, timeout=2.5)
        fleet.ask_soon("user:a", "car:404", Add(n=1), record)  # answered before ask_soon returns
        assert [reply.body.code for _, reply in got] == ["unknown_target"]  # type: ignore[attr-defined]
        assert (got[0][1].sender, got[0][1].target) == ("car:404", "user:a")
        await trio.sleep(5)
        assert len(got) == 3  # each exactly once: the timed-out ask is not answered again
        (t_ok, ok), (t_late, late) = got[1:]
        assert t_ok == 0 and count_of(ok) == 4 and (ok.sender, ok.target) == ("car:1", "user:a")
        assert t_late == 2.5 and isinstance(late.body, Error) and late.body.code == "timeout"
        assert (late.sender, late.target) == ("car:1", "user:a") and "within 2.5 s" in late.body.message
        assert fleet.statistics().pending_asks == 0


async def test_unknown_target_is_answered_with_an_error(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        reply = await fleet.ask("user:a", "car:404", Add(n=1))
        assert isinstance(reply.body, Error)
        assert reply.body.code == "unknown_target"
        assert (reply.sender, reply.target) == ("car:404", "user:a")
        offline = await fleet.ask("user:a", "app:nobody", Add(n=1))
        assert isinstance(offline.body, Error) and offline.body.code == "offline"
        with pytest.raises(DeliveryError) as caught:
            await fleet.tell("user:a", "car:404", Add(n=1))
        assert caught.value.code is Code.UNKNOWN_TARGET
        with pytest.raises(DeliveryError) as caught:
            fleet.state_of("car:404")
        assert caught.value.code is Code.UNKNOWN_TARGET


async def test_request_from_an_actor_to_nowhere_comes_back_as_an_error(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        fleet.spawn("car:1", COUNTING, counter(1))
        await fleet.ask("user:a", "car:1", Forward(target="car:404", n=5))
        await trio.testing.wait_all_tasks_blocked()
        assert fleet.state_of("car:1").errors == ("unknown_target",)
        assert fleet.statistics().dropped == 0
        # a notice to an app nobody has open has no one to answer: dropped, and counted
        await fleet.ask("user:a", "car:1", SetAlarm(at=EPOCH + 10))
        await trio.sleep(11)
        assert fleet.state_of("car:1").rang == (EPOCH + 10,)
        assert fleet.statistics().dropped == 1


async def test_backpressure_and_overloaded(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with open_fleet(epoch=EPOCH, capacity=2) as fleet:
            fleet.spawn("car:1", COUNTING, counter(1))
            fleet.tell_nowait("user:a", "car:1", Add(n=1))
            fleet.tell_nowait("user:a", "car:1", Add(n=2))
            with pytest.raises(DeliveryError) as caught:
                fleet.tell_nowait("user:a", "car:1", Add(n=3))
            assert caught.value.code is Code.OVERLOADED
            stats = fleet.actor_statistics("car:1").mailbox
            assert stats is not None and stats.queued == 2
            for n in range(3, 10):  # each waits for room instead of failing
                await fleet.tell("user:a", "car:1", Add(n=n))
            await trio.testing.wait_all_tasks_blocked()
            assert fleet.state_of("car:1").seen == tuple(range(1, 10))


async def test_outbox_overflow_becomes_an_overloaded_error_reply(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        fleet.spawn("car:1", COUNTING, counter(1))
        with fleet.subscribe("app:slow", capacity=1) as slow:
            for n in (1, 2):  # the second forward finds the app's inbox full
                await fleet.ask("user:a", "car:1", Forward(target="app:slow", n=n))
            await trio.testing.wait_all_tasks_blocked()
            assert fleet.state_of("car:1").errors == ("overloaded",)
            assert (await slow.receive()).body == Add(n=1)


# --- supervision


async def test_crash_restarts_from_last_good_state(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        fleet.spawn("car:1", COUNTING, counter(1))
        fleet.spawn("car:2", COUNTING, counter(2))
        assert count_of(await fleet.ask("user:a", "car:1", Add(n=1))) == 1
        assert count_of(await fleet.ask("user:a", "car:1", Add(n=2))) == 3
        crashed = await fleet.ask("user:a", "car:1", Boom())
        assert isinstance(crashed.body, Error) and crashed.body.code == "internal"
        assert count_of(await fleet.ask("user:a", "car:2", Add(n=7))) == 7
        assert count_of(await fleet.ask("user:a", "car:1", Add(n=3))) == 6
        assert fleet.state_of("car:1").seen == (1, 2, 3)
        stats = fleet.actor_statistics("car:1")
        assert stats.crashes == 1 and stats.active
        assert stats.last_crash is not None and "RuntimeError: boom" in stats.last_crash
        assert fleet.actor_statistics("car:2").crashes == 0
        assert fleet.statistics().crashes == 1


async def test_a_car_that_always_crashes_still_answers(fleet: Fleet, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        fleet.spawn("car:1", AlwaysCrashing(), counter(1))
        fleet.spawn("car:2", COUNTING, counter(2))
        for n in range(5):
            reply = await fleet.ask("user:a", "car:1", Add(n=n))
            assert isinstance(reply.body, Error) and reply.body.code == "internal"
            assert count_of(await fleet.ask("user:a", "car:2", Add(n=1))) == n + 1
        assert fleet.actor_statistics("car:1").crashes == 5
        assert fleet.state_of("car:1") == counter(1)


@pytest.mark.parametrize("idle", [None, 1.0])
async def test_a_crashing_deadline_is_retried_after_the_backoff(
    autojump_clock: trio.testing.MockClock, idle: float | None
) -> None:
    with trio.fail_after(1000):
        async with open_fleet(epoch=EPOCH, crash_backoff=30, idle=idle) as fleet:
            fleet.spawn("car:1", FragileAlarms(), counter(1))
            await fleet.ask("user:a", "car:1", SetAlarm(at=EPOCH + 100))
            crashes_at = []
            for t in (99, 100, 129, 130, 159, 160):
                await trio.sleep_until(t)
                await trio.testing.wait_all_tasks_blocked()  # let the actors run at t first
                crashes_at.append(fleet.actor_statistics("car:1").crashes)
            assert crashes_at == [0, 1, 1, 2, 2, 3]
            # step fires the due alarm first, so it crashes too, and still answers
            reply = await fleet.ask("user:a", "car:1", Add(n=4))
            assert isinstance(reply.body, Error) and reply.body.code == "internal"
            assert fleet.state_of("car:1").count == 0


# --- passivation


async def test_idle_actor_is_passivated_and_keeps_its_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(100):
        async with open_fleet(epoch=EPOCH, idle=10) as fleet:
            fleet.spawn("car:1", COUNTING, counter(1))
            assert (fleet.statistics().active, fleet.statistics().passive) == (0, 1)
            await trio.sleep(5)
            assert count_of(await fleet.ask("user:a", "car:1", Add(n=2))) == 2
            assert fleet.actor_statistics("car:1").active
            await trio.sleep_until(14.5)
            assert fleet.actor_statistics("car:1").active
            await trio.sleep_until(15.5)
            assert not fleet.actor_statistics("car:1").active
            assert fleet.actor_statistics("car:1").mailbox is None
            assert fleet.state_of("car:1").count == 2
            assert count_of(await fleet.ask("user:a", "car:1", Add(n=3))) == 5


async def test_passive_deadline_fires_on_time_without_waking_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(1000):
        async with open_fleet(epoch=EPOCH, idle=10) as fleet:
            fleet.spawn("car:1", COUNTING, counter(1))
            fleet.spawn("car:2", COUNTING, attrs.evolve(counter(2), alarms=(EPOCH + 50,)))
            await fleet.ask("user:a", "car:1", SetAlarm(at=EPOCH + 600))
            await fleet.ask("user:a", "car:1", SetAlarm(at=EPOCH + 300))
            with fleet.subscribe("app:owner1") as app1, fleet.subscribe("app:owner2") as app2:
                assert (await app2.receive()).body == Rang(at=EPOCH + 50)
                assert trio.current_time() == 50
                assert fleet.statistics().active == 0
                assert (await app1.receive()).body == Rang(at=EPOCH + 300)
                assert trio.current_time() == 300
                assert (await app1.receive()).body == Rang(at=EPOCH + 600)
                assert trio.current_time() == 600
                assert fleet.statistics().active == 0
            assert fleet.state_of("car:1").rang == (EPOCH + 300, EPOCH + 600)


async def test_burst_while_going_to_sleep_loses_and_reorders_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(40 * 60):
        async with open_fleet(epoch=EPOCH, idle=10, capacity=4) as fleet:
            # trio runs tasks woken at the same instant in random order: many rounds cover
            # the burst landing before, during and after the passivation
            for round_ in range(40):
                address = f"car:{round_}"
                fleet.spawn(address, COUNTING, counter(round_))
                start = trio.current_time()
                await fleet.tell("app:a", address, Add(n=0))
                await trio.sleep_until(start + 10)  # the instant the actor goes idle
                for n in range(1, 5):  # as many as the capacity: never overloaded
                    fleet.tell_nowait("app:a", address, Add(n=n))
                for n in range(5, 20):  # more than the capacity: waits for room
                    await fleet.tell("app:a", address, Add(n=n))
                    if n % 5 == 0:
                        await trio.sleep(0)
                await trio.sleep(30)
                assert fleet.state_of(address).seen == tuple(range(20))
                assert not fleet.actor_statistics(address).active


async def scenario(idle: float | None) -> tuple[dict[str, Counter], dict[str, list[Any]]]:
    """Timers, cross-car messages and asks at set times; what each app saw and when."""
    cars = 4
    seen: dict[str, list[Any]] = {f"app:owner{n}": [] for n in range(cars)}
    async with open_fleet(epoch=EPOCH, idle=idle) as fleet:
        with trio.fail_after(10_000), contextlib.ExitStack() as apps:
            for n in range(cars):
                alarms = (EPOCH + 40 * (n + 1),)
                fleet.spawn(f"car:{n}", COUNTING, attrs.evolve(counter(n), alarms=alarms))

            async def watch(address: str, channel: trio.MemoryReceiveChannel[Envelope]) -> None:
                async for envelope in channel:
                    seen[address].append((fleet.clock.now() - EPOCH, envelope.sender, envelope.body))

            async with trio.open_nursery() as nursery:
                for address in seen:
                    nursery.start_soon(watch, address, apps.enter_context(fleet.subscribe(address)))
                for t, car, body in [
                    (0, 0, SetAlarm(at=EPOCH + 25)),
                    (3, 1, Add(n=1)),
                    (5, 2, Forward(target="car:3", n=4)),
                    (20, 3, SetAlarm(at=EPOCH + 200)),
                    (26, 0, Add(n=2)),
                    (80, 1, Forward(target="car:0", n=3)),
                    (80, 2, Forward(target="app:owner1", n=9)),
                    (150, 3, Boom()),
                    (170, 3, Add(n=5)),
                ]:
                    await trio.sleep_until(fleet.clock.t0 + t)
                    reply = await fleet.ask("user:a", f"car:{car}", body)
                    seen["app:owner0"].append((t, "reply", reply.body))
                await trio.sleep_until(fleet.clock.t0 + 1000)
                nursery.cancel_scope.cancel()
            states = {f"car:{n}": fleet.state_of(f"car:{n}") for n in range(cars)}
            # what arrives at one app at the same instant from two cars may come in any order
            return states, {address: sorted(got, key=repr) for address, got in seen.items()}


async def test_same_results_with_and_without_passivation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    never = await scenario(None)
    states, seen = never
    assert states["car:0"].seen == (2, 3) and states["car:3"].seen == (4, 5)
    assert states["car:3"].rang == (EPOCH + 160, EPOCH + 200)
    assert (80, "car:2", Add(n=9)) in seen["app:owner1"]
    for idle in (0.0, 2.0, 30.0, 100.0):
        assert await scenario(idle) == never, idle
