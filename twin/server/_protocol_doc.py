"""docs/protocol.md: the hand-written life cycle and rules, plus a message catalogue generated
from the protocol registry, so the document can never miss a message or a field.

    python -m twin.server._protocol_doc > docs/protocol.md

A test checks that docs/protocol.md is what this module renders.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

import attrs

from twin.errors import Code
from twin.protocol import Envelope, Message, encode, message_types
from twin.protocol._codec import converter
from twin.protocol._results import result_types

KIND_ORDER = ("session", "progress", "command", "reply", "notice", "event")
KIND_TITLES = {
    "session": "Session messages (the connection itself)",
    "progress": "Progress",
    "command": "Commands (app -> car or operator; twin -> its link as actuations)",
    "reply": "Replies (exactly one per command)",
    "notice": "Notices (pushed to apps, or between actors)",
    "event": "Events (what a car senses; its vehicle link sends them to its twin)",
}


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if t is type(None):
        return "nil"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin in (tuple,):
        return f"array of {_type_name(args[0])}" if len(args) == 2 and args[1] is Ellipsis else "array [" + ", ".join(_type_name(a) for a in args) + "]"
    if origin in (frozenset, set, list):
        return f"array of {_type_name(args[0])}"
    if origin in (dict, typing.Mapping) or (origin is not None and getattr(origin, "__name__", "") == "Mapping"):
        return f"map {_type_name(args[0])} -> {_type_name(args[1])}"
    if origin is not None and attrs.has(origin):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    if t is Any:
        return "any"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return "string: " + " / ".join(repr(m.value) for m in t).replace("'", '"')
    if t is str:
        return "string"
    if t is int:
        return "integer"
    if t is float:
        return "float (integers accepted)"
    if t is bool:
        return "boolean"
    if isinstance(t, type) and attrs.has(t):
        return t.__name__
    return getattr(t, "__name__", str(t))


def _sample(t: Any, depth: int = 0) -> Any:
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        return _sample(real[0], depth) if real else None
    if origin is tuple:
        return (_sample(args[0], depth + 1),) if len(args) == 2 and args[1] is Ellipsis else tuple(_sample(a, depth + 1) for a in args)
    if origin in (frozenset, set):
        return frozenset({_sample(args[0], depth + 1)})
    if origin in (dict,) or getattr(origin, "__name__", "") == "Mapping":
        return {_sample(args[0], depth + 1): _sample(args[1], depth + 1)}
    if origin is not None and attrs.has(origin):
        hints = typing.get_type_hints(origin)
        params = dict(zip(getattr(origin, "__parameters__", ()), args))
        values = {}
        for f in attrs.fields(origin):
            ft = hints[f.name]
            values[f.name] = _sample(params.get(ft, ft), depth + 1)
        return origin(**values)
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return next(iter(t))
    if t is str:
        return "text"
    if t is int:
        return 1
    if t is float:
        return 1.5
    if t is bool:
        return True
    if t is Any:
        return {"...": "..."}
    if isinstance(t, type) and attrs.has(t):
        hints = typing.get_type_hints(t)
        return t(**{f.name: _sample(hints[f.name], depth + 1) for f in attrs.fields(t) if f.default is attrs.NOTHING or depth < 2})
    return None


_USER = "user:alice@example.com"
_BY_KIND = {
    "session": ("", "hub", 1),  # a client's frame to the hub: `from` left empty, the hub stamps it
    "progress": ("car:1", _USER, 7),
    "command": ("", "car:1", 7),
    "reply": ("car:1", _USER, 7),
    "notice": ("car:1", _USER, 0),
    "event": ("car:1", "car:1", 0),
}
#: Messages whose sender or target is not their kind's usual one.
_ROUTES = {
    "welcome": ("hub", _USER, 1),  # the hub's answer to the hello, to the address it grants
    "guard_extension_answer": ("", "operator", 7),  # commands to the operator desk
    "operator_notice": ("operator", _USER, 0),  # the desk tells the owner
    "emergency_call": ("car:1", "operator", 0),  # a car hands a case to the desk
    "tracking_start": ("car:1", "operator", 0),
    "guard_dispatch": ("car:1", "operator", 0),
    "cases_close": ("car:1", "operator", 0),
}


def route(cls: type[Message]) -> tuple[str, str, int]:
    """(from, to, id) of the example frame of `cls`: who really sends it to whom."""
    return _ROUTES.get(cls.TYPE) or _BY_KIND[cls.KIND]


def _example(cls: type[Message]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    if cls.TYPE == "ok":
        from twin.protocol import Done, Ok

        body: Message = Ok(result=Done(detail="text"))
    else:
        named = {"car": "car:1", "owner": "alice@example.com", "account": "bob@example.com"}
        body = cls(**{
            f.name: named[f.name] if f.name in named and hints[f.name] is str else _sample(hints[f.name])
            for f in attrs.fields(cls)
            if f.default is attrs.NOTHING
        })
    sender, target, corr = route(cls)
    raw = encode(Envelope(body, sender=sender, target=target, id=corr, ts=1764154800.0))
    import msgpack

    return msgpack.unpackb(raw)  # type: ignore[no-any-return]


def _fields_table(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in attrs.fields(cls):
        if f.default is attrs.NOTHING:
            default = "required"
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            default = "optional (empty)"
        else:
            value = converter.unstructure(f.default)
            default = f"optional, default `{json.dumps(value, default=str)}`"
        rows.append(f"| `{f.name}` | {_type_name(hints[f.name])} | {default} |")
    if not rows:
        return ["No fields: `body` is an empty map `{}`."]
    return ["| field | type | |", "| --- | --- | --- |", *rows]


def _doc(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    if not doc or doc.startswith(cls.__name__ + "("):
        return ""
    return " ".join(line.strip() for line in doc.splitlines())


def _value_classes() -> list[type]:
    seen: dict[str, type] = {}

    def walk(t: Any) -> None:
        for a in typing.get_args(t):
            walk(a)
        origin = typing.get_origin(t)
        target = origin if origin is not None and attrs.has(origin) else t
        if isinstance(target, type) and attrs.has(target) and not issubclass(target, Message) and target.__name__ not in seen:
            seen[target.__name__] = target
            hints = typing.get_type_hints(target)
            for f in attrs.fields(target):
                walk(hints[f.name])

    for cls in list(message_types().values()) + list(result_types()):
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            walk(hints[f.name])
    return [seen[name] for name in sorted(seen)]


def catalogue() -> str:
    out: list[str] = []
    by_kind: dict[str, list[type[Message]]] = {}
    for tag, cls in sorted(message_types().items()):
        by_kind.setdefault(cls.KIND, []).append(cls)
    for kind in sorted(by_kind, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99):
        out += [f"### {KIND_TITLES.get(kind, kind)}", ""]
        for cls in by_kind[kind]:
            out += [f"#### `{cls.TYPE}`", ""]
            if _doc(cls):
                out += [_doc(cls), ""]
            out += _fields_table(cls)
            out += ["", "Example frame (msgpack, shown as JSON):", "", "```json", json.dumps(_example(cls), ensure_ascii=False), "```", ""]
    out += ["### Results (the `result` of an `ok` reply, tagged by `type`)", ""]
    for result in result_types():
        out += [f"#### result `{result.TYPE}`", ""]
        if _doc(result):
            out += [_doc(result), ""]
        out += _fields_table(result) + [""]
    out += ["### Value types used in fields", ""]
    for cls in _value_classes():
        out += [f"#### `{cls.__name__}`", ""]
        if _doc(cls):
            out += [_doc(cls), ""]
        out += _fields_table(cls) + [""]
    return "\n".join(out)


def error_codes() -> str:
    groups = [
        ("the frame could not be accepted (`ProtocolError`); nothing happened", Code.MALFORMED, Code.FRAME_TOO_LARGE),
        ("the car's rules refused the command (`CommandRefused`); its state is unchanged", Code.NOT_AUTHORIZED, Code.INVALID_VALUE),
        ("delivery (`DeliveryError`)", Code.UNKNOWN_TARGET, Code.INTERNAL),
        ("logging in (`LoginFailed` in `twin.client`)", Code.LOGIN_REQUIRED, Code.ALREADY_LOGGED_IN),
    ]
    members = list(Code)
    out = ["| code | family | also sent by the hub when |", "| --- | --- | --- |"]
    for title, first, last in groups:
        for code in members[members.index(first): members.index(last) + 1]:
            out.append(f"| `{code.value}` | {title} | {_HUB_USES.get(code, '')} |")
    return "\n".join(out)


_HUB_USES = {
    Code.MALFORMED: "the frame is not msgpack, or is a text frame",
    Code.FRAME_TOO_LARGE: "the frame is over 64 KiB (the connection stays open)",
    Code.NOT_AUTHORIZED: "the trust check refused the frame: `from` names someone else, an app sends something other than a command (to `car:<id>` or `operator`) or `ack`, a link sends something other than an event or an actuation's answer, or addresses another car",
    Code.NOT_FOUND: "a link answers an actuation id that is not waiting for it (never sent to it, or answered already)",
    Code.ACTUATION_FAILED: "the car's link answered an actuation with `error`: the twin's state is unchanged and the app's final reply carries the link's words",
    Code.CONFLICT: "a command reuses the id of a command of this session still in flight",
    Code.UNKNOWN_TARGET: "nothing is registered at the command's `to`",
    Code.OFFLINE: "a linked car is offline (an actuating command), its link dropped before it confirmed, or the hub shut down mid-command",
    Code.TIMEOUT: "the target did not answer within the hub's command timeout (5 s by default), or a linked car did not confirm an actuation within 4 s",
    Code.OVERLOADED: "the connection is over its rate limit, a car's twin cannot take its link's event now, or too many password logins wait already",
    Code.INTERNAL: "the car's rules crashed on the command, or the hub could not save its result",
    Code.LOGIN_REQUIRED: "the first frame of a connection is not a hello (the connection is then closed with 1008)",
    Code.BAD_CREDENTIALS: "a hello has a wrong e-mail or password, an unknown or revoked token, or an unknown car or wrong link secret",
    Code.LOGIN_LOCKED: "an e-mail or a client address had too many failed logins recently (answered to its hello, even with the right password)",
    Code.ALREADY_LOGGED_IN: "a second hello arrives on a logged-in connection",
}


def render() -> str:
    return _HEAD.format(codes=error_codes()) + catalogue().rstrip() + "\n"


_HEAD = """\
<!-- Generated by `python -m twin.server._protocol_doc > docs/protocol.md`: edit the module, not this file. -->
# The twin hub protocol

Everything a client in any language needs to talk to a twin hub (`twin serve`). The hub is
the connected-car centre: it holds every car's twin and its rules (plans, sharing, keys,
alerts, the operator desk). It serves two kinds of websocket client on one URL (default
`ws://127.0.0.1:8765/`):

- **app sessions**: a person's app logs in (e-mail and password, or a token), sends commands
  to the cars in their garage and receives replies, alerts and state changes;
- **vehicle links**: a car's telematics unit logs in with the car's secret, reports what the
  car senses (doors, windows, ignition, alarm, position ...) and carries out the commands its
  twin approved. It decides nothing: the rules run in the hub.

## Frames

One message per **binary** websocket frame (text frames are refused with `malformed`). A
frame is a msgpack map, the envelope:

| key | type | meaning |
| --- | --- | --- |
| `type` | string | the message tag (see the catalogue); required |
| `id` | integer | correlation id: a reply carries the id of its request; default 0 |
| `from` | string | the sender; leave it empty (`""`): the hub stamps who you are. Any other value than your own address is refused with `not_authorized` |
| `to` | string | the target address: `car:<id>`, `operator`, or `hub` for session messages; required |
| `ts` | float | POSIX seconds when sent (informative: the hub stamps its own time); default 0 |
| `v` | integer | protocol version, 1; default 1 |
| `seq` | integer | on a durable push only: its sequence number for your account (see Pushes); absent elsewhere |
| `body` | map | the message fields (see the catalogue); default `{{}}` |

Decoding is strict: unknown envelope keys or body fields, a string where an integer is
expected, an integer where a boolean is expected are all refused (`wrong_type`), as are
missing required fields (`missing_field`) and unknown tags (`unknown_type`). Enumerations
travel as their string values, sets as arrays, optional fields may be left out.

Addresses: `user:<account>` is a person (an app session speaks as its account's `user:`
address), `car:<id>` a car's twin, `unit:<id>` that car's telematics unit (a vehicle link
speaks as it), `operator` the centre's desk, `hub` the hub itself. An account id is the
lower-cased e-mail address. Before a connection has logged in, the hub's answers go `to`
`anonymous`.

## The trust rule

The hub trusts no client, and checks every frame a logged-in client sends in one place
(`twin/server/_trust.py`) before anything else sees it. An **app** may send only commands,
addressed to a car (`car:<id>`) or to the operator desk (`operator`), and `ack`s of its own
pushes; the car's twin then decides from the sender's role (owner, sharee and the functions
shared, key holder, stranger) whether the command may run. A **vehicle link** may send only
events about its own car (`to: car:<id>`) and answers to the actuations that car's twin sent
it, under those actuations' ids; an `error` answer reaches the twin as `actuation_failed`
with at most 200 characters of the link's words. Nobody can claim another sender, address
another account's apps or push queue, or answer a request that was not put to them: every
other frame is answered with a typed `error` to its sender and changes nothing.

## Connection life cycle

1. Open a websocket to the hub. The **first frame must be a hello** within 10 s:
   `hello_password` or `hello_token` (apps) or `hello_vehicle` (links). Any other first frame
   is answered with an `error` (`login_required`) and the connection is closed with **1008**.
2. A wrong hello is answered with `error` (`bad_credentials`; `login_locked` when the e-mail
   had 10, or the client address 30, failed logins within 5 minutes; `overloaded` when 64
   password logins already wait for the password hasher) and the connection stays open for
   another try; after 3 failed hellos on one connection it is closed with 1008.
3. A good hello is answered with `welcome` (`id` = the hello's id): your `address`, a `token`
   for later logins without the password (a new one per password login), and your `garage`
   (car address -> role). An app then receives, before anything else, every durable push
   still waiting for it (see below).
4. **App commands**: send a command frame with a fresh `id` (unique among your commands in
   flight) and `to` the car. The hub answers:
   - `accepted` (same `id`, `from` the target) as soon as it routed the command; then
   - **exactly one** final reply with the same `id`: `ok` with the result (executed; the
     result shows the new state), or `error` with a code (refused by the car's rules,
     `offline`, `actuation_failed`, `timeout` after the hub's command timeout, 5 s by
     default, ...).
   A command to an address nobody serves gets `error` `unknown_target` directly, without
   `accepted`. Commands may be pipelined; replies come in completion order.
5. **Pushes**: `alert`, `state_changed`, `share_offer`, `key_offer`, `garage_changed`,
   `operator_notice`... arrive with `from` the car (or `operator`), `to` your address, `id` 0.
   - A push with a `seq` field is **durable**: the hub queued it in its store before sending
     it, and `seq` is its sequence number for your account (increasing). Send `ack` with
     `upto` = the highest `seq` you have handled; the hub deletes those. Unacknowledged pushes
     are sent again, in order, at every login until acknowledged: acking gives exactly-once
     delivery to an app; all sessions of one account receive every push. An account keeps at
     most its 1,000 newest unacknowledged pushes (`HubConfig.push_queue`); older ones are
     dropped, and the gap in the sequence numbers tells the app it missed some.
   - A push without `seq` (`state_changed`) is live only: it is not queued or resent.
6. **Vehicle links**: a car is either *simulated* by its twin (demo and test cars: the twin
   carries its commands out itself and is always online) or *linked*. A linked car is
   **online** while its link is attached and **offline** otherwise (`remote_check` shows
   `telematics`). After `welcome` (`address` `unit:<id>`) the link:
   - sends **events** with `to: car:<id>`. The twin records each value with the hub's time
     of arrival, which is what reads show as `Reading.at`. An event with `id` > 0 is answered
     `ok` (`done`) once the twin took it, or `error`; one with `id` 0 only when refused.
   - receives **actuations**: the commands the twin approved that the car must carry out
     (`lock`, `unlock`, `set_hazards`, `close_windows`, `flash_hazards`, `climate_start`,
     `climate_stop`, `key_use`), `from: car:<id>` with an id of the twin's. It answers each,
     `to: car:<id>` with the same id: `ok` once done (any result; `done` is usual), or `error`
     when the car cannot (the message says why: a jammed lock, a dead battery). The twin
     applies the command only after `ok`, checking it again against the state of that moment,
     and only then answers the app; after an `error` the app gets `actuation_failed` with the
     link's words, after 4 s of silence `timeout`, and if the link drops first `offline`; in
     none of these cases does the twin's state change.
   While no link is attached, reads (`remote_check`, `locate`, `vehicle_info`, the lists and
   settings) and the centre's own commands (sharing, keys, drivers, contract, alert settings)
   are answered from the twin, each reported value with the time it was reported, so stale
   data is never taken for live; actuating commands get `error` `offline` naming the last
   report time. A second link for the same car replaces the first (closed with 1008). A
   simulated car may have a secret too (every `twin serve --demo` car has one): its link
   reports events, and the twin goes on carrying commands out itself.
7. **Liveness**: the hub pings every connection that sent nothing for 20 s
   (`HubConfig.ping_interval`; it looks at every connection once per interval, a slice at a
   time) and closes one whose pong does not come within 20 s more (`ping_timeout`), with 1008
   "no pong": a dead peer is closed at most 60 s after its last frame, and a link's car then
   goes offline. Websocket libraries answer pings by themselves.
8. **Closing**: either side may close. The hub closes with:
   - **1000** after the client's close;
   - **1001** when it shuts down (Ctrl-C or SIGTERM): it stops accepting, lets in-flight
     commands finish for up to 2 s, answers the rest with `error` `offline` ("the hub shut
     down before the command finished"), commits every state, then closes every socket;
   - **1008** for a policy violation: first frame not a hello, too many failed logins, no hello
     in time, no pong, or a **send queue full** (a client that does not read fast enough: 512
     frames waiting by default; the reason says so; other clients are not slowed);
   - **1009** for a frame over the hard limit (256 KiB by default).

## Protection

- Frame size: a frame over 64 KiB gets `error` `frame_too_large` and the connection keeps
  working; a frame over 256 KiB closes it with 1009.
- Rate: a token bucket per connection (apps: 200 frames/s, bursts of 400; links: 1000/s,
  bursts of 2000). A frame past it is answered `overloaded` and dropped; the connection stays.
- Every malformed or untrusted frame after login is answered with an `error` carrying the
  frame's `id` when it could be read (0 otherwise), and the connection keeps working (a second
  hello is `already_logged_in`; reusing the id of a command still in flight is `conflict`).
- Browser pages: a websocket upgrade that carries an `Origin` header (every browser sends
  one) is refused with HTTP 403 and the reason unless that origin is the hub's own (the web
  app it serves at `/app/` with `twin serve --demo`) or listed in `HubConfig.allowed_origins`;
  clients with no `Origin` (the Python and JS clients under Node, a car's unit) are not
  affected. Plain HTTP on the same port serves only that web app.
- Password logins cost a scrypt hash each (the same for an unknown e-mail): at most one is
  computed at a time (`login_threads`), at most 64 wait (`login_queue`), the rest get
  `overloaded` at once, so a flood of logins cannot slow the commands of logged-in clients.
  Failed logins are limited per connection, per e-mail and per client address, as in the life
  cycle above. Passwords are kept only as scrypt hashes, tokens and vehicle secrets only as
  SHA-256 digests.

## What is durable when

| what | durable (committed to the SQLite file) |
| --- | --- |
| accounts, tokens, vehicle secrets | before the `welcome` (or the admin call) that hands them out |
| state of every car's twin, and of people's actors (garage, inbox) | **before the final reply** of the command that changed it is sent; changes without a command (a link's events, timers) within about 10 ms |
| a durable push (with `seq`) | before it is sent to any app; deleted when acked |

After a restart every car, account, share, key, driver, setting and contract is as it was
when last committed, and unacknowledged pushes are resent.

## Error codes

An `error` reply's `code` is one of these; `message` says in words what to do.

{codes}

## Message catalogue

Generated from the registry in `twin.protocol`: every message with its fields, their types and
an example frame.

"""


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render())
