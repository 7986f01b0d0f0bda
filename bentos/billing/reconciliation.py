"""Reconciliation: the ledger against itself, the settlements against the ledger, and both against the chain.

Per creator c (x = a settlement's ledger part, w = its wei):
    ledger    paid:c   = Σ x of c's confirmed settlements;   payout:c = Σ x of c's pending ones
    chain     per payout wallet: confirmed wei ≤ Σ CreatorCredited ≤ confirmed + in-flight wei, and the
              contract's balance_of(wallet) = credited − withdrawn
    itself    every transaction balances; every cached balance equals the sum of its entries
A creator whose figures disagree is a mismatch: counted in the gauge, logged with both figures, and /health's
`money` part turns degraded until a later run agrees.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import ledger
from bentos.billing.ledger import paid_book, payout_book
from bentos.chain.outbox import OutboxStatus
from bentos.chain.registry import ChainRegistry
from bentos.store.models import Settlement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreatorMismatch:
    """One disagreement an operator can act on: whose, which figure, what the ledger says, what the chain says."""

    creator_id: str
    what: str  # "paid" | "payout" | "chain_credited" | "chain_balance"
    ledger: int  # paid/payout: the ledger book (micro-units); chain_*: the ledger's settlements in wei
    chain: (
        int  # paid/payout: the settlements the chain confirmed / has in flight; chain_*: the contract (wei)
    )
    wallet: str | None = None


@dataclass
class Reconciliation:
    checked_at: datetime
    creators: int = 0
    mismatches: list[CreatorMismatch] = field(default_factory=list)
    unbalanced_transactions: list[int] = field(default_factory=list)
    cache_mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)
    chain_error: str | None = None

    @property
    def mismatched_creators(self) -> set[str]:
        return {m.creator_id for m in self.mismatches}

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.unbalanced_transactions or self.cache_mismatches)


def reconcile(sessions: sessionmaker[Session], chain: ChainRegistry | None) -> Reconciliation:
    """Compare everything above; `chain=None` checks the ledger side only. Logs one line per mismatch."""
    result = Reconciliation(datetime.now(UTC))
    with sessions() as session:
        result.unbalanced_transactions = ledger.unbalanced_transactions(session)
        result.cache_mismatches = ledger.cache_mismatches(session)
        rows = list(session.scalars(select(Settlement)))
        creators = {s.creator_id for s in rows}
        books = ledger.balances(
            session, [b for c in sorted(creators) for b in (paid_book(c), payout_book(c))]
        )
    result.creators = len(creators)
    paid: dict[str, int] = defaultdict(int)
    in_payout: dict[str, int] = defaultdict(int)
    confirmed_wei: dict[str, int] = defaultdict(int)  # by checksummed-lower wallet
    inflight_wei: dict[str, int] = defaultdict(int)
    wallet_creators: dict[str, set[str]] = defaultdict(set)
    for s in rows:
        wallet = s.payout_wallet.lower()
        if s.status == OutboxStatus.CONFIRMED.value:
            paid[s.creator_id] += s.ledger_amount
            confirmed_wei[wallet] += int(s.wei_amount)
            wallet_creators[wallet].add(s.creator_id)
        elif s.status == OutboxStatus.PENDING.value:
            in_payout[s.creator_id] += s.ledger_amount
            inflight_wei[wallet] += int(s.wei_amount)
            wallet_creators[wallet].add(s.creator_id)
    for creator in sorted(creators):
        if books[paid_book(creator)] != paid[creator]:
            result.mismatches.append(
                CreatorMismatch(creator, "paid", books[paid_book(creator)], paid[creator])
            )
        if books[payout_book(creator)] != in_payout[creator]:
            result.mismatches.append(
                CreatorMismatch(creator, "payout", books[payout_book(creator)], in_payout[creator])
            )
    if chain is not None:
        try:
            _against_chain(chain, confirmed_wei, inflight_wei, wallet_creators, result)
        except Exception as exc:  # the chain being down is the outbox's alarm, not a money mismatch
            result.chain_error = type(exc).__name__
    for m in result.mismatches:
        log.error(
            "reconciliation mismatch: creator %s %s ledger=%d chain=%d wallet=%s",
            m.creator_id,
            m.what,
            m.ledger,
            m.chain,
            m.wallet,
            extra={"creator_id": m.creator_id, "figure": m.what, "ledger": m.ledger, "chain": m.chain},
        )
    if result.unbalanced_transactions or result.cache_mismatches:
        log.error(
            "reconciliation: the ledger is inconsistent: unbalanced transactions %s, cached≠derived books %s",
            result.unbalanced_transactions[:20],
            sorted(result.cache_mismatches)[:20],
        )
    return result


def _against_chain(
    chain: ChainRegistry,
    confirmed_wei: dict[str, int],
    inflight_wei: dict[str, int],
    wallet_creators: dict[str, set[str]],
    result: Reconciliation,
) -> None:
    totals = {wallet.lower(): t for wallet, t in chain.wallet_totals().items()}
    for wallet in sorted(set(wallet_creators) | set(totals)):
        credited = totals[wallet].credited if wallet in totals else 0
        withdrawn = totals[wallet].withdrawn if wallet in totals else 0
        low, high = confirmed_wei[wallet], confirmed_wei[wallet] + inflight_wei[wallet]
        who = sorted(wallet_creators.get(wallet, set())) or [f"(no creator: wallet {wallet})"]
        if not low <= credited <= high:
            for creator in who:
                result.mismatches.append(CreatorMismatch(creator, "chain_credited", low, credited, wallet))
        if wallet in totals:
            balance = chain.balance_of(wallet)
            if balance != credited - withdrawn:
                for creator in who:
                    result.mismatches.append(
                        CreatorMismatch(creator, "chain_balance", credited - withdrawn, balance, wallet)
                    )
