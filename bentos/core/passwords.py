"""Password hashing for accounts people sign into: argon2id (argon2-cffi's defaults, RFC 9106's second
recommended profile), verified in constant time; the hash carries its salt and parameters."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bentos.core.errors import ErrorCode, PlatformError

MIN_CHARS = 8
MAX_CHARS = 256  # long enough for any passphrase, short enough that hashing it is no denial of service

_HASHER = PasswordHasher()
# Verified when an email has no password (or no account), so a refusal takes as long either way.
_DUMMY_HASH = _HASHER.hash("not a password anyone has")


def check_strength(password: str) -> str:
    """The password as given, or `invalid_password` (422) when it is too short or too long."""
    if not MIN_CHARS <= len(password) <= MAX_CHARS:
        raise PlatformError(
            ErrorCode.INVALID_PASSWORD, f"a password has {MIN_CHARS}–{MAX_CHARS} characters", 422
        )
    if not password.strip():
        raise PlatformError(ErrorCode.INVALID_PASSWORD, "a password cannot be only spaces", 422)
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_strength(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no hash, the same work is done and the answer is False."""
    try:
        return (
            _HASHER.verify(password_hash or _DUMMY_HASH, password[:MAX_CHARS]) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False
