"""Driver profiles, "my settings" (SPEC p.15): 3 drivers, the owner first, identification."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.protocol import (
    DriverList,
    DriverProfile,
    DriverRegister,
    DriverRemove,
    DriverUpdate,
    KeyNear,
    Plan,
)

from ._helpers import EPOCH, OWNER, car, ok, refused, report, with_key, with_sharee

ALICE = DriverProfile(map_orientation="heading_up", map_mode="3d", search_history=("Ginza",), keyboard="romaji", nav_volume=3, seat_position=4)
BOB = DriverProfile(seat_position=9, nav_volume=7)


def family(plan: Plan = Plan.STANDARD):  # type: ignore[no-untyped-def]
    """Owner alice, sharee bob, key holder carol; nobody registered yet."""
    return with_key(with_sharee(car(plan=plan), "bob"), "carol")


@pytest.mark.parametrize("who", ["bob", "carol", "mallory"])
def test_the_first_registration_is_the_owners(who: str) -> None:
    state = family()
    message = refused(state, DriverRegister(account=who, name="First"), Code.NOT_AUTHORIZED, who)
    assert "owner" in message
    state, result, _ = ok(state, DriverRegister(account=OWNER, name="Alice", profile=ALICE))
    assert [(d.account, d.name, d.profile) for d in result.drivers] == [(OWNER, "Alice", ALICE)]


def test_the_owner_may_register_someone_else_first() -> None:
    _, result, _ = ok(family(), DriverRegister(account="bob", name="Bob"))
    assert [d.account for d in result.drivers] == ["bob"]


@pytest.mark.parametrize("who", ["bob", "carol"])  # a sharee, a key holder
def test_after_the_first_people_who_use_the_car_register_themselves(who: str) -> None:
    state, _, _ = ok(family(), DriverRegister(account=OWNER, name="Alice"))
    state, result, _ = ok(state, DriverRegister(account=who, name=who.title(), profile=BOB), who)
    assert [d.account for d in result.drivers] == [OWNER, who]


def test_a_stranger_may_not_register_themself() -> None:
    state, _, _ = ok(family(), DriverRegister(account=OWNER, name="Alice"))
    refused(state, DriverRegister(account="mallory", name="Mallory"), Code.NOT_AUTHORIZED, "mallory")


def test_nobody_but_the_owner_registers_someone_else() -> None:
    state, _, _ = ok(family(), DriverRegister(account=OWNER, name="Alice"))
    refused(state, DriverRegister(account="carol", name="Carol"), Code.NOT_AUTHORIZED, "bob")
    state, _, _ = ok(state, DriverRegister(account="carol", name="Carol"))  # the owner may


@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.LITE])
def test_at_most_three_drivers_owner_included(plan: Plan) -> None:
    state = car(plan=plan)
    for i, who in enumerate(["bob", "carol", "dan"]):  # sharees: Lite offers no digital key
        state = with_sharee(state, who, id=50 + i)
    state, _, _ = ok(state, DriverRegister(account=OWNER, name="Alice"))
    state, _, _ = ok(state, DriverRegister(account="bob", name="Bob"), "bob")
    state, _, _ = ok(state, DriverRegister(account="carol", name="Carol"), "carol")
    assert "3" in refused(state, DriverRegister(account="dan", name="Dan"), Code.LIMIT_REACHED, "dan")
    assert "3" in refused(state, DriverRegister(account="dan", name="Dan"), Code.LIMIT_REACHED)
    state, _, _ = ok(state, DriverRemove(account="carol"), "carol")
    ok(state, DriverRegister(account="dan", name="Dan"), "dan")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (DriverRegister(account=OWNER, name="Again"), Code.CONFLICT),
        (DriverRegister(account="bob", name="  "), Code.INVALID_VALUE),
        (DriverUpdate(account="bob", profile=BOB), Code.NOT_FOUND),
        (DriverRemove(account="bob"), Code.NOT_FOUND),
    ],
)
def test_driver_mistakes_are_refused(body: object, code: Code) -> None:
    state, _, _ = ok(family(), DriverRegister(account=OWNER, name="Alice"))
    refused(state, body, code)  # type: ignore[arg-type]


def registered():  # type: ignore[no-untyped-def]
    state, _, _ = ok(family(), DriverRegister(account=OWNER, name="Alice", profile=ALICE))
    state, _, _ = ok(state, DriverRegister(account="bob", name="Bob", profile=BOB), "bob")
    return state


def test_a_key_coming_near_identifies_the_driver_and_applies_the_profile() -> None:
    state, out = report(registered(), KeyNear(account="bob"), EPOCH + 1)
    assert out == []
    assert (state.active_driver, state.applied_profile) == ("bob", BOB)
    state, _ = report(state, KeyNear(account=OWNER), EPOCH + 2)
    assert (state.active_driver, state.applied_profile) == (OWNER, ALICE)
    _, result, _ = ok(state, DriverList())
    assert result.active == OWNER


@pytest.mark.parametrize("who", ["carol", "mallory"])
def test_an_unregistered_person_gets_nothing_applied(who: str) -> None:
    state, _ = report(registered(), KeyNear(account=who), EPOCH + 1)
    assert (state.active_driver, state.applied_profile) == (None, None)


def test_updating_the_active_driver_applies_the_new_profile() -> None:
    state, _ = report(registered(), KeyNear(account="bob"), EPOCH + 1)
    newer = DriverProfile(seat_position=1)
    state, _, _ = ok(state, DriverUpdate(account="bob", profile=newer), "bob")
    assert state.applied_profile == newer
    refused(state, DriverUpdate(account="bob", profile=ALICE), Code.NOT_AUTHORIZED, "carol")


def test_removing_the_active_driver_clears_what_was_applied() -> None:
    state, _ = report(registered(), KeyNear(account="bob"), EPOCH + 1)
    state, _, _ = ok(state, DriverRemove(account="bob"))
    assert (state.active_driver, state.applied_profile) == (None, None)


@pytest.mark.parametrize(("who", "allowed"), [(OWNER, True), ("bob", True), ("carol", False), ("mallory", False)])
def test_the_owner_and_registered_drivers_list_the_drivers(who: str, allowed: bool) -> None:
    state = registered()
    if allowed:
        _, result, _ = ok(state, DriverList(), who)
        assert [d.account for d in result.drivers] == [OWNER, "bob"]
    else:
        refused(state, DriverList(), Code.NOT_AUTHORIZED, who)
