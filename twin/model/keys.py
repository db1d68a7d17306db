"""Digital keys: the owner hands out at most 5 per car; a phone holds keys for at most 4 cars
(guide p.19; Standard plan only, equipped cars only).

How this part works: issuing a key offers it to the holder's phone (their user actor), which
knows how many cars it holds keys for; the owner's reply waits for the phone's answer. The
holder may then lock, unlock and start the car with the phone. Deleting the app deletes the key:
the holder gives it up with `KeyRelease` and the owner gets a `digital_key` alert. A key that is
deleted (by the owner or its holder) or whose offer times out is also withdrawn from the phone,
which may have stored it anyway, so the phone's 4-car count never keeps a dead key. Keys must all
be deleted before the contract can be cancelled for a hand-over.
"""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import (
    AlertType,
    Done,
    Error,
    GarageChanged,
    KeyAction,
    KeyInfo,
    KeyIssue,
    KeyList,
    KeyOffer,
    KeyRelease,
    KeyRevoke,
    Keys,
    KeyUse,
    Ok,
    Power,
    Reading,
    Role,
)
from . import drivers, power, security
from ._context import Ctx, Service, alert, refuse, require_owner, require_service
from ._dispatch import on
from ._state import DigitalKey, Pending, VehicleState


def keys(state: VehicleState) -> Keys:
    return Keys(keys=tuple(KeyInfo(key_id=k.key_id, account=k.account, active=k.active) for k in state.keys))


@on(KeyIssue)
def _issue(state: VehicleState, msg: KeyIssue, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "hand out digital keys")
    require_service(state, Service.DIGITAL_KEY)
    if any(k.account == msg.account for k in state.keys):
        raise refuse(Code.CONFLICT, f"{msg.account} already holds a key for this car")
    if len(state.keys) >= cx.config.max_keys_per_car:
        raise refuse(Code.LIMIT_REACHED, f"at most {cx.config.max_keys_per_car} digital keys per car; revoke one first")
    key = DigitalKey(state.next_key_id, msg.account)
    pending = Pending("key", msg.account, cx.request.sender, cx.request.id, cx.now + cx.config.offer_timeout_s, key.key_id)
    cx.send("user:" + msg.account, KeyOffer(car=state.address, key_id=key.key_id), corr=cx.request.id)
    state = attrs.evolve(state, keys=state.keys + (key,), next_key_id=key.key_id + 1, pending=state.pending + (pending,))
    return state, None


def offer_settled(state: VehicleState, pending: Pending, ok: bool, reason: str, cx: Ctx, detail: str = "") -> VehicleState:
    """The holder's phone took the key (ok) or refused it: activate or drop it, answer the owner."""
    state = attrs.evolve(state, pending=tuple(p for p in state.pending if p is not pending))
    if ok:
        state = attrs.evolve(state, keys=tuple(attrs.evolve(k, active=True) if k.key_id == pending.key_id else k for k in state.keys))
        cx.send("user:" + pending.account, GarageChanged(car=state.address, role=Role.KEY_HOLDER, added=True))
        cx.send(pending.requester, Ok(result=keys(state)), corr=pending.request_id)
    else:
        state = attrs.evolve(state, keys=tuple(k for k in state.keys if k.key_id != pending.key_id))
        if reason == Code.TIMEOUT.value:  # the phone may have stored it all the same: free its slot
            cx.send("user:" + pending.account, GarageChanged(car=state.address, role=Role.KEY_HOLDER, added=False))
        cx.send(pending.requester, Error(code=reason or Code.UNKNOWN_TARGET.value, message=f"could not hand a key to {pending.account}: {detail or reason or 'no such account'}"), corr=pending.request_id)
    return state


@on(KeyRevoke)
def _revoke(state: VehicleState, msg: KeyRevoke, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "revoke digital keys")
    key = next((k for k in state.keys if k.key_id == msg.key_id), None)
    if key is None:
        raise refuse(Code.NOT_FOUND, f"no digital key {msg.key_id} on this car")
    state = delete_keys(state, [key], cx)
    return state, keys(state)


@on(KeyRelease)
def _release(state: VehicleState, msg: KeyRelease, cx: Ctx):  # type: ignore[no-untyped-def]
    """The holder gives up their key, active or still on its way to the phone, whatever the
    contract: deleting the app is always possible."""
    account = cx.account
    key = next((k for k in state.keys if k.account == account), None)  # no account (a car, the desk): none
    if key is None:
        raise refuse(Code.NOT_FOUND, "you hold no digital key for this car; only its holder can delete a key from their phone")
    state = delete_keys(state, [key], cx)
    owner = state.contract.owner
    if owner and owner != account:
        alert(state, cx, AlertType.DIGITAL_KEY, f"{account} deleted digital key {key.key_id} from their phone", recipients=[owner])
    return state, Done(detail="digital key deleted from this phone")


def delete_keys(state: VehicleState, doomed: list[DigitalKey], cx: Ctx) -> VehicleState:
    ids = {k.key_id for k in doomed}
    for p in state.pending:
        if p.kind == "key" and p.key_id in ids:
            cx.send(p.requester, Error(code=Code.CONFLICT.value, message=f"the key for {p.account} was deleted before their phone answered"), corr=p.request_id)
    for k in doomed:  # a key still on its way may already sit on the phone: tell it as well
        cx.send("user:" + k.account, GarageChanged(car=state.address, role=Role.KEY_HOLDER, added=False))
    return attrs.evolve(
        state,
        keys=tuple(k for k in state.keys if k.key_id not in ids),
        pending=tuple(p for p in state.pending if not (p.kind == "key" and p.key_id in ids)),
    )


@on(KeyList)
def _list(state: VehicleState, msg: KeyList, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "list the digital keys")
    return state, keys(state)


def holds_key(state: VehicleState, account: str | None) -> bool:
    return account is not None and any(k.account == account and k.active for k in state.keys)


@on(KeyUse)
def _use(state: VehicleState, msg: KeyUse, cx: Ctx):  # type: ignore[no-untyped-def]
    account = cx.account
    if not holds_key(state, account):
        raise refuse(Code.NOT_AUTHORIZED, "this phone holds no digital key for the car")
    require_service(state, Service.DIGITAL_KEY)
    now = cx.now
    if msg.action is KeyAction.START:
        state = power.ignition(state, Power.ON, cx)
    else:
        locking = msg.action is KeyAction.LOCK
        if locking and state.status.open_doors():
            raise refuse(Code.DOOR_OPEN, "not locked: " + ", ".join(d.value for d in state.status.open_doors()) + " open")
        status = attrs.evolve(state.status, locked=Reading(locking, now), alarm_armed=Reading(locking, now))
        state = security.reported(state, cx, status)
        if not locking:
            state = drivers.identify(state, account, cx)  # type: ignore[arg-type]
    return state, Done(detail=f"{msg.action.value} done with the digital key")
