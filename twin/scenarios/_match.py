"""Comparing what a step expected with what really happened, and saying how they differ.

Everything is compared as plain data (what `twin.protocol`'s converter makes of a message or a
state, with enums as their wire values). The rules, one for every expectation (docs/scenarios.md,
"Matching"):

- tables are partial: only the keys written are compared, at any depth; but an empty table
  `{}` means "empty", and `[]` means an empty list;
- `"null"` matches a key that is there with no value; `"absent"` (only as a table's value)
  matches a key that is not there at all;
- every string, free text included, compares exactly; `{ contains = "text" }` matches a string
  containing the text, ignoring case;
- a reported value (a `Reading`, `{value, at}`) matches a plain expected value by its value;
- a string `"T+1h20m"` matches a model time (POSIX seconds) that long after the epoch;
- lists have the same length; lists of plain values match in any order (sets travel as sorted
  lists), lists of tables element by element.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..model import OperatorState, UserState, VehicleState, snapshot
from ..protocol import Envelope, Message, unstructure_body
from ..protocol._codec import converter as _converter
from ._format import format_duration, parse_duration
from ._writer import toml_value

__all__ = [
    "ABSENT",
    "NULL",
    "Check",
    "Delivery",
    "diff_lines",
    "mismatches",
    "multiset_match",
    "pattern_problems",
    "plain",
    "plain_message",
    "plain_state",
]

MISSING = object()
NULL = "null"  # the key is there, its value is nil (TOML has no null)
ABSENT = "absent"  # the key is not there at all (a car not in a garage, no guard at a car)
CONTAINS = "contains"  # { contains = "text" }: a string containing the text, ignoring case


def plain(value: Any) -> Any:
    """Enums to their values, tuples to lists, sets to sorted lists, recursively."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {(k.value if isinstance(k, enum.Enum) else k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    if isinstance(value, Message):
        return plain_message(value)
    return value


def plain_message(body: Message) -> dict[str, Any]:
    return {"type": body.TYPE, **plain(unstructure_body(body))}


def plain_state(state: Any) -> dict[str, Any]:
    """An actor's state as plain data; a car's also carries its remote-check `snapshot`."""
    data = plain(_converter.unstructure(state))
    if isinstance(state, VehicleState):
        data["snapshot"] = plain(_converter.unstructure(snapshot(state)))
    elif isinstance(state, UserState):
        data["inbox"] = [plain_message(m) for m in state.inbox]
        data["offers"] = [plain_message(m) for m in state.offers]
    elif isinstance(state, OperatorState):
        data["calls"] = [plain_message(m) for m in state.calls]
    return data  # type: ignore[no-any-return]


@attrs.frozen
class Delivery:
    """A message an app (`to` = the account) or the operator desk (`to` = "operator") received."""

    to: str
    envelope: Envelope

    @property
    def type(self) -> str:
        return self.envelope.body.TYPE

    def plain(self) -> dict[str, Any]:
        env = self.envelope
        return {"to": self.to, "from": env.sender, "type": env.body.TYPE, "ts": env.ts, **plain(unstructure_body(env.body))}


@attrs.frozen
class Check:
    """One expectation or invariant, passed or failed, with a diff when it failed."""

    step: int  # 0: the scenario as a whole (setup)
    what: str  # "reply", "alerts", "notices", "absent", "state", "invariant <name>", "setup"
    passed: bool
    summary: str
    diff: tuple[str, ...] = ()

    @property
    def is_invariant(self) -> bool:
        return self.what.startswith("invariant")


# --- partial matching


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_reading(x: Any) -> bool:
    return isinstance(x, dict) and set(x) == {"value", "at"}


def _is_contains(x: Any) -> bool:
    return isinstance(x, dict) and set(x) == {CONTAINS} and isinstance(x[CONTAINS], str)


def mismatches(expected: Any, actual: Any, epoch: float, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, expected, actual) for every place `actual` does not match `expected`."""
    if _is_reading(actual) and not (isinstance(expected, dict) and expected and set(expected) <= {"value", "at"}):
        if expected == {} or expected == ABSENT:
            return [(path, expected, actual)]
        return mismatches(expected, actual["value"], epoch, path)
    if _is_contains(expected):
        if isinstance(actual, str) and expected[CONTAINS].lower() in actual.lower():
            return []
        return [(path, expected, actual)]
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or (not expected and actual):
            return [(path, expected, actual)]
        out = []
        for key, want in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if want == ABSENT:
                if key in actual:
                    out.append((sub, want, actual[key]))
            elif key not in actual:
                out.append((sub, want, MISSING))
            else:
                out.extend(mismatches(want, actual[key], epoch, sub))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [(path, expected, actual)]
        pairwise = [m for i, (e, a) in enumerate(zip(expected, actual)) for m in mismatches(e, a, epoch, f"{path}[{i}]")]
        if pairwise and all(not isinstance(x, (dict, list)) for x in expected + actual):
            if sorted(map(repr, expected)) == sorted(map(repr, actual)):
                return []
            return [(path, expected, actual)]
        return pairwise
    if expected == NULL:
        return [] if actual is None else [(path, expected, actual)]
    if expected == ABSENT:  # a value is there, wherever "absent" stands outside a table
        return [(path, expected, actual)]
    if isinstance(expected, str) and expected.startswith("T+") and _number(actual):
        want = epoch + parse_duration(expected[2:], f"{path}: {expected!r}")
        return [] if abs(actual - want) < 1e-6 else [(path, expected, actual)]
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if expected is actual else [(path, expected, actual)]
    if _number(expected) and _number(actual):
        return [] if expected == actual or abs(expected - actual) <= 1e-9 * max(1.0, abs(expected)) else [(path, expected, actual)]
    return [] if expected == actual else [(path, expected, actual)]


def pattern_problems(expected: Any, path: str = "") -> list[str]:
    """What in a hand-written expectation cannot mean what its writer meant: `"absent"` outside
    a table, or a `contains` table that is not `{ contains = "text" }`."""
    if isinstance(expected, dict):
        if CONTAINS in expected and not _is_contains(expected):
            return [f"{path or 'value'}: write {{ contains = \"text\" }} alone, with a string"]
        out = []
        for key, want in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if want != ABSENT:
                out.extend(pattern_problems(want, sub))
        return out
    if isinstance(expected, list):
        return [p for i, e in enumerate(expected) for p in pattern_problems(e, f"{path}[{i}]")]
    if expected == ABSENT:
        return [f"{path or 'value'}: \"absent\" says a table has no such key; it stands only as a key's value"]
    return []


def matches(expected: Any, actual: Any, epoch: float) -> bool:
    return not mismatches(expected, actual, epoch)


def show(value: Any, expected: Any = None, epoch: float | None = None) -> str:
    """A value as TOML-like text; model times shown as T+ offsets when the expectation used one."""
    if value is MISSING:
        return "(missing)"
    if value is None:
        return "null"
    if epoch is not None and isinstance(expected, str) and expected.startswith("T+") and _number(value):
        offset = value - epoch
        return f'"T+{format_duration(offset)}"' if offset >= 0 else f"T-{format_duration(-offset)}"
    try:
        return toml_value(value)
    except (TypeError, ValueError):
        return repr(value)


def diff_lines(found: list[tuple[str, Any, Any]], epoch: float) -> tuple[str, ...]:
    """Expected against actual, one '-'/'+' pair per differing path."""
    out = []
    for path, want, got in found:
        where = path or "(value)"
        out.append(f"- {where} = {show(want)}")
        out.append(f"+ {where} = {show(got, want, epoch)}")
    return tuple(out)


def multiset_match(patterns: Sequence[Mapping[str, Any]], actuals: Sequence[Mapping[str, Any]], epoch: float) -> tuple[list[int], list[int]]:
    """Pair every pattern with a distinct actual it matches (maximum matching).

    Returns (indices of unmatched patterns, indices of unmatched actuals).
    """
    fits = [[j for j, a in enumerate(actuals) if matches(p, a, epoch)] for p in patterns]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    matched = {i for i in range(len(patterns)) if augment(i, set())}
    return [i for i in range(len(patterns)) if i not in matched], [j for j in range(len(actuals)) if j not in owner]


def brief(item: Mapping[str, Any], keys: Sequence[str], epoch: float) -> str:
    """A delivery shown by the keys that matter for reading a diff."""
    shown = {}
    for k in keys:
        if k in item and item[k] is not None:
            v = item[k]
            if k in ("ts", "at") and _number(v):
                v = f"T+{format_duration(v - epoch)}"
            shown[k] = v
    return toml_value(shown)
