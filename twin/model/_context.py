"""What a handler needs besides the state: the request, the time, the config, and an outbox.

Handlers raise `CommandRefused` to refuse; `step` then returns the old state and one `Error`
reply, so a refusal can never leave half a change behind.
"""

from __future__ import annotations

import enum

import attrs

from ..errors import Code, CommandRefused
from ..protocol import (
    Alert,
    AlertType,
    Channel,
    Envelope,
    Message,
    Plan,
    Position,
    SharedFunction,
    StateChanged,
)
from ._state import VehicleState
from .config import DEFAULT_ALERTS, ModelConfig


class Service(enum.Enum):
    """Service groups of the plan table (guide p.8, p.38-39)."""

    SECURITY = "security and remote operation"
    EMERGENCY = "emergency call"
    DIGITAL_KEY = "digital key"
    MY_SETTINGS = "driver profiles and software update"
    NAVI = "operator desk, tracking, guard dispatch and remote climate"
    DASHCAM = "dashcam upload"
    WIFI = "in-car Wi-Fi"
    ANY = "any contract"


@attrs.define(slots=True)
class Ctx:
    """The request being handled and what the handler sends because of it."""

    me: str
    env: Envelope | None
    now: float
    config: ModelConfig
    outbox: list[Envelope] = attrs.field(factory=list)

    @property
    def request(self) -> Envelope:
        """The message being handled (only timers run without one, and they do not ask)."""
        assert self.env is not None, "a handler of a message always has its envelope"
        return self.env

    @property
    def account(self) -> str | None:
        """The sender's account when a person sent the message, else None."""
        if self.env is None:
            return None
        sender = self.env.sender
        return sender[5:] if sender.startswith("user:") else None

    def send(self, target: str, body: Message, corr: int = 0) -> None:
        self.outbox.append(Envelope(body, sender=self.me, target=target, id=corr, ts=self.now))


def refuse(code: Code, message: str) -> CommandRefused:
    return CommandRefused(message, code)


def require_service(state: VehicleState, service: Service) -> None:
    """Refuse unless the car's contract includes `service` (and the car is equipped for it)."""
    c = state.contract
    if c.plan is None:
        raise refuse(Code.NOT_IN_PLAN, "this car has no active contract; sign up for a plan first")
    if service is Service.ANY or service is Service.SECURITY or service is Service.EMERGENCY or service is Service.MY_SETTINGS:
        return
    lite = c.plan is Plan.LITE
    if service is Service.NAVI:
        if not lite and not c.navi_package:
            raise refuse(Code.NOT_IN_PLAN, f"{service.value} needs the navi package on the Standard plan")
    elif service is Service.DIGITAL_KEY:
        if lite:
            raise refuse(Code.NOT_IN_PLAN, "the digital key is not offered on the Lite plan")
        if not state.info.has_digital_key:
            raise refuse(Code.NOT_EQUIPPED, "this car is not equipped for the digital key")
    elif service is Service.DASHCAM:
        if lite:
            raise refuse(Code.NOT_IN_PLAN, "dashcam upload is not offered on the Lite plan")
        if not state.info.has_dashcam:
            raise refuse(Code.NOT_EQUIPPED, "this car has no dashcam")
        if not c.dashcam:
            raise refuse(Code.OPTION_REQUIRED, "dashcam upload is a monthly option; add it to the contract")
    elif service is Service.WIFI:
        if not c.wifi:
            raise refuse(Code.OPTION_REQUIRED, "in-car Wi-Fi is a monthly option; add it to the contract")


def includes(state: VehicleState, service: Service) -> bool:
    try:
        require_service(state, service)
    except CommandRefused:
        return False
    return True


def share_of(state: VehicleState, account: str | None):  # type: ignore[no-untyped-def]
    for share in state.shares:
        if share.account == account:
            return share
    return None


def can_share(state: VehicleState, account: str | None, function: SharedFunction) -> bool:
    """True for the owner, or an accepted sharee given `function`."""
    if account is None:
        return False
    if account == state.contract.owner:
        return True
    share = share_of(state, account)
    return share is not None and share.accepted and function in share.functions


def require_owner(state: VehicleState, cx: Ctx, what: str) -> str:
    account = cx.account
    if account is None or account != state.contract.owner:
        raise refuse(Code.NOT_AUTHORIZED, f"only the car's owner may {what}")
    return account


def require_function(state: VehicleState, cx: Ctx, function: SharedFunction, what: str) -> str:
    account = cx.account
    if not can_share(state, account, function):
        if share_of(state, account) is not None:
            raise refuse(Code.NOT_AUTHORIZED, f"{function.value} was not shared with you; ask the owner to {what} or to share it")
        raise refuse(Code.NOT_AUTHORIZED, f"you may not {what} on this car: you are neither its owner nor a sharee with {function.value}")
    return account  # type: ignore[return-value]


def members(state: VehicleState) -> list[str]:
    """The owner then the accepted sharees: who may receive the car's alerts."""
    out = [state.contract.owner] if state.contract.owner else []
    out.extend(s.account for s in state.shares if s.accepted)
    return out


def prefs_of(state: VehicleState, account: str) -> frozenset[tuple[AlertType, Channel]]:
    return state.alert_prefs.get(account, DEFAULT_ALERTS)


def alert(
    state: VehicleState,
    cx: Ctx,
    kind: AlertType,
    text: str,
    *,
    position: Position | None = None,
    recipients: list[str] | None = None,
) -> None:
    """Send one `Alert` per subscribed recipient and channel (owner and sharees by default)."""
    for account in members(state) if recipients is None else recipients:
        enabled = prefs_of(state, account)
        for channel in Channel:
            if (kind, channel) in enabled:
                cx.send("user:" + account, Alert(alert=kind, channel=channel, car=state.address, text=text, at=cx.now, position=position))


def push_state(state: VehicleState, cx: Ctx, snapshot: object) -> None:
    """Push the new snapshot to the apps of everyone allowed a remote check."""
    for account in members(state):
        if can_share(state, account, SharedFunction.REMOTE_CHECK):
            cx.send("app:" + account, StateChanged(car=state.address, snapshot=snapshot))  # type: ignore[arg-type]
