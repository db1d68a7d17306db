"""Security, remote check and remote operation, car finder, vehicle information, alerts.

How this part works: the car reports doors, windows, locks, hazards, power, position and
energy as events; each value is stored with its report time. While a Lite PHEV/BEV charges,
the centre's view (`reported_view`: remote check and vehicle information) stays frozen at the
moment charging started (or the plan became Lite) and no state is pushed. Remote commands act
on the twin at once and refuse with a reason (an open door, a car in use); remote operation
locks, closes windows and switches hazards off, never on (the car finder flashes them).
Turning the power OFF arms the "forgot" check; when it comes due, doors left unlocked, hazards
left on and windows left open each raise an alert to the owner and the sharees given the
vehicle information (which holds the lock reminders), except on a charging Lite PHEV/BEV. The
alarm sounding alerts owner and sharees with the place and opens the window in which the owner
may ask for tracking or a guard.
"""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import (
    AlarmSounding,
    AlertSettings,
    AlertSettingsGet,
    AlertSettingsSet,
    AlertType,
    ChargingChanged,
    CloseWindows,
    Done,
    DoorChanged,
    EnergyReported,
    FlashHazards,
    GetVehicleInfo,
    HazardsChanged,
    Location,
    Locate,
    Lock,
    LockedByKey,
    Occupancy,
    Plan,
    Position,
    PositionReported,
    Power,
    Reading,
    RemoteCheck,
    SetHazards,
    SharedFunction,
    Snapshot,
    Unlock,
    VehicleInfo,
    WindowChanged,
)
from ._context import (
    Ctx,
    Service,
    alert,
    can_share,
    members,
    prefs_of,
    push_state,
    refuse,
    require_function,
    require_owner,
    require_service,
)
from ._dispatch import on
from ._state import DOOR_INDEX, DOORS, WINDOW_INDEX, WINDOWS, Status, VehicleState


def snapshot(state: VehicleState) -> Snapshot:
    """The remote-check view: what the centre last received from the car."""
    view = state.reported_view or state.status
    return Snapshot(
        doors_open=dict(zip(DOORS, view.doors_open)),
        windows_pct=dict(zip(WINDOWS, view.windows_pct)),
        locked=view.locked,
        alarm_armed=view.alarm_armed,
        hazards=view.hazards,
        power=view.power,
        climate_running=state.climate.running,
        updates_paused=state.reported_view is not None,
        telematics=state.telematics,
    )


def updates_paused(state: VehicleState) -> bool:
    """Lite, PHEV/BEV, charging: the car sends no state updates and no forgot alerts."""
    return (
        state.contract.plan is Plan.LITE
        and state.info.powertrain.plugs_in
        and state.status.charging
    )


def reported(state: VehicleState, cx: Ctx, status: Status) -> VehicleState:
    """Store a new reported status and push it to the apps, unless updates are paused."""
    return reported_snapshot(state, cx, status)[0]


def reported_snapshot(state: VehicleState, cx: Ctx, status: Status) -> tuple[VehicleState, Snapshot]:
    """`reported`, also returning the new remote-check view (computed once for push and reply)."""
    state = attrs.evolve(state, status=status)
    view = snapshot(state)
    if state.reported_view is None and state.contract.owner is not None:
        push_state(state, cx, view)
    return state, view


def _in_use(state: VehicleState, what: str) -> None:
    if state.status.power.value is not Power.OFF:
        raise refuse(Code.VEHICLE_IN_USE, f"cannot {what} while the car is switched on ({state.status.power.value.value}); someone may be using it")


# --- remote operation


@on(Lock)
def _lock(state: VehicleState, msg: Lock, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_OPERATION, "lock the doors")
    require_service(state, Service.SECURITY)
    _in_use(state, "lock remotely")
    open_doors = state.status.open_doors()
    if open_doors:
        names = ", ".join(d.value for d in open_doors)
        raise refuse(Code.DOOR_OPEN, f"not locked: {names} {'is' if len(open_doors) == 1 else 'are'} open; close it and try again")
    now = cx.now
    armed = state.status.alarm_armed if state.contract.plan is Plan.LITE else Reading(True, now)
    status = attrs.evolve(state.status, locked=Reading(True, now), alarm_armed=armed)
    return reported_snapshot(state, cx, status)


@on(Unlock)
def _unlock(state: VehicleState, msg: Unlock, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "unlock the car remotely")
    require_service(state, Service.SECURITY)
    _in_use(state, "unlock remotely")
    now = cx.now
    status = attrs.evolve(state.status, locked=Reading(False, now), alarm_armed=Reading(False, now))
    return reported_snapshot(state, cx, status)


@on(SetHazards)
def _set_hazards(state: VehicleState, msg: SetHazards, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_OPERATION, "switch the hazards")
    require_service(state, Service.SECURITY)
    if msg.on:
        raise refuse(Code.INVALID_VALUE, "remote operation only switches the hazards off; use the car finder to flash them")
    return reported_snapshot(state, cx, attrs.evolve(state.status, hazards=Reading(msg.on, cx.now)))


@on(CloseWindows)
def _close_windows(state: VehicleState, msg: CloseWindows, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_OPERATION, "close the windows")
    require_service(state, Service.SECURITY)
    _in_use(state, "close the windows remotely")
    closed = tuple(r if r.value == 0 else Reading(0, cx.now) for r in state.status.windows_pct)
    return reported_snapshot(state, cx, attrs.evolve(state.status, windows_pct=closed))


# --- remote check, car finder, vehicle information


@on(RemoteCheck)
def _remote_check(state: VehicleState, msg: RemoteCheck, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CHECK, "check the car remotely")
    require_service(state, Service.SECURITY)
    return state, snapshot(state)


def location(state: VehicleState) -> Location:
    if state.contract.plan is Plan.LITE:
        return Location(position=state.status.last_acc_off, kind="last_acc_off")
    return Location(position=state.status.position, kind="current")


@on(Locate)
def _locate(state: VehicleState, msg: Locate, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.CAR_FINDER, "locate the car")
    require_service(state, Service.SECURITY)
    return state, location(state)


@on(FlashHazards)
def _flash(state: VehicleState, msg: FlashHazards, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.CAR_FINDER, "flash the hazards")
    require_service(state, Service.SECURITY)
    return state, Done(detail="hazards flashed")


@on(GetVehicleInfo)
def _info(state: VehicleState, msg: GetVehicleInfo, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.VEHICLE_INFO, "read the vehicle information")
    require_service(state, Service.SECURITY)
    i, s = state.info, state.reported_view or state.status  # frozen too while a Lite plug-in charges
    return state, VehicleInfo(
        name=i.name,
        registration=i.registration,
        model_code=i.model_code,
        inspection_expiry=i.inspection_expiry,
        powertrain=i.powertrain,
        plan=state.contract.plan,
        power=s.power,
        level_pct=s.level_pct,
        range_km=s.range_km,
        odometer_km=s.odometer_km,
        software_version=state.software.version,
    )


# --- alert settings: per recipient (the sender), per type and channel


@on(AlertSettingsSet)
def _alert_set(state: VehicleState, msg: AlertSettingsSet, cx: Ctx):  # type: ignore[no-untyped-def]
    account = cx.account
    if account is None or account not in members(state):
        raise refuse(Code.NOT_AUTHORIZED, "only the owner and sharees of this car receive its alerts")
    require_service(state, Service.SECURITY)
    enabled = set(prefs_of(state, account))
    pair = (msg.alert, msg.channel)
    if msg.enabled:
        enabled.add(pair)
    else:
        enabled.discard(pair)
    prefs = dict(state.alert_prefs)
    prefs[account] = frozenset(enabled)
    return attrs.evolve(state, alert_prefs=prefs), AlertSettings(enabled=frozenset(enabled))


@on(AlertSettingsGet)
def _alert_get(state: VehicleState, msg: AlertSettingsGet, cx: Ctx):  # type: ignore[no-untyped-def]
    account = cx.account
    if account is None or account not in members(state):
        raise refuse(Code.NOT_AUTHORIZED, "only the owner and sharees of this car receive its alerts")
    return state, AlertSettings(enabled=prefs_of(state, account))


# --- what the car reports


@on(DoorChanged)
def _door(state: VehicleState, msg: DoorChanged, cx: Ctx):  # type: ignore[no-untyped-def]
    doors = list(state.status.doors_open)
    doors[DOOR_INDEX[msg.door]] = Reading(msg.open, cx.now)
    return reported(state, cx, attrs.evolve(state.status, doors_open=tuple(doors))), None


@on(WindowChanged)
def _window(state: VehicleState, msg: WindowChanged, cx: Ctx):  # type: ignore[no-untyped-def]
    if not 0 <= msg.position_pct <= 100:
        raise refuse(Code.INVALID_VALUE, f"window position {msg.position_pct}% is outside 0..100")
    windows = list(state.status.windows_pct)
    windows[WINDOW_INDEX[msg.window]] = Reading(msg.position_pct, cx.now)
    return reported(state, cx, attrs.evolve(state.status, windows_pct=tuple(windows))), None


@on(LockedByKey)
def _locked_by_key(state: VehicleState, msg: LockedByKey, cx: Ctx):  # type: ignore[no-untyped-def]
    now = cx.now
    status = attrs.evolve(state.status, locked=Reading(msg.locked, now), alarm_armed=Reading(msg.locked, now))
    return reported(state, cx, status), None


@on(HazardsChanged)
def _hazards(state: VehicleState, msg: HazardsChanged, cx: Ctx):  # type: ignore[no-untyped-def]
    return reported(state, cx, attrs.evolve(state.status, hazards=Reading(msg.on, cx.now))), None


@on(PositionReported)
def _position(state: VehicleState, msg: PositionReported, cx: Ctx):  # type: ignore[no-untyped-def]
    status = attrs.evolve(state.status, position=Reading(Position(msg.lat, msg.lon), cx.now), speed_kmh=msg.speed_kmh)
    return attrs.evolve(state, status=status), None


@on(EnergyReported)
def _energy(state: VehicleState, msg: EnergyReported, cx: Ctx):  # type: ignore[no-untyped-def]
    if not 0 <= msg.level_pct <= 100 or msg.range_km < 0 or msg.odometer_km < 0:
        raise refuse(Code.INVALID_VALUE, "energy level must be 0..100 % and range and odometer non-negative")
    now = cx.now
    status = attrs.evolve(
        state.status,
        level_pct=Reading(msg.level_pct, now),
        range_km=Reading(msg.range_km, now),
        odometer_km=Reading(msg.odometer_km, now),
    )
    return attrs.evolve(state, status=status), None


def sync_view(state: VehicleState, cx: Ctx) -> VehicleState:
    """Freeze the centre's view when updates pause; thaw it, pushing the live state, when they resume.

    Called whenever charging, the plan or the owner changes, since any of them can pause updates.
    """
    if updates_paused(state):
        if state.reported_view is None:
            state = attrs.evolve(state, reported_view=state.status)
    elif state.reported_view is not None:
        state = attrs.evolve(state, reported_view=None)
        if state.contract.owner is not None:
            push_state(state, cx, snapshot(state))
    return state


@on(ChargingChanged)
def _charging(state: VehicleState, msg: ChargingChanged, cx: Ctx):  # type: ignore[no-untyped-def]
    if not state.info.powertrain.plugs_in:
        raise refuse(Code.INVALID_VALUE, f"a {state.info.powertrain.value} car does not charge from a plug")
    state = attrs.evolve(state, status=attrs.evolve(state.status, charging=msg.charging))
    return sync_view(state, cx), None


@on(Occupancy)
def _occupancy(state: VehicleState, msg: Occupancy, cx: Ctx):  # type: ignore[no-untyped-def]
    return attrs.evolve(state, status=attrs.evolve(state.status, occupied=msg.occupied)), None


@on(AlarmSounding)
def _alarm(state: VehicleState, msg: AlarmSounding, cx: Ctx):  # type: ignore[no-untyped-def]
    state = attrs.evolve(state, security=attrs.evolve(state.security, alarm_sounded_at=cx.now))
    if state.contract.plan is not None:
        alert(state, cx, AlertType.ALARM, f"the alarm is sounding ({msg.cause})", position=state.status.position.value)
    return state, None


# --- "forgot" alerts, after the driver leaves the car


def forgot_check(state: VehicleState, cx: Ctx) -> VehicleState:
    """Run the due forgot check: one alert per thing left, unless updates are paused."""
    state = attrs.evolve(state, security=attrs.evolve(state.security, forgot_due_at=None))
    if state.contract.plan is None or updates_paused(state):
        return state
    s = state.status
    # lock reminders are part of the shared vehicle information (guide p.32-33)
    told = [a for a in members(state) if can_share(state, a, SharedFunction.VEHICLE_INFO)]
    if not s.locked.value:
        alert(state, cx, AlertType.FORGOT_LOCK, "the doors were left unlocked", recipients=told)
    if s.hazards.value:
        alert(state, cx, AlertType.FORGOT_HAZARDS, "the hazard lights were left on", recipients=told)
    windows = s.open_windows()
    if windows:
        alert(state, cx, AlertType.FORGOT_WINDOWS, "windows left open: " + ", ".join(w.value for w in windows), recipients=told)
    return state
