"""A small in-memory world of the real models, so the store is tested with the states the rules
produce rather than hand-built values.

`World` joins the pure models (cars, people, the operator desk) in memory, like h11's
`ConnectionPair`: it routes every envelope an actor sends to the actor it names.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from twin.model import OPERATOR, USER, VEHICLE, new_operator, new_user, new_vehicle
from twin.protocol import (
    AirbagDeployed,
    AlarmSounding,
    AlertSettingsSet,
    AlertType,
    Channel,
    ChargingChanged,
    ClimateScheduleAdd,
    DriverProfile,
    DriverRegister,
    Envelope,
    GuardRequest,
    KeyIssue,
    Message,
    Ok,
    Plan,
    Position,
    Powertrain,
    ShareAccept,
    ShareInvite,
    SharedFunction,
)

EPOCH = 1_764_154_800.0  # 2026-11-26 20:00 JST


class World:
    """Actors by address, each a (model, state); `ask` runs a command to quiescence."""

    def __init__(self) -> None:
        self.actors: dict[str, tuple[Any, Any]] = {}
        self.elsewhere: list[Envelope] = []  # to apps or to addresses with no actor
        self._next_id = 0

    def spawn(self, address: str, model: Any, state: Any) -> None:
        self.actors[address] = (model, state)

    def state(self, address: str) -> Any:
        return self.actors[address][1]

    def ask(self, sender: str, target: str, body: Message, now: float) -> Message:
        """Send `body` from `sender` (no actor of its own answers for it) and return the reply."""
        self._next_id += 1
        request = Envelope(body, sender=sender, target=target, id=self._next_id, ts=now)
        replies = [e for e in self._run(request, now, (sender, self._next_id)) if e.body.KIND == "reply"]
        assert len(replies) == 1, replies
        return replies[0].body

    def tell(self, target: str, body: Message, now: float) -> None:
        """An event the car reports about itself."""
        self._run(Envelope(body, sender=target, target=target, ts=now), now, None)

    def _run(self, first: Envelope, now: float, asker: tuple[str, int] | None) -> list[Envelope]:
        caught: list[Envelope] = []
        queue = deque([first])
        while queue:
            env = queue.popleft()
            if asker is not None and (env.target, env.id) == asker and env is not first:
                caught.append(env)
            elif env.target in self.actors:
                model, state = self.actors[env.target]
                state, out = model.step(state, env, now)
                self.actors[env.target] = (model, state)
                queue.extend(out)
            else:
                self.elsewhere.append(env)
        return caught


def lived_in_world() -> World:
    """A fleet after an evening of real commands and events touching every part of the state."""
    w = World()
    w.spawn("operator", OPERATOR, new_operator())
    for account in ("alice", "bob", "carol", "erin"):
        w.spawn("user:" + account, USER, new_user(account))
    home = Position(35.6586, 139.7454)
    w.spawn("car:1", VEHICLE, new_vehicle("1", owner="alice", plan=Plan.STANDARD, position=home, name="Alice's RX", registration="品川 300 あ 12-34"))
    w.spawn("car:2", VEHICLE, new_vehicle("2", owner="alice", plan=Plan.LITE, powertrain=Powertrain.PHEV, position=home))
    w.spawn("car:3", VEHICLE, new_vehicle("3"))  # unlinked: every part is a shared default

    t = EPOCH
    share = frozenset({SharedFunction.REMOTE_CHECK, SharedFunction.CAR_FINDER})
    steps: list[tuple[str, str, Message]] = [
        ("alice", "car:1", ShareInvite(account="bob", functions=share)),
        ("bob", "car:1", ShareAccept()),
        ("alice", "car:1", ShareInvite(account="erin")),  # not accepted: an open offer in erin's state
        ("alice", "car:1", KeyIssue(account="carol")),
        ("alice", "car:1", DriverRegister(account="alice", name="Alice", profile=DriverProfile(search_history=("home", "Shinagawa clinic 7F"), seat_position=3, keyboard="qwerty"))),
        ("alice", "car:1", AlertSettingsSet(alert=AlertType.START, channel=Channel.PUSH, enabled=True)),
        ("bob", "car:1", AlertSettingsSet(alert=AlertType.ALARM, channel=Channel.EMAIL, enabled=False)),
        ("alice", "car:1", ClimateScheduleAdd(weekdays=(0, 4), at="07:30", duration_min=20)),
    ]
    for who, car, body in steps:
        t += 60
        reply = w.ask("user:" + who, car, body, t)
        assert isinstance(reply, Ok), (body, reply)
    t += 60
    w.tell("car:1", AlarmSounding(cause="door forced"), t)
    t += 60
    assert isinstance(w.ask("user:alice", "car:1", GuardRequest(), t), Ok)
    t += 60
    w.tell("car:1", AirbagDeployed(delta_v_kmh=62.5), t)
    t += 60
    w.tell("car:2", ChargingChanged(charging=True), t)
    t += 60
    # an invitation to an account with no actor stays pending in the car
    w._run(Envelope(ShareInvite(account="dave"), sender="user:alice", target="car:1", id=999, ts=t), t, None)
    return w

def walk(a: object, b: object, path: str = "") -> None:
    """Equal values of exactly the same types, all the way down (tuple stays tuple, ...)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if attrs.has(type(a)):
        for f in attrs.fields(type(a)):
            walk(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path  # type: ignore[attr-defined]
        for k in a:
            walk(a[k], b[k], f"{path}[{k!r}]")  # type: ignore[index]
    elif isinstance(a, tuple):
        assert len(a) == len(b), path  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b)):  # type: ignore[call-overload]
            walk(x, y, f"{path}[{i}]")
    elif isinstance(a, frozenset):
        assert a == b, path
        for x in a:
            (y,) = [y for y in b if y == x]  # type: ignore[attr-defined]
            walk(x, y, f"{path}{{{x!r}}}")
    else:
        assert a == b, path
