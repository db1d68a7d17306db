"""Accounts, session tokens and vehicle link secrets: hashed, never stored plain, compared safely."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from twin.errors import Code, CommandRefused
from twin.store import Store

PASSWORD = "correct horse battery staple 4711"


def raw_bytes(path: Path) -> bytes:
    """Everything SQLite has on disk for the database: the file and its WAL."""
    return b"".join(p.read_bytes() for p in (path, Path(str(path) + "-wal")) if p.exists())


def test_passwords_are_scrypt_hashed_and_nowhere_in_the_file(db_path: Path) -> None:
    store = Store.open(db_path)
    account = store.create_account("Alice@Example.COM", PASSWORD)
    token = store.issue_token(account)
    secret = store.create_vehicle_secret("vin-123")
    plain = [PASSWORD, token, secret]
    for text in plain:  # while open: main file and WAL
        assert text.encode() not in raw_bytes(db_path)
    store.close()
    for text in plain:  # after the WAL is checkpointed into the file
        assert text.encode() not in raw_bytes(db_path)
    with sqlite3.connect(db_path) as conn:
        salt, key, n, r, p = conn.execute("SELECT salt, key, n, r, p FROM accounts").fetchone()
    assert (n, r, p) == (2**14, 8, 1)
    assert len(salt) == 16 and len(key) == 32


def test_each_account_gets_its_own_salt(store: Store, db_path: Path) -> None:
    store.create_account("a@example.com", PASSWORD)
    store.create_account("b@example.com", PASSWORD)
    with sqlite3.connect(db_path) as conn:
        (s1, k1), (s2, k2) = conn.execute("SELECT salt, key FROM accounts ORDER BY account").fetchall()
    assert s1 != s2 and k1 != k2


def test_check_password(store: Store) -> None:
    account = store.create_account("  Alice@Example.com", PASSWORD)
    assert account == "alice@example.com"
    assert store.check_password("ALICE@example.com ", PASSWORD) == account
    assert store.check_password(account, PASSWORD + " ") is None
    assert store.check_password(account, "") is None
    assert store.check_password("nobody@example.com", PASSWORD) is None
    assert store.check_password("not an email", PASSWORD) is None


def test_duplicate_account_is_a_conflict(store: Store) -> None:
    store.create_account("alice@example.com", PASSWORD)
    with pytest.raises(CommandRefused) as info:
        store.create_account("ALICE@example.com", "another")
    assert info.value.code is Code.CONFLICT
    assert store.check_password("alice@example.com", PASSWORD) == "alice@example.com"  # unchanged
    assert store.accounts() == ["alice@example.com"]


@pytest.mark.parametrize(("email", "password"), [("", "pw"), ("two words@x", "pw"), ("a:b@x", "pw"), ("ok@x", "")])
def test_unusable_email_or_password_is_refused(store: Store, email: str, password: str) -> None:
    with pytest.raises(CommandRefused) as info:
        store.create_account(email, password)
    assert info.value.code is Code.INVALID_VALUE
    assert store.accounts() == []


def test_tokens_survive_a_restart_and_can_be_revoked(db_path: Path) -> None:
    with Store.open(db_path) as store:
        account = store.create_account("alice@example.com", PASSWORD)
        first, second = store.issue_token(account), store.issue_token(account)
        assert first != second and len(first) >= 40
    with Store.open(db_path) as store:
        assert store.account_for_token(first) == account
        assert store.account_for_token(second) == account
        assert store.account_for_token(first[:-1]) is None
        assert store.account_for_token("") is None
        assert store.revoke_token(first) is True
        assert store.revoke_token(first) is False
        assert store.account_for_token(first) is None
        assert store.account_for_token(second) == account


def test_a_token_needs_an_account(store: Store) -> None:
    with pytest.raises(CommandRefused) as info:
        store.issue_token("ghost@example.com")
    assert info.value.code is Code.NOT_FOUND


def test_accounts_lists_every_account_sorted(store: Store) -> None:
    for email in ("carol@x.jp", "alice@x.jp", "bob@x.jp"):
        store.create_account(email, PASSWORD)
    assert store.accounts() == ["alice@x.jp", "bob@x.jp", "carol@x.jp"]


def test_vehicle_secrets(db_path: Path) -> None:
    with Store.open(db_path) as store:
        old = store.create_vehicle_secret("vin-1")
        new = store.create_vehicle_secret("vin-1")  # re-provisioning replaces the secret
        other = store.create_vehicle_secret("vin-2")
    with Store.open(db_path) as store:
        assert store.check_vehicle_secret("vin-1", new)
        assert not store.check_vehicle_secret("vin-1", old)
        assert not store.check_vehicle_secret("vin-1", other)
        assert store.check_vehicle_secret("vin-2", other)
        assert not store.check_vehicle_secret("vin-3", other)
        assert not store.check_vehicle_secret("vin-2", "")
