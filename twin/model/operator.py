"""The operator desk: emergency calls, stolen-vehicle tracking and guard dispatch (guide p.22-28).

How this part works: cars hand cases to the desk (the car has already checked the owner's
right and the alarm / police-report condition). A call with no answer from the cabin
dispatches rescue, and a severe crash a doctor helicopter. A guard reaches the car, checks it
and reports; its first hour is free, and when the hour is up the desk asks the owner whether
to extend. "Yes" buys another hour (asked again at its end); "no" ends the guard. When the
car's contract is cancelled (the hand-over's step 2) the car tells the desk to close its
cases: tracking and any guard for that car end at once, the former owner hears of it once,
and nothing in the desk's state names them for that car any more (the log never names
people; emergency calls name the car only and stay, as the centre's record of the call).
"""

from __future__ import annotations

from typing import Mapping

import attrs

from ..errors import Code
from ..protocol import (
    CasesClose,
    Done,
    EmergencyCall,
    Envelope,
    Error,
    GuardDispatch,
    GuardExtensionAnswer,
    Ok,
    OperatorNotice,
    TrackingStart,
)
from .config import DEFAULT_CONFIG, ModelConfig

__all__ = ["Guard", "OPERATOR", "OperatorModel", "OperatorState", "new_operator"]


@attrs.frozen
class Guard:
    car: str
    owner: str
    dispatched_at: float
    paid_until: float  # the free hour, then each extension
    arrives_at: float | None  # None once the guard has reported
    prompted: bool = False


@attrs.frozen
class OperatorState:
    calls: tuple[EmergencyCall, ...] = ()
    tracking: Mapping[str, str] = attrs.field(factory=dict)  # car -> owner
    guards: Mapping[str, Guard] = attrs.field(factory=dict)  # car -> active guard
    log: tuple[str, ...] = ()


def new_operator() -> OperatorState:
    return OperatorState()


class OperatorModel:
    """The desk's rules as a behaviour for the actor runtime."""

    __slots__ = ("config",)
    address = "operator"

    def __init__(self, config: ModelConfig = DEFAULT_CONFIG) -> None:
        self.config = config

    def next_deadline(self, state: OperatorState) -> float | None:
        times = [g.arrives_at for g in state.guards.values() if g.arrives_at is not None]
        times += [g.paid_until for g in state.guards.values() if not g.prompted]
        return min(times) if times else None

    def advance(self, state: OperatorState, now: float) -> tuple[OperatorState, list[Envelope]]:
        out: list[Envelope] = []
        while (due := self.next_deadline(state)) is not None and due <= now:
            guards = dict(state.guards)
            log = list(state.log)
            for car, g in sorted(state.guards.items()):
                if g.arrives_at is not None and g.arrives_at <= due:
                    g = attrs.evolve(g, arrives_at=None)
                    out.append(_notice(g.owner, car, "guard_report", "the guard checked the car and reported", due))
                    log.append(f"{due:.0f} guard checked {car}")
                if not g.prompted and g.paid_until <= due:
                    g = attrs.evolve(g, prompted=True)
                    out.append(_notice(g.owner, car, "guard_extension_prompt", "the guard's paid time is up: extend by one hour?", due))
                    log.append(f"{due:.0f} asked the owner to extend the guard at {car}")
                guards[car] = g
            state = attrs.evolve(state, guards=guards, log=tuple(log))
        return state, out

    def step(self, state: OperatorState, env: Envelope, now: float) -> tuple[OperatorState, list[Envelope]]:
        state, out = self.advance(state, now)
        body = env.body
        sender_is_car = env.sender.startswith("car:")
        match body:
            case EmergencyCall() if sender_is_car and body.car == env.sender:
                state = attrs.evolve(state, calls=state.calls + (body,), log=state.log + (f"{now:.0f} emergency call from {body.car} ({body.cause})",))
                if not body.cabin_answers:
                    severe = body.delta_v_kmh >= self.config.helicopter_kmh
                    what = "rescue and a doctor helicopter" if severe else "rescue"
                    state = attrs.evolve(state, log=state.log + (f"{now:.0f} dispatched {what} to {body.car}",))
            case TrackingStart() if sender_is_car and body.car == env.sender:
                state = attrs.evolve(state, tracking={**state.tracking, body.car: body.owner}, log=state.log + (f"{now:.0f} tracking {body.car}",))
                out.append(_notice(body.owner, body.car, "tracking_started", "stolen-vehicle tracking has started", now))
            case GuardDispatch() if sender_is_car and body.car == env.sender:
                if body.car not in state.guards:
                    guard = Guard(body.car, body.owner, now, now + self.config.guard_free_s, now + self.config.guard_arrival_s)
                    state = attrs.evolve(state, guards={**state.guards, body.car: guard}, log=state.log + (f"{now:.0f} guard dispatched to {body.car}",))
                out.append(_notice(body.owner, body.car, "guard_dispatched", "a guard is on the way; the first hour is free", now))
            case CasesClose() if sender_is_car and body.car == env.sender:
                state, closed = _close_cases(state, body.car, now)
                out.extend(closed)
            case GuardExtensionAnswer():
                current = state.guards.get(body.car)
                if current is None or env.sender != "user:" + current.owner:
                    out.append(env.reply(Error(code=Code.NOT_FOUND.value, message=f"you have no guard at {body.car}"), now))
                elif not current.prompted:
                    out.append(env.reply(Error(code=Code.CONFLICT.value, message="the guard's paid time is not up yet; answer when asked"), now))
                elif body.extend:
                    g = attrs.evolve(current, paid_until=current.paid_until + self.config.guard_extension_s, prompted=False)
                    state = attrs.evolve(state, guards={**state.guards, body.car: g}, log=state.log + (f"{now:.0f} guard at {body.car} extended",))
                    out.append(env.reply(Ok(result=Done(detail="the guard stays one more hour")), now))
                else:
                    guards = {k: v for k, v in state.guards.items() if k != body.car}
                    state = attrs.evolve(state, guards=guards, log=state.log + (f"{now:.0f} guard at {body.car} ended",))
                    out.append(env.reply(Ok(result=Done(detail="the guard has ended")), now))
            case _ if body.KIND == "reply":
                pass
            case _:
                out.append(env.reply(Error(code=Code.NOT_AUTHORIZED.value if body.KIND == "notice" else Code.UNKNOWN_TYPE.value, message=f"the operator desk does not take {body.TYPE!r} from {env.sender}"), now))
        return state, out


def _close_cases(state: OperatorState, car: str, now: float) -> tuple[OperatorState, list[Envelope]]:
    """End the tracking and guard at `car` (its contract was cancelled); tell each person who
    held one of them, once. Nothing open: the state as it was and nothing to send."""
    ended: dict[str, list[str]] = {}  # owner -> what of theirs ends
    owner = state.tracking.get(car)
    if owner is not None:
        ended.setdefault(owner, []).append("stolen-vehicle tracking")
    guard = state.guards.get(car)
    if guard is not None:
        ended.setdefault(guard.owner, []).append("the guard")
    if not ended:
        return state, []
    what = " and ".join(dict.fromkeys(item for items in ended.values() for item in items))
    state = attrs.evolve(
        state,
        tracking={k: v for k, v in state.tracking.items() if k != car},
        guards={k: v for k, v in state.guards.items() if k != car},
        log=state.log + (f"{now:.0f} closed {what} at {car}: its contract was cancelled",),
    )
    out = [
        _notice(who, car, "cases_closed", f"the car's contract was cancelled, so {' and '.join(items)} ended", now)
        for who, items in ended.items()
    ]
    return state, out


def _notice(owner: str, car: str, kind: str, text: str, at: float) -> Envelope:
    return Envelope(OperatorNotice(car=car, kind=kind, text=text, at=at), sender="operator", target="user:" + owner, ts=at)


OPERATOR = OperatorModel()
