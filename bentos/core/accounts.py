"""Accounts and platform API keys: a key is shown once at sign-up; only its sha256 and a prefix are stored."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from eth_hash.auto import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import credit
from bentos.billing.credit import credit_in
from bentos.core.errors import ErrorCode, PlatformError
from bentos.core.ids import new_id
from bentos.store.models import Account, ApiKey, utcnow


class Role(enum.StrEnum):
    CREATOR = "creator"
    CONSUMER = "consumer"
    ADMIN = "admin"  # never by sign-up


ROLES = tuple(Role)
SIGN_UP_ROLES = (Role.CREATOR, Role.CONSUMER)
NAME_MAX_CHARS = 120
KEY_PREFIX = "vpk_"
# No markup or quoting characters: an address is shown in pages and statements, and real ones never need them.
_EMAIL = re.compile(r"^[^@\s<>\"'`()\[\]\\,;:]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$")
_WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class Caller:
    """The account behind a request: a snapshot, safe to use after the session that read it has closed."""

    id: str
    name: str
    email: str
    role: Role
    payout_wallet: str | None
    created_at: datetime | None
    key_id: str | None = None  # the API key this request came with (spend caps and rate limits are per key)
    deposit_reference: str | None = None

    @classmethod
    def of(cls, account: Account, key_id: str | None = None) -> Caller:
        return cls(
            account.id,
            account.name,
            account.email,
            Role(account.role),
            account.payout_wallet,
            account.created_at,
            key_id,
            account.deposit_reference,
        )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, account: Account | Caller) -> str:
    """Create a new key for `account`; the plaintext is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(id=new_id("key"), account_id=account.id, prefix=key[:12], key_hash=hash_key(key)))
    return key


def sign_up(
    session: Session, name: str, email: str, role: str, payout_wallet: str | None
) -> tuple[Account, str]:
    name, email = name.strip(), email.strip().lower()
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        raise PlatformError(ErrorCode.INVALID_NAME, f"name must be 1–{NAME_MAX_CHARS} characters", 422)
    if not _EMAIL.match(email):
        raise PlatformError(ErrorCode.INVALID_EMAIL, "email is not a valid address", 422)
    if role not in SIGN_UP_ROLES:
        raise PlatformError(ErrorCode.INVALID_ROLE, "role must be 'creator' or 'consumer'", 422)
    if payout_wallet is not None and not _WALLET.match(payout_wallet):
        raise PlatformError(
            ErrorCode.INVALID_WALLET, "payoutWallet must be a 0x-prefixed 20-byte hex address", 422
        )
    if session.scalar(select(Account.id).where(Account.email == email)) is not None:
        raise PlatformError(ErrorCode.EMAIL_TAKEN, "an account with this email already exists", 409)
    account_id = new_id("acc")
    account = Account(
        id=account_id,
        name=name,
        email=email,
        role=role,
        payout_wallet=payout_wallet,
        deposit_reference=deposit_reference(account_id),
    )
    session.add(account)
    key = issue_key(session, account)
    try:
        session.flush()
    except IntegrityError:  # a concurrent sign-up with the same email won the race
        raise PlatformError(ErrorCode.EMAIL_TAKEN, "an account with this email already exists", 409) from None
    return account, key


def open_admin(sessions: sessionmaker[Session], name: str, email: str) -> tuple[Caller, str]:
    """An admin account and its first key — only from the operator's command line (scripts/admin.py), never
    through sign-up."""
    with sessions.begin() as session:
        account, key = sign_up(session, name, email, Role.CREATOR, None)
        account.role = Role.ADMIN
        return Caller.of(account), key


def deposit_reference(account_id: str) -> str:
    """The bytes32 a crypto top-up carries to name this account: keccak256 of its id, 0x-hex."""
    return "0x" + keccak(account_id.encode()).hex()


def open_account(
    sessions: sessionmaker[Session],
    name: str,
    email: str,
    role: str,
    payout_wallet: str | None,
    trial_credit: int = 0,
) -> tuple[Caller, str]:
    """Sign up in a transaction of its own → the new account (with its trial credit) and its first API key
    (shown this once)."""
    with sessions.begin() as session:
        account, key = sign_up(session, name, email, role, payout_wallet)
        if trial_credit > 0:
            credit_in(session, credit.trial_credit(account.id, trial_credit))
        return Caller.of(account), key


def authenticate(session: Session, authorization: str | None) -> Caller:
    """Resolve `Authorization: Bearer <key>` to its account, or raise 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise PlatformError(ErrorCode.UNAUTHENTICATED, "send 'Authorization: Bearer <API key>'", 401)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(_bearer(authorization))))
    account = session.get(Account, row.account_id) if row is not None and row.revoked_at is None else None
    if account is None or row is None or account.erased_at is not None:
        raise PlatformError(ErrorCode.INVALID_API_KEY, "the API key is unknown or revoked", 401)
    if account.banned_at is not None:
        raise PlatformError(ErrorCode.ACCOUNT_BANNED, "this account is banned", 403)
    return Caller.of(account, row.id)


def identify(sessions: sessionmaker[Session], authorization: str | None) -> Caller:
    with sessions() as session:
        return authenticate(session, authorization)


def new_key(sessions: sessionmaker[Session], account: Caller) -> str:
    with sessions.begin() as session:
        return issue_key(session, account)


def revoke_key(sessions: sessionmaker[Session], account: Caller, authorization: str) -> None:
    """Revoke the key `authorization` carries, if it is `account`'s; it stops working at once."""
    with sessions.begin() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(_bearer(authorization))))
        if row is not None and row.account_id == account.id:
            row.revoked_at = utcnow()


def _bearer(authorization: str) -> str:
    return authorization[7:].strip()
