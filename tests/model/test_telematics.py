"""A linked car: the twin decides, the telematics unit carries out (twin.model.telematics)."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, VEHICLE, VehicleState
from twin.protocol import (
    AlertSettingsSet,
    AlertType,
    Channel,
    ClimateScheduleAdd,
    ClimateStart,
    CoverageChanged,
    DoorChanged,
    Door,
    Done,
    Envelope,
    Error,
    FlashHazards,
    Lock,
    Ok,
    RemoteCheck,
    Snapshot,
    StateChanged,
    Telematics,
    Unlock,
)

from ._helpers import CAR, EPOCH, OWNER, alerts_in, both_channels, car, ok, only_reply, refused, send, user

UNIT = "unit:c1"


def online(**kw: object) -> VehicleState:
    return car(telematics=Telematics.ONLINE, **kw)


def unit_answers(state: VehicleState, actuation_id: int, body: object, now: float = EPOCH + 1) -> tuple[VehicleState, list[Envelope]]:
    return VEHICLE.step(state, Envelope(body, sender=UNIT, target=CAR, id=actuation_id, ts=now), now)  # type: ignore[arg-type]


def forwarded(outbox: list[Envelope]) -> Envelope:
    """The one actuation in `outbox`: the command, sent to the unit, nothing else."""
    assert len(outbox) == 1, outbox
    env = outbox[0]
    assert env.target == UNIT and env.sender == CAR and env.id > 0
    return env


def test_a_simulated_car_carries_a_lock_out_at_once() -> None:
    new, result, out = ok(car(), Lock())
    assert new.status.locked.value and isinstance(result, Snapshot)
    assert not any(e.target == UNIT for e in out)


def test_an_online_car_locks_only_once_its_unit_confirms() -> None:
    state = online()
    waiting, out = send(state, Lock(), id=9)
    sent = forwarded(out)
    assert sent.body == Lock()
    assert waiting.status == state.status and len(waiting.actuations) == 1
    done, out = unit_answers(waiting, sent.id, Ok(result=Done(detail="locked")))
    assert done.status.locked.value and done.status.locked.at == EPOCH + 1
    assert done.actuations == ()
    reply = only_reply(out, OWNER, 9)
    assert isinstance(reply, Ok) and reply.result.locked.value  # type: ignore[attr-defined]
    assert any(isinstance(e.body, StateChanged) for e in out)  # the push follows the real change


def test_a_refusal_is_answered_at_once_and_nothing_reaches_the_unit() -> None:
    state = online()
    message = refused(state, Unlock(), Code.NOT_AUTHORIZED, sender="mallory")
    assert "owner" in message


def test_the_unit_failing_becomes_actuation_failed_and_changes_nothing() -> None:
    state = online()
    waiting, out = send(state, FlashHazards(), id=4)
    sent = forwarded(out)
    after, out = unit_answers(waiting, sent.id, Error(code="bulb", message="hazard relay stuck"))
    reply = only_reply(out, OWNER, 4)
    assert isinstance(reply, Error) and reply.code == Code.ACTUATION_FAILED.value
    assert "hazard relay stuck" in reply.message and "flash_hazards" in reply.message
    assert after.actuations == () and after.status == state.status


def test_a_silent_unit_times_out_at_the_configured_time() -> None:
    state = online()
    waiting, out = send(state, ClimateStart(duration_min=10), id=5)
    forwarded(out)
    due = VEHICLE.next_deadline(waiting)
    assert due == EPOCH + VEHICLE.config.actuation_timeout_s
    after, out = VEHICLE.advance(waiting, due)
    reply = only_reply(out, OWNER, 5)
    assert isinstance(reply, Error) and reply.code == Code.TIMEOUT.value
    assert not after.climate.running and after.actuations == ()


def test_a_late_or_unknown_confirmation_changes_nothing() -> None:
    state = online()
    after, out = unit_answers(state, 77, Ok(result=Done(detail="locked")))
    assert after is state and out == []


def test_the_link_dropping_answers_offline_and_the_car_goes_offline() -> None:
    state = online()
    waiting, out = send(state, Lock(), id=6)
    forwarded(out)
    gone, out = VEHICLE.step(waiting, Envelope(CoverageChanged(online=False), sender="hub", target=CAR, ts=EPOCH), EPOCH)
    reply = only_reply(out, OWNER, 6)
    assert isinstance(reply, Error) and reply.code == Code.OFFLINE.value
    assert gone.telematics is Telematics.OFFLINE and gone.actuations == ()
    pushed = [e.body for e in out if isinstance(e.body, StateChanged)]
    assert [p.snapshot.telematics for p in pushed] == [Telematics.OFFLINE]


def test_an_offline_car_refuses_actuations_but_answers_reads_and_centre_commands() -> None:
    state = car(telematics=Telematics.OFFLINE)
    message = refused(state, Lock(), Code.OFFLINE)
    assert "offline" in message and "lock" in message
    _, snap, _ = ok(state, RemoteCheck())
    assert snap.telematics is Telematics.OFFLINE
    changed, _, _ = ok(state, AlertSettingsSet(alert=AlertType.START, channel=Channel.PUSH, enabled=True))
    assert changed.alert_prefs != state.alert_prefs


def test_only_the_hub_reports_coverage_and_a_simulated_car_ignores_it() -> None:
    state = car(telematics=Telematics.OFFLINE)
    for sender in (UNIT, CAR, user(OWNER)):
        after, out = VEHICLE.step(state, Envelope(CoverageChanged(online=True), sender=sender, target=CAR, ts=EPOCH), EPOCH)
        assert after is state and out == []
    after, _ = VEHICLE.step(state, Envelope(CoverageChanged(online=True), sender="hub", target=CAR, ts=EPOCH), EPOCH)
    assert after.telematics is Telematics.ONLINE
    simulated = car()
    after, _ = VEHICLE.step(simulated, Envelope(CoverageChanged(online=False), sender="hub", target=CAR, ts=EPOCH), EPOCH)
    assert after is simulated


def test_events_come_from_the_cars_own_unit_only() -> None:
    state = online()
    opened, out = send(state, DoorChanged(door=Door.TRUNK, open=True), sender=UNIT)
    assert opened.status.doors_open[-1].value and opened.status.doors_open[-1].at == EPOCH
    refused(state, DoorChanged(door=Door.TRUNK, open=True), Code.NOT_AUTHORIZED, sender="unit:other")
    refused(state, DoorChanged(door=Door.TRUNK, open=True), Code.NOT_AUTHORIZED, sender=OWNER)


# --- a scheduled climate start on a linked car: carried out by its unit, like an app's start

FRI_0730 = EPOCH + 22.5 * 3600  # Fri 07:30 JST


def scheduled(state: VehicleState) -> VehicleState:
    new, _, _ = ok(state, ClimateScheduleAdd(weekdays=(4,), at="07:30", duration_min=20))
    return new


def test_a_scheduled_start_goes_to_the_unit_and_the_run_begins_once_it_confirms() -> None:
    waiting, out = VEHICLE.advance(scheduled(online()), FRI_0730)
    sent = forwarded(out)
    assert sent.body == ClimateStart(duration_min=20) and not waiting.climate.running
    assert VEHICLE.next_deadline(waiting) == FRI_0730 + DEFAULT_CONFIG.actuation_timeout_s  # the unit's time to answer
    done, out = unit_answers(waiting, sent.id, Ok(result=Done(detail="climate started")), now=FRI_0730 + 2)
    assert done.climate.running and (done.climate.started_at, done.climate.ends_at) == (FRI_0730 + 2, FRI_0730 + 2 + 20 * 60)
    assert done.actuations == () and not [e for e in out if e.target == CAR]  # no reply to itself


@pytest.mark.parametrize(
    "outcome, words",
    [
        (Error(code="hvac", message="blower fault"), "blower fault"),
        (None, "did not confirm"),  # the unit stays silent
    ],
)
def test_a_scheduled_start_the_unit_does_not_carry_out_tells_the_owner(outcome: Error | None, words: str) -> None:
    waiting, out = VEHICLE.advance(scheduled(online()), FRI_0730)
    sent = forwarded(out)
    if outcome is None:
        after, out = VEHICLE.advance(waiting, FRI_0730 + 60)
    else:
        after, out = unit_answers(waiting, sent.id, outcome, now=FRI_0730 + 2)
    assert not after.climate.running and after.actuations == ()
    assert alerts_in(out) == both_channels(OWNER, AlertType.CLIMATE)
    assert "skipped" in out[0].body.text and words in out[0].body.text  # type: ignore[attr-defined]
    assert not [e for e in out if e.target == CAR]


def test_a_scheduled_start_on_an_offline_car_is_skipped_and_the_owner_told_why() -> None:
    state = scheduled(car(telematics=Telematics.OFFLINE))
    after, out = VEHICLE.advance(state, FRI_0730)
    assert not after.climate.running and after.actuations == ()
    assert alerts_in(out) == both_channels(OWNER, AlertType.CLIMATE)
    assert "offline" in out[0].body.text  # type: ignore[attr-defined]
    assert VEHICLE.next_deadline(after) == FRI_0730 + 7 * 86400  # next week's


def test_a_link_that_drops_before_confirming_a_scheduled_start_tells_the_owner() -> None:
    waiting, _ = VEHICLE.advance(scheduled(online()), FRI_0730)
    after, out = VEHICLE.step(waiting, Envelope(CoverageChanged(online=False), sender="hub", target=CAR, ts=FRI_0730 + 1), FRI_0730 + 1)
    assert not after.climate.running
    assert (OWNER, AlertType.CLIMATE, Channel.PUSH) in alerts_in(out)
