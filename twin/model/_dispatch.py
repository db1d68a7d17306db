"""The handler table: message class -> handler, filled by each feature module's `@on`."""

from __future__ import annotations

from typing import Callable, TypeVar

from ..protocol import Message, Result
from ._context import Ctx
from ._state import VehicleState

Handler = Callable[[VehicleState, Message, Ctx], "tuple[VehicleState, Result | None]"]
HANDLERS: dict[type[Message], Handler] = {}

H = TypeVar("H", bound=Callable[..., object])


def on(*types: type[Message]) -> Callable[[H], H]:
    """Register the decorated function as the handler of each message type."""

    def wrap(fn: H) -> H:
        for t in types:
            if t in HANDLERS:
                raise ValueError(f"{t.__name__} has two handlers")
            HANDLERS[t] = fn  # type: ignore[assignment]
        return fn

    return wrap
