"""Money in: the trial credit at sign-up, admin grants (fiat received elsewhere) and crypto top-ups.

Each credit is one ledger transaction with a unique reference, so a replayed grant request or a chain event read
twice credits once: `trial:<account>`, `grant:<idempotency>`, `deposit:<tx hash>:<log index>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bentos.billing.ledger import Funding, Posted, Posting, caller_book, post


@dataclass(frozen=True)
class Credit:
    account_id: str
    amount: int
    source: Funding
    reference: str
    memo: str = ""


def credit_in(session: Session, credit: Credit) -> Posted:
    """Add `credit.amount` to the account's balance (in the caller's transaction); idempotent by reference."""
    if credit.amount <= 0:
        raise ValueError("a credit must be a positive amount")
    return post(
        session,
        credit.reference,
        credit.source.removeprefix("funding:"),
        [Posting(credit.source, -credit.amount), Posting(caller_book(credit.account_id), credit.amount)],
        account_id=credit.account_id,
        memo=credit.memo,
    )


def trial_credit(account_id: str, amount: int) -> Credit:
    return Credit(account_id, amount, Funding.TRIAL, f"trial:{account_id}", "trial credit at sign-up")
