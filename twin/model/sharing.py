"""Sharing remote operation with up to 5 accounts (guide p.32-35).

How this part works: the owner invites an account with a set of shared functions; the car
offers the share to that person's actor and answers the owner once the offer has been stored
(or with the reason it could not be). The invitee accepts or declines; an accepted sharee sees
the car in their garage and may use exactly the functions given. Pending and accepted
invitations both count toward the limit, so five acceptances can never become six sharees.
"""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import (
    Done,
    Error,
    GarageChanged,
    Ok,
    Role,
    ShareAccept,
    ShareDecline,
    Sharee,
    ShareInvite,
    ShareList,
    ShareOffer,
    ShareRevoke,
    Sharing,
)
from ._context import Ctx, Service, refuse, require_owner, require_service, share_of
from ._dispatch import on
from ._state import Pending, Share, VehicleState


def sharing(state: VehicleState) -> Sharing:
    return Sharing(sharees=tuple(Sharee(account=s.account, functions=s.functions, accepted=s.accepted) for s in state.shares))


@on(ShareInvite)
def _invite(state: VehicleState, msg: ShareInvite, cx: Ctx):  # type: ignore[no-untyped-def]
    owner = require_owner(state, cx, "share the car")
    require_service(state, Service.SECURITY)
    if msg.account == owner:
        raise refuse(Code.INVALID_VALUE, "the owner cannot share the car with themself")
    if not msg.functions:
        raise refuse(Code.INVALID_VALUE, "share at least one function")
    if share_of(state, msg.account) is not None or any(p.kind == "share" and p.account == msg.account for p in state.pending):
        raise refuse(Code.CONFLICT, f"{msg.account} is already invited or a sharee; revoke first to change the functions")
    if len(state.shares) >= cx.config.max_sharees:  # `shares` holds pending invitations too
        raise refuse(Code.LIMIT_REACHED, f"a car can be shared with at most {cx.config.max_sharees} accounts; revoke one first")
    pending = Pending("share", msg.account, cx.request.sender, cx.request.id, cx.now + cx.config.offer_timeout_s)
    share = Share(msg.account, frozenset(msg.functions))
    cx.send("user:" + msg.account, ShareOffer(car=state.address, owner=owner, functions=share.functions), corr=cx.request.id)
    return attrs.evolve(state, shares=state.shares + (share,), pending=state.pending + (pending,)), None


def offer_settled(state: VehicleState, pending: Pending, ok: bool, reason: str, cx: Ctx, detail: str = "") -> VehicleState:
    """The invitee's phone stored the offer (ok) or could not: answer the owner now.

    An invitee who already accepted evidently got the invitation, whatever the phone says.
    """
    state = attrs.evolve(state, pending=tuple(p for p in state.pending if p is not pending))
    share = share_of(state, pending.account)
    if share is not None and share.accepted:
        ok = True
    if not ok:
        state = attrs.evolve(state, shares=tuple(s for s in state.shares if s.account != pending.account))
        cx.send(pending.requester, Error(code=reason or Code.UNKNOWN_TARGET.value, message=f"could not invite {pending.account}: {detail or reason or 'no such account'}"), corr=pending.request_id)
    else:
        cx.send(pending.requester, Ok(result=sharing(state)), corr=pending.request_id)
    return state


@on(ShareAccept)
def _accept(state: VehicleState, msg: ShareAccept, cx: Ctx):  # type: ignore[no-untyped-def]
    share = share_of(state, cx.account)
    if share is None:
        raise refuse(Code.NOT_FOUND, "you have no invitation to share this car")
    if share.accepted:
        raise refuse(Code.CONFLICT, "you already share this car")
    shares = tuple(attrs.evolve(s, accepted=True) if s is share else s for s in state.shares)
    state = attrs.evolve(state, shares=shares)
    cx.send("user:" + share.account, GarageChanged(car=state.address, role=Role.SHAREE, added=True))
    return state, sharing_for(state, share.account)


def sharing_for(state: VehicleState, account: str) -> Sharing:
    """A sharee sees only their own entry, never the other sharees."""
    return Sharing(sharees=tuple(e for e in sharing(state).sharees if e.account == account))


@on(ShareDecline)
def _decline(state: VehicleState, msg: ShareDecline, cx: Ctx):  # type: ignore[no-untyped-def]
    share = share_of(state, cx.account)
    if share is None or share.accepted:
        raise refuse(Code.NOT_FOUND, "you have no pending invitation for this car")
    state = attrs.evolve(state, shares=tuple(s for s in state.shares if s is not share))
    for p in state.pending:  # declined before the phone's answer came back: it was delivered
        if p.kind == "share" and p.account == share.account:
            state = offer_settled(state, p, True, "", cx)
    return state, Done(detail="invitation declined")


@on(ShareRevoke)
def _revoke(state: VehicleState, msg: ShareRevoke, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "revoke a share")
    share = share_of(state, msg.account)
    if share is None:
        raise refuse(Code.NOT_FOUND, f"{msg.account} does not share this car")
    state = revoke(state, share.account, cx)
    return state, sharing(state)


def revoke(state: VehicleState, account: str, cx: Ctx) -> VehicleState:
    """Remove a sharee (accepted or not) with their alert settings; tell their garage."""
    share = share_of(state, account)
    if share is None:
        return state
    for p in state.pending:
        if p.kind == "share" and p.account == account:
            cx.send(p.requester, Error(code=Code.CONFLICT.value, message=f"the invitation to {account} was withdrawn before their phone answered"), corr=p.request_id)
    prefs = {k: v for k, v in state.alert_prefs.items() if k != account}
    state = attrs.evolve(
        state,
        shares=tuple(s for s in state.shares if s is not share),
        pending=tuple(p for p in state.pending if not (p.kind == "share" and p.account == account)),
        alert_prefs=prefs,
    )
    if share.accepted:
        cx.send("user:" + account, GarageChanged(car=state.address, role=Role.SHAREE, added=False))
    return state


@on(ShareList)
def _list(state: VehicleState, msg: ShareList, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "list the sharees")
    return state, sharing(state)
