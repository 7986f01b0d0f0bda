"""Crypto top-ups: read the registry's `Deposited` events and credit each once, after enough confirmations.

Each log is credited exactly once per (tx hash, log index): the ledger reference `deposit:<tx hash>:<log index>`
and the unique `chain_deposits` row both say so, and the cursor (last block scanned) commits in the same database
transaction as the credits of the blocks it covers — replaying a range, rescanning after a crash or two replicas
scanning together credits nothing twice. A deposit whose reference names no account is recorded as unmatched and
logged, never credited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.credit import Credit, credit_in
from bentos.billing.ledger import Funding
from bentos.billing.pricing import PriceBook
from bentos.chain.registry import ChainEvent, ChainRegistry
from bentos.store.models import Account
from bentos.store.money_models import ChainCursor, ChainDeposit

log = logging.getLogger(__name__)

MAX_BLOCKS_PER_SCAN = 5_000  # one get_logs range; a far-behind cursor catches up over several passes


@dataclass
class DepositScan:
    """What one pass did: the blocks it covered and the logs it credited / could not match."""

    from_block: int
    to_block: int
    credited: list[str] = field(default_factory=list)  # ledger references
    unmatched: list[str] = field(default_factory=list)
    seen_before: int = 0  # logs already recorded (a replayed range)


def cursor_name(chain: ChainRegistry) -> str:
    # Per contract: a redeployed registry is read from its first block again.
    return f"deposits:{chain.chain_id}:{chain.address}"


def deposit_reference_key(tx_hash: str, log_index: int) -> str:
    return f"deposit:{tx_hash.lower()}:{log_index}"


def safe_head(head: int, confirmations: int) -> int:
    """The newest block whose logs have `confirmations` blocks (its own included); 0 means the head itself."""
    return head - max(0, confirmations - 1)


def scan_deposits(
    sessions: sessionmaker[Session],
    chain: ChainRegistry,
    prices: PriceBook,
    confirmations: int,
    *,
    max_blocks: int = MAX_BLOCKS_PER_SCAN,
) -> DepositScan | None:
    """Credit the deposits of the blocks after the cursor up to the confirmed head; None if nothing is new."""
    name = cursor_name(chain)
    with sessions() as session:
        done = session.scalar(select(ChainCursor.block_number).where(ChainCursor.name == name))
    first = 0 if done is None else int(done) + 1
    last = min(safe_head(chain.block_number(), confirmations), first + max_blocks - 1)
    if last < first:
        return None
    events = chain.deposits(first, last)
    scan = DepositScan(first, last)
    try:
        with sessions.begin() as session:
            for event in events:
                record_deposit(session, chain.address, event, prices, scan)
            _advance(session, name, last)
    except IntegrityError:
        # Another replica recorded the same logs (or moved the cursor) first: its pass stands, ours is void.
        log.info("deposit scan of blocks %d–%d raced another replica; it will be re-read", first, last)
        return DepositScan(first, last)
    return scan


def record_deposit(
    session: Session, contract: str, event: ChainEvent, prices: PriceBook, scan: DepositScan | None = None
) -> ChainDeposit:
    """Record one `Deposited` log (in the caller's transaction) and credit it to the account it names, once."""
    tx_hash = event.tx_hash.lower()
    existing = session.scalar(
        select(ChainDeposit).where(ChainDeposit.tx_hash == tx_hash, ChainDeposit.log_index == event.log_index)
    )
    if existing is not None:
        if scan is not None:
            scan.seen_before += 1
        return existing
    reference = str(event.args["reference"]).lower()
    value = int(event.args["value"])
    account_id = session.scalar(select(Account.id).where(Account.deposit_reference == reference))
    amount = prices.from_wei(value) if account_id is not None else 0
    key = deposit_reference_key(tx_hash, event.log_index)
    row = ChainDeposit(
        tx_hash=tx_hash,
        log_index=event.log_index,
        block_number=event.block_number,
        contract=contract,
        sender=str(event.args["sender"]),
        reference=reference,
        value_wei=str(value),
        amount=amount,
        account_id=account_id,
        status="credited" if account_id is not None and amount > 0 else "unmatched",
    )
    session.add(row)
    session.flush()
    if row.status == "credited":
        assert account_id is not None
        memo = f"crypto top-up {value} wei, tx {tx_hash} log {event.log_index}"
        credit_in(session, Credit(account_id, amount, Funding.CRYPTO, key, memo))
        if scan is not None:
            scan.credited.append(key)
    else:
        # Nobody's reference (or under one micro-unit): kept on the contract, visible to an operator.
        log.warning(
            "unmatched crypto deposit: tx %s log %d from %s, reference %s, %d wei",
            tx_hash,
            event.log_index,
            row.sender,
            reference,
            value,
            extra={"tx_hash": tx_hash, "reference": reference, "value_wei": str(value)},
        )
        if scan is not None:
            scan.unmatched.append(key)
    return row


def _advance(session: Session, name: str, block: int) -> None:
    cursor = session.get(ChainCursor, name)
    if cursor is None:
        session.add(ChainCursor(name=name, block_number=block))
    elif cursor.block_number < block:
        cursor.block_number = block
    session.flush()


def deposits_of(sessions: sessionmaker[Session], account_id: str, limit: int = 100) -> list[ChainDeposit]:
    """The account's credited top-ups, newest first."""
    with sessions() as session:
        return list(
            session.scalars(
                select(ChainDeposit)
                .where(ChainDeposit.account_id == account_id)
                .order_by(ChainDeposit.id.desc())
                .limit(limit)
            )
        )
