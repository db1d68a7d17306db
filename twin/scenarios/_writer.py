"""Scenario values back to TOML, laid out like a hand-written file.

`twin explore` writes the shrunk failing case with this, so the file a person reads is the
file `twin replay` runs. It emits the small part of TOML a scenario needs (tables, arrays of
tables, inline tables, arrays, strings, numbers, booleans, offset date-times) and leaves out
every value equal to its default, so a step reads as what was sent; `tomllib` reads it back
to an equal scenario (a test checks the round trip for every message type).
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..protocol import ALL_SHARED_FUNCTIONS, Message, unstructure_body
from ..protocol._codec import converter as _converter
from ._format import CarSpec, Expect, Scenario, ScenarioStep, format_duration

__all__ = ["dump_scenario", "toml_value"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    return key if _BARE.match(key) else toml_string(key)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """One TOML value on one line (tables inline)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        items = [f"{toml_key(str(k.value if isinstance(k, enum.Enum) else k))} = {toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items = sorted(items, key=repr)
        if any(v is None for v in items):
            raise ValueError("TOML has no null: an array cannot hold None")
        return "[" + ", ".join(toml_value(v) for v in items) + "]"
    if attrs.has(type(value)):
        return toml_value(_plain(_converter.unstructure(value)))
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {(k.value if isinstance(k, enum.Enum) else k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    return value


def body_fields(body: Message) -> dict[str, Any]:
    """The body's fields that differ from their defaults, as plain data."""
    data = _plain(unstructure_body(body))
    out = {}
    for a in attrs.fields(type(body)):
        value = getattr(body, a.name)
        default = a.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[union-attr]
        if default is not attrs.NOTHING and value == default:
            continue
        out[a.name] = data[a.name]
    return out


def _line(key: str, value: Any) -> str:
    return f"{toml_key(key)} = {toml_value(value)}"


def _address(address: str | None, scenario: Scenario, *, account: bool = False) -> str:
    assert address is not None
    if account and address.startswith("user:"):
        return address[5:]
    return address


def dump_scenario(scenario: Scenario, *, header: str = "") -> str:
    """TOML text that `load_scenario` reads back to this scenario (times as offsets)."""
    out: list[str] = []
    for line in header.splitlines():
        out.append(f"# {line}".rstrip())
    if header:
        out.append("")
    out.append("[scenario]")
    out.append(_line("name", scenario.name))
    if scenario.story:
        out.append(_line("story", scenario.story))
    out.append(_line("epoch", scenario.epoch))
    if scenario.accounts:
        out.append(_line("accounts", list(scenario.accounts)))
    if not scenario.invariants:
        out.append(_line("invariants", False))
    for car in scenario.cars:
        out.append("")
        out.append("[[car]]")
        out.extend(_car_lines(car))
    previous = 0.0
    for step in scenario.steps:
        out.append("")
        out.append("[[step]]")
        out.extend(_step_lines(step, scenario, previous))
        previous = step.t
    return "\n".join(out) + "\n"


def _car_lines(car: CarSpec) -> list[str]:
    lines = []
    default = CarSpec(id=car.id)
    for a in attrs.fields(CarSpec):
        value = getattr(car, a.name)
        if a.name != "id" and value == getattr(default, a.name):
            continue
        if value is None:
            continue
        if a.name == "sharees":
            value = [s.account if s.functions == ALL_SHARED_FUNCTIONS else _plain(_converter.unstructure(s)) for s in value]
        elif a.name == "drivers":
            value = [{k: v for k, v in _plain(_converter.unstructure(d)).items() if not (k == "profile" and d.profile == type(d.profile)())} for d in value]
        elif a.name == "position":
            value = {"lat": value.lat, "lon": value.lon}
        lines.append(_line(a.name, value))
    return lines


def _step_lines(step: ScenarioStep, scenario: Scenario, previous: float) -> list[str]:
    lines = []
    start = step.start if step.kind == "advance" else step.t
    if start != previous:
        lines.append(_line("at", format_duration(start)))
    if step.kind == "send":
        assert step.body is not None
        lines.append(_line("from", _address(step.sender, scenario, account=True)))
        if not (step.target == "operator" and step.body.TYPE == "guard_extension_answer"):
            lines.append(_line("to", step.target))
        lines.append(_line("send", step.body.TYPE))
        fields = body_fields(step.body)
        if fields:
            lines.append(_line("body", fields))
    elif step.kind == "report":
        assert step.body is not None
        lines.append(_line("car", step.target))
        lines.append(_line("report", step.body.TYPE))
        fields = body_fields(step.body)
        if fields:
            lines.append(_line("body", fields))
    elif step.kind == "advance":
        lines.append(_line("advance", format_duration(step.t - step.start)))
    elif step.kind == "link":
        lines.append(_line("car", step.target))
        lines.append(_line("link", step.link))
        if step.reason:
            lines.append(_line("reason", step.reason))
    else:
        lines.append(_line("check", step.target))
    if step.note:
        lines.append(_line("note", step.note))
    expect = _expect_table(step.expect)
    if expect:
        lines.append(_line("expect", expect))
    return lines


def _expect_table(expect: Expect) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in attrs.fields(Expect):
        value = getattr(expect, a.name)
        if value is None:
            continue
        if a.name == "alerts":
            value = [{k: v for k, v in p.items() if k != "type"} for p in value]
        elif a.name == "absent":
            value = [p["type"] if set(p) == {"type"} else p for p in value]
        out[a.name] = _plain(value)
    return out
