"""The hub's embedded store: one SQLite file (WAL) that makes "nothing lost" true.

What survives a restart: accounts (scrypt-hashed passwords) and session tokens, vehicle link
secrets, the latest state of every actor (cars with their sharing, keys, drivers, settings and
contract; people with their garage and inbox; the operator desk), and each account's pushes
its apps have not acknowledged yet.

When it is durable: every `Store` method that writes has committed to disk
(`synchronous=FULL`) when it returns. States marked on a `StateWriter` are durable when a
later `await flush()` returns, or within about `interval` seconds on their own, or when the
`open_state_writer` block is left.

    store = Store.open("hub.sqlite3")
    async with open_state_writer(store) as writer:
        writer.mark("car:1", "vehicle", state)
        await writer.flush()  # before the command's reply is sent
"""

from ._codec import (
    KINDS as KINDS,
    kind_of as kind_of,
    state_from_bytes as state_from_bytes,
    state_from_plain as state_from_plain,
    state_to_bytes as state_to_bytes,
    state_to_plain as state_to_plain,
)
from ._errors import StoreError as StoreError
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._accounts import normalise_email as normalise_email
from ._store import Store as Store, StoreStatistics as StoreStatistics
from ._writer import StateWriter as StateWriter, WriterStatistics as WriterStatistics, open_state_writer as open_state_writer

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "StateWriter",
    "Store",
    "StoreError",
    "StoreStatistics",
    "WriterStatistics",
    "kind_of",
    "normalise_email",
    "open_state_writer",
    "state_from_bytes",
    "state_from_plain",
    "state_to_bytes",
    "state_to_plain",
]
