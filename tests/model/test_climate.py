"""Remote climate (SPEC p.16): 10 or 20 minute runs, the cumulative cap, schedules."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import VehicleInfoData
from twin.protocol import (
    AlertType,
    Channel,
    ClimateGet,
    ClimateScheduleAdd,
    ClimateScheduleRemove,
    ClimateSettings,
    ClimateSettingsSet,
    ClimateStart,
    ClimateStop,
    ContractPlan,
    Occupancy,
    Plan,
    Power,
    Powertrain,
    SharedFunction,
)

from ._helpers import (
    EPOCH,
    OWNER,
    VEHICLE,
    advance,
    alerts_in,
    car,
    ignition,
    lite,
    ok,
    refused,
    report,
    with_sharee,
)

MIN = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY


def run(state, minutes: int, start: float):  # type: ignore[no-untyped-def]
    """Start a run at `start` and let it end by itself; return the state after it stopped."""
    state, result, _ = ok(state, ClimateStart(duration_min=minutes), now=start)
    return advance(state, result.ends_at)[0]


# --- durations and the run's end


@pytest.mark.parametrize("minutes", [10, 20])
@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.LITE])
def test_a_run_stops_by_itself_after_exactly_10_or_20_minutes(minutes: int, plan: Plan) -> None:
    state = car(plan=plan)
    state, result, _ = ok(state, ClimateStart(duration_min=minutes), now=EPOCH)
    assert (result.running, result.started_at, result.ends_at) == (True, EPOCH, EPOCH + minutes * MIN)
    assert VEHICLE.next_deadline(state) == EPOCH + minutes * MIN
    state, out = advance(state, EPOCH + minutes * MIN - 0.001)
    assert state.climate.running and out == []
    state, out = advance(state, EPOCH + minutes * MIN)
    assert not state.climate.running and out == []
    assert state.climate.used_s == minutes * MIN
    assert VEHICLE.next_deadline(state) is None


def test_a_late_wakeup_still_stops_the_run_at_its_own_time() -> None:
    state, _, _ = ok(car(), ClimateStart(duration_min=10), now=EPOCH)
    state, _ = advance(state, EPOCH + 5 * HOUR)
    assert state.climate.used_s == 10 * MIN


@pytest.mark.parametrize("minutes", [0, 5, 15, 30, 60, -10])
def test_only_10_or_20_minutes(minutes: int) -> None:
    message = refused(car(), ClimateStart(duration_min=minutes), Code.INVALID_VALUE)
    assert "10 or 20" in message
    refused(car(), ClimateScheduleAdd(weekdays=(0,), at="07:00", duration_min=minutes), Code.INVALID_VALUE)


def test_stop_counts_only_the_time_it_ran() -> None:
    state, _, _ = ok(car(), ClimateStart(duration_min=20), now=EPOCH)
    state, result, _ = ok(state, ClimateStop(), now=EPOCH + 7 * MIN)
    assert not result.running and result.used_s == 7 * MIN
    assert VEHICLE.next_deadline(state) is None
    refused(state, ClimateStop(), Code.CONFLICT, now=EPOCH + 8 * MIN)


def test_a_second_start_while_running_is_refused() -> None:
    state, _, _ = ok(car(), ClimateStart(duration_min=10), now=EPOCH)
    refused(state, ClimateStart(duration_min=10), Code.CONFLICT, now=EPOCH + 60)


@pytest.mark.parametrize("power", [Power.ACC, Power.ON])
def test_refused_while_the_car_is_switched_on(power: Power) -> None:
    state, _ = ignition(car(), power, EPOCH)
    refused(state, ClimateStart(duration_min=10), Code.VEHICLE_IN_USE, now=EPOCH + 1)


def test_ignition_on_ends_a_remote_run() -> None:
    state, _, _ = ok(car(), ClimateStart(duration_min=20), now=EPOCH)
    state, _ = ignition(state, Power.ON, EPOCH + 4 * MIN)
    assert not state.climate.running and state.climate.used_s == 0.0
    assert VEHICLE.next_deadline(state) is None


# --- the cumulative cap


def test_standard_cap_is_60_minutes_then_refused_until_ignition_on() -> None:
    state = car()
    for i in range(3):
        state = run(state, 20, EPOCH + i * HOUR)
    assert state.climate.used_s == 60 * MIN
    message = refused(state, ClimateStart(duration_min=10), Code.CLIMATE_CAP_REACHED, now=EPOCH + 4 * HOUR)
    assert "60 minutes" in message and "start the car" in message
    state, _ = ignition(state, Power.ACC, EPOCH + 5 * HOUR)
    state, _ = ignition(state, Power.OFF, EPOCH + 5 * HOUR + 1)
    refused(state, ClimateStart(duration_min=10), Code.CLIMATE_CAP_REACHED, now=EPOCH + 5 * HOUR + 2)  # ACC does not reset
    state, _ = ignition(state, Power.ON, EPOCH + 6 * HOUR)
    state, _ = ignition(state, Power.OFF, EPOCH + 6 * HOUR + 1)
    state, result, _ = ok(state, ClimateStart(duration_min=20), now=EPOCH + 6 * HOUR + 2)
    assert result.used_s == 0.0 and result.ends_at == EPOCH + 6 * HOUR + 2 + 20 * MIN


def test_lite_cap_is_20_minutes() -> None:
    state = run(lite(), 20, EPOCH)
    message = refused(state, ClimateStart(duration_min=10), Code.CLIMATE_CAP_REACHED, now=EPOCH + HOUR)
    assert "20 minutes" in message
    _, result, _ = ok(state, ClimateSettingsSet(settings=ClimateSettings()), now=EPOCH + HOUR)
    assert result.cap_s == 20 * MIN


@pytest.mark.parametrize(
    ("plan", "before", "asked", "gets"),
    [
        (Plan.LITE, [10], 20, 10),
        (Plan.STANDARD, [20, 20, 10], 20, 10),
        (Plan.STANDARD, [20, 20], 20, 20),
    ],
)
def test_a_run_is_clipped_to_what_is_left_of_the_cap(plan: Plan, before: list[int], asked: int, gets: int) -> None:
    state = car(plan=plan)
    for i, minutes in enumerate(before):
        state = run(state, minutes, EPOCH + i * HOUR)
    start = EPOCH + 10 * HOUR
    state, result, _ = ok(state, ClimateStart(duration_min=asked), now=start)
    assert result.ends_at == start + gets * MIN
    state, _ = advance(state, start + gets * MIN)
    assert not state.climate.running
    assert state.climate.used_s == result.cap_s
    refused(state, ClimateStart(duration_min=10), Code.CLIMATE_CAP_REACHED, now=start + HOUR)


def test_a_partial_run_counts_toward_the_cap() -> None:
    state, _, _ = ok(lite(), ClimateStart(duration_min=20), now=EPOCH)
    state, _, _ = ok(state, ClimateStop(), now=EPOCH + 15 * MIN)
    state, result, _ = ok(state, ClimateStart(duration_min=20), now=EPOCH + HOUR)
    assert result.ends_at == EPOCH + HOUR + 5 * MIN


# --- equipment, source, settings


@pytest.mark.parametrize(
    "command",
    [ClimateStart(duration_min=10), ClimateScheduleAdd(weekdays=(0, 4), at="07:00", duration_min=10)],
    ids=lambda c: c.TYPE,
)
def test_refused_on_a_car_with_a_dealer_remote_start_kit(command) -> None:  # type: ignore[no-untyped-def]
    # a schedule accepted on such a car would be skipped at every time it fires
    state = car(has_remote_start_kit=True)
    message = refused(state, command, Code.NOT_EQUIPPED)
    assert "remote-start kit" in message


@pytest.mark.parametrize(
    ("powertrain", "source"),
    [(Powertrain.PETROL, "engine"), (Powertrain.HYBRID, "engine"), (Powertrain.PHEV, "battery"), (Powertrain.BEV, "battery")],
)
def test_the_engine_or_the_battery_runs_it(powertrain: Powertrain, source: str) -> None:
    _, result, _ = ok(car(powertrain=powertrain), ClimateStart(duration_min=10))
    assert result.source == source


def test_settings_are_kept_and_applied() -> None:
    wanted = ClimateSettings(temperature_c=26.5, front_defroster=True, rear_defroster=True, seat_heaters=True, steering_heater=True)
    state, result, _ = ok(car(), ClimateStart(duration_min=10, settings=wanted))
    assert result.settings == wanted
    other = ClimateSettings(temperature_c=18.0, seat_ventilation=True)
    state, result, _ = ok(state, ClimateSettingsSet(settings=other), now=EPOCH + 1)
    assert result.settings == other and result.running


@pytest.mark.parametrize("temperature", [15.9, 32.1, -40.0, 99.0])
def test_an_impossible_temperature_is_refused(temperature: float) -> None:
    settings = ClimateSettings(temperature_c=temperature)
    refused(car(), ClimateSettingsSet(settings=settings), Code.INVALID_VALUE)
    refused(car(), ClimateStart(duration_min=10, settings=settings), Code.INVALID_VALUE)


def test_someone_inside_is_flagged() -> None:
    state, _ = report(car(), Occupancy(occupied=True), EPOCH)
    _, result, _ = ok(state, ClimateStart(duration_min=10), now=EPOCH + 1)
    assert result.occupied_warning is True
    _, result, _ = ok(car(), ClimateStart(duration_min=10), now=EPOCH + 1)
    assert result.occupied_warning is False


# --- schedules: weekday and local time (JST by default)

# EPOCH is Thursday 2026-01-01 09:00 JST (00:00 UTC); weekdays count from Monday = 0.
THU, FRI, SAT = 3, 4, 5


@pytest.mark.parametrize(
    ("weekdays", "at", "first"),
    [
        ((FRI,), "07:30", EPOCH + 22.5 * HOUR),  # Fri 07:30 JST = Thu 22:30 UTC
        ((THU,), "23:59", EPOCH + 14 * HOUR + 59 * MIN),  # later today
        ((THU,), "09:00", EPOCH + WEEK),  # exactly now: next week
        ((THU,), "08:00", EPOCH - HOUR + WEEK),  # already past today
        ((SAT, THU), "00:00", EPOCH + 39 * HOUR),  # Sat 00:00 JST = Fri 15:00 UTC
        ((0, 1, 2, 3, 4, 5, 6), "09:01", EPOCH + MIN),
    ],
)
def test_a_schedule_fires_at_the_right_posix_time(weekdays: tuple[int, ...], at: str, first: float) -> None:
    state, result, _ = ok(car(), ClimateScheduleAdd(weekdays=weekdays, at=at, duration_min=20))
    (sched,) = result.schedules
    assert (sched.weekdays, sched.at, sched.duration_min) == (tuple(sorted(weekdays)), at, 20)
    assert VEHICLE.next_deadline(state) == first
    state, _ = advance(state, first - 0.001)
    assert not state.climate.running
    state, out = advance(state, first)
    assert out == []
    assert (state.climate.started_at, state.climate.ends_at) == (first, first + 20 * MIN)


def test_the_time_zone_is_the_cars() -> None:
    state = car(info=VehicleInfoData(tz_offset_s=0))
    state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(THU,), at="08:00"))
    assert VEHICLE.next_deadline(state) == EPOCH + 8 * HOUR


def test_a_schedule_repeats_every_week_and_obeys_the_cap() -> None:
    state, _, _ = ok(lite(powertrain=Powertrain.PHEV), ClimateScheduleAdd(weekdays=(FRI,), at="07:30", duration_min=20))
    first = EPOCH + 22.5 * HOUR
    state, _ = advance(state, first + 20 * MIN)
    assert state.climate.used_s == 20 * MIN and VEHICLE.next_deadline(state) == first + WEEK
    state, out = advance(state, first + WEEK)  # the cap is used up and the car was never started
    assert alerts_in(out) == [(OWNER, AlertType.CLIMATE, Channel.EMAIL), (OWNER, AlertType.CLIMATE, Channel.PUSH)]
    assert "20 minutes" in out[0].body.text
    assert not state.climate.running and VEHICLE.next_deadline(state) == first + 2 * WEEK


def test_a_skipped_scheduled_start_alerts_the_owner_only() -> None:
    state = with_sharee(car(), "bob")
    state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(FRI,), at="07:30"))
    state, _ = ignition(state, Power.ON, EPOCH + HOUR)
    state, out = advance(state, EPOCH + 22.5 * HOUR)
    assert [(e.target, e.body.alert) for e in out] == [("user:alice", AlertType.CLIMATE)] * 2
    assert "skipped" in out[0].body.text and out[0].body.at == EPOCH + 22.5 * HOUR
    assert not state.climate.running


def test_two_schedules_at_the_same_time_start_one_run_with_the_longer_duration() -> None:
    state, _, _ = ok(car(), ClimateScheduleAdd(weekdays=(FRI,), at="07:30", duration_min=10))
    state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(FRI, SAT), at="07:30", duration_min=20))
    state, out = advance(state, EPOCH + 22.5 * HOUR)
    assert out == [] and state.climate.ends_at == EPOCH + 22.5 * HOUR + 20 * MIN
    assert VEHICLE.next_deadline(state) == EPOCH + 22.5 * HOUR + 20 * MIN
    state, _ = advance(state, EPOCH + 22.5 * HOUR + 20 * MIN)
    assert VEHICLE.next_deadline(state) == EPOCH + 46.5 * HOUR  # Saturday's


def test_removing_a_schedule_moves_the_next_start() -> None:
    state, _, _ = ok(car(), ClimateScheduleAdd(weekdays=(FRI,), at="07:30"))
    state, result, _ = ok(state, ClimateScheduleAdd(weekdays=(SAT,), at="07:30"))
    first, second = result.schedules
    state, result, _ = ok(state, ClimateScheduleRemove(schedule_id=first.schedule_id))
    assert result.schedules == (second,)
    assert VEHICLE.next_deadline(state) == EPOCH + 46.5 * HOUR
    state, _, _ = ok(state, ClimateScheduleRemove(schedule_id=second.schedule_id))
    assert VEHICLE.next_deadline(state) is None
    refused(state, ClimateScheduleRemove(schedule_id=second.schedule_id), Code.NOT_FOUND)


@pytest.mark.parametrize(
    ("powertrain", "code"),
    [(Powertrain.PETROL, Code.NOT_IN_PLAN), (Powertrain.HYBRID, Code.NOT_IN_PLAN), (Powertrain.PHEV, None), (Powertrain.BEV, None)],
)
def test_lite_schedules_are_for_plug_in_cars_only(powertrain: Powertrain, code: Code | None) -> None:
    body = ClimateScheduleAdd(weekdays=(0,), at="07:00")
    if code is None:
        ok(lite(powertrain=powertrain), body)
    else:
        assert "PHEV" in refused(lite(powertrain=powertrain), body, code)
    ok(car(powertrain=powertrain), body)  # Standard with the navi package: any car


@pytest.mark.parametrize(
    "body",
    [
        ClimateScheduleAdd(weekdays=(), at="07:00"),
        ClimateScheduleAdd(weekdays=(7,), at="07:00"),
        ClimateScheduleAdd(weekdays=(-1,), at="07:00"),
        ClimateScheduleAdd(weekdays=(0,), at="24:00"),
        ClimateScheduleAdd(weekdays=(0,), at="07:60"),
        ClimateScheduleAdd(weekdays=(0,), at="7am"),
        ClimateScheduleAdd(weekdays=(0,), at=""),
    ],
)
def test_a_malformed_schedule_is_refused(body: ClimateScheduleAdd) -> None:
    refused(car(), body, Code.INVALID_VALUE)


def test_at_most_seven_schedules() -> None:
    state = car()
    for day in range(7):
        state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(day,), at="07:00"))
    refused(state, ClimateScheduleAdd(weekdays=(0,), at="08:00"), Code.LIMIT_REACHED)


@pytest.mark.parametrize(
    "change",
    [ContractPlan(plan=Plan.LITE), ContractPlan(plan=Plan.STANDARD, navi_package=False)],
    ids=["to_lite_on_a_hybrid", "navi_package_dropped"],
)
def test_a_plan_change_that_no_longer_allows_schedules_removes_them(change: ContractPlan) -> None:
    state, _, _ = ok(car(powertrain=Powertrain.HYBRID), ClimateScheduleAdd(weekdays=(FRI,), at="07:30"))
    state, _, _ = ok(state, change)
    assert state.climate.schedules == () and VEHICLE.next_deadline(state) is None
    _, out = advance(state, EPOCH + 2 * WEEK)
    assert out == []


def test_a_plan_change_that_still_allows_schedules_keeps_them() -> None:
    state, _, _ = ok(car(powertrain=Powertrain.BEV), ClimateScheduleAdd(weekdays=(FRI,), at="07:30"))
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE))
    assert len(state.climate.schedules) == 1 and VEHICLE.next_deadline(state) == EPOCH + 22.5 * HOUR


@pytest.mark.parametrize(
    ("used_min", "switch_after_min", "ends_after_min"),
    [(0, 2, 20), (10, 2, 10), (20, 1, 1)],
)
def test_a_run_in_progress_is_clipped_to_the_lite_cap_when_the_plan_changes(used_min: int, switch_after_min: int, ends_after_min: int) -> None:
    state = car(powertrain=Powertrain.PHEV)
    if used_min:
        state = run(state, used_min, EPOCH - HOUR)
    state, _, _ = ok(state, ClimateStart(duration_min=20), now=EPOCH)
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE), now=EPOCH + switch_after_min * MIN)
    state, _ = advance(state, EPOCH + HOUR)
    # the minutes used never count past the new plan's cap (20 minutes on Lite)
    assert state.climate.used_s == min(used_min + ends_after_min, 20) * MIN


# --- reading the status


def test_climate_get_reads_the_status_and_changes_nothing() -> None:
    state = car()
    state, started, _ = ok(state, ClimateStart(duration_min=20), now=EPOCH)
    same, status, out = ok(state, ClimateGet(), now=EPOCH + 5 * MIN)
    assert same is state and len(out) == 1  # a read: no state change, no push, only the reply
    assert (status.running, status.started_at, status.ends_at, status.cap_s) == (True, EPOCH, EPOCH + 20 * MIN, 3600.0)
    state = advance(state, EPOCH + 20 * MIN)[0]
    _, status, _ = ok(state, ClimateGet(), now=EPOCH + 21 * MIN)
    assert (status.running, status.used_s) == (False, 20 * MIN)


def test_climate_get_needs_remote_climate_and_the_navi_package() -> None:
    shared = with_sharee(car(), "bob", functions={SharedFunction.REMOTE_CHECK})
    assert "remote_climate was not shared" in refused(shared, ClimateGet(), Code.NOT_AUTHORIZED, sender="bob")
    climate = with_sharee(car(), "bob", functions={SharedFunction.REMOTE_CLIMATE})
    ok(climate, ClimateGet(), sender="bob")
    refused(car(), ClimateGet(), Code.NOT_AUTHORIZED, sender="mallory")
    refused(car(navi_package=False), ClimateGet(), Code.NOT_IN_PLAN)
