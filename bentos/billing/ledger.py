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
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bentos.store.models import LedgerBalance, LedgerEntry, LedgerTransaction, utcnow

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


_TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_BALANCES = cast(Table, LedgerBalance.__table__)


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
    (two concurrent first posts: one writes, the other waits for it on the unique index and finds it posted).
    Raises InsufficientFunds (and writes nothing the caller's rollback doesn't undo) if a caller/hold/creator/
    payout book would go below zero.
    """
    lines = [p for p in postings if p.amount != 0]
    if sum(p.amount for p in lines) != 0:
        raise LedgerError(f"transaction {reference} does not balance")
    session.flush()  # ORM rows the caller added go first, as an autoflush did before these Core statements
    statements = _statements(session)
    # The insert itself tells whether the reference was posted before (no id comes back): no SELECT first.
    transaction_id = session.execute(
        statements.add_transaction,
        {
            "reference": reference,
            "kind": kind,
            "account_id": account_id,
            "memo": memo[:500],
            "created_at": utcnow(),
        },
    ).scalar()
    if transaction_id is None:
        existing = session.execute(_POSTED, {"reference": reference}).scalar_one()
        return Posted(existing, reference, False)
    lines.sort(key=lambda p: p.book)  # one lock order: no deadlock between two posts
    for line in lines:
        _apply(session, statements, line)
    if lines:
        session.execute(
            _ADD_ENTRY,
            [{"transaction_id": transaction_id, "book": p.book, "amount": p.amount} for p in lines],
        )
    return Posted(transaction_id, reference, True)


def _apply(session: Session, statements: _Statements, line: Posting) -> None:
    """Add `line` to its cached balance in one statement; a guarded UPDATE refuses to take a holder's book below
    zero (a book with no row holds 0, so a debit of it matches no row and is refused too). An uncached holder's
    book (a creator's earnings, debited only by a settlement, which its caller serialises per creator) is
    checked against the sum of its entries."""
    guarded = line.amount < 0 and line.book.startswith(_NON_NEGATIVE)
    if not is_cached(line.book):
        if guarded:
            balance = derived_balance(session, line.book)
            if balance + line.amount < 0:
                raise InsufficientFunds(line.book, balance, -line.amount)
        return
    if guarded:
        done = session.execute(_DEBIT, {"b_book": line.book, "b_amount": line.amount})
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise InsufficientFunds(line.book, balance_of(session, line.book), -line.amount)
        return
    session.execute(statements.credit, {"book": line.book, "balance": line.amount})


# The statements a metered call runs, built once: building a Core statement costs several times executing it.
_POSTED = select(_TRANSACTIONS.c.id).where(_TRANSACTIONS.c.reference == bindparam("reference"))
_ADD_ENTRY = insert(_ENTRIES)
_DEBIT = (
    update(_BALANCES)
    .where(
        _BALANCES.c.book == bindparam("b_book"),
        _BALANCES.c.balance + bindparam("b_amount", type_=BigInteger) >= 0,
    )
    .values(balance=_BALANCES.c.balance + bindparam("b_amount", type_=BigInteger))
)


@dataclass(frozen=True)
class _Statements:
    """The dialect's ON CONFLICT statements (PostgreSQL and SQLite spell them alike, from different modules)."""

    add_transaction: Any  # INSERT … ON CONFLICT (reference) DO NOTHING RETURNING id
    credit: Any  # INSERT … ON CONFLICT (book) DO UPDATE SET balance = balance + excluded.balance

    @classmethod
    def of(cls, insert_for: Any) -> _Statements:
        credit = insert_for(_BALANCES)
        return cls(
            insert_for(_TRANSACTIONS)
            .on_conflict_do_nothing(index_elements=[_TRANSACTIONS.c.reference])
            .returning(_TRANSACTIONS.c.id),
            credit.on_conflict_do_update(
                index_elements=[_BALANCES.c.book],
                set_={"balance": _BALANCES.c.balance + credit.excluded.balance},
            ),
        )


_BY_DIALECT = {"postgresql": _Statements.of(pg_insert), "sqlite": _Statements.of(sqlite_insert)}


def _statements(session: Session) -> _Statements:
    return _BY_DIALECT[session.get_bind().dialect.name]


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
