"""A sleeping car behaves like an awake car.

The actor runtime lets a car whose timers are far off sleep (or be passivated) and wakes it
only for a message; `VEHICLE.step` then fires every deadline that came due in the meantime, each
at its own time. So the same steps must give the same envelopes, in the same order, whether
the car was woken at exactly each deadline (`punctual`), only by its messages (`asleep`), or
at arbitrary moments in between (`restless`, an actor with a jittery clock).

Rules for these tests: synchronous and pure (the models only, no trio); steps come from
`twin.scenarios.fleet_steps`; the people's phones are the real `USER` model, answering key and
share offers at once, except for phones that are off (their offers time out) and phones
already holding keys for other cars (they refuse a fifth).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import attrs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twin.model import USER, VEHICLE, UserState, VehicleState, new_user
from twin.protocol import Envelope, KeyOffer, ShareOffer
from twin.scenarios import EPOCH, FRIENDS, OWNER, STRANGER, Step, fleet_steps, vehicles

Mode = Literal["punctual", "asleep", "restless"]
PEOPLE = (OWNER, *FRIENDS, STRANGER)


@attrs.define
class World:
    """One car and the phones of the people around it, delivering instantly."""

    car: VehicleState
    phones: dict[str, UserState]
    offline: frozenset[str]
    trace: list[Envelope] = attrs.field(factory=list)
    fired: int = 0  # deadlines fired by a punctual wake-up

    def run(self, outbox: list[Envelope]) -> None:
        """Record what the car sent; let the phones answer offers, and the car take the answers."""
        queue = deque(outbox)
        while queue:
            env = queue.popleft()
            self.trace.append(env)
            account = env.target.removeprefix("user:")
            if not isinstance(env.body, (KeyOffer, ShareOffer)) or account in self.offline or account not in self.phones:
                continue
            self.phones[account], answers = USER.step(self.phones[account], env, env.ts)
            for answer in answers:
                if answer.target == self.car.address:
                    self.car, more = VEHICLE.step(self.car, answer, env.ts)
                    queue.extend(more)

    def wake(self, at: float) -> None:
        self.car, out = VEHICLE.advance(self.car, at)
        self.run(out)


def live(car: VehicleState, steps: list[Step], mode: Mode, phones: dict[str, UserState], offline: frozenset[str], jitter: list[float]) -> World:
    world = World(car, dict(phones), offline)
    now = EPOCH
    for i, step in enumerate(steps, 1):
        previous, now = now, now + step.dt
        if mode == "punctual":
            while (due := VEHICLE.next_deadline(world.car)) is not None and due <= now:
                world.wake(due)
                world.fired += 1
        elif mode == "restless":
            for fraction in sorted(jitter):
                world.wake(previous + fraction * step.dt)
        world.car, out = VEHICLE.step(world.car, Envelope(step.body, sender=step.sender, target=world.car.address, id=i, ts=now), now)
        world.run(out)
    end = now + 3 * 86400.0
    if mode == "punctual":
        while (due := VEHICLE.next_deadline(world.car)) is not None and due <= end:
            world.wake(due)
    world.wake(end)
    return world


@st.composite
def phones(draw: st.DrawFn) -> dict[str, UserState]:
    """Each person's phone, some already holding keys for other cars (4 is the most a phone holds)."""
    out = {}
    for account in PEOPLE:
        held = draw(st.integers(0, 4)) if draw(st.integers(0, 3)) == 0 else 0
        out[account] = attrs.evolve(new_user(account), key_cars=frozenset(f"car:other{n}" for n in range(held)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    car=vehicles(),
    steps=fleet_steps(min_size=3, max_size=25),
    phones=phones(),
    offline=st.frozensets(st.sampled_from(PEOPLE), max_size=2),
    jitter=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
)
def test_a_sleeping_car_behaves_like_an_awake_car(
    car: VehicleState, steps: list[Step], phones: dict[str, UserState], offline: frozenset[str], jitter: list[float]
) -> None:
    punctual = live(car, steps, "punctual", phones, offline, jitter)
    event("a deadline came due between steps" if punctual.fired else "no deadline between steps")
    event("a phone answered an offer" if any(isinstance(e.body, (KeyOffer, ShareOffer)) for e in punctual.trace) else "no offer")
    asleep = live(car, steps, "asleep", phones, offline, jitter)
    restless = live(car, steps, "restless", phones, offline, jitter)
    assert asleep.trace == punctual.trace
    assert restless.trace == punctual.trace
    assert asleep.car == punctual.car == restless.car
    assert asleep.phones == punctual.phones == restless.phones


def test_the_worlds_do_something() -> None:
    """Guard against a vacuous property: a plain sequence offers a key, fires timers, answers."""
    from twin.protocol import ClimateStart, IgnitionChanged, KeyIssue, Power

    from twin.model import new_vehicle

    start = new_vehicle("c1", owner=OWNER)
    steps = [
        Step("user:" + OWNER, KeyIssue(account="ben"), 0.0),
        Step("user:" + OWNER, KeyIssue(account="cho"), 5.0),
        Step("user:" + OWNER, ClimateStart(duration_min=10), 5.0),
        Step("car:c1", IgnitionChanged(power=Power.ACC), 3600.0),
        Step("car:c1", IgnitionChanged(power=Power.OFF), 60.0),
    ]
    world = live(start, steps, "asleep", {p: new_user(p) for p in PEOPLE}, frozenset({"cho"}), [0.5])
    types = [e.type for e in world.trace]
    assert types.count("key_offer") == 2
    assert "ok" in types and "error" in types  # ben's phone took its key; cho's offer timed out
    assert any(e.type == "ok" and e.body.result.TYPE == "climate" for e in world.trace)  # type: ignore[attr-defined]
    assert world.car.climate.used_s == 600.0
    awake = live(start, steps, "punctual", {p: new_user(p) for p in PEOPLE}, frozenset({"cho"}), [0.5])
    assert awake.trace == world.trace
