"""The tables of the money loop on chain (migration 0004): crypto top-ups read from the chain, the scan cursor,
payout-wallet challenges and settlement cycles. Money columns are integer micro-units; wei is decimal text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bentos.store.base import Base
from bentos.store.models import Money, utcnow

__all__ = ["ChainCursor", "ChainDeposit", "SettlementCycle", "WalletChallenge"]


def _ts(**kw: Any) -> Any:
    return mapped_column(DateTime(timezone=True), **kw)


class ChainCursor(Base):
    """The last block a chain reader has finished (e.g. the deposit watcher), per reader and contract."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)  # "deposits:<chain id>:<contract>"
    block_number: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _ts(default=utcnow, onupdate=utcnow)


class ChainDeposit(Base):
    """One `Deposited` log, recorded once per (tx hash, log index): credited to an account, or unmatched."""

    __tablename__ = "chain_deposits"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    sender: Mapped[str] = mapped_column(String(42))
    reference: Mapped[str] = mapped_column(String(66), index=True)
    value_wei: Mapped[str] = mapped_column(String(80))  # uint256 as decimal text
    amount: Mapped[int] = mapped_column(Money)  # micro-units credited (0 when unmatched)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))  # credited | unmatched
    created_at: Mapped[datetime] = _ts(default=utcnow)


class WalletChallenge(Base):
    """A one-time message an account signs with a wallet to prove it owns it before it becomes the payout wallet."""

    __tablename__ = "wallet_challenges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    message: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = _ts()
    used_at: Mapped[datetime | None] = _ts(nullable=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)


class SettlementCycle(Base):
    """One row per settlement period: inserting it is how one replica claims the period's cycle."""

    __tablename__ = "settlement_cycles"

    period: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since 1970-01-01 // period days
    period_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="running")  # running | done
    settlements: Mapped[int] = mapped_column(Integer, default=0)
    creator_amount: Mapped[int] = mapped_column(Money, default=0)
    started_at: Mapped[datetime] = _ts(default=utcnow)
    finished_at: Mapped[datetime | None] = _ts(nullable=True)
