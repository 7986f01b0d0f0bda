"""Accounts and platform API keys: a key is shown once at sign-up; only its sha256 and a prefix are stored."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bentos.core.errors import PlatformError
from bentos.core.ids import new_id
from bentos.store.models import Account, ApiKey, utcnow

ROLES = ("creator", "consumer", "admin")
KEY_PREFIX = "vpk_"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")
_WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, account: Account) -> str:
    """Create a new key for `account`; the plaintext is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(id=new_id("key"), account_id=account.id, prefix=key[:12], key_hash=hash_key(key)))
    return key


def sign_up(
    session: Session, name: str, email: str, role: str, payout_wallet: str | None
) -> tuple[Account, str]:
    name, email = name.strip(), email.strip().lower()
    if not 1 <= len(name) <= 120:
        raise PlatformError("invalid_name", "name must be 1–120 characters", 422)
    if not _EMAIL.match(email):
        raise PlatformError("invalid_email", "email is not a valid address", 422)
    if role not in ("creator", "consumer"):
        raise PlatformError("invalid_role", "role must be 'creator' or 'consumer'", 422)
    if payout_wallet is not None and not _WALLET.match(payout_wallet):
        raise PlatformError("invalid_wallet", "payoutWallet must be a 0x-prefixed 20-byte hex address", 422)
    if session.scalar(select(Account.id).where(Account.email == email)) is not None:
        raise PlatformError("email_taken", "an account with this email already exists", 409)
    account = Account(id=new_id("acc"), name=name, email=email, role=role, payout_wallet=payout_wallet)
    session.add(account)
    key = issue_key(session, account)
    try:
        session.flush()
    except IntegrityError:  # a concurrent sign-up with the same email won the race
        raise PlatformError("email_taken", "an account with this email already exists", 409) from None
    return account, key


def authenticate(session: Session, authorization: str | None) -> Account:
    """Resolve `Authorization: Bearer <key>` to its account, or raise 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise PlatformError("unauthenticated", "send 'Authorization: Bearer <API key>'", 401)
    key = authorization[7:].strip()
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        raise PlatformError("invalid_api_key", "the API key is unknown or revoked", 401)
    account = session.get(Account, row.account_id)
    if account is None:
        raise PlatformError("invalid_api_key", "the API key is unknown or revoked", 401)
    return account


def revoke_key(session: Session, account: Account, authorization: str) -> None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(authorization[7:].strip())))
    if row is not None and row.account_id == account.id:
        row.revoked_at = utcnow()
