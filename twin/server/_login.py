"""Logging in: the first frame of every connection, and the limits that keep logins cheap.

How this part works: a connection's first frame must be a hello. `hello_password` costs a
scrypt hash (about 50 ms of a core, the same for an unknown e-mail, so that e-mails cannot be
told apart by timing); those run in at most `login_threads` worker threads at once, at most
`login_queue` more wait their turn, and past that a hello gets `overloaded` at once, so a
flood of password logins cannot take the cores that logged-in clients' commands need. Failed
logins are limited three ways: per connection (then it is closed), per e-mail and per client
address within `login_window` seconds (then `login_locked` until the window has passed).
`hello_token` and `hello_vehicle` check a SHA-256 digest, which costs microseconds. A session
speaks as `user:<account>`; a vehicle link as `unit:<id>`, its car's telematics unit.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import trio

from twin.errors import Code, ProtocolError
from twin.protocol import Envelope, HelloPassword, HelloToken, HelloVehicle, decode

from ._conn import CLOSE_POLICY, Conn, Doomed, peek_id

if TYPE_CHECKING:
    from ._hub import Hub


class Logins:
    """The hub's login desk: hellos, and the failure and concurrency limits around them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        cfg = hub.config
        self.limiter = trio.CapacityLimiter(cfg.login_threads)
        self.waiting = 0
        self.failures = 0
        self._by_email: dict[str, deque[float]] = {}
        self._by_peer: dict[str, deque[float]] = {}

    async def hello(self, conn: Conn) -> None:
        """Read frames until `conn` is logged in; raise `Doomed` to close it instead."""
        hub = self.hub
        cfg = hub.config
        while not conn.address:
            frame: bytes | str | None = None
            with trio.move_on_after(cfg.hello_timeout):
                frame = await conn.ws.get_message()
            if frame is None:
                raise Doomed(CLOSE_POLICY, f"no hello within {cfg.hello_timeout} s")
            hub._frames_in += 1
            conn.seen = trio.current_time()
            try:
                env = decode(frame, max_bytes=cfg.max_frame_bytes) if isinstance(frame, bytes) else None
            except ProtocolError as exc:
                conn.error(exc.code, exc.message, peek_id(frame))
                raise Doomed(CLOSE_POLICY, "the first frame must be a hello") from None
            if env is None:
                conn.error(Code.LOGIN_REQUIRED, "log in first: the first frame must be a hello, not a text frame", peek_id(frame))
                raise Doomed(CLOSE_POLICY, "the first frame must be a hello")
            match env.body:
                case HelloPassword(email=email, password=password):
                    await self._password(conn, env, email, password)
                case HelloToken(token=token):
                    await self._token(conn, env, token)
                case HelloVehicle(vehicle_id=vehicle_id, secret=secret):
                    await self._vehicle(conn, env, vehicle_id, secret)
                case _:
                    conn.error(Code.LOGIN_REQUIRED, f"log in first: the first frame must be a hello, not {env.type!r}", env.id)
                    raise Doomed(CLOSE_POLICY, "the first frame must be a hello")

    def _failed(self, conn: Conn, corr: int, message: str, code: Code = Code.BAD_CREDENTIALS) -> None:
        self.failures += 1
        conn.attempts += 1
        conn.error(code, message, corr)
        if conn.attempts >= self.hub.config.login_attempts:
            raise Doomed(CLOSE_POLICY, f"{conn.attempts} failed logins on this connection")

    def _locked(self, table: dict[str, deque[float]], key: str, limit: int, now: float) -> float:
        """Seconds until `key` may try again (0: it may now)."""
        failures = table.get(key)
        if failures is None:
            return 0.0
        window = self.hub.config.login_window
        while failures and failures[0] <= now - window:
            failures.popleft()
        if not failures:
            del table[key]
            return 0.0
        return failures[0] + window - now if len(failures) >= limit else 0.0

    async def _password(self, conn: Conn, env: Envelope, email: str, password: str) -> None:
        cfg = self.hub.config
        key = email.strip().lower()
        now = trio.current_time()
        for table, name, limit in ((self._by_peer, conn.peer, cfg.peer_failures), (self._by_email, key, cfg.email_failures)):
            wait = self._locked(table, name, limit, now)
            if wait:
                who = "this address" if table is self._by_peer else "this e-mail"
                self._failed(conn, env.id, f"too many failed logins from {who}; try again in {math.ceil(wait)} s", Code.LOGIN_LOCKED)
                return
        if self.waiting >= cfg.login_queue:  # not a wrong password: the connection may retry
            conn.error(Code.OVERLOADED, f"{self.waiting} password logins are waiting already; retry in a few seconds (or log in with a token)", env.id)
            return
        self.waiting += 1
        try:
            account = await self.hub.engine.check_password(email, password, limiter=self.limiter)
        finally:
            self.waiting -= 1
        if account is None:
            now = trio.current_time()
            self._by_email.setdefault(key, deque()).append(now)
            self._by_peer.setdefault(conn.peer, deque()).append(now)
            self._failed(conn, env.id, "wrong e-mail or password")
            return
        token = await self.hub.engine.issue_token(account)
        await self.hub._welcome_app(conn, env, account, token)

    async def _token(self, conn: Conn, env: Envelope, token: str) -> None:
        account = await self.hub.engine.account_for_token(token)
        if account is None:
            self._failed(conn, env.id, "unknown or revoked token; log in with e-mail and password")
            return
        await self.hub._welcome_app(conn, env, account, token)

    async def _vehicle(self, conn: Conn, env: Envelope, vehicle_id: str, secret: str) -> None:
        hub = self.hub
        ok = await hub.engine.check_vehicle_secret(vehicle_id, secret)
        if not ok or not await hub._exists("car:" + vehicle_id):
            self._failed(conn, env.id, "unknown vehicle or wrong secret")
            return
        hub._attach_link(conn, vehicle_id, env.id)
