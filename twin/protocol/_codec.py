"""The one codec: envelope <-> msgpack bytes, through one strict cattrs converter.

Decoding raises nothing but `ProtocolError`, each with its code: a client learns from the
error reply exactly what was wrong with its frame. Types are strict: a string is not an int,
an int is not a bool, a string or a map is not an array, unknown fields are refused (every
field is typed, so nesting deeper than the catalogue's is refused at its first level). Encoding is canonical: equal envelopes give equal
bytes (sets as sorted arrays, maps with sorted keys, -0.0 as 0.0, timestamps as floats).
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Container, Iterable, Mapping, Set
from typing import Any, cast, get_origin

import attrs
import cattrs
import msgpack
from cattrs.strategies import configure_tagged_union

from ..errors import Code, ProtocolError
from ._base import PROTOCOL_VERSION, Envelope, Message, message_type
from ._results import AnyResult, result_types

__all__ = ["MAX_FRAME_BYTES", "Unread", "converter", "decode", "encode", "structure_body", "unstructure_body"]

MAX_FRAME_BYTES = 64 * 1024


class _Mistyped(TypeError):
    """Raised inside hooks; becomes ProtocolError(WRONG_TYPE) with the field's path."""


def _strict(kind: type, accept: tuple[type, ...]):  # type: ignore[no-untyped-def]
    def hook(value: Any, cls: type) -> Any:
        if type(value) is kind and cls is kind:  # the common case, checked first: decode is a hot path
            return value
        if cls is not kind and issubclass(cls, enum.Enum):  # str-based enums dispatch here too
            return _enum(value, cls)
        if type(value) is bool and kind is not bool:
            raise _Mistyped(f"expected {kind.__name__}, got bool")
        if not isinstance(value, accept):
            raise _Mistyped(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return hook


def _sort_key(item: Any) -> tuple[int, Any, str]:
    """A total order for set items and map keys of mixed types: numbers, then strings (enums
    by value), then anything else by `repr`."""
    if isinstance(item, enum.Enum):
        item = item.value
    kind = type(item)
    if kind is int or kind is float or kind is bool:
        return (0, item, "")
    if kind is str:
        return (1, item, "")
    return (2, 0, repr(item))


def _sorted_list(items: Iterable[Any]) -> list[Any]:
    listed = list(items)
    try:
        listed.sort()  # the common case: items of one comparable type
    except TypeError:
        listed.sort(key=_sort_key)
    return listed


def _sorted_map(items: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    pairs = list(items)
    try:
        pairs.sort(key=_first)  # the common case: keys of one comparable type
    except TypeError:
        pairs.sort(key=lambda kv: _sort_key(kv[0]))
    return dict(pairs)


_first = operator.itemgetter(0)


def _canonical_float(value: float) -> float:
    return float(value) + 0.0  # -0.0 + 0.0 is 0.0: equal floats give equal bytes


_ARRAY_ORIGINS = (tuple, frozenset, set)


def _arrays_only(cls: Any, conv: cattrs.Converter):  # type: ignore[no-untyped-def]
    """Hook factory for tuple/set fields: only an array is one (a string or map is iterable too).

    Takes the converter as an argument, so copies of the converter (the store's) keep their own
    hooks for the items."""
    structure = {tuple: conv._structure_tuple, frozenset: conv._structure_frozenset, set: conv._structure_set}[get_origin(cls)]

    def hook(value: Any, cl: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Mistyped(f"expected an array, got {type(value).__name__}")
        return structure(value, cl)

    return hook


def _result_hook(cls: Any, conv: cattrs.Converter):  # type: ignore[no-untyped-def]
    """Hook factory for `AnyResult`: structure by the `type` tag, naming a missing or unknown tag."""
    by_tag = {result.TYPE: result for result in result_types()}
    allowed = ", ".join(repr(tag) for tag in by_tag)

    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise _Mistyped(f"expected a map, got {type(value).__name__}")
        if "type" not in value:
            raise KeyError("type")
        tag = value["type"]
        result = by_tag.get(tag) if isinstance(tag, str) else None
        if result is None:
            raise _Mistyped(f"result type {tag!r} is not one of {allowed}")
        return conv.structure({k: v for k, v in value.items() if k != "type"}, result)

    return hook


def _plain_map_hook(cls: Any, conv: cattrs.Converter):  # type: ignore[no-untyped-def]
    """Unstructure hook factory for a bare dict (free-form data typed Any): keys sorted too."""

    def hook(value: dict[Any, Any]) -> dict[Any, Any]:
        return _sorted_map((conv.unstructure(k), conv.unstructure(v)) for k, v in value.items())

    return hook


def _enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        member = cls._value2member_map_.get(value)  # what cls(value) looks up first, minus its overhead
        return member if member is not None else cls(value)
    except (ValueError, TypeError):  # TypeError: an unhashable value
        allowed = ", ".join(repr(m.value) for m in cls)
        raise _Mistyped(f"{value!r} is not one of {allowed}") from None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(
        forbid_extra_keys=True,
        detailed_validation=True,
        # sets travel as arrays and maps with their keys in a stable order, so equal messages
        # encode to equal bytes
        unstruct_collection_overrides={Set: _sorted_list, dict: _sorted_map, Mapping: _sorted_map},
    )
    for kind, accept in ((bool, (bool,)), (int, (int,)), (float, (int, float)), (str, (str,))):
        conv.register_structure_hook(kind, _strict(kind, accept))
    conv.register_structure_hook_factory(lambda t: get_origin(t) in _ARRAY_ORIGINS, _arrays_only)
    conv.register_unstructure_hook(float, _canonical_float)
    # free-form data (fields typed Any) is unstructured by its runtime class: keep maps sorted there too
    conv.register_unstructure_hook_factory(lambda t: t is dict, _plain_map_hook)

    conv.register_structure_hook_func(lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _enum)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda e: e.value
    )
    configure_tagged_union(
        AnyResult,
        conv,
        tag_generator=lambda cl: cast("type[Message]", cl).TYPE,
        tag_name="type",
    )
    conv.register_structure_hook_factory(lambda t: t == AnyResult, _result_hook)
    return conv


converter: cattrs.Converter = _make_converter()


def unstructure_body(body: Message) -> dict[str, Any]:
    """The body as plain msgpack-ready data."""
    return converter.unstructure(body, unstructure_as=type(body))  # type: ignore[no-any-return]


def structure_body(tag: str, data: Any) -> Message:
    """Build the message registered under `tag` from plain data, or raise ProtocolError."""
    cls = message_type(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ProtocolError(
            f"unknown message type {tag!r}; see docs/protocol.md for the catalogue",
            Code.UNKNOWN_TYPE,
        )
    if not isinstance(data, dict):
        raise ProtocolError(f"body of {tag!r} must be a map, got {type(data).__name__}", Code.WRONG_TYPE)
    try:
        return converter.structure(data, cls)  # type: ignore[no-any-return]
    except Exception as exc:  # cattrs wraps field errors in exception groups
        raise _explain(tag, exc) from None


def _explain(tag: str, exc: BaseException) -> ProtocolError:
    missing: list[str] = []
    wrong: list[str] = []
    extra: list[str] = []

    def walk(e: BaseException, path: str) -> None:
        if isinstance(e, BaseExceptionGroup):
            notes = getattr(e, "__notes__", [])
            for sub in e.exceptions:
                sub_notes = getattr(sub, "__notes__", [])
                name = _field_from_notes(sub_notes)
                walk(sub, f"{path}.{name}" if name else path)
            del notes
            return
        if isinstance(e, cattrs.ForbiddenExtraKeysError):
            extra.extend(f"{path}.{k}".lstrip(".") for k in sorted(e.extra_fields))
        elif isinstance(e, KeyError):
            where = path.lstrip(".")
            key = e.args[0] if e.args else ""
            if isinstance(key, str) and key and where.rsplit(".", 1)[-1] != key:
                where = f"{where}.{key}".lstrip(".")  # a key missing inside the field (a union's tag)
            missing.append(where or str(e))
        else:
            wrong.append(f"{path.lstrip('.')}: {e}")

    walk(exc, "")
    if missing:
        return ProtocolError(f"{tag}: missing field(s) {', '.join(missing)}", Code.MISSING_FIELD)
    if extra:
        return ProtocolError(f"{tag}: unknown field(s) {', '.join(extra)}", Code.WRONG_TYPE)
    detail = "; ".join(wrong) or str(exc)
    return ProtocolError(f"{tag}: wrong field type ({detail})", Code.WRONG_TYPE)


def _field_from_notes(notes: list[str]) -> str:
    for note in notes:
        # cattrs notes look like "Structuring class Lock @ attribute x" or "... @ index 0"
        if " @ attribute " in note:
            return note.rsplit(" @ attribute ", 1)[1]
        if " @ index " in note:
            return "[" + note.rsplit(" @ index ", 1)[1] + "]"
        if " @ key " in note:
            return "[" + note.rsplit(" @ key ", 1)[1] + "]"
    return ""


_ENVELOPE_FIELDS = {"type", "id", "from", "to", "ts", "v", "seq", "body"}


def encode(env: Envelope) -> bytes:
    """Envelope to one msgpack frame (`seq` only on durable pushes, where it is not 0)."""
    raw = {
        "type": env.body.TYPE,
        "id": env.id,
        "from": env.sender,
        "to": env.target,
        "ts": _canonical_float(env.ts),
        "v": env.v,
        "body": unstructure_body(env.body),
    }
    if env.seq:
        raw["seq"] = env.seq
    return msgpack.packb(raw, use_bin_type=True)  # type: ignore[no-any-return]


class Unread(Message):
    """A body of a known type whose fields were left undecoded (see `decode`'s `unread`): for a
    client that only needs to know what arrived, as a load generator counting replies does.
    `TYPE` and `KIND` are those of the real message; `read()` decodes it, strictly."""

    __slots__ = ("tag", "kind", "data")

    def __init__(self, tag: str, kind: str, data: dict[str, Any]) -> None:
        self.tag, self.kind, self.data = tag, kind, data

    @property
    def TYPE(self) -> str:  # type: ignore[override]  # the name every message's tag has
        return self.tag

    @property
    def KIND(self) -> str:  # type: ignore[override]
        return self.kind

    def read(self) -> Message:
        """The message itself, or ProtocolError as `decode` would have raised."""
        return structure_body(self.tag, self.data)

    def __repr__(self) -> str:
        return f"Unread({self.tag!r})"


def decode(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES, sender: str | None = None,
           unread: Container[str] = ()) -> Envelope:
    """One msgpack frame to an envelope, or ProtocolError with a stable code.

    `sender`, when given, is the authenticated identity stamped over whatever the frame says
    (hubs pass it so nobody speaks as someone else). A body whose type is in `unread` is
    handed over as `Unread`, its fields not decoded: the envelope is still checked in full.
    """
    if len(frame) > max_bytes:
        raise ProtocolError(f"frame of {len(frame)} bytes is over the {max_bytes}-byte limit", Code.FRAME_TOO_LARGE)
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"not valid msgpack: {type(exc).__name__}", Code.MALFORMED) from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"a frame must be a msgpack map, got {type(raw).__name__}", Code.NOT_A_MAP)
    extra = set(raw) - _ENVELOPE_FIELDS
    if extra:
        raise ProtocolError(f"unknown envelope field(s) {sorted(map(str, extra))}", Code.WRONG_TYPE)
    version = raw.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise ProtocolError(f"protocol version {version!r} is not supported; this hub speaks {PROTOCOL_VERSION}", Code.UNSUPPORTED_VERSION)
    for name in ("type", "to"):
        if name not in raw:
            raise ProtocolError(f"envelope is missing {name!r}", Code.MISSING_FIELD)
    corr = raw.get("id", 0)
    ts = raw.get("ts", 0.0)
    seq = raw.get("seq", 0)
    claimed = raw.get("from", "")
    checks = (("type", raw["type"], str), ("to", raw["to"], str), ("from", claimed, str), ("id", corr, int), ("ts", ts, (int, float)), ("seq", seq, int))
    for name, value, kind in checks:
        if not isinstance(value, kind) or type(value) is bool:
            raise ProtocolError(f"envelope field {name!r} has the wrong type {type(value).__name__}", Code.WRONG_TYPE)
    tag, data = raw["type"], raw.get("body", {})
    cls = message_type(tag) if tag in unread else None
    body = Unread(tag, cls.KIND, data) if cls is not None and type(data) is dict else structure_body(tag, data)
    return Envelope(body, sender=sender if sender is not None else claimed, target=raw["to"], id=corr, ts=float(ts), seq=seq)
