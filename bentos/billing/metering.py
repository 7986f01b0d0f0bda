"""Metering: one usage event per successful request id, priced once, appended and never updated except to settle."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.pricing import PriceBook
from bentos.store.models import Persona, UsageEvent


def record_usage(
    sessions: sessionmaker[Session],
    prices: PriceBook,
    *,
    request_id: str,
    caller_id: str,
    persona: Persona,
    chars: int,
    audio_ms: int,
    model: str,
) -> tuple[UsageEvent, bool]:
    """Write the usage event for `request_id` unless it exists; returns (event, created).

    The unique request id is the guard: a retried or replayed request is metered at most once.
    """
    charge = prices.charge(chars, persona.price_per_10k_chars)
    event = UsageEvent(
        request_id=request_id,
        caller_id=caller_id,
        persona_id=persona.id,
        creator_id=persona.creator_id,
        chars=chars,
        audio_ms=audio_ms,
        model=model,
        unit_price=charge.unit_price,
        amount=charge.amount,
        creator_share=charge.creator_share,
        platform_share=charge.platform_share,
    )
    try:
        with sessions.begin() as session:
            session.add(event)
            session.flush()
            session.execute(update(Persona).where(Persona.id == persona.id).values(calls=Persona.calls + 1))
        return event, True
    except IntegrityError:
        with sessions() as session:
            existing = session.scalar(select(UsageEvent).where(UsageEvent.request_id == request_id))
        if existing is None:
            raise
        return existing, False
