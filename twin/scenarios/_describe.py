"""`twin describe`: what a scenario can send, report and check, generated from the code.

Messages and their fields come from the protocol registry (`twin.protocol.message_types`,
`fields_of`); the state fields a scenario's `expect.state` can name come from the model's
state classes (walked as `plain_state` unstructures them), each with its unit; the error codes
come from `twin.errors.Code`, and which command or event can be refused with which code is
read from the model's source (every `refuse(Code...)` a handler reaches, through the helpers
it calls). `docs/checks.md` is this module's output, and a test keeps it current:

    python -m twin.scenarios._describe > docs/checks.md
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import attrs

from ..errors import Code, CommandRefused
from ..model import OperatorState, UserState, VehicleState
from ..model.telematics import ACTUATING
from ..protocol import Message, Plan, Reading, message_types
from ..protocol._results import Snapshot

__all__ = ["TOPICS", "describe_errors", "describe_main", "describe_message", "describe_state", "render", "state_fields"]

TOPICS = ("state", "errors")

# --- messages


def _type_name(t: Any) -> str:
    from ..server._protocol_doc import _type_name as name  # the wire catalogue's own wording

    return name(t)


def describe_message(tag: str) -> str:
    """One message: its kind, what it is for, and every field with its type and default."""
    from ..server._protocol_doc import _doc, _fields_table

    cls = message_types()[tag]
    lines = [f"### `{tag}` ({cls.KIND})", ""]
    if _doc(cls):
        lines += [_doc(cls), ""]
    lines += _fields_table(cls)
    returns = [code for code, tags in refusals().items() if tag in tags]
    if returns:
        lines += ["", "Refused with: " + ", ".join(f"`{c.value}`" for c in returns) + " (`twin describe errors`)."]
    return "\n".join(lines)


def _messages() -> str:
    out = ["## Messages", "", "Steps name them by wire tag (`send = \"lock\"`, `report = \"alarm_sounding\"`) and their",
           "fields by wire name (`body = { ... }`); patterns of `alerts`, `notices` and `absent` name",
           "the fields of what is delivered. `twin describe TAG` shows one.", ""]
    for tag in sorted(message_types(), key=lambda t: (_KINDS.index(message_types()[t].KIND), t)):
        out += [describe_message(tag), ""]
    return "\n".join(out)


_KINDS = ("command", "event", "notice", "reply", "progress", "session")

# --- state fields


#: How a unit is read off a field's name; the first suffix that fits wins.
_UNITS = (
    ("_at", "model time (POSIX seconds); write `\"T+1h20m\"` for that long after the epoch"),
    ("_until", "model time (POSIX seconds); write `\"T+1h20m\"`"),
    ("_s", "seconds"),
    ("_min", "minutes"),
    ("_pct", "percent"),
    ("_kmh", "km/h"),
    ("_km", "km"),
    ("_mb", "megabytes"),
    ("_jpy", "JPY"),
    ("_c", "°C"),
)

#: What the fields whose names do not say it mean.
MEANINGS: dict[str, str] = {
    "car.active_driver": "account of the driver identified last (their profile is applied); null when none",
    "car.applied_profile": "the driver profile applied to the car now; null when none",
    "car.alert_prefs.<account>": "the (alert, channel) pairs switched on for that recipient; absent: the defaults (every alert but `start`)",
    "car.climate.started_at": "start of the remote climate run in progress; null when none runs",
    "car.climate.ends_at": "when the run in progress stops by itself",
    "car.climate.used_s": "remote climate time used toward the cap since the last ignition ON",
    "car.climate.next_fire_at": "the next scheduled start",
    "car.contract.owner": "the contract holder's account; null without a contract",
    "car.contract.plan": "null without a contract",
    "car.contract.handover": "how far the hand-over went: none, keys_deleted, cancelled, wiped",
    "car.contract.former_owner": "the owner who cancelled, until the wipe",
    "car.contract.emergency_checked": "the emergency unit passed its check since sign-up",
    "car.keys[].active": "the holder's phone accepted the key (false while the offer waits)",
    "car.telematics": "simulated (the twin carries commands out itself), online (its vehicle link is attached) or offline",
    "car.actuations": "approved commands the car's telematics unit was asked to carry out and has not answered yet, each with its deadline",
    "car.next_actuation_id": "the id the next actuation to the car's unit gets",
    "car.pending": "offers waiting for a phone's answer (a key or a share), each with its deadline",
    "car.reported_view": "the view frozen while a Lite PHEV/BEV charges (what remote check shows then); null otherwise",
    "car.security.alarm_sounded_at": "when the alarm last sounded (tracking and guards are allowed for a day after)",
    "car.security.forgot_due_at": "when the \"forgot\" check runs, after the power went OFF",
    "car.security.tracking": "stolen-vehicle tracking runs",
    "car.shares[].accepted": "the invitee accepted (pending invitations count toward the limit too)",
    "car.software.stage": "none, available, downloading, installing, restart_required, done",
    "car.software.stage_ends_at": "when the download or the installation in progress ends",
    "car.software.offered": "the version on offer or being installed",
    "car.status.power": "off, acc or on, as the car reported it",
    "car.status.doors_open": "a reading per door in the order front_left, front_right, rear_left, rear_right, trunk (the snapshot names them)",
    "car.status.windows_pct": "a reading per window, front_left, front_right, rear_left, rear_right; 0 is closed",
    "car.status.last_acc_off": "where the car was when last switched to OFF (the Lite car finder shows this)",
    "car.status.occupied": "the car reports someone inside",
    "car.snapshot": "the remote-check view, with doors and windows by name: `snapshot = { doors_open = { trunk = true } }`",
    "car.wifi.usage_mb": "[local day number, megabytes] pairs of the last days (throttling looks at the 3 days before today)",
    "user.garage.<car>": "the person's role at that car address: owner, sharee or key_holder; `\"absent\"` when the car is not in the garage",
    "user.key_cars": "cars the phone holds a digital key for (at most 4)",
    "user.offers": "share invitations waiting for an answer (messages, with `type`)",
    "user.inbox": "the last alerts and notices (messages, with `type`), newest last",
    "operator.calls": "every emergency call received (messages, with `type`)",
    "operator.tracking.<car>": "the owner's account for each car being tracked",
    "operator.guards": "the guard at each car: `owner`, `paid_until`, `prompted` (asked to extend), `arrives_at`",
    "operator.log": "the desk's log lines, each starting with its model time",
}


@attrs.frozen
class StateField:
    """A path a scenario's `expect.state` may name, with its type, unit and meaning."""

    path: str  # "car.climate.used_s", "car.shares[].account", "user.garage.<car>"
    type: str
    unit: str = ""
    meaning: str = ""


def _unit(name: str) -> str:
    return next((unit for suffix, unit in _UNITS if name.endswith(suffix)), "")


def _walk(t: Any, path: str, name: str) -> Iterator[StateField]:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        rows = list(_walk(real[0], path, name))
        if all(f.path != path for f in rows):  # a table that may be null: say so first
            yield StateField(path, f"{getattr(real[0], '__name__', 'a')} table or null")
        for field in rows:
            yield attrs.evolve(field, type=field.type + " or null") if field.path == path else field
        return
    if origin is Reading or t is Reading:
        inner = args[0] if args else Any
        yield StateField(path, f"reading of {_type_name(inner)}: `{{ value, at }}`; a plain value matches its value", _unit(name))
        return
    if origin is tuple and len(args) == 2 and typing.get_origin(args[0]) is Reading:
        inner = typing.get_args(args[0])[0]
        yield StateField(path, f"list of readings of {_type_name(inner)}: `{{ value, at }}` each", _unit(name))
        return
    if origin is tuple and len(args) == 2 and isinstance(args[0], type) and attrs.has(args[0]) and not issubclass(args[0], Message):
        yield StateField(path, f"list of {args[0].__name__} tables")
        yield from _fields(args[0], path + "[]")
        return
    if origin in (Mapping, dict) or getattr(origin, "__name__", "") == "Mapping":
        key = {"garage": "<car>", "guards": "<car>", "tracking": "<car>", "alert_prefs": "<account>"}.get(name, "<key>")
        yield StateField(path, f"table by {key[1:-1]}")
        yield from _walk(args[1], f"{path}.{key}", name)
        return
    if isinstance(t, type) and attrs.has(t) and not issubclass(t, Message) and t.__name__ != "Position":
        yield from _fields(t, path)
        return
    yield StateField(path, _type_name(t), _unit(name))


def _fields(cls: type, prefix: str) -> Iterator[StateField]:
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):
        yield from _walk(hints[f.name], f"{prefix}.{f.name}", f.name)


@functools.cache
def state_fields() -> tuple[StateField, ...]:
    """Every path of a car's, a person's and the operator desk's state, as `plain_state` has them."""
    out = [*_fields(VehicleState, "car"), StateField("car.snapshot", "table: a remote check's result"),
           *_fields(Snapshot, "car.snapshot"), *_fields(UserState, "user"), *_fields(OperatorState, "operator")]
    return tuple(attrs.evolve(f, meaning=MEANINGS.get(f.path, "")) for f in out)


def describe_state() -> str:
    """The state fields as a table, with how each is written in a scenario."""
    out = ["## State fields", "",
           "`expect.state` is matched against the state of the step's subject: a car (`car.` below),",
           "a person (`check = \"alice\"`: `user.`), or the operator desk (`check = \"operator\"`:",
           "`operator.`); write the path without that first word, as nested tables:",
           "`expect.state = { climate = { used_s = 600 } }`. `[]` is a list element, `<car>` a car",
           "address key (`\"car:c1\"`), `<account>` an account key. Enums are their wire values.", "",
           "| field | type | unit | meaning |", "| --- | --- | --- | --- |"]
    for f in state_fields():
        out.append(f"| `{f.path}` | {f.type.replace(' | ', ' or ')} | {f.unit} | {f.meaning} |")
    return "\n".join(out)


# --- error codes


#: What each code means; the refusals' own messages say what to do.
CODE_MEANINGS: dict[Code, str] = {
    Code.MALFORMED: "the frame is not a msgpack map the codec can read",
    Code.NOT_A_MAP: "the envelope or a body is not a map",
    Code.UNKNOWN_TYPE: "no message has this tag (or the desk takes no such command)",
    Code.MISSING_FIELD: "a required field is missing",
    Code.WRONG_TYPE: "a field has the wrong type, or an unknown field is there",
    Code.UNSUPPORTED_VERSION: "the envelope's protocol version is not 1",
    Code.FRAME_TOO_LARGE: "the frame is over the hub's size limit",
    Code.NOT_AUTHORIZED: "the sender's role does not allow it: not the owner, a sharee without that function, not a key holder, not the former owner",
    Code.NOT_IN_PLAN: "the contract does not include the service: no contract, no navi package on Standard, no digital key or dashcam on Lite, no schedules for a Lite non-plug-in",
    Code.OPTION_REQUIRED: "the service is a monthly option the contract lacks (Wi-Fi, dashcam upload)",
    Code.NOT_EQUIPPED: "the car lacks the hardware (digital key, dashcam) or has a dealer-installed remote-start kit",
    Code.LIMIT_REACHED: "a count limit: sharees, keys per car, cars per phone, drivers, climate schedules, Wi-Fi devices",
    Code.CLIMATE_CAP_REACHED: "the cumulative remote climate time is used up; starting the car resets it",
    Code.DOOR_OPEN: "a lock with a door or the trunk open; the message names them",
    Code.VEHICLE_IN_USE: "the car is switched on (ACC or ON): no remote climate, remote lock, unlock or window closing",
    Code.NOT_ELIGIBLE: "tracking or a guard without an alarm in the last day or a police report",
    Code.EMERGENCY_UNIT_UNCHECKED: "the emergency unit has not passed its check since sign-up",
    Code.WRONG_ORDER: "a hand-over step out of order, or a new contract before the wipe",
    Code.NOT_FOUND: "no such invitation, key, driver, schedule, guard or software offer",
    Code.CONFLICT: "the action clashes with the current state: already running, already invited, not running, too early",
    Code.INVALID_VALUE: "a value the rules do not take: a duration, a temperature, a time, an empty name, a negative reading",
    Code.ACTUATION_FAILED: "a linked car's telematics unit could not carry out an approved command; the twin is unchanged and the message carries the unit's words",
    Code.UNKNOWN_TARGET: "nothing is registered at the target address",
    Code.OFFLINE: "a linked car is offline (its link is not attached, or dropped before confirming), or the hub shut down mid-command",
    Code.TIMEOUT: "no answer within the command timeout, or a linked car did not confirm an actuation in time",
    Code.OVERLOADED: "a rate limit or a full mailbox",
    Code.INTERNAL: "the rules crashed on the message, or its result could not be saved",
    Code.LOGIN_REQUIRED: "the connection's first frame is not a hello",
    Code.BAD_CREDENTIALS: "a wrong e-mail, password, token or vehicle secret",
    Code.LOGIN_LOCKED: "too many failed logins for the e-mail, or from the client address, recently",
    Code.ALREADY_LOGGED_IN: "a second hello on a logged-in connection",
}

_NOT_THE_RULES = "sent by the hub or the runtime, not by the rules (docs/protocol.md)"


def _probe_services() -> dict[str, set[Code]]:
    """The codes `require_service` raises for each service, found by trying it on every kind
    of contract and equipment (the one helper whose codes depend on its argument)."""
    from ..model import new_vehicle
    from ..model._context import Service, require_service

    cars = [new_vehicle("c", owner=None)] + [
        new_vehicle("c", owner="a", plan=plan, navi_package=navi, wifi=wifi, dashcam=cam, has_digital_key=key, has_dashcam=has_cam)
        for plan in Plan for navi in (True, False) for wifi in (True, False) for cam in (True, False)
        for key in (True, False) for has_cam in (True, False) if not (cam and plan is Plan.LITE)
    ]
    out: dict[str, set[Code]] = {}
    for service in Service:
        found = out.setdefault(service.name, set())
        for car in cars:
            try:
                require_service(car, service)
            except CommandRefused as refused:
                found.add(refused.code)
    return out


def _source_codes() -> tuple[dict[str, set[Code]], dict[str, set[str]], dict[str, set[str]]]:
    """From the model's modules: codes each function raises itself, functions it calls, and
    the message classes each handler (`@on(...)`, or a `case X():` of a match) handles."""
    from .. import model as package

    own: dict[str, set[Code]] = {}
    calls: dict[str, set[str]] = {}
    handles: dict[str, set[str]] = {}
    services = _probe_services()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        tree = ast.parse(inspect.getsource(module))
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            key = f"{info.name}.{fn.name}"
            for deco in fn.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "on":
                    handles.setdefault(key, set()).update(a.id for a in deco.args if isinstance(a, ast.Name))
            _scan(fn.body, key, info.name, own, calls, services)
            for case in [n for n in ast.walk(fn) if isinstance(n, ast.match_case)]:
                pattern = case.pattern
                if isinstance(pattern, ast.MatchClass) and isinstance(pattern.cls, ast.Name):
                    case_key = f"{key}:{pattern.cls.id}"
                    handles.setdefault(case_key, set()).add(pattern.cls.id)
                    _scan(case.body, case_key, info.name, own, calls, services)
    return own, calls, handles


def _scan(body: list[ast.stmt], key: str, module: str, own: dict[str, set[Code]], calls: dict[str, set[str]], services: dict[str, set[Code]]) -> None:
    """Record what `body` refuses with (`refuse(Code.X, ...)`, `....reply(Error(code=Code.X...))`)
    and whom it calls, leaving out what a `try: ... except CommandRefused` swallows."""
    codes, called = own.setdefault(key, set()), calls.setdefault(key, set())
    for node in _reachable(body):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in ("refuse", "reply"):
            codes.update(Code[n.attr] for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "Code")
        if name == "require_service" and len(node.args) > 1 and isinstance(node.args[1], ast.Attribute):
            codes.update(services[node.args[1].attr])
        elif isinstance(func, ast.Name):
            called.update((f"{module}.{func.id}", f"_context.{func.id}"))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            called.add(f"{func.value.id}.{func.attr}")


def _reachable(body: list[ast.stmt]) -> Iterator[ast.AST]:
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id == "CommandRefused" for h in node.handlers
        ):
            todo.extend(node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


@functools.cache
def refusals() -> dict[Code, tuple[str, ...]]:
    """Code -> the wire tags of the commands and events the rules may refuse with it."""
    own, calls, handles = _source_codes()

    def reach(key: str, seen: set[str]) -> set[Code]:
        if key in seen or key not in own:
            return set()
        seen.add(key)
        found = set(own[key])
        for callee in calls.get(key, ()):
            found |= reach(callee, seen)
        return found

    by_class = {cls.__name__: tag for tag, cls in message_types().items()}
    out: dict[Code, set[str]] = {}
    for key, classes in handles.items():
        for code in reach(key, set()):
            out.setdefault(code, set()).update(by_class[c] for c in classes if c in by_class)
    for code in (Code.OFFLINE, Code.ACTUATION_FAILED, Code.TIMEOUT):  # a linked car's unit, not a handler
        out.setdefault(code, set()).update(cls.TYPE for cls in ACTUATING)
    return {code: tuple(sorted(out[code])) for code in Code if out.get(code)}


def describe_errors() -> str:
    """Every error code: its meaning, and the commands and events the rules refuse with it."""
    out = ["## Error codes", "",
           "`expect = { error = \"code\" }` checks one. The commands and events listed are those whose",
           "handler in the model can refuse with the code, itself or through the helpers it calls (read",
           "from the model's source). An invitation or a key offer the invitee's phone refuses later",
           "answers `share_invite` or `key_issue` with the phone's code (`limit_reached`, `timeout`).",
           "On a linked car, the commands the car must carry out also get `offline` (no link attached),",
           "`actuation_failed` (the car could not) and `timeout` (the car did not confirm in time).", "",
           "| code | meaning | commands | events |", "| --- | --- | --- | --- |"]
    found = refusals()
    for code in Code:
        tags = found.get(code, ())
        commands = ", ".join(f"`{t}`" for t in tags if message_types()[t].KIND == "command")
        events = ", ".join(f"`{t}`" for t in tags if message_types()[t].KIND == "event")
        if not tags:
            commands = _NOT_THE_RULES
        out.append(f"| `{code.value}` | {CODE_MEANINGS[code]} | {commands} | {events} |")
    return "\n".join(out)


# --- the document and the command


def render() -> str:
    """docs/checks.md: the messages, the state fields and the error codes."""
    head = [
        "<!-- Generated by `python -m twin.scenarios._describe > docs/checks.md`: edit the module, not this file. -->",
        "# What a scenario can send, report and check",
        "",
        "The same as `twin describe` prints: `twin describe state`, `twin describe errors`,",
        "`twin describe TAG` (one message). How expectations match: docs/scenarios.md; the rules",
        "behind them: docs/rules.md.",
        "",
    ]
    return "\n".join(head) + "\n".join([describe_state(), "", describe_errors(), "", _messages()]).rstrip() + "\n"


def describe_main(topic: str | None, out: TextIO) -> int:
    """`twin describe [TAG|state|errors]`; exit 2 for a topic it does not know."""
    tags = sorted(message_types())
    if topic is None:
        print("twin describe TOPIC: state, errors, or one of the message tags:", file=out)
        for kind in _KINDS:
            print(f"  {kind}: " + " ".join(t for t in tags if message_types()[t].KIND == kind), file=out)
        return 0
    if topic == "state":
        print(describe_state(), file=out)
    elif topic == "errors":
        print(describe_errors(), file=out)
    elif topic in message_types():
        print(describe_message(topic), file=out)
    else:
        close = difflib.get_close_matches(topic, [*TOPICS, *tags], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"twin describe: no topic {topic!r}{hint}; try state, errors or a message tag (twin describe lists them)", file=out)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render())
