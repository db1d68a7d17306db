"""How an approved command reaches the car: the twin decides, the telematics unit carries out.

How this part works: the twin (this model, in the centre) holds every rule; the car's
telematics unit at `unit:<id>` only reports events and carries out what it is told. A
*simulated* car has no unit: the twin carries its commands out at once (demos, tests). For a
linked car, a command that makes the car do something (`ACTUATING`) is first checked against
the rules with the state as it is (a refusal is answered at once, nothing changes); then the
twin records an `Actuation` and sends the same command, under a fresh id of its own, to the
unit. The unit answers `ok` once done, and only then does the twin apply the command (checked
again against the state of that moment) and answer the requester; an `error` from the unit
becomes `actuation_failed` with the unit's words, a unit that stays silent past
`actuation_timeout_s` becomes `timeout`, and a link that drops first becomes `offline`; in
none of these cases does the twin's state change. While the link is not attached the car is
offline: actuating commands are refused with `offline`, reads and centre-side commands
(sharing, keys, contract, settings) are answered from the twin, each value with its report
time. The hub tells the car of its link with `coverage_changed`; nobody else may.
"""

from __future__ import annotations

import time

import attrs

from ..errors import Code, CommandRefused
from ..protocol import (
    ClimateStart,
    ClimateStop,
    CloseWindows,
    CoverageChanged,
    Envelope,
    Error,
    FlashHazards,
    KeyUse,
    Lock,
    Message,
    Ok,
    SetHazards,
    Telematics,
    Unlock,
)
from ._context import Ctx, push_state, refuse
from ._state import Actuation, VehicleState
from .security import snapshot

__all__ = ["ACTUATING", "HUB", "actuation_answered", "coverage_changed", "expire", "forward", "next_deadline", "refuse_offline"]

#: commands the car itself must carry out; everything else is the centre's business
ACTUATING: frozenset[type[Message]] = frozenset(
    {Lock, Unlock, SetHazards, CloseWindows, FlashHazards, ClimateStart, ClimateStop, KeyUse}
)
#: the only sender a car takes `coverage_changed` from
HUB = "hub"
#: how much of a unit's own words reach the requester
_UNIT_TEXT = 200


def next_deadline(state: VehicleState) -> float | None:
    best: float | None = None
    for a in state.actuations:
        if best is None or a.expires_at < best:
            best = a.expires_at
    return best


def refuse_offline(state: VehicleState, body: Message) -> CommandRefused:
    last = _last_report(state)
    return refuse(
        Code.OFFLINE,
        f"{state.address} is offline (its link is not attached; last report {last}): {body.TYPE} was not sent to the car."
        " Reads are answered from the twin; retry once the car is back in coverage",
    )


def forward(state: VehicleState, env: Envelope, cx: Ctx) -> VehicleState:
    """Record an actuation for the approved command in `env` and send it to the unit."""
    actuation = Actuation(
        actuation_id=state.next_actuation_id,
        requester=env.sender,
        request_id=env.id,
        command=env.body,
        expires_at=cx.now + cx.config.actuation_timeout_s,
    )
    cx.send(state.unit, env.body, corr=actuation.actuation_id)
    return attrs.evolve(state, actuations=state.actuations + (actuation,), next_actuation_id=actuation.actuation_id + 1)


def _without(state: VehicleState, actuation: Actuation) -> VehicleState:
    return attrs.evolve(state, actuations=tuple(a for a in state.actuations if a is not actuation))


def _fail(state: VehicleState, actuation: Actuation, code: Code, message: str, cx: Ctx) -> None:
    """Answer the requester; the twin's own actuation (a scheduled start) tells the owner."""
    if actuation.requester == state.address:
        from .climate import skipped  # climate forwards its scheduled starts through this module

        skipped(state, cx, message)
        return
    cx.send(actuation.requester, Error(code=code.value, message=message), corr=actuation.request_id)


def _dropped(state: VehicleState, actuation: Actuation, cx: Ctx) -> None:
    what = actuation.command.TYPE
    _fail(state, actuation, Code.OFFLINE, f"the link of {state.address} dropped before the car confirmed {what}; it may not have run: check with remote_check", cx)


def actuation_answered(state: VehicleState, env: Envelope, cx: Ctx) -> tuple[VehicleState, Envelope | None]:
    """The unit answered an actuation: the state without it, and the original request to apply
    now if the unit carried it out (None: it did not, and the requester has been told)."""
    for a in state.actuations:
        if a.actuation_id == env.id:
            break
    else:
        return state, None  # late or unknown: the requester was answered already
    state = _without(state, a)
    body = env.body
    if isinstance(body, Ok):
        return state, Envelope(a.command, sender=a.requester, target=state.address, id=a.request_id, ts=cx.now)
    assert isinstance(body, Error)
    if body.code == Code.OFFLINE.value:
        _dropped(state, a, cx)
    else:
        words = body.message[:_UNIT_TEXT]
        _fail(state, a, Code.ACTUATION_FAILED, f"the car could not carry out {a.command.TYPE}: {words}", cx)
    return state, None


def expire(state: VehicleState, due: float, cx: Ctx) -> VehicleState:
    """Answer `timeout` for every actuation whose time ran out at `due`."""
    for a in state.actuations:
        if a.expires_at <= due:
            state = _without(state, a)
            _fail(state, a, Code.TIMEOUT, f"the car did not confirm {a.command.TYPE} within {cx.config.actuation_timeout_s:g} s; it may or may not have run: check with remote_check", cx)
    return state


def coverage_changed(state: VehicleState, body: CoverageChanged, cx: Ctx) -> VehicleState:
    """The hub says the link attached or dropped; a simulated car has no link to speak of."""
    if state.telematics is Telematics.SIMULATED:
        return state
    if body.online:
        state = attrs.evolve(state, telematics=Telematics.ONLINE)
    else:
        for a in state.actuations:
            _dropped(state, a, cx)
        state = attrs.evolve(state, telematics=Telematics.OFFLINE, actuations=())
    if state.contract.owner is not None:
        push_state(state, cx, snapshot(state))  # the apps see the car come and go live
    return state


def _last_report(state: VehicleState) -> str:
    """The latest time the car reported any value of its status, in UTC ("never" if none)."""
    status = state.status
    times = [
        getattr(status, name).at
        for name in ("locked", "alarm_armed", "hazards", "power", "position", "level_pct", "range_km", "odometer_km")
    ]
    times.extend(r.at for r in status.doors_open + status.windows_pct)
    known = [t for t in times if t is not None]
    if not known:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(known)))
