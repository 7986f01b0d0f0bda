"""Reserve before a provider call, capture once on success, release on failure — all as ledger transactions.

A hold moves money from `caller:<id>` to `hold:<id>`; capturing it pays the creator, the provider's cost and the
platform from the hold; releasing it gives the money back. A hold's status changes by one conditional UPDATE
(`status = 'held'`), so a capture and a release racing each other (a retried request, a worker restarted) settle
the hold exactly once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.ledger import (
    PLATFORM_REVENUE,
    PROVIDER_COST,
    Posting,
    caller_book,
    creator_book,
    hold_book,
    post,
)
from bentos.billing.pricing import Charge, CloneFee
from bentos.store.models import Hold, Persona, UsageEvent, utcnow

_HOLDS = cast(Table, Hold.__table__)
_USAGE = cast(Table, UsageEvent.__table__)
_PERSONAS = cast(Table, Persona.__table__)
# Built once: building a Core statement costs several times executing it, and these run on every call.
_ADD_HOLD = insert(_HOLDS)
_ADD_USAGE = insert(_USAGE).returning(_USAGE.c.id)
_CLOSE_HOLD = (
    update(_HOLDS)
    .where(_HOLDS.c.id == bindparam("hold_id"), _HOLDS.c.status == "held")
    .values(status=bindparam("new_status"), closed_at=bindparam("closed"))
    .returning(_HOLDS.c.account_id, _HOLDS.c.amount, _HOLDS.c.purpose, _HOLDS.c.subject)
)
_COUNT_CALL = (
    update(_PERSONAS).where(_PERSONAS.c.id == bindparam("persona_id")).values(calls=_PERSONAS.c.calls + 1)
)


class Purpose(enum.StrEnum):
    SPEECH = "speech"
    CLONE = "clone"


class HoldStatus(enum.StrEnum):
    HELD = "held"
    CAPTURED = "captured"
    RELEASED = "released"


class SpendCapReached(ValueError):
    def __init__(self, cap: int, spent: int, needed: int) -> None:
        super().__init__(f"this key has spent {spent} of its {cap} monthly cap; {needed} more needed")
        self.cap, self.spent, self.needed = cap, spent, needed


@dataclass(frozen=True)
class Reservation:
    hold_id: str
    amount: int


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def key_spend(session: Session, api_key_id: str, since: datetime) -> int:
    """What a key has spent since `since`: captured calls plus holds still in flight."""
    spent = session.scalar(
        select(func.coalesce(func.sum(UsageEvent.amount), 0)).where(
            UsageEvent.api_key_id == api_key_id, UsageEvent.created_at >= since
        )
    )
    held = session.scalar(
        select(func.coalesce(func.sum(Hold.amount), 0)).where(
            Hold.api_key_id == api_key_id, Hold.status == HoldStatus.HELD
        )
    )
    return int(spent or 0) + int(held or 0)


def reserve_in(
    session: Session,
    *,
    hold_id: str,
    account_id: str,
    api_key_id: str | None,
    purpose: Purpose,
    subject: str,
    amount: int,
    monthly_cap: int = 0,
) -> Reservation:
    """Hold `amount` of the account's balance in `session` (the caller commits). Raises InsufficientFunds or
    SpendCapReached, having written nothing the caller's rollback doesn't undo."""
    if monthly_cap and api_key_id is not None:
        spent = key_spend(session, api_key_id, month_start())
        if spent + amount > monthly_cap:
            raise SpendCapReached(monthly_cap, spent, amount)
    session.flush()  # an account added in this session goes first: the hold refers to it
    session.execute(
        _ADD_HOLD,
        {
            "id": hold_id,
            "account_id": account_id,
            "api_key_id": api_key_id,
            "purpose": str(purpose),
            "subject": subject,
            "amount": amount,
            "status": HoldStatus.HELD.value,
            "created_at": utcnow(),
        },
    )
    post(
        session,
        f"reserve:{hold_id}",
        "reserve",
        [Posting(caller_book(account_id), -amount), Posting(hold_book(account_id), amount)],
        account_id=account_id,
        memo=f"{purpose} {subject}",
    )
    return Reservation(hold_id, amount)


def reserve(sessions: sessionmaker[Session], **kw: object) -> Reservation:
    with sessions.begin() as session:
        return reserve_in(session, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Closed:
    account_id: str
    amount: int
    purpose: str
    subject: str


def _close(session: Session, hold_id: str, status: HoldStatus) -> _Closed | None:
    """Mark the hold captured/released if it is still held → what it held, or None if it was already closed.
    One conditional UPDATE … RETURNING: the status check, the change and the read in one round trip."""
    row = session.execute(
        _CLOSE_HOLD, {"hold_id": hold_id, "new_status": status.value, "closed": utcnow()}
    ).first()
    if row is None:
        return None
    return _Closed(row.account_id, int(row.amount), row.purpose, row.subject)


def release_in(session: Session, hold_id: str, why: str = "") -> bool:
    """Give a held amount back to its account; False if the hold was already captured or released."""
    hold = _close(session, hold_id, HoldStatus.RELEASED)
    if hold is None:
        return False
    post(
        session,
        f"release:{hold_id}",
        "release",
        [
            Posting(hold_book(hold.account_id), -hold.amount),
            Posting(caller_book(hold.account_id), hold.amount),
        ],
        account_id=hold.account_id,
        memo=why or f"{hold.purpose} {hold.subject} released",
    )
    return True


def release(sessions: sessionmaker[Session], hold_id: str, why: str = "") -> bool:
    with sessions.begin() as session:
        return release_in(session, hold_id, why)


def capture_speech(
    sessions: sessionmaker[Session],
    hold: Reservation,
    charge: Charge,
    *,
    request_id: str,
    caller_id: str,
    api_key_id: str | None,
    persona: Persona,
    audio_ms: int,
) -> tuple[UsageEvent, bool]:
    """Bill a call once: the usage row, the hold's capture and the split, in one transaction.

    `charge` may be less than the hold (a long text or a realtime session cut short bills what was delivered):
    the rest goes back to the caller in the same transaction. A request id billed before (a retry of a cut
    stream, a replay racing its original) releases this hold instead and returns the first usage row with
    created=False.
    """
    if charge.amount > hold.amount:
        raise ValueError("a call is captured for at most what was held for it")
    unused = hold.amount - charge.amount  # a long text cut short: only what was delivered is billed
    now = utcnow()
    values = {
        "request_id": request_id,
        "caller_id": caller_id,
        "persona_id": persona.id,
        "creator_id": persona.creator_id,
        "chars": charge.chars,
        "audio_ms": audio_ms,
        "model": charge.model,
        "unit_price": charge.unit_price,
        "amount": charge.amount,
        "creator_share": charge.creator_share,
        "platform_share": charge.platform_share,
        "provider_cost": charge.provider_cost,
        "api_key_id": api_key_id,
        "created_at": now,
    }
    try:
        with sessions.begin() as session:
            # The unique request id: a second bill for it stops here (IntegrityError), before anything moves.
            usage_id = session.execute(_ADD_USAGE, values).scalar_one()
            if _close(session, hold.hold_id, HoldStatus.CAPTURED) is None:
                raise RuntimeError(f"hold {hold.hold_id} was closed before its call was billed")
            post(
                session,
                f"capture:{request_id}",
                "speech",
                [
                    Posting(hold_book(caller_id), -hold.amount),
                    Posting(caller_book(caller_id), unused),
                    Posting(creator_book(persona.creator_id), charge.creator_share),
                    Posting(PROVIDER_COST, charge.provider_cost),
                    Posting(PLATFORM_REVENUE, charge.platform_share - charge.provider_cost),
                ],
                account_id=caller_id,
                memo=f"{charge.chars} chars, {persona.id}, {charge.model}",
            )
            session.execute(_COUNT_CALL, {"persona_id": persona.id})
        # Built after the commit, never added to a session: the caller gets the row as stored.
        return UsageEvent(id=usage_id, settlement_id=None, **values), True
    except IntegrityError:
        release(sessions, hold.hold_id, f"request {request_id} was billed before")
        with sessions() as session:
            existing = session.scalar(select(UsageEvent).where(UsageEvent.request_id == request_id))
        if existing is None:
            raise
        return existing, False


def capture_clone(session: Session, hold_id: str, fee: CloneFee, persona_id: str) -> bool:
    """Charge the creator's clone fee held for `persona_id` (in the caller's transaction); False if closed."""
    hold = _close(session, hold_id, HoldStatus.CAPTURED)
    if hold is None:
        return False
    post(
        session,
        f"capture:{hold_id}",
        "clone",
        [
            Posting(hold_book(hold.account_id), -hold.amount),
            Posting(PROVIDER_COST, fee.provider_cost),
            Posting(PLATFORM_REVENUE, hold.amount - fee.provider_cost),
        ],
        account_id=hold.account_id,
        memo=f"clone fee for {persona_id}",
    )
    return True


def open_hold(session: Session, purpose: Purpose, subject: str) -> str | None:
    return session.scalar(
        select(Hold.id).where(
            Hold.purpose == purpose, Hold.subject == subject, Hold.status == HoldStatus.HELD
        )
    )


def stale_holds(session: Session, purpose: Purpose, older_than: datetime) -> list[str]:
    """Speech holds whose call never finished (the process died mid-call): the sweeper releases them."""
    rows = session.scalars(
        select(Hold.id).where(
            Hold.purpose == purpose, Hold.status == HoldStatus.HELD, Hold.created_at < older_than
        )
    )
    return list(rows)
