"""Each invariant catches the bug it is there for. Bugs are planted in the test only: a
handler of the model's table is swapped with `monkeypatch`, or a model subclass is passed to
the replay; the same scenario passes against the real rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from twin.errors import Code, CommandRefused
from twin.model import VehicleModel
from twin.model._dispatch import HANDLERS
from twin.protocol import (
    AlarmSounding,
    CasesClose,
    ClimateStart,
    ContractCancel,
    Error,
    HandoverWipe,
    KeyRelease,
    Lock,
    Reading,
    ShareInvite,
    Unlock,
)
from twin.scenarios import INVARIANTS, Observation, parse_scenario, replay
from twin.scenarios.invariants import deliveries_from_outbox, denied

ALICE_AND_BOB = """
[[car]]
id = "c1"
owner = "alice"
plan = "{plan}"
sharees = ["bob"]
"""


def broken(text: str, **kwargs: Any) -> dict[str, list[str]]:
    """Replay; the failed invariants by name, with their summaries."""
    report = replay(parse_scenario(text, source="t.toml"), **kwargs)
    out: dict[str, list[str]] = {}
    for check in report.failures:
        assert check.is_invariant, check
        out.setdefault(check.what.removeprefix("invariant "), []).append(check.summary)
    return out


def swap(monkeypatch: pytest.MonkeyPatch, message: type, make: Any) -> None:
    monkeypatch.setitem(HANDLERS, message, make(HANDLERS[message]))


def test_every_invariant_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    for name in INVARIANTS:
        assert f"`{name}`" in doc


# --- roles


SHAREE_UNLOCKS = ALICE_AND_BOB.format(plan="standard") + """
[[step]]
from = "bob"
send = "unlock"
"""


def test_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(SHAREE_UNLOCKS) == {}

    def sharee_may_unlock(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            if any(s.account == cx.account and s.accepted for s in state.shares):
                cx = attrs.evolve(cx, env=attrs.evolve(cx.env, sender="user:" + state.contract.owner))
            return real(state, msg, cx)

        return handler

    swap(monkeypatch, Unlock, sharee_may_unlock)
    assert broken(SHAREE_UNLOCKS) == {"roles": ["bob (sharee with car_finder,remote_check,remote_climate,remote_operation,vehicle_info) got ok for 'unlock' on car:c1: only the owner may"]}


def test_the_roles_table_follows_the_spec() -> None:
    from twin.model import new_vehicle
    from twin.model._state import Share
    from twin.protocol import SharedFunction

    car = new_vehicle("c1", owner="alice")
    car = attrs.evolve(car, shares=(Share("bob", frozenset({SharedFunction.REMOTE_CHECK}), accepted=True), Share("eve", frozenset(SharedFunction))))
    assert denied("remote_check", "bob", car, None) is None
    assert denied("lock", "bob", car, None) == "only the owner or a sharee given remote_operation may"
    assert denied("unlock", "bob", car, None) == "only the owner may"
    assert denied("share_accept", "eve", car, None) is None
    assert denied("remote_check", "eve", car, None) is not None  # invited, not yet accepted
    assert denied("contract_plan", "zed", car, None) == "only the owner may change the plan of an owned car"
    assert denied("contract_plan", "zed", new_vehicle("c2"), None) is None  # anyone signs up on an unlinked car


def test_only_a_keys_holder_may_give_it_up() -> None:
    from twin.model import new_vehicle
    from twin.model._state import DigitalKey

    car = attrs.evolve(new_vehicle("c1", owner="alice"), keys=(DigitalKey(1, "carol", active=True), DigitalKey(2, "dan")))
    assert denied("key_release", "carol", car, None) is None
    assert denied("key_release", "dan", car, None) is None  # offered, the phone's answer still on its way
    for who in ("alice", "bob", None):
        assert denied("key_release", who, car, None) is not None


ALICE_BOB_AND_CAROLS_KEY = ALICE_AND_BOB.format(plan="standard") + """keys = ["carol"]
"""

CAROL_DELETES_THE_APP = ALICE_BOB_AND_CAROLS_KEY + """
[[step]]
from = "carol"
send = "key_release"
expect.result = { detail = "digital key deleted from this phone" }
expect.alerts = [{ to = "alice", alert = "digital_key", channel = "email" }, { to = "alice", alert = "digital_key", channel = "push" }]
expect.notices = [{ to = "carol", type = "garage_changed", role = "key_holder", added = false }]

[[step]]
from = "carol"
send = "key_release"
expect = { error = "not_found" }
"""

BOB_RELEASES_CAROLS_KEY = ALICE_BOB_AND_CAROLS_KEY + """
[[step]]
from = "bob"
send = "key_release"
"""


def test_roles_key_release(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(CAROL_DELETES_THE_APP) == {}
    assert broken(BOB_RELEASES_CAROLS_KEY) == {}  # refused: bob holds no key

    def anyone_releases_the_first_key(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            if state.keys:
                cx = attrs.evolve(cx, env=attrs.evolve(cx.env, sender="user:" + state.keys[0].account))
            return real(state, msg, cx)

        return handler

    swap(monkeypatch, KeyRelease, anyone_releases_the_first_key)
    assert broken(BOB_RELEASES_CAROLS_KEY) == {"roles": ["bob (sharee with car_finder,remote_check,remote_climate,remote_operation,vehicle_info) got ok for 'key_release' on car:c1: only the holder of a digital key may give it up"]}


# --- climate


CLIMATE = ALICE_AND_BOB.format(plan="lite") + """
[[step]]
from = "alice"
send = "climate_start"
body = { duration_min = 20 }

[[step]]
at = "30m"
from = "bob"
send = "climate_start"
body = { duration_min = 10 }
"""


def test_climate_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(CLIMATE) == {}

    def no_cap(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            fresh = attrs.evolve(state, climate=attrs.evolve(state.climate, used_s=0.0))
            new, result = real(fresh, msg, cx)
            return attrs.evolve(new, climate=attrs.evolve(new.climate, used_s=state.climate.used_s)), result

        return handler

    swap(monkeypatch, ClimateStart, no_cap)
    assert broken(CLIMATE) == {"climate": ["car:c1: a climate run takes the cumulative use to 30 min, past the 20 min cap"]}


def test_climate_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    def one_minute_more(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            new, result = real(state, msg, cx)
            c = new.climate
            return attrs.evolve(new, climate=attrs.evolve(c, ends_at=c.ends_at + 60)), result

        return handler

    swap(monkeypatch, ClimateStart, one_minute_more)
    found = broken(CLIMATE.replace("plan = \"lite\"", "plan = \"standard\""))
    assert found == {"climate": ["car:c1: a climate run of 21 min is longer than the longest allowed (20 min)", "car:c1: climate started for 20 min runs 21 min", "car:c1: climate started for 10 min runs 11 min"]}


def test_a_run_never_outlives_its_end() -> None:
    class Sleepy(VehicleModel):
        """Forgets to wake up when the climate run ends."""

        def next_deadline(self, state):  # type: ignore[no-untyped-def]
            return None

    found = broken(CLIMATE, model=Sleepy())
    assert found["climate"][0] == "while waiting: car:c1: climate still running 600 s past its end"


# --- limits


SIX_SHAREES = """
[scenario]
accounts = ["b1", "b2", "b3", "b4", "b5", "b6"]
[[car]]
id = "c1"
owner = "alice"
""" + "".join(f'[[step]]\nfrom = "alice"\nsend = "share_invite"\nbody = {{ account = "b{n}" }}\n' for n in range(1, 7))


def test_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(SIX_SHAREES) == {}

    def no_limit(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            cx.config = attrs.evolve(cx.config, max_sharees=99)
            return real(state, msg, cx)

        return handler

    swap(monkeypatch, ShareInvite, no_limit)
    assert broken(SIX_SHAREES) == {"limits": ["car:c1 has 6 sharees, over the limit of 5"]}


# --- alarm


ALARM = ALICE_AND_BOB.format(plan="standard") + """
[[step]]
from = "bob"
send = "alert_settings_set"
body = { alert = "alarm", channel = "email", enabled = false }

[[step]]
report = "alarm_sounding"
"""


def test_alarm(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(ALARM) == {}

    def twice(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            new, result = real(state, msg, cx)
            cx.outbox.extend(e for e in list(cx.outbox) if e.target == "user:alice")
            return new, result

        return handler

    swap(monkeypatch, AlarmSounding, twice)
    assert broken(ALARM) == {"alarm": ["car:c1's alarm: 0 alert(s) missing, 2 unexpected or repeated"]}


def test_alarm_respects_each_recipients_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def ignore_settings(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            return real(attrs.evolve(state, alert_prefs={}), msg, cx)

        return handler

    swap(monkeypatch, AlarmSounding, ignore_settings)
    report = replay(parse_scenario(ALARM, source="t.toml"))
    (check,) = report.failures
    assert check.diff == ("+ bob by email",)


# --- lock


LOCK = ALICE_AND_BOB.format(plan="lite") + """
[[step]]
report = "locked_by_key"
body = { locked = false }

[[step]]
report = "door_changed"
body = { door = "rear_left", open = true }

[[step]]
from = "bob"
send = "lock"

[[step]]
report = "door_changed"
body = { door = "rear_left", open = false }

[[step]]
from = "bob"
send = "lock"
"""


def test_lock_with_a_door_open(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(LOCK) == {}

    def ignores_doors(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            doors = state.status.doors_open
            closed = attrs.evolve(state, status=attrs.evolve(state.status, doors_open=(Reading(False),) * len(doors)))
            new, result = real(closed, msg, cx)
            return attrs.evolve(new, status=attrs.evolve(new.status, doors_open=doors)), result

        return handler

    swap(monkeypatch, Lock, ignores_doors)
    found = broken(LOCK)
    assert found["lock"] == ["car:c1 locked remotely with rear_left open", "car:c1: lock answered ok but the doors are not all locked"]


def test_lock_must_say_which_door(monkeypatch: pytest.MonkeyPatch) -> None:
    def vague(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            if state.status.open_doors():
                raise CommandRefused("a door is open", Code.DOOR_OPEN)
            return real(state, msg, cx)

        return handler

    swap(monkeypatch, Lock, vague)
    assert broken(LOCK) == {"lock": ["car:c1: lock refused as door_open without naming rear_left"]}


def test_a_lite_lock_never_arms_the_alarm(monkeypatch: pytest.MonkeyPatch) -> None:
    def arms(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            new, result = real(state, msg, cx)
            return attrs.evolve(new, status=attrs.evolve(new.status, alarm_armed=Reading(True, cx.now))), result

        return handler

    swap(monkeypatch, Lock, arms)
    assert broken(LOCK) == {"lock": ["car:c1: a remote lock on Lite changed the alarm"]}


# --- refusal


def test_a_refusal_changes_nothing() -> None:
    class Leaky(VehicleModel):
        """Answers a refusal but keeps a change anyway."""

        def step(self, state, env, now):  # type: ignore[no-untyped-def]
            new, out = super().step(state, env, now)
            if any(isinstance(e.body, Error) for e in out):
                new = attrs.evolve(new, status=attrs.evolve(new.status, hazards=Reading(True, now)))
            return new, out

    assert broken(SHAREE_UNLOCKS, model=Leaky()) == {"refusal": ["car:c1 refused 'unlock' (not_authorized) but its state changed: status"]}


# --- handover


HANDOVER = """
[scenario]
accounts = ["nina"]
[[car]]
id = "c1"
owner = "alice"
drivers = [{ account = "alice", name = "Alice" }]

[[step]]
from = "alice"
send = "contract_cancel"

[[step]]
from = "alice"
send = "handover_wipe"

[[step]]
from = "nina"
send = "contract_plan"
body = { plan = "lite" }

[[step]]
from = "nina"
send = "driver_list"
"""


def test_handover(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(HANDOVER) == {}

    def keeps_drivers(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            new, result = real(state, msg, cx)
            return attrs.evolve(new, drivers=state.drivers), result

        return handler

    swap(monkeypatch, HandoverWipe, keeps_drivers)
    found = broken(HANDOVER)
    assert found["handover"] == [
        "car:c1: the wipe left driver profiles or settings behind",
        "car:c1 still holds data of its previous owner 'alice' after the hand-over",
        "car:c1 still holds data of its previous owner 'alice' after the hand-over",
        "car:c1 still holds data of its previous owner 'alice' after the hand-over",
        "nina read data of car:c1's previous owner 'alice' in a 'driver_list' reply",
    ]


def test_the_previous_owner_may_come_back() -> None:
    text = HANDOVER + """
[[step]]
from = "nina"
send = "share_invite"
body = { account = "alice" }
"""
    assert broken(text) == {}


SOLD_WHILE_GUARDED = """
[[car]]
id = "c1"
owner = "alice"
plan = "lite"

[[step]]
from = "alice"
send = "police_report"
body = { report_no = "P-1" }

[[step]]
from = "alice"
send = "tracking_request"

[[step]]
from = "alice"
send = "guard_request"

[[step]]
after = "10m"
from = "alice"
send = "contract_cancel"
expect.notices = [
  { to = "operator", type = "cases_close", car = "car:c1" },
  { to = "alice", type = "operator_notice", kind = "cases_closed", car = "car:c1" },
]

[[step]]
advance = "3h"
expect.absent = ["operator_notice"]
"""


def test_handover_reaches_the_operator_desk(monkeypatch: pytest.MonkeyPatch) -> None:
    assert broken(SOLD_WHILE_GUARDED) == {}

    def forgets_the_desk(real):  # type: ignore[no-untyped-def]
        def handler(state, msg, cx):  # type: ignore[no-untyped-def]
            new, result = real(state, msg, cx)
            cx.outbox[:] = [e for e in cx.outbox if not isinstance(e.body, CasesClose)]
            return new, result

        return handler

    swap(monkeypatch, ContractCancel, forgets_the_desk)
    report = replay(parse_scenario(SOLD_WHILE_GUARDED, source="t.toml"))
    invariant = [c.summary for c in report.failures if c.is_invariant]
    assert invariant == [  # all in the advance step, when the desk next runs
        "the operator desk still holds tracking and a guard at car:c1 for 'alice' after the contract was cancelled",
        "the operator desk sent 'alice' a 'guard_report' about car:c1 after its contract was cancelled",
        "the operator desk sent 'alice' a 'guard_extension_prompt' about car:c1 after its contract was cancelled",
    ]
    assert [c.what for c in report.failures if not c.is_invariant] == ["notices", "absent"]  # the written expectations too


def test_observations_can_be_built_from_a_pure_step() -> None:
    from twin.model import VEHICLE, new_vehicle
    from twin.protocol import Envelope
    from twin.scenarios import Invariants, ScenarioStep

    car = attrs.evolve(new_vehicle("c1", owner="alice"))
    env = Envelope(AlarmSounding(), sender="car:c1", target="car:c1")
    after, outbox = VEHICLE.step(car, env, 100.0)
    step = ScenarioStep(index=1, kind="report", t=0.0, sender="car:c1", target="car:c1", body=env.body)
    obs = Observation(step=step, now=100.0, reply=None, deliveries=deliveries_from_outbox(outbox), before={"car:c1": car}, after={"car:c1": after})
    assert Invariants().check(obs) == []
    obs = attrs.evolve(obs, deliveries=obs.deliveries[:1])
    (failure,) = Invariants().check(obs)
    assert failure.what == "invariant alarm"
