"""The one codec: envelope <-> msgpack bytes, through one strict cattrs converter.

Decoding raises nothing but `ProtocolError`, each with its code: a client learns from the
error reply exactly what was wrong with its frame. Types are strict: a string is not an int,
an int is not a bool, unknown fields are refused.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Set
from typing import Any, Union

import attrs
import cattrs
import msgpack
from cattrs.strategies import configure_tagged_union

from ..errors import Code, ProtocolError
from ._base import PROTOCOL_VERSION, Envelope, Message, message_types
from ._results import AnyResult

__all__ = ["MAX_FRAME_BYTES", "converter", "decode", "encode", "structure_body", "unstructure_body"]

MAX_FRAME_BYTES = 64 * 1024


class _Mistyped(TypeError):
    """Raised inside hooks; becomes ProtocolError(WRONG_TYPE) with the field's path."""


def _strict(kind: type, accept: tuple[type, ...]):  # type: ignore[no-untyped-def]
    def hook(value: Any, cls: type) -> Any:
        if cls is not kind and issubclass(cls, enum.Enum):  # str-based enums dispatch here too
            return _enum(value, cls)
        if type(value) is bool and kind is not bool:
            raise _Mistyped(f"expected {kind.__name__}, got bool")
        if not isinstance(value, accept):
            raise _Mistyped(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return hook


def _sorted_list(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=repr)


def _enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise _Mistyped(f"{value!r} is not one of {allowed}") from None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(
        forbid_extra_keys=True,
        detailed_validation=True,
        # sets travel as arrays in a stable order, so equal messages encode to equal bytes
        unstruct_collection_overrides={Set: _sorted_list},
    )
    for kind, accept in ((bool, (bool,)), (int, (int,)), (float, (int, float)), (str, (str,))):
        conv.register_structure_hook(kind, _strict(kind, accept))

    conv.register_structure_hook_func(lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _enum)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda e: e.value
    )
    configure_tagged_union(
        AnyResult,
        conv,
        tag_generator=lambda cl: cl.TYPE,
        tag_name="type",
    )
    return conv


converter: cattrs.Converter = _make_converter()


def unstructure_body(body: Message) -> dict[str, Any]:
    """The body as plain msgpack-ready data."""
    return converter.unstructure(body, unstructure_as=type(body))  # type: ignore[no-any-return]


def structure_body(tag: str, data: Any) -> Message:
    """Build the message registered under `tag` from plain data, or raise ProtocolError."""
    cls = message_types().get(tag) if isinstance(tag, str) else None
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
            missing.append(path.lstrip(".") or str(e))
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


_ENVELOPE_FIELDS = {"type", "id", "from", "to", "ts", "v", "body"}


def encode(env: Envelope) -> bytes:
    """Envelope to one msgpack frame."""
    return msgpack.packb(  # type: ignore[no-any-return]
        {
            "type": env.body.TYPE,
            "id": env.id,
            "from": env.sender,
            "to": env.target,
            "ts": env.ts,
            "v": env.v,
            "body": unstructure_body(env.body),
        },
        use_bin_type=True,
    )


def decode(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES, sender: str | None = None) -> Envelope:
    """One msgpack frame to an envelope, or ProtocolError with a stable code.

    `sender`, when given, is the authenticated identity stamped over whatever the frame says
    (hubs pass it so nobody speaks as someone else).
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
    claimed = raw.get("from", "")
    checks = (("type", raw["type"], str), ("to", raw["to"], str), ("from", claimed, str), ("id", corr, int), ("ts", ts, (int, float)))
    for name, value, kind in checks:
        if not isinstance(value, kind) or type(value) is bool:
            raise ProtocolError(f"envelope field {name!r} has the wrong type {type(value).__name__}", Code.WRONG_TYPE)
    body = structure_body(raw["type"], raw.get("body", {}))
    return Envelope(body, sender=sender if sender is not None else claimed, target=raw["to"], id=corr, ts=float(ts))
