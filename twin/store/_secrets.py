"""Password, token and vehicle-secret hashing: nothing a person or a car types is stored plain.

Passwords are low-entropy, so they get scrypt with a random salt and the cost parameters kept
beside the hash (raising the cost later needs no migration: old rows keep theirs). Session
tokens and vehicle secrets are 256 random bits from `secrets`, so one SHA-256 is enough and
lets the database look them up by hash. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SCRYPT_N", "SCRYPT_P", "SCRYPT_R", "hash_password", "new_secret", "password_matches", "secret_digest"]

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_SECRET_BYTES = 32


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> tuple[bytes, bytes]:
    """(salt, key) for a new password; about 40 ms of CPU, so call it off the event loop."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return salt, _scrypt(password, salt, n, r, p)


def password_matches(password: str, salt: bytes, key: bytes, n: int, r: int, p: int) -> bool:
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES, maxmem=2 * 128 * r * (n + p + 2))


def new_secret() -> str:
    """A fresh URL-safe secret (token or vehicle link secret)."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def secret_digest(secret: str) -> bytes:
    """What is stored for a token or vehicle secret, and how it is looked up."""
    return hashlib.sha256(secret.encode("utf-8")).digest()
