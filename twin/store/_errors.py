"""The store's errors: the database cannot be used as it is, or its server cannot be reached."""

from __future__ import annotations

from ..errors import Code, TwinError

__all__ = ["StoreError", "StoreUnavailable"]


class StoreError(TwinError):
    """The database cannot be opened, read or written, or holds a state this code cannot rebuild.

    Nothing was changed by the call that raised it. The message names the file or the address
    and says what to do (restore a backup, upgrade `twin`, write a migration).
    """

    default_code = Code.INTERNAL


class StoreUnavailable(StoreError):
    """The engine's server (Redis) cannot be reached, or stopped answering within its timeout.

    A read did not happen. A write was not applied if the connection could not be made; if it
    broke after the request was sent, the write may have been applied (the server decides):
    retrying `save_states`, `ack` or a vehicle secret is safe, an `enqueue_many` may repeat.
    """
