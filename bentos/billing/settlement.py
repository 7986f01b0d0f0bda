"""Settlement: move creators' unsettled earnings into settlements and pay them on chain, once.

Usage rows are claimed with one conditional UPDATE (settlement_id IS NULL), so two settlements can never take
the same row; the chain intent is written to the outbox in the same transaction. A periodic cycle pays every
creator above the minimum in one `deposit_settlement` (chunks of MAX_PAYOUTS wallets); `settle_creator` pays one
creator on demand.

Ledger, per settlement of creator c for x micro-units:
    created   creator:c −x, payout:c +x      `settle:<settlement>:<c>`
    confirmed payout:c −x,  paid:c +x        `paid:<settlement>:<c>`
    failed    payout:c −x,  creator:c +x     `unsettle:<settlement>:<c>`, and its usage rows are released
x is the part of the settlement the creator book holds (earnings metered before the ledger existed have no
entries): min(creator_amount, creator book). `follow_payouts` applies the chain's outcome; it reads the outbox
(which reconciles after a crash), so a payout mined just before a kill is recorded as paid after the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from eth_hash.auto import keccak
from sqlalchemy import String, Table, func, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import ledger
from bentos.billing.ledger import Posting, creator_book, paid_book, payout_book
from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import Outbox, OutboxStatus
from bentos.chain.registry import ChainRegistry
from bentos.core.errors import ErrorCode, PlatformError, forbidden
from bentos.core.ids import new_id
from bentos.core.notifications import Event, emit
from bentos.store.models import Account, OutboxItem, Settlement, UsageEvent
from bentos.store.money_models import SettlementCycle

log = logging.getLogger(__name__)

MAX_WALLETS_PER_TX = 200  # under the contract's MAX_PAYOUTS (256), with gas to spare
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def usage_digest(rows: Sequence[UsageEvent]) -> str:
    """keccak256 over 'id:request_id:amount:creator_share' lines in id order: what the chain anchors."""
    lines = "\n".join(
        f"{r.id}:{r.request_id}:{r.amount}:{r.creator_share}" for r in sorted(rows, key=lambda r: r.id)
    )
    return "0x" + keccak(lines.encode()).hex()


_USAGE = cast(Table, UsageEvent.__table__)
_SETTLEMENTS = cast(Table, Settlement.__table__)
_CLAIMED = (
    _USAGE.c.settlement_id,
    _USAGE.c.id,
    _USAGE.c.request_id,
    _USAGE.c.amount,
    _USAGE.c.creator_share,
    _USAGE.c.platform_share,
    # As the driver gives it (SQLite: the stored ISO text, whose order is the times' order), so a million rows
    # aren't each parsed into a datetime to find the earliest; only the earliest is (`_Tally.period_start`).
    type_coerce(_USAGE.c.created_at, String),
)
_BATCH = 20_000  # rows per fetch and per keccak update: memory stays flat however many rows a settlement has
_CLAIM_PER_STATEMENT = 500  # settlements claimed by one UPDATE (under every database's bound-parameter limit)


@dataclass
class _Tally:
    """A settlement's claimed rows, summed and hashed as they stream past (`usage_digest`, byte for byte: the
    same lines in id order, fed to keccak a chunk at a time, each chunk after the first led by its '\n')."""

    count: int = 0
    amount: int = 0
    creator_amount: int = 0
    platform_amount: int = 0
    first_at: Any = None  # the earliest created_at as the driver gave it
    last_id: int = -1
    in_order: bool = True  # False: rows came out of id order, so the digest is read again in order
    lines: list[str] = field(default_factory=list)
    digest: Any = field(default_factory=lambda: keccak.new(b""))
    separator: bytes = b""

    def add(self, row_id: int, request_id: str, amount: int, creator_share: int, platform_share: int,
            created_at: Any) -> None:  # fmt: skip
        self.count += 1
        self.amount += amount
        self.creator_amount += creator_share
        self.platform_amount += platform_share
        if self.first_at is None or created_at < self.first_at:
            self.first_at = created_at
        if row_id < self.last_id:
            self.in_order = False
        self.last_id = row_id
        if self.in_order:
            self.lines.append(f"{row_id}:{request_id}:{amount}:{creator_share}")
            if len(self.lines) >= _BATCH:
                self.flush()

    def flush(self) -> None:
        if self.lines:
            self.digest.update(self.separator + "\n".join(self.lines).encode())
            self.separator, self.lines = b"\n", []

    def period_start(self, session: Session) -> datetime | None:
        if self.first_at is None or isinstance(self.first_at, datetime):
            return self.first_at
        dialect = session.get_bind().dialect
        parse = _USAGE.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)
        return parse(self.first_at) if parse else self.first_at

    def hexdigest(self, session: Session, settlement_id: str) -> str:
        if not self.in_order:
            return _claimed_digest(session, settlement_id)
        self.flush()
        return "0x" + self.digest.digest().hex()


def _claimed_digest(session: Session, settlement_id: str) -> str:
    """`usage_digest` of a settlement's rows, read as narrow tuples streamed in id order."""
    rows = session.execute(
        select(_USAGE.c.id, _USAGE.c.request_id, _USAGE.c.amount, _USAGE.c.creator_share)
        .where(_USAGE.c.settlement_id == settlement_id)
        .order_by(_USAGE.c.id)
        .execution_options(yield_per=_BATCH)
    )
    digest = keccak.new(b"")
    separator = b""
    for part in rows.partitions():
        digest.update(separator + "\n".join(f"{i}:{r}:{a}:{c}" for i, r, a, c in part).encode())
        separator = b"\n"
    return "0x" + digest.digest().hex()


def _claim(session: Session, settlements: Sequence[Settlement]) -> dict[str, _Tally]:
    """Claim every unsettled row of each settlement's creator into it (the settlements are flushed) → their
    tallies. Set-based: one UPDATE … RETURNING per batch of settlements claims the rows and hands back the
    narrow columns the sums and the digest need, in one pass over the unsettled rows; no row becomes an object.
    """
    tallies = {s.id: _Tally() for s in settlements}
    for start in range(0, len(settlements), _CLAIM_PER_STATEMENT):
        batch = settlements[start : start + _CLAIM_PER_STATEMENT]
        if len(batch) == 1:
            claim = (
                update(_USAGE)
                .where(_USAGE.c.creator_id == batch[0].creator_id, _USAGE.c.settlement_id.is_(None))
                .values(settlement_id=batch[0].id)
            )
        else:
            claim = (
                update(_USAGE)
                .where(
                    _SETTLEMENTS.c.id.in_([s.id for s in batch]),
                    _SETTLEMENTS.c.creator_id == _USAGE.c.creator_id,
                    _USAGE.c.settlement_id.is_(None),
                )
                .values(settlement_id=_SETTLEMENTS.c.id)
            )
        # Fetched a part at a time (not yield_per: PostgreSQL's server-side cursors take no UPDATE).
        for part in session.execute(claim.returning(*_CLAIMED)).partitions(_BATCH):
            for settlement_id, *row in part:
                tallies[settlement_id].add(*row)
    return tallies


def intent_key(settlement: Settlement) -> str:
    return f"settle:{settlement.chain_settlement_id or settlement.id}"


def _unsettled(session: Session, creator_id: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(UsageEvent.creator_share), 0)).where(
                UsageEvent.creator_id == creator_id, UsageEvent.settlement_id.is_(None)
            )
        )
        or 0
    )


def _new_settlement(creator: Account, chain_id: str | None) -> Settlement:
    assert creator.payout_wallet
    return Settlement(
        id=new_id("st"),
        creator_id=creator.id,
        usage_count=0,
        amount=0,
        creator_amount=0,
        platform_amount=0,
        wei_amount="0",
        usage_digest="0x" + "0" * 64,
        payout_wallet=creator.payout_wallet,
        status=OutboxStatus.PENDING.value,
        chain_settlement_id=chain_id,
        ledger_amount=0,
    )


def _open_settlements(session: Session, settlements: Sequence[Settlement], prices: PriceBook) -> None:
    """Claim every unsettled row of each settlement's creator into it and move its ledger part to payout."""
    session.add_all(settlements)
    session.flush()
    tallies = _claim(session, settlements)
    for settlement in settlements:
        tally = tallies[settlement.id]
        settlement.usage_count = tally.count
        settlement.amount = tally.amount
        settlement.creator_amount = tally.creator_amount
        settlement.platform_amount = tally.platform_amount
        # The invariant the ledger promises: every micro-unit is either the creator's or the platform's.
        assert settlement.creator_amount + settlement.platform_amount == settlement.amount
        settlement.usage_digest = tally.hexdigest(session, settlement.id)
        settlement.period_start = tally.period_start(session)
        settlement.wei_amount = str(prices.to_wei(settlement.creator_amount))
        creator_id = settlement.creator_id
        held = ledger.balance_of(session, creator_book(creator_id))
        settlement.ledger_amount = min(settlement.creator_amount, max(held, 0))
        ledger.post(
            session,
            f"settle:{settlement.id}:{creator_id}",
            "settle",
            [
                Posting(creator_book(creator_id), -settlement.ledger_amount),
                Posting(payout_book(creator_id), settlement.ledger_amount),
            ],
            account_id=creator_id,
            memo=f"settlement {settlement.id} to {settlement.payout_wallet}",
        )


def settle_creator(session: Session, creator: Account, prices: PriceBook) -> Settlement:
    """On demand: settle every unsettled usage row of `creator` and queue its own payout intent."""
    if creator.role not in ("creator", "admin"):
        raise forbidden("only creators have earnings to settle")
    if not creator.payout_wallet:
        raise PlatformError(
            ErrorCode.PAYOUT_WALLET_MISSING, "set a payout wallet on the account before settling", 422
        )
    pending = _unsettled(session, creator.id)
    if pending < max(prices.minimum_payout, 1):
        raise PlatformError(
            ErrorCode.NOTHING_TO_SETTLE,
            f"unsettled earnings ({pending} micro-units) are below the minimum payout",
        )
    settlement = _new_settlement(creator, None)
    _open_settlements(session, [settlement], prices)
    Outbox.enqueue(
        session,
        "settle",
        {
            "settlement_id": settlement.id,
            "usage_digest": settlement.usage_digest,
            "payouts": {settlement.payout_wallet: int(settlement.wei_amount)},
        },
        intent_key(settlement),
    )
    return settlement


# --- cycles ------------------------------------------------------------------------------------------------


def period_of(now: datetime, period_days: int) -> int:
    """The settlement period `now` falls in: whole periods of `period_days` since 1970-01-01 UTC."""
    at = now if now.tzinfo else now.replace(tzinfo=UTC)
    return (at - EPOCH).days // max(1, period_days)


@dataclass
class CycleResult:
    period: int
    settlements: list[str] = field(default_factory=list)
    chain_settlements: list[str] = field(default_factory=list)  # one transaction each
    creator_amount: int = 0


def run_due_cycle(
    sessions: sessionmaker[Session], prices: PriceBook, now: datetime | None = None
) -> CycleResult | None:
    """Run this period's cycle if no replica has: None when it ran before (or is running elsewhere)."""
    period = period_of(now or datetime.now(UTC), prices.settlement_period_days)
    try:
        with sessions.begin() as session:
            if session.get(SettlementCycle, period) is not None:
                return None
            session.add(
                SettlementCycle(period=period, period_days=prices.settlement_period_days, status="running")
            )
            result = _cycle(session, prices, period)
            cycle = session.get_one(SettlementCycle, period)
            cycle.status, cycle.finished_at = "done", datetime.now(UTC)
            cycle.settlements, cycle.creator_amount = len(result.settlements), result.creator_amount
    except IntegrityError:
        return None  # another replica claimed the period at the same moment: its cycle stands
    if result.settlements:
        log.info(
            "settlement cycle %d: %d creators, %d micro-units in %d transaction(s)",
            period,
            len(result.settlements),
            result.creator_amount,
            len(result.chain_settlements),
        )
    return result


def _cycle(session: Session, prices: PriceBook, period: int) -> CycleResult:
    """In the claiming transaction: one settlement per due creator, one chain intent per chunk of wallets."""
    result = CycleResult(period)
    due = session.execute(
        select(UsageEvent.creator_id, func.sum(UsageEvent.creator_share))
        .where(UsageEvent.settlement_id.is_(None))
        .group_by(UsageEvent.creator_id)
        .having(func.sum(UsageEvent.creator_share) >= max(prices.minimum_payout, 1))
        .order_by(UsageEvent.creator_id)
    ).all()
    ids = [creator_id for creator_id, _ in due]
    accounts: dict[str, Account] = {}
    for start in range(0, len(ids), 500):  # under any database's limit on bound parameters
        wanted = ids[start : start + 500]
        accounts.update((a.id, a) for a in session.scalars(select(Account).where(Account.id.in_(wanted))))
    creators = [
        account
        for account in (accounts.get(creator_id) for creator_id in ids)
        if account is not None and account.payout_wallet
    ]
    chunks: list[tuple[str, list[Settlement]]] = []
    wallets: set[str] = set()
    for creator in creators:
        if not chunks or (creator.payout_wallet not in wallets and len(wallets) >= MAX_WALLETS_PER_TX):
            chunks.append((f"cy{period}-{len(chunks)}", []))
            wallets = set()
        chain_id, chunk = chunks[-1]
        chunk.append(_new_settlement(creator, chain_id))
        wallets.add(chunk[-1].payout_wallet)
    _open_settlements(session, [s for _, chunk in chunks for s in chunk], prices)
    for chain_id, chunk in chunks:
        result.settlements += [s.id for s in chunk]
        result.creator_amount += sum(s.creator_amount for s in chunk)
        _enqueue_chunk(session, prices, chain_id, chunk, result)
    return result


def _enqueue_chunk(
    session: Session, prices: PriceBook, chain_id: str, chunk: list[Settlement], result: CycleResult
) -> None:
    payouts: dict[str, int] = {}
    for s in chunk:  # creators sharing a wallet get one credit on chain
        key = s.payout_wallet.lower()
        payouts[key] = payouts.get(key, 0) + int(s.wei_amount)
    digest = "0x" + keccak("\n".join(s.usage_digest for s in chunk).encode()).hex()
    Outbox.enqueue(
        session,
        "settle",
        {"settlement_id": chain_id, "usage_digest": digest, "payouts": payouts},
        f"settle:{chain_id}",
    )
    result.chain_settlements.append(chain_id)


# --- the chain's outcome -----------------------------------------------------------------------------------


@dataclass
class PayoutFollowUp:
    confirmed: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)


def follow_payouts(sessions: sessionmaker[Session], chain: ChainRegistry | None = None) -> PayoutFollowUp:
    """Apply the outbox's final outcome to pending settlements: paid (confirmed) or rolled back (failed).

    Before rolling back, the chain is asked whether the settlement was deposited after all (with `chain`): a
    deposited one is recorded as paid, so a payout is never both on chain and released to be paid again.
    """
    done = PayoutFollowUp()
    with sessions() as session:
        pending = list(
            session.scalars(select(Settlement).where(Settlement.status == OutboxStatus.PENDING.value))
        )
        keys = {s.id: intent_key(s) for s in pending}
        items = {
            item.intent_key: item
            for item in session.scalars(
                select(OutboxItem).where(OutboxItem.intent_key.in_(set(keys.values())))
            )
        }
    for s in pending:
        item = items.get(keys[s.id])
        if item is None or item.status not in (OutboxStatus.CONFIRMED.value, OutboxStatus.FAILED.value):
            continue
        confirmed = item.status == OutboxStatus.CONFIRMED.value
        if not confirmed and chain is not None:
            chain_sid = keys[s.id].removeprefix("settle:")
            if chain.settlement(chain_sid) is not None:
                log.error("settlement %s: its intent failed but the chain has it; recording it as paid", s.id)
                confirmed = True
        with sessions.begin() as session:
            row = session.get_one(Settlement, s.id, with_for_update=True)
            if row.status != OutboxStatus.PENDING.value:
                continue  # another replica got here first
            if confirmed:
                _confirm(session, row, item)
                done.confirmed.append(row.id)
            else:
                _roll_back(session, row, item)
                done.rolled_back.append(row.id)
    return done


def _confirm(session: Session, s: Settlement, item: OutboxItem) -> None:
    s.status = OutboxStatus.CONFIRMED.value
    s.tx_hash, s.block_number = item.tx_hash, item.block_number
    s.confirmed_at = item.updated_at or datetime.now(UTC)
    ledger.post(
        session,
        f"paid:{s.id}:{s.creator_id}",
        "payout",
        [
            Posting(payout_book(s.creator_id), -s.ledger_amount),
            Posting(paid_book(s.creator_id), s.ledger_amount),
        ],
        account_id=s.creator_id,
        memo=f"settlement {s.id} paid on chain, tx {item.tx_hash}",
    )
    data = {"settlementId": s.id, "creatorAmount": s.creator_amount, "txHash": s.tx_hash}
    emit(session, s.creator_id, Event.SETTLEMENT_CONFIRMED, data)


def _roll_back(session: Session, s: Settlement, item: OutboxItem) -> None:
    s.status = OutboxStatus.FAILED.value
    s.tx_hash = item.tx_hash
    session.execute(update(UsageEvent).where(UsageEvent.settlement_id == s.id).values(settlement_id=None))
    ledger.post(
        session,
        f"unsettle:{s.id}:{s.creator_id}",
        "unsettle",
        [
            Posting(payout_book(s.creator_id), -s.ledger_amount),
            Posting(creator_book(s.creator_id), s.ledger_amount),
        ],
        account_id=s.creator_id,
        memo=f"settlement {s.id} failed on chain ({item.error_code}); its earnings are released",
    )
    log.warning(
        "settlement %s failed on chain (%s): %d usage rows released for the next cycle",
        s.id,
        item.error_code,
        s.usage_count,
        extra={"tx_hash": item.tx_hash},
    )
