"""Capture a chat turn's one hold: its chat tokens and the TTS of its reply, in one database transaction.

A turn holds (before the provider is called) the most it may cost: the tokens it allows × the chat price, plus
the TTS of the most reply characters it speaks. Afterwards `capture_turn` closes the hold with the same
conditional UPDATE as every hold (`holds._close`: settled exactly once) and posts, in the same transaction:

    capture:<request id>  kind "speech"  hold → creator + provider:cost + platform:revenue   (the TTS part)
    chat:<request id>     kind "chat"    hold → provider:cost + platform:revenue + caller    (tokens + remainder)

and, when anything was spoken, the TTS part's `usage` row (request id unique, as for POST /tts). Two ledger
transactions rather than one so that the TTS part is a `speech` movement like any other call: the finance
report compares the usage rows with the ledger's `speech` lines. The chat part has no creator share (creators
earn on the TTS part only) and no usage row: its tokens and amount are written on the conversation turn.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, insert, update
from sqlalchemy.orm import Session

from bentos.billing.holds import HoldStatus, Reservation, _close
from bentos.billing.ledger import (
    PLATFORM_REVENUE,
    PROVIDER_COST,
    Posting,
    caller_book,
    creator_book,
    hold_book,
    post,
)
from bentos.billing.pricing import Charge, ChatCharge
from bentos.store.models import Persona, UsageEvent, utcnow

_USAGE = cast(Table, UsageEvent.__table__)
_PERSONAS = cast(Table, Persona.__table__)


class HoldClosed(RuntimeError):
    """The hold was captured or released before this turn was billed (a sweeper released a stale one)."""


def capture_turn(
    session: Session,
    hold: Reservation,
    *,
    request_id: str,
    caller_id: str,
    api_key_id: str | None,
    persona: Persona,
    chat: ChatCharge,
    speech: Charge | None,
    audio_ms: int = 0,
) -> None:
    """Bill one chat turn from `hold` in `session`'s transaction (the caller commits, with its turn rows).

    Raises ValueError when the turn costs more than was held, HoldClosed when the hold was already settled, and
    IntegrityError (from the unique usage request id) when the turn was billed before; the caller's rollback
    then undoes everything written here.
    """
    spoken = speech if speech is not None and speech.chars > 0 else None
    tts_amount = spoken.amount if spoken is not None else 0
    if chat.amount + tts_amount > hold.amount:
        raise ValueError("a chat turn is captured for at most what was held for it")
    if spoken is not None:
        session.execute(
            insert(_USAGE),
            {
                "request_id": request_id,
                "caller_id": caller_id,
                "persona_id": persona.id,
                "creator_id": persona.creator_id,
                "chars": spoken.chars,
                "audio_ms": audio_ms,
                "model": spoken.model,
                "unit_price": spoken.unit_price,
                "amount": spoken.amount,
                "creator_share": spoken.creator_share,
                "platform_share": spoken.platform_share,
                "provider_cost": spoken.provider_cost,
                "api_key_id": api_key_id,
                "created_at": utcnow(),
            },
        )
    if _close(session, hold.hold_id, HoldStatus.CAPTURED) is None:
        raise HoldClosed(f"hold {hold.hold_id} was closed before its chat turn was billed")
    if spoken is not None:
        post(
            session,
            f"capture:{request_id}",
            "speech",
            [
                Posting(hold_book(caller_id), -spoken.amount),
                Posting(creator_book(persona.creator_id), spoken.creator_share),
                Posting(PROVIDER_COST, spoken.provider_cost),
                Posting(PLATFORM_REVENUE, spoken.platform_share - spoken.provider_cost),
            ],
            account_id=caller_id,
            memo=f"chat reply spoken: {spoken.chars} chars, {persona.id}, {spoken.model}",
        )
        session.execute(
            update(_PERSONAS).where(_PERSONAS.c.id == persona.id).values(calls=_PERSONAS.c.calls + 1)
        )
    rest = hold.amount - tts_amount
    post(
        session,
        f"chat:{request_id}",
        "chat",
        [
            Posting(hold_book(caller_id), -rest),
            Posting(PROVIDER_COST, chat.provider_cost),
            Posting(PLATFORM_REVENUE, chat.amount - chat.provider_cost),
            Posting(caller_book(caller_id), rest - chat.amount),
        ],
        account_id=caller_id,
        memo=f"chat: {chat.tokens} tokens, {persona.id}",
    )
