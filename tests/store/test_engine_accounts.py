"""The engine contract, accounts and credentials: every test runs against SQLite and Redis.

Rules for the `test_engine_*` modules: a real SQLite file or a real `redis-server` (the
`target` fixture), nothing mocked; "survives a restart" means closing the engine and opening
`target` again; real time (worker threads, sockets), with an absolute `fail_after` on any
test that waits for something else to happen.
"""

from __future__ import annotations

import pytest
import trio

from twin.errors import Code, CommandRefused
from twin.store import Engine, open_engine

PASSWORD = "correct horse battery staple 4711"


async def test_check_password(engine: Engine) -> None:
    account = await engine.create_account("  Alice@Example.com", PASSWORD)
    assert account == "alice@example.com"
    assert await engine.check_password("ALICE@example.com ", PASSWORD) == account
    assert await engine.check_password(account, PASSWORD + " ") is None
    assert await engine.check_password(account, "") is None
    assert await engine.check_password("nobody@example.com", PASSWORD) is None
    assert await engine.check_password("not an email", PASSWORD) is None
    assert await engine.check_password(account, None) is None  # type: ignore[arg-type]


async def test_duplicate_account_is_a_conflict(engine: Engine) -> None:
    await engine.create_account("alice@example.com", PASSWORD)
    with pytest.raises(CommandRefused) as info:
        await engine.create_account("ALICE@example.com", "another")
    assert info.value.code is Code.CONFLICT
    assert await engine.check_password("alice@example.com", PASSWORD) == "alice@example.com"  # unchanged
    assert await engine.check_password("alice@example.com", "another") is None
    assert await engine.accounts() == ["alice@example.com"]


@pytest.mark.parametrize(("email", "password"), [("", "pw"), ("two words@x", "pw"), ("a:b@x", "pw"), ("ok@x", "")])
async def test_unusable_email_or_password_is_refused(engine: Engine, email: str, password: str) -> None:
    with pytest.raises(CommandRefused) as info:
        await engine.create_account(email, password)
    assert info.value.code is Code.INVALID_VALUE
    assert await engine.accounts() == []


async def test_accounts_lists_every_account_sorted(engine: Engine) -> None:
    for email in ("carol@x.jp", "alice@x.jp", "bob@x.jp", "ärne@x.jp", "Zed@x.jp"):
        await engine.create_account(email, PASSWORD)
    assert await engine.accounts() == sorted(["alice@x.jp", "bob@x.jp", "carol@x.jp", "ärne@x.jp", "zed@x.jp"])


async def test_tokens_survive_a_restart_and_can_be_revoked(target: str) -> None:
    async with open_engine(target) as engine:
        account = await engine.create_account("alice@example.com", PASSWORD)
        first, second = await engine.issue_token(account), await engine.issue_token(account)
        assert first != second and len(first) >= 40
    async with open_engine(target) as engine:
        assert await engine.account_for_token(first) == account
        assert await engine.account_for_token(second) == account
        assert await engine.account_for_token(first[:-1]) is None
        assert await engine.account_for_token("") is None
        assert await engine.account_for_token(None) is None  # type: ignore[arg-type]
        assert await engine.revoke_token(first) is True
        assert await engine.revoke_token(first) is False
        assert await engine.account_for_token(first) is None
        assert await engine.account_for_token(second) == account


async def test_a_token_needs_an_account(engine: Engine) -> None:
    with pytest.raises(CommandRefused) as info:
        await engine.issue_token("ghost@example.com")
    assert info.value.code is Code.NOT_FOUND


async def test_vehicle_secrets(target: str) -> None:
    async with open_engine(target) as engine:
        old = await engine.create_vehicle_secret("vin-1")
        new = await engine.create_vehicle_secret("vin-1")  # re-provisioning replaces the secret
        other = await engine.create_vehicle_secret("vin-2")
    async with open_engine(target) as engine:
        assert await engine.check_vehicle_secret("vin-1", new)
        assert not await engine.check_vehicle_secret("vin-1", old)
        assert not await engine.check_vehicle_secret("vin-1", other)
        assert await engine.check_vehicle_secret("vin-2", other)
        assert not await engine.check_vehicle_secret("vin-3", other)
        assert not await engine.check_vehicle_secret("vin-2", "")
        assert not await engine.check_vehicle_secret("vin-2", None)  # type: ignore[arg-type]


async def _waits_on(limiter: trio.CapacityLimiter, call: object) -> None:
    """`call` (an awaitable factory) queues on `limiter` while it is held, and runs once freed."""
    holder = object()
    await limiter.acquire_on_behalf_of(holder)
    done = trio.Event()

    async def run() -> None:
        await call()  # type: ignore[operator]
        done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            while limiter.statistics().tasks_waiting == 0:  # the scrypt call is parked on our limiter
                await trio.sleep(0.001)
            assert not done.is_set()
            limiter.release_on_behalf_of(holder)
            await done.wait()


async def test_password_hashing_runs_under_the_callers_limiter(engine: Engine) -> None:
    limiter = trio.CapacityLimiter(1)
    await _waits_on(limiter, lambda: engine.create_account("alice@example.com", PASSWORD, limiter=limiter))
    await _waits_on(limiter, lambda: engine.check_password("alice@example.com", PASSWORD, limiter=limiter))
    await _waits_on(limiter, lambda: engine.check_password("nobody@example.com", PASSWORD, limiter=limiter))


async def test_password_hashing_runs_under_the_engines_limiter_by_default(target: str) -> None:
    limiter = trio.CapacityLimiter(1)
    async with open_engine(target, limiter=limiter) as engine:
        await _waits_on(limiter, lambda: engine.create_account("alice@example.com", PASSWORD))
        await _waits_on(limiter, lambda: engine.check_password("alice@example.com", "wrong"))
        assert await engine.check_password("alice@example.com", PASSWORD) == "alice@example.com"


async def test_scrypt_leaves_the_event_loop_free(engine: Engine) -> None:
    """While a password is hashed (tens of ms of CPU), other tasks keep running."""
    ticks = 0
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await trio.sleep(0)
                    ticks += 1

            nursery.start_soon(tick)
            await trio.sleep(0)
            before = ticks
            await engine.create_account("alice@example.com", PASSWORD)
            during = ticks - before
            nursery.cancel_scope.cancel()
    assert during >= 10, during  # on the loop, scrypt would have let through at most a tick or two
