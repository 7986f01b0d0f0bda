"""Settlement: move a creator's unsettled earnings into one settlement and queue its on-chain payout.

Usage rows are claimed with one conditional UPDATE (settlement_id IS NULL), so two concurrent settlements can
never take the same row; the chain intent is written to the outbox in the same transaction.
"""

from __future__ import annotations

from eth_hash.auto import keccak
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import Outbox
from bentos.core.errors import PlatformError, forbidden
from bentos.core.ids import new_id
from bentos.store.models import Account, Settlement, UsageEvent


def usage_digest(rows: list[UsageEvent]) -> str:
    """keccak256 over 'id:request_id:amount:creator_share' lines in id order: what the chain anchors."""
    lines = "\n".join(
        f"{r.id}:{r.request_id}:{r.amount}:{r.creator_share}" for r in sorted(rows, key=lambda r: r.id)
    )
    return "0x" + keccak(lines.encode()).hex()


def settle_creator(session: Session, creator: Account, prices: PriceBook) -> Settlement:
    """Create a settlement of every unsettled usage row of `creator` and queue the payout intent."""
    if creator.role not in ("creator", "admin"):
        raise forbidden("only creators have earnings to settle")
    if not creator.payout_wallet:
        raise PlatformError(
            "payout_wallet_missing", "set a payout wallet on the account before settling", 422
        )
    pending = session.scalar(
        select(func.coalesce(func.sum(UsageEvent.creator_share), 0)).where(
            UsageEvent.creator_id == creator.id, UsageEvent.settlement_id.is_(None)
        )
    )
    if int(pending or 0) < max(prices.minimum_payout, 1):
        raise PlatformError(
            "nothing_to_settle",
            f"unsettled earnings ({int(pending or 0)} micro-CNY) are below the minimum payout",
        )
    settlement = Settlement(
        id=new_id("st"),
        creator_id=creator.id,
        usage_count=0,
        amount=0,
        creator_amount=0,
        platform_amount=0,
        wei_amount="0",
        usage_digest="0x" + "0" * 64,
        payout_wallet=creator.payout_wallet,
        status="pending",
    )
    session.add(settlement)
    session.flush()
    session.execute(
        update(UsageEvent)
        .where(UsageEvent.creator_id == creator.id, UsageEvent.settlement_id.is_(None))
        .values(settlement_id=settlement.id)
    )
    rows = list(session.scalars(select(UsageEvent).where(UsageEvent.settlement_id == settlement.id)))
    settlement.usage_count = len(rows)
    settlement.amount = sum(r.amount for r in rows)
    settlement.creator_amount = sum(r.creator_share for r in rows)
    settlement.platform_amount = sum(r.platform_share for r in rows)
    # The invariant the ledger promises: every micro-CNY is either the creator's or the platform's.
    assert settlement.creator_amount + settlement.platform_amount == settlement.amount
    settlement.usage_digest = usage_digest(rows)
    settlement.period_start = min(r.created_at for r in rows)
    wei = prices.to_wei(settlement.creator_amount)
    settlement.wei_amount = str(wei)
    Outbox.enqueue(
        session,
        "settle",
        {
            "settlement_id": settlement.id,
            "usage_digest": settlement.usage_digest,
            "payouts": {creator.payout_wallet: wei},
        },
        f"settle:{settlement.id}",
    )
    return settlement
