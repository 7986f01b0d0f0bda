"""Events that reach people: the in-app notification feed and signed webhooks.

`emit` is the one entry point the rest of the core calls, inside the transaction that made the event true, so
an event is recorded exactly when its cause commits: a feed row, and a delivery per matching webhook (sent
afterwards by the job queue, bentos/core/webhooks.py).
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.ids import new_id
from bentos.store.models import utcnow
from bentos.store.notify_models import Notification, Webhook, WebhookDelivery


class Event(enum.StrEnum):
    PERSONA_LIVE = "persona.live"
    PERSONA_FAILED = "persona.failed"
    PERSONA_REVIEW = "persona.review"
    SETTLEMENT_CONFIRMED = "settlement.confirmed"
    REPORT_RESOLVED = "report.resolved"


EVENTS = tuple(Event)


def event_body(event_id: str, event: Event | str, data: dict[str, Any]) -> str:
    """The exact JSON a webhook receives (and its signature covers)."""
    doc = {"id": event_id, "type": str(event), "created": int(time.time()), "data": data}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def emit(session: Session, account_id: str, event: Event, data: dict[str, Any]) -> None:
    """Record `event` for `account_id` (its feed, and a delivery per matching webhook) in `session`."""
    event_id = new_id("evt")
    session.add(Notification(event_id=event_id, account_id=account_id, event=str(event), data=data))
    hooks = session.scalars(
        select(Webhook).where(Webhook.account_id == account_id, Webhook.deleted_at.is_(None))
    )
    body = event_body(event_id, event, data)
    for hook in hooks:
        if str(event) in (hook.events or []):
            session.add(
                WebhookDelivery(
                    id=new_id("whd"), webhook_id=hook.id, event=str(event), event_id=event_id, body=body
                )
            )


@dataclass(frozen=True)
class FeedItem:
    id: int
    event: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True)
class Feed:
    data: list[FeedItem]
    unread: int


def feed(
    sessions: sessionmaker[Session], account_id: str, limit: int = 50, unread_only: bool = False
) -> Feed:
    """The account's newest notifications first, and how many are unread."""
    with sessions() as session:
        stmt = select(Notification).where(Notification.account_id == account_id)
        if unread_only:
            stmt = stmt.where(Notification.read_at.is_(None))
        rows = session.scalars(stmt.order_by(Notification.id.desc()).limit(limit))
        items = [FeedItem(n.id, n.event, dict(n.data or {}), n.created_at, n.read_at) for n in rows]
        unread = session.scalar(
            select(func.count()).where(Notification.account_id == account_id, Notification.read_at.is_(None))
        )
        return Feed(items, int(unread or 0))


def mark_read(sessions: sessionmaker[Session], account_id: str) -> int:
    """Mark every unread notification of the account read; returns how many."""
    with sessions.begin() as session:
        done = session.execute(
            update(Notification)
            .where(Notification.account_id == account_id, Notification.read_at.is_(None))
            .values(read_at=utcnow())
        )
        return int(done.rowcount)  # type: ignore[attr-defined]
