"""Durable outbound work (webhook deliveries, provider clean-ups): rows written in the caller's transaction, then
claimed when due and run by the job queue, each attempt recorded, retried with bounded exponential backoff.

A row is `pending` (due at `next_attempt_at`), `queued` (claimed, a job is on the queue), `sending` (a job took
it: one attempt in flight), `done` or `failed`. A queued or sending claim older than the lease belongs to a lost
job (a crash, a flushed queue) and is claimed again; a job takes its row with a compare-and-set, so a second job
for the same row (its claim lapsed while it waited on the queue) finds it taken and does nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bentos.store.models import utcnow

log = logging.getLogger(__name__)

PENDING, QUEUED, SENDING, DONE, FAILED = "pending", "queued", "sending", "done", "failed"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 600.0
    lease_s: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt `attempt + 1`: exponential with equal jitter, capped."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def claim_due(sessions: sessionmaker[Session], table: Any, policy: RetryPolicy, limit: int = 50) -> list[Any]:
    """Mark up to `limit` due rows of `table` queued and return their ids (enqueue them after this commits)."""
    now = utcnow()
    with sessions.begin() as session:
        stmt = (
            select(table)
            .where(
                or_(
                    and_(table.status == PENDING, table.next_attempt_at <= now),
                    and_(
                        table.status.in_((QUEUED, SENDING)),
                        table.claimed_at < now - timedelta(seconds=policy.lease_s),
                    ),
                )
            )
            .order_by(table.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(session.scalars(stmt))
        for row in rows:
            row.status, row.claimed_at = QUEUED, now
        return [row.id for row in rows]


def take(session: Session, table: Any, row_id: Any) -> bool:
    """A job takes its queued row (queued → sending) in `session`; False when another job has it or it ended."""
    taken = session.execute(
        update(table)
        .where(table.id == row_id, table.status == QUEUED)
        .values(status=SENDING, claimed_at=utcnow())
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]  # a CursorResult


def record_outcome(row: Any, policy: RetryPolicy, error: str | None) -> None:
    """After an attempt (in the transaction that logs it): done, or pending again after a backoff, or failed
    once `max_attempts` were spent. A row that ended meanwhile (its webhook deleted, its account erased) stays
    as it is."""
    if row.status != SENDING:
        return
    row.attempts += 1
    row.claimed_at = None
    if error is None:
        row.status = DONE
        return
    row.last_error = error[:500]
    if row.attempts >= policy.max_attempts:
        row.status = FAILED
        return
    row.status = PENDING
    row.next_attempt_at = utcnow() + timedelta(seconds=policy.backoff(row.attempts))


def dispatch(sessions: sessionmaker[Session], table: Any, policy: RetryPolicy,
             enqueue: Callable[[str], object]) -> int:  # fmt: skip
    """Claim what is due and put one job per row on the queue; returns how many."""
    ids = claim_due(sessions, table, policy)
    for row_id in ids:
        enqueue(str(row_id))
    return len(ids)
