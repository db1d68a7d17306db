"""A person's side: their garage (owned, shared and key cars), alert inbox, and phone keys.

How this part works: cars tell a person's actor when a car joins or leaves their garage and
send it alerts and offers; the actor keeps a bounded inbox and forwards everything to the
person's apps at `app:<account>`. The phone holds digital keys for at most 4 cars, so a key
offer past that is refused and the car's owner hears why.
"""

from __future__ import annotations

from typing import Mapping

import attrs

from ..errors import Code
from ..protocol import (
    Alert,
    Done,
    Envelope,
    Error,
    GarageChanged,
    KeyOffer,
    Message,
    Ok,
    OperatorNotice,
    Role,
    ShareOffer,
)
from .config import DEFAULT_CONFIG, ModelConfig

__all__ = ["USER", "UserModel", "UserState", "new_user"]


@attrs.frozen
class UserState:
    account: str
    garage: Mapping[str, Role] = attrs.field(factory=dict)  # car address -> role
    key_cars: frozenset[str] = frozenset()
    offers: tuple[ShareOffer, ...] = ()
    inbox: tuple[Message, ...] = ()

    @property
    def address(self) -> str:
        return "user:" + self.account


def new_user(account: str) -> UserState:
    return UserState(account)


class UserModel:
    """The person's rules as a behaviour for the actor runtime."""

    __slots__ = ("config",)

    def __init__(self, config: ModelConfig = DEFAULT_CONFIG) -> None:
        self.config = config

    def next_deadline(self, state: UserState) -> float | None:
        return None

    def advance(self, state: UserState, now: float) -> tuple[UserState, list[Envelope]]:
        return state, []

    def step(self, state: UserState, env: Envelope, now: float) -> tuple[UserState, list[Envelope]]:
        body = env.body
        out: list[Envelope] = []
        app = "app:" + state.account
        from_car = env.sender.startswith("car:")
        match body:
            case Alert() | OperatorNotice() if from_car or env.sender == "operator":
                state = self._keep(state, body)
            case ShareOffer() if from_car and body.car == env.sender:
                offers = tuple(o for o in state.offers if o.car != body.car) + (body,)
                state = attrs.evolve(self._keep(state, body), offers=offers)
                out.append(env.reply(Ok(result=Done(detail="invitation delivered")), now))
            case KeyOffer() if from_car and body.car == env.sender:
                if body.car not in state.key_cars and len(state.key_cars) >= self.config.max_cars_per_phone:
                    out.append(env.reply(Error(code=Code.LIMIT_REACHED.value, message=f"{state.account}'s phone already holds keys for {self.config.max_cars_per_phone} cars"), now))
                    return state, out
                state = attrs.evolve(state, key_cars=state.key_cars | {body.car})
                out.append(env.reply(Ok(result=Done(detail="key stored on the phone")), now))
            case GarageChanged() if from_car and body.car == env.sender:
                state = self._garage(state, body)
            case _ if body.KIND == "reply":
                return state, out
            case _:
                out.append(env.reply(Error(code=Code.NOT_AUTHORIZED.value, message=f"{state.address} does not take {body.TYPE!r} from {env.sender}"), now))
                return state, out
        out.append(Envelope(body, sender=env.sender, target=app, id=env.id, ts=now))
        return state, out

    def _keep(self, state: UserState, body: Message) -> UserState:
        inbox = (state.inbox + (body,))[-self.config.inbox_size :]
        return attrs.evolve(state, inbox=inbox)

    def _garage(self, state: UserState, change: GarageChanged) -> UserState:
        garage = dict(state.garage)
        key_cars = state.key_cars
        offers = state.offers
        if change.role is Role.KEY_HOLDER:
            if not change.added:
                key_cars = key_cars - {change.car}
            if change.car not in garage or garage[change.car] is Role.KEY_HOLDER:
                if change.added:
                    garage[change.car] = Role.KEY_HOLDER
                else:
                    garage.pop(change.car, None)
        elif change.added:
            garage[change.car] = change.role
            offers = tuple(o for o in offers if o.car != change.car)
        elif garage.get(change.car) is change.role:
            del garage[change.car]
            if change.car in key_cars:
                garage[change.car] = Role.KEY_HOLDER
        return attrs.evolve(state, garage=garage, key_cars=key_cars, offers=offers)


USER = UserModel()
