"""The trust boundary: every frame a logged-in client sends is checked here, and only here.

The rule, as docs/protocol.md states it: the hub trusts no client. An app session speaks as
`user:<account>` and may send only commands, addressed to a car (`car:<id>`) or to the
operator desk (`operator`), and `ack`s of its own pushes. A vehicle link speaks as
`unit:<id>`, its car's telematics unit, and may send only events about its own car and
answers to the actuations that car's twin sent it, under those actuations' ids; its `error`
answers reach the twin as `actuation_failed` with at most 200 characters of its words.
Nobody may claim another sender, address another account's apps or queue, or answer a
request that was not put to them. Whatever a client may send is re-stamped with its
authenticated address and the hub's time; whatever it may not is refused with a typed error
to that client and changes nothing.
"""

from __future__ import annotations

from twin.errors import Code, TwinError
from twin.protocol import Ack, Envelope, Error, Ok

__all__ = ["Untrusted", "app_frame", "link_frame"]

#: how much of a link's own words reach its twin (and from there the app)
UNIT_TEXT = 200
#: the only non-car target an app may command
OPERATOR = "operator"


class Untrusted(TwinError):
    """A frame its sender may not send; answered with this code and message, nothing else done."""

    default_code = Code.NOT_AUTHORIZED


def _speaks_as(env: Envelope, address: str) -> None:
    if env.sender and env.sender != address:
        raise Untrusted(f"this connection speaks as {address}, not {env.sender!r}; leave 'from' empty")


def app_frame(address: str, env: Envelope, now: float) -> Envelope:
    """What the app session at `address` may send: a command to a car or the desk, or an ack."""
    _speaks_as(env, address)
    body = env.body
    kind = body.KIND
    if kind == "command":
        target = env.target
        if not (target.startswith("car:") or target == OPERATOR):
            raise Untrusted(f"commands go to car:<id> or {OPERATOR}, not to {target!r}")
        return Envelope(body, sender=address, target=target, id=env.id, ts=now)
    if type(body) is Ack:
        return env
    if kind == "session":
        raise Untrusted(f"already logged in as {address}", Code.ALREADY_LOGGED_IN)
    raise Untrusted(f"apps send commands (to car:<id> or {OPERATOR}) and acks, not {kind} messages like {body.TYPE!r}")


def link_frame(address: str, car: str, asked: dict[int, None], env: Envelope, now: float) -> Envelope:
    """What the link at `address` (the unit of `car`) may send: an event about its car, or
    the answer to an actuation in `asked` (which it then leaves)."""
    _speaks_as(env, address)
    body = env.body
    kind = body.KIND
    if kind == "session":
        raise Untrusted(f"already linked as {address}", Code.ALREADY_LOGGED_IN)
    if kind not in ("event", "reply"):
        raise Untrusted(f"a vehicle link sends events about its car and answers to actuations, not {kind} messages like {body.TYPE!r}")
    if env.target != car:
        raise Untrusted(f"this link speaks for {car} only: send to {car!r}, not {env.target!r}")
    if kind == "reply":
        if env.id not in asked:
            raise Untrusted(f"no actuation with id {env.id} is waiting for this link's answer", Code.NOT_FOUND)
        del asked[env.id]
        if not isinstance(body, Ok):
            assert isinstance(body, Error)
            body = Error(code=Code.ACTUATION_FAILED.value, message=body.message[:UNIT_TEXT])
    return Envelope(body, sender=address, target=car, id=env.id, ts=now)
