"""Hypothesis strategies for messages, envelopes, cars and the steps of a car's life.

Shared by the tests and by `twin explore`. Two families live here:

- generic ones (`values_of`, `message_of`, `messages`, `envelopes`): any registered message,
  built from the attrs fields and annotated types of each class in
  `twin.protocol.message_types()` (enums, nested attrs classes, generic ones such as
  `Reading[T]`, tuples, frozensets, dicts, optionals and unions such as `AnyResult`), so a
  message type is covered the day it is registered;
- realistic ones (`commands`, `events`, `vehicles`, `fleet_step`, `fleet_steps`): what a car and
  its people send (known accounts, 10 or 20 minute climate runs, door and window reports ...),
  with a small share of invalid values so that the rules, not only the validators, get
  exercised. A class missing from the realistic tables falls back to the generic builder.

Values stay small (short text, bounded numbers, few elements) so failures shrink to examples a
person can read.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar, Union

import attrs
from hypothesis import strategies as st

from ..errors import Code
from ..model import VehicleState, new_vehicle
from ..protocol import (
    PROTOCOL_VERSION,
    AirbagDeployed,
    ChargingChanged,
    DoorChanged,
    HazardsChanged,
    IgnitionChanged,
    LockedByKey,
    Occupancy,
    ClimateStop,
    ClimateGet,
    CloseWindows,
    FlashHazards,
    GetVehicleInfo,
    Locate,
    Lock,
    RemoteCheck,
    Unlock,
    AlarmSounding,
    ClimateScheduleAdd,
    ClimateScheduleRemove,
    ClimateSettings,
    ClimateSettingsSet,
    ClimateStart,
    ContractOptions,
    ContractPlan,
    DashcamClip,
    DriverProfile,
    DriverRegister,
    DriverRemove,
    DriverUpdate,
    EnergyReported,
    Envelope,
    GuardExtensionAnswer,
    Impact,
    KeyIssue,
    KeyNear,
    KeyRelease,
    KeyRevoke,
    Message,
    Plan,
    Position,
    PositionReported,
    Power,
    Powertrain,
    PoliceReport,
    SetHazards,
    ShareAccept,
    ShareDecline,
    SharedFunction,
    ShareInvite,
    ShareRevoke,
    SoftwareAvailable,
    SoftwareUpdateAccept,
    WifiDevice,
    WifiUsage,
    WindowChanged,
    message_types,
)

__all__ = [
    "ACCOUNTS",
    "EPOCH",
    "EVERYDAY_EVENTS",
    "FRIEND_ANSWERS",
    "OPERATOR_COMMANDS",
    "FRIENDS",
    "OWNER",
    "REMOTE_USE",
    "STRANGER",
    "Step",
    "addresses",
    "commands",
    "envelopes",
    "error_codes",
    "events",
    "fleet_step",
    "fleet_steps",
    "message_of",
    "messages",
    "positions",
    "trip",
    "values_of",
    "vehicles",
]

#: A fixed start of time for scenarios: 2026-01-01T00:00:00Z.
EPOCH = 1_767_225_600.0

#: The people of the realistic strategies: the owner, six friends (one more than the sharee
#: limit, so limits get hit) and a stranger nobody ever invites.
OWNER = "ann"
FRIENDS = ("ben", "cho", "dev", "eli", "fay", "gus")
STRANGER = "zed"
ACCOUNTS = (OWNER, *FRIENDS, STRANGER)

#: Commands addressed to the operator desk rather than to a car.
OPERATOR_COMMANDS: frozenset[type[Message]] = frozenset({GuardExtensionAnswer})

_UNION_TYPES = (Union, types.UnionType)

# --- generic: any value of an annotated type ---------------------------------------------------

_small_ints = st.integers(min_value=-1000, max_value=1000)
_small_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_short_text = st.text(max_size=8)
#: Plain msgpack data, for fields typed `Any`: what a decoder hands back.
_plain_data = st.recursive(
    st.none() | st.booleans() | _small_ints | _small_floats | _short_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_short_text, inner, max_size=3),
    max_leaves=8,
)


def values_of(tp: Any) -> st.SearchStrategy[Any]:
    """Any (small) value of the annotated type `tp`, as the protocol's message classes use them.

    Handles bool, int, float, str, None, `Any` (plain msgpack data), enums, attrs classes
    (generic ones such as `Reading[T]` included), tuples (fixed and `...`), frozensets, dicts,
    optionals and unions (`AnyResult`). Raises `TypeError` naming the type for anything else,
    so a new field type in the catalogue is noticed here first.
    """
    return _values_of(tp)


@functools.cache
def _values_of(tp: Any) -> st.SearchStrategy[Any]:
    if tp is type(None) or tp is None:
        return st.none()
    if tp is Any:
        return _plain_data
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _small_ints
    if tp is float:
        return _small_floats
    if tp is str:
        return _short_text
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _UNION_TYPES:
        # None first, so optionals shrink to None
        ordered = sorted(args, key=lambda a: a is not type(None))
        return st.one_of(*(_values_of(a) for a in ordered))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_values_of(args[0]), max_size=3).map(tuple)
        return st.tuples(*(_values_of(a) for a in args))
    if origin is frozenset:
        return st.frozensets(_values_of(args[0]), max_size=4)
    if origin is dict:
        return st.dictionaries(_values_of(args[0]), _values_of(args[1]), max_size=4)
    cls = origin if origin is not None else tp
    if isinstance(cls, type) and attrs.has(cls):
        return _attrs_values(cls, args)
    raise TypeError(f"values_of: no strategy for the field type {tp!r}; teach twin.scenarios.strategies about it")


def _attrs_values(cls: type, args: tuple[Any, ...] = (), **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Build `cls` from a strategy per field: `overrides` where given, else from its type."""
    hints = typing.get_type_hints(cls)
    params = getattr(cls, "__parameters__", ())
    binding = dict(zip(params, args))
    unknown = set(overrides) - {f.name for f in attrs.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    fields = {
        f.name: overrides[f.name] if f.name in overrides else _values_of(_bind(hints[f.name], binding))
        for f in attrs.fields(cls)
    }
    return st.builds(cls, **fields)


def _bind(tp: Any, binding: dict[Any, Any]) -> Any:
    """Substitute the type variables of a generic attrs class by their arguments."""
    if isinstance(tp, TypeVar):
        return binding[tp]
    params = getattr(tp, "__parameters__", ())
    if params:
        return tp[tuple(binding[p] for p in params)]
    return tp


def message_of(cls_or_tag: type[Message] | str) -> st.SearchStrategy[Message]:
    """Any body of one registered message class (or tag), built generically from its fields."""
    cls = message_types()[cls_or_tag] if isinstance(cls_or_tag, str) else cls_or_tag
    return _values_of(cls)  # type: ignore[arg-type]  # a class is hashable; mypy checks its instances' __hash__


def messages(kind: str | None = None) -> st.SearchStrategy[Message]:
    """Any registered message body (of one KIND, such as "command" or "event", if given)."""
    tags = sorted(tag for tag, cls in message_types().items() if kind is None or cls.KIND == kind)
    if not tags:
        raise ValueError(f"no registered message has KIND {kind!r}")
    return st.sampled_from(tags).flatmap(message_of)


def addresses(accounts: tuple[str, ...] = ACCOUNTS) -> st.SearchStrategy[str]:
    """A routing address: a person, their app, a car, or the operator desk."""
    acct = st.sampled_from(accounts)
    return st.one_of(
        acct.map("user:".__add__),
        st.sampled_from(["car:c1", "car:c2"]),
        st.just("operator"),
        acct.map("app:".__add__),
    )


def envelopes(bodies: st.SearchStrategy[Message] | None = None) -> st.SearchStrategy[Envelope]:
    """An envelope around `bodies` (default: any message) with drawn routing data."""
    return st.builds(
        Envelope,
        bodies if bodies is not None else messages(),
        sender=addresses(),
        target=addresses(),
        id=st.integers(min_value=0, max_value=2**31),
        ts=st.floats(min_value=0.0, max_value=4e9, allow_nan=False),
        v=st.just(PROTOCOL_VERSION),
    )


# --- realistic: what a car and its people send -------------------------------------------------


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values nearly always (and when shrinking), an invalid one now and then."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 9 else good)


_temperature = _mostly(st.integers(16, 32).map(float), st.sampled_from([10.0, 35.0]))
_climate_settings = st.builds(
    ClimateSettings,
    temperature_c=_temperature,
    front_defroster=st.booleans(),
    rear_defroster=st.booleans(),
    seat_heaters=st.booleans(),
    seat_ventilation=st.booleans(),
    steering_heater=st.booleans(),
)
_duration = _mostly(st.sampled_from([10, 20]), st.sampled_from([0, 15, 30]))
_clock_time = _mostly(
    st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])).map(lambda t: f"{t[0]:02d}:{t[1]:02d}"),
    st.sampled_from(["24:00", "7", "07:60", ""]),
)
_weekdays = _mostly(
    st.lists(st.integers(0, 6), min_size=1, max_size=3).map(tuple),
    st.sampled_from([(), (7,), (-1,)]),
)
_profile = st.builds(
    DriverProfile,
    map_orientation=st.sampled_from(["north_up", "heading_up"]),
    map_mode=st.sampled_from(["2d", "3d"]),
    search_history=st.lists(st.sampled_from(["home", "office", "station", "onsen"]), max_size=2).map(tuple),
    keyboard=st.sampled_from(["kana", "qwerty"]),
    nav_volume=st.integers(0, 10),
    seat_position=st.integers(0, 10),
)
_functions = _mostly(
    st.frozensets(st.sampled_from(list(SharedFunction)), min_size=1),
    st.just(frozenset()),
)
_versions = st.sampled_from(["1.1.0", "2.0.0", "1.0.0"])
_lat = st.floats(min_value=24.0, max_value=46.0, allow_nan=False)
_lon = st.floats(min_value=123.0, max_value=146.0, allow_nan=False)


def _command_table(accounts: tuple[str, ...]) -> dict[type[Message], st.SearchStrategy[Message]]:
    acct = st.sampled_from(accounts)
    return {
        SetHazards: _attrs_values(SetHazards, on=st.booleans()),
        ClimateStart: _attrs_values(ClimateStart, duration_min=_duration, settings=st.none() | _climate_settings),
        ClimateSettingsSet: _attrs_values(ClimateSettingsSet, settings=_climate_settings),
        ClimateScheduleAdd: _attrs_values(ClimateScheduleAdd, weekdays=_weekdays, at=_clock_time, duration_min=_duration),
        ClimateScheduleRemove: _attrs_values(ClimateScheduleRemove, schedule_id=st.integers(1, 8)),
        ShareInvite: _attrs_values(ShareInvite, account=acct, functions=_functions),
        ShareRevoke: _attrs_values(ShareRevoke, account=acct),
        KeyIssue: _attrs_values(KeyIssue, account=acct),
        KeyRevoke: _attrs_values(KeyRevoke, key_id=st.integers(1, 8)),
        DriverRegister: _attrs_values(DriverRegister, account=acct, name=_mostly(st.sampled_from(["Ann", "Ben", "Cho"]), st.just(" ")), profile=_profile),
        DriverRemove: _attrs_values(DriverRemove, account=acct),
        DriverUpdate: _attrs_values(DriverUpdate, account=acct, profile=_profile),
        SoftwareUpdateAccept: _attrs_values(SoftwareUpdateAccept, version=_versions),
        ContractPlan: _attrs_values(ContractPlan, plan=st.sampled_from(list(Plan)), navi_package=st.booleans()),
        ContractOptions: _attrs_values(ContractOptions, wifi=st.booleans(), dashcam=st.booleans()),
        PoliceReport: _attrs_values(PoliceReport, report_no=_mostly(st.sampled_from(["R-1", "R-2"]), st.just(""))),
        GuardExtensionAnswer: _attrs_values(GuardExtensionAnswer, car=st.just("car:c1"), extend=st.booleans()),
    }


def _event_table(accounts: tuple[str, ...]) -> dict[type[Message], st.SearchStrategy[Message]]:
    return {
        WindowChanged: _attrs_values(WindowChanged, position_pct=_mostly(st.sampled_from([0, 100]) | st.integers(0, 100), st.sampled_from([-1, 101]))),
        PositionReported: _attrs_values(PositionReported, lat=_lat, lon=_lon, speed_kmh=st.floats(0, 120)),
        EnergyReported: _attrs_values(
            EnergyReported,
            level_pct=_mostly(st.floats(0, 100), st.just(101.0)),
            range_km=st.floats(0, 800),
            odometer_km=st.floats(0, 200_000),
        ),
        AlarmSounding: _attrs_values(AlarmSounding, cause=st.sampled_from(["intrusion", "door forced", "glass"])),
        Impact: _attrs_values(Impact, delta_v_kmh=_mostly(st.floats(0, 80), st.just(-1.0))),
        AirbagDeployed: _attrs_values(AirbagDeployed, delta_v_kmh=st.floats(0, 80), cabin_answers=st.booleans()),
        DashcamClip: _attrs_values(DashcamClip, clip_id=st.integers(1, 9).map("clip-{}".format)),
        SoftwareAvailable: _attrs_values(
            SoftwareAvailable,
            version=_versions,
            notes=st.sampled_from(["", "fixes"]),
            install_s=_mostly(st.sampled_from([60, 600]), st.just(0)),
            needs_restart=st.booleans(),
        ),
        KeyNear: _attrs_values(KeyNear, account=st.sampled_from(accounts)),
        WifiDevice: _attrs_values(WifiDevice, device_id=st.integers(1, 12).map("dev-{}".format), joined=st.booleans()),
        WifiUsage: _attrs_values(WifiUsage, megabytes=_mostly(st.integers(0, 4000), st.just(-1))),
    }


def _of_kind(
    kind: str,
    table: dict[type[Message], st.SearchStrategy[Message]],
    exclude: frozenset[type[Message]],
    only: Iterable[type[Message]] | None,
) -> st.SearchStrategy[Message]:
    wanted = None if only is None else set(only)
    classes = sorted(
        (
            cls
            for cls in message_types().values()
            if cls.KIND == kind and cls not in exclude and (wanted is None or cls in wanted)
        ),
        key=lambda cls: cls.TYPE,
    )
    if not classes:
        raise ValueError(f"no registered {kind} among {sorted(c.__name__ for c in wanted or ())}")
    return st.one_of(*(table[cls] if cls in table else message_of(cls) for cls in classes))


def commands(
    accounts: tuple[str, ...] = ACCOUNTS,
    *,
    for_car: bool = True,
    only: Iterable[type[Message]] | None = None,
) -> st.SearchStrategy[Message]:
    """Any registered command (of the classes in `only`, if given) with realistic values;
    `for_car` leaves out the commands addressed to the operator desk."""
    exclude = OPERATOR_COMMANDS if for_car else frozenset()
    return _of_kind("command", _command_table(accounts), exclude, only)


def events(accounts: tuple[str, ...] = ACCOUNTS, *, only: Iterable[type[Message]] | None = None) -> st.SearchStrategy[Message]:
    """Any registered vehicle event (of the classes in `only`, if given) with realistic values,
    mostly valid and a few out of range."""
    return _of_kind("event", _event_table(accounts), frozenset(), only)


def positions() -> st.SearchStrategy[Position]:
    return st.builds(Position, _lat, _lon)


@st.composite
def vehicles(
    draw: st.DrawFn,
    vehicle_id: str = "c1",
    owner: st.SearchStrategy[str | None] | None = None,
) -> VehicleState:
    """A consistent car from `new_vehicle`: drawn plan, powertrain, options, equipment, owner.

    Options follow the plan table: the navi package and the dashcam option only on Standard,
    the dashcam option only on a car with a dashcam. The owner defaults to `OWNER` (now and
    then none: an unlinked car, waiting for someone to sign up).
    """
    who = draw(owner if owner is not None else _mostly(st.just(OWNER), st.none()))
    plan = draw(st.sampled_from(list(Plan)))
    standard = plan is Plan.STANDARD
    has_dashcam = draw(st.booleans())
    return new_vehicle(
        vehicle_id,
        owner=who,
        plan=plan,
        powertrain=draw(st.sampled_from(list(Powertrain))),
        navi_package=standard and draw(st.booleans()),
        wifi=draw(st.booleans()),
        dashcam=standard and has_dashcam and draw(st.booleans()),
        has_digital_key=not draw(st.booleans()),
        has_dashcam=has_dashcam,
        has_remote_start_kit=draw(_mostly(st.just(False), st.just(True))),
        emergency_checked=not draw(st.booleans()),
        position=draw(st.none() | positions()),
        started_at=EPOCH if who is not None else None,
    )


class Step(NamedTuple):
    """One thing happening to a car: `sender` sends `body`, `dt` seconds after the previous step."""

    sender: str
    body: Message
    dt: float


#: Seconds between steps: mostly moments, sometimes the length of a timer, now and then a day.
_dt = st.one_of(
    st.integers(0, 90).map(float),
    st.sampled_from([300.0, 600.0, 1200.0, 3600.0]),
    st.integers(0, 2 * 86400).map(float),
)


#: What an owner or a sharee does with the car from the app, day to day (guide p.16, p.24-28).
REMOTE_USE: tuple[type[Message], ...] = (
    Lock, Unlock, SetHazards, CloseWindows, RemoteCheck, Locate, FlashHazards, GetVehicleInfo,
    ClimateStart, ClimateStop, ClimateGet, ClimateSettingsSet,
)

#: What a friend does about the role the owner gave them: answer an invitation, or give a key
#: back (deleting the app deletes the key).
FRIEND_ANSWERS: tuple[Message, ...] = (ShareAccept(), ShareDecline(), KeyRelease())

#: What a car reports most: a drive and a park (the rest, alarms, crashes, updates, is rarer).
EVERYDAY_EVENTS: tuple[type[Message], ...] = (
    DoorChanged, WindowChanged, LockedByKey, HazardsChanged, IgnitionChanged, PositionReported,
    EnergyReported, ChargingChanged, KeyNear, Occupancy,
)


@st.composite
def fleet_step(
    draw: st.DrawFn,
    vehicle_id: str = "c1",
    *,
    owner: str = OWNER,
    friends: tuple[str, ...] = FRIENDS,
    strangers: tuple[str, ...] = (STRANGER,),
) -> Step:
    """One realistic step for car `vehicle_id`.

    Mostly the car itself (everyday events: doors, locks, ignition, position ...; sometimes
    anything) or the owner: using the car from the app (often the climate), letting friends in
    (invitations, keys, driver profiles) or anything else. Sometimes a friend
    answers an invitation, gives a key back, or uses the car (which works only if it was
    shared with them), and now and then a stranger tries anything, which must never work.
    """
    accounts = (owner, *friends)
    role = draw(st.sampled_from(["car", "owner", "car", "owner", "friend", "stranger"]))
    if role == "car":
        everyday = draw(st.sampled_from([True, True, False]))
        return Step("car:" + vehicle_id, draw(events(accounts, only=EVERYDAY_EVENTS if everyday else None)), draw(_dt))
    if role == "owner":
        sender = owner
        what = draw(st.sampled_from(["use", "climate", "let_in", "any"]))
        if what == "use":
            body = draw(commands(accounts, only=REMOTE_USE))
        elif what == "climate":
            body = draw(commands(accounts, only=(ClimateStart, ClimateStop, ClimateScheduleAdd)))
        elif what == "let_in":
            body = draw(commands(friends, only=(ShareInvite, KeyIssue, DriverRegister)))
        else:
            body = draw(commands(accounts))
    elif role == "friend":
        sender = draw(st.sampled_from(friends))
        what = draw(st.sampled_from(["answer", "use", "any"]))
        if what == "answer":
            body = draw(st.sampled_from(FRIEND_ANSWERS))
        elif what == "use":
            body = draw(commands(accounts, only=REMOTE_USE))
        else:
            body = draw(commands(accounts))
    else:
        sender, body = draw(st.sampled_from(strangers)), draw(commands(accounts) | events(accounts))
    return Step("user:" + sender, body, draw(_dt))


@st.composite
def trip(draw: st.DrawFn, vehicle_id: str = "c1") -> list[Step]:
    """A drive as the car reports it: power on, moving, power off, then maybe a door left open,
    a window left down, hazards on or the doors locked with the key (the "forgot" alerts' cases)."""
    car = "car:" + vehicle_id
    power = draw(st.sampled_from([Power.ON, Power.ON, Power.ACC]))
    steps = [Step(car, IgnitionChanged(power=power), draw(_dt))]
    for _ in range(draw(st.integers(0, 2))):
        steps.append(Step(car, draw(events(only=(PositionReported,))), draw(st.integers(10, 1800).map(float))))
    steps.append(Step(car, IgnitionChanged(power=Power.OFF), draw(st.integers(10, 3600).map(float))))
    after = draw(st.lists(events(only=(DoorChanged, WindowChanged, HazardsChanged, LockedByKey)), max_size=3))
    steps.extend(Step(car, body, draw(st.integers(0, 120).map(float))) for body in after)
    return steps


def fleet_steps(
    vehicle_id: str = "c1",
    *,
    owner: str = OWNER,
    friends: tuple[str, ...] = FRIENDS,
    strangers: tuple[str, ...] = (STRANGER,),
    min_size: int = 0,
    max_size: int = 30,
) -> st.SearchStrategy[list[Step]]:
    """A list of realistic steps for one car: single steps (see `fleet_step`) and now and then a
    `trip`, cut to at most `max_size` steps."""
    step = fleet_step(vehicle_id, owner=owner, friends=friends, strangers=strangers).map(lambda s: [s])
    segment = st.one_of(step, step, step, trip(vehicle_id))
    return (
        st.lists(segment, min_size=min_size, max_size=max_size)
        .map(lambda segments: [s for seg in segments for s in seg][:max_size])
        .filter(lambda steps: len(steps) >= min_size)
    )


def error_codes() -> st.SearchStrategy[str]:
    """The wire value of any error code."""
    return st.sampled_from([c.value for c in Code])
