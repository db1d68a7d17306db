"""Recorded traces: what a live hub received, replayed offline against a fresh in-process fleet.

A trace is a JSON-lines file (`*.trace.jsonl`), one record a line, written as things happen
(line-buffered: a crash loses at most the line being written):

    {"trace": 1, "t": T0, "states": {address: {"kind": k, "state": plain}}, "seqs": {account: n}}
    {"t": T, "conn": 3, "hello": "hello_password"}        # a login; credentials are never written
    {"t": T, "conn": 3, "session": "user:alice@example.com"}  # the hub's welcome (token left out)
    {"t": T, "conn": 3, "in": "<base64 msgpack frame>"}   # every other frame the hub received
    {"t": T, "conn": 3, "out": "<base64 msgpack frame>"}  # every frame it sent
    {"t": T, "conn": 3, "closed": 1000}
    {"end": T1, "states": {...}}                          # the hub's states when recording stopped

`t` is model time (the hub's clock). The first line holds the world at the start (every state
the hub's store held, and each account's last push sequence number); the last, the world at
the end. `TraceWriter` writes these; `open_recording_proxy` records a live hub from outside,
as a websocket proxy in front of it (a hub can also call a `TraceWriter` itself).

Replaying (`replay_trace`, and `twin replay FILE.trace.jsonl`): a fresh in-process fleet starts
from the recorded world under `MockClock`; every frame an app sent is played at its recorded
time (a command is asked of its target as the session's account), every frame a vehicle link
sent (an event, the answer to an actuation) is delivered to its car's twin as the hub would,
after the same trust check (`twin.server.app_frame`, `link_frame`), and a link's login and
close tell its twin `coverage_changed`. Every twin, person and the operator desk runs with the
rules of the code being tested. Then three things are compared with the recording, each a
check that passes or fails with a diff: every command's final reply, every durable push each
account received (in sequence order; `state_changed` is ephemeral and not compared), and the
final state of every actor. Times may differ by the hub's processing delay, so
model times (and climate seconds) compare within `tolerance` seconds.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import itertools
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio
import trio.testing

from ..actors import Fleet, is_request, open_fleet
from ..errors import Code, DeliveryError, ProtocolError
from ..model import OPERATOR, USER, VEHICLE, VehicleModel, new_operator, new_user
from ..protocol import MAX_FRAME_BYTES, CoverageChanged, Envelope, Error, Message, decode, unstructure_body
from ..server._trust import Untrusted, app_frame, link_frame
from ._format import Scenario, ScenarioError, format_duration
from ._match import Check, diff_lines, mismatches, plain, plain_state

__all__ = [
    "TRACE_SUFFIX",
    "RecordedHub",
    "RecordingProxy",
    "Trace",
    "TraceReport",
    "TraceWriter",
    "load_trace",
    "open_recorded_hub",
    "open_recording_proxy",
    "replay_trace",
    "run_trace",
]

TRACE_VERSION = 1
TRACE_SUFFIX = ".trace.jsonl"
HELLOS = frozenset({"hello_password", "hello_token", "hello_vehicle"})
EPHEMERAL = frozenset({"state_changed"})
TRANSPORT_CODES = frozenset({Code.UNKNOWN_TARGET.value, Code.OFFLINE.value, Code.TIMEOUT.value, Code.OVERLOADED.value, Code.INTERNAL.value})
_TIME_KEYS = re.compile(r"(^|\.)(at|ts|\w+_at|used_s|paid_until)$")
_STAMPED = re.compile(r"^(\d{9,})( .*)$", re.S)  # the operator's log lines start with a model time


def _b64(frame: bytes) -> str:
    return base64.b64encode(frame).decode("ascii")


def _states_plain(states: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    from ..server import to_plain

    return {address: {"kind": kind, "state": to_plain(state)} for address, kind, state in states}


class TraceWriter:
    """Writes a trace file as the hub runs; every method writes one line at once.

    `now` gives model time (pass the hub's `Hub.now`; the default, wall-clock time, equals the
    hub's model time when it runs without a fixed epoch).
    """

    def __init__(self, path: str | Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.now = now
        self._file: TextIO | None = open(self.path, "w", encoding="utf-8", buffering=1)

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")

    def begin(self, states: Iterable[tuple[str, str, Any]], *, seqs: Mapping[str, int] | None = None) -> None:
        """The world at the start: (address, kind, state) as the hub's store holds them."""
        self._write({"trace": TRACE_VERSION, "t": self.now(), "states": _states_plain(states), "seqs": dict(seqs or {})})

    def frame(self, conn: int, direction: str, frame: bytes | str) -> None:
        key = direction if isinstance(frame, bytes) else direction + "_text"
        self._write({"t": self.now(), "conn": conn, key: _b64(frame) if isinstance(frame, bytes) else frame})

    def hello(self, conn: int, tag: str) -> None:
        self._write({"t": self.now(), "conn": conn, "hello": tag})

    def session(self, conn: int, address: str) -> None:
        self._write({"t": self.now(), "conn": conn, "session": address})

    def closed(self, conn: int, code: int | None) -> None:
        self._write({"t": self.now(), "conn": conn, "closed": code})

    def end(self, states: Iterable[tuple[str, str, Any]]) -> None:
        """The world when recording stops (read the store after the hub flushed it)."""
        self._write({"end": self.now(), "states": _states_plain(states)})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def store_world(store: Any) -> tuple[list[tuple[str, str, Any]], dict[str, int]]:
    """Every state in a `twin.store.Store` and each account's last push sequence number."""
    states = list(store.load_states())
    accounts = [a[5:] for a, kind, _ in states if a.startswith("user:")]
    return states, {a: store.last_seq(a) for a in accounts}


# --- recording from outside: a websocket proxy in front of a hub


@attrs.define
class RecordingProxy:
    url: str
    port: int
    connections: int = 0


def _tag(frame: bytes | str) -> str | None:
    if not isinstance(frame, bytes):
        return None
    try:
        return decode(frame, max_bytes=4 * MAX_FRAME_BYTES).body.TYPE
    except ProtocolError:
        return None


@asynccontextmanager
async def open_recording_proxy(
    upstream: str, writer: TraceWriter, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RecordingProxy]:
    """Accept websockets at `host:port` and relay each to the hub at `upstream`, recording
    every frame both ways in `writer` (hellos and the welcome's token left out)."""
    from trio_websocket import ConnectionClosed, WebSocketRequest, open_websocket_url, serve_websocket

    conns = itertools.count(1)
    size = 4 * MAX_FRAME_BYTES

    async def relay(request: WebSocketRequest) -> None:
        conn = next(conns)
        proxy.connections += 1
        client = await request.accept()
        try:
            async with open_websocket_url(upstream, max_message_size=size) as hub:
                async with trio.open_nursery() as pumps:

                    async def inbound() -> None:
                        try:
                            while True:
                                frame = await client.get_message()
                                tag = _tag(frame)
                                if tag in HELLOS:
                                    writer.hello(conn, tag)  # type: ignore[arg-type]
                                else:
                                    writer.frame(conn, "in", frame)
                                await hub.send_message(frame)
                        except ConnectionClosed as closed:
                            code = closed.reason.code if closed.reason else 1000
                            writer.closed(conn, code)
                            await hub.aclose(code, closed.reason.reason if closed.reason else None)
                        pumps.cancel_scope.cancel()

                    async def outbound() -> None:
                        try:
                            while True:
                                frame = await hub.get_message()
                                if _tag(frame) == "welcome":
                                    writer.session(conn, decode(frame, max_bytes=size).body.address)  # type: ignore[arg-type, attr-defined]
                                else:
                                    writer.frame(conn, "out", frame)
                                await client.send_message(frame)
                        except ConnectionClosed as closed:
                            code = closed.reason.code if closed.reason else 1000
                            writer.closed(conn, code)
                            await client.aclose(code, closed.reason.reason if closed.reason else None)
                        pumps.cancel_scope.cancel()

                    pumps.start_soon(inbound)
                    pumps.start_soon(outbound)
        except (ConnectionClosed, OSError) as exc:
            writer.closed(conn, None)
            if not isinstance(exc, ConnectionClosed):
                await client.aclose(1011, "the hub is unreachable")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, relay, host, port, None)
        proxy = RecordingProxy(url=f"ws://{host}:{server.port}/", port=server.port)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()


@attrs.define
class RecordedHub:
    """A hub running behind a recording proxy: apps and links connect to `url`."""

    hub: Any
    url: str
    writer: TraceWriter
    store: Any
    begun: bool = False

    def begin(self) -> None:
        """Snapshot the world now and start the trace (after provisioning, if there is any)."""
        if not self.begun:
            states, seqs = store_world(self.store)
            self.writer.begin(states, seqs=seqs)
            self.begun = True


@asynccontextmanager
async def open_recorded_hub(store: Any, path: str | Path, config: Any = None, *, begin: bool = True) -> AsyncIterator[RecordedHub]:
    """`twin serve --record FILE` in one call: a hub (`twin.server.serve_hub`) on a loopback
    port, and a recording proxy at `config.host:config.port` in front of it. The trace starts
    at entry (or at `RecordedHub.begin()` with `begin=False`, once the hub is provisioned); on
    exit the hub shuts down gracefully and the stored states are written as the trace's end."""
    from ..server import HubConfig, serve_hub

    config = config if config is not None else HubConfig()
    inner = attrs.evolve(config, host="127.0.0.1", port=0)
    writer: TraceWriter | None = None
    try:
        async with trio.open_nursery() as nursery:
            hub = await nursery.start(serve_hub, store, inner)
            writer = TraceWriter(path, now=hub.now)
            recorded = RecordedHub(hub, "", writer, store)
            try:
                async with open_recording_proxy(f"ws://127.0.0.1:{hub.port}/", writer, host=config.host, port=config.port) as proxy:
                    recorded.url = proxy.url
                    if begin:
                        recorded.begin()
                    yield recorded
            finally:
                hub.shutdown()
        recorded.begin()
        writer.end(store_world(store)[0])
    finally:
        if writer is not None:
            writer.close()


# --- reading a trace


@attrs.frozen
class Record:
    t: float
    conn: int
    kind: str  # "in", "out", "hello", "session", "closed"
    frame: bytes | str | None = None
    address: str = ""


@attrs.frozen
class Trace:
    source: str
    start: float
    states: tuple[tuple[str, str, Any], ...]
    seqs: Mapping[str, int]
    records: tuple[Record, ...]
    end: float | None
    end_states: tuple[tuple[str, str, Any], ...] | None


def load_trace(path: str | Path) -> Trace:
    """Read a trace file, or raise ScenarioError naming the line to fix."""
    from ..server import from_plain

    path = Path(path)
    source = str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read: {exc.strerror or exc}") from None

    def world(raw: Any, n: int) -> tuple[tuple[str, str, Any], ...]:
        try:
            return tuple((a, v["kind"], from_plain(v["kind"], v["state"])) for a, v in sorted(raw.items()))
        except (KeyError, TypeError, AttributeError, ProtocolError) as exc:
            raise ScenarioError(f"{source}: line {n}: a state cannot be read: {exc}") from None

    head: dict[str, Any] | None = None
    records: list[Record] = []
    end = end_states = None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{source}: line {n}: not JSON ({exc.msg}); a trace is one JSON object a line") from None
        if n == 1:
            if not isinstance(rec, dict) or rec.get("trace") != TRACE_VERSION:
                raise ScenarioError(f"{source}: line 1 must be the trace header with \"trace\": {TRACE_VERSION}")
            head = rec
            continue
        if "end" in rec:
            end, end_states = float(rec["end"]), world(rec.get("states", {}), n)
            continue
        try:
            t, conn = float(rec["t"]), int(rec["conn"])
            if "in" in rec or "out" in rec:
                kind = "in" if "in" in rec else "out"
                records.append(Record(t, conn, kind, base64.b64decode(rec[kind])))
            elif "in_text" in rec or "out_text" in rec:
                kind = "in" if "in_text" in rec else "out"
                records.append(Record(t, conn, kind, str(rec[kind + "_text"])))
            elif "session" in rec:
                records.append(Record(t, conn, "session", address=str(rec["session"])))
            elif "hello" in rec:
                records.append(Record(t, conn, "hello", address=str(rec["hello"])))
            elif "closed" in rec:
                records.append(Record(t, conn, "closed"))
            else:
                raise KeyError("kind")
        except (KeyError, TypeError, ValueError) as exc:
            raise ScenarioError(f"{source}: line {n}: not a trace record ({exc})") from None
    if head is None:
        raise ScenarioError(f"{source}: empty trace")
    return Trace(
        source=source,
        start=float(head["t"]),
        states=world(head.get("states", {}), 1),
        seqs=dict(head.get("seqs", {})),
        records=tuple(sorted(records, key=lambda r: r.t)),
        end=end,
        end_states=end_states,
    )


# --- replaying a trace


@attrs.frozen
class TraceStep:
    """A command an app sent, as recorded and as replayed."""

    t: float
    account: str
    target: str
    body: Message
    recorded: Message | None
    replayed: Message | None
    check: Check


@attrs.frozen
class TraceReport:
    trace: Trace
    scenario: Scenario  # for printing and JUnit: the trace's name and epoch
    steps: tuple[TraceStep, ...]
    final: tuple[Check, ...]
    wall_s: float
    virtual_s: float

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(s.check for s in self.steps) + self.final

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def passed(self) -> bool:
        return not self.failures


class _UnitStub:
    """Inbox at `unit:<id>` while a recorded link was attached: it takes the actuations the
    twin sends (their answers come from the recording) and remembers their ids for the
    trust check."""

    __slots__ = ("asked",)

    def __init__(self) -> None:
        self.asked: dict[int, None] = {}

    def put_nowait(self, envelope: Envelope) -> None:
        if is_request(envelope):
            self.asked[envelope.id] = None

    async def put(self, envelope: Envelope) -> None:
        self.put_nowait(envelope)
        await trio.lowlevel.checkpoint()


def _coverage(router: Any, unit: str, online: bool, now: float) -> None:
    """What the hub tells a twin when its link attaches or drops."""
    try:
        router.deliver_nowait(Envelope(CoverageChanged(online=online), sender="hub", target="car:" + unit[5:], ts=now))
    except DeliveryError:
        pass


def _close(expected: Any, actual: Any, epoch: float, tolerance: float, path: str = "") -> list[tuple[str, Any, Any]]:
    """`mismatches`, with model times, climate seconds and time-stamped log lines compared
    within `tolerance` (the live hub handled each frame a little after it arrived)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual or key not in expected:
                out.append((sub, expected.get(key, "(missing)"), actual.get(key, "(missing)")))
            else:
                out.extend(_close(expected[key], actual[key], epoch, tolerance, sub))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [m for i, (e, a) in enumerate(zip(expected, actual)) for m in _close(e, a, epoch, tolerance, f"{path}[{i}]")]
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (expected, actual))
    if numbers and _TIME_KEYS.search(path):
        return [] if abs(expected - actual) <= tolerance else [(path, expected, actual)]
    if isinstance(expected, str) and isinstance(actual, str):
        a, b = _STAMPED.match(expected), _STAMPED.match(actual)
        if a and b and a.group(2) == b.group(2) and abs(int(a.group(1)) - int(b.group(1))) <= max(1, tolerance):
            return []
    return mismatches(expected, actual, epoch, path) if not isinstance(expected, dict) else [(path, expected, actual)]


def _body_plain(body: Message) -> dict[str, Any]:
    return {"type": body.TYPE, **plain(unstructure_body(body))}


def _compare_reply(recorded: Message, replayed: Message, epoch: float, tolerance: float) -> list[tuple[str, Any, Any]]:
    want, got = _body_plain(recorded), _body_plain(replayed)
    if isinstance(recorded, Error) and isinstance(replayed, Error) and recorded.code == replayed.code and recorded.code in TRANSPORT_CODES:
        return []  # the transport's wording, not the rules'
    return _close(want, got, epoch, tolerance)


async def run_trace(trace: Trace, *, model: VehicleModel = VEHICLE, tolerance: float = 1.0, command_timeout: float = 5.0) -> TraceReport:
    """Replay `trace` inside trio (see `replay_trace` for a whole run)."""

    started = time.perf_counter()
    t0 = trio.current_time()
    epoch = trace.start
    scenario = Scenario(
        name=Path(trace.source).name.removesuffix(TRACE_SUFFIX),
        epoch=_dt.datetime.fromtimestamp(epoch, _dt.timezone(_dt.timedelta(hours=9))),
        source=trace.source,
        invariants=False,
    )
    sessions: dict[int, str] = {}
    replies: dict[tuple[int, int], Message] = {}
    sent: list[tuple[float, int, Envelope]] = []
    stubs: dict[str, _UnitStub] = {}
    pushed: dict[str, list[Envelope]] = {}
    async with open_fleet(epoch=epoch, idle=None) as fleet:
        accounts: list[str] = []
        router = fleet.router
        for address, kind, state in trace.states:
            if address.startswith("car:"):
                fleet.spawn(address, model, state)
            elif address.startswith("user:"):
                fleet.spawn(address, USER, state)
                accounts.append(address[5:])
            elif address == "operator":
                fleet.spawn(address, OPERATOR, state)
        if "operator" not in fleet.router:
            fleet.spawn("operator", OPERATOR, new_operator())
        for rec in trace.records:
            if rec.kind == "session" and rec.address.startswith("user:") and rec.address[5:] not in accounts:
                fleet.spawn(rec.address, USER, new_user(rec.address[5:]))
                accounts.append(rec.address[5:])
        apps = contextlib.ExitStack()
        channels = {account: apps.enter_context(fleet.subscribe("app:" + account, capacity=1 << 20)) for account in accounts}

        async def command(conn: int, address: str, env: Envelope) -> None:
            try:
                reply = await fleet.ask(address, env.target, env.body, timeout=command_timeout)
                replies[(conn, env.id)] = reply.body
            except DeliveryError as exc:
                replies[(conn, env.id)] = Error(code=exc.code.value, message=exc.message)

        async with trio.open_nursery() as tasks:
            for rec in trace.records:
                when = fleet.clock.to_trio(rec.t)
                if when > trio.current_time():
                    await trio.sleep_until(when)
                if rec.kind == "session":
                    sessions[rec.conn] = rec.address
                    if rec.address.startswith("unit:"):
                        if rec.address in stubs:  # a newer link replaces the older one
                            router.unregister(rec.address)
                            _coverage(router, rec.address, False, fleet.clock.now())
                        stubs[rec.address] = _UnitStub()
                        router.register(rec.address, stubs[rec.address])
                        _coverage(router, rec.address, True, fleet.clock.now())
                    continue
                if rec.kind == "closed":
                    address = sessions.pop(rec.conn, "")
                    if address in stubs and address not in sessions.values():
                        del stubs[address]
                        router.unregister(address)
                        _coverage(router, address, False, fleet.clock.now())
                    continue
                address = sessions.get(rec.conn, "")
                if rec.kind != "in" or not address or not isinstance(rec.frame, bytes):
                    continue
                now = fleet.clock.now()
                try:
                    env = decode(rec.frame, max_bytes=4 * MAX_FRAME_BYTES)
                    if address in stubs:
                        env = link_frame(address, "car:" + address[5:], stubs[address].asked, env, now)
                    else:
                        env = app_frame(address, env, now)
                except (ProtocolError, Untrusted):
                    continue  # the hub answered it itself; nothing reaches the actors
                if address in stubs:
                    try:
                        router.deliver_nowait(env)
                    except DeliveryError:
                        pass
                elif env.body.KIND == "command":
                    sent.append((rec.t, rec.conn, env))
                    tasks.start_soon(command, rec.conn, address, env)
                await trio.testing.wait_all_tasks_blocked()
            end = trace.end if trace.end is not None else (trace.records[-1].t if trace.records else epoch)
            if fleet.clock.to_trio(end) > trio.current_time():
                await trio.sleep_until(fleet.clock.to_trio(end))
            await trio.testing.wait_all_tasks_blocked()
            tasks.cancel_scope.cancel()
        with apps:
            for account, receive in channels.items():
                while True:
                    try:
                        pushed.setdefault(account, []).append(receive.receive_nowait())
                    except trio.WouldBlock:
                        break
        finals = _final_checks(trace, fleet, pushed, epoch, tolerance)
    steps = []
    for n, (t, conn, env) in enumerate(sent, 1):
        recorded = _recorded_reply(trace, conn, env.id)
        replayed = replies.get((conn, env.id))
        account = sessions.get(conn) or _session_of(trace, conn)
        if recorded is None:
            check = Check(n, "reply", True, "no reply was recorded (the session closed first); not compared")
        elif replayed is None:
            check = Check(n, "reply", False, "the replay got no reply", ("- " + recorded.TYPE, "+ (none)"))
        else:
            found = _compare_reply(recorded, replayed, epoch, tolerance)
            check = Check(n, "reply", not found, "as recorded" if not found else f"differs from the recording in {len(found)} place(s)", diff_lines(found, epoch))
        steps.append(TraceStep(t, account[5:], env.target, env.body, recorded, replayed, check))
    return TraceReport(
        trace=trace, scenario=scenario, steps=tuple(steps), final=tuple(finals),
        wall_s=time.perf_counter() - started, virtual_s=trio.current_time() - t0,
    )


def _session_of(trace: Trace, conn: int) -> str:
    return next((r.address for r in trace.records if r.conn == conn and r.kind == "session"), "user:?")


def _recorded_reply(trace: Trace, conn: int, corr: int) -> Message | None:
    for rec in trace.records:
        if rec.conn == conn and rec.kind == "out" and isinstance(rec.frame, bytes):
            try:
                env = decode(rec.frame, max_bytes=4 * MAX_FRAME_BYTES)
            except ProtocolError:
                continue
            if env.id == corr and env.body.KIND == "reply":
                return env.body
    return None


def _recorded_pushes(trace: Trace) -> dict[str, list[Envelope]]:
    """Durable pushes each account's sessions received, once each, in sequence order."""
    sessions: dict[int, str] = {}
    seen: dict[str, dict[int, Envelope]] = {}
    for rec in trace.records:
        if rec.kind == "session":
            sessions[rec.conn] = rec.address
        elif rec.kind == "out" and isinstance(rec.frame, bytes) and sessions.get(rec.conn, "").startswith("user:"):
            try:
                env = decode(rec.frame, max_bytes=4 * MAX_FRAME_BYTES)
            except ProtocolError:
                continue
            account = sessions[rec.conn][5:]
            if env.body.KIND in ("reply", "progress", "session") or env.body.TYPE in EPHEMERAL or env.seq <= trace.seqs.get(account, 0):
                continue
            seen.setdefault(account, {})[env.seq] = env
    return {a: [by_seq[s] for s in sorted(by_seq)] for a, by_seq in seen.items()}


def _final_checks(trace: Trace, fleet: Fleet, pushed: dict[str, list[Envelope]], epoch: float, tolerance: float) -> list[Check]:
    checks = []
    recorded = _recorded_pushes(trace)
    for account in sorted(recorded):
        want = [_body_plain(e.body) for e in recorded[account]]
        got = [_body_plain(e.body) for e in pushed.get(account, []) if e.body.TYPE not in EPHEMERAL]
        found = _close(want, got, epoch, tolerance, "pushes") if len(want) == len(got) else [("pushes", [w["type"] for w in want], [g["type"] for g in got])]
        checks.append(Check(0, f"pushes to {account}", not found, f"{len(want)} push(es) as recorded" if not found else "differ from the recording", diff_lines(found, epoch)))
    for address, kind, state in trace.end_states or ():
        if address not in fleet.router:
            continue
        try:
            actual = fleet.state_of(address)
        except DeliveryError:
            continue
        differ = _close(plain_state(state), plain_state(actual), epoch, tolerance)
        checks.append(Check(0, f"final state of {address}", not differ, "as recorded" if not differ else f"differs in {len(differ)} place(s)", diff_lines(differ, epoch)))
    return checks


def replay_trace(trace: Trace, **kwargs: Any) -> TraceReport:
    """Replay `trace` in its own `trio.run` under `MockClock(autojump_threshold=0)`."""

    async def main() -> TraceReport:
        return await run_trace(trace, **kwargs)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def print_trace_report(report: TraceReport, printer: Any) -> None:
    from ._report import describe
    from ._runner import describe_time

    scenario = report.scenario
    epoch = scenario.epoch_s
    shown = False

    def heading() -> None:
        nonlocal shown
        if not shown:
            printer.line(f"== {report.trace.source}: recorded trace, {len(report.steps)} command(s), {format_duration(report.virtual_s)}")
            shown = True

    if not printer.quiet:
        heading()
    for step in report.steps:
        if printer.quiet and step.check.passed:
            continue
        heading()
        got = _reply_text(step.replayed, epoch)
        printer.line(f"{describe_time(scenario, step.t)}  {step.account} -> {step.target}: {describe(step.body, epoch)}  =>  {got}")
        printer.check(step.check)
    for check in report.final:
        if not (printer.quiet and check.passed):
            heading()
            printer.check(check)
    if not printer.quiet or not report.passed:
        heading()
        verdict = "PASS" if report.passed else "FAIL"
        printer.line(f"{verdict} {report.trace.source}: {len(report.checks)} checks, {len(report.failures)} differ from the recording")
        printer.line()


def _reply_text(body: Message | None, epoch: float) -> str:
    from ._report import describe

    if body is None:
        return "no reply"
    if isinstance(body, Error):
        return f"error {body.code}: {body.message}"
    result = getattr(body, "result", None)
    return "ok " + describe(result, epoch, limit=80) if result is not None else describe(body, epoch)


def replay_trace_main(path: Path, *, printer: Any, verbose: bool = False) -> tuple[int, Any]:
    """For `twin replay`: (0 same, 1 differs, 2 unreadable, the report or the error)."""
    try:
        trace = load_trace(path)
    except ScenarioError as exc:
        printer.error(str(path), exc.message)
        return 2, exc.message
    report = replay_trace(trace)
    print_trace_report(report, printer)
    return (0 if report.passed else 1), report


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - a debugging aid
    from ._report import Printer

    status = 0
    for path in argv or sys.argv[1:]:
        status = max(status, replay_trace_main(Path(path), printer=Printer(sys.stdout))[0])
    return status
