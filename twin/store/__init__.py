"""The hub's storage: an embedded SQLite file (WAL) by default, or a Redis server; "nothing lost".

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

Both engines behind one async interface, `Engine` (`open_engine` picks one from its target):

    async with open_engine("redis://127.0.0.1:6379/0") as engine:  # or open_engine("hub.sqlite3")
        seqs = await engine.enqueue_many([("alice@example.com", frame)], keep=1000)
"""

from ._codec import (
    KINDS as KINDS,
    kind_of as kind_of,
    state_from_bytes as state_from_bytes,
    state_from_plain as state_from_plain,
    state_to_bytes as state_to_bytes,
    state_to_plain as state_to_plain,
)
from ._engine import Engine as Engine, as_engine as as_engine, open_engine as open_engine
from ._errors import StoreError as StoreError, StoreUnavailable as StoreUnavailable
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._accounts import normalise_email as normalise_email
from ._store import Store as Store, StoreStatistics as StoreStatistics
from ._sqlite_engine import SqliteEngine as SqliteEngine
from ._writer import StateWriter as StateWriter, WriterStatistics as WriterStatistics, open_state_writer as open_state_writer

__all__ = [
    "KINDS",
    "Engine",
    "RedisEngine",
    "SCHEMA_VERSION",
    "SqliteEngine",
    "StateWriter",
    "Store",
    "StoreError",
    "StoreStatistics",
    "StoreUnavailable",
    "WriterStatistics",
    "as_engine",
    "kind_of",
    "normalise_email",
    "open_engine",
    "open_state_writer",
    "state_from_bytes",
    "state_from_plain",
    "state_to_bytes",
    "state_to_plain",
]


def __getattr__(name: str) -> object:
    # the Redis engine (and coredis) load only when asked for, so a SQLite hub does not pay for them
    if name == "RedisEngine":
        from ._redis import RedisEngine

        return RedisEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
