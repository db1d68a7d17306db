"""Sharing remote operation (SPEC p.32-35): invite, the phone's answer, accept, revoke, 5 at most."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, new_user
from twin.protocol import (
    ALL_SHARED_FUNCTIONS,
    AlertSettingsSet,
    AlertType,
    Channel,
    Done,
    Envelope,
    Error,
    GarageChanged,
    Locate,
    Ok,
    RemoteCheck,
    Role,
    SharedFunction,
    ShareAccept,
    ShareDecline,
    ShareInvite,
    ShareList,
    ShareOffer,
    ShareRevoke,
    Sharing,
)

from ._helpers import (
    CAR,
    EPOCH,
    OWNER,
    USER,
    VEHICLE,
    advance,
    bodies_to,
    car,
    deliver_to_user,
    ok,
    only_reply,
    refused,
    replies,
    send,
    with_sharee,
)

TIMEOUT = DEFAULT_CONFIG.offer_timeout_s
FINDER = frozenset({SharedFunction.CAR_FINDER})


def invite(state, account: str, id: int, now: float = EPOCH, functions=ALL_SHARED_FUNCTIONS):  # type: ignore[no-untyped-def]
    """Send the invitation; return the state and the single offer envelope to the invitee."""
    state, out = send(state, ShareInvite(account=account, functions=frozenset(functions)), OWNER, now, id)
    assert replies(out) == [], "the owner's answer waits for the invitee's phone"
    (offer,) = out
    return state, offer


def test_invite_offer_phone_ok_then_the_owner_gets_one_final_ok() -> None:
    state, offer = invite(car(), "bob", id=21, functions=FINDER)
    assert (offer.sender, offer.target, offer.id) == (CAR, "user:bob", 21)
    assert offer.body == ShareOffer(car=CAR, owner=OWNER, functions=FINDER)
    bob, answer = deliver_to_user(new_user("bob"), offer, EPOCH + 1)
    assert bob.offers == (offer.body,)
    state, out = VEHICLE.step(state, answer, EPOCH + 1)
    (final,) = out
    assert (final.target, final.id) == ("user:alice", 21)
    assert isinstance(final.body, Ok) and isinstance(final.body.result, Sharing)
    ((sharee,),) = [final.body.result.sharees]
    assert (sharee.account, sharee.functions, sharee.accepted) == ("bob", FINDER, False)
    assert state.pending == ()
    # the same answer again is never answered, and changes nothing
    again, out = VEHICLE.step(state, answer, EPOCH + 2)
    assert again is state and out == []
    # no timeout error later either
    _, out = advance(state, EPOCH + 10 * TIMEOUT)
    assert out == []


def test_accept_puts_the_car_in_the_sharees_garage_and_grants_exactly_the_functions() -> None:
    state, offer = invite(car(), "bob", id=21, functions=FINDER)
    bob, answer = deliver_to_user(new_user("bob"), offer, EPOCH)
    state, _ = VEHICLE.step(state, answer, EPOCH)
    refused(state, RemoteCheck(), Code.NOT_AUTHORIZED, "bob")  # not before accepting
    state, result, out = ok(state, ShareAccept(), "bob", EPOCH + 5)
    assert [(s.account, s.accepted) for s in result.sharees] == [("bob", True)]
    (garage,) = bodies_to(out, "bob", GarageChanged)
    assert garage == GarageChanged(car=CAR, role=Role.SHAREE, added=True)
    bob, _ = USER.step(bob, next(e for e in out if isinstance(e.body, GarageChanged)), EPOCH + 5)
    assert bob.garage == {CAR: Role.SHAREE} and bob.offers == ()
    ok(state, Locate(), "bob", EPOCH + 6)
    refused(state, RemoteCheck(), Code.NOT_AUTHORIZED, "bob", EPOCH + 6)
    refused(state, ShareAccept(), Code.CONFLICT, "bob", EPOCH + 7)
    refused(state, ShareDecline(), Code.NOT_FOUND, "bob", EPOCH + 7)


def test_an_unknown_account_comes_back_as_an_error_to_the_owner() -> None:
    state, offer = invite(car(), "ghost", id=22)
    routing_error = offer.reply(Error(code=Code.UNKNOWN_TARGET.value, message="no actor at 'user:ghost'"), EPOCH + 1)
    state, out = VEHICLE.step(state, routing_error, EPOCH + 1)
    (final,) = out
    assert (final.target, final.id) == ("user:alice", 22)
    assert isinstance(final.body, Error) and final.body.code == Code.UNKNOWN_TARGET.value and "ghost" in final.body.message
    assert state.shares == () and state.pending == ()
    _, result, _ = ok(state, ShareList())
    assert result.sharees == ()


def test_an_offer_nobody_answers_times_out_to_the_owner() -> None:
    state, offer = invite(car(), "bob", id=23, now=EPOCH)
    assert VEHICLE.next_deadline(state) == EPOCH + TIMEOUT
    state, out = advance(state, EPOCH + TIMEOUT - 0.001)
    assert out == []
    state, out = advance(state, EPOCH + TIMEOUT)
    (final,) = out
    assert (final.target, final.id, final.ts) == ("user:alice", 23, EPOCH + TIMEOUT)
    assert isinstance(final.body, Error) and final.body.code == Code.TIMEOUT.value
    assert state.shares == () and state.pending == ()
    # a late answer is dropped
    bob, answer = deliver_to_user(new_user("bob"), offer, EPOCH + TIMEOUT + 1)
    late, out = VEHICLE.step(state, answer, EPOCH + TIMEOUT + 1)
    assert late is state and out == []


def test_an_answer_from_someone_else_does_not_settle_the_offer() -> None:
    state, offer = invite(car(), "bob", id=24)
    forged = Envelope(Ok(result=Done()), sender="user:mallory", target=CAR, id=24, ts=EPOCH)
    new, out = VEHICLE.step(state, forged, EPOCH + 1)
    assert new is state and out == []


def test_an_invitee_who_accepted_before_the_phone_answered_keeps_the_share() -> None:
    state, offer = invite(car(), "bob", id=25)
    state, _, _ = ok(state, ShareAccept(), "bob", EPOCH + 1)
    state, out = advance(state, EPOCH + TIMEOUT)
    (final,) = out
    assert isinstance(final.body, Ok) and final.id == 25
    assert [(s.account, s.accepted) for s in state.shares] == [("bob", True)]
    ok(state, RemoteCheck(), "bob", EPOCH + TIMEOUT + 1)


def test_decline_removes_the_invitation() -> None:
    state, offer = invite(car(), "bob", id=26)
    bob, answer = deliver_to_user(new_user("bob"), offer, EPOCH)
    state, _ = VEHICLE.step(state, answer, EPOCH)
    state, result, out = ok(state, ShareDecline(), "bob", EPOCH + 1)
    assert isinstance(result, Done) and state.shares == ()
    assert len(out) == 1
    refused(state, ShareAccept(), Code.NOT_FOUND, "bob", EPOCH + 2)


def test_a_decline_before_the_phone_answered_settles_the_invite_at_once() -> None:
    state, offer = invite(car(), "bob", id=29)
    state, result, out = ok(state, ShareDecline(), "bob", EPOCH + 1, id=3)
    assert isinstance(result, Done)
    (to_owner,) = [e for e in out if e.target == "user:alice"]
    assert to_owner.id == 29 and isinstance(to_owner.body, Ok) and to_owner.body.result.sharees == ()
    assert state.shares == () and state.pending == () and VEHICLE.next_deadline(state) is None
    _, answer = deliver_to_user(new_user("bob"), offer, EPOCH + 2)
    late, out = VEHICLE.step(state, answer, EPOCH + 2)
    assert late is state and out == []


def test_revoke_removes_the_sharee_their_settings_and_their_garage_entry() -> None:
    state = with_sharee(car(), "bob")
    state, _, _ = ok(state, AlertSettingsSet(alert=AlertType.START, channel=Channel.PUSH, enabled=True), "bob")
    state, result, out = ok(state, ShareRevoke(account="bob"), now=EPOCH + 5)
    assert result.sharees == ()
    assert bodies_to(out, "bob", GarageChanged) == [GarageChanged(car=CAR, role=Role.SHAREE, added=False)]
    assert "bob" not in state.alert_prefs
    refused(state, RemoteCheck(), Code.NOT_AUTHORIZED, "bob", EPOCH + 6)
    refused(state, ShareRevoke(account="bob"), Code.NOT_FOUND, now=EPOCH + 6)


def test_revoking_a_pending_invitation_answers_the_waiting_invite() -> None:
    state, offer = invite(car(), "bob", id=27)
    state, result, out = ok(state, ShareRevoke(account="bob"), now=EPOCH + 1, id=28)
    errors = [e for e in out if isinstance(e.body, Error)]
    assert [(e.target, e.id, e.body.code) for e in errors] == [("user:alice", 27, Code.CONFLICT.value)]
    assert result.sharees == () and state.pending == ()
    bob, answer = deliver_to_user(new_user("bob"), offer, EPOCH + 2)
    late, out = VEHICLE.step(state, answer, EPOCH + 2)
    assert late is state and out == []


# --- the limit: at most 5 accounts, pending invitations included


def test_five_invitations_may_wait_at_once_and_the_sixth_is_refused() -> None:
    state = car()
    for i in range(5):
        state, _ = invite(state, f"friend{i}", id=30 + i)
    message = refused(state, ShareInvite(account="friend5"), Code.LIMIT_REACHED, id=40)
    assert "5" in message


def test_accepted_and_pending_sharees_count_together() -> None:
    state = car()
    for i in range(3):
        state = with_sharee(state, f"friend{i}", id=30 + i)
    state, _ = invite(state, "friend3", id=33)
    state, _ = invite(state, "friend4", id=34)
    refused(state, ShareInvite(account="friend5"), Code.LIMIT_REACHED, id=40)
    state, _, _ = ok(state, ShareRevoke(account="friend0"), id=41)
    state, _ = invite(state, "friend5", id=42)
    assert len(state.shares) == 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (ShareInvite(account=OWNER), Code.INVALID_VALUE),
        (ShareInvite(account="zed", functions=frozenset()), Code.INVALID_VALUE),
        (ShareInvite(account="bob"), Code.CONFLICT),  # already a sharee
        (ShareInvite(account="dan"), Code.CONFLICT),  # already invited
        (ShareRevoke(account="zed"), Code.NOT_FOUND),
    ],
)
def test_invitation_mistakes_are_refused(body: object, code: Code) -> None:
    state = with_sharee(car(), "bob")
    state, _ = invite(state, "dan", id=60)
    refused(state, body, code)  # type: ignore[arg-type]


def test_a_sharee_never_sees_the_other_sharees() -> None:
    state = with_sharee(car(), "bob")
    state, _ = invite(state, "dan", id=61)
    refused(state, ShareList(), Code.NOT_AUTHORIZED, "bob")
    state, result, _ = ok(state, ShareAccept(), "dan")
    assert [s.account for s in result.sharees] == ["dan"]
    _, result, _ = ok(state, ShareList())
    assert sorted(s.account for s in result.sharees) == ["bob", "dan"]


def test_the_owners_answer_correlates_with_the_invite_even_when_answers_cross() -> None:
    state, offer_b = invite(car(), "bob", id=71)
    state, offer_d = invite(state, "dan", id=72)
    _, answer_d = deliver_to_user(new_user("dan"), offer_d, EPOCH)
    _, answer_b = deliver_to_user(new_user("bob"), offer_b, EPOCH)
    state, out_d = VEHICLE.step(state, answer_d, EPOCH + 1)
    state, out_b = VEHICLE.step(state, answer_b, EPOCH + 2)
    assert [(e.id, type(e.body)) for e in out_d + out_b] == [(72, Ok), (71, Ok)]
    assert isinstance(only_reply(out_b), Ok)
