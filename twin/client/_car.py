"""`twin car`: speak as a car's telematics unit from the command line.

With an event, it attaches to the hub as the car's vehicle link, sends that one event, waits
until the twin took it (or says why not) and detaches: an app developer makes a demo car's
alarm sound, a door open or the car move while the app is open. Without one, it stays
attached as the car's unit until Ctrl-C, carrying out (or, with `--fail`, refusing) every
actuation the twin sends, and printing each: a linked car is online meanwhile.

Fields are `name=value` pairs; a value is read as a TOML literal (`true`, `3`, `35.68`,
`"door forced"`, `["a", "b"]`) and otherwise taken as a bare string (`door=trunk`).
"""

from __future__ import annotations

import difflib
import signal
import sys
import tomllib
from typing import Any, TextIO

import trio

from twin.errors import ProtocolError, TwinError
from twin.protocol import Message, fields_of, message_types, structure_body

from ._client import LoginFailed, open_vehicle_link

__all__ = ["car_main", "parse_event"]


def event_types() -> dict[str, type[Message]]:
    """Every message a vehicle link may report, by tag."""
    return {tag: cls for tag, cls in sorted(message_types().items()) if cls.KIND == "event"}


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_event(tag: str, pairs: list[str]) -> Message:
    """The event `tag` with fields from `name=value` pairs, or `ProtocolError` saying what to fix."""
    events = event_types()
    cls = events.get(tag)
    if cls is None:
        close = difflib.get_close_matches(tag, events, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ProtocolError(f"{tag!r} is not an event a car reports{hint} Events: {', '.join(events)}")
    data: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ProtocolError(f"expected a field as name=value, got {pair!r}; {tag} takes {_fields(cls)}")
        data[name] = _value(text)
    try:
        return structure_body(tag, data)
    except ProtocolError as exc:
        raise ProtocolError(f"{exc.message}; {tag} takes {_fields(cls)}", exc.code) from None


def _fields(cls: type[Message]) -> str:
    fields = fields_of(cls)
    return ", ".join(fields) if fields else "no fields"


async def _run(url: str, vehicle_id: str, secret: str, event: Message | None, fail: str | None, out: TextIO) -> int:
    def actuate(command: Message) -> str | None:
        verdict = f"refused: {fail}" if fail else "carried out"
        print(f"car:{vehicle_id} was told to {command.TYPE}: {verdict}", file=out, flush=True)
        return fail

    async with open_vehicle_link(url, vehicle_id, secret, on_actuation=actuate) as link:
        if event is not None:
            done = await link.send_event(event)
            print(f"car:{vehicle_id}: {done.detail}", file=out, flush=True)
            return 0
        print(f"attached as unit:{vehicle_id}; car:{vehicle_id} is online. Ctrl-C to detach", file=out, flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        print(f"detached after {link.actuations} actuation(s)", file=out, flush=True)
    return 0


def car_main(url: str, vehicle_id: str, secret: str, event: str | None, fields: list[str], fail: str | None = None,
             out: TextIO = sys.stdout) -> int:
    """`twin car`: 0 when the event was taken (or the link detached on a signal), 1 when the
    twin or the hub refused, 2 for a command line that names no valid event."""
    try:
        message = parse_event(event, fields) if event is not None else None
    except ProtocolError as exc:
        print(f"twin car: {exc.message}", file=sys.stderr)
        return 2
    try:
        return trio.run(_run, url, vehicle_id, secret, message, fail, out)
    except LoginFailed as exc:
        print(f"twin car: the hub refused car:{vehicle_id}'s link ({exc.code.value}): {exc.message}", file=sys.stderr)
    except TwinError as exc:
        print(f"twin car: {exc.code.value}: {exc.message}", file=sys.stderr)
    except OSError as exc:
        print(f"twin car: cannot reach {url}: {exc}", file=sys.stderr)
    return 1
