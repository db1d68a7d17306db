"""Contract, plans, options and handing the car over (SPEC p.8, p.38-40)."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_ALERTS, DEFAULT_CONFIG, new_user
from twin.protocol import (
    AlarmSounding,
    AlertSettingsGet,
    AlertSettingsSet,
    AlertType,
    CasesClose,
    Channel,
    ClimateScheduleAdd,
    ClimateSettings,
    ClimateSettingsSet,
    ClimateStart,
    ContractCancel,
    ContractGet,
    ContractOptions,
    ContractPlan,
    DriverList,
    DriverProfile,
    DriverRegister,
    EmergencyButton,
    GarageChanged,
    GetVehicleInfo,
    HandoverDeleteKeys,
    HandoverStage,
    HandoverWipe,
    KeyIssue,
    KeyList,
    KeyNear,
    Locate,
    Message,
    Plan,
    PoliceReport,
    PositionReported,
    Power,
    RemoteCheck,
    Role,
    ShareInvite,
    ShareList,
    TrackingRequest,
    WifiDevice,
    WifiStatus,
    WifiUsage,
)

from ._helpers import (
    AWAY,
    CAR,
    EPOCH,
    HOME,
    OWNER,
    USER,
    advance,
    bodies_to,
    car,
    ignition,
    ok,
    refused,
    rejected_event,
    report,
    send,
    with_key,
    with_sharee,
)

YEAR = DEFAULT_CONFIG.contract_year_s


# --- signing up, fees, options


@pytest.mark.parametrize(
    ("plan", "navi", "yearly", "signup"),
    [(Plan.STANDARD, False, 0, 0), (Plan.STANDARD, True, 0, 0), (Plan.LITE, False, 22_800, 8_148)],
)
def test_a_stranger_signs_up_on_an_unowned_car_and_becomes_its_owner(plan: Plan, navi: bool, yearly: int, signup: int) -> None:
    state = car(owner=None)
    state, result, out = ok(state, ContractPlan(plan=plan, navi_package=navi), "dave", EPOCH)
    assert (result.owner, result.plan, result.navi_package) == ("dave", plan, navi)
    assert (result.yearly_fee_jpy, result.signup_fee_jpy, result.monthly_fee_jpy) == (yearly, signup, 0)
    assert result.renews_at == EPOCH + YEAR
    (garage,) = bodies_to(out, "dave", GarageChanged)
    assert garage == GarageChanged(car=CAR, role=Role.OWNER, added=True)
    dave, _ = USER.step(new_user("dave"), next(e for e in out if e.target == "user:dave" and isinstance(e.body, GarageChanged)), EPOCH)
    assert dave.garage == {CAR: Role.OWNER}
    _, again, _ = ok(state, ContractGet(), "dave", EPOCH + 1)
    assert again.signup_fee_jpy == 0  # paid once, at sign-up
    assert not state.contract.emergency_checked  # the unit must be checked after sign-up
    rejected_event(state, EmergencyButton(), Code.EMERGENCY_UNIT_UNCHECKED)


def test_the_navi_package_is_not_sold_with_lite() -> None:
    _, result, _ = ok(car(owner=None), ContractPlan(plan=Plan.LITE, navi_package=True), "dave")
    assert result.navi_package is False
    refused(car(), ContractPlan(plan=Plan.LITE, navi_package=True), Code.INVALID_VALUE)


@pytest.mark.parametrize(
    ("plan", "wifi", "dashcam", "monthly"),
    [
        (Plan.STANDARD, True, False, 1_650),
        (Plan.STANDARD, False, True, 550),
        (Plan.STANDARD, True, True, 2_200),
        (Plan.LITE, True, False, 1_650),
        (Plan.LITE, False, False, 0),
    ],
)
def test_option_fees(plan: Plan, wifi: bool, dashcam: bool, monthly: int) -> None:
    state = car(plan=plan, has_dashcam=True)
    state, result, _ = ok(state, ContractOptions(wifi=wifi, dashcam=dashcam))
    assert (result.wifi, result.dashcam, result.monthly_fee_jpy) == (wifi, dashcam, monthly)
    assert result.yearly_fee_jpy == (22_800 if plan is Plan.LITE else 0)


def test_moving_to_lite_pays_the_sign_up_fee_and_drops_the_dashcam_option() -> None:
    state = car(has_dashcam=True, dashcam=True, wifi=True)
    state, result, _ = ok(state, ContractPlan(plan=Plan.LITE))
    assert (result.plan, result.dashcam, result.wifi, result.navi_package) == (Plan.LITE, False, True, False)
    assert (result.signup_fee_jpy, result.yearly_fee_jpy, result.monthly_fee_jpy) == (8_148, 22_800, 1_650)
    state, result, _ = ok(state, ContractPlan(plan=Plan.LITE))
    assert result.signup_fee_jpy == 0  # already on Lite
    state, result, _ = ok(state, ContractPlan(plan=Plan.STANDARD, navi_package=True))
    assert (result.plan, result.navi_package, result.yearly_fee_jpy, result.signup_fee_jpy) == (Plan.STANDARD, True, 0, 0)


def test_signing_up_on_an_owned_car_is_refused() -> None:
    refused(car(), ContractPlan(plan=Plan.LITE), Code.NOT_AUTHORIZED, "dave")


@pytest.mark.parametrize("sender", ["car:c1", "operator", "app:dave"])
def test_only_a_persons_account_signs_up(sender: str) -> None:
    refused(car(owner=None), ContractPlan(plan=Plan.STANDARD), Code.NOT_AUTHORIZED, sender)


# --- cancelling


def test_cancel_unlinks_the_owner_and_ends_options_sharing_and_alerts_without_refund() -> None:
    state = with_sharee(car(wifi=True, position=HOME), "bob")
    state, _ = send(state, ShareInvite(account="zed"), OWNER, EPOCH, 80)  # a pending invitation
    state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(4,), at="07:30"))
    state, _ = ignition(state, Power.ACC, EPOCH)
    state, _ = report(state, WifiDevice(device_id="tablet", joined=True), EPOCH)
    state, result, out = ok(state, ContractCancel(), now=EPOCH + 100 * 86400)
    assert (result.owner, result.plan, result.wifi, result.dashcam, result.refund_jpy) == (None, None, False, False, 0)
    assert bodies_to(out, OWNER, GarageChanged) == [GarageChanged(car=CAR, role=Role.OWNER, added=False)]
    assert bodies_to(out, "bob", GarageChanged) == [GarageChanged(car=CAR, role=Role.SHAREE, added=False)]
    assert bodies_to(out, "operator") == [CasesClose(car=CAR, at=EPOCH + 100 * 86400)]  # the desk closes its cases
    assert [e.id for e in out if e.target == "user:alice" and e.body.KIND == "reply"] == [80, 1]  # the invite is answered too
    assert state.shares == () and state.pending == () and state.wifi.devices == ()
    assert state.climate.schedules == () and state.alert_prefs == {}
    state, out = report(state, AlarmSounding(), EPOCH + 101 * 86400)
    assert out == []
    _, out = advance(state, EPOCH + 200 * 86400)
    assert out == []
    for who in (OWNER, "bob"):
        refused(state, RemoteCheck(), Code.NOT_AUTHORIZED, who)


def test_cancel_is_refused_while_digital_keys_remain() -> None:
    state = with_key(car(), "carol")
    assert "delete the digital keys" in refused(state, ContractCancel(), Code.WRONG_ORDER)
    state, _ = send(car(), KeyIssue(account="carol"), OWNER, EPOCH, 5)  # even one still on its way
    refused(state, ContractCancel(), Code.WRONG_ORDER)


def test_cancel_needs_no_key_step_when_there_never_were_keys() -> None:
    _, result, out = ok(car(plan=Plan.LITE), ContractCancel())
    assert result.owner is None
    # the car cannot know whether the desk holds a case for it, so it always says so
    assert [(e.sender, e.target, e.body) for e in out if e.target == "operator"] == [(CAR, "operator", CasesClose(car=CAR, at=EPOCH))]


# --- the hand-over, in order


def lived_in():  # type: ignore[no-untyped-def]
    """Alice's car with everything personal: drivers, a sharee, a key, settings, places, usage."""
    state = car(wifi=True, position=HOME)
    state = with_sharee(state, "bob")
    state = with_key(state, "carol")
    state, _, _ = ok(state, DriverRegister(account=OWNER, name="Alice", profile=DriverProfile(search_history=("Secret clinic",))))
    state, _, _ = ok(state, DriverRegister(account="bob", name="Bob"), "bob")
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.START, channel=Channel.EMAIL, enabled=True))
    state, _, _ = ok(state, ClimateSettingsSet(settings=ClimateSettings(temperature_c=27.5, seat_heaters=True)))
    state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(0, 1), at="06:45"))
    state, _, _ = ok(state, PoliceReport(report_no="P-ALICE-1"))
    state, _ = report(state, AlarmSounding(), EPOCH)
    state, _ = ignition(state, Power.ON, EPOCH + 10)
    state, _ = report(state, PositionReported(lat=AWAY.lat, lon=AWAY.lon), EPOCH + 20)
    state, _ = report(state, WifiUsage(megabytes=7 * 1024), EPOCH + 30)
    state, _ = ignition(state, Power.OFF, EPOCH + 40)
    state, _ = report(state, KeyNear(account=OWNER), EPOCH + 50)
    return state


LATER = EPOCH + 2 * 86400


def handed_over():  # type: ignore[no-untyped-def]
    state, result, _ = ok(lived_in(), HandoverDeleteKeys(), now=LATER)
    assert result.stage is HandoverStage.KEYS_DELETED
    state, _, _ = ok(state, ContractCancel(), now=LATER + 1)
    assert state.contract.handover is HandoverStage.CANCELLED
    state, result, _ = ok(state, HandoverWipe(), now=LATER + 2)
    assert result.stage is HandoverStage.WIPED
    return state


def test_delete_keys_tells_each_holder() -> None:
    state, _, out = ok(lived_in(), HandoverDeleteKeys(), now=LATER)
    assert bodies_to(out, "carol", GarageChanged) == [GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)]
    assert state.keys == ()


def test_each_hand_over_step_out_of_order_is_refused() -> None:
    state, _ = advance(lived_in(), LATER)
    refused(state, HandoverWipe(), Code.WRONG_ORDER, now=LATER)  # 3 before 1
    refused(state, ContractCancel(), Code.WRONG_ORDER, now=LATER)  # 2 before 1
    state, _, _ = ok(state, HandoverDeleteKeys(), now=LATER)
    refused(state, HandoverWipe(), Code.WRONG_ORDER, now=LATER + 1)  # 3 before 2
    state, _, _ = ok(state, ContractCancel(), now=LATER + 1)
    refused(state, HandoverDeleteKeys(), Code.WRONG_ORDER, now=LATER + 2)  # 1 after 2
    refused(state, ContractCancel(), Code.WRONG_ORDER, now=LATER + 2)  # 2 again
    refused(state, ContractPlan(plan=Plan.STANDARD), Code.WRONG_ORDER, "dave", LATER + 2)  # a new owner before 3
    refused(state, HandoverWipe(), Code.NOT_AUTHORIZED, "bob", LATER + 2)  # only the former owner wipes
    state, _, _ = ok(state, HandoverWipe(), now=LATER + 3)
    refused(state, HandoverWipe(), Code.NOT_AUTHORIZED, now=LATER + 4)  # alice is nobody to this car now


SECRETS = ["alice", "bob", "carol", "Secret clinic", "P-ALICE", "27.5", "06:45", str(HOME.lat), str(AWAY.lat)]


def new_owner():  # type: ignore[no-untyped-def]
    state, _, _ = ok(handed_over(), ContractPlan(plan=Plan.STANDARD, navi_package=True), "dave", LATER + 10)
    state, _, _ = ok(state, ContractOptions(wifi=True), "dave", LATER + 11)
    return state


READS: list[Message] = [
    ContractGet(), DriverList(), ShareList(), KeyList(), AlertSettingsGet(), RemoteCheck(), Locate(),
    GetVehicleInfo(), WifiStatus(), ClimateStart(duration_min=10),
]


def test_after_the_wipe_the_car_holds_nothing_of_the_old_owner() -> None:
    state = handed_over()
    text = repr(state)
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} is still in the wiped car"


@pytest.mark.parametrize("body", READS, ids=lambda b: b.TYPE)
def test_a_new_owner_reads_nothing_of_the_old_one(body: Message) -> None:
    _, result, _ = ok(new_owner(), body, "dave", LATER + 20)
    text = repr(result)
    for secret in SECRETS:
        assert secret not in text, f"{body.TYPE} shows {secret!r} to the new owner: {result!r}"


def test_a_new_owner_starts_from_defaults() -> None:
    state = new_owner()
    _, alerts, _ = ok(state, AlertSettingsGet(), "dave", LATER + 20)
    assert alerts.enabled == DEFAULT_ALERTS
    _, wifi, _ = ok(state, WifiStatus(), "dave", LATER + 20)
    assert wifi.throttled is False  # alice's 7 GB were hers
    _, where, _ = ok(state, Locate(), "dave", LATER + 20)
    assert where.position.value is None
    _, climate, _ = ok(state, ClimateStart(duration_min=10), "dave", LATER + 20)
    assert climate.schedules == () and climate.settings == ClimateSettings()
    refused(state, TrackingRequest(), Code.NOT_ELIGIBLE, "dave", LATER + 20)  # alice's alarm and report are gone
    _, drivers, _ = ok(state, DriverRegister(account="dave", name="Dave"), "dave", LATER + 20)
    assert [d.account for d in drivers.drivers] == ["dave"]


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
@pytest.mark.parametrize("body", READS, ids=lambda b: b.TYPE)
def test_the_old_owner_sharee_and_key_holder_read_nothing_after_the_hand_over(body: Message, who: str) -> None:
    state = new_owner()
    refused(state, body, Code.NOT_AUTHORIZED, who, LATER + 20)


def test_a_former_sharee_who_was_a_driver_reads_no_profiles_once_cancelled() -> None:
    state, _, _ = ok(lived_in(), HandoverDeleteKeys(), now=LATER)
    state, _, _ = ok(state, ContractCancel(), now=LATER + 1)
    refused(state, DriverList(), Code.NOT_IN_PLAN, "bob", LATER + 2)
