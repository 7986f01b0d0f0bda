"""Events that reach people: the in-app notification feed and signed webhooks.

`emit` is the one entry point the rest of the core calls, inside the transaction that made the event true, so
an event is recorded exactly when its cause commits. (Placeholder until the feed and webhooks land: it records
nothing yet.)
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session


class Event(enum.StrEnum):
    PERSONA_LIVE = "persona.live"
    PERSONA_FAILED = "persona.failed"
    PERSONA_REVIEW = "persona.review"
    SETTLEMENT_CONFIRMED = "settlement.confirmed"
    REPORT_RESOLVED = "report.resolved"


def emit(session: Session, account_id: str, event: Event, data: dict[str, Any]) -> None:
    """Record `event` for `account_id` (its feed, and a delivery per matching webhook) in `session`."""
    del session, account_id, event, data
