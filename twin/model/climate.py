"""Remote climate: runs of 10 or 20 minutes, a cumulative cap, schedules (guide p.16).

How this part works: a start runs until `ends_at`, which is the chosen duration or the time
left under the cap (60 min Standard, 20 min Lite), whichever comes first; so a run never goes
past either. Every second of running counts toward the cap; only ignition ON resets it (and
ends a remote run: the car takes over). Schedules fire at a weekday and local time; a
scheduled start obeys every rule a manual one does, and a refused one tells the owner why; on a
car with a telematics unit it is carried out as a command is (`telematics`): checked when it
fires, sent to the unit, and the run starts once the unit confirms (an offline car, a unit that
fails or stays silent: the owner is told it was skipped). A plan change that no longer includes schedules (no navi package, Lite on a non-plug-in) drops them.
"""

from __future__ import annotations

import attrs

from ..errors import Code, CommandRefused
from ..protocol import (
    AlertType,
    ClimateSchedule,
    ClimateScheduleAdd,
    ClimateScheduleRemove,
    ClimateSettings,
    ClimateGet,
    ClimateSettingsSet,
    ClimateStart,
    ClimateStatus,
    ClimateStop,
    Envelope,
    Plan,
    Power,
    SharedFunction,
    Telematics,
)
from ._context import Ctx, Service, alert, refuse, require_function, require_service
from ._dispatch import on
from ._state import ClimateState, VehicleState
from . import telematics
from .config import ModelConfig

DAY = 86400.0
WEEK = 7 * DAY


def cap_s(state: VehicleState, config: ModelConfig) -> float:
    plan = state.contract.plan or Plan.STANDARD
    return config.climate_cap_s[plan]


def status(state: VehicleState, config: ModelConfig) -> ClimateStatus:
    c = state.climate
    return ClimateStatus(
        running=c.running,
        started_at=c.started_at,
        ends_at=c.ends_at,
        used_s=c.used_s,
        cap_s=cap_s(state, config),
        source="battery" if state.info.powertrain.plugs_in else "engine",
        settings=c.settings,
        schedules=c.schedules,
        occupied_warning=state.status.occupied,
    )


def stop(state: VehicleState, now: float) -> VehicleState:
    """End the current run at `now` (no later than its end), counting its time toward the cap."""
    c = state.climate
    if c.started_at is None:
        return state
    end = min(now, c.ends_at if c.ends_at is not None else now)
    used = c.used_s + max(0.0, end - c.started_at)
    return attrs.evolve(state, climate=attrs.evolve(c, started_at=None, ends_at=None, used_s=used))


def check_settings(settings: ClimateSettings) -> None:
    if not 16.0 <= settings.temperature_c <= 32.0:
        raise refuse(Code.INVALID_VALUE, f"target temperature {settings.temperature_c} °C is outside 16..32 °C")


def require_no_kit(state: VehicleState) -> None:
    """Refuse on a car with a dealer-installed remote-start kit: neither a start nor a schedule
    (one accepted would only be skipped at every time it fires)."""
    if state.info.has_remote_start_kit:
        raise refuse(Code.NOT_EQUIPPED, "remote climate is unavailable on a car with a dealer-installed remote-start kit")


def start(state: VehicleState, duration_min: int, now: float, config: ModelConfig) -> VehicleState:
    """Start a run, or raise CommandRefused saying why not."""
    require_service(state, Service.NAVI)
    require_no_kit(state)
    if duration_min not in config.climate_durations_min:
        allowed = " or ".join(str(d) for d in config.climate_durations_min)
        raise refuse(Code.INVALID_VALUE, f"a remote climate run lasts {allowed} minutes, not {duration_min}")
    if state.status.power.value is not Power.OFF:
        raise refuse(Code.VEHICLE_IN_USE, "the car is switched on; use its own climate control")
    c = state.climate
    if c.running:
        raise refuse(Code.CONFLICT, "remote climate is already running; stop it first")
    left = cap_s(state, config) - c.used_s
    if left <= 0:
        raise refuse(
            Code.CLIMATE_CAP_REACHED,
            f"the cumulative remote climate limit of {cap_s(state, config) / 60:.0f} minutes is used up; start the car to reset it",
        )
    ends = now + min(duration_min * 60.0, left)
    return attrs.evolve(state, climate=attrs.evolve(c, started_at=now, ends_at=ends))


@on(ClimateStart)
def _start(state: VehicleState, msg: ClimateStart, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CLIMATE, "start the climate")
    state = start(state, msg.duration_min, cx.now, cx.config)  # the plan and the car first
    if msg.settings is not None:
        check_settings(msg.settings)
        state = attrs.evolve(state, climate=attrs.evolve(state.climate, settings=msg.settings))
    return state, status(state, cx.config)


@on(ClimateStop)
def _stop(state: VehicleState, msg: ClimateStop, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CLIMATE, "stop the climate")
    require_service(state, Service.NAVI)
    if not state.climate.running:
        raise refuse(Code.CONFLICT, "remote climate is not running")
    state = stop(state, cx.now)
    return state, status(state, cx.config)


@on(ClimateGet)
def _get(state: VehicleState, msg: ClimateGet, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CLIMATE, "read the climate status")
    require_service(state, Service.NAVI)
    return state, status(state, cx.config)


@on(ClimateSettingsSet)
def _settings(state: VehicleState, msg: ClimateSettingsSet, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CLIMATE, "change the climate settings")
    require_service(state, Service.NAVI)
    check_settings(msg.settings)
    state = attrs.evolve(state, climate=attrs.evolve(state.climate, settings=msg.settings))
    return state, status(state, cx.config)


def _parse_time(at: str) -> int:
    """'HH:MM' to seconds after midnight, or refuse."""
    try:
        hh, mm = at.split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise refuse(Code.INVALID_VALUE, f"schedule time {at!r} must be HH:MM") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise refuse(Code.INVALID_VALUE, f"schedule time {at!r} must be HH:MM between 00:00 and 23:59")
    return h * 3600 + m * 60


def next_fire(state: VehicleState, after: float) -> float | None:
    """The first scheduled start strictly after `after` (POSIX seconds), in the car's local time."""
    offset = state.info.tz_offset_s
    local = after + offset
    day_start = local - local % DAY
    weekday = int((day_start // DAY + 3) % 7)  # 1970-01-01 was a Thursday (3)
    best: float | None = None
    for sched in state.climate.schedules:
        second = _parse_time(sched.at)
        for ahead in range(8):
            if (weekday + ahead) % 7 in sched.weekdays:
                t = day_start + ahead * DAY + second - offset
                if t > after:
                    best = t if best is None else min(best, t)
                    break
    return best


@on(ClimateScheduleAdd)
def _schedule_add(state: VehicleState, msg: ClimateScheduleAdd, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CLIMATE, "schedule the climate")
    require_schedules(state)
    require_no_kit(state)
    if not msg.weekdays or any(not 0 <= d <= 6 for d in msg.weekdays):
        raise refuse(Code.INVALID_VALUE, "weekdays must be a non-empty list of 0 (Monday) .. 6 (Sunday)")
    if msg.duration_min not in cx.config.climate_durations_min:
        raise refuse(Code.INVALID_VALUE, f"a scheduled run lasts 10 or 20 minutes, not {msg.duration_min}")
    _parse_time(msg.at)
    c = state.climate
    if len(c.schedules) >= cx.config.max_climate_schedules:
        raise refuse(Code.LIMIT_REACHED, f"at most {cx.config.max_climate_schedules} climate schedules; remove one first")
    sched = ClimateSchedule(
        schedule_id=c.next_schedule_id,
        weekdays=tuple(sorted(set(msg.weekdays))),
        at=msg.at,
        duration_min=msg.duration_min,
    )
    state = attrs.evolve(state, climate=attrs.evolve(c, schedules=c.schedules + (sched,), next_schedule_id=c.next_schedule_id + 1))
    state = attrs.evolve(state, climate=attrs.evolve(state.climate, next_fire_at=next_fire(state, cx.now)))
    return state, status(state, cx.config)


@on(ClimateScheduleRemove)
def _schedule_remove(state: VehicleState, msg: ClimateScheduleRemove, cx: Ctx):  # type: ignore[no-untyped-def]
    require_function(state, cx, SharedFunction.REMOTE_CLIMATE, "remove a climate schedule")
    c = state.climate
    kept = tuple(s for s in c.schedules if s.schedule_id != msg.schedule_id)
    if len(kept) == len(c.schedules):
        raise refuse(Code.NOT_FOUND, f"no climate schedule {msg.schedule_id}")
    state = attrs.evolve(state, climate=attrs.evolve(c, schedules=kept))
    state = attrs.evolve(state, climate=attrs.evolve(state.climate, next_fire_at=next_fire(state, cx.now)))
    return state, status(state, cx.config)


def require_schedules(state: VehicleState) -> None:
    """Refuse unless the contract includes climate schedules for this car."""
    require_service(state, Service.NAVI)
    if state.contract.plan is Plan.LITE and not state.info.powertrain.plugs_in:
        raise refuse(Code.NOT_IN_PLAN, "on the Lite plan, climate schedules are for PHEV and BEV cars only")


def clear_schedules(state: VehicleState) -> VehicleState:
    return attrs.evolve(state, climate=attrs.evolve(state.climate, schedules=(), next_fire_at=None))


def fit_run(state: VehicleState, now: float, config: ModelConfig) -> VehicleState:
    """After a plan change: the minutes used count no more than the new cap, and a run in
    progress ends no later than that cap allows (counted only up to where the cap ran out)."""
    cap = cap_s(state, config)
    c = state.climate
    if c.used_s > cap:
        state = attrs.evolve(state, climate=attrs.evolve(c, used_s=cap))
        c = state.climate
    if c.started_at is None or c.ends_at is None:
        return state
    latest = c.started_at + max(0.0, cap - c.used_s)
    if latest >= c.ends_at:
        return state
    if latest <= now:
        return stop(state, latest)
    return attrs.evolve(state, climate=attrs.evolve(c, ends_at=latest))


def keep_allowed_schedules(state: VehicleState) -> VehicleState:
    """After a plan change: drop the schedules the new contract no longer includes."""
    try:
        require_schedules(state)
    except CommandRefused:
        return clear_schedules(state)
    return state


def advance(state: VehicleState, cx: Ctx) -> VehicleState:
    """Fire what is due at `cx.now`: the end of a run, then any scheduled start."""
    c = state.climate
    if c.ends_at is not None and c.ends_at <= cx.now:
        state = stop(state, c.ends_at)
    c = state.climate
    if c.next_fire_at is not None and c.next_fire_at <= cx.now:
        fired_at = c.next_fire_at
        due = [s for s in c.schedules if fired_at in _fire_times(state, s, fired_at)]
        duration = max((s.duration_min for s in due), default=c.schedules[0].duration_min if c.schedules else 10)
        try:
            state = stop(state, fired_at) if state.climate.running else state
            if state.telematics is Telematics.SIMULATED:
                state = start(state, duration, fired_at, cx.config)
                if state.climate.ends_at is not None and state.climate.ends_at <= cx.now:
                    state = stop(state, state.climate.ends_at)
            else:
                state = _start_on_the_car(state, duration, fired_at, cx)
        except CommandRefused as refused:
            skipped(state, cx, refused.message)
        state = attrs.evolve(state, climate=attrs.evolve(state.climate, next_fire_at=next_fire(state, fired_at)))
    return state


def _start_on_the_car(state: VehicleState, duration_min: int, at: float, cx: Ctx) -> VehicleState:
    """A linked car's scheduled start: the rules now, then the command to its unit, as for an
    app's start; the run begins in `started_by_schedule` once the unit confirms."""
    command = ClimateStart(duration_min=duration_min)
    if state.telematics is Telematics.OFFLINE:
        raise telematics.refuse_offline(state, command)
    start(state, duration_min, at, cx.config)  # raises if the rules refuse
    return telematics.forward(state, Envelope(command, sender=state.address, target=state.address, ts=at), cx)


def started_by_schedule(state: VehicleState, command: ClimateStart, cx: Ctx) -> VehicleState:
    """The unit carried out a scheduled start: the run begins now, if the rules still allow it."""
    try:
        return start(state, command.duration_min, cx.now, cx.config)
    except CommandRefused as refused:
        skipped(state, cx, refused.message)
        return state


def skipped(state: VehicleState, cx: Ctx, why: str) -> None:
    """Tell the owner a scheduled start did not happen, and why."""
    owner = state.contract.owner
    if owner:
        alert(state, cx, AlertType.CLIMATE, f"scheduled climate start skipped: {why}", recipients=[owner])


def _fire_times(state: VehicleState, sched: ClimateSchedule, around: float) -> set[float]:
    probe = attrs.evolve(state, climate=attrs.evolve(state.climate, schedules=(sched,)))
    t = next_fire(probe, around - 1.0)
    return {t} if t is not None else set()


def next_deadline(c: ClimateState) -> float | None:
    times = [t for t in (c.ends_at, c.next_fire_at) if t is not None]
    return min(times) if times else None
