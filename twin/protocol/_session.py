"""Session messages: what a client and the hub say about the connection itself.

A websocket connection to the hub starts with exactly one kind of hello (an app logging in by
password or token, or a car's telematics unit linking with its secret) and the hub's
`welcome`. After that, apps send commands and get `accepted` then one final reply per
command; the hub pushes notices, and a durable push (envelope `seq` > 0) is confirmed by the
app with `ack`. A vehicle link reports its car's events and answers the actuations its twin
sends it; the twin itself lives in the hub.

`accepted` has KIND "progress", not "reply": it never resolves a pending ask.
"""

from __future__ import annotations

import attrs

from ._base import Message, register
from ._values import Role

S = "session"


@register("hello_password", S)
class HelloPassword(Message):
    """First frame of an app session: log in with the account's e-mail and password."""

    email: str
    password: str


@register("hello_token", S)
class HelloToken(Message):
    """First frame of an app session: log in with a token from an earlier `welcome`."""

    token: str


@register("hello_vehicle", S)
class HelloVehicle(Message):
    """First frame of a vehicle link: the car's telematics unit, speaking as `unit:<id>`."""

    vehicle_id: str
    secret: str


@register("welcome", S)
class Welcome(Message):
    """The hub accepted the hello. `address` is who this connection speaks as from now on
    (`user:<account>` or `unit:<id>`); `token` logs the account in again without a password
    (empty for vehicle links); `garage` maps each car address the account sees to its role."""

    address: str
    token: str = ""
    garage: dict[str, Role] = attrs.field(factory=dict)


@register("accepted", "progress")
class Accepted(Message):
    """The hub routed the command with this envelope id to its target; exactly one final
    reply (`ok` or `error`) with the same id follows."""


@register("ack", S)
class Ack(Message):
    """The app has handled every durable push whose envelope `seq` is up to `upto`."""

    upto: int
