"""The store's one error: the database file or a stored state cannot be used as it is."""

from __future__ import annotations

from ..errors import Code, TwinError

__all__ = ["StoreError"]


class StoreError(TwinError):
    """The database cannot be opened, read or written, or holds a state this code cannot rebuild.

    Nothing was changed by the call that raised it. The message names the file or the address
    and says what to do (restore a backup, upgrade `twin`, write a migration).
    """

    default_code = Code.INTERNAL
