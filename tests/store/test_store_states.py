"""Actor states: exact round trips through bytes and through the file, for states the real
model produced (see `conftest.lived_in_world`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import msgpack
import pytest

from twin.model import OperatorState, UserState, VehicleState, new_vehicle
from twin.protocol import Alert, AlertType, Channel, ContractCancel, EmergencyCall, HandoverDeleteKeys, HandoverWipe, Ok, Role, SharedFunction
from store_world import EPOCH, World, walk
from twin.store import KINDS, Store, StoreError, kind_of, state_from_bytes, state_to_bytes



def test_every_state_of_the_real_model_round_trips_exactly(states: dict[str, tuple[str, object]]) -> None:
    assert {kind for kind, _ in states.values()} == set(KINDS)
    for address, (kind, state) in states.items():
        data = state_to_bytes(kind, state)
        back = state_from_bytes(kind, data)
        assert back == state, address
        walk(state, back, address)
        assert state_to_bytes(kind, back) == data, f"{address}: encoding is not stable"


def test_the_round_trip_keeps_the_model_types(states: dict[str, tuple[str, object]]) -> None:
    car = state_from_bytes("vehicle", state_to_bytes(*states["car:1"]))
    assert isinstance(car, VehicleState)
    assert type(car.shares) is tuple and type(car.shares[0].functions) is frozenset
    assert SharedFunction.REMOTE_CHECK in car.shares[0].functions
    prefs = car.alert_prefs["alice"]
    assert type(prefs) is frozenset and (AlertType.START, Channel.PUSH) in prefs
    assert all(type(pair) is tuple and type(pair[0]) is AlertType for pair in prefs)
    assert car.drivers[0].profile.search_history == ("home", "Shinagawa clinic 7F")
    assert car.climate.schedules[0].weekdays == (0, 4)
    bob = state_from_bytes("user", state_to_bytes(*states["user:bob"]))
    assert isinstance(bob, UserState) and bob.garage == {"car:1": Role.SHAREE}
    assert any(isinstance(m, Alert) for m in bob.inbox)
    desk = state_from_bytes("operator", state_to_bytes(*states["operator"]))
    assert isinstance(desk, OperatorState) and isinstance(desk.calls[0], EmergencyCall)
    assert desk.calls[0].delta_v_kmh == 62.5


def test_messages_in_states_are_tagged_by_type(states: dict[str, tuple[str, object]]) -> None:
    raw = msgpack.unpackb(state_to_bytes(*states["user:alice"]))
    assert [m["type"] for m in raw["inbox"]] == ["alert", "alert", "operator_notice"]
    assert set(raw["inbox"][0]) == {"type", "body"}
    raw = msgpack.unpackb(state_to_bytes(*states["operator"]))
    assert [m["type"] for m in raw["calls"]] == ["emergency_call"]


def test_an_untouched_car_is_small_and_shares_the_default_parts() -> None:
    car = new_vehicle("42")
    data = state_to_bytes("vehicle", car)
    assert len(data) < 40, data
    back = state_from_bytes("vehicle", data)
    assert back == car
    # defaults come back as the model's shared objects, so a million idle cars stay cheap
    assert back.status is car.status and back.info is car.info and back.climate is car.climate


def test_kind_must_match_the_class(states: dict[str, tuple[str, object]]) -> None:
    _, car = states["car:1"]
    assert kind_of(car) == "vehicle"
    with pytest.raises(StoreError, match="must be a UserState"):
        state_to_bytes("user", car)
    with pytest.raises(StoreError, match="unknown state kind 'boat'"):
        state_to_bytes("boat", car)
    with pytest.raises(StoreError, match="not a state the store keeps"):
        kind_of(object())


def test_save_close_reopen_load_is_equal(db_path: Path, states: dict[str, tuple[str, object]]) -> None:
    with Store.open(db_path) as store:
        store.save_states(states)
    with Store.open(db_path) as store:
        loaded = {address: (kind, state) for address, kind, state in store.load_states()}
        assert store.load_state("car:1") == states["car:1"]
        assert store.load_state("car:nope") is None
        assert store.statistics().states_by_kind == {"vehicle": 3, "user": 4, "operator": 1}
    assert loaded == states
    for address in states:
        walk(states[address][1], loaded[address][1], address)


def test_saving_again_keeps_only_the_latest(store: Store, states: dict[str, tuple[str, object]]) -> None:
    kind, car = states["car:1"]
    later = attrs.evolve(car, next_key_id=99)
    store.save_states({"car:1": (kind, car)})
    store.save_states({"car:1": (kind, later)})
    assert list(store.load_states()) == [("car:1", "vehicle", later)]


def test_a_batch_with_a_bad_state_writes_nothing(store: Store, states: dict[str, tuple[str, object]]) -> None:
    batch = dict(states)
    batch["user:zed"] = ("user", states["car:1"][1])
    with pytest.raises(StoreError):
        store.save_states(batch)
    assert list(store.load_states()) == []


def test_many_states_load_page_by_page(db_path: Path) -> None:
    cars = {f"car:{i:05}": ("vehicle", new_vehicle(f"{i:05}", owner=f"owner-{i}")) for i in range(2500)}
    with Store.open(db_path) as store:
        store.save_states(cars)
    with Store.open(db_path) as store:
        loaded = list(store.load_states())
        assert store.delete_states(["car:00000", "car:00001", "car:nope"]) == 2
        assert store.statistics().states == 2498
    assert [a for a, _, _ in loaded] == sorted(cars)
    assert {a: (k, s) for a, k, s in loaded} == cars


def test_a_stored_state_that_no_longer_fits_names_its_address(store: Store, db_path: Path) -> None:
    good = msgpack.unpackb(state_to_bytes("vehicle", new_vehicle("7")))
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO states VALUES ('car:7', 'vehicle', ?, 0)", (msgpack.packb({**good, "colour": "red"}),))
        conn.execute("INSERT INTO states VALUES ('car:8', 'vehicle', ?, 0)", (b"\xc1 not msgpack",))
    with pytest.raises(StoreError, match=r"^car:7: .*does not fit VehicleState.*colour") as info:
        next(store.load_states())
    assert "migration" in info.value.message
    with pytest.raises(StoreError, match=r"^car:8: .*not valid msgpack"):
        store.load_state("car:8")


def test_after_a_hand_over_the_old_profile_is_gone_from_the_file(db_path: Path, fresh_world: World) -> None:
    """SPEC p.40: nothing of the old owner may remain readable. The wiped state replaces the
    old one, and the old bytes are not left behind in freed pages."""
    private = "Shinagawa clinic 7F".encode()
    with Store.open(db_path) as store:
        store.save_states({"car:1": ("vehicle", fresh_world.state("car:1"))})
        assert private in (db_path.read_bytes() + Path(str(db_path) + "-wal").read_bytes())
        t = EPOCH + 86400
        for body in (HandoverDeleteKeys(), ContractCancel(), HandoverWipe()):
            t += 60
            assert isinstance(fresh_world.ask("user:alice", "car:1", body, t), Ok), body
        store.save_states({"car:1": ("vehicle", fresh_world.state("car:1"))})
        assert store.load_state("car:1") == ("vehicle", fresh_world.state("car:1"))
    assert private not in db_path.read_bytes()
