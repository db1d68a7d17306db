"""Who may do what (SPEC: parties, plan table, sharing): plans and options, roles, strangers.

Each refusal is checked with `refused`, which also checks that the refused state comes back
as the very same object and that nothing but the one `Error` reply is sent.
"""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.protocol import (
    AirbagDeployed,
    AlarmSounding,
    AlertSettingsGet,
    AlertSettingsSet,
    AlertType,
    ChargingChanged,
    Channel,
    ClimateScheduleAdd,
    ClimateScheduleRemove,
    ClimateSettings,
    ClimateSettingsSet,
    ClimateStart,
    ClimateStop,
    ClimateGet,
    ClipTrigger,
    CloseWindows,
    ContractCancel,
    ContractGet,
    ContractOptions,
    ContractPlan,
    DashcamClip,
    Door,
    DoorChanged,
    DriverList,
    DriverRegister,
    DriverRemove,
    DriverUpdate,
    DriverProfile,
    Done,
    EmergencyButton,
    EmergencyUnitCheck,
    EnergyReported,
    Error,
    FlashHazards,
    GetVehicleInfo,
    GuardExtensionAnswer,
    GuardRequest,
    HandoverDeleteKeys,
    HandoverWipe,
    HazardsChanged,
    IgnitionChanged,
    Impact,
    KeyAction,
    KeyIssue,
    KeyList,
    KeyNear,
    KeyRelease,
    KeyRevoke,
    KeyUse,
    Locate,
    Lock,
    LockedByKey,
    Message,
    Occupancy,
    Ok,
    Plan,
    PoliceReport,
    PositionReported,
    Power,
    Powertrain,
    RemoteCheck,
    SetHazards,
    SharedFunction,
    ShareAccept,
    ShareDecline,
    ShareInvite,
    ShareList,
    ShareRevoke,
    SoftwareAvailable,
    SoftwareUpdateAccept,
    TrackingRequest,
    Unlock,
    Window,
    WindowChanged,
    WifiDevice,
    WifiStatus,
    WifiUsage,
    message_types,
)

from ._helpers import (
    CAR,
    EPOCH,
    HOME,
    OWNER,
    VEHICLE,
    car,
    ok,
    only_reply,
    refused,
    rejected_event,
    replies,
    report,
    send,
    with_key,
    with_sharee,
)

STRANGER = "mallory"


def every_command(sender: str) -> dict[type[Message], Message]:
    """One well-formed instance of every command a car could be sent, as `sender` would send it."""
    return {
        Lock: Lock(),
        Unlock: Unlock(),
        SetHazards: SetHazards(on=False),
        CloseWindows: CloseWindows(),
        FlashHazards: FlashHazards(),
        Locate: Locate(),
        RemoteCheck: RemoteCheck(),
        GetVehicleInfo: GetVehicleInfo(),
        ClimateStart: ClimateStart(duration_min=10),
        ClimateStop: ClimateStop(),
        ClimateGet: ClimateGet(),
        ClimateSettingsSet: ClimateSettingsSet(settings=ClimateSettings(temperature_c=24.0)),
        ClimateScheduleAdd: ClimateScheduleAdd(weekdays=(0,), at="07:00"),
        ClimateScheduleRemove: ClimateScheduleRemove(schedule_id=1),
        AlertSettingsSet: AlertSettingsSet(alert=AlertType.START, channel=Channel.PUSH, enabled=True),
        AlertSettingsGet: AlertSettingsGet(),
        ShareInvite: ShareInvite(account="zed"),
        ShareAccept: ShareAccept(),
        ShareDecline: ShareDecline(),
        ShareRevoke: ShareRevoke(account="bob"),
        ShareList: ShareList(),
        KeyIssue: KeyIssue(account="zed"),
        KeyRevoke: KeyRevoke(key_id=1),
        KeyRelease: KeyRelease(),
        KeyList: KeyList(),
        KeyUse: KeyUse(action=KeyAction.UNLOCK),
        DriverRegister: DriverRegister(account=sender, name="Someone"),
        DriverRemove: DriverRemove(account=sender),
        DriverUpdate: DriverUpdate(account=sender, profile=DriverProfile(seat_position=1)),
        DriverList: DriverList(),
        SoftwareUpdateAccept: SoftwareUpdateAccept(version="2.0.0"),
        ContractPlan: ContractPlan(plan=Plan.LITE),
        ContractOptions: ContractOptions(wifi=True),
        ContractCancel: ContractCancel(),
        ContractGet: ContractGet(),
        HandoverDeleteKeys: HandoverDeleteKeys(),
        HandoverWipe: HandoverWipe(),
        PoliceReport: PoliceReport(report_no="P-1"),
        TrackingRequest: TrackingRequest(),
        GuardRequest: GuardRequest(),
        GuardExtensionAnswer: GuardExtensionAnswer(car=CAR, extend=True),
        WifiStatus: WifiStatus(),
    }


EVENTS: list[Message] = [
    DoorChanged(door=Door.FRONT_LEFT, open=True),
    WindowChanged(window=Window.FRONT_LEFT, position_pct=50),
    LockedByKey(locked=False),
    HazardsChanged(on=True),
    IgnitionChanged(power=Power.ON),
    PositionReported(lat=1.0, lon=2.0),
    EnergyReported(level_pct=50.0, range_km=300.0, odometer_km=1000.0),
    ChargingChanged(charging=True),
    AlarmSounding(),
    Impact(delta_v_kmh=30.0),
    AirbagDeployed(),
    EmergencyButton(),
    EmergencyUnitCheck(passed=False),
    DashcamClip(trigger=ClipTrigger.IMPACT, clip_id="clip-1"),
    SoftwareAvailable(version="2.0.0"),
    KeyNear(account=OWNER),
    Occupancy(occupied=True),
    WifiDevice(device_id="phone", joined=True),
    WifiUsage(megabytes=10),
]


def test_the_catalogues_cover_every_command_and_event() -> None:
    commands = {cls for cls in message_types().values() if cls.KIND == "command"}
    events = {cls for cls in message_types().values() if cls.KIND == "event"}
    assert set(every_command(OWNER)) == commands
    assert {type(e) for e in EVENTS} == events


def busy_car():  # type: ignore[no-untyped-def]
    """A car with something in every part: sharee bob, key holder carol, drivers, a schedule,
    an offered update, a sounded alarm, a police report, Wi-Fi, a running climate."""
    state = car(powertrain=Powertrain.PHEV, wifi=True, has_dashcam=True, dashcam=True, position=HOME)
    state = with_sharee(state, "bob")
    state = with_key(state, "carol")
    state, _, _ = ok(state, DriverRegister(account=OWNER, name="Alice"))
    state, _, _ = ok(state, DriverRegister(account="bob", name="Bob"), sender="bob")
    state, _, _ = ok(state, ClimateScheduleAdd(weekdays=(5,), at="07:00"))
    state, _ = report(state, SoftwareAvailable(version="2.0.0"))
    state, _ = report(state, AlarmSounding())
    state, _, _ = ok(state, PoliceReport(report_no="P-9"))
    state, _, _ = ok(state, ClimateStart(duration_min=20))
    return state


# --- a stranger, and events from anyone but the car

STRANGER_CODES = {
    ShareAccept: Code.NOT_FOUND,
    ShareDecline: Code.NOT_FOUND,
    KeyRelease: Code.NOT_FOUND,  # no key of theirs to give up
    DriverRemove: Code.NOT_FOUND,
    DriverUpdate: Code.NOT_FOUND,
    GuardExtensionAnswer: Code.UNKNOWN_TYPE,  # an answer for the operator desk, not for a car
}


@pytest.mark.parametrize("kind", list(every_command(STRANGER)), ids=lambda c: c.TYPE)
def test_a_stranger_changes_nothing_with_any_command(kind: type[Message]) -> None:
    state = busy_car()
    body = every_command(STRANGER)[kind]
    refused(state, body, STRANGER_CODES.get(kind, Code.NOT_AUTHORIZED), sender=STRANGER, now=EPOCH + 60)


@pytest.mark.parametrize("sender", ["user:alice", "app:alice", "car:c2", "operator"])
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.TYPE)
def test_events_from_anyone_but_the_car_are_refused(event: Message, sender: str) -> None:
    state = busy_car()
    message = refused(state, event, Code.NOT_AUTHORIZED, sender=sender, now=EPOCH + 60)
    assert CAR in message


# --- roles: owner, sharees with some functions, key holder, stranger

CHECK_AND_FIND = frozenset({SharedFunction.REMOTE_CHECK, SharedFunction.CAR_FINDER})
OPERATE = frozenset({SharedFunction.REMOTE_OPERATION, SharedFunction.REMOTE_CLIMATE, SharedFunction.VEHICLE_INFO})

REMOTE: dict[str, tuple[Message, SharedFunction | None]] = {
    "remote_check": (RemoteCheck(), SharedFunction.REMOTE_CHECK),
    "locate": (Locate(), SharedFunction.CAR_FINDER),
    "flash_hazards": (FlashHazards(), SharedFunction.CAR_FINDER),
    "lock": (Lock(), SharedFunction.REMOTE_OPERATION),
    "hazards_off": (SetHazards(on=False), SharedFunction.REMOTE_OPERATION),
    "close_windows": (CloseWindows(), SharedFunction.REMOTE_OPERATION),
    "climate_start": (ClimateStart(duration_min=10), SharedFunction.REMOTE_CLIMATE),
    "climate_settings": (ClimateSettingsSet(settings=ClimateSettings(temperature_c=25.0)), SharedFunction.REMOTE_CLIMATE),
    "climate_schedule": (ClimateScheduleAdd(weekdays=(1,), at="06:30"), SharedFunction.REMOTE_CLIMATE),
    "vehicle_info": (GetVehicleInfo(), SharedFunction.VEHICLE_INFO),
    "unlock": (Unlock(), None),  # the owner's alone
}


def role_car():  # type: ignore[no-untyped-def]
    state = car(position=HOME)
    state = with_sharee(state, "bob", CHECK_AND_FIND)
    state = with_sharee(state, "dan", OPERATE, id=51)
    return with_key(state, "carol")


ROLES = {"owner": OWNER, "sharee_check_find": "bob", "sharee_operate": "dan", "key_holder": "carol", "stranger": STRANGER}
GIVEN = {"owner": frozenset(SharedFunction), "sharee_check_find": CHECK_AND_FIND, "sharee_operate": OPERATE, "key_holder": frozenset(), "stranger": frozenset()}


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("what", list(REMOTE))
def test_remote_functions_by_role(what: str, role: str) -> None:
    state = role_car()
    body, function = REMOTE[what]
    allowed = role == "owner" or (function is not None and function in GIVEN[role])
    if allowed:
        new, result, _ = ok(state, body, ROLES[role], EPOCH + 60)
        assert result is not None
    else:
        message = refused(state, body, Code.NOT_AUTHORIZED, ROLES[role], EPOCH + 60)
        if role.startswith("sharee") and function is not None:
            assert function.value in message  # says which function was not shared


OWNER_ONLY: list[Message] = [
    Unlock(), ShareInvite(account="zed"), ShareList(), ShareRevoke(account="bob"), KeyIssue(account="zed"),
    KeyList(), KeyRevoke(key_id=1), ContractGet(), ContractOptions(wifi=True), ContractPlan(plan=Plan.LITE),
    ContractCancel(), HandoverDeleteKeys(), SoftwareUpdateAccept(version="2.0.0"), PoliceReport(report_no="P-1"),
    TrackingRequest(), GuardRequest(), WifiStatus(),
]


@pytest.mark.parametrize("who", ["erin", "carol"])  # a sharee given every function, a key holder
@pytest.mark.parametrize("body", OWNER_ONLY, ids=lambda b: b.TYPE)
def test_owner_only_commands_are_refused_to_sharees_and_key_holders(body: Message, who: str) -> None:
    state = with_sharee(role_car(), "erin")
    state, _ = report(state, SoftwareAvailable(version="2.0.0"))
    state, _ = report(state, AlarmSounding())
    refused(state, body, Code.NOT_AUTHORIZED, sender=who, now=EPOCH + 60)


@pytest.mark.parametrize("action", list(KeyAction))
def test_the_key_holder_uses_the_phone_key_and_nothing_else(action: KeyAction) -> None:
    state = role_car()
    new, result, _ = ok(state, KeyUse(action=action), "carol", EPOCH + 60)
    for who in ("bob", "dan", STRANGER):  # sharees and strangers hold no key
        refused(state, KeyUse(action=action), Code.NOT_AUTHORIZED, who, EPOCH + 60)


def test_only_the_key_holder_gives_a_key_up() -> None:
    state = role_car()
    for who in (OWNER, "bob", "dan", STRANGER):
        refused(state, KeyRelease(), Code.NOT_FOUND, who, EPOCH + 60)
    new, _, _ = ok(state, KeyRelease(), "carol", EPOCH + 60)
    assert new.keys == () and new.shares == state.shares


def test_a_sharee_whose_invitation_is_not_yet_accepted_may_do_nothing() -> None:
    state = car()
    state, out = send(state, ShareInvite(account="bob"), OWNER, EPOCH, 9)
    (offer,) = [e for e in out if e.target == "user:bob"]
    state, _ = VEHICLE.step(state, offer.reply(Ok(result=Done()), EPOCH), EPOCH)
    for body, _function in REMOTE.values():
        refused(state, body, Code.NOT_AUTHORIZED, "bob", EPOCH + 1)


# --- plans and options


def gated_car(plan: Plan, navi: bool = False, **kw):  # type: ignore[no-untyped-def]
    """A PHEV (so Lite may schedule) with an offered update and a sounded alarm."""
    kw.setdefault("powertrain", Powertrain.PHEV)
    state = car(plan=plan, navi_package=navi, **kw)
    state, _ = report(state, SoftwareAvailable(version="2.0.0"))
    state, _ = report(state, AlarmSounding())
    return state


STANDARD = {"plan": Plan.STANDARD}
NAVI = {"plan": Plan.STANDARD, "navi": True}
LITE = {"plan": Plan.LITE}

FREE_ITEMS: list[Message] = [
    Lock(), Unlock(), SetHazards(on=False), CloseWindows(), FlashHazards(), Locate(), RemoteCheck(),
    GetVehicleInfo(), AlertSettingsSet(alert=AlertType.START, channel=Channel.EMAIL, enabled=True),
    DriverRegister(account=OWNER, name="Alice"), SoftwareUpdateAccept(version="2.0.0"),
]
NAVI_ITEMS: list[Message] = [
    ClimateStart(duration_min=10), ClimateSettingsSet(settings=ClimateSettings(temperature_c=20.0)),
    ClimateScheduleAdd(weekdays=(0, 2), at="07:15"), TrackingRequest(), GuardRequest(),
]


def succeeds(state, body) -> bool:  # type: ignore[no-untyped-def]
    new, out = send(state, body, OWNER, EPOCH + 60)
    errors = [e.body for e in out if isinstance(e.body, Error)]
    if errors:
        return False
    assert isinstance(only_reply(out), Ok)
    return True


@pytest.mark.parametrize("contract", [STANDARD, NAVI, LITE], ids=["standard", "standard+navi", "lite"])
@pytest.mark.parametrize("body", FREE_ITEMS, ids=lambda b: b.TYPE)
def test_basic_services_are_free_on_standard_and_in_the_lite_plan(body: Message, contract: dict) -> None:  # type: ignore[type-arg]
    assert succeeds(gated_car(**contract), body)


@pytest.mark.parametrize("body", NAVI_ITEMS, ids=lambda b: b.TYPE)
def test_navi_package_items_need_the_package_on_standard(body: Message) -> None:
    message = refused(gated_car(Plan.STANDARD), body, Code.NOT_IN_PLAN, now=EPOCH + 60)
    assert "navi package" in message
    assert succeeds(gated_car(Plan.STANDARD, navi=True), body)
    assert succeeds(gated_car(Plan.LITE), body)


@pytest.mark.parametrize(
    ("contract", "equipped", "code"),
    [
        (STANDARD, True, None),
        (NAVI, True, None),
        (STANDARD, False, Code.NOT_EQUIPPED),
        (LITE, True, Code.NOT_IN_PLAN),
        (LITE, False, Code.NOT_IN_PLAN),
    ],
)
def test_the_digital_key_is_standard_only_and_needs_an_equipped_car(contract: dict, equipped: bool, code: Code | None) -> None:  # type: ignore[type-arg]
    state = gated_car(**contract, has_digital_key=equipped)
    if code is None:
        new, out = send(state, KeyIssue(account="carol"), OWNER, EPOCH + 60)
        assert [e.target for e in out] == ["user:carol"]  # the offer goes out; the owner's Ok waits for the phone
    else:
        refused(state, KeyIssue(account="carol"), code, now=EPOCH + 60)


def test_an_issued_key_stops_working_when_the_plan_no_longer_offers_it() -> None:
    state = with_key(car(), "carol")
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE))
    refused(state, KeyUse(action=KeyAction.UNLOCK), Code.NOT_IN_PLAN, "carol")


@pytest.mark.parametrize(
    ("contract", "has_dashcam", "code"),
    [
        (STANDARD, True, None),
        (STANDARD, False, Code.NOT_EQUIPPED),
        (LITE, True, Code.NOT_IN_PLAN),
    ],
)
def test_the_dashcam_option_is_standard_only_and_needs_a_dashcam(contract: dict, has_dashcam: bool, code: Code | None) -> None:  # type: ignore[type-arg]
    state = gated_car(**contract, has_dashcam=has_dashcam)
    if code is None:
        new, result, _ = ok(state, ContractOptions(dashcam=True))
        assert result.dashcam and result.monthly_fee_jpy == 550
    else:
        refused(state, ContractOptions(dashcam=True), code)


@pytest.mark.parametrize(
    ("contract", "equipped", "option", "code"),
    [
        (STANDARD, True, True, None),
        (STANDARD, True, False, Code.OPTION_REQUIRED),
        (STANDARD, False, False, Code.NOT_EQUIPPED),
        (LITE, True, False, Code.NOT_IN_PLAN),
    ],
)
def test_dashcam_clips_upload_only_with_the_option(contract: dict, equipped: bool, option: bool, code: Code | None) -> None:  # type: ignore[type-arg]
    state = gated_car(**contract, has_dashcam=equipped, dashcam=option)
    clip = DashcamClip(trigger=ClipTrigger.AIRBAG, clip_id="clip-7")
    if code is None:
        new, out = report(state, clip, EPOCH + 60)
        assert replies(out) == []
        assert {e.target for e in out} == {"user:alice"}
        assert all("clip-7" in e.body.text for e in out)
    else:
        rejected_event(state, clip, code, EPOCH + 60)


@pytest.mark.parametrize("contract", [STANDARD, NAVI, LITE], ids=["standard", "standard+navi", "lite"])
def test_wifi_is_an_option_on_both_plans(contract: dict) -> None:  # type: ignore[type-arg]
    refused(gated_car(**contract), WifiStatus(), Code.OPTION_REQUIRED)
    state = gated_car(**contract, wifi=True)
    new, result, _ = ok(state, WifiStatus())
    assert result.devices == () and not result.throttled
    rejected_event(gated_car(**contract), WifiDevice(device_id="tablet", joined=True), Code.OPTION_REQUIRED)


# --- a car with no contract refuses everything

NO_CONTRACT_CODES = {
    ShareAccept: Code.NOT_FOUND,
    ShareDecline: Code.NOT_FOUND,
    KeyRelease: Code.NOT_FOUND,  # no key of theirs to give up
    DriverRegister: Code.NOT_IN_PLAN,
    DriverRemove: Code.NOT_FOUND,
    DriverUpdate: Code.NOT_IN_PLAN,
    GuardExtensionAnswer: Code.UNKNOWN_TYPE,
}


@pytest.mark.parametrize("who", [OWNER, STRANGER])
@pytest.mark.parametrize("kind", [k for k in every_command(OWNER) if k is not ContractPlan], ids=lambda c: c.TYPE)
def test_a_car_with_no_contract_refuses_every_command(kind: type[Message], who: str) -> None:
    state = car(owner=None, position=HOME)
    refused(state, every_command(who)[kind], NO_CONTRACT_CODES.get(kind, Code.NOT_AUTHORIZED), who)


@pytest.mark.parametrize(
    "event",
    [AirbagDeployed(), EmergencyButton(), Impact(delta_v_kmh=40.0), DashcamClip(trigger=ClipTrigger.IMPACT, clip_id="x")],
    ids=lambda e: e.TYPE,
)
def test_a_car_with_no_contract_places_no_emergency_call_and_uploads_nothing(event: Message) -> None:
    state = car(owner=None, has_dashcam=True)
    rejected_event(state, event, Code.NOT_IN_PLAN)


def test_a_car_with_no_contract_sends_no_alerts_and_pushes_no_state() -> None:
    state = car(owner=None)
    for event in (AlarmSounding(), DoorChanged(door=Door.TRUNK, open=True), IgnitionChanged(power=Power.ON), IgnitionChanged(power=Power.OFF)):
        state, out = report(state, event)
        assert out == []
    state, out = VEHICLE.advance(state, EPOCH + 86400)
    assert out == []
