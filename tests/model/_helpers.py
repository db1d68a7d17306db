"""Small helpers for driving the pure vehicle, person and operator models in memory.

Every test builds a car with `car(...)`, sends it messages with `send` (a person's command)
or `report` (an event from the car itself), and reads the outbox with `only_reply`,
`bodies_to` and `alerts_in`. `refused` checks the refusal rule once for everyone: the very
same state comes back and the outbox holds exactly one `Error` reply to the sender.
"""

from __future__ import annotations

from typing import Any, Iterable

from twin.errors import Code
from twin.model import USER, VEHICLE, VehicleState, new_vehicle
from twin.protocol import (
    ALL_SHARED_FUNCTIONS,
    Alert,
    AlertType,
    Channel,
    Done,
    Envelope,
    Error,
    IgnitionChanged,
    KeyIssue,
    Message,
    Ok,
    Plan,
    Position,
    Power,
    SharedFunction,
    ShareAccept,
    ShareInvite,
)

#: 2026-01-01T00:00:00Z, a Thursday; 09:00 in Japan, the guide's time zone.
EPOCH = 1_767_225_600.0
OWNER = "alice"
CAR_ID = "c1"
CAR = "car:" + CAR_ID
HOME = Position(35.6812, 139.7671)
AWAY = Position(34.7025, 135.4959)


def user(account: str) -> str:
    return "user:" + account


def car(**kw: Any) -> VehicleState:
    """A car owned by alice on Standard with the navi package, unless told otherwise."""
    kw.setdefault("owner", OWNER)
    return new_vehicle(CAR_ID, **kw)


def lite(**kw: Any) -> VehicleState:
    return car(plan=Plan.LITE, **kw)


def send(
    state: VehicleState,
    body: Message,
    sender: str = OWNER,
    now: float = EPOCH,
    id: int = 1,
) -> tuple[VehicleState, list[Envelope]]:
    """One message to the car; `sender` is an account (made `user:<account>`) or a full address."""
    address = sender if ":" in sender or sender == "operator" else user(sender)
    return VEHICLE.step(state, Envelope(body, sender=address, target=state.address, id=id, ts=now), now)


def report(state: VehicleState, body: Message, now: float = EPOCH) -> tuple[VehicleState, list[Envelope]]:
    """An event from the car's own telematics module."""
    return VEHICLE.step(state, Envelope(body, sender=state.address, target=state.address, id=0, ts=now), now)


def replies(outbox: Iterable[Envelope]) -> list[Envelope]:
    return [e for e in outbox if e.body.KIND == "reply"]


def only_reply(outbox: list[Envelope], to: str | None = None, id: int | None = None) -> Message:
    """The body of the single reply in `outbox` (to `to`, correlated with `id`, when given)."""
    found = [
        e for e in replies(outbox)
        if (to is None or e.target == (to if ":" in to else user(to))) and (id is None or e.id == id)
    ]
    assert len(found) == 1, f"expected one reply, got {found}"
    return found[0].body


def ok(
    state: VehicleState, body: Message, sender: str = OWNER, now: float = EPOCH, id: int = 1
) -> tuple[VehicleState, Any, list[Envelope]]:
    """Send a command that must succeed: the new state, the `Ok` result, the whole outbox."""
    new, out = send(state, body, sender, now, id)
    reply = only_reply(out, sender, id)
    assert isinstance(reply, Ok), f"{body!r} from {sender} was refused: {reply!r}"
    return new, reply.result, out


def refused(
    state: VehicleState, body: Message, code: Code, sender: str = OWNER, now: float = EPOCH, id: int = 7
) -> str:
    """Send a command (or an event, with sender=the car) that must be refused; return the message.

    The refusal rule, checked every time: the very same state object comes back, and the
    outbox is exactly one `Error` reply, correlated, to the sender and nobody else.
    """
    address = sender if ":" in sender or sender == "operator" else user(sender)
    due = VEHICLE.next_deadline(state)
    assert due is None or due > now, f"a deadline at {due} fires before this refusal at {now}; `advance` first"
    new, out = send(state, body, sender, now, id)
    assert new is state, f"{body!r} from {sender} changed the state although refused"
    assert len(out) == 1, f"a refused {body.TYPE!r} sent more than its reply: {out}"
    env = out[0]
    assert isinstance(env.body, Error), f"{body!r} from {sender} was not refused: {env.body!r}"
    assert (env.target, env.sender, env.id) == (address, state.address, id)
    assert env.body.code == code.value, f"{body.TYPE!r}: expected {code.value!r}, got {env.body!r}"
    assert env.body.message
    return env.body.message


def rejected_event(state: VehicleState, body: Message, code: Code, now: float = EPOCH) -> str:
    return refused(state, body, code, sender=state.address, now=now, id=0)


def bodies_to(outbox: Iterable[Envelope], target: str, kind: type[Message] | None = None) -> list[Any]:
    address = target if ":" in target or target == "operator" else user(target)
    return [e.body for e in outbox if e.target == address and (kind is None or isinstance(e.body, kind))]


def alerts_in(outbox: Iterable[Envelope]) -> list[tuple[str, AlertType, Channel]]:
    """(account, alert type, channel) of every alert sent, in order (duplicates kept)."""
    return [(e.target.removeprefix("user:"), e.body.alert, e.body.channel) for e in outbox if isinstance(e.body, Alert)]


def both_channels(account: str, kind: AlertType) -> list[tuple[str, AlertType, Channel]]:
    return [(account, kind, Channel.EMAIL), (account, kind, Channel.PUSH)]


def ignition(state: VehicleState, power: Power, now: float) -> tuple[VehicleState, list[Envelope]]:
    return report(state, IgnitionChanged(power=power), now)


def advance(state: VehicleState, now: float) -> tuple[VehicleState, list[Envelope]]:
    return VEHICLE.advance(state, now)


def deliver_to_user(user_state: Any, env: Envelope, now: float) -> tuple[Any, Envelope]:
    """Feed an envelope from a car to the person's model; return their state and their reply."""
    new, out = USER.step(user_state, env, now)
    answers = [e for e in out if e.body.KIND == "reply"]
    assert len(answers) == 1, out
    return new, answers[0]


def with_sharee(
    state: VehicleState,
    account: str,
    functions: Iterable[SharedFunction] = ALL_SHARED_FUNCTIONS,
    now: float = EPOCH,
    id: int = 50,
) -> VehicleState:
    """The whole sharing flow, settled: invite, the phone's Ok, and the invitee's acceptance."""
    state, out = send(state, ShareInvite(account=account, functions=frozenset(functions)), OWNER, now, id)
    (offer,) = [e for e in out if e.target == user(account)]
    state, out = VEHICLE.step(state, offer.reply(Ok(result=_done()), now), now)
    assert isinstance(only_reply(out, OWNER), Ok)
    state, _, _ = ok(state, ShareAccept(), account, now)
    return state


def with_key(state: VehicleState, account: str, now: float = EPOCH, id: int = 60) -> VehicleState:
    """Issue a digital key that the holder's phone takes at once."""
    state, out = send(state, KeyIssue(account=account), OWNER, now, id)
    (offer,) = [e for e in out if e.target == user(account)]
    state, out = VEHICLE.step(state, offer.reply(Ok(result=_done()), now), now)
    assert isinstance(only_reply(out, OWNER), Ok)
    return state


def _done() -> Done:
    return Done(detail="stored")


__all__ = [
    "AWAY", "CAR", "CAR_ID", "EPOCH", "HOME", "OWNER", "USER", "VEHICLE",
    "advance", "alerts_in", "bodies_to", "both_channels", "car", "deliver_to_user", "ignition",
    "lite", "ok", "only_reply", "refused", "rejected_event", "replies", "report", "send", "user",
    "with_key", "with_sharee",
]
