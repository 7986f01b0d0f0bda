"""What the ledger tells its readers: a caller's metered calls and totals, a creator's earnings per persona,
settlements as their creator follows them, and the price terms every amount is computed with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.pricing import PriceBook
from bentos.billing.settlement import intent_key, settle_creator
from bentos.chain.outbox import Outbox, OutboxStatus
from bentos.core.accounts import Caller, Role
from bentos.core.errors import not_found
from bentos.store.models import Account, OutboxItem, Persona, Settlement, UsageEvent

MONEY_UNIT = "micro"  # every amount is an integer number of micro-units of the currency
MICRO_PER_UNIT = 1_000_000
ROUNDING = (
    "up"  # PriceBook.charge rounds each call's price and cost up to a whole micro-unit: no call is free
)
MAX_USAGE_LINES = 500


@dataclass(frozen=True)
class PriceTerms:
    currency: str
    unit: str
    micro_per_unit: int
    list_price_per_10k_chars: dict[str, int]
    provider_cost_per_10k_chars: dict[str, int]
    creator_share_bps: int  # of the margin above the floor
    margin_floor_bps: int  # of the provider cost: platform revenue − provider cost ≥ floor on every call
    multiplier_bps_min: int
    multiplier_bps_max: int
    clone_fee: int
    trial_credit: int
    rounding: str


def price_terms(prices: PriceBook) -> PriceTerms:
    return PriceTerms(
        prices.currency,
        MONEY_UNIT,
        MICRO_PER_UNIT,
        dict(prices.list_price_per_10k),
        dict(prices.provider_cost_per_10k),
        prices.creator_share_bps,
        prices.margin_floor_bps,
        prices.multiplier_bps_min,
        prices.multiplier_bps_max,
        prices.clone_fee,
        prices.trial_credit,
        ROUNDING,
    )


@dataclass(frozen=True)
class UsageLine:
    """One metered call."""

    request_id: str
    persona_id: str
    chars: int
    audio_seconds: float
    model: str
    unit_price: int
    amount: int
    provider_cost: int
    creator_share: int
    platform_share: int
    settlement_id: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class UsageTotals:
    calls: int
    chars: int
    audio_seconds: float
    amount: int


@dataclass(frozen=True)
class PersonaEarnings:
    """What one of the creator's personas earned, and how much of the creator's share is not settled yet."""

    persona_id: str
    name: str
    calls: int
    chars: int
    amount: int
    creator_share: int
    unsettled: int


@dataclass(frozen=True)
class UsageReport:
    currency: str
    unit: str
    totals: UsageTotals
    calls: list[UsageLine]  # the latest first
    earnings: list[PersonaEarnings]  # empty for an account with no called personas


def usage_report(
    sessions: sessionmaker[Session], prices: PriceBook, caller: Caller, limit: int
) -> UsageReport:
    """The caller's latest `limit` calls (at most MAX_USAGE_LINES) and totals; their personas' earnings."""
    with sessions() as session:
        calls = session.scalars(
            select(UsageEvent)
            .where(UsageEvent.caller_id == caller.id)
            .order_by(UsageEvent.id.desc())
            .limit(max(1, min(limit, MAX_USAGE_LINES)))
        )
        lines = [_line(u) for u in calls]
        n, chars, ms, amount = session.execute(
            select(
                func.count(UsageEvent.id),
                func.coalesce(func.sum(UsageEvent.chars), 0),
                func.coalesce(func.sum(UsageEvent.audio_ms), 0),
                func.coalesce(func.sum(UsageEvent.amount), 0),
            ).where(UsageEvent.caller_id == caller.id)
        ).one()
        earnings = _earnings(session, caller.id)
    totals = UsageTotals(int(n), int(chars), _seconds(int(ms)), int(amount))
    return UsageReport(prices.currency, MONEY_UNIT, totals, lines, earnings)


def _earnings(session: Session, creator_id: str) -> list[PersonaEarnings]:
    earned = session.execute(
        select(
            Persona.id,
            Persona.name,
            func.count(UsageEvent.id),
            func.sum(UsageEvent.chars),
            func.sum(UsageEvent.amount),
            func.sum(UsageEvent.creator_share),
        )
        .join(UsageEvent, UsageEvent.persona_id == Persona.id)
        .where(Persona.creator_id == creator_id)
        .group_by(Persona.id, Persona.name)
    ).all()
    unsettled = dict(
        session.execute(
            select(UsageEvent.persona_id, func.sum(UsageEvent.creator_share))
            .where(UsageEvent.creator_id == creator_id, UsageEvent.settlement_id.is_(None))
            .group_by(UsageEvent.persona_id)
        )
        .tuples()
        .all()
    )
    return [
        PersonaEarnings(
            pid, name, int(c), int(ch or 0), int(a or 0), int(cs or 0), int(unsettled.get(pid) or 0)
        )
        for pid, name, c, ch, a, cs in earned
    ]


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def _line(u: UsageEvent) -> UsageLine:
    return UsageLine(
        u.request_id,
        u.persona_id,
        u.chars,
        _seconds(u.audio_ms),
        u.model,
        u.unit_price,
        u.amount,
        u.provider_cost,
        u.creator_share,
        u.platform_share,
        u.settlement_id,
        u.created_at,
    )


# --- settlements -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementReport:
    """A settlement and where its payout is: pending until the chain confirms (or the payout fails and its
    earnings are released for the next cycle); the transaction, its block and the confirmation time once paid."""

    settlement_id: str
    creator_id: str
    amount: int
    creator_amount: int
    platform_amount: int
    usage_count: int
    usage_digest: str
    wei_amount: str  # uint256 as decimal text
    payout_wallet: str
    status: OutboxStatus
    tx_hash: str | None
    period_start: datetime | None
    period_end: datetime | None
    created_at: datetime | None
    block_number: int | None = None
    confirmed_at: datetime | None = None
    chain_settlement_id: str | None = None  # the on-chain settlement id (a cycle pays many creators in one)


def _report(s: Settlement, deposit: OutboxItem | None) -> SettlementReport:
    # The settlement row is final once followed up; until then the outbox says how far its payout got.
    if s.status != OutboxStatus.PENDING.value or deposit is None:
        status = OutboxStatus(s.status)
    elif deposit.status == OutboxStatus.SENT.value:
        status = OutboxStatus.SENT
    else:
        status = OutboxStatus.PENDING
    return SettlementReport(
        s.id,
        s.creator_id,
        s.amount,
        s.creator_amount,
        s.platform_amount,
        s.usage_count,
        s.usage_digest,
        s.wei_amount,
        s.payout_wallet,
        status,
        s.tx_hash or (deposit.tx_hash if deposit else None),
        s.period_start,
        s.period_end,
        s.created_at,
        s.block_number,
        s.confirmed_at,
        intent_key(s).removeprefix("settle:"),
    )


def settle(sessions: sessionmaker[Session], prices: PriceBook, creator: Caller) -> SettlementReport:
    """Settle all of the creator's unsettled earnings; the payout intent commits with the settlement."""
    with sessions.begin() as session:
        account = session.get(Account, creator.id)
        if account is None:
            raise not_found(f"account {creator.id}")
        settlement = settle_creator(session, account, prices)
        return _report(settlement, Outbox.get(session, intent_key(settlement)))


def settlements_of(sessions: sessionmaker[Session], creator: Caller) -> list[SettlementReport]:
    """The creator's settlements, newest first, with their deposits read in one query."""
    with sessions() as session:
        rows = list(
            session.scalars(
                select(Settlement)
                .where(Settlement.creator_id == creator.id)
                .order_by(Settlement.created_at.desc())
            )
        )
        keys = {intent_key(s) for s in rows}
        deposits = {
            item.intent_key: item
            for item in session.scalars(select(OutboxItem).where(OutboxItem.intent_key.in_(keys)))
        }
        return [_report(s, deposits.get(intent_key(s))) for s in rows]


def settlement(sessions: sessionmaker[Session], settlement_id: str, reader: Caller) -> SettlementReport:
    """One settlement, for its creator or an admin (404 for anyone else)."""
    with sessions() as session:
        found = session.get(Settlement, settlement_id)
        if found is None or (found.creator_id != reader.id and reader.role != Role.ADMIN):
            raise not_found(f"settlement {settlement_id}")
        return _report(found, Outbox.get(session, intent_key(found)))
