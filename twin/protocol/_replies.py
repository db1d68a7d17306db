"""Replies: exactly one per request, correlated by the request's envelope id."""

from __future__ import annotations

from ._base import Message, register
from ._results import AnyResult

R = "reply"


@register("ok", R)
class Ok(Message):
    result: AnyResult


@register("error", R)
class Error(Message):
    """A refusal or failure with a stable `code` (see `twin.errors.Code`) and a human message."""

    code: str
    message: str
