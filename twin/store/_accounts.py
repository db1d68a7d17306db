"""What every engine agrees on about accounts: the id an email gives, what a new account needs,
how a login is checked, and the refusals, so SQLite and Redis answer alike.

How this part works: an account id is the trimmed, lower-cased email. `new_account` checks
an email and a password and returns (id, salt, key, n, r, p) ready to store; `login_matches`
checks a password against the stored (salt, key, n, r, p), or against a fixed dummy hash when
there is no such account, so a wrong email costs the same scrypt as a wrong password and the
timing does not reveal which accounts exist. Both run scrypt (about 40 ms of CPU): call them
in a worker thread, never on the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..errors import Code, CommandRefused
from ._secrets import SCRYPT_N, SCRYPT_P, SCRYPT_R, hash_password, password_matches

__all__ = ["account_exists", "check_keep", "login_id", "login_matches", "new_account", "no_such_account", "normalise_email"]


def normalise_email(email: str) -> str:
    """The account id of an email: trimmed and lower-cased. Raise CommandRefused if unusable."""
    if not isinstance(email, str):
        raise CommandRefused(f"an email must be a string, got {type(email).__name__}", Code.INVALID_VALUE)
    account = email.strip().lower()
    if not account or any(c.isspace() or not c.isprintable() for c in account) or ":" in account:
        raise CommandRefused(f"{email!r} is not a usable email address (empty, or has spaces, control characters or ':')", Code.INVALID_VALUE)
    return account


def new_account(email: str, password: str) -> tuple[str, bytes, bytes, int, int, int]:
    """(account id, salt, key, n, r, p) for a new account; CommandRefused if unusable. Runs scrypt."""
    account = normalise_email(email)
    if not isinstance(password, str) or not password:
        raise CommandRefused("choose a non-empty password", Code.INVALID_VALUE)
    salt, key = hash_password(password)
    return account, salt, key, SCRYPT_N, SCRYPT_R, SCRYPT_P


def login_id(email: str) -> str:
    """The account id to look up for a login: the normalised email, or "" (no account) if unusable."""
    try:
        return normalise_email(email)
    except CommandRefused:
        return ""


def login_matches(password: str, stored: Sequence[Any] | None) -> bool:
    """Whether `password` fits the stored (salt, key, n, r, p); with None, the same cost, False."""
    if stored is None:
        password_matches(password if isinstance(password, str) else "", *_dummy(), SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    if not isinstance(password, str):
        return False
    salt, key, n, r, p = stored
    return password_matches(password, bytes(salt), bytes(key), int(n), int(r), int(p))


@functools.cache
def _dummy() -> tuple[bytes, bytes]:
    """The salt and key a login for an unknown account is checked against."""
    return hash_password("")


def account_exists(account: str) -> CommandRefused:
    """The refusal of a second account for the same email."""
    return CommandRefused(f"an account for {account} already exists; log in, or use another email", Code.CONFLICT)


def no_such_account(account: str) -> CommandRefused:
    """The refusal of a token for an account that does not exist."""
    return CommandRefused(f"no account {account!r}; create the account first", Code.NOT_FOUND)


def check_keep(keep: int | None) -> None:
    """A push queue bound must be at least one frame (or None: unbounded)."""
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
