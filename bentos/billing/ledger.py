"""The double-entry ledger: every money movement is one balanced transaction, appended and never updated.

Books (string names, one per holder and purpose):
    caller:<account>     what an account can spend                     (credit: top-ups, trial, grants)
    hold:<account>       money reserved for calls in flight
    creator:<account>    a creator's earnings not yet paid out
    payout:<account>     earnings in a payout that the chain has not confirmed yet
    paid:<account>       earnings the chain has paid (withdrawable from the contract)
    platform:revenue     the platform's share of each call and clone fee, after the provider's cost
    provider:cost        what the platform owes the provider for calls and clones
    funding:trial | funding:grant | funding:crypto   where credit came from (these run negative)

A transaction's entries sum to zero; its `reference` is unique, so writing the same movement twice (a retried
request, a replayed chain event) is a no-op that returns the first. Balances are derived from the entries; those
read and guarded on every call (caller, hold, payout) are cached in `ledger_balances`, updated in the same
database transaction as the entries they sum.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bentos.store.models import LedgerBalance, LedgerEntry, LedgerTransaction

PLATFORM_REVENUE = "platform:revenue"
PROVIDER_COST = "provider:cost"


class Funding(enum.StrEnum):
    TRIAL = "funding:trial"
    GRANT = "funding:grant"
    CRYPTO = "funding:crypto"


def caller_book(account_id: str) -> str:
    return f"caller:{account_id}"


def hold_book(account_id: str) -> str:
    return f"hold:{account_id}"


def creator_book(account_id: str) -> str:
    return f"creator:{account_id}"


def payout_book(account_id: str) -> str:
    return f"payout:{account_id}"


def paid_book(account_id: str) -> str:
    return f"paid:{account_id}"


class LedgerError(ValueError):
    """A transaction that would not balance, or would take a book that must stay ≥ 0 below zero."""


class InsufficientFunds(LedgerError):
    def __init__(self, book: str, balance: int, needed: int) -> None:
        super().__init__(f"{book} holds {balance}, {needed} needed")
        self.book = book
        self.balance = balance
        self.needed = needed


# Books that are money someone holds: they never go below zero. Funding, provider and revenue books may.
_NON_NEGATIVE = ("caller:", "hold:", "creator:", "payout:")
# Books whose balance is cached (read and guarded on every call). The others — a creator's earnings, platform
# revenue, provider cost, funding — are credited by every call of many callers: a cached row there would be one
# hot row every call locks, so their balance is the sum of their entries, read when needed.
_CACHED = ("caller:", "hold:", "payout:")


def is_cached(book: str) -> bool:
    return book.startswith(_CACHED)


@dataclass(frozen=True)
class Posting:
    book: str
    amount: int  # + increases what the book holds


@dataclass(frozen=True)
class Posted:
    transaction_id: int
    reference: str
    created: bool  # False: the reference had been posted before (nothing was written now)


def post(
    session: Session,
    reference: str,
    kind: str,
    postings: Iterable[Posting],
    *,
    account_id: str | None = None,
    memo: str = "",
) -> Posted:
    """Append one balanced transaction in `session`'s transaction (the caller commits).

    Idempotent by `reference`: a second post of the same reference writes nothing and reports created=False
    (two concurrent first posts: one commits, the other's flush raises IntegrityError).
    Raises InsufficientFunds (and writes nothing) if a caller/hold/creator/payout book would go below zero.
    """
    lines = [p for p in postings if p.amount != 0]
    if sum(p.amount for p in lines) != 0:
        raise LedgerError(f"transaction {reference} does not balance")
    existing = session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.reference == reference))
    if existing is not None:
        return Posted(existing, reference, False)
    # A concurrent post of the same reference fails the unique index at flush (IntegrityError): the caller's
    # transaction rolls back and a retry finds the reference posted.
    txn = LedgerTransaction(reference=reference, kind=kind, account_id=account_id, memo=memo[:500])
    session.add(txn)
    session.flush()
    for line in sorted(lines, key=lambda p: p.book):  # one lock order: no deadlock between two posts
        _apply(session, line)
        session.add(LedgerEntry(transaction_id=txn.id, book=line.book, amount=line.amount))
    session.flush()
    return Posted(txn.id, reference, True)


def _apply(session: Session, line: Posting) -> None:
    """Add `line` to its cached balance; a guarded UPDATE refuses to take a holder's book below zero. An
    uncached holder's book (a creator's earnings, debited only by a settlement, which its caller serialises per
    creator) is checked against the sum of its entries."""
    guarded = line.amount < 0 and line.book.startswith(_NON_NEGATIVE)
    if not is_cached(line.book):
        if guarded:
            balance = derived_balance(session, line.book)
            if balance + line.amount < 0:
                raise InsufficientFunds(line.book, balance, -line.amount)
        return
    _ensure_book(session, line.book)
    statement = update(LedgerBalance).where(LedgerBalance.book == line.book)
    if guarded:
        statement = statement.where(LedgerBalance.balance + line.amount >= 0)
    done = session.execute(statement.values(balance=LedgerBalance.balance + line.amount))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        balance = balance_of(session, line.book)
        raise InsufficientFunds(line.book, balance, -line.amount)


def _ensure_book(session: Session, book: str) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(LedgerBalance).values(book=book, balance=0).on_conflict_do_nothing())


def balance_of(session: Session, book: str) -> int:
    if not is_cached(book):
        return derived_balance(session, book)
    return int(session.scalar(select(LedgerBalance.balance).where(LedgerBalance.book == book)) or 0)


def balances(session: Session, books: Iterable[str]) -> dict[str, int]:
    wanted = list(books)
    cached = [b for b in wanted if is_cached(b)]
    rows = session.execute(
        select(LedgerBalance.book, LedgerBalance.balance).where(LedgerBalance.book.in_(cached))
    )
    found = {book: int(balance) for book, balance in rows}
    return {
        book: found.get(book, 0) if is_cached(book) else derived_balance(session, book) for book in wanted
    }


def derived_balance(session: Session, book: str) -> int:
    """The balance summed from the entries themselves (the cache must always equal it)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.book == book)
    )
    return int(total or 0)


def unbalanced_transactions(session: Session) -> list[int]:
    """Ids of transactions whose entries do not sum to zero (always empty unless someone edited the tables)."""
    rows = session.execute(
        select(LedgerEntry.transaction_id)
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    return [int(r[0]) for r in rows]


def cache_mismatches(session: Session) -> dict[str, tuple[int, int]]:
    """Cached books whose balance differs from the sum of their entries → (cached, derived)."""
    derived = dict(
        session.execute(select(LedgerEntry.book, func.sum(LedgerEntry.amount)).group_by(LedgerEntry.book))
        .tuples()
        .all()
    )
    cached = dict(session.execute(select(LedgerBalance.book, LedgerBalance.balance)).tuples().all())
    return {
        book: (int(cached.get(book, 0)), int(derived.get(book, 0)))
        for book in (set(derived) | set(cached))
        if is_cached(book) and int(cached.get(book, 0)) != int(derived.get(book, 0))
    }


@dataclass(frozen=True)
class EntryLine:
    """One of an account's ledger entries, as the caller sees it."""

    transaction_id: int
    reference: str
    kind: str
    book: str
    amount: int
    memo: str
    created_at: datetime


def entries_of(
    session: Session,
    books: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[EntryLine]:
    query = (
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.book.in_(books))
    )
    if since is not None:
        query = query.where(LedgerTransaction.created_at >= since)
    if until is not None:
        query = query.where(LedgerTransaction.created_at < until)
    query = query.order_by(LedgerTransaction.id.desc(), LedgerEntry.id).limit(limit)
    return [
        EntryLine(t.id, t.reference, t.kind, e.book, int(e.amount), t.memo, t.created_at)
        for e, t in session.execute(query).tuples()
    ]
