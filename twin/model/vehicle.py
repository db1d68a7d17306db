"""The vehicle model: `step(state, envelope, now) -> (state, outbox)`, with no I/O inside.

Rule 1: a message is handled by exactly one handler from the feature modules (security,
climate, sharing, keys, drivers, contract, emergency, software, wifi, power). Before any
message, deadlines due at or before `now` fire in time order, each at its own time, so a car
whose task slept and a car that stayed awake produce the same outbox. A handler refuses by
raising `CommandRefused`: `step` then returns the state it was given and one `Error` reply,
dropping anything the handler meant to send. Events are accepted only from the car itself
(its telematics unit `unit:<id>`, or `car:<id>` for a car simulated in process). On a linked
car, commands that make the car act go through its unit first (`telematics`). Replies coming
back to the car settle an actuation or a pending key or share offer, and are never answered.
"""

from __future__ import annotations

from ..errors import Code, CommandRefused
from ..protocol import ClimateStart, CoverageChanged, Done, Envelope, Error, Ok, Telematics
from . import climate, contract, drivers, emergency, keys, power, security, sharing, software, telematics, wifi  # noqa: F401  (register handlers)
from ._context import Ctx
from ._dispatch import HANDLERS
from ._state import VehicleState
from .config import DEFAULT_CONFIG, ModelConfig

__all__ = ["VehicleModel", "VEHICLE"]

_MAX_FIRINGS = 10_000


class VehicleModel:
    """The rules of one car, as a behaviour the actor runtime drives."""

    __slots__ = ("config",)

    def __init__(self, config: ModelConfig = DEFAULT_CONFIG) -> None:
        self.config = config

    def next_deadline(self, state: VehicleState) -> float | None:
        """The earliest time something is due in `state`, or None."""
        best = climate.next_deadline(state.climate)
        for t in (state.security.forgot_due_at, state.software.stage_ends_at):
            if t is not None and (best is None or t < best):
                best = t
        for p in state.pending:
            if best is None or p.expires_at < best:
                best = p.expires_at
        if state.actuations:
            t = telematics.next_deadline(state)
            if t is not None and (best is None or t < best):
                best = t
        return best

    def advance(self, state: VehicleState, now: float) -> tuple[VehicleState, list[Envelope]]:
        """Fire every deadline due at or before `now`, each at its own time."""
        outbox: list[Envelope] = []
        for _ in range(_MAX_FIRINGS):
            due = self.next_deadline(state)
            if due is None or due > now:
                return state, outbox
            cx = Ctx(state.address, None, due, self.config, outbox)
            state = climate.advance(state, cx)
            if state.security.forgot_due_at is not None and state.security.forgot_due_at <= due:
                state = security.forgot_check(state, cx)
            state = software.advance(state, cx)
            for p in state.pending:
                if p.expires_at <= due:
                    state = _settle(state, p, False, Code.TIMEOUT.value, cx, "their phone did not answer in time")
            if state.actuations:
                state = telematics.expire(state, due, cx)
        raise RuntimeError(f"{state.address}: deadlines keep coming due at {now}; a rule re-arms a timer in the past")

    def step(self, state: VehicleState, env: Envelope, now: float) -> tuple[VehicleState, list[Envelope]]:
        """Handle one message at `now`: fire due deadlines, then apply the message's rule."""
        state, outbox = self.advance(state, now)
        body = env.body
        if body.KIND == "reply":
            cx = Ctx(state.address, env, now, self.config, outbox)
            if env.sender != state.unit:
                return _reply_arrived(state, env, cx), outbox
            state, confirmed = telematics.actuation_answered(state, env, cx)
            if confirmed is None:
                return state, outbox
            if confirmed.sender == state.address and type(confirmed.body) is ClimateStart:  # the twin's own: a schedule
                return climate.started_by_schedule(state, confirmed.body, cx), outbox
            return self._apply(state, confirmed, now, outbox)
        if type(body) is CoverageChanged:
            if env.sender == telematics.HUB:
                state = telematics.coverage_changed(state, body, Ctx(state.address, env, now, self.config, outbox))
            return state, outbox  # from anyone else: a notice, never answered
        handler = HANDLERS.get(type(body))
        if handler is None:
            outbox.append(env.reply(Error(code=Code.UNKNOWN_TYPE.value, message=f"a car does not handle {body.TYPE!r} messages"), now))
            return state, outbox
        if body.KIND == "event" and env.sender != state.unit and env.sender != state.address:
            outbox.append(env.reply(Error(code=Code.NOT_AUTHORIZED.value, message=f"only {state.address}'s own telematics unit may report {body.TYPE!r}"), now))
            return state, outbox
        if state.telematics is not Telematics.SIMULATED and type(body) in telematics.ACTUATING:
            return self._actuate(state, env, now, outbox)
        return self._apply(state, env, now, outbox)

    def _apply(self, state: VehicleState, env: Envelope, now: float, outbox: list[Envelope]) -> tuple[VehicleState, list[Envelope]]:
        """Run the message's handler: the new state and its reply, or the old state and one `Error`."""
        return self._run(state, env, now, outbox)[0], outbox

    def _run(self, state: VehicleState, env: Envelope, now: float, outbox: list[Envelope]) -> tuple[VehicleState, bool]:
        """`_apply`, also saying whether the rules refused the message."""
        body = env.body
        mark = len(outbox)
        cx = Ctx(state.address, env, now, self.config, outbox)
        try:
            new, result = HANDLERS[type(body)](state, body, cx)
        except CommandRefused as refused:
            del outbox[mark:]
            outbox.append(env.reply(Error(code=refused.code.value, message=refused.message), now))
            return state, True
        if result is not None:
            outbox.append(env.reply(Ok(result=result), now))  # type: ignore[arg-type]  # handlers return members of AnyResult
        elif env.id and body.KIND == "event":  # a unit that numbers an event hears it was taken
            outbox.append(env.reply(Ok(result=Done(detail=f"{body.TYPE} recorded")), now))
        return new, False

    def _actuate(self, state: VehicleState, env: Envelope, now: float, outbox: list[Envelope]) -> tuple[VehicleState, list[Envelope]]:
        """A linked car's actuating command: checked now, carried out once its unit confirms."""
        if state.telematics is Telematics.OFFLINE:
            offline = telematics.refuse_offline(state, env.body)
            outbox.append(env.reply(Error(code=offline.code.value, message=offline.message), now))
            return state, outbox
        mark = len(outbox)
        _, refused = self._run(state, env, now, outbox)
        if refused:  # its one reply stands, nothing is sent to the car
            return state, outbox
        del outbox[mark:]  # what the command would send is sent once the car has done it
        return telematics.forward(state, env, Ctx(state.address, env, now, self.config, outbox)), outbox


def _settle(state: VehicleState, pending, ok: bool, reason: str, cx: Ctx, detail: str = "") -> VehicleState:  # type: ignore[no-untyped-def]
    if pending.kind == "key":
        return keys.offer_settled(state, pending, ok, reason, cx, detail)
    return sharing.offer_settled(state, pending, ok, reason, cx, detail)


def _reply_arrived(state: VehicleState, env: Envelope, cx: Ctx) -> VehicleState:
    """A phone answered a key or share offer; anything else coming back is dropped."""
    account = cx.account
    for p in state.pending:
        if p.account == account and p.request_id == env.id:
            body = env.body
            ok = isinstance(body, Ok)
            reason = "" if ok else body.code  # type: ignore[attr-defined]
            detail = "" if ok else body.message  # type: ignore[attr-defined]
            return _settle(state, p, ok, reason, cx, detail)
    return state


VEHICLE = VehicleModel()
