"""Emergency calls and the operator desk's services, seen from the car (guide p.22, p.24-28).

How this part works: an airbag, a strong impact or the roof button places an emergency call to
the operator with the position, but only once the unit passed its maintenance check after
sign-up. Tracking and guard dispatch are requested by the owner and allowed only after the
alarm sounded (within the eligibility window) or a police report was filed; the car hands the
case to the operator, whose own model runs the guard's hour and the extension prompt. When the
contract is cancelled the car tells the desk to close its cases (`close_cases`), so no
tracking or guard runs on in the former owner's name.
Dashcam clips reach the owner and family when the option is on.
"""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import (
    AirbagDeployed,
    AlertType,
    CasesClose,
    ClipTrigger,
    DashcamClip,
    Done,
    EmergencyButton,
    EmergencyCall,
    EmergencyUnitCheck,
    GuardDispatch,
    GuardRequest,
    Impact,
    PoliceReport,
    Power,
    Tracking,
    TrackingRequest,
    TrackingStart,
)
from ._context import Ctx, Service, alert, refuse, require_owner, require_service
from ._dispatch import on
from ._state import VehicleState

OPERATOR = "operator"


def _call(state: VehicleState, cx: Ctx, cause: str, delta_v: float, cabin_answers: bool) -> None:
    require_service(state, Service.EMERGENCY)
    if not state.contract.emergency_checked:
        raise refuse(Code.EMERGENCY_UNIT_UNCHECKED, "emergency calls do not work until the unit passes its maintenance check")
    cx.send(
        OPERATOR,
        EmergencyCall(car=state.address, cause=cause, at=cx.now, position=state.status.position.value, delta_v_kmh=delta_v, cabin_answers=cabin_answers),
    )


@on(AirbagDeployed)
def _airbag(state: VehicleState, msg: AirbagDeployed, cx: Ctx):  # type: ignore[no-untyped-def]
    _call(state, cx, "airbag", msg.delta_v_kmh, msg.cabin_answers)
    return state, None


@on(Impact)
def _impact(state: VehicleState, msg: Impact, cx: Ctx):  # type: ignore[no-untyped-def]
    if msg.delta_v_kmh < 0:
        raise refuse(Code.INVALID_VALUE, "delta-v cannot be negative")
    if msg.delta_v_kmh >= cx.config.strong_impact_kmh:
        _call(state, cx, "impact", msg.delta_v_kmh, False)
    return state, None


@on(EmergencyButton)
def _button(state: VehicleState, msg: EmergencyButton, cx: Ctx):  # type: ignore[no-untyped-def]
    _call(state, cx, "button", 0.0, msg.cabin_answers)
    return state, None


@on(EmergencyUnitCheck)
def _check(state: VehicleState, msg: EmergencyUnitCheck, cx: Ctx):  # type: ignore[no-untyped-def]
    return attrs.evolve(state, contract=attrs.evolve(state.contract, emergency_checked=msg.passed)), None


@on(DashcamClip)
def _clip(state: VehicleState, msg: DashcamClip, cx: Ctx):  # type: ignore[no-untyped-def]
    require_service(state, Service.DASHCAM)
    parked = state.status.power.value is Power.OFF
    if msg.trigger is ClipTrigger.ALARM and not parked:
        raise refuse(Code.INVALID_VALUE, "alarm clips are recorded while parked only")
    if msg.trigger is ClipTrigger.MANUAL and parked:
        raise refuse(Code.INVALID_VALUE, "manual clips are recorded while driving only")
    alert(state, cx, AlertType.DASHCAM, f"dashcam clip {msg.clip_id} uploaded ({msg.trigger.value})", position=state.status.position.value)
    return state, None


@on(PoliceReport)
def _police(state: VehicleState, msg: PoliceReport, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "file a police report for this car")
    if not msg.report_no.strip():
        raise refuse(Code.INVALID_VALUE, "a police report needs its report number")
    state = attrs.evolve(state, security=attrs.evolve(state.security, police_report=msg.report_no))
    return state, Done(detail=f"police report {msg.report_no} recorded")


def _eligible(state: VehicleState, cx: Ctx, what: str) -> str:
    owner = require_owner(state, cx, f"request {what}")
    require_service(state, Service.NAVI)
    sounded = state.security.alarm_sounded_at
    recent = sounded is not None and cx.now - sounded <= cx.config.eligibility_window_s
    if not recent and state.security.police_report is None:
        raise refuse(Code.NOT_ELIGIBLE, f"{what} starts only after the alarm has sounded or a police report is filed")
    return owner


@on(TrackingRequest)
def _tracking(state: VehicleState, msg: TrackingRequest, cx: Ctx):  # type: ignore[no-untyped-def]
    owner = _eligible(state, cx, "stolen-vehicle tracking")
    if not state.security.tracking:
        cx.send(OPERATOR, TrackingStart(car=state.address, owner=owner, at=cx.now, position=state.status.position.value))
        state = attrs.evolve(state, security=attrs.evolve(state.security, tracking=True))
    return state, Tracking(active=True, position=state.status.position)


@on(GuardRequest)
def _guard(state: VehicleState, msg: GuardRequest, cx: Ctx):  # type: ignore[no-untyped-def]
    owner = _eligible(state, cx, "a guard dispatch")
    cx.send(OPERATOR, GuardDispatch(car=state.address, owner=owner, at=cx.now, position=state.status.position.value))
    return state, Done(detail="a guard is on the way; the first hour is free")


def close_cases(state: VehicleState, cx: Ctx) -> None:
    """The contract is being cancelled: tell the desk to end this car's tracking and guard.

    Always sent: the car does not know what the desk holds (a guard outlives the request that
    sent it), and the desk ignores it when nothing is open.
    """
    cx.send(OPERATOR, CasesClose(car=state.address, at=cx.now))
