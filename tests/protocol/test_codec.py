"""The wire codec: every message round-trips, decoding refuses with a typed error, encoding is
deterministic.

Rules for these tests: pure functions only (no trio, no sockets); message bodies come from
`twin.scenarios.messages()`, built from the registry, so a newly registered type is covered
without touching this file; every refusal is checked for its `Code`, and for naming what was
wrong, since the code and message travel back to the client in its error reply.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.errors import Code, ProtocolError
from twin.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    AlertSettings,
    AlertType,
    AnyResult,
    Channel,
    Door,
    Envelope,
    Lock,
    Ok,
    Power,
    Reading,
    SharedFunction,
    ShareInvite,
    Snapshot,
    Unread,
    decode,
    encode,
    message_types,
    result_types,
    unstructure_body,
)
from twin.scenarios import addresses, envelopes, message_of, messages, values_of

TAGS = sorted(message_types())
RESULTS = sorted(result_types(), key=lambda cls: cls.TYPE)


def frame(**fields: Any) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


def envelope_with(body: Any) -> Envelope:
    return Envelope(body, sender="user:ann", target="car:c1", id=7, ts=1.5)


def refused(data: bytes, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data, **kwargs)
    return info.value


# --- round trips ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(envelopes())
def test_every_message_round_trips(env: Envelope) -> None:
    data = encode(env)
    assert decode(data) == env
    assert encode(decode(data)) == data


@settings(max_examples=200)
@given(envelopes())
def test_an_unread_body_keeps_its_tag_and_kind_and_reads_back_as_the_message(env: Envelope) -> None:
    got = decode(encode(env), unread={env.body.TYPE})
    assert isinstance(got.body, Unread)
    assert (got.body.TYPE, got.body.KIND) == (env.body.TYPE, env.body.KIND)
    assert attrs.evolve(got, body=got.body.read()) == env


def test_unread_checks_the_envelope_and_leaves_the_body_check_to_read() -> None:
    body = decode(frame(type="ok", to="app:a", id=3, body={"result": 7}), unread={"ok"}).body
    assert isinstance(body, Unread)
    with pytest.raises(ProtocolError) as info:
        body.read()
    assert info.value.code is Code.WRONG_TYPE and "result" in str(info.value)
    assert refused(frame(type="ok", to=5), unread={"ok"}).code is Code.WRONG_TYPE
    assert refused(frame(type="nope", to="x"), unread={"nope"}).code is Code.UNKNOWN_TYPE
    assert refused(frame(type="ok", to="x", body=[1]), unread={"ok"}).code is Code.WRONG_TYPE


@pytest.mark.parametrize("tag", TAGS)
@settings(max_examples=15)
@given(data=st.data())
def test_each_registered_type_round_trips(tag: str, data: st.DataObject) -> None:
    body = data.draw(message_of(tag))
    assert body.TYPE == tag
    env = envelope_with(body)
    assert decode(encode(env)) == env


@pytest.mark.parametrize("result_cls", RESULTS, ids=lambda cls: cls.TYPE)
@settings(max_examples=15)
@given(data=st.data())
def test_each_result_type_round_trips_inside_ok(result_cls: type, data: st.DataObject) -> None:
    env = envelope_with(Ok(result=data.draw(values_of(result_cls))))
    assert decode(encode(env)) == env


def test_the_catalogue_is_covered() -> None:
    """The round-trip tests above see every tag and every result: nothing registered is left out."""
    registry = message_types()
    assert TAGS == sorted(registry) and len(TAGS) == len(set(TAGS))
    assert set(AnyResult.__args__) == set(result_types())  # type: ignore[attr-defined]
    for tag, cls in registry.items():
        assert cls.TYPE == tag
        assert attrs.has(cls)
        message_of(tag)  # a strategy exists for every field type of every message


@settings(max_examples=50)
@given(st.sampled_from(sorted({cls.KIND for cls in message_types().values()})).flatmap(lambda k: st.tuples(st.just(k), messages(k))))
def test_messages_of_a_kind_are_of_that_kind(kind_and_body: tuple[str, Any]) -> None:
    kind, body = kind_and_body
    assert body.KIND == kind


# --- decoding never raises anything but ProtocolError ------------------------------------------


def decodes_or_refuses(data: bytes, **kwargs: Any) -> Envelope | None:
    """Decode `data`; a refusal must be a ProtocolError with a code. Whatever decodes re-encodes."""
    try:
        env = decode(data, **kwargs)
    except ProtocolError as exc:
        assert isinstance(exc.code, Code) and exc.message
        return None
    again = encode(env)
    assert encode(decode(again)) == again
    return env


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_protocol_error(data: bytes) -> None:
    decodes_or_refuses(data)


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=6) | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def raw_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A msgpack map shaped like an envelope whose parts are sometimes right, sometimes not."""
    tag = draw(st.sampled_from(TAGS) | plain)
    cls = message_types().get(tag) if isinstance(tag, str) else None
    if cls is not None and draw(st.booleans()):
        body: Any = unstructure_body(draw(message_of(cls)))
        # damage it: drop a field, retype a field, add a field
        names = sorted(body)
        if names and draw(st.booleans()):
            del body[draw(st.sampled_from(names))]
        if names and draw(st.booleans()):
            body[draw(st.sampled_from(names))] = draw(plain)
        if draw(st.booleans()):
            body[draw(st.text(max_size=4))] = draw(plain)
    else:
        body = draw(plain)
    raw = {"type": tag, "to": draw(st.text(max_size=6) | plain), "body": body}
    for name, good in (("id", st.integers(0, 99)), ("ts", st.floats(0, 1e9)), ("from", st.text(max_size=6)), ("v", st.just(PROTOCOL_VERSION))):
        choice = draw(st.sampled_from(["good", "absent", "bad"]))
        if choice != "absent":
            raw[name] = draw(good if choice == "good" else plain)
    return raw


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(raw_envelopes())
def test_damaged_envelopes_never_raise_anything_but_protocol_error(raw: dict[str, Any]) -> None:
    decodes_or_refuses(frame(**raw))


@settings(max_examples=200)
@given(envelopes(), st.data())
def test_truncated_or_flipped_frames_never_raise_anything_but_protocol_error(env: Envelope, data: st.DataObject) -> None:
    good = encode(env)
    cut = data.draw(st.integers(0, len(good) - 1))
    decodes_or_refuses(good[:cut])
    at = data.draw(st.integers(0, len(good) - 1))
    decodes_or_refuses(good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1 :])


def nested(levels: int) -> Any:
    deep: Any = None
    for _ in range(levels):
        deep = [deep]
    return deep


def test_deep_nesting_is_refused_not_crashed_on() -> None:
    """Every field is typed: data nested hundreds deep is refused at its first level."""
    data = frame(type="welcome", to="hub", body={"address": "x", "garage": {"car:1": nested(400)}})
    assert len(data) < MAX_FRAME_BYTES
    assert refused(data).code is Code.WRONG_TYPE


# --- each refusal, typed ---------------------------------------------------------------------

LOCK = {"type": "lock", "to": "car:c1"}

CASES: list[tuple[str, bytes, Code, tuple[str, ...]]] = [
    ("malformed: reserved byte", b"\xc1", Code.MALFORMED, ("msgpack",)),
    ("malformed: truncated", b"\x82\xa4type", Code.MALFORMED, ("msgpack",)),
    ("malformed: trailing data", frame(**LOCK) + b"\x00", Code.MALFORMED, ("msgpack",)),
    ("malformed: empty", b"", Code.MALFORMED, ("msgpack",)),
    ("not a map: array", msgpack.packb(["lock", {}]), Code.NOT_A_MAP, ("map",)),
    ("not a map: string", msgpack.packb("lock"), Code.NOT_A_MAP, ("map",)),
    ("not a map: nil", msgpack.packb(None), Code.NOT_A_MAP, ("map",)),
    ("unknown type", frame(type="teleport", to="car:c1"), Code.UNKNOWN_TYPE, ("teleport",)),
    ("missing envelope type", frame(to="car:c1"), Code.MISSING_FIELD, ("type",)),
    ("missing envelope target", frame(type="lock"), Code.MISSING_FIELD, ("to",)),
    ("missing field", frame(type="set_hazards", to="car:c1", body={}), Code.MISSING_FIELD, ("on",)),
    ("missing nested field", frame(type="driver_update", to="car:c1", body={"account": "ben"}), Code.MISSING_FIELD, ("profile",)),
    ("missing nested field of a result", frame(type="ok", to="user:ann", body={"result": {"type": "location", "kind": "current", "position": {"value": {"lat": 1.0}}}}), Code.MISSING_FIELD, ("lon",)),
    ("missing result tag", frame(type="ok", to="user:ann", body={"result": {"detail": "x"}}), Code.MISSING_FIELD, ("result.type",)),
    ("string for int", frame(type="key_revoke", to="car:c1", body={"key_id": "1"}), Code.WRONG_TYPE, ("key_id", "int", "str")),
    ("bool for int", frame(type="key_revoke", to="car:c1", body={"key_id": True}), Code.WRONG_TYPE, ("key_id", "int", "bool")),
    ("float for int", frame(type="key_revoke", to="car:c1", body={"key_id": 1.0}), Code.WRONG_TYPE, ("key_id",)),
    ("int for bool", frame(type="set_hazards", to="car:c1", body={"on": 1}), Code.WRONG_TYPE, ("on", "bool")),
    ("string for float", frame(type="impact", to="car:c1", body={"delta_v_kmh": "fast"}), Code.WRONG_TYPE, ("delta_v_kmh", "float")),
    ("wrong enum value", frame(type="key_use", to="car:c1", body={"action": "fly"}), Code.WRONG_TYPE, ("action", "'fly'", "'unlock'")),
    ("enum value of the wrong type", frame(type="key_use", to="car:c1", body={"action": 1}), Code.WRONG_TYPE, ("action",)),
    ("wrong enum in a set", frame(type="share_invite", to="car:c1", body={"account": "ben", "functions": ["teleport"]}), Code.WRONG_TYPE, ("functions", "'teleport'")),
    ("wrong nested type", frame(type="climate_settings", to="car:c1", body={"settings": {"temperature_c": "hot"}}), Code.WRONG_TYPE, ("settings.temperature_c", "float")),
    ("scalar for nested class", frame(type="climate_settings", to="car:c1", body={"settings": 3}), Code.WRONG_TYPE, ("settings",)),
    ("array for nested class", frame(type="climate_settings", to="car:c1", body={"settings": [22.0]}), Code.WRONG_TYPE, ("settings",)),
    ("string for an array", frame(type="climate_schedule_add", to="car:c1", body={"weekdays": "015", "at": "07:00"}), Code.WRONG_TYPE, ("weekdays", "array")),
    ("string for an array of strings", frame(type="driver_register", to="car:c1", body={"account": "ben", "name": "Ben", "profile": {"search_history": "home"}}), Code.WRONG_TYPE, ("search_history", "array")),
    ("map for an array", frame(type="share_invite", to="car:c1", body={"account": "ben", "functions": {"remote_check": 1}}), Code.WRONG_TYPE, ("functions", "array")),
    ("wrong item in an array", frame(type="climate_schedule_add", to="car:c1", body={"weekdays": [1, "2"], "at": "07:00"}), Code.WRONG_TYPE, ("weekdays", "[1]", "int")),
    ("short pair", frame(type="ok", to="user:ann", body={"result": {"type": "alert_settings", "enabled": [["alarm"]]}}), Code.WRONG_TYPE, ("enabled",)),
    ("unknown result type", frame(type="ok", to="user:ann", body={"result": {"type": "teleported"}}), Code.WRONG_TYPE, ("result", "'teleported'", "'done'")),
    ("result not a map", frame(type="ok", to="user:ann", body={"result": ["done"]}), Code.WRONG_TYPE, ("result",)),
    ("bad dict key", frame(type="ok", to="user:ann", body={"result": {"type": "snapshot", "doors_open": {"sunroof": {"value": True}}, "windows_pct": {}, "locked": {"value": True}, "alarm_armed": {"value": True}, "hazards": {"value": False}, "power": {"value": "off"}, "climate_running": False}}), Code.WRONG_TYPE, ("sunroof",)),
    ("unknown field", frame(type="set_hazards", to="car:c1", body={"on": True, "colour": "red"}), Code.WRONG_TYPE, ("unknown", "colour")),
    ("unknown nested field", frame(type="climate_settings", to="car:c1", body={"settings": {"fan": 3}}), Code.WRONG_TYPE, ("unknown", "settings.fan")),
    ("unknown envelope field", frame(**LOCK, prio=1), Code.WRONG_TYPE, ("prio",)),
    ("unsupported version", frame(**LOCK, v=2), Code.UNSUPPORTED_VERSION, ("2", str(PROTOCOL_VERSION))),
    ("version as a string", frame(**LOCK, v="1"), Code.UNSUPPORTED_VERSION, ("'1'",)),
    ("version as a bool", frame(**LOCK, v=True), Code.UNSUPPORTED_VERSION, ("True",)),
    ("version as a float", frame(**LOCK, v=1.0), Code.UNSUPPORTED_VERSION, ("1.0",)),
    ("id as a string", frame(**LOCK, id="7"), Code.WRONG_TYPE, ("'id'", "str")),
    ("id as a bool", frame(**LOCK, id=True), Code.WRONG_TYPE, ("'id'", "bool")),
    ("id as a float", frame(**LOCK, id=7.0), Code.WRONG_TYPE, ("'id'", "float")),
    ("ts as a string", frame(**LOCK, ts="noon"), Code.WRONG_TYPE, ("'ts'", "str")),
    ("ts as a bool", frame(**LOCK, ts=False), Code.WRONG_TYPE, ("'ts'", "bool")),
    ("from as an int", frame(**LOCK, **{"from": 3}), Code.WRONG_TYPE, ("'from'", "int")),
    ("from as bytes", frame(**LOCK, **{"from": b"ann"}), Code.WRONG_TYPE, ("'from'", "bytes")),
    ("to as nil", frame(type="lock", to=None), Code.WRONG_TYPE, ("'to'", "NoneType")),
    ("type as bytes", frame(type=b"lock", to="car:c1"), Code.WRONG_TYPE, ("'type'", "bytes")),
    ("type as an int", frame(type=3, to="car:c1"), Code.WRONG_TYPE, ("'type'", "int")),
    ("body not a map", frame(**LOCK, body=[]), Code.WRONG_TYPE, ("body", "map")),
    ("body nil", frame(**LOCK, body=None), Code.WRONG_TYPE, ("body", "map")),
]


@pytest.mark.parametrize(("frame_bytes", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_refusal_has_its_code_and_says_what_was_wrong(frame_bytes: bytes, code: Code, words: tuple[str, ...]) -> None:
    error = refused(frame_bytes)
    assert error.code is code, error
    for word in words:
        assert word in error.message, (word, error.message)


def test_an_int_is_accepted_for_a_float() -> None:
    env = decode(frame(type="impact", to="car:c1", body={"delta_v_kmh": 20}, ts=5))
    assert env.body.delta_v_kmh == 20.0 and type(env.body.delta_v_kmh) is float  # type: ignore[attr-defined]
    assert env.ts == 5.0 and type(env.ts) is float


def test_envelope_defaults() -> None:
    env = decode(frame(**LOCK))
    assert env == Envelope(Lock(), sender="", target="car:c1", id=0, ts=0.0, v=PROTOCOL_VERSION)


def test_structuring_does_not_change_the_callers_data() -> None:
    from twin.protocol import structure_body

    data = {"result": {"type": "done", "detail": "x"}}
    structure_body("ok", data)
    assert data == {"result": {"type": "done", "detail": "x"}}


# --- frame size ------------------------------------------------------------------------------


def test_frame_over_the_size_limit() -> None:
    body = {"type": "police_report", "to": "car:c1", "body": {"report_no": ""}}
    overhead = len(frame(**body))
    at_limit = frame(**{**body, "body": {"report_no": "x" * (MAX_FRAME_BYTES - overhead - 2)}})
    assert len(at_limit) == MAX_FRAME_BYTES
    assert decode(at_limit).type == "police_report"
    over = frame(**{**body, "body": {"report_no": "x" * (MAX_FRAME_BYTES - overhead - 1)}})
    assert len(over) == MAX_FRAME_BYTES + 1
    error = refused(over)
    assert error.code is Code.FRAME_TOO_LARGE
    assert str(MAX_FRAME_BYTES) in error.message and str(len(over)) in error.message


def test_the_size_limit_is_checked_before_anything_else() -> None:
    assert refused(b"\xc1" * 11, max_bytes=10).code is Code.FRAME_TOO_LARGE
    assert refused(encode(envelope_with(Lock())), max_bytes=10).code is Code.FRAME_TOO_LARGE
    assert decode(encode(envelope_with(Lock())), max_bytes=1000).body == Lock()


# --- the hub stamps the sender ---------------------------------------------------------------


@given(envelopes(), addresses())
def test_the_hub_stamp_overrides_a_spoofed_sender(env: Envelope, authenticated: str) -> None:
    got = decode(encode(env), sender=authenticated)
    assert got.sender == authenticated
    assert attrs.evolve(got, sender=env.sender) == env


def test_the_hub_stamp_applies_when_from_is_absent() -> None:
    assert decode(frame(**LOCK), sender="user:ann").sender == "user:ann"
    assert decode(frame(**LOCK, **{"from": "user:mallory"}), sender="user:ann").sender == "user:ann"
    assert decode(frame(**LOCK, **{"from": "user:mallory"})).sender == "user:mallory"


# --- deterministic encoding ------------------------------------------------------------------


def scrambled(value: Any) -> Any:
    """An equal copy built differently: sets and dicts in reverse order, -0.0 for 0.0 (and back).
    Equal values must still encode to equal bytes."""
    if isinstance(value, Envelope):
        return Envelope(scrambled(value.body), sender=value.sender, target=value.target, id=value.id, ts=scrambled(value.ts), v=value.v)
    if attrs.has(type(value)):
        return attrs.evolve(value, **{f.name: scrambled(getattr(value, f.name)) for f in attrs.fields(type(value)) if f.init})
    if isinstance(value, frozenset):
        return frozenset(reversed([scrambled(v) for v in value]))
    if isinstance(value, dict):
        return {scrambled(k): scrambled(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, tuple):
        return tuple(scrambled(v) for v in value)
    if isinstance(value, list):
        return [scrambled(v) for v in value]
    if type(value) is float and value == 0.0:
        return -0.0 if math.copysign(1.0, value) > 0 else 0.0
    return value


@settings(max_examples=300)
@given(envelopes())
def test_equal_envelopes_encode_to_equal_bytes(env: Envelope) -> None:
    other = scrambled(env)
    assert other == env
    assert encode(other) == encode(env)


def test_equal_snapshots_built_in_another_order_encode_equal() -> None:
    never = Reading(False)
    doors = {door: never for door in Door}
    snap = Snapshot(doors_open=doors, windows_pct={}, locked=never, alarm_armed=never, hazards=never, power=Reading(Power.OFF), climate_running=False)
    other = attrs.evolve(snap, doors_open=dict(reversed(list(doors.items()))))
    assert other == snap
    assert encode(envelope_with(Ok(result=other))) == encode(envelope_with(Ok(result=snap)))


def test_frozensets_travel_sorted() -> None:
    invite = ShareInvite(account="ben", functions=frozenset(SharedFunction))
    raw = msgpack.unpackb(encode(envelope_with(invite)))
    assert raw["body"]["functions"] == sorted(f.value for f in SharedFunction)
    prefs = AlertSettings(enabled=frozenset((a, c) for a in AlertType for c in Channel))
    raw = msgpack.unpackb(encode(envelope_with(Ok(result=prefs))))
    assert raw["body"]["result"]["enabled"] == sorted([a.value, c.value] for a in AlertType for c in Channel)


def test_integral_timestamps_encode_like_floats() -> None:
    assert encode(attrs.evolve(envelope_with(Lock()), ts=5)) == encode(attrs.evolve(envelope_with(Lock()), ts=5.0))


_SUBPROCESS = """
import sys
from twin.protocol import *
env = Envelope(ShareInvite(account="ben", functions=frozenset(SharedFunction)), sender="user:ann", target="car:c1")
ok = Envelope(Ok(result=AlertSettings(enabled=frozenset((a, c) for a in AlertType for c in Channel))), sender="car:c1", target="user:ann")
sys.stdout.write((encode(env) + encode(ok)).hex())
"""


def test_encoding_does_not_depend_on_the_hash_seed() -> None:
    """Set iteration order changes with PYTHONHASHSEED; the bytes must not."""
    outputs = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
