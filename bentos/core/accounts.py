"""Accounts and how a request proves whose it is: platform API keys (`vpk_…`, named and scoped, shown once) and
sign-in sessions (`vps_…`, see bentos.core.sessions). Only the sha256 of a key or session token is stored."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_hash.auto import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import credit
from bentos.billing.credit import credit_in
from bentos.core import scopes as scoping
from bentos.core.errors import ErrorCode, PlatformError
from bentos.core.ids import new_id
from bentos.core.passwords import hash_password
from bentos.store.models import Account, ApiKey, utcnow
from bentos.store.session_models import AccountPassword, SignInSession


class Role(enum.StrEnum):
    CREATOR = "creator"
    CONSUMER = "consumer"
    ADMIN = "admin"  # never by sign-up


ROLES = tuple(Role)
SIGN_UP_ROLES = (Role.CREATOR, Role.CONSUMER)
NAME_MAX_CHARS = 120
KEY_PREFIX = "vpk_"
SESSION_PREFIX = "vps_"
KEY_NAME_MAX_CHARS = 60
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
    scopes: str = scoping.LEGACY_FULL  # what this key (or the key a session was opened with) may do
    session_id: str | None = None  # the sign-in session this request came with

    @classmethod
    def of(
        cls,
        account: Account,
        key_id: str | None = None,
        key_scopes: str = scoping.LEGACY_FULL,
        session_id: str | None = None,
    ) -> Caller:
        return cls(
            account.id,
            account.name,
            account.email,
            Role(account.role),
            account.payout_wallet,
            account.created_at,
            key_id,
            account.deposit_reference,
            key_scopes,
            session_id,
        )


@dataclass(frozen=True)
class KeyInfo:
    """An API key as its holder sees it in a list: never the key itself."""

    id: str
    name: str
    prefix: str
    scope: scoping.Scope
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(
    session: Session, account: Account | Caller, name: str = "", scope: scoping.Scope = scoping.Scope.FULL
) -> str:
    """Create a new key for `account`; the plaintext is returned once and never stored."""
    return _issue(session, account, name, scope)[0]


def _issue(
    session: Session, account: Account | Caller, name: str, scope: scoping.Scope
) -> tuple[str, ApiKey]:
    name = name.strip()
    if len(name) > KEY_NAME_MAX_CHARS:
        raise PlatformError(
            ErrorCode.INVALID_NAME, f"a key name has at most {KEY_NAME_MAX_CHARS} characters", 422
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id("key"),
        account_id=account.id,
        prefix=key[:12],
        key_hash=hash_key(key),
        name=name,
        scopes=scoping.LEGACY_FULL if scope is scoping.Scope.FULL else str(scope),
        created_at=utcnow(),
    )
    session.add(row)
    return key, row


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, scoping.parse(row.scopes), row.created_at, row.revoked_at)


def set_password(session: Session, account_id: str, password: str) -> None:
    """Set (or replace) an account's password; `invalid_password` (422) when it is too short or too long."""
    password_hash = hash_password(password)
    row = session.get(AccountPassword, account_id)
    if row is None:
        session.add(AccountPassword(account_id=account_id, password_hash=password_hash))
    else:
        row.password_hash = password_hash


def sign_up(
    session: Session,
    name: str,
    email: str,
    role: str,
    payout_wallet: str | None,
    password: str | None = None,
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
    key = issue_key(session, account, name="first key")
    if password is not None:
        session.flush()  # the account row first: the password row refers to it
        set_password(session, account_id, password)
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
    password: str | None = None,
) -> tuple[Caller, str]:
    """Sign up in a transaction of its own → the new account (with its trial credit and, when given, its
    password) and its first API key (shown this once)."""
    with sessions.begin() as session:
        account, key = sign_up(session, name, email, role, payout_wallet, password)
        if trial_credit > 0:
            credit_in(session, credit.trial_credit(account.id, trial_credit))
        return Caller.of(account), key


def authenticate(session: Session, authorization: str | None) -> Caller:
    """Resolve `Authorization: Bearer <API key or session token>` to its account, or raise 401 (403 banned)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise PlatformError(ErrorCode.UNAUTHENTICATED, "send 'Authorization: Bearer <API key>'", 401)
    token = _bearer(authorization)
    if token.startswith(SESSION_PREFIX):
        return _session_caller(session, token)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(token)))
    account = session.get(Account, row.account_id) if row is not None and row.revoked_at is None else None
    if account is None or row is None or account.erased_at is not None:
        raise PlatformError(ErrorCode.INVALID_API_KEY, "the API key is unknown or revoked", 401)
    _not_banned(account)
    return Caller.of(account, row.id, row.scopes)


def _session_caller(session: Session, token: str) -> Caller:
    row = session.scalar(select(SignInSession).where(SignInSession.token_hash == hash_key(token)))
    live = row is not None and row.revoked_at is None and _aware(row.expires_at) > utcnow()
    if (
        row is not None and live and row.api_key_id is not None
    ):  # opened with a key: ends when the key is revoked
        key = session.get(ApiKey, row.api_key_id)
        live = key is not None and key.revoked_at is None
    account = session.get(Account, row.account_id) if row is not None and live else None
    if account is None or row is None or account.erased_at is not None:
        raise PlatformError(ErrorCode.SESSION_EXPIRED, "this sign-in has ended: sign in again", 401)
    _not_banned(account)
    # A session opened with a key keeps that key's scope, spend cap and rate limit.
    return Caller.of(account, row.api_key_id, row.scopes, row.id)


def _not_banned(account: Account) -> None:
    if account.banned_at is not None:
        raise PlatformError(ErrorCode.ACCOUNT_BANNED, "this account is banned", 403)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def identify(
    sessions: sessionmaker[Session],
    authorization: str | None,
    method: str | None = None,
    path: str | None = None,
) -> Caller:
    """The caller behind `authorization`; with `method` and `path`, also refused (403) what its scope forbids."""
    with sessions() as session:
        who = authenticate(session, authorization)
    if method is not None and path is not None:
        scoping.require(who.scopes, method, path)
    return who


def new_key(
    sessions: sessionmaker[Session], account: Caller, name: str = "", scope: str = scoping.Scope.FULL
) -> tuple[str, KeyInfo]:
    """A new named, scoped key for the caller → (the key, shown this once; what the key list will show)."""
    chosen = scoping.validate(scope)
    if scoping.parse(account.scopes) is not scoping.Scope.FULL:  # never more than the key asking has
        raise PlatformError(ErrorCode.INSUFFICIENT_SCOPE, "only a full-scope key can create keys", 403)
    with sessions.begin() as session:
        key, row = _issue(session, account, name, chosen)
        return key, _info(row)


def list_keys(sessions: sessionmaker[Session], account: Caller) -> list[KeyInfo]:
    """The account's keys, newest first, revoked ones included (marked)."""
    with sessions() as session:
        rows = session.scalars(
            select(ApiKey)
            .where(ApiKey.account_id == account.id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
        return [_info(r) for r in rows]


def revoke_key_by_id(sessions: sessionmaker[Session], account: Caller, key_id: str) -> KeyInfo:
    """Revoke one of the account's keys (again is fine); someone else's key is `not_found`, like a missing one.
    Sessions opened with that key end with it."""
    with sessions.begin() as session:
        row = session.get(ApiKey, key_id)
        if row is None or row.account_id != account.id:
            raise PlatformError(ErrorCode.NOT_FOUND, "no such API key on this account", 404)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _info(row)


def revoke_key(sessions: sessionmaker[Session], account: Caller, authorization: str) -> None:
    """Revoke the key `authorization` carries, if it is `account`'s; it stops working at once."""
    with sessions.begin() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(_bearer(authorization))))
        if row is not None and row.account_id == account.id:
            row.revoked_at = utcnow()


def _bearer(authorization: str) -> str:
    return authorization[7:].strip()
