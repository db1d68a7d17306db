"""Remote operation, remote check, car finder and vehicle information (SPEC: G-Security)."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import snapshot
from twin.protocol import (
    ChargingChanged,
    CloseWindows,
    ContractPlan,
    Door,
    DoorChanged,
    EnergyReported,
    FlashHazards,
    GetVehicleInfo,
    HazardsChanged,
    Locate,
    Lock,
    LockedByKey,
    Ok,
    Plan,
    Position,
    PositionReported,
    Power,
    Powertrain,
    Reading,
    RemoteCheck,
    SetHazards,
    SharedFunction,
    StateChanged,
    Unlock,
    Window,
    WindowChanged,
)

from ._helpers import (
    AWAY,
    EPOCH,
    HOME,
    alerts_in,
    bodies_to,
    car,
    ignition,
    lite,
    ok,
    refused,
    rejected_event,
    report,
    with_sharee,
)

PLANS = [Plan.STANDARD, Plan.LITE]


def unlocked(plan: Plan = Plan.STANDARD, **kw):  # type: ignore[no-untyped-def]
    state = car(plan=plan, **kw)
    state, _ = report(state, LockedByKey(locked=False), EPOCH)
    return state


# --- remote lock


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("door", list(Door))
def test_remote_lock_is_refused_while_a_door_is_open_and_says_which(plan: Plan, door: Door) -> None:
    state = unlocked(plan)
    state, _ = report(state, DoorChanged(door=door, open=True), EPOCH + 1)
    message = refused(state, Lock(), Code.DOOR_OPEN, now=EPOCH + 2)
    assert door.value in message
    others = [d.value for d in Door if d is not door]
    assert not any(f"{o} " in message or message.endswith(o) for o in others)


def test_remote_lock_names_every_open_door() -> None:
    state = unlocked()
    state, _ = report(state, DoorChanged(door=Door.REAR_LEFT, open=True), EPOCH + 1)
    state, _ = report(state, DoorChanged(door=Door.TRUNK, open=True), EPOCH + 2)
    message = refused(state, Lock(), Code.DOOR_OPEN, now=EPOCH + 3)
    assert "rear_left" in message and "trunk" in message and "front_left" not in message


@pytest.mark.parametrize("power", [Power.ACC, Power.ON])
@pytest.mark.parametrize("body", [Lock(), Unlock(), CloseWindows()], ids=lambda b: b.TYPE)
def test_remote_operation_is_refused_while_the_car_is_in_use(body: object, power: Power) -> None:
    state = unlocked()
    state, _ = ignition(state, power, EPOCH + 1)
    refused(state, body, Code.VEHICLE_IN_USE, now=EPOCH + 2)  # type: ignore[arg-type]


def test_standard_remote_lock_arms_the_alarm() -> None:
    state = unlocked(Plan.STANDARD)
    assert snapshot(state).alarm_armed.value is False
    state, result, out = ok(state, Lock(), now=EPOCH + 10)
    assert result.locked == Reading(True, EPOCH + 10)
    assert result.alarm_armed == Reading(True, EPOCH + 10)
    assert [e.target for e in out] == ["app:alice", "user:alice"]  # the state push, then the reply


def test_lite_remote_lock_does_not_arm_the_alarm() -> None:
    state = unlocked(Plan.LITE)
    state, result, _ = ok(state, Lock(), now=EPOCH + 10)
    assert result.locked == Reading(True, EPOCH + 10)
    assert result.alarm_armed == Reading(False, EPOCH)  # untouched: still the key's report


def test_a_sharee_with_remote_operation_locks_and_the_push_reaches_everyone_allowed_to_check() -> None:
    state = with_sharee(unlocked(), "bob", {SharedFunction.REMOTE_OPERATION})
    state = with_sharee(state, "dan", {SharedFunction.REMOTE_CHECK}, id=51)
    state, result, out = ok(state, Lock(), "bob", EPOCH + 5)
    pushed = {e.target for e in out if isinstance(e.body, StateChanged)}
    assert pushed == {"app:alice", "app:dan"}  # bob was not given remote check
    assert [e.target for e in out if isinstance(e.body, Ok)] == ["user:bob"]


# --- unlock, windows, hazards


@pytest.mark.parametrize("plan", PLANS)
def test_unlock_is_the_owners_alone_and_disarms(plan: Plan) -> None:
    state = with_sharee(car(plan=plan), "bob")  # bob was given every shareable function
    message = refused(state, Unlock(), Code.NOT_AUTHORIZED, "bob")
    assert "owner" in message
    state, result, _ = ok(state, Unlock(), now=EPOCH + 3)
    assert result.locked == Reading(False, EPOCH + 3)
    assert result.alarm_armed == Reading(False, EPOCH + 3)


def test_close_windows_closes_only_the_open_ones() -> None:
    state = car()
    state, _ = report(state, WindowChanged(window=Window.FRONT_RIGHT, position_pct=40), EPOCH + 1)
    state, _ = report(state, WindowChanged(window=Window.REAR_LEFT, position_pct=100), EPOCH + 2)
    state, result, _ = ok(state, CloseWindows(), now=EPOCH + 9)
    assert result.windows_pct == {
        Window.FRONT_LEFT: Reading(0),  # never reported, never touched
        Window.FRONT_RIGHT: Reading(0, EPOCH + 9),
        Window.REAR_LEFT: Reading(0, EPOCH + 9),
        Window.REAR_RIGHT: Reading(0),
    }


@pytest.mark.parametrize("plan", PLANS)
def test_hazards_switch_off_remotely(plan: Plan) -> None:
    state = car(plan=plan)
    state, _ = report(state, HazardsChanged(on=True), EPOCH + 1)
    state, result, _ = ok(state, SetHazards(on=False), now=EPOCH + 2)
    assert result.hazards == Reading(False, EPOCH + 2)


def test_remote_operation_never_switches_the_hazards_on() -> None:
    message = refused(car(), SetHazards(on=True), Code.INVALID_VALUE)
    assert "car finder" in message


@pytest.mark.parametrize("value", [-1, 101])
def test_a_window_position_outside_0_to_100_is_refused(value: int) -> None:
    rejected_event(car(), WindowChanged(window=Window.FRONT_LEFT, position_pct=value), Code.INVALID_VALUE)


# --- remote check


def test_remote_check_shows_each_value_with_the_time_it_was_reported() -> None:
    state = car()
    state, _ = report(state, DoorChanged(door=Door.REAR_RIGHT, open=True), EPOCH + 1)
    state, _ = report(state, WindowChanged(window=Window.FRONT_LEFT, position_pct=30), EPOCH + 2)
    state, _ = report(state, LockedByKey(locked=False), EPOCH + 3)
    state, _ = report(state, HazardsChanged(on=True), EPOCH + 4)
    state, _ = ignition(state, Power.ACC, EPOCH + 5)
    state, result, _ = ok(state, RemoteCheck(), now=EPOCH + 100)
    assert result.doors_open[Door.REAR_RIGHT] == Reading(True, EPOCH + 1)
    assert result.doors_open[Door.FRONT_LEFT] == Reading(False, None)  # never reported
    assert result.windows_pct[Window.FRONT_LEFT] == Reading(30, EPOCH + 2)
    assert result.locked == Reading(False, EPOCH + 3)
    assert result.alarm_armed == Reading(False, EPOCH + 3)
    assert result.hazards == Reading(True, EPOCH + 4)
    assert result.power == Reading(Power.ACC, EPOCH + 5)
    assert result.updates_paused is False


def test_every_report_is_pushed_to_the_apps_as_it_arrives() -> None:
    state = car()
    state, out = report(state, DoorChanged(door=Door.TRUNK, open=True), EPOCH + 1)
    (push,) = bodies_to(out, "app:alice", StateChanged)
    assert push.snapshot.doors_open[Door.TRUNK] == Reading(True, EPOCH + 1)


@pytest.mark.parametrize("powertrain", [Powertrain.PHEV, Powertrain.BEV])
def test_a_charging_lite_plug_in_freezes_the_remote_check_and_pushes_nothing(powertrain: Powertrain) -> None:
    state = lite(powertrain=powertrain)
    state, _ = report(state, EnergyReported(level_pct=20.0, range_km=60.0, odometer_km=500.0), EPOCH)
    state, _ = report(state, DoorChanged(door=Door.FRONT_LEFT, open=False), EPOCH + 1)
    state, out = report(state, ChargingChanged(charging=True), EPOCH + 2)
    assert out == []
    for t, event in enumerate(
        [
            DoorChanged(door=Door.FRONT_LEFT, open=True),
            WindowChanged(window=Window.REAR_LEFT, position_pct=50),
            LockedByKey(locked=False),
            HazardsChanged(on=True),
            EnergyReported(level_pct=80.0, range_km=240.0, odometer_km=500.0),
        ],
        start=3,
    ):
        state, out = report(state, event, EPOCH + t)
        assert out == [], f"{event.TYPE} pushed state while charging"
    _, result, _ = ok(state, RemoteCheck(), now=EPOCH + 50)
    assert result.updates_paused is True
    assert result.doors_open[Door.FRONT_LEFT] == Reading(False, EPOCH + 1)
    assert result.windows_pct[Window.REAR_LEFT] == Reading(0)
    assert result.locked == Reading(True)
    assert result.hazards == Reading(False)
    _, info, _ = ok(state, GetVehicleInfo(), now=EPOCH + 50)
    assert info.level_pct == Reading(20.0, EPOCH)  # the vehicle information is frozen too
    # charging ends: the view thaws and the current state is pushed at once
    state, out = report(state, ChargingChanged(charging=False), EPOCH + 60)
    (push,) = bodies_to(out, "app:alice", StateChanged)
    assert push.snapshot.updates_paused is False
    assert push.snapshot.doors_open[Door.FRONT_LEFT] == Reading(True, EPOCH + 3)
    _, info, _ = ok(state, GetVehicleInfo(), now=EPOCH + 61)
    assert info.level_pct == Reading(80.0, EPOCH + 7)


@pytest.mark.parametrize("powertrain", [Powertrain.PHEV, Powertrain.BEV])
def test_a_charging_standard_plug_in_is_not_frozen(powertrain: Powertrain) -> None:
    state = car(powertrain=powertrain)
    state, _ = report(state, ChargingChanged(charging=True), EPOCH + 1)
    state, out = report(state, DoorChanged(door=Door.TRUNK, open=True), EPOCH + 2)
    (push,) = bodies_to(out, "app:alice", StateChanged)
    assert push.snapshot.doors_open[Door.TRUNK] == Reading(True, EPOCH + 2)
    _, result, _ = ok(state, RemoteCheck(), now=EPOCH + 3)
    assert result.updates_paused is False
    assert result.doors_open[Door.TRUNK] == Reading(True, EPOCH + 2)


@pytest.mark.parametrize("powertrain", [Powertrain.PETROL, Powertrain.HYBRID])
def test_a_petrol_or_hybrid_car_does_not_charge_and_is_never_frozen(powertrain: Powertrain) -> None:
    state = lite(powertrain=powertrain)
    rejected_event(state, ChargingChanged(charging=True), Code.INVALID_VALUE)
    state, out = report(state, DoorChanged(door=Door.TRUNK, open=True), EPOCH + 2)
    assert bodies_to(out, "app:alice", StateChanged)


def test_switching_a_charging_plug_in_to_lite_freezes_its_view_and_back_thaws_it() -> None:
    state = car(powertrain=Powertrain.BEV)
    state, _ = report(state, ChargingChanged(charging=True), EPOCH + 1)
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE), now=EPOCH + 2)
    state, out = report(state, DoorChanged(door=Door.TRUNK, open=True), EPOCH + 3)
    assert out == []
    _, result, _ = ok(state, RemoteCheck(), now=EPOCH + 4)
    assert result.updates_paused and result.doors_open[Door.TRUNK] == Reading(False)
    state, _, out = ok(state, ContractPlan(plan=Plan.STANDARD, navi_package=True), now=EPOCH + 5)
    (push,) = bodies_to(out, "app:alice", StateChanged)
    assert not push.snapshot.updates_paused and push.snapshot.doors_open[Door.TRUNK] == Reading(True, EPOCH + 3)


# --- car finder


def driven(plan: Plan):  # type: ignore[no-untyped-def]
    """Parked at HOME (ACC off there), then moved to AWAY with the power on."""
    state = car(plan=plan)
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, PositionReported(lat=HOME.lat, lon=HOME.lon), EPOCH + 10)
    state, _ = ignition(state, Power.OFF, EPOCH + 20)
    state, _ = ignition(state, Power.ACC, EPOCH + 30)
    state, _ = report(state, PositionReported(lat=AWAY.lat, lon=AWAY.lon, speed_kmh=40.0), EPOCH + 40)
    return state


def test_standard_car_finder_shows_the_current_position() -> None:
    _, result, _ = ok(driven(Plan.STANDARD), Locate(), now=EPOCH + 50)
    assert result.kind == "current"
    assert result.position == Reading(AWAY, EPOCH + 40)


def test_lite_car_finder_shows_the_position_at_the_last_acc_off() -> None:
    _, result, _ = ok(driven(Plan.LITE), Locate(), now=EPOCH + 50)
    assert result.kind == "last_acc_off"
    assert result.position == Reading(HOME, EPOCH + 10)


@pytest.mark.parametrize("plan", PLANS)
def test_the_finder_flashes_the_hazards(plan: Plan) -> None:
    state = car(plan=plan)
    new, result, out = ok(state, FlashHazards())
    assert "flash" in result.detail
    assert alerts_in(out) == []


def test_vehicle_information_shows_energy_with_report_times() -> None:
    state = car(plan=Plan.LITE, powertrain=Powertrain.BEV, name="RZ", registration="品川 300 あ 12-34")
    state, _ = report(state, EnergyReported(level_pct=64.0, range_km=310.0, odometer_km=12345.0), EPOCH + 5)
    _, info, _ = ok(state, GetVehicleInfo(), now=EPOCH + 9)
    assert (info.name, info.registration, info.powertrain, info.plan) == ("RZ", "品川 300 あ 12-34", Powertrain.BEV, Plan.LITE)
    assert info.level_pct == Reading(64.0, EPOCH + 5)
    assert info.range_km == Reading(310.0, EPOCH + 5)
    assert info.odometer_km == Reading(12345.0, EPOCH + 5)
    assert info.power == Reading(Power.OFF)


@pytest.mark.parametrize(
    "energy",
    [
        EnergyReported(level_pct=101.0, range_km=1.0, odometer_km=1.0),
        EnergyReported(level_pct=-1.0, range_km=1.0, odometer_km=1.0),
        EnergyReported(level_pct=50.0, range_km=-1.0, odometer_km=1.0),
        EnergyReported(level_pct=50.0, range_km=1.0, odometer_km=-1.0),
    ],
)
def test_impossible_energy_reports_are_refused(energy: EnergyReported) -> None:
    rejected_event(car(), energy, Code.INVALID_VALUE)


def test_position_reports_are_not_pushed_but_the_finder_sees_them() -> None:
    state, out = report(car(), PositionReported(lat=1.5, lon=2.5), EPOCH + 1)
    assert out == []
    _, result, _ = ok(state, Locate(), now=EPOCH + 2)
    assert result.position == Reading(Position(1.5, 2.5), EPOCH + 1)
