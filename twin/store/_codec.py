"""Actor states <-> bytes: msgpack through the protocol's strict converter.

How this part works: the state converter is a copy of `twin.protocol`'s one converter (same
strict scalars, enums and ordered sets), with two additions. Fields equal to their default
are left out, so an untouched car is a few dozen bytes and loads back sharing the model's
default objects. Any `Message` inside a state (a person's inbox, the desk's calls) is written
as `{"type": tag, "body": ...}` by the protocol's own `unstructure_body` / `structure_body`, so
a stored message is exactly what travels on the wire. Decoding is strict too: a field this
code does not know is an error, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Final

import cattrs
import msgpack

from ..model import OperatorState, UserState, VehicleState
from ..protocol import Message, structure_body, unstructure_body
from ..protocol._codec import converter as _protocol_converter
from ._errors import StoreError

__all__ = ["KINDS", "check_kind", "decode_stored", "kind_of", "state_from_bytes", "state_from_plain", "state_to_bytes", "state_to_plain"]

#: The kinds of actor state the store keeps, and the class each is rebuilt as.
KINDS: Final[dict[str, type]] = {"vehicle": VehicleState, "user": UserState, "operator": OperatorState}


def _is_message(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, Message)


def _unstructure_message(msg: Message) -> dict[str, Any]:
    return {"type": msg.TYPE, "body": unstructure_body(msg)}


def _structure_message(data: Any, cls: type[Message]) -> Message:
    if not isinstance(data, dict) or set(data) != {"type", "body"}:
        raise TypeError(f"a stored message is a map of 'type' and 'body', got {data!r:.80}")
    msg = structure_body(data["type"], data["body"])
    if not isinstance(msg, cls):
        raise TypeError(f"expected a {cls.__name__} message, got {msg.TYPE!r}")
    return msg


def _make_converter() -> cattrs.Converter:
    conv = _protocol_converter.copy(omit_if_default=True)
    conv.register_unstructure_hook_func(_is_message, _unstructure_message)
    conv.register_structure_hook_func(_is_message, _structure_message)
    return conv


_converter: Final = _make_converter()


def _class_of(kind: str) -> type:
    cls = KINDS.get(kind)
    if cls is None:
        raise StoreError(f"unknown state kind {kind!r}; the store keeps {', '.join(map(repr, KINDS))}")
    return cls


def kind_of(state: object) -> str:
    """The kind under which `state` is stored ("vehicle", "user" or "operator")."""
    for kind, cls in KINDS.items():
        if type(state) is cls:
            return kind
    raise StoreError(f"{type(state).__name__} is not a state the store keeps ({', '.join(c.__name__ for c in KINDS.values())})")


def check_kind(kind: str, state: object) -> type:
    """The class of `kind`, if `state` is exactly of it; else StoreError."""
    cls = _class_of(kind)
    if type(state) is not cls:
        raise StoreError(f"a {kind!r} state must be a {cls.__name__}, got {type(state).__name__}")
    return cls


def state_to_plain(state: object) -> dict[str, Any]:
    """A vehicle, user or operator state as plain msgpack-ready data (defaults left out)."""
    return _converter.unstructure(state, unstructure_as=check_kind(kind_of(state), state))  # type: ignore[no-any-return]


def state_from_plain(kind: str, data: Any) -> object:
    """Rebuild a state of `kind` from plain data as the model's own classes, or raise StoreError."""
    cls = _class_of(kind)
    try:
        return _converter.structure(data, cls)
    except Exception as exc:  # cattrs wraps field errors in groups; messages raise ProtocolError
        raise StoreError(
            f"{kind} state does not fit {cls.__name__} ({_first_error(exc)}); if it was stored by an "
            "older twin, add a default for the new field or a migration in twin/store/_schema.py"
        ) from exc


def state_to_bytes(kind: str, state: object) -> bytes:
    """One actor state as msgpack bytes. `state` must be exactly the class of `kind`."""
    cls = check_kind(kind, state)
    return msgpack.packb(_converter.unstructure(state, unstructure_as=cls), use_bin_type=True)  # type: ignore[no-any-return]


def state_from_bytes(kind: str, data: bytes) -> object:
    """Rebuild a state written by `state_to_bytes` as the model's own classes, or raise StoreError."""
    _class_of(kind)
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise StoreError(f"stored {kind} state is not valid msgpack ({type(exc).__name__}); restore the file from a backup") from None
    return state_from_plain(kind, raw)


def decode_stored(address: str, kind: str | bytes, data: bytes) -> object:
    """`state_from_bytes` for a state read back from an engine: a StoreError names its address."""
    try:
        return state_from_bytes(kind.decode() if isinstance(kind, bytes) else kind, data)
    except (StoreError, UnicodeDecodeError) as exc:
        raise StoreError(f"{address}: {exc.message if isinstance(exc, StoreError) else exc}") from exc


def _first_error(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
