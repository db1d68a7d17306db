"""The person's model (`twin.model.USER`): garage, inbox, offers and the phone's 4-car key limit."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, new_user
from twin.protocol import (
    Alert,
    AlertType,
    Channel,
    Done,
    Envelope,
    Error,
    GarageChanged,
    KeyOffer,
    Ok,
    OperatorNotice,
    Role,
    ShareOffer,
    SharedFunction,
)

from ._helpers import CAR, EPOCH, USER


def to_bob(body: object, sender: str = CAR, id: int = 0) -> Envelope:
    return Envelope(body, sender=sender, target="user:bob", id=id, ts=EPOCH)  # type: ignore[arg-type]


def test_alerts_are_kept_and_forwarded_to_the_apps() -> None:
    alert = Alert(alert=AlertType.ALARM, channel=Channel.PUSH, car=CAR, text="alarm", at=EPOCH)
    bob, out = USER.step(new_user("bob"), to_bob(alert), EPOCH)
    assert bob.inbox == (alert,)
    assert [(e.target, e.body) for e in out] == [("app:bob", alert)]


def test_the_inbox_is_bounded() -> None:
    bob = new_user("bob")
    for i in range(DEFAULT_CONFIG.inbox_size + 5):
        bob, _ = USER.step(bob, to_bob(OperatorNotice(car=CAR, kind="k", text=str(i), at=EPOCH), sender="operator"), EPOCH)
    assert len(bob.inbox) == DEFAULT_CONFIG.inbox_size
    assert bob.inbox[-1].text == str(DEFAULT_CONFIG.inbox_size + 4)


@pytest.mark.parametrize(
    "env",
    [
        to_bob(ShareOffer(car="car:other", owner="alice", functions=frozenset({SharedFunction.CAR_FINDER}))),  # about another car
        to_bob(KeyOffer(car=CAR, key_id=1), sender="user:mallory"),
        to_bob(GarageChanged(car=CAR, role=Role.OWNER, added=True), sender="user:mallory"),
        to_bob(Alert(alert=AlertType.ALARM, channel=Channel.PUSH, car=CAR, text="fake", at=EPOCH), sender="user:mallory"),
        to_bob(OperatorNotice(car=CAR, kind="x", text="x", at=EPOCH), sender="user:mallory"),
    ],
    ids=["share_offer_for_another_car", "key_offer_from_a_person", "garage_from_a_person", "alert_from_a_person", "notice_from_a_person"],
)
def test_a_person_takes_offers_and_news_only_from_their_source(env: Envelope) -> None:
    bob = new_user("bob")
    after, out = USER.step(bob, env, EPOCH)
    assert after is bob
    ((reply,),) = [out]
    assert isinstance(reply.body, Error) and reply.body.code == Code.NOT_AUTHORIZED.value


def test_a_repeated_key_offer_from_a_car_already_held_is_taken_at_the_limit() -> None:
    bob = new_user("bob")
    for i in range(4):
        bob, out = USER.step(bob, to_bob(KeyOffer(car=f"car:x{i}", key_id=1), sender=f"car:x{i}"), EPOCH)
        assert isinstance(out[0].body, Ok)
    bob, out = USER.step(bob, to_bob(KeyOffer(car="car:x0", key_id=2), sender="car:x0"), EPOCH)
    assert isinstance(out[0].body, Ok) and len(bob.key_cars) == 4


def test_a_key_for_a_car_already_owned_keeps_the_owner_role() -> None:
    bob = new_user("bob")
    for body in (GarageChanged(car=CAR, role=Role.OWNER, added=True), GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=True)):
        bob, _ = USER.step(bob, to_bob(body), EPOCH)
    assert bob.garage == {CAR: Role.OWNER}
    bob, _ = USER.step(bob, to_bob(KeyOffer(car=CAR, key_id=1)), EPOCH)
    bob, _ = USER.step(bob, to_bob(GarageChanged(car=CAR, role=Role.OWNER, added=False)), EPOCH)
    assert bob.garage == {CAR: Role.KEY_HOLDER}  # the key still opens it
    bob, _ = USER.step(bob, to_bob(GarageChanged(car=CAR, role=Role.KEY_HOLDER, added=False)), EPOCH)
    assert bob.garage == {} and bob.key_cars == frozenset()


def test_replies_reaching_a_person_are_never_answered() -> None:
    bob = new_user("bob")
    after, out = USER.step(bob, to_bob(Ok(result=Done())), EPOCH)
    assert after is bob and out == []
