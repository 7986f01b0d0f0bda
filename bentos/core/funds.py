"""A caller's money as the API shows it: balances, reservations before provider calls (402 when short), credit
grants and ledger lines. The ledger mechanics live in bentos/billing; this maps them to platform errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds, ledger
from bentos.billing.credit import Credit, credit_in
from bentos.billing.ledger import Funding, InsufficientFunds, caller_book, creator_book, hold_book
from bentos.billing.pricing import PriceBook
from bentos.core.accounts import Caller, Role
from bentos.core.errors import ErrorCode, PlatformError, forbidden, not_found
from bentos.core.ids import new_id
from bentos.store.models import Account

UNIT = "micro"  # every amount is an integer number of micro-units of `currency` (1 CNY = 1,000,000)
GRANT_MAX = 10**12  # ¥1,000,000 in one grant: a typo guard


@dataclass(frozen=True)
class Balance:
    available: int
    reserved: int
    earnings: int  # a creator's earnings not yet in a payout
    currency: str
    unit: str = UNIT


def balance(sessions: sessionmaker[Session], prices: PriceBook, caller: Caller) -> Balance:
    with sessions() as session:
        books = ledger.balances(
            session, [caller_book(caller.id), hold_book(caller.id), creator_book(caller.id)]
        )
    return Balance(
        books[caller_book(caller.id)],
        books[hold_book(caller.id)],
        books[creator_book(caller.id)],
        prices.currency,
    )


def short_of(err: InsufficientFunds, currency: str) -> PlatformError:
    return PlatformError(
        ErrorCode.INSUFFICIENT_BALANCE,
        f"the balance ({err.balance} micro-{currency}) can't pay for this ({err.needed}); top up first",
        402,
        True,  # the same request succeeds after a top-up (an Idempotency-Key is freed, not stored)
        details={"needed": err.needed, "available": err.balance, "currency": currency},
    )


def seconds_to_next_month(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    start = holds.month_start(now)
    following = (start + timedelta(days=32)).replace(day=1)
    return max(1, int((following - now).total_seconds()))


def cap_reached(err: holds.SpendCapReached) -> PlatformError:
    return PlatformError(
        ErrorCode.SPEND_CAP_REACHED,
        f"this API key reached its monthly spend cap ({err.cap} micro-units)",
        429,
        True,
        retry_after=seconds_to_next_month(),
        details={"cap": err.cap, "spent": err.spent, "needed": err.needed},
    )


@contextmanager
def paying(prices: PriceBook) -> Iterator[None]:
    """Turn the ledger's refusals into the errors a caller sees (402 short, 429 over the key's cap)."""
    try:
        yield
    except InsufficientFunds as err:
        raise short_of(err, prices.currency) from None
    except holds.SpendCapReached as err:
        raise cap_reached(err) from None


def reserve(
    sessions: sessionmaker[Session],
    prices: PriceBook,
    caller: Caller,
    purpose: holds.Purpose,
    subject: str,
    amount: int,
) -> holds.Reservation:
    """Hold `amount` of the caller's balance before a provider call (402/429 when it can't be held)."""
    with paying(prices), sessions.begin() as session:
        return holds.reserve_in(
            session,
            hold_id=new_id("hold"),
            account_id=caller.id,
            api_key_id=caller.key_id,
            purpose=purpose,
            subject=subject,
            amount=amount,
            monthly_cap=prices.key_monthly_spend_cap,
        )


STALE_HOLD_S = 15 * 60  # a speech hold lives for one call; one this old belongs to a process that died


def release_stale_holds(sessions: sessionmaker[Session], older_than_s: float = STALE_HOLD_S) -> int:
    """Give back speech holds whose call never settled (the platform was killed mid-call): a call whose
    outcome nobody recorded is not billed. Returns how many were released."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    with sessions() as session:
        stale = holds.stale_holds(session, holds.Purpose.SPEECH, cutoff)
    return sum(holds.release(sessions, hold_id, "the call never finished") for hold_id in stale)


def grant(
    sessions: sessionmaker[Session],
    prices: PriceBook,
    admin: Caller,
    account_id: str,
    amount: int,
    reason: str,
    reference: str,
) -> Balance:
    """An admin credits an account (fiat received elsewhere): `reference` makes a replayed grant a no-op."""
    if admin.role != Role.ADMIN:
        raise forbidden("only admins grant credit")
    if not 0 < amount <= GRANT_MAX:
        raise PlatformError(ErrorCode.INVALID_AMOUNT, f"amount must be 1–{GRANT_MAX} micro-units", 422)
    if not reason.strip():
        raise PlatformError(ErrorCode.INVALID_REQUEST, "a grant needs a reason", 422)
    with sessions.begin() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise not_found(f"account {account_id}")
        credit_in(
            session,
            Credit(
                account_id, amount, Funding.GRANT, f"grant:{reference}", f"{reason.strip()} (by {admin.id})"
            ),
        )
    return balance(sessions, prices, _as_caller(sessions, account_id))


def _as_caller(sessions: sessionmaker[Session], account_id: str) -> Caller:
    with sessions() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise not_found(f"account {account_id}")
        return Caller.of(account)


def account_id_by_email(sessions: sessionmaker[Session], email: str) -> str:
    with sessions() as session:
        found = session.scalar(select(Account.id).where(Account.email == email.strip().lower()))
    if found is None:
        raise not_found(f"account {email}")
    return found


def ledger_lines(
    sessions: sessionmaker[Session],
    caller: Caller,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[ledger.EntryLine]:
    """The caller's own entries (balance, holds, earnings), newest first."""
    books = [caller_book(caller.id), hold_book(caller.id), creator_book(caller.id)]
    with sessions() as session:
        return ledger.entries_of(session, books, since, until, limit)
