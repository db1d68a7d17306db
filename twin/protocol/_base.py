"""The envelope every message travels in, and the registry of message types by tag.

A message body is a frozen attrs class registered under a short, stable type tag (`lock`,
`door_changed` ...). The envelope carries that body with its routing data: correlation id,
sender and target addresses, a timestamp in POSIX seconds and the protocol version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar, dataclass_transform

import attrs

__all__ = [
    "PROTOCOL_VERSION",
    "Envelope",
    "Message",
    "message_types",
    "register",
]

PROTOCOL_VERSION = 1

_REGISTRY: dict[str, type["Message"]] = {}

M = TypeVar("M", bound=type["Message"])


class Message:
    """Base of every message body; `TYPE` is the tag put on the wire, `KIND` its family."""

    __slots__ = ()
    TYPE: ClassVar[str] = ""
    KIND: ClassVar[str] = ""
    #: Set on non-command messages whose sender still waits for exactly one reply (the offers a
    #: car makes to a person's phone); commands always do. See `twin.actors.is_request`.
    EXPECTS_REPLY: ClassVar[bool] = False
    if TYPE_CHECKING:  # every registered message is an attrs class: `attrs.fields` accepts it
        __attrs_attrs__: ClassVar[Any]


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(attrs.field,))
def register(tag: str, kind: str) -> Callable[[M], M]:
    """Class decorator: make `cls` a frozen, slotted message registered under `tag`."""

    def wrap(cls: M) -> M:
        if tag in _REGISTRY:
            raise ValueError(f"message tag {tag!r} registered twice")
        cls.TYPE = tag
        cls.KIND = kind
        frozen = attrs.frozen(kw_only=True, cache_hash=False)(cls)
        _REGISTRY[tag] = frozen
        return frozen  # type: ignore[return-value]

    return wrap


def message_types() -> dict[str, type[Message]]:
    """Every registered message class by its wire tag (a copy)."""
    return dict(_REGISTRY)


def message_type(tag: str) -> type[Message] | None:
    """The message class registered under `tag`, if any (no copy: the codec's hot path)."""
    return _REGISTRY.get(tag)


def registered_count() -> int:
    """How many message types are registered (a cache key for what is derived from them)."""
    return len(_REGISTRY)


@attrs.frozen
class Envelope:
    """A message with its routing data. `id` correlates a reply with its request; `seq` numbers
    a durable push to an account (0 elsewhere), which the app acknowledges with `ack`."""

    body: Message
    sender: str
    target: str
    id: int = 0
    ts: float = 0.0
    v: int = PROTOCOL_VERSION
    seq: int = 0

    @property
    def type(self) -> str:
        return self.body.TYPE

    def reply(self, body: Message, ts: float) -> "Envelope":
        """The envelope answering this one: same correlation id, addresses swapped."""
        return Envelope(body, sender=self.target, target=self.sender, id=self.id, ts=ts)


def fields_of(cls: type[Message]) -> dict[str, Any]:
    """Field name to annotated type of a message class (for docs and strategies)."""
    return {a.name: a.type for a in attrs.fields(cls)}
