"""The scenario file: a fleet, a timeline of steps at virtual times, and expectations.

A scenario is TOML (see docs/scenarios.md). This module turns a file into frozen values and
refuses anything it does not understand, naming the file, the step and the key, the way the
protocol's codec names the field of a bad frame. Messages inside steps are written with their
wire tags and field names and are built by `twin.protocol.structure_body`, the project's one
converter; the scenario's own tables (cars, steps, expectations) are checked here.

Times: every step happens at an offset from the scenario's `epoch` (a TOML offset date-time,
which also gives the local time zone used to print the timeline and to read `at = 07:30:00`).
An offset is resolved when the file is read, so a loaded scenario is a plain list of actions
at exact virtual times.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import Code, ProtocolError, TwinError
from ..protocol import (
    Alert,
    DriverProfile,
    Message,
    Plan,
    Position,
    Powertrain,
    SharedFunction,
    Telematics,
    fields_of,
    message_types,
    structure_body,
)
from ..protocol._codec import converter as _converter

__all__ = [
    "DEFAULT_EPOCH",
    "CarSpec",
    "DriverSpec",
    "Expect",
    "Scenario",
    "ScenarioError",
    "ShareSpec",
    "ScenarioStep",
    "format_duration",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
]

#: 2026-11-26 20:00 JST, a Thursday evening: the default start of every scenario.
DEFAULT_EPOCH = _dt.datetime(2026, 11, 26, 20, 0, tzinfo=_dt.timezone(_dt.timedelta(hours=9)))

ERROR_CODES = frozenset(c.value for c in Code)
DELIVERY_KEYS = ("to", "from", "type", "ts")  # what a delivery pattern may name besides body fields


class ScenarioError(TwinError, ValueError):
    """A scenario file that cannot be read; the message names the file, step and key to fix."""

    default_code = Code.INVALID_VALUE


# --- durations


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: Any, where: str = "duration") -> float:
    """'1h30m', '25m', '90s', '2d', '0' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a duration like '25m' or '1h30m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text in ("0", ""):
            seconds = 0.0 if text == "0" else math.nan
        else:
            pos, seconds = 0, 0.0
            for match in _DURATION.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or pos == 0:
                seconds = math.nan
    else:
        seconds = math.nan
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        raise ScenarioError(f"{where}: expected a duration like '25m', '1h30m', '90s' or '2d', got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest '1d2h3m4s' form ('0s' for zero); the inverse of parse_duration."""
    if seconds == 0:
        return "0s"
    out = []
    rest = seconds
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        whole = int(rest // size)
        if whole:
            out.append(f"{whole}{unit}")
            rest -= whole * size
    if rest:
        out.append(f"{int(rest)}s" if float(rest).is_integer() else f"{rest:g}s")
    return "".join(out)


# --- the values a scenario is made of


@attrs.frozen(kw_only=True)
class ShareSpec:
    """A sharee the owner invited and who accepted before the timeline starts."""

    account: str
    functions: frozenset[SharedFunction] = frozenset(SharedFunction)


@attrs.frozen(kw_only=True)
class DriverSpec:
    """A driver profile registered by the owner before the timeline starts."""

    account: str
    name: str
    profile: DriverProfile = DriverProfile()


@attrs.frozen(kw_only=True)
class CarSpec:
    """One car of the fleet; the keys mirror `twin.model.new_vehicle`'s keyword arguments."""

    id: str
    owner: str | None = None
    plan: Plan = Plan.STANDARD
    navi_package: bool = True
    powertrain: Powertrain = Powertrain.HYBRID
    wifi: bool = False
    dashcam: bool = False
    has_digital_key: bool = True
    has_dashcam: bool = False
    has_remote_start_kit: bool = False
    emergency_checked: bool = True
    position: Position | None = None
    name: str = ""
    registration: str = ""
    sharees: tuple[ShareSpec, ...] = ()
    keys: tuple[str, ...] = ()
    drivers: tuple[DriverSpec, ...] = ()
    telematics: Telematics = Telematics.SIMULATED  # online / offline: a linked car (`link` steps)

    @property
    def address(self) -> str:
        return "car:" + self.id

    @property
    def linked(self) -> bool:
        return self.telematics is not Telematics.SIMULATED

    def accounts(self) -> list[str]:
        named = [self.owner] if self.owner else []
        named += [s.account for s in self.sharees] + list(self.keys) + [d.account for d in self.drivers]
        return named


@attrs.frozen(kw_only=True)
class Expect:
    """What a step must produce. Unset parts (None) are not checked.

    `ok`/`error`/`message`/`result` look at the reply (or, for a report, whether the car
    refused the event); `alerts` is the exact list of alerts the step produced, `notices`
    deliveries that must be among what it produced, `absent` patterns (a wire tag, or a tag
    with fields) no delivery of the step may match; `state` is matched against the state of
    the step's subject after the step. Matching follows `twin.scenarios._match`.
    """

    ok: bool | None = None
    error: str | None = None
    message: str | Mapping[str, str] | None = None
    result: Mapping[str, Any] | None = None
    alerts: tuple[Mapping[str, Any], ...] | None = None
    notices: tuple[Mapping[str, Any], ...] | None = None
    absent: tuple[Mapping[str, Any], ...] | None = None
    state: Mapping[str, Any] | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, a.name) is None for a in attrs.fields(Expect))


@attrs.frozen(kw_only=True)
class ScenarioStep:
    """One action of the timeline at `t` seconds after the epoch.

    kind "send": `sender` (an address) sends `body` to `target` and waits for the reply;
    "report": car `target` reports the event `body`; "advance": time runs until `t`
    (`start` is when it began); "check": only expectations, on `target`'s state; "link": the
    telematics unit of linked car `target` does `link` (attach, drop, refuse with `reason`,
    go silent, carry out again).
    """

    index: int
    kind: str
    t: float
    start: float = 0.0
    sender: str | None = None
    target: str | None = None
    body: Message | None = None
    note: str = ""
    expect: Expect = Expect()
    line: int | None = None  # 1-based position among the file's [[step]] tables
    link: str = ""  # a link step's verb, one of LINK_VERBS
    reason: str = ""  # with link = "refuse": what the unit answers

    @property
    def label(self) -> str:
        return f"step {self.index}"

    @property
    def action(self) -> str:
        """What the step does, in a few words: 'alice -> car:c1 lock', 'car:c1 reports
        alarm_sounding', 'advance 1h', 'check operator'."""
        if self.kind == "send" and self.body is not None:
            return f"{(self.sender or '')[5:]} -> {self.target} {self.body.TYPE}"
        if self.kind == "report" and self.body is not None:
            return f"{self.target} reports {self.body.TYPE}"
        if self.kind == "advance":
            return f"advance {format_duration(self.t - self.start)}"
        if self.kind == "link":
            return f"{self.target}'s link {_LINK_PHRASES.get(self.link, self.link)}"
        return f"check {self.target}"

    @property
    def title(self) -> str:
        """The step's number, action and note: how JUnit, JSON and `-k` name it."""
        return f"{self.label}: {self.action}" + (f" # {self.note}" if self.note else "")


@attrs.frozen(kw_only=True)
class Scenario:
    name: str
    story: str = ""
    epoch: _dt.datetime = DEFAULT_EPOCH
    accounts: tuple[str, ...] = ()
    cars: tuple[CarSpec, ...] = ()
    steps: tuple[ScenarioStep, ...] = ()
    invariants: bool = True
    source: str = "<scenario>"

    @property
    def epoch_s(self) -> float:
        return self.epoch.timestamp()

    @property
    def tz(self) -> _dt.tzinfo:
        return self.epoch.tzinfo or _dt.timezone.utc

    @property
    def duration(self) -> float:
        return max((s.t for s in self.steps), default=0.0)

    def all_accounts(self) -> list[str]:
        """Declared accounts, then those the cars name, each once, in first-seen order."""
        seen: dict[str, None] = dict.fromkeys(self.accounts)
        for car in self.cars:
            seen.update(dict.fromkeys(car.accounts()))
        return list(seen)

    def car(self, address: str) -> CarSpec | None:
        return next((c for c in self.cars if c.address == address), None)


# --- reading


_TOP_KEYS = {"scenario", "car", "step"}
_SCENARIO_KEYS = {"name", "story", "epoch", "accounts", "invariants"}
_CAR_KEYS = {a.name for a in attrs.fields(CarSpec)}
_STEP_KINDS = ("send", "report", "advance", "check", "link")
_STEP_KEYS = {"send", "report", "advance", "check", "link", "reason", "at", "after", "from", "to", "car", "body", "note", "expect"}
#: what a linked car's telematics unit can be made to do in a `link` step
LINK_VERBS = ("attach", "drop", "refuse", "silent", "carry_out")
_LINK_PHRASES = {"attach": "attaches", "drop": "drops", "refuse": "refuses every actuation", "silent": "goes silent", "carry_out": "carries out again"}
_EXPECT_KEYS = {a.name for a in attrs.fields(Expect)}


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file, or raise ScenarioError saying what to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_scenario(text, source=str(path), default_name=path.stem)


def parse_scenario(text: str, *, source: str = "<scenario>", default_name: str = "scenario") -> Scenario:
    """Parse scenario TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(_toml_error(text, source, str(exc))) from None
    return _Reader(source).scenario(data, default_name)


_TOML_AT = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")
_TOML_HINTS = (
    ("Cannot mutate immutable namespace", "write a table such as `expect` or `body` either inline (`expect = { ok = true }`) or as dotted keys (`expect.ok = true`), not both in one step"),
    ("Cannot overwrite a value", "this key was given a value already (inline `expect = { ... }` and dotted `expect.x = ...` cannot be mixed; nor can a key be set twice)"),
    ("Cannot declare", "this table was declared already; a key is set once per table"),
    ("Invalid value", "a value is a \"string\", a number, true or false, a date-time, a { table } or a [list]; text needs quotes"),
    ("Illegal character", "a string must close on its own line (use \\n for a line break, or triple quotes)"),
    ("Unclosed", "a bracket, brace or quote is not closed"),
    ("Expected '=' after a key", "write `key = value`; a key with spaces or dots in it needs quotes"),
)


def _toml_error(text: str, source: str, message: str) -> str:
    """tomllib's message, with the file, the line (and its step) and what to do about it."""
    found = _TOML_AT.search(message)
    what = message[: found.start()] if found else message
    lines = text.splitlines()
    line = int(found.group(1)) if found and found.group(1) else len(lines)
    step = sum(1 for row in lines[:line] if row.strip().startswith("[[step]]"))
    where = f"line {line}" + (f" (step {step})" if step else "")
    hint = next((h for prefix, h in _TOML_HINTS if what.startswith(prefix)), "see https://toml.io for the syntax")
    shown = f"\n    {line} | {lines[line - 1].rstrip()}" if 0 < line <= len(lines) else ""
    return f"{source}: {where}: not valid TOML: {what}: {hint}{shown}"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {what}")

    def keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(where, f"unknown key {key!r}{_did_you_mean(key, sorted(allowed))}; allowed: {', '.join(sorted(allowed))}")

    def typed(self, value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise self.fail(where, f"{what} must be {_kind_name(kind)}, got {value!r}")
        return value

    # -- top level

    def scenario(self, data: dict[str, Any], default_name: str) -> Scenario:
        self.keys(data, _TOP_KEYS, "top level")
        head = data.get("scenario", {})
        self.typed(head, dict, "[scenario]", "[scenario]")
        self.keys(head, _SCENARIO_KEYS, "[scenario]")
        name = self.typed(head.get("name", default_name), str, "[scenario]", "name")
        story = self.typed(head.get("story", ""), str, "[scenario]", "story")
        epoch = head.get("epoch", DEFAULT_EPOCH)
        if not isinstance(epoch, _dt.datetime) or epoch.tzinfo is None:
            raise self.fail("[scenario]", f"epoch must be a TOML date-time with its UTC offset, e.g. 2026-11-26T20:00:00+09:00, got {epoch!r}")
        accounts = tuple(self.strings(head.get("accounts", []), "[scenario]", "accounts"))
        invariants = self.typed(head.get("invariants", True), bool, "[scenario]", "invariants")
        cars = tuple(self.car(c, i) for i, c in enumerate(self.tables(data.get("car", []), "[[car]]"), 1))
        ids = [c.id for c in cars]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            raise self.fail("[[car]]", f"car id {dup!r} is used twice")
        known = dict.fromkeys(accounts)
        for car in cars:
            known.update(dict.fromkeys(car.accounts()))
        steps = self.steps(self.tables(data.get("step", []), "[[step]]"), cars, list(known), epoch)
        return Scenario(
            name=name, story=story, epoch=epoch, accounts=accounts, cars=cars, steps=tuple(steps),
            invariants=invariants, source=self.source,
        )

    def tables(self, value: Any, where: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.fail(where, f"write each entry as a {where} table")
        return value

    def strings(self, value: Any, where: str, what: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, f"{what} must be a list of non-empty strings, got {value!r}")
        return value

    # -- cars

    def car(self, raw: dict[str, Any], n: int) -> CarSpec:
        where = f"car {n}" + (f" ({raw['id']!r})" if isinstance(raw.get("id"), str) else "")
        self.keys(raw, _CAR_KEYS, where)
        if not isinstance(raw.get("id"), str) or not raw["id"] or ":" in raw["id"]:
            raise self.fail(where, "every car needs an `id`: a non-empty string without ':' (its address is car:<id>)")
        sharees = []
        for i, s in enumerate(raw.get("sharees", []), 1):
            if isinstance(s, str):
                s = {"account": s}
            sharees.append(self.structure(s, ShareSpec, f"{where} sharees[{i}]"))
        drivers = [self.structure(d, DriverSpec, f"{where} drivers[{i}]") for i, d in enumerate(self.listed(raw, "drivers", where), 1)]
        plain = {k: v for k, v in raw.items() if k not in ("sharees", "drivers")}
        car = self.structure(plain, CarSpec, where)
        car = attrs.evolve(car, sharees=tuple(sharees), drivers=tuple(drivers))
        if car.owner is None and (car.sharees or car.keys or car.drivers):
            raise self.fail(where, "sharees, keys and drivers need an owner to set them up; add `owner`")
        return car

    def listed(self, raw: dict[str, Any], key: str, where: str) -> list[Any]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise self.fail(where, f"{key} must be a list")
        return value

    def structure(self, raw: Any, cls: type, where: str) -> Any:
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a table, got {raw!r}")
        self.keys(raw, {a.name for a in attrs.fields(cls)}, where)
        try:
            return _converter.structure(raw, cls)
        except Exception as exc:
            raise self.fail(where, _first_error(exc)) from None

    # -- steps

    def steps(self, raws: list[dict[str, Any]], cars: tuple[CarSpec, ...], accounts: list[str], epoch: _dt.datetime) -> list[ScenarioStep]:
        out: list[ScenarioStep] = []
        now = 0.0
        for n, raw in enumerate(raws, 1):
            where = f"step {n}"
            self.keys(raw, _STEP_KEYS, where)
            kinds = [k for k in _STEP_KINDS if k in raw]
            if len(kinds) != 1:
                raise self.fail(where, f"a step has exactly one of {', '.join(_STEP_KINDS)}; this one has {kinds or 'none'}")
            kind = kinds[0]
            if "at" in raw and "after" in raw:
                raise self.fail(where, "give `at` or `after`, not both")
            if "at" in raw:
                t = self.at(raw["at"], now, epoch, where)
            elif "after" in raw:
                t = now + parse_duration(raw["after"], f"{self.source}: {where}: after")
            else:
                t = now
            if t < now:
                raise self.fail(where, f"at {format_duration(t)} is before the previous step ({format_duration(now)}); steps run in time order")
            note = self.typed(raw.get("note", ""), str, where, "note")
            expect = self.expect(raw.get("expect", {}), where)
            step = ScenarioStep(index=n, kind=kind, t=t, start=t, note=note, expect=expect, line=n)
            if kind == "send":
                step = self.send(raw, step, cars, accounts, where)
            elif kind == "report":
                step = self.report(raw, step, cars, where)
            elif kind == "link":
                step = self.link(raw, step, cars, where)
            elif kind == "advance":
                for key in ("from", "to", "car", "body"):
                    if key in raw:
                        raise self.fail(where, f"an advance step takes no {key!r}")
                step = attrs.evolve(step, t=t + parse_duration(raw["advance"], f"{self.source}: {where}: advance"))
                if expect.state is not None or expect.ok is not None or expect.error or expect.result:
                    raise self.fail(where, "an advance step can expect only alerts, notices and absent")
            else:
                for key in ("from", "to", "car", "body"):
                    if key in raw:
                        raise self.fail(where, f"a check step takes no {key!r}; name what to check in `check`")
                target = self.address(raw["check"], cars, accounts, where, "check", allow_users=True)
                step = attrs.evolve(step, target=target)
                if expect.state is None:
                    raise self.fail(where, "a check step needs expect.state")
            if step.kind in ("check",) and (expect.alerts is not None or expect.notices or expect.absent):
                raise self.fail(where, "a check step takes no time, so it can only expect a state")
            now = step.t
            out.append(step)
        return out

    def at(self, value: Any, now: float, epoch: _dt.datetime, where: str) -> float:
        if isinstance(value, _dt.time):  # the next time the local clock reads this
            local = epoch + _dt.timedelta(seconds=now)
            when = local.replace(hour=value.hour, minute=value.minute, second=value.second, microsecond=value.microsecond)
            if when < local:
                when += _dt.timedelta(days=1)
            return (when - epoch).total_seconds()
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=epoch.tzinfo)
            return (value - epoch).total_seconds()
        return parse_duration(value, f"{self.source}: {where}: at")

    def body(self, raw: dict[str, Any], tag: str, kind: str, where: str) -> Message:
        cls = message_types().get(tag)
        if cls is None:
            tags = sorted(t for t, c in message_types().items() if c.KIND == kind)
            raise self.fail(where, f"unknown message type {tag!r}{_did_you_mean(tag, tags)}")
        if cls.KIND != kind:
            hint = "send commands with `send`" if cls.KIND == "command" else "cars report events with `report`"
            raise self.fail(where, f"{tag!r} is {_a(cls.KIND)}, not {_a(kind)}: {hint}")
        data = raw.get("body", {})
        if isinstance(data, dict):
            fields = sorted(fields_of(cls))
            for key in data:
                if key not in fields:
                    allowed = f"its fields: {', '.join(fields)}" if fields else "it has no fields"
                    raise self.fail(where, f"{tag}: unknown field {key!r}{_did_you_mean(key, fields)}; {allowed} (docs/protocol.md)")
        try:
            return structure_body(tag, data)
        except ProtocolError as exc:
            raise self.fail(where, exc.message) from None

    def send(self, raw: dict[str, Any], step: ScenarioStep, cars: tuple[CarSpec, ...], accounts: list[str], where: str) -> ScenarioStep:
        tag = self.typed(raw["send"], str, where, "send")
        body = self.body(raw, tag, "command", where)
        if "car" in raw:
            raise self.fail(where, "a send step names its target with `to`")
        sender = raw.get("from")
        if not isinstance(sender, str):
            raise self.fail(where, "a send step needs `from`: the account that sends it")
        if sender.startswith("user:"):
            sender = sender[5:]
        if sender not in accounts:
            raise self.fail(where, f"unknown account {sender!r}{_did_you_mean(sender, accounts)}; declare it in [scenario] accounts")
        if "to" in raw:
            target = self.address(raw["to"], cars, accounts, where, "to", allow_users=False)
        elif tag == "guard_extension_answer":
            target = "operator"
        elif len(cars) == 1:
            target = cars[0].address
        else:
            raise self.fail(where, "`to` is needed when the fleet has more than one car")
        for name in ("account",):
            value = getattr(body, name, None)
            if isinstance(value, str) and value not in accounts:
                raise self.fail(where, f"body names account {value!r}, which the scenario does not declare{_did_you_mean(value, accounts)}; add it to [scenario] accounts")
        return attrs.evolve(step, sender="user:" + sender, target=target, body=body)

    def report(self, raw: dict[str, Any], step: ScenarioStep, cars: tuple[CarSpec, ...], where: str) -> ScenarioStep:
        tag = self.typed(raw["report"], str, where, "report")
        body = self.body(raw, tag, "event", where)
        for key in ("from", "to"):
            if key in raw:
                raise self.fail(where, f"a report step names its car with `car`, not {key!r}")
        if "car" in raw:
            target = self.address(raw["car"], cars, [], where, "car", allow_users=False)
            if target == "operator":
                raise self.fail(where, "only cars report events")
        elif len(cars) == 1:
            target = cars[0].address
        else:
            raise self.fail(where, "`car` is needed when the fleet has more than one car")
        return attrs.evolve(step, sender=target, target=target, body=body)

    def link(self, raw: dict[str, Any], step: ScenarioStep, cars: tuple[CarSpec, ...], where: str) -> ScenarioStep:
        verb = self.typed(raw["link"], str, where, "link")
        if verb not in LINK_VERBS:
            raise self.fail(where, f"link is one of {', '.join(LINK_VERBS)}, not {verb!r}{_did_you_mean(verb, list(LINK_VERBS))}")
        for key in ("from", "to", "body"):
            if key in raw:
                raise self.fail(where, f"a link step takes no {key!r}; name the car with `car`")
        reason = self.typed(raw.get("reason", ""), str, where, "reason")
        if (verb == "refuse") != bool(reason):
            raise self.fail(where, "link = \"refuse\" needs a `reason` (what the unit answers), and only it takes one")
        if "car" in raw:
            target = self.address(raw["car"], cars, [], where, "car", allow_users=False)
        elif len(cars) == 1:
            target = cars[0].address
        else:
            raise self.fail(where, "`car` is needed when the fleet has more than one car")
        car = next((c for c in cars if c.address == target), None)
        if car is None or not car.linked:
            raise self.fail(where, f"{target} is simulated: only a car with telematics = \"online\" or \"offline\" has a link")
        if step.expect.ok is not None or step.expect.error or step.expect.result or step.expect.message:
            raise self.fail(where, "a link step has no reply: it can expect alerts, notices, absent and state")
        return attrs.evolve(step, target=target, link=verb, reason=reason)

    def address(self, value: Any, cars: tuple[CarSpec, ...], accounts: list[str], where: str, what: str, *, allow_users: bool) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"{what} must name a car (car:<id> or its id){', an account (user:<name>)' if allow_users else ''} or operator")
        ids = [c.id for c in cars]
        if value == "operator":
            return value
        if value.startswith("car:"):
            if value[4:] not in ids:
                raise self.fail(where, f"no car {value!r} in the fleet{_did_you_mean(value[4:], ids)}")
            return value
        if value.startswith("user:"):
            if not allow_users or value[5:] not in accounts:
                raise self.fail(where, f"{what} cannot be {value!r}" + ("" if allow_users else ": commands go to a car or the operator"))
            return value
        if value in ids:
            return "car:" + value
        if allow_users and value in accounts:
            return "user:" + value
        raise self.fail(where, f"{what} = {value!r} names no car{' or account' if allow_users else ''}{_did_you_mean(value, ids + (accounts if allow_users else []))}")

    # -- expectations

    def expect(self, raw: Any, where: str) -> Expect:
        where = f"{where} expect"
        if not isinstance(raw, dict):
            raise self.fail(where, "expect must be a table")
        self.keys(raw, _EXPECT_KEYS, where)
        ok = raw.get("ok")
        if ok is not None:
            self.typed(ok, bool, where, "ok")
        error = raw.get("error")
        if error is not None:
            self.typed(error, str, where, "error")
            if error not in ERROR_CODES:
                raise self.fail(where, f"error {error!r} is not a code of twin.errors.Code{_did_you_mean(error, sorted(ERROR_CODES))}")
            if ok:
                raise self.fail(where, "expect either ok or an error, not both")
        message = raw.get("message")
        if message is not None:
            if not (isinstance(message, str) or (isinstance(message, dict) and set(message) == {"contains"})):
                raise self.fail(where, f'message must be the whole text or {{ contains = "part" }}, got {message!r}')
            self.patterned(message, where, "message")
            if error is None:
                raise self.fail(where, "`message` checks an error's text; give `error` too")
        result = raw.get("result")
        if result is not None:
            self.typed(result, dict, where, "result")
            if error is not None:
                raise self.fail(where, "an error reply has no result")
        alerts = raw.get("alerts")
        if alerts is not None:
            alerts = tuple(self.pattern(p, "alert", f"{where} alerts[{i}]") for i, p in enumerate(self.tables(alerts, f"{where} alerts"), 1))
        notices = raw.get("notices")
        if notices is not None:
            notices = tuple(self.pattern(p, None, f"{where} notices[{i}]") for i, p in enumerate(self.tables(notices, f"{where} notices"), 1))
        absent = raw.get("absent")
        if absent is not None:
            if not isinstance(absent, list):
                raise self.fail(where, f"absent must be a list of wire tags or notice patterns, got {absent!r}")
            absent = tuple(
                self.pattern({"type": p} if isinstance(p, str) else p, None, f"{where} absent[{i}]")
                for i, p in enumerate(absent, 1)
            )
        state = raw.get("state")
        if state is not None:
            self.typed(state, dict, where, "state")
            if not state:
                raise self.fail(where, "state = {} would ask for a state with nothing in it; name the fields to check")
            self.patterned(state, where, "state")
        if result is not None:
            if not result:
                raise self.fail(where, "result = {} would ask for a result with nothing in it; write ok = true, or name the fields to check")
            self.patterned(result, where, "result")
        return Expect(ok=ok, error=error, message=message, result=result, alerts=alerts, notices=notices, absent=absent, state=state)

    def patterned(self, value: Any, where: str, what: str) -> None:
        from ._match import pattern_problems  # _match reads durations from here

        problems = pattern_problems(value, what)
        if problems:
            raise self.fail(where, problems[0])

    def pattern(self, raw: Any, tag: str | None, where: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a wire tag or a table such as {{ type = \"alert\", to = \"bob\" }}, got {raw!r}")
        tag = raw.get("type", tag)
        if not isinstance(tag, str):
            raise self.fail(where, "a notice pattern needs `type`: the message's wire tag")
        cls = message_types().get(tag)
        if cls is None:
            raise self.fail(where, f"unknown message type {tag!r}{_did_you_mean(tag, sorted(message_types()))}")
        if cls is Alert and "type" in raw and raw["type"] != "alert":
            raise self.fail(where, "alerts are of type 'alert'")
        allowed = set(DELIVERY_KEYS) | {a.name for a in attrs.fields(cls)}
        self.keys(raw, allowed, where)
        self.patterned({k: v for k, v in raw.items() if k != "type"}, where, tag)
        out = dict(raw)
        out["type"] = tag
        if isinstance(out.get("to"), str) and out["to"].startswith("user:"):
            out["to"] = out["to"][5:]
        return out


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table", list: "a list"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _first_error(exc: BaseException) -> str:
    import cattrs

    try:
        messages = cattrs.transform_error(exc)  # type: ignore[arg-type]
    except Exception:
        messages = [str(exc)]
    return "; ".join(messages) or str(exc)
