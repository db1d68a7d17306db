"""Digital keys (SPEC p.19): 5 per car, 4 cars per phone, lock / unlock / start, revoke, and the
holder deleting the app (which deletes the key)."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, new_user, new_vehicle
from twin.protocol import (
    AlertSettingsSet,
    AlertType,
    Channel,
    ClimateStart,
    ContractPlan,
    Done,
    Door,
    DoorChanged,
    DriverRegister,
    DriverProfile,
    Envelope,
    Error,
    GarageChanged,
    KeyAction,
    KeyIssue,
    KeyList,
    KeyOffer,
    KeyRelease,
    KeyRevoke,
    Keys,
    KeyUse,
    Ok,
    Plan,
    Power,
    Reading,
    RemoteCheck,
    Role,
)

from ._helpers import (
    CAR,
    EPOCH,
    OWNER,
    USER,
    VEHICLE,
    advance,
    alerts_in,
    bodies_to,
    both_channels,
    car,
    deliver_to_user,
    ok,
    refused,
    replies,
    report,
    send,
    with_key,
    with_sharee,
)


def issue(state, account: str, id: int, now: float = EPOCH):  # type: ignore[no-untyped-def]
    state, out = send(state, KeyIssue(account=account), OWNER, now, id)
    assert replies(out) == [], "the owner's answer waits for the holder's phone"
    (offer,) = out
    assert isinstance(offer.body, KeyOffer) and offer.target == "user:" + account and offer.id == id
    return state, offer


def phone_with_keys_for(account: str, cars: list[str]):  # type: ignore[no-untyped-def]
    """A person whose phone already took keys from these cars."""
    person = new_user(account)
    for i, address in enumerate(cars):
        other = new_vehicle(address.removeprefix("car:"), owner="someone")
        offer_env = Envelope(
            KeyOffer(car=other.address, key_id=1), sender=other.address, target=person.address, id=100 + i, ts=EPOCH
        )
        person, answer = deliver_to_user(person, offer_env, EPOCH)
        assert isinstance(answer.body, Ok)
    return person


def test_issue_offer_the_phone_takes_it_and_the_owner_gets_the_keys() -> None:
    state, offer = issue(car(), "carol", id=11)
    assert offer.body == KeyOffer(car=CAR, key_id=1)
    _, result, _ = ok(state, KeyList())
    assert [(k.account, k.active) for k in result.keys] == [("carol", False)]
    refused(state, KeyUse(action=KeyAction.UNLOCK), Code.NOT_AUTHORIZED, "carol")  # not active yet
    carol, answer = deliver_to_user(new_user("carol"), offer, EPOCH + 1)
    assert carol.key_cars == frozenset({CAR})
    state, out = VEHICLE.step(state, answer, EPOCH + 1)
    (final,) = [e for e in out if e.target == "user:alice"]
    assert final.id == 11 and isinstance(final.body, Ok) and isinstance(final.body.result, Keys)
    assert [(k.key_id, k.account, k.active) for k in final.body.result.keys] == [(1, "carol", True)]
    assert bodies_to(out, "carol", GarageChanged) == [GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=True)]


def test_at_most_five_keys_per_car_pending_ones_included() -> None:
    state = car()
    for i in range(3):
        state = with_key(state, f"holder{i}", id=20 + i)
    state, _ = issue(state, "holder3", id=23)
    state, _ = issue(state, "holder4", id=24)
    message = refused(state, KeyIssue(account="holder5"), Code.LIMIT_REACHED)
    assert "5" in message
    state, _, _ = ok(state, KeyRevoke(key_id=1))
    issue(state, "holder5", id=25)


def test_a_phone_holds_keys_for_at_most_four_cars() -> None:
    assert DEFAULT_CONFIG.max_cars_per_phone == 4
    carol = phone_with_keys_for("carol", ["car:x1", "car:x2", "car:x3", "car:x4"])
    state, offer = issue(car(), "carol", id=12)
    carol_after, answer = deliver_to_user(carol, offer, EPOCH + 1)
    assert carol_after is carol
    assert isinstance(answer.body, Error) and answer.body.code == Code.LIMIT_REACHED.value
    state, out = VEHICLE.step(state, answer, EPOCH + 1)
    (final,) = out
    assert (final.target, final.id) == ("user:alice", 12)
    assert isinstance(final.body, Error) and final.body.code == Code.LIMIT_REACHED.value and "carol" in final.body.message
    assert state.keys == () and state.pending == ()


def test_a_phone_that_gave_a_key_back_has_room_again() -> None:
    carol = phone_with_keys_for("carol", ["car:x1", "car:x2", "car:x3", "car:x4"])
    gone = Envelope(
        GarageChanged(car="car:x2", role=Role.KEY_HOLDER, added=False), sender="car:x2", target="user:carol", ts=EPOCH
    )
    carol, _ = USER.step(carol, gone, EPOCH)
    state, offer = issue(car(), "carol", id=13)
    carol, answer = deliver_to_user(carol, offer, EPOCH + 1)
    assert isinstance(answer.body, Ok)
    assert carol.key_cars == frozenset({"car:x1", "car:x3", "car:x4", CAR})


def test_an_unanswered_key_offer_times_out_and_the_key_is_dropped() -> None:
    state, _ = issue(car(), "carol", id=14)
    state, out = advance(state, EPOCH + DEFAULT_CONFIG.offer_timeout_s)
    (final,) = [e for e in out if e.target == "user:alice"]
    assert final.id == 14 and isinstance(final.body, Error) and final.body.code == Code.TIMEOUT.value
    assert state.keys == ()


def test_a_phone_whose_answer_came_too_late_gets_its_slot_back() -> None:
    carol = phone_with_keys_for("carol", ["car:x1", "car:x2", "car:x3"])
    state, offer = issue(car(), "carol", id=18)
    carol, late_answer = deliver_to_user(carol, offer, EPOCH)  # stored: 4 cars now
    assert len(carol.key_cars) == 4
    state, out = advance(state, EPOCH + DEFAULT_CONFIG.offer_timeout_s)  # the answer is still on its way
    (withdrawn,) = [e for e in out if e.target == "user:carol"]
    assert withdrawn.body == GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)
    carol, _ = USER.step(carol, withdrawn, EPOCH + DEFAULT_CONFIG.offer_timeout_s)
    assert carol.key_cars == frozenset({"car:x1", "car:x2", "car:x3"}) and CAR not in carol.garage
    late, out = VEHICLE.step(state, late_answer, EPOCH + DEFAULT_CONFIG.offer_timeout_s + 1)
    assert late is state and out == []


def test_an_unknown_holder_comes_back_as_an_error() -> None:
    state, offer = issue(car(), "ghost", id=15)
    state, out = VEHICLE.step(state, offer.reply(Error(code=Code.UNKNOWN_TARGET.value, message="no actor"), EPOCH), EPOCH)
    (final,) = out
    assert final.id == 15 and final.body.code == Code.UNKNOWN_TARGET.value
    assert state.keys == ()


@pytest.mark.parametrize(
    ("body", "code"),
    [(KeyIssue(account="carol"), Code.CONFLICT), (KeyRevoke(key_id=99), Code.NOT_FOUND)],
)
def test_key_mistakes_are_refused(body: object, code: Code) -> None:
    refused(with_key(car(), "carol"), body, code)  # type: ignore[arg-type]


# --- using the phone as a key


def test_key_lock_and_unlock() -> None:
    state = with_key(car(), "carol")
    state, result, _ = ok(state, KeyUse(action=KeyAction.UNLOCK), "carol", EPOCH + 1)
    assert state.status.locked == Reading(False, EPOCH + 1) and state.status.alarm_armed == Reading(False, EPOCH + 1)
    state, _, _ = ok(state, KeyUse(action=KeyAction.LOCK), "carol", EPOCH + 2)
    assert state.status.locked == Reading(True, EPOCH + 2) and state.status.alarm_armed == Reading(True, EPOCH + 2)


def test_key_lock_is_refused_with_a_door_open() -> None:
    state = with_key(car(), "carol")
    state, _, _ = ok(state, KeyUse(action=KeyAction.UNLOCK), "carol", EPOCH + 1)
    state, _ = report(state, DoorChanged(door=Door.FRONT_RIGHT, open=True), EPOCH + 2)
    assert "front_right" in refused(state, KeyUse(action=KeyAction.LOCK), Code.DOOR_OPEN, "carol", EPOCH + 3)


def test_key_start_switches_the_car_on() -> None:
    state = with_key(car(), "carol")
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.START, channel=Channel.PUSH, enabled=True))
    state, _, _ = ok(state, ClimateStart(duration_min=20), now=EPOCH + 1)
    state, _, out = ok(state, KeyUse(action=KeyAction.START), "carol", EPOCH + 5)
    assert state.status.power == Reading(Power.ON, EPOCH + 5)
    assert alerts_in(out) == [(OWNER, AlertType.START, Channel.PUSH)]
    assert not state.climate.running and state.climate.used_s == 0.0  # the cap resets


def test_unlocking_with_a_registered_phone_applies_the_drivers_profile() -> None:
    profile = DriverProfile(seat_position=2, nav_volume=9)
    state = with_key(car(), "carol")
    state, _, _ = ok(state, DriverRegister(account=OWNER, name="Alice"))
    state, _, _ = ok(state, DriverRegister(account="carol", name="Carol", profile=profile), "carol")
    state, _, _ = ok(state, KeyUse(action=KeyAction.UNLOCK), "carol", EPOCH + 1)
    assert (state.active_driver, state.applied_profile) == ("carol", profile)


def test_revoke_ends_the_key_and_tells_the_phone() -> None:
    state = with_key(car(), "carol")
    state, result, out = ok(state, KeyRevoke(key_id=1), now=EPOCH + 1)
    assert result.keys == ()
    (gone,) = [e for e in out if e.target == "user:carol"]
    assert gone.body == GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)
    refused(state, KeyUse(action=KeyAction.LOCK), Code.NOT_AUTHORIZED, "carol", EPOCH + 2)


def test_revoking_a_key_still_on_its_way_answers_the_waiting_issue() -> None:
    state, offer = issue(car(), "carol", id=16)
    state, _, out = ok(state, KeyRevoke(key_id=1), id=17)
    assert [(e.id, e.body.code) for e in out if isinstance(e.body, Error)] == [(16, Code.CONFLICT.value)]
    assert bodies_to(out, "carol") == [GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)]  # in case it had stored it
    _, answer = deliver_to_user(new_user("carol"), offer, EPOCH + 1)
    late, out = VEHICLE.step(state, answer, EPOCH + 1)
    assert late is state and out == []


def test_a_sharee_may_also_hold_a_key_and_keeps_both_roles() -> None:
    state = with_key(with_sharee(car(), "bob"), "bob")
    ok(state, KeyUse(action=KeyAction.UNLOCK), "bob")
    state, _, _ = ok(state, KeyRevoke(key_id=1))
    ok(state, RemoteCheck(), "bob")


# --- the holder deletes the app: the key goes, the owner is told


def test_the_holder_gives_the_key_up_and_the_owner_is_told() -> None:
    state = with_key(car(), "carol")
    state, result, out = ok(state, KeyRelease(), "carol", EPOCH + 1)
    assert result == Done(detail="digital key deleted from this phone")
    assert state.keys == () and state.pending == ()
    assert bodies_to(out, "carol", GarageChanged) == [GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)]
    assert alerts_in(out) == both_channels(OWNER, AlertType.DIGITAL_KEY)
    assert all("carol" in alert.text and alert.car == CAR and alert.at == EPOCH + 1 for alert in bodies_to(out, OWNER))
    _, keys_left, _ = ok(state, KeyList(), now=EPOCH + 2)
    assert keys_left.keys == ()
    refused(state, KeyUse(action=KeyAction.UNLOCK), Code.NOT_AUTHORIZED, "carol", EPOCH + 2)
    refused(state, KeyRelease(), Code.NOT_FOUND, "carol", EPOCH + 2)  # nothing left to give up


def test_the_phone_forgets_the_released_key_and_has_room_again() -> None:
    carol = phone_with_keys_for("carol", ["car:x1", "car:x2", "car:x3"])
    state, offer = issue(car(), "carol", id=30)
    carol, answer = deliver_to_user(carol, offer, EPOCH)
    state, out = VEHICLE.step(state, answer, EPOCH)
    (added,) = bodies_to(out, "carol", GarageChanged)
    carol, _ = USER.step(carol, Envelope(added, sender=CAR, target="user:carol", ts=EPOCH), EPOCH)
    assert len(carol.key_cars) == 4 and carol.garage[CAR] is Role.KEY_HOLDER
    state, _, out = ok(state, KeyRelease(), "carol", EPOCH + 1)
    (gone,) = [e for e in out if e.target == "user:carol" and isinstance(e.body, GarageChanged)]
    carol, forwarded = USER.step(carol, gone, EPOCH + 1)
    assert CAR not in carol.key_cars and CAR not in carol.garage
    assert [e.target for e in forwarded] == ["app:carol"]  # the app hears its key is gone
    _, offer = issue(state, "carol", id=31, now=EPOCH + 2)
    carol, answer = deliver_to_user(carol, offer, EPOCH + 2)
    assert isinstance(answer.body, Ok)  # four cars again, this one among them


def test_a_sharee_who_gives_up_the_key_still_shares_the_car() -> None:
    state = with_key(with_sharee(car(), "bob"), "bob")
    state, _, out = ok(state, KeyRelease(), "bob")
    assert state.keys == () and [s.account for s in state.shares] == ["bob"]
    bob = new_user("bob")
    for change in (GarageChanged(car=CAR, role=Role.SHAREE, added=True), *bodies_to(out, "bob", GarageChanged)):
        bob, _ = USER.step(bob, Envelope(change, sender=CAR, target="user:bob", ts=EPOCH), EPOCH)
    assert bob.garage == {CAR: Role.SHAREE} and bob.key_cars == frozenset()
    ok(state, RemoteCheck(), "bob")
    refused(state, KeyUse(action=KeyAction.UNLOCK), Code.NOT_AUTHORIZED, "bob")


@pytest.mark.parametrize("who", [OWNER, "bob", "mallory", "app:carol", "car:c1", "operator"])
def test_only_the_holder_can_give_a_key_up(who: str) -> None:
    """The owner (who holds no key), a sharee, a stranger, or no person at all: nothing to give up,
    and carol's key is untouched (`refused` checks the state comes back as it was)."""
    state = with_key(with_sharee(car(), "bob"), "carol")
    message = refused(state, KeyRelease(), Code.NOT_FOUND, who, EPOCH + 1)
    assert "no digital key" in message


def test_the_owner_revokes_keys_by_id_and_does_not_release_them() -> None:
    state = with_key(car(), "carol")
    refused(state, KeyRelease(), Code.NOT_FOUND, OWNER)
    state, result, _ = ok(state, KeyRevoke(key_id=1))
    assert result.keys == ()


def test_releasing_a_key_still_on_its_way_answers_the_waiting_issue() -> None:
    """The phone stored the offer and the app was deleted before the car heard back."""
    state, offer = issue(car(), "carol", id=32)
    state, _, out = ok(state, KeyRelease(), "carol", id=33)
    assert [(e.target, e.id, e.body.code) for e in out if isinstance(e.body, Error)] == [("user:alice", 32, Code.CONFLICT.value)]
    assert bodies_to(out, "carol", GarageChanged) == [GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)]
    assert alerts_in(out) == both_channels(OWNER, AlertType.DIGITAL_KEY)
    assert state.keys == () and state.pending == ()
    _, answer = deliver_to_user(new_user("carol"), offer, EPOCH + 1)
    late, out = VEHICLE.step(state, answer, EPOCH + 1)
    assert late is state and out == []


def test_a_released_key_frees_its_place_among_the_five() -> None:
    state = car()
    for i in range(5):
        state = with_key(state, f"holder{i}", id=40 + i)
    refused(state, KeyIssue(account="holder5"), Code.LIMIT_REACHED)
    state, _, _ = ok(state, KeyRelease(), "holder2")
    assert [k.account for k in state.keys] == ["holder0", "holder1", "holder3", "holder4"]
    issue(state, "holder5", id=45)


def test_deleting_the_app_works_whatever_the_contract() -> None:
    """On Lite the key can no longer be used, but it can still be given up."""
    state = with_key(car(), "carol")
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE))
    refused(state, KeyUse(action=KeyAction.UNLOCK), Code.NOT_IN_PLAN, "carol")
    state, _, out = ok(state, KeyRelease(), "carol")
    assert state.keys == () and alerts_in(out) == both_channels(OWNER, AlertType.DIGITAL_KEY)


def test_the_owner_may_switch_the_key_alert_off_per_channel() -> None:
    state = with_key(car(), "carol")
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.DIGITAL_KEY, channel=Channel.EMAIL, enabled=False))
    _, _, out = ok(state, KeyRelease(), "carol", EPOCH + 1)
    assert alerts_in(out) == [(OWNER, AlertType.DIGITAL_KEY, Channel.PUSH)]
