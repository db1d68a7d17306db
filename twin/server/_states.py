"""Twin states as plain data (dicts, lists, str, numbers, None) and back.

The hub persists states and ships a linked car's state over the wire in `checkpoint`
messages, both as plain msgpack-ready data. One cattrs converter does both directions; a
message kept inside a state (a person's alert inbox, the operator's calls) travels as
`{"type": tag, "body": {...}}` like on the wire.
"""

from __future__ import annotations

from typing import Any, Callable

import cattrs

from twin.errors import Code, ProtocolError
from twin.model import OperatorState, UserState, VehicleState
from twin.protocol import Message, structure_body, unstructure_body
from twin.protocol._codec import converter as _protocol_converter

__all__ = ["KINDS", "VEHICLE_KIND", "USER_KIND", "OPERATOR_KIND", "to_plain", "from_plain"]

#: state kinds as the store records them
VEHICLE_KIND = "vehicle"  # a car living in the hub process (a fleet actor)

USER_KIND = "user"
OPERATOR_KIND = "operator"

KINDS: dict[str, type] = {
    VEHICLE_KIND: VehicleState,
    USER_KIND: UserState,
    OPERATOR_KIND: OperatorState,
}


def _make() -> cattrs.Converter:
    # the protocol's strict converter, leaving out fields equal to their default (small checkpoints)
    conv = _protocol_converter.copy(omit_if_default=True)
    is_message: Callable[[Any], bool] = lambda t: isinstance(t, type) and issubclass(t, Message)  # noqa: E731
    conv.register_unstructure_hook_func(
        is_message, lambda m: {"type": m.TYPE, "body": unstructure_body(m)}
    )
    conv.register_structure_hook_func(
        is_message, lambda d, _t: structure_body(d["type"], d["body"])
    )
    return conv


_converter = _make()


def to_plain(state: Any) -> dict[str, Any]:
    """A vehicle, user or operator state as plain data."""
    return _converter.unstructure(state)  # type: ignore[no-any-return]


def from_plain(kind: str, data: Any) -> Any:
    """The state of `kind` built from plain data, or `ProtocolError(WRONG_TYPE)`."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ProtocolError(f"unknown state kind {kind!r}", Code.UNKNOWN_TYPE)
    try:
        return _converter.structure(data, cls)
    except Exception as exc:
        raise ProtocolError(f"not a valid {kind} state: {exc!r}"[:300], Code.WRONG_TYPE) from None
