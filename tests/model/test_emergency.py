"""Emergency calls, the operator desk, tracking and guards (SPEC p.22, p.24-28)."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, OPERATOR, new_operator, new_user
from twin.protocol import (
    AirbagDeployed,
    AlarmSounding,
    AlertType,
    CasesClose,
    ClipTrigger,
    ContractCancel,
    ContractPlan,
    DashcamClip,
    Done,
    EmergencyButton,
    EmergencyCall,
    EmergencyUnitCheck,
    Envelope,
    Error,
    GuardDispatch,
    GuardExtensionAnswer,
    GuardRequest,
    HandoverDeleteKeys,
    HandoverWipe,
    Impact,
    Message,
    Ok,
    OperatorNotice,
    Plan,
    PoliceReport,
    Position,
    PositionReported,
    Power,
    TrackingRequest,
    TrackingStart,
)

from ._helpers import (
    CAR,
    EPOCH,
    HOME,
    OWNER,
    USER,
    alerts_in,
    both_channels,
    car,
    ignition,
    ok,
    refused,
    rejected_event,
    report,
    with_sharee,
)

HOUR = 3600.0
ARRIVAL = DEFAULT_CONFIG.guard_arrival_s
WINDOW = DEFAULT_CONFIG.eligibility_window_s

CALLS: list[tuple[Message, str, float, bool]] = [
    (AirbagDeployed(delta_v_kmh=32.0), "airbag", 32.0, False),
    (AirbagDeployed(delta_v_kmh=20.0, cabin_answers=True), "airbag", 20.0, True),
    (Impact(delta_v_kmh=DEFAULT_CONFIG.strong_impact_kmh), "impact", DEFAULT_CONFIG.strong_impact_kmh, False),
    (EmergencyButton(), "button", 0.0, True),
    (EmergencyButton(cabin_answers=False), "button", 0.0, False),
]


@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.LITE])
@pytest.mark.parametrize(("event", "cause", "delta_v", "answers"), CALLS, ids=lambda x: getattr(x, "TYPE", None))
def test_airbag_impact_and_button_call_the_operator_with_the_position(event: Message, cause: str, delta_v: float, answers: bool, plan: Plan) -> None:
    state = car(plan=plan, navi_package=False, position=HOME)
    new, out = report(state, event, EPOCH + 5)
    assert new == state
    (call,) = out
    assert (call.sender, call.target) == (CAR, "operator")
    assert call.body == EmergencyCall(car=CAR, cause=cause, at=EPOCH + 5, position=HOME, delta_v_kmh=delta_v, cabin_answers=answers)


def test_a_mild_impact_calls_nobody() -> None:
    _, out = report(car(position=HOME), Impact(delta_v_kmh=DEFAULT_CONFIG.strong_impact_kmh - 0.1))
    assert out == []
    rejected_event(car(), Impact(delta_v_kmh=-1.0), Code.INVALID_VALUE)


def signed_up():  # type: ignore[no-untyped-def]
    state = car(owner=None, position=HOME)
    state, _, _ = ok(state, ContractPlan(plan=Plan.STANDARD), OWNER, EPOCH)
    return state


@pytest.mark.parametrize("event", [AirbagDeployed(), Impact(delta_v_kmh=60.0), EmergencyButton()], ids=lambda e: e.TYPE)
def test_no_emergency_call_until_the_unit_passes_its_check(event: Message) -> None:
    state = signed_up()
    assert "maintenance check" in rejected_event(state, event, Code.EMERGENCY_UNIT_UNCHECKED, EPOCH + 1)
    state, _ = report(state, EmergencyUnitCheck(passed=False), EPOCH + 2)
    rejected_event(state, event, Code.EMERGENCY_UNIT_UNCHECKED, EPOCH + 3)
    state, out = report(state, EmergencyUnitCheck(passed=True), EPOCH + 4)
    assert out == []
    _, out = report(state, event, EPOCH + 5)
    assert [type(e.body) for e in out] == [EmergencyCall]


# --- the operator desk


def call_env(call: EmergencyCall, sender: str = CAR) -> Envelope:
    return Envelope(call, sender=sender, target="operator", ts=call.at)


@pytest.mark.parametrize(
    ("answers", "delta_v", "dispatched"),
    [(False, 10.0, "dispatched rescue to"), (False, 80.0, "dispatched rescue and a doctor helicopter to"), (True, 80.0, None)],
)
def test_no_answer_from_the_cabin_dispatches_rescue(answers: bool, delta_v: float, dispatched: str | None) -> None:
    call = EmergencyCall(car=CAR, cause="airbag", at=EPOCH, position=HOME, delta_v_kmh=delta_v, cabin_answers=answers)
    desk, out = OPERATOR.step(new_operator(), call_env(call), EPOCH)
    assert out == [] and desk.calls == (call,)
    rescue = [line for line in desk.log if "dispatched" in line]
    assert rescue == ([] if dispatched is None else [f"{EPOCH:.0f} {dispatched} {CAR}"])


@pytest.mark.parametrize("sender", ["car:c2", "user:alice"])
def test_the_desk_takes_a_call_only_from_the_car_itself(sender: str) -> None:
    call = EmergencyCall(car=CAR, cause="button", at=EPOCH)
    desk = new_operator()
    after, out = OPERATOR.step(desk, call_env(call, sender), EPOCH)
    assert after == desk
    ((reply,),) = [out]
    assert isinstance(reply.body, Error) and reply.body.code == Code.NOT_AUTHORIZED.value


def dispatched(at: float = EPOCH):  # type: ignore[no-untyped-def]
    body = GuardDispatch(car=CAR, owner=OWNER, at=at, position=HOME)
    desk, out = OPERATOR.step(new_operator(), Envelope(body, sender=CAR, target="operator", ts=at), at)
    (notice,) = out
    assert notice.target == "user:alice" and notice.body.kind == "guard_dispatched" and "first hour is free" in notice.body.text
    return desk


def notices(out: list[Envelope]) -> list[tuple[str, str, float]]:
    return [(e.target, e.body.kind, e.body.at) for e in out if isinstance(e.body, OperatorNotice)]


def answer(desk, extend: bool, sender: str = "user:alice", at: float = EPOCH):  # type: ignore[no-untyped-def]
    env = Envelope(GuardExtensionAnswer(car=CAR, extend=extend), sender=sender, target="operator", id=9, ts=at)
    return OPERATOR.step(desk, env, at)


def test_the_guard_reports_on_arrival_and_the_prompt_comes_at_exactly_one_hour() -> None:
    desk = dispatched()
    assert OPERATOR.next_deadline(desk) == EPOCH + ARRIVAL
    desk, out = OPERATOR.advance(desk, EPOCH + ARRIVAL)
    assert notices(out) == [("user:alice", "guard_report", EPOCH + ARRIVAL)]
    assert OPERATOR.next_deadline(desk) == EPOCH + HOUR
    desk, out = OPERATOR.advance(desk, EPOCH + HOUR - 0.001)
    assert out == []
    desk, out = OPERATOR.advance(desk, EPOCH + HOUR)
    assert notices(out) == [("user:alice", "guard_extension_prompt", EPOCH + HOUR)]
    assert OPERATOR.next_deadline(desk) is None


def test_a_late_wakeup_still_reports_and_prompts_at_their_own_times() -> None:
    _, out = OPERATOR.advance(dispatched(), EPOCH + 5 * HOUR)
    assert notices(out) == [("user:alice", "guard_report", EPOCH + ARRIVAL), ("user:alice", "guard_extension_prompt", EPOCH + HOUR)]


def test_extend_buys_one_more_hour_and_asks_again() -> None:
    desk, _ = OPERATOR.advance(dispatched(), EPOCH + HOUR)
    desk, out = answer(desk, True, at=EPOCH + HOUR + 60)
    ((reply,),) = [out]
    assert reply.id == 9 and isinstance(reply.body, Ok)
    assert OPERATOR.next_deadline(desk) == EPOCH + 2 * HOUR
    desk, out = OPERATOR.advance(desk, EPOCH + 2 * HOUR)
    assert notices(out) == [("user:alice", "guard_extension_prompt", EPOCH + 2 * HOUR)]


def test_no_ends_the_guard() -> None:
    desk, _ = OPERATOR.advance(dispatched(), EPOCH + HOUR)
    desk, out = answer(desk, False, at=EPOCH + HOUR + 60)
    assert isinstance(out[0].body, Ok) and CAR not in desk.guards
    assert OPERATOR.next_deadline(desk) is None
    desk2, out = answer(desk, False, at=EPOCH + HOUR + 61)
    assert out[0].body.code == Code.NOT_FOUND.value


@pytest.mark.parametrize("sender", ["user:bob", "user:mallory", "car:c1"])
def test_only_the_owner_may_answer_the_prompt(sender: str) -> None:
    desk, _ = OPERATOR.advance(dispatched(), EPOCH + HOUR)
    after, out = answer(desk, True, sender=sender, at=EPOCH + HOUR + 1)
    assert after == desk
    ((reply,),) = [out]
    assert reply.target == sender and isinstance(reply.body, Error) and reply.body.code == Code.NOT_FOUND.value


def test_an_answer_before_the_prompt_is_refused() -> None:
    desk = dispatched()
    after, out = answer(desk, True, at=EPOCH + 60)
    assert after == desk and out[0].body.code == Code.CONFLICT.value


# --- tracking and guards, requested at the car, only after an alarm or a police report


@pytest.mark.parametrize("body", [TrackingRequest(), GuardRequest()], ids=lambda b: b.TYPE)
def test_tracking_and_guards_need_an_alarm_or_a_police_report(body: Message) -> None:
    state = car(position=HOME)
    assert "police report" in refused(state, body, Code.NOT_ELIGIBLE)


@pytest.mark.parametrize("body", [TrackingRequest(), GuardRequest()], ids=lambda b: b.TYPE)
@pytest.mark.parametrize(("after", "eligible"), [(0.0, True), (WINDOW, True), (WINDOW + 1, False)])
def test_an_alarm_opens_the_window(body: Message, after: float, eligible: bool) -> None:
    state, _ = report(car(position=HOME), AlarmSounding(), EPOCH)
    if eligible:
        _, _, out = ok(state, body, now=EPOCH + after)
        (handed,) = [e for e in out if e.target == "operator"]
        assert handed.body.car == CAR and handed.body.owner == OWNER and handed.body.position == HOME
    else:
        refused(state, body, Code.NOT_ELIGIBLE, now=EPOCH + after)


def test_a_police_report_makes_tracking_possible_at_any_time() -> None:
    state, result, _ = ok(car(position=HOME), PoliceReport(report_no="K-123"))
    assert "K-123" in result.detail
    _, result, out = ok(state, TrackingRequest(), now=EPOCH + 30 * 86400)
    assert result.active is True
    assert [type(e.body) for e in out if e.target == "operator"] == [TrackingStart]
    refused(car(), PoliceReport(report_no=" "), Code.INVALID_VALUE)


def test_tracking_starts_once_and_reports_the_position() -> None:
    state, _ = report(car(position=HOME), AlarmSounding(), EPOCH)
    state, result, out = ok(state, TrackingRequest(), now=EPOCH + 1)
    assert result.position.value == HOME
    state, _ = report(state, PositionReported(lat=1.0, lon=2.0, speed_kmh=80.0), EPOCH + 2)
    state, result, out = ok(state, TrackingRequest(), now=EPOCH + 3)
    assert [e for e in out if e.target == "operator"] == []
    assert result.position.value == Position(1.0, 2.0)


def test_car_to_desk_to_owner_end_to_end() -> None:
    state, _ = report(car(position=HOME), AlarmSounding(), EPOCH)
    state, result, out = ok(state, GuardRequest(), now=EPOCH + 10)
    assert isinstance(result, Done) and "first hour is free" in result.detail
    (handed,) = [e for e in out if e.target == "operator"]
    desk, out = OPERATOR.step(new_operator(), handed, EPOCH + 10)
    alice = new_user(OWNER)
    for env in out:
        alice, _ = USER.step(alice, env, EPOCH + 10)
    desk, out = OPERATOR.advance(desk, EPOCH + 10 + HOUR)
    for env in out:
        alice, _ = USER.step(alice, env, EPOCH + 10 + HOUR)
    assert [n.kind for n in alice.inbox] == ["guard_dispatched", "guard_report", "guard_extension_prompt"]


# --- the contract cancelled: the desk closes the car's cases (SPEC "Handing the car over")


def closing(desk, car: str = CAR, sender: str = CAR, at: float = EPOCH + 1):  # type: ignore[no-untyped-def]
    return OPERATOR.step(desk, Envelope(CasesClose(car=car, at=at), sender=sender, target="operator", ts=at), at)


def tracked(desk=None, car: str = CAR, owner: str = OWNER):  # type: ignore[no-untyped-def]
    body = TrackingStart(car=car, owner=owner, at=EPOCH, position=HOME)
    desk, _ = OPERATOR.step(desk if desk is not None else new_operator(), Envelope(body, sender=car, target="operator", ts=EPOCH), EPOCH)
    return desk


def guarded(desk=None, car: str = CAR, owner: str = OWNER):  # type: ignore[no-untyped-def]
    body = GuardDispatch(car=car, owner=owner, at=EPOCH, position=HOME)
    desk, _ = OPERATOR.step(desk if desk is not None else new_operator(), Envelope(body, sender=car, target="operator", ts=EPOCH), EPOCH)
    return desk


class Desk:
    """The operator desk and alice's actor, fed what the car hands over (as the fleet would)."""

    def __init__(self) -> None:
        self.desk = new_operator()
        self.alice = new_user(OWNER)

    def car_sent(self, out: list[Envelope], at: float) -> None:
        for env in out:
            if env.target == "operator":
                self.desk, said = OPERATOR.step(self.desk, env, at)
                self.tell_alice(said, at)

    def wait(self, until: float) -> None:
        self.desk, said = OPERATOR.advance(self.desk, until)
        self.tell_alice(said, until)

    def tell_alice(self, out: list[Envelope], at: float) -> None:
        for env in out:
            assert env.target == "user:alice", env
            self.alice, _ = USER.step(self.alice, env, at)

    def kinds(self) -> list[str]:
        return [n.kind for n in self.alice.inbox if isinstance(n, OperatorNotice)]


@pytest.mark.parametrize(
    ("sold_at", "told_before"),
    [
        (EPOCH + 30 * 60, ["tracking_started", "guard_dispatched", "guard_report"]),  # the guard is at the car
        (EPOCH + 10 + HOUR + 60, ["tracking_started", "guard_dispatched", "guard_report", "guard_extension_prompt"]),  # alice was asked
    ],
    ids=["during-the-free-hour", "prompt-unanswered"],
)
def test_a_hand_over_during_a_guard_and_tracking_closes_the_desks_cases(sold_at: float, told_before: list[str]) -> None:
    desk = Desk()
    state, _ = report(car(position=HOME), AlarmSounding(), EPOCH)
    state, _, out = ok(state, TrackingRequest(), now=EPOCH + 5)
    desk.car_sent(out, EPOCH + 5)
    state, _, out = ok(state, GuardRequest(), now=EPOCH + 10)
    desk.car_sent(out, EPOCH + 10)
    desk.wait(sold_at - 1)
    assert CAR in desk.desk.tracking and CAR in desk.desk.guards and desk.kinds() == told_before

    state, _, out = ok(state, HandoverDeleteKeys(), now=sold_at)
    assert [e for e in out if e.target == "operator"] == []
    state, _, out = ok(state, ContractCancel(), now=sold_at)
    (handed,) = [e for e in out if e.target == "operator"]
    assert (handed.sender, handed.body) == (CAR, CasesClose(car=CAR, at=sold_at))
    desk.car_sent(out, sold_at)
    state, _, out = ok(state, HandoverWipe(), now=sold_at + 1)
    desk.car_sent(out, sold_at + 1)

    assert CAR not in desk.desk.tracking and CAR not in desk.desk.guards
    assert OWNER not in repr(desk.desk), "the desk still names the old owner"
    assert OPERATOR.next_deadline(desk.desk) is None
    assert desk.desk.log[-1] == f"{sold_at:.0f} closed stolen-vehicle tracking and the guard at {CAR}: its contract was cancelled"
    (closed,) = [n for n in desk.alice.inbox if isinstance(n, OperatorNotice) and n.kind == "cases_closed"]
    assert closed.car == CAR and closed.at == sold_at
    assert "contract was cancelled" in closed.text and "tracking" in closed.text and "guard" in closed.text

    desk.wait(sold_at + 10 * HOUR)  # long past the guard's hour and any extension
    assert desk.kinds() == told_before + ["cases_closed"]  # told once, never prompted afterwards
    after, out = answer(desk.desk, True, at=sold_at + 10 * HOUR + 1)
    assert after == desk.desk and out[0].body.code == Code.NOT_FOUND.value

    # a closing again (a second cancel by a later owner) finds nothing and tells nobody
    again, out = closing(desk.desk, at=sold_at + 10 * HOUR + 2)
    assert again == desk.desk and out == []


def test_the_next_owner_starts_new_cases_and_the_old_one_hears_nothing() -> None:
    desk = Desk()
    state, _ = report(car(position=HOME), AlarmSounding(), EPOCH)
    state, _, out = ok(state, GuardRequest(), now=EPOCH + 10)
    desk.car_sent(out, EPOCH + 10)
    for step in (HandoverDeleteKeys(), ContractCancel(), HandoverWipe()):
        state, _, out = ok(state, step, now=EPOCH + 60)
        desk.car_sent(out, EPOCH + 60)
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE), "dave", EPOCH + 120)
    state, _ = report(state, AlarmSounding(), EPOCH + 130)
    state, _, out = ok(state, GuardRequest(), "dave", EPOCH + 140)
    (handed,) = [e for e in out if e.target == "operator"]
    desk.desk, said = OPERATOR.step(desk.desk, handed, EPOCH + 140)
    assert [e.target for e in said] == ["user:dave"] and desk.desk.guards[CAR].owner == "dave"
    desk.desk, said = OPERATOR.advance(desk.desk, EPOCH + 140 + HOUR)
    assert notices(said) == [("user:dave", "guard_report", EPOCH + 140 + ARRIVAL), ("user:dave", "guard_extension_prompt", EPOCH + 140 + HOUR)]
    assert desk.kinds() == ["guard_dispatched", "cases_closed"]


@pytest.mark.parametrize(
    ("open_cases", "text"),
    [
        (lambda: tracked(), "the car's contract was cancelled, so stolen-vehicle tracking ended"),
        (lambda: guarded(), "the car's contract was cancelled, so the guard ended"),
        (lambda: guarded(tracked()), "the car's contract was cancelled, so stolen-vehicle tracking and the guard ended"),
    ],
    ids=["tracking", "guard", "both"],
)
def test_the_former_owner_is_told_once_what_ended(open_cases, text: str) -> None:  # type: ignore[no-untyped-def]
    desk, out = closing(open_cases())
    assert desk.tracking == {} and desk.guards == {}
    assert [(e.sender, e.target, e.body) for e in out] == [("operator", "user:alice", OperatorNotice(car=CAR, kind="cases_closed", text=text, at=EPOCH + 1))]


def test_only_the_cancelled_cars_cases_close() -> None:
    other = "car:c2"
    desk = guarded(tracked(guarded(tracked(car=other, owner="bob"), car=other, owner="bob")))
    desk, out = closing(desk)
    assert notices(out) == [("user:alice", "cases_closed", EPOCH + 1)]
    assert desk.tracking == {other: "bob"} and list(desk.guards) == [other] and desk.guards[other].owner == "bob"
    assert OPERATOR.next_deadline(desk) == EPOCH + ARRIVAL  # bob's guard still arrives and is prompted
    _, out = OPERATOR.advance(desk, EPOCH + HOUR)
    assert notices(out) == [("user:bob", "guard_report", EPOCH + ARRIVAL), ("user:bob", "guard_extension_prompt", EPOCH + HOUR)]


@pytest.mark.parametrize("open_cases", [new_operator, lambda: guarded(tracked(car="car:c2", owner="bob"), car="car:c2", owner="bob")], ids=["empty-desk", "other-car"])
def test_nothing_open_nothing_sent(open_cases) -> None:  # type: ignore[no-untyped-def]
    desk = open_cases()
    after, out = closing(desk)
    assert after == desk and out == []


@pytest.mark.parametrize(
    ("sender", "car_named"),
    [("car:c2", CAR), ("user:alice", CAR), ("app:alice", CAR), ("operator", CAR), (CAR, "car:c2")],
    ids=["another-car", "the-owner", "an-app", "the-desk", "for-another-car"],
)
def test_only_the_car_itself_closes_its_cases(sender: str, car_named: str) -> None:
    desk = guarded(tracked(guarded(tracked(car="car:c2", owner="bob"), car="car:c2", owner="bob")))
    after, out = closing(desk, car=car_named, sender=sender)
    assert after == desk
    ((reply,),) = [out]
    assert reply.target == sender and isinstance(reply.body, Error) and reply.body.code == Code.NOT_AUTHORIZED.value
    assert "cases_close" in reply.body.message


def test_the_desks_log_never_names_the_owner() -> None:
    desk, out = OPERATOR.advance(guarded(), EPOCH + HOUR)
    assert notices(out)[-1] == ("user:alice", "guard_extension_prompt", EPOCH + HOUR)
    assert desk.log[-1] == f"{EPOCH + HOUR:.0f} asked the owner to extend the guard at {CAR}"
    assert not any(OWNER in line for line in desk.log)


# --- dashcam upload (Standard option): which clips, and who hears of them


@pytest.mark.parametrize(
    ("trigger", "power", "code"),
    [
        ("impact", Power.ON, None),
        ("impact", Power.OFF, None),
        ("airbag", Power.ON, None),
        ("manual", Power.ON, None),
        ("manual", Power.OFF, Code.INVALID_VALUE),  # a manual recording is made while driving
        ("alarm", Power.OFF, None),
        ("alarm", Power.ON, Code.INVALID_VALUE),  # the alarm clip is made while parked
    ],
)
def test_dashcam_clips_go_to_the_owner_and_family(trigger: str, power: Power, code: Code | None) -> None:
    state = with_sharee(car(has_dashcam=True, dashcam=True, position=HOME), "bob")
    state, _ = ignition(state, power, EPOCH)
    clip = DashcamClip(trigger=ClipTrigger(trigger), clip_id="clip-42")
    if code is not None:
        rejected_event(state, clip, code, EPOCH + 1)
        return
    _, out = report(state, clip, EPOCH + 1)
    assert sorted(alerts_in(out)) == sorted(both_channels(OWNER, AlertType.DASHCAM) + both_channels("bob", AlertType.DASHCAM))
    assert all(e.body.position == HOME and "clip-42" in e.body.text for e in out)
