"""`RedisEngine`: the hub's storage in a Redis server, through `coredis` on trio.

How this part works: every method is one atomic step on the server, so a hub (or, later, many
hub nodes) sees each change completely or not at all. A change that touches one key is one
command; a change that touches several is one Lua script (create an account, issue a token,
enqueue pushes) or one MULTI/EXEC (save or delete states): Redis runs either without
interleaving any other client's command. What is stored is what the SQLite store stores:
scrypt hashes with their parameters (`_accounts.py`), SHA-256 digests of tokens and vehicle
secrets (`_secrets.py`), the msgpack bytes of `_codec.py` for states, read back through the
same strict decoder. scrypt runs in a worker thread under a capacity limiter.

Every key starts with `prefix` (default `twin:`), so several deployments share one server:

    {p}layout                 STRING   layout version of the keys below ("1")
    {p}account:{id}           HASH     salt, key, n, r, p (scrypt), created_at, created_by
    {p}accounts               ZSET     every account id, score 0: sorted by id
    {p}token:{sha256 hex}     STRING   the account id the token was issued to
    {p}vehicle:{vehicle id}   STRING   sha256 digest of the car's link secret
    {p}state:{address}        HASH     kind, data (msgpack, `_codec.py`), saved_at
    {p}states                 ZSET     every stored address, score 0: paged in order
    {p}pushseq:{account}      STRING   the last seq given to the account; never goes down
    {p}push:{account}         STREAM   one entry per queued frame, id "{seq}-0", field f = frame
    {p}pushbatch:{call id}    STRING   the seqs one enqueue_many call got (JSON), kept 5 minutes

A push queue is a stream whose entry ids are the seq numbers, so `undelivered` is one
XRANGE, an ack one `XTRIM MINID upto+1` (which counts what it deleted) and the `keep` bound
one `XTRIM MINID last-keep+1`. The counter is a key of its own, so a queue emptied by acks
(or deleted) never restarts its numbering.

Every step is safe to repeat, and is repeated once when the connection breaks under it (a
pooled connection to a Redis that restarted fails on first use): a state, token or secret is
written again with the same value, an ack trims to the same point, and the two steps that
are not naturally so carry a random id of the call, which a repeat finds (`created_by` of an
account, the `pushbatch` key of an enqueue), so a repeat after a lost reply neither refuses
its own account nor queues its pushes twice. A Redis that still cannot be reached, or does
not answer within `timeout`, raises `StoreUnavailable`.
"""

from __future__ import annotations

import hmac
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final, TypeVar

import coredis
import coredis.exceptions
import coredis.retry
import trio

from ._accounts import account_exists, check_keep, login_id, login_matches, new_account, no_such_account
from ._codec import decode_stored, state_to_bytes
from ._errors import StoreError, StoreUnavailable
from ._secrets import new_secret, secret_digest
from ._store import LOAD_PAGE

__all__ = ["LAYOUT_VERSION", "RedisEngine", "open_redis_engine"]

log = logging.getLogger(__name__)

#: the version of the key layout above; a server holding a newer one is refused
LAYOUT_VERSION: Final = 1
DEFAULT_PREFIX: Final = "twin:"
#: how long (s) an enqueue remembers the seqs it gave, so a repeat after a lost reply returns them
_BATCH_MEMORY_S: Final = 300

_T = TypeVar("_T")

# KEYS: account hash, accounts zset. ARGV: id, salt, key, n, r, p, created_at, the call's id.
# 1 = created (by this call, also when it is repeated), 0 = the account exists.
_CREATE_ACCOUNT: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'created_by') == ARGV[8] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'salt', ARGV[2], 'key', ARGV[3], 'n', ARGV[4], 'r', ARGV[5], 'p', ARGV[6],
           'created_at', ARGV[7], 'created_by', ARGV[8])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""

# KEYS: account hash, token key. ARGV: account id. 1 = issued, 0 = no such account.
_ISSUE_TOKEN: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""

# KEYS: per account i, KEYS[2i-1] its seq counter and KEYS[2i] its stream; last, the call's
# batch key. ARGV[1]: keep (0 = unbounded), ARGV[2]: seconds to remember the batch, then
# (account index, frame) pairs in order.
# Returns the seq of each frame; a repeated call returns the seqs it got the first time.
_ENQUEUE: Final = """
local done = redis.call('GET', KEYS[#KEYS])
if done then return cjson.decode(done) end
local keep = tonumber(ARGV[1])
local seqs, last = {}, {}
for j = 3, #ARGV, 2 do
  local i = tonumber(ARGV[j])
  local seq = redis.call('INCR', KEYS[2 * i - 1])
  redis.call('XADD', KEYS[2 * i], seq .. '-0', 'f', ARGV[j + 1])
  seqs[#seqs + 1] = seq
  last[i] = seq
end
if keep > 0 then
  for i, seq in pairs(last) do
    if seq - keep >= 1 then redis.call('XTRIM', KEYS[2 * i], 'MINID', (seq - keep + 1) .. '-0') end
  end
end
redis.call('SET', KEYS[#KEYS], cjson.encode(seqs), 'EX', ARGV[2])
return seqs
"""


class _Keys:
    """The key names of one deployment (see the layout in the module docstring)."""

    __slots__ = ("accounts", "layout", "prefix", "states")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.layout = prefix + "layout"
        self.accounts = prefix + "accounts"
        self.states = prefix + "states"

    def account(self, account: str) -> str:
        return f"{self.prefix}account:{account}"

    def token(self, token: str) -> str:
        return f"{self.prefix}token:{secret_digest(token).hex()}"

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}vehicle:{vehicle_id}"

    def state(self, address: str) -> str:
        return f"{self.prefix}state:{address}"

    def push_seq(self, account: str) -> str:
        return f"{self.prefix}pushseq:{account}"

    def push(self, account: str) -> str:
        return f"{self.prefix}push:{account}"

    def push_batch(self, call: str) -> str:
        return f"{self.prefix}pushbatch:{call}"


class RedisEngine:
    """An `Engine` in one Redis database. Open with `open_engine("redis://HOST:PORT/DB")`."""

    def __init__(self, client: coredis.Redis[bytes], where: str, prefix: str, limiter: trio.CapacityLimiter) -> None:
        self._client = client
        self.where = where
        self.prefix = prefix
        self._keys = _Keys(prefix)
        self._limiter = limiter
        self._create_account = client.register_script(_CREATE_ACCOUNT)
        self._issue_token = client.register_script(_ISSUE_TOKEN)
        self._enqueue = client.register_script(_ENQUEUE)

    def __repr__(self) -> str:
        return f"<RedisEngine {self.where!r} prefix {self.prefix!r}>"

    async def _check_layout(self) -> None:
        """Reach the server, record our layout version on an empty prefix, refuse a newer one."""
        client, layout = self._client, self._keys.layout

        async def mark_and_read() -> bytes | None:
            await client.set(layout, str(LAYOUT_VERSION), condition=coredis.PureToken.NX)
            return await client.get(layout)

        found = await self._call("reach the server", mark_and_read)
        if found is None or not found.isdigit() or int(found) > LAYOUT_VERSION:
            raise StoreError(
                f"{self.where}: the keys under {self.prefix!r} have layout {found!r}, not one this twin knows "
                f"(up to {LAYOUT_VERSION}); upgrade twin, or use another prefix or database"
            )
        try:
            appendonly = (await client.config_get(["appendonly"])).get(b"appendonly")
        except coredis.exceptions.RedisError:  # CONFIG may be disabled on a managed server
            return
        if appendonly != b"yes":
            log.warning("%s runs without appendonly: a crash of Redis loses every change since its last snapshot "
                        "(README, Storage engines, says which setting gives which guarantee)", self.where)

    async def _call(self, doing: str, step: Callable[[], Awaitable[_T]]) -> _T:
        """Run `step` (one atomic step, safe to repeat); once more if the connection broke under
        it (a pooled connection to a Redis that restarted); the client's errors as StoreUnavailable
        (cannot reach, no answer) or StoreError (refused)."""
        for attempt in (1, 2):
            try:
                return await step()
            except coredis.exceptions.ConnectionError as exc:
                if attempt == 1:
                    log.info("%s: connection lost while trying to %s (%s); reconnecting once", self.where, doing, exc)
                    continue
                raise self._unavailable(doing, exc) from exc
            except (TimeoutError, OSError) as exc:
                raise self._unavailable(doing, exc) from exc
            except coredis.exceptions.RedisError as exc:
                raise StoreError(f"cannot {doing}: Redis at {self.where} refused it ({type(exc).__name__}: {exc})") from exc
        raise AssertionError("unreachable")

    def _unavailable(self, doing: str, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot {doing}: Redis at {self.where} is unreachable or did not answer ({type(exc).__name__}: {exc}); "
            "check that redis-server runs there, then retry"
        )

    # --- accounts and tokens

    async def create_account(self, email: str, password: str, *, limiter: trio.CapacityLimiter | None = None) -> str:
        account, salt, key, n, r, p = await trio.to_thread.run_sync(new_account, email, password, limiter=limiter or self._limiter)
        keys = [self._keys.account(account), self._keys.accounts]
        args: list[Any] = [account, salt, key, n, r, p, repr(time.time()), new_secret()]  # the last: this call's own id
        created: Any = await self._call(f"create the account {account}", lambda: self._create_account(keys=keys, args=args))
        if not created:
            raise account_exists(account)
        return account

    async def check_password(self, email: str, password: str, *, limiter: trio.CapacityLimiter | None = None) -> str | None:
        account = login_id(email)
        stored: tuple[Any, ...] | None = None
        if account:
            key = self._keys.account(account)
            found = await self._call("check a password", lambda: self._client.hmget(key, ["salt", "key", "n", "r", "p"]))
            stored = None if None in found else found
        ok = await trio.to_thread.run_sync(login_matches, password, stored, limiter=limiter or self._limiter)
        return account if ok else None

    async def issue_token(self, account: str) -> str:
        token = new_secret()
        keys = [self._keys.account(account), self._keys.token(token)]
        issued: Any = await self._call(f"issue a token for {account}", lambda: self._issue_token(keys=keys, args=[account]))
        if not issued:
            raise no_such_account(account)
        return token

    async def account_for_token(self, token: str) -> str | None:
        if not isinstance(token, str):
            return None
        key = self._keys.token(token)
        found = await self._call("check a token", lambda: self._client.get(key))
        return None if found is None else found.decode()

    async def revoke_token(self, token: str) -> bool:
        key = self._keys.token(token)
        return await self._call("revoke a token", lambda: self._client.delete([key])) > 0

    async def accounts(self) -> list[str]:
        found = await self._call("list the accounts", lambda: self._client.zrange(self._keys.accounts, 0, -1))
        return [a.decode() for a in found]

    # --- vehicle link credentials

    async def create_vehicle_secret(self, vehicle_id: str) -> str:
        secret = new_secret()
        key, digest = self._keys.vehicle(vehicle_id), secret_digest(secret)
        await self._call(f"store the link secret of car {vehicle_id}", lambda: self._client.set(key, digest))
        return secret

    async def check_vehicle_secret(self, vehicle_id: str, secret: str) -> bool:
        if not isinstance(secret, str):
            return False
        key = self._keys.vehicle(vehicle_id)
        digest = await self._call(f"check the link secret of car {vehicle_id}", lambda: self._client.get(key))
        return digest is not None and hmac.compare_digest(digest, secret_digest(secret))

    # --- actor states

    async def save_states(self, states: Mapping[str, tuple[str, object]]) -> None:
        now = repr(time.time())
        encoded = [(address, kind, state_to_bytes(kind, state)) for address, (kind, state) in states.items()]
        if not encoded:
            return

        async def write() -> None:
            async with self._client.pipeline(transaction=True) as tx:
                for address, kind, data in encoded:
                    tx.hset(self._keys.state(address), {"kind": kind, "data": data, "saved_at": now})
                tx.zadd(self._keys.states, {address: 0 for address, _, _ in encoded})

        await self._call(f"save {len(encoded)} actor states", write)

    async def delete_states(self, addresses: Iterable[str]) -> int:
        addresses = list(addresses)
        if not addresses:
            return 0

        async def delete() -> int:
            async with self._client.pipeline(transaction=True) as tx:
                deleted = tx.delete([self._keys.state(a) for a in addresses])
                tx.zrem(self._keys.states, addresses)
            return await deleted

        return await self._call(f"delete {len(addresses)} actor states", delete)

    async def load_state(self, address: str) -> tuple[str, object] | None:
        key = self._keys.state(address)
        kind, data = await self._call(f"load the state of {address}", lambda: self._client.hmget(key, ["kind", "data"]))
        if kind is None or data is None:
            return None
        return kind.decode(errors="replace"), decode_stored(address, kind, data)

    async def load_states(self) -> AsyncIterator[tuple[str, str, object]]:
        after = b"-"
        while True:
            page, rows = await self._call("load actor states", partial(self._load_page, after))
            for raw, (kind, data) in zip(page, rows):
                if kind is not None and data is not None:  # deleted since the page was read
                    address = raw.decode()
                    yield address, kind.decode(errors="replace"), decode_stored(address, kind, data)
            if len(page) < LOAD_PAGE:
                return
            after = b"(" + page[-1]

    async def load_states_where(self, wanted: Callable[[str], bool]) -> AsyncIterator[tuple[str, str, object]]:
        """`load_states`, reading the data of only the addresses `wanted` says yes to (a
        cluster node taking over some shards pages over every address, loads a few)."""
        after = b"-"
        while True:
            page = await self._call("list actor states", partial(
                self._client.zrange, self._keys.states, after, "+", sortby=coredis.PureToken.BYLEX, offset=0, count=LOAD_PAGE))
            mine = [a for a in page if wanted(a.decode())]
            if mine:
                rows = await self._call("load actor states", partial(self._hmget_states, mine))
                for raw, (kind, data) in zip(mine, rows):
                    if kind is not None and data is not None:
                        address = raw.decode()
                        yield address, kind.decode(errors="replace"), decode_stored(address, kind, data)
            if len(page) < LOAD_PAGE:
                return
            after = b"(" + page[-1]

    async def _hmget_states(self, addresses: list[bytes]) -> list[tuple[bytes | None, ...]]:
        async with self._client.pipeline(transaction=False) as batch:
            pending = [batch.hmget(self._keys.state(a.decode()), ["kind", "data"]) for a in addresses]
        return [await p for p in pending]

    async def _load_page(self, after: bytes) -> tuple[tuple[bytes, ...], list[tuple[bytes | None, ...]]]:
        """The next page of addresses past `after`, and the (kind, data) of each."""
        page = await self._client.zrange(self._keys.states, after, "+", sortby=coredis.PureToken.BYLEX, offset=0, count=LOAD_PAGE)
        if not page:
            return page, []
        return page, await self._hmget_states(list(page))

    # --- acknowledged delivery of pushes

    async def enqueue_many(self, items: Iterable[tuple[str, bytes]], *, keep: int | None = None) -> list[int]:
        check_keep(keep)
        index: dict[str, int] = {}
        keys: list[str] = []
        args: list[Any] = [keep or 0, _BATCH_MEMORY_S]
        for account, frame in items:
            if account not in index:
                index[account] = len(index) + 1
                keys += [self._keys.push_seq(account), self._keys.push(account)]
            args += [index[account], bytes(frame)]
        if not index:
            return []
        keys.append(self._keys.push_batch(new_secret()))  # this call's own id: a repeat returns its seqs
        seqs: Any = await self._call(f"queue {(len(args) - 2) // 2} pushes", lambda: self._enqueue(keys=keys, args=args))
        return [int(s) for s in seqs]

    async def undelivered(self, account: str, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        key, start = self._keys.push(account), f"{max(after, 0) + 1}-0"
        entries = await self._call(f"read the pushes queued for {account}", lambda: self._client.xrange(key, start, "+", count=limit))
        return [(_seq_of(e.identifier), _as_bytes(e.field_values[b"f"])) for e in entries]

    async def ack(self, account: str, upto: int) -> int:
        if upto < 1:
            return 0
        key = self._keys.push(account)
        return await self._call(f"acknowledge pushes of {account}", lambda: self._client.xtrim(key, coredis.PureToken.MINID, upto + 1))

    async def last_seq(self, account: str) -> int:
        key = self._keys.push_seq(account)
        found = await self._call(f"read the last seq of {account}", lambda: self._client.get(key))
        return 0 if found is None else int(found)


@asynccontextmanager
async def open_redis_engine(
    url: str, *, prefix: str | None, limiter: trio.CapacityLimiter, connect_timeout: float, timeout: float
) -> AsyncIterator[RedisEngine]:
    """A `RedisEngine` on the server at `url` for the block (see `twin.store.open_engine`)."""
    url, prefix, where = _parse(url, prefix)
    client: coredis.Redis[bytes] = coredis.Redis.from_url(
        url, connect_timeout=connect_timeout, stream_timeout=timeout, retry_policy=coredis.retry.NoRetryPolicy()
    )
    try:
        async with client:
            engine = RedisEngine(client, where, prefix, limiter)
            await engine._check_layout()
            yield engine
    except BaseExceptionGroup as group:
        # the client's connection pool runs a nursery around this block: hand back the one
        # error raised in it as itself, not wrapped in a group
        inner = _single(group)
        if inner is None:
            raise
        raise inner from inner.__cause__


def _seq_of(identifier: str | bytes) -> int:
    """The seq of a push stream entry id "{seq}-0"."""
    return int(_as_bytes(identifier).partition(b"-")[0])


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one leaf exception of a group of nested single-exception groups, else None."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


def _parse(url: str, prefix: str | None) -> tuple[str, str, str]:
    """(url for coredis, key prefix, the url as logs show it: no password, with the prefix)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    given = [v for k, v in query if k == "prefix"]
    if prefix is None:
        prefix = given[-1] if given else DEFAULT_PREFIX
    if not prefix or any(c.isspace() for c in prefix):
        raise ValueError(f"a key prefix must be non-empty and have no spaces, got {prefix!r}")
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "prefix"])
    clean = urllib.parse.urlunsplit(parts._replace(query=rest))
    netloc = parts.netloc.rpartition("@")[2]
    shown = urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=rest))
    return clean, prefix, shown
