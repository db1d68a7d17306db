"""Twin states as plain data (a recorded trace's world), through the store's one state
converter, so a trace's states and the stored ones are the same data.
"""

from __future__ import annotations

from typing import Any

from twin.errors import Code, ProtocolError
from twin.store import KINDS, StoreError, state_from_plain, state_to_plain

__all__ = ["KINDS", "OPERATOR_KIND", "USER_KIND", "VEHICLE_KIND", "from_plain", "to_plain"]

#: state kinds as the store records them
VEHICLE_KIND = "vehicle"
USER_KIND = "user"
OPERATOR_KIND = "operator"


def to_plain(state: Any) -> dict[str, Any]:
    """A vehicle, user or operator state as plain data."""
    return state_to_plain(state)


def from_plain(kind: str, data: Any) -> Any:
    """The state of `kind` built from plain data from a peer, or `ProtocolError`."""
    if kind not in KINDS:
        raise ProtocolError(f"unknown state kind {kind!r}", Code.UNKNOWN_TYPE)
    try:
        return state_from_plain(kind, data)
    except StoreError as exc:
        raise ProtocolError(f"not a valid {kind} state: {exc.message}"[:300], Code.WRONG_TYPE) from None
