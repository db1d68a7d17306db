"""Messages between actors that are neither app commands nor vehicle events: alerts to people,
sharing and key offers, the operator desk's calls and prompts, and state pushes to apps."""

from __future__ import annotations

from ._base import Message, register
from ._results import Snapshot
from ._values import AlertType, Channel, Position, Role, SharedFunction

N = "notice"


@register("alert", N)
class Alert(Message):
    """One alert on one channel to one account (the car sends one per subscribed pair)."""

    alert: AlertType
    channel: Channel
    car: str
    text: str
    at: float
    position: Position | None = None


@register("state_changed", N)
class StateChanged(Message):
    """Pushed to the apps of accounts allowed to see the car's state when a report changes it."""

    car: str
    snapshot: Snapshot


@register("share_offer", N)
class ShareOffer(Message):
    EXPECTS_REPLY = True

    car: str
    owner: str
    functions: frozenset[SharedFunction]


@register("garage_changed", N)
class GarageChanged(Message):
    """A car entered or left an account's garage, in the given role."""

    car: str
    role: Role
    added: bool


@register("key_offer", N)
class KeyOffer(Message):
    """Car -> holder's phone: store a key for this car (the phone holds keys for at most 4 cars)."""

    EXPECTS_REPLY = True

    car: str
    key_id: int


@register("emergency_call", N)
class EmergencyCall(Message):
    car: str
    cause: str
    at: float
    position: Position | None = None
    delta_v_kmh: float = 0.0
    cabin_answers: bool = False


@register("tracking_start", N)
class TrackingStart(Message):
    car: str
    owner: str
    at: float
    position: Position | None = None


@register("guard_dispatch", N)
class GuardDispatch(Message):
    car: str
    owner: str
    at: float
    position: Position | None = None


@register("cases_close", N)
class CasesClose(Message):
    """Car -> operator desk: the car's contract was cancelled (hand-over step 2), so the desk
    closes its stolen-vehicle tracking and guard for this car; a former owner who had one open
    hears of it once. Sent on every cancel: the desk ignores it when nothing is open."""

    car: str
    at: float


@register("operator_notice", N)
class OperatorNotice(Message):
    """The operator desk tells a person something; `kind` is one of tracking_started,
    guard_dispatched, guard_report, guard_extension_prompt, cases_closed (their tracking and
    guard at the car ended because its contract was cancelled)."""

    car: str
    kind: str
    text: str
    at: float


@register("coverage_changed", N)
class CoverageChanged(Message):
    """Hub -> car: the car's vehicle link attached (`online`) or is gone. Only the hub sends it;
    a simulated car ignores it, a linked car's actuations are refused while it is offline."""

    online: bool
