"""The chain outbox: intents written in the platform's DB transaction, then sent exactly once by a dispatcher.

An intent's signed transaction (nonce, hash, raw bytes) is committed *before* it is broadcast. After a crash,
`reconcile()` looks each recorded hash up on the node: a receipt means done, a pending tx means wait, an
unknown one is re-sent byte-for-byte — never re-signed with a new nonce while the old one could be mined.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.chain.errors import (
    ChainError,
    ChainNonceConflict,
    ChainReverted,
    ChainTimeout,
    ChainUnavailable,
)
from bentos.chain.registry import ChainRegistry, TxResult, normalize_intent
from bentos.chain.sending import SignedTx
from bentos.store.models import OutboxItem

log = logging.getLogger(__name__)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, nothing signed yet
    SENT = "sent"  # signed and recorded (nonce, hash, raw); broadcast may or may not have reached the node
    CONFIRMED = "confirmed"  # mined with status 1
    FAILED = "failed"  # terminal: reverted (error_code says why) or refused as invalid


class OutboxConflict(ChainError):
    """The intent key is already recorded with a different kind or payload."""

    code = "outbox_conflict"


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Recording side of the outbox; called inside the caller's own DB transaction."""

    @staticmethod
    def enqueue(session: Session, kind: str, payload: Mapping[str, Any], intent_key: str) -> OutboxItem:
        """Record an intent once per `intent_key` (e.g. 'register:p_x'); a repeat returns the same row.

        Validation happens here, so a malformed intent fails the business transaction that caused it.
        """
        canonical = normalize_intent(kind, payload)
        existing = session.scalar(select(OutboxItem).where(OutboxItem.intent_key == intent_key))
        if existing is not None:
            if existing.kind != kind or existing.payload != canonical:
                raise OutboxConflict(f"intent {intent_key!r} is already recorded with different content")
            return existing
        item = OutboxItem(
            intent_key=intent_key, kind=kind, payload=canonical, status=OutboxStatus.PENDING.value, attempts=0
        )
        session.add(item)
        session.flush()
        return item

    @staticmethod
    def get(session: Session, intent_key: str) -> OutboxItem | None:
        return session.scalar(select(OutboxItem).where(OutboxItem.intent_key == intent_key))


@dataclass
class DispatchReport:
    """What one dispatch/reconcile pass did, by intent key."""

    confirmed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # sent, no final receipt yet
    resent: list[str] = field(default_factory=list)  # unknown to the node, same raw tx broadcast again
    chain_unavailable: bool = False


# Called with (intent_key, tx_hash): after the signed tx is committed / after the node accepted it.
DispatchHook = Callable[[str, str], None]


class OutboxDispatcher:
    """Sends recorded intents for one signer; run one per signer (nonces are allocated in-process)."""

    def __init__(
        self,
        sessions: Engine | sessionmaker[Session],
        chain: ChainRegistry,
        *,
        batch_size: int = 100,
        after_record: DispatchHook | None = None,
        after_broadcast: DispatchHook | None = None,
    ) -> None:
        if isinstance(sessions, Engine):
            sessions = sessionmaker(sessions, expire_on_commit=False)
        self._sessions = sessions
        self._chain = chain
        self._batch_size = batch_size
        self._after_record = after_record
        self._after_broadcast = after_broadcast
        self._lock = threading.Lock()

    def dispatch_pending(self) -> DispatchReport:
        """Reconcile what was in flight, then sign, record, broadcast and confirm pending intents in order."""
        with self._lock:
            report = self._reconcile()
            if report.chain_unavailable:
                return report
            self._chain.resync_nonce()  # re-sent transactions moved the node's pending count
            with self._sessions() as session:
                pending = session.scalars(
                    select(OutboxItem.id)
                    .where(OutboxItem.status == OutboxStatus.PENDING.value)
                    .order_by(OutboxItem.id)
                    .limit(self._batch_size)
                ).all()
            sent: list[int] = []
            for item_id in pending:
                outcome = self._send(item_id, report)
                if outcome is None:
                    break
                if outcome:
                    sent.append(item_id)
            for item_id in sent:
                self._confirm(item_id, report)
            return report

    def reconcile(self) -> DispatchReport:
        """Finish intents recorded as sent (e.g. by a crashed process): confirm, wait or re-send."""
        with self._lock:
            return self._reconcile()

    # --- steps ----------------------------------------------------------------------------------------------

    def _reconcile(self) -> DispatchReport:
        report = DispatchReport()
        with self._sessions() as session:
            in_flight = session.scalars(
                select(OutboxItem.id)
                .where(OutboxItem.status == OutboxStatus.SENT.value)
                .order_by(OutboxItem.nonce, OutboxItem.id)
            ).all()
        for item_id in in_flight:
            with self._sessions() as session:
                item = session.get_one(OutboxItem, item_id)
                tx_hash, raw, key = item.tx_hash, item.raw_tx, item.intent_key
            assert tx_hash is not None and raw is not None  # a SENT row always has both (set together)
            try:
                state = self._chain.lookup(tx_hash)
                if state == "pending":
                    report.waiting.append(key)
                    continue
                if state == "unknown":
                    self._chain.rebroadcast(raw, tx_hash)
                    report.resent.append(key)
                    log.info("outbox: re-sent %s for %s (unknown to the node)", tx_hash, key)
            except ChainNonceConflict:
                # Another transaction took this nonce, so this one can never be mined: signing anew is safe.
                if self._chain.lookup(tx_hash) != "mined":
                    self._update(item_id, status=OutboxStatus.PENDING, error_code="nonce_replaced")
                    self._chain.resync_nonce()
                    continue
            except ChainUnavailable as exc:
                self._update(item_id, error_code=exc.code, error_message=str(exc))
                report.chain_unavailable = True
                return report
            self._confirm(item_id, report)
            if report.chain_unavailable:
                return report
        return report

    def _send(self, item_id: int, report: DispatchReport) -> bool | None:
        """Sign, record, broadcast one pending item. True: sent; False: finished otherwise; None: stop."""
        with self._sessions() as session:
            item = session.get_one(OutboxItem, item_id)
            if item.status != OutboxStatus.PENDING.value:
                return False
            key = item.intent_key
            recorded: list[SignedTx] = []

            def record(signed: SignedTx) -> None:
                item.status = OutboxStatus.SENT.value
                item.signer, item.nonce = signed.signer, signed.nonce
                item.tx_hash, item.raw_tx = signed.tx_hash, signed.raw
                item.attempts += 1
                item.error_code = item.error_message = None
                session.commit()  # durable before the bytes leave the process
                recorded.append(signed)
                if self._after_record is not None:
                    self._after_record(key, signed.tx_hash)

            try:
                signed = self._chain.submit(item.kind, item.payload, on_signed=record)
            except ChainReverted as exc:
                self._fail(session, item, exc, report)
                return False
            except ChainNonceConflict as exc:
                # The node holds another tx at this nonce, so ours can never be mined: re-sign later.
                self._reset(session, item, exc)
                return None
            except ChainUnavailable as exc:
                # Recorded but maybe not delivered: reconcile re-sends the same bytes on the next pass.
                if not recorded:
                    item.attempts += 1
                item.error_code, item.error_message = exc.code, str(exc)
                session.commit()
                report.chain_unavailable = True
                return None
            except ChainError as exc:
                self._fail(session, item, exc, report)
                return False
        log.info("outbox: sent", extra={"intent_key": key, "tx_hash": signed.tx_hash})
        if self._after_broadcast is not None:
            self._after_broadcast(key, signed.tx_hash)
        return True

    def _confirm(self, item_id: int, report: DispatchReport) -> None:
        with self._sessions() as session:
            item = session.get_one(OutboxItem, item_id)
            assert item.tx_hash is not None
            try:
                result = self._chain.confirm(item.tx_hash)
            except ChainReverted as exc:
                self._fail(session, item, exc, report)
                return
            except ChainTimeout as exc:
                item.error_code, item.error_message = exc.code, str(exc)
                session.commit()
                report.waiting.append(item.intent_key)
                return
            except ChainUnavailable as exc:
                item.error_code, item.error_message = exc.code, str(exc)
                session.commit()
                report.chain_unavailable = True
                return
            self._succeed(session, item, result)
            log.info("outbox: confirmed", extra={"intent_key": item.intent_key, "block": result.block_number})
            report.confirmed.append(item.intent_key)

    def _succeed(self, session: Session, item: OutboxItem, result: TxResult) -> None:
        item.status = OutboxStatus.CONFIRMED.value
        item.block_number, item.gas_used = result.block_number, result.gas_used
        item.error_code = item.error_message = None
        session.commit()

    def _fail(self, session: Session, item: OutboxItem, exc: ChainError, report: DispatchReport) -> None:
        item.status = OutboxStatus.FAILED.value
        item.error_code, item.error_message = exc.code, str(exc)
        session.commit()
        report.failed.append(item.intent_key)
        log.warning("outbox: %s failed: %s", item.intent_key, exc.code)

    def _reset(self, session: Session, item: OutboxItem, exc: ChainError) -> None:
        item.status = OutboxStatus.PENDING.value
        item.tx_hash = item.raw_tx = item.signer = None
        item.nonce = None
        item.error_code, item.error_message = "nonce_replaced", str(exc)
        session.commit()
        self._chain.resync_nonce()

    def _update(self, item_id: int, *, status: OutboxStatus | None = None, **values: Any) -> None:
        with self._sessions() as session:
            item = session.get_one(OutboxItem, item_id)
            if status is not None:
                item.status = status.value
                if status is OutboxStatus.PENDING:
                    item.tx_hash = item.raw_tx = item.signer = None
                    item.nonce = None
            for name, value in values.items():
                setattr(item, name, value)
            session.commit()
