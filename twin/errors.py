"""The project's error tree: one root, typed leaves, stable codes that travel in error replies.

`ProtocolError` means the peer sent bytes or an envelope we cannot accept; `CommandRefused`
means a well-formed command that the vehicle's rules refuse. Both carry a `Code` whose value
is the string put on the wire, and a message that tells the sender what to do about it.
"""

from __future__ import annotations

import enum

__all__ = ["Code", "CommandRefused", "ProtocolError", "TwinError", "DeliveryError"]


class Code(str, enum.Enum):
    """Stable error codes; the value is what an `Error` reply carries on the wire."""

    # bad bytes or envelopes (ProtocolError)
    MALFORMED = "malformed"
    NOT_A_MAP = "not_a_map"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    FRAME_TOO_LARGE = "frame_too_large"
    # refusals by the vehicle rules (CommandRefused)
    NOT_AUTHORIZED = "not_authorized"
    NOT_IN_PLAN = "not_in_plan"
    OPTION_REQUIRED = "option_required"
    NOT_EQUIPPED = "not_equipped"
    LIMIT_REACHED = "limit_reached"
    CLIMATE_CAP_REACHED = "climate_cap_reached"
    DOOR_OPEN = "door_open"
    VEHICLE_IN_USE = "vehicle_in_use"
    NOT_ELIGIBLE = "not_eligible"
    EMERGENCY_UNIT_UNCHECKED = "emergency_unit_unchecked"
    WRONG_ORDER = "wrong_order"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_VALUE = "invalid_value"
    ACTUATION_FAILED = "actuation_failed"  # the car's unit could not carry out an approved command
    # delivery (DeliveryError)
    UNKNOWN_TARGET = "unknown_target"
    OFFLINE = "offline"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"
    INTERNAL = "internal"
    # logging in to the hub (the answer to a hello, or to a frame sent before one)
    LOGIN_REQUIRED = "login_required"
    BAD_CREDENTIALS = "bad_credentials"
    LOGIN_LOCKED = "login_locked"
    ALREADY_LOGGED_IN = "already_logged_in"


class TwinError(Exception):
    """Root of every error `twin` raises on purpose; `code` is stable, `message` is for people."""

    default_code: Code = Code.INTERNAL

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        self.code: Code = code if code is not None else self.default_code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and (self.code, self.message) == (other.code, other.message)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.code, self.message))


class ProtocolError(TwinError, ValueError):
    """The bytes or envelope a peer sent cannot be accepted; nothing was changed."""

    default_code = Code.MALFORMED


class CommandRefused(TwinError):
    """A valid command that the vehicle's rules refuse; the twin's state is left untouched."""

    default_code = Code.NOT_AUTHORIZED


class DeliveryError(TwinError):
    """A message could not reach its target, or its answer did not come back in time."""

    default_code = Code.UNKNOWN_TARGET
