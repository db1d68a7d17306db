"""Reading and writing scenario files: strict, with errors that say what to fix, and a writer
whose output reads back to the same scenario."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.protocol import ClimateStart, Lock, Position, ShareInvite, SharedFunction, message_types, structure_body
from twin.scenarios import (
    ScenarioError,
    dump_scenario,
    format_duration,
    load_scenario,
    parse_duration,
    parse_scenario,
)
from twin.scenarios import messages
from twin.scenarios._writer import body_fields, toml_value

EXAMPLES = Path(__file__).parents[2] / "examples" / "scenarios"

ONE_CAR = """
[[car]]
id = "c1"
owner = "alice"
sharees = ["bob"]
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_scenario(text, source="t.toml")


# --- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("25m", 1500.0), ("1h30m", 5400.0), ("90s", 90.0), ("2d", 172800.0), ("1d2h3m4s", 93784.0), (45, 45.0), (1.5, 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "1x", "m5", "1h-2m", -1, True, "1h2"])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ScenarioError, match="expected a duration"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10 * 86400))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


# --- reading


def test_a_step_is_built_with_the_protocols_converter() -> None:
    s = parse(ONE_CAR + """
[[step]]
at = "1h"
from = "alice"
send = "climate_start"
body = { duration_min = 20, settings = { temperature_c = 25 } }
""")
    (step,) = s.steps
    assert step.kind == "send" and step.t == 3600.0
    assert step.sender == "user:alice" and step.target == "car:c1"
    assert step.body == structure_body("climate_start", {"duration_min": 20, "settings": {"temperature_c": 25}})
    assert isinstance(step.body, ClimateStart)


def test_times_at_after_advance_and_local_clock() -> None:
    text = """
[scenario]
epoch = 2026-11-26T20:00:00+09:00
""" + ONE_CAR + """
[[step]]
at = 02:13:00
report = "alarm_sounding"
[[step]]
after = "2m"
advance = "1h"
[[step]]
check = "c1"
expect.state = { vehicle_id = "c1" }
"""
    s = parse(text)
    alarm, adv, check = s.steps
    assert alarm.t == 6 * 3600 + 13 * 60  # the next 02:13 in the epoch's zone
    assert (adv.start, adv.t) == (alarm.t + 120, alarm.t + 120 + 3600)
    assert check.t == adv.t and check.target == "car:c1"
    assert s.epoch == dt.datetime(2026, 11, 26, 20, tzinfo=dt.timezone(dt.timedelta(hours=9)))


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[[step]]\nfrom = "alice"\nsend = "lokc"', "unknown message type 'lokc' (did you mean 'lock'?)"),
        ('[[step]]\nfrom = "alice"\nsend = "door_changed"', "'door_changed' is an event, not a command"),
        ('[[step]]\nreport = "lock"', "'lock' is a command, not an event"),
        ('[[step]]\nfrom = "alice"\nsend = "climate_start"\nbody = { duration_min = "20" }', "climate_start: wrong field type (duration_min: expected int, got str)"),
        ('[[step]]\nfrom = "alice"\nsend = "share_invite"\nbody = { acount = "bob" }', "share_invite: unknown field 'acount' (did you mean 'account'?)"),
        ('[[step]]\nfrom = "alice"\nsend = "share_invite"', "share_invite: missing field(s) account"),
        ('[[step]]\nfrom = "alcie"\nsend = "lock"', "unknown account 'alcie' (did you mean 'alice'?)"),
        ('[[step]]\nfrom = "alice"\nsend = "share_invite"\nbody = { account = "eve" }', "body names account 'eve'"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nexpect = { eror = "x" }', "unknown key 'eror' (did you mean 'error'?)"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nexpect = { error = "door_opened" }', "not a code of twin.errors.Code (did you mean 'door_open'?)"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nfrum = 1', "unknown key 'frum' (did you mean 'from'?)"),
        ('[[step]]\nat = "2h"\nadvance = "1h"\n[[step]]\nat = "1h"\nreport = "alarm_sounding"', "step 2: at 1h is before the previous step (3h)"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nreport = "alarm_sounding"', "exactly one of"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nto = "car:c2"', "no car 'car:c2' in the fleet"),
        ('[[step]]\ncheck = "c1"', "a check step needs expect.state"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nexpect.alerts = [{ to = "bob", alert = "alarm", chanel = "push" }]', "unknown key 'chanel' (did you mean 'channel'?)"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nexpect.notices = [{ to = "bob" }]', "needs `type`"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nat = "soon"', "expected a duration"),
        ('[[step]]\nfrom = "alice"\nsend = "climate_start"\nbody = { duraton_min = 10 }',
         "climate_start: unknown field 'duraton_min' (did you mean 'duration_min'?); its fields: duration_min, settings"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nbody = { doors = 1 }', "lock: unknown field 'doors'; it has no fields"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nexpect = { ok = true }\nexpect.alerts = []',
         "line 10 (step 1): not valid TOML: Cannot mutate immutable namespace ('step', 'expect'): write a table such as `expect`"),
        ('[[step]]\nfrom = "alice"\nsend = "lock"\nexpect.ok = true\nexpect = { ok = true }', "line 10 (step 1): not valid TOML: Cannot overwrite a value"),
    ],
)
def test_mistakes_are_refused_with_what_to_fix(snippet: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(ONE_CAR + snippet)
    assert caught.value.message.startswith("t.toml: ")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[car]]\nowner = 'a'", "every car needs an `id`"),
        ("[[car]]\nid = 'x'\nplan = 'gold'", "car 1 ('x')"),
        ("[[car]]\nid = 'x'\nsharees = ['b']", "need an owner"),
        ("[[car]]\nid = 'x'\n[[car]]\nid = 'x'", "car id 'x' is used twice"),
        ("[[car]]\nid = 'x'\nowner = 'a'\ndrivers = [{ account = 'a', name = 'A', profile = { seat = 1 } }]", "drivers[1]"),
        ("[scenario]\nepoch = 2026-11-26T20:00:00", "with its UTC offset"),
        ("[scenario]\nname = 1", "name must be a string"),
        ("cars = 1", "unknown key 'cars' (did you mean 'car'?)"),
        ("x = ", "not valid TOML"),
    ],
)
def test_fleet_mistakes_are_refused(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(text)
    assert message in caught.value.message


def test_targets_default_to_the_only_car_and_guard_answers_to_the_operator() -> None:
    s = parse(ONE_CAR + """
[[step]]
from = "bob"
send = "lock"
[[step]]
from = "alice"
send = "guard_extension_answer"
body = { car = "car:c1", extend = true }
""")
    assert [st.target for st in s.steps] == ["car:c1", "operator"]
    with pytest.raises(ScenarioError, match="`to` is needed"):
        parse(ONE_CAR + '[[car]]\nid = "c2"\n[[step]]\nfrom = "alice"\nsend = "lock"')


# --- writing


def _body_round_trip(body) -> None:  # type: ignore[no-untyped-def]
    text = f"body = {toml_value(body_fields(body))}\n"
    data = tomllib.loads(text)["body"]
    assert structure_body(body.TYPE, data) == body


@settings(max_examples=300, deadline=None)
@given(messages("command") | messages("event"))
def test_every_command_and_event_round_trips_through_toml(body) -> None:  # type: ignore[no-untyped-def]
    _body_round_trip(body)


def test_bodies_leave_out_defaults() -> None:
    assert body_fields(Lock()) == {}
    assert body_fields(ShareInvite(account="bob")) == {"account": "bob"}
    assert body_fields(ShareInvite(account="bob", functions=frozenset({SharedFunction.CAR_FINDER}))) == {"account": "bob", "functions": ["car_finder"]}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_examples_round_trip_through_the_writer(path: Path) -> None:
    original = load_scenario(path)
    again = parse_scenario(dump_scenario(original), source=original.source)
    strip = lambda s: [attrs.evolve(st, line=None, note="") for st in s.steps]  # noqa: E731
    assert strip(again) == strip(original)
    assert again.cars == original.cars
    assert (again.name, again.story, again.epoch, again.accounts) == (original.name, original.story, original.epoch, original.accounts)


def test_the_writer_escapes_what_toml_needs() -> None:
    for text in ['a"b', "back\\slash", "new\nline", "\x00\x1f\x7f", "日本語", ""]:
        assert tomllib.loads(f"x = {toml_value(text)}")["x"] == text
    assert tomllib.loads(f"x = {toml_value(Position(35.0, 139.5))}")["x"] == {"lat": 35.0, "lon": 139.5}
    with pytest.raises(ValueError, match="no null"):
        toml_value([None])


def test_every_tag_is_known_to_the_reader() -> None:
    # a scenario can name every command and event the protocol registers
    for tag, cls in message_types().items():
        if cls.KIND in ("command", "event") and not attrs.fields(cls):
            kind = "send" if cls.KIND == "command" else "report"
            extra = 'from = "alice"\n' if kind == "send" else ""
            s = parse(ONE_CAR + f'[[step]]\n{extra}{kind} = "{tag}"\n')
            assert s.steps[0].body == cls()
