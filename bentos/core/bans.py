"""Admins ban accounts: from the next request on, every key (and session) of a banned account gets 403
`account_banned` (accounts.authenticate reads `banned_at` each time). Lifting a ban is an admin action too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller, Role
from bentos.core.admin_audit import AdminAction, record, require_admin
from bentos.core.errors import ErrorCode, PlatformError, forbidden, not_found
from bentos.store.models import Account, utcnow

REASON_MAX_CHARS = 2_000


@dataclass(frozen=True)
class AccountStanding:
    id: str
    name: str
    email: str
    role: str
    banned_at: datetime | None


def _standing(a: Account) -> AccountStanding:
    return AccountStanding(a.id, a.name, a.email, a.role, a.banned_at)


def set_ban(
    sessions: sessionmaker[Session], admin: Caller, account_id: str, banned: bool, reason: str
) -> AccountStanding:
    """Ban (or lift the ban on) an account; repeating either is a no-op (audited once). Admins can't be banned
    here: another admin's access is the operator's to remove."""
    require_admin(admin)
    reason = reason.strip()
    if banned and not reason:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "a ban needs a reason", 422)
    if len(reason) > REASON_MAX_CHARS:
        raise PlatformError(
            ErrorCode.INVALID_REQUEST, f"reason must be at most {REASON_MAX_CHARS} characters", 422
        )
    with sessions.begin() as session:
        account = session.get(Account, account_id, with_for_update=True)
        if account is None or account.erased_at is not None:
            raise not_found(f"account {account_id}")
        if account.role == Role.ADMIN:
            raise forbidden("admin accounts can't be banned")
        if banned and account.banned_at is None:
            account.banned_at = utcnow()
            record(session, admin, AdminAction.ACCOUNT_BANNED, "account", account.id, {"reason": reason})
        elif not banned and account.banned_at is not None:
            account.banned_at = None
            record(session, admin, AdminAction.ACCOUNT_UNBANNED, "account", account.id, {"reason": reason})
        return _standing(account)


def find_accounts(
    sessions: sessionmaker[Session], admin: Caller, email: str | None = None, banned_only: bool = False
) -> list[AccountStanding]:
    """Accounts by email (exact, case-insensitive), or the banned ones, newest ban first."""
    require_admin(admin)
    stmt = select(Account).where(Account.erased_at.is_(None))
    if email:
        stmt = stmt.where(Account.email == email.strip().lower())
    if banned_only:
        stmt = stmt.where(Account.banned_at.is_not(None)).order_by(Account.banned_at.desc())
    with sessions() as session:
        return [_standing(a) for a in session.scalars(stmt.limit(100))]
