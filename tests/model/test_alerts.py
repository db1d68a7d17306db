"""Alarm, start and "forgot" alerts, switched per recipient and channel (SPEC: G-Security)."""

from __future__ import annotations

from collections import Counter

import pytest

from twin.errors import Code
from twin.model import DEFAULT_ALERTS, DEFAULT_CONFIG
from twin.protocol import (
    Alert,
    AlarmSounding,
    AlertSettingsGet,
    AlertSettingsSet,
    AlertType,
    ChargingChanged,
    Channel,
    HazardsChanged,
    LockedByKey,
    Plan,
    PositionReported,
    Power,
    Powertrain,
    SharedFunction,
    ShareInvite,
    Window,
    WindowChanged,
)

from ._helpers import (
    EPOCH,
    HOME,
    OWNER,
    VEHICLE,
    advance,
    alerts_in,
    both_channels,
    car,
    ignition,
    lite,
    ok,
    refused,
    report,
    send,
    with_key,
    with_sharee,
)

DELAY = DEFAULT_CONFIG.forgot_delay_s


def test_defaults_alarm_on_start_off_on_both_channels() -> None:
    assert {(AlertType.ALARM, c) for c in Channel} <= DEFAULT_ALERTS
    assert not {(AlertType.START, c) for c in Channel} & DEFAULT_ALERTS
    _, result, _ = ok(car(), AlertSettingsGet())
    assert result.enabled == DEFAULT_ALERTS


def test_settings_are_per_recipient_and_per_channel() -> None:
    state = with_sharee(car(), "bob")
    state, result, _ = ok(state, AlertSettingsSet(alert=AlertType.ALARM, channel=Channel.EMAIL, enabled=False))
    assert (AlertType.ALARM, Channel.EMAIL) not in result.enabled
    assert (AlertType.ALARM, Channel.PUSH) in result.enabled
    state, result, _ = ok(state, AlertSettingsSet(alert=AlertType.START, channel=Channel.PUSH, enabled=True), "bob")
    assert result.enabled == DEFAULT_ALERTS | {(AlertType.START, Channel.PUSH)}
    _, mine, _ = ok(state, AlertSettingsGet())
    assert mine.enabled == DEFAULT_ALERTS - {(AlertType.ALARM, Channel.EMAIL)}  # bob's change is his alone
    state, out = report(state, AlarmSounding(), EPOCH + 1)
    assert sorted(alerts_in(out)) == sorted([(OWNER, AlertType.ALARM, Channel.PUSH)] + both_channels("bob", AlertType.ALARM))
    state, out = ignition(state, Power.ON, EPOCH + 2)
    assert alerts_in(out) == [("bob", AlertType.START, Channel.PUSH)]


@pytest.mark.parametrize("who", ["carol", "mallory", "zed"])  # key holder, stranger, invitee not yet accepted
def test_only_owner_and_sharees_have_alert_settings(who: str) -> None:
    state = with_key(car(), "carol")
    state, _ = send(state, ShareInvite(account="zed"), OWNER, EPOCH, 90)
    refused(state, AlertSettingsSet(alert=AlertType.ALARM, channel=Channel.PUSH, enabled=False), Code.NOT_AUTHORIZED, who)
    refused(state, AlertSettingsGet(), Code.NOT_AUTHORIZED, who)


def test_the_alarm_fans_out_once_per_subscribed_account_and_channel_with_the_place() -> None:
    state = car()
    state = with_sharee(state, "bob", {SharedFunction.CAR_FINDER})
    state = with_sharee(state, "dan", id=51)
    state = with_key(state, "carol")
    state, _ = send(state, ShareInvite(account="zed"), OWNER, EPOCH, 91)  # pending: gets nothing
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.ALARM, channel=Channel.PUSH, enabled=False), "dan")
    state, _ = report(state, PositionReported(lat=HOME.lat, lon=HOME.lon), EPOCH + 1)
    state, out = report(state, AlarmSounding(cause="door forced"), EPOCH + 2)
    sent = alerts_in(out)
    assert Counter(sent) == Counter(both_channels(OWNER, AlertType.ALARM) + both_channels("bob", AlertType.ALARM) + [("dan", AlertType.ALARM, Channel.EMAIL)])
    for env in out:
        assert isinstance(env.body, Alert) and env.sender == "car:c1"
        assert env.body.position == HOME and env.body.at == EPOCH + 2 and "door forced" in env.body.text
    assert state.security.alarm_sounded_at == EPOCH + 2


def test_nobody_subscribed_means_no_alarm_alert() -> None:
    state = car()
    for channel in Channel:
        state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.ALARM, channel=channel, enabled=False))
    state, out = report(state, AlarmSounding(), EPOCH + 1)
    assert out == []


def test_start_alert_only_when_enabled_and_only_on_ignition_on() -> None:
    state = car()
    state, out = ignition(state, Power.ON, EPOCH + 1)
    assert alerts_in(out) == []  # off by default
    state, _ = ignition(state, Power.OFF, EPOCH + 2)
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.START, channel=Channel.EMAIL, enabled=True), now=EPOCH + 3)
    state, out = ignition(state, Power.ACC, EPOCH + 4)
    assert alerts_in(out) == []
    state, out = ignition(state, Power.ON, EPOCH + 5)
    assert alerts_in(out) == [(OWNER, AlertType.START, Channel.EMAIL)]
    state, out = ignition(state, Power.ON, EPOCH + 6)  # already on: no second alert
    assert alerts_in(out) == []


# --- forgot alerts


def left_car(**kw):  # type: ignore[no-untyped-def]
    """Driven, then switched OFF at EPOCH + 10 with nothing left behind."""
    state = car(**kw)
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    return state


LEFT = {
    "unlocked": (LockedByKey(locked=False), AlertType.FORGOT_LOCK, "unlocked"),
    "hazards": (HazardsChanged(on=True), AlertType.FORGOT_HAZARDS, "hazard"),
    "window": (WindowChanged(window=Window.REAR_RIGHT, position_pct=20), AlertType.FORGOT_WINDOWS, "rear_right"),
}


@pytest.mark.parametrize("what", list(LEFT))
def test_a_forgot_alert_comes_after_the_delay(what: str) -> None:
    event, kind, word = LEFT[what]
    state = car()
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, event, EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    assert VEHICLE.next_deadline(state) == EPOCH + 10 + DELAY
    state, out = advance(state, EPOCH + 10 + DELAY - 0.001)
    assert out == []
    state, out = advance(state, EPOCH + 10 + DELAY)
    assert alerts_in(out) == both_channels(OWNER, kind)
    assert all(word in e.body.text and e.body.at == EPOCH + 10 + DELAY for e in out)
    state, out = advance(state, EPOCH + 10 * DELAY)
    assert out == []  # once only


def test_all_three_forgot_alerts_at_once_and_to_sharees_too() -> None:
    state = with_sharee(car(), "bob")
    state, _ = ignition(state, Power.ON, EPOCH)
    for event, _, _ in LEFT.values():
        state, _ = report(state, event, EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    _, out = advance(state, EPOCH + 10 + DELAY)
    assert Counter(alerts_in(out)) == Counter(
        pair for kind in (AlertType.FORGOT_LOCK, AlertType.FORGOT_HAZARDS, AlertType.FORGOT_WINDOWS) for who in (OWNER, "bob") for pair in both_channels(who, kind)
    )


def test_forgot_alerts_reach_only_sharees_given_the_vehicle_information() -> None:
    state = with_sharee(car(), "bob", {SharedFunction.VEHICLE_INFO})
    state = with_sharee(state, "dan", {SharedFunction.REMOTE_CHECK, SharedFunction.REMOTE_OPERATION}, id=51)
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, LockedByKey(locked=False), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    state, out = advance(state, EPOCH + 10 + DELAY)
    assert Counter(alerts_in(out)) == Counter(both_channels(OWNER, AlertType.FORGOT_LOCK) + both_channels("bob", AlertType.FORGOT_LOCK))
    _, out = report(state, AlarmSounding(), EPOCH + 2 * DELAY)  # the alarm still reaches every sharee
    assert {who for who, _, _ in alerts_in(out)} == {OWNER, "bob", "dan"}


def test_nothing_forgotten_means_no_alert() -> None:
    state = left_car()
    _, out = advance(state, EPOCH + 10 + DELAY)
    assert out == []


def test_fixing_it_before_the_delay_means_no_alert() -> None:
    state = car()
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, LockedByKey(locked=False), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    state, _ = report(state, LockedByKey(locked=True), EPOCH + 20)
    _, out = advance(state, EPOCH + 10 + DELAY)
    assert out == []


@pytest.mark.parametrize("power", [Power.ON, Power.ACC])
def test_power_back_on_cancels_the_forgot_check(power: Power) -> None:
    state = car()
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, HazardsChanged(on=True), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    state, _ = ignition(state, power, EPOCH + 20)
    assert state.security.forgot_due_at is None
    _, out = advance(state, EPOCH + 10 * DELAY)
    assert alerts_in(out) == []


@pytest.mark.parametrize("powertrain", [Powertrain.PHEV, Powertrain.BEV])
def test_no_forgot_alerts_for_a_charging_lite_plug_in(powertrain: Powertrain) -> None:
    state = lite(powertrain=powertrain)
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, LockedByKey(locked=False), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    state, _ = report(state, ChargingChanged(charging=True), EPOCH + 20)
    _, out = advance(state, EPOCH + 10 + DELAY)
    assert out == []


@pytest.mark.parametrize(("plan", "powertrain"), [(Plan.STANDARD, Powertrain.PHEV), (Plan.LITE, Powertrain.HYBRID)])
def test_forgot_alerts_still_come_for_standard_or_non_plug_in_cars(plan: Plan, powertrain: Powertrain) -> None:
    state = car(plan=plan, powertrain=powertrain)
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, LockedByKey(locked=False), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    if powertrain.plugs_in:
        state, _ = report(state, ChargingChanged(charging=True), EPOCH + 20)
    _, out = advance(state, EPOCH + 10 + DELAY)
    assert alerts_in(out) == both_channels(OWNER, AlertType.FORGOT_LOCK)


def test_a_recipient_can_switch_off_one_forgot_alert() -> None:
    state = car()
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.FORGOT_WINDOWS, channel=Channel.PUSH, enabled=False))
    state, _ = ignition(state, Power.ON, EPOCH)
    state, _ = report(state, WindowChanged(window=Window.FRONT_LEFT, position_pct=5), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 10)
    _, out = advance(state, EPOCH + 10 + DELAY)
    assert alerts_in(out) == [(OWNER, AlertType.FORGOT_WINDOWS, Channel.EMAIL)]
