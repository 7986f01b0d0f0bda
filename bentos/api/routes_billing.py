"""Usage and costs for callers, earnings for creators, and settlements paid out on chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from bentos.api.deps import caller, idempotent, platform_of
from bentos.api.schemas import settlement_view, usage_view
from bentos.billing.settlement import settle_creator
from bentos.chain.outbox import Outbox
from bentos.core.errors import not_found
from bentos.store.models import Persona, Settlement, UsageEvent

router = APIRouter(tags=["billing"])


@router.get("/usage")
def usage(request: Request, limit: int = 50) -> dict[str, Any]:
    """The caller's metered calls and totals; for creators also earnings per persona (settled or not)."""
    platform, account = platform_of(request), caller(request)
    with platform.sessions() as session:
        calls = list(
            session.scalars(
                select(UsageEvent)
                .where(UsageEvent.caller_id == account.id)
                .order_by(UsageEvent.id.desc())
                .limit(max(1, min(limit, 500)))
            )
        )
        n, chars, ms, amount = session.execute(
            select(
                func.count(UsageEvent.id),
                func.coalesce(func.sum(UsageEvent.chars), 0),
                func.coalesce(func.sum(UsageEvent.audio_ms), 0),
                func.coalesce(func.sum(UsageEvent.amount), 0),
            ).where(UsageEvent.caller_id == account.id)
        ).one()
        earnings = session.execute(
            select(
                Persona.id,
                Persona.name,
                func.count(UsageEvent.id),
                func.sum(UsageEvent.chars),
                func.sum(UsageEvent.amount),
                func.sum(UsageEvent.creator_share),
            )
            .join(UsageEvent, UsageEvent.persona_id == Persona.id)
            .where(Persona.creator_id == account.id)
            .group_by(Persona.id, Persona.name)
        ).all()
        unsettled = dict(
            session.execute(
                select(UsageEvent.persona_id, func.sum(UsageEvent.creator_share))
                .where(UsageEvent.creator_id == account.id, UsageEvent.settlement_id.is_(None))
                .group_by(UsageEvent.persona_id)
            )
            .tuples()
            .all()
        )
    return {
        "currency": platform.prices.currency,
        "unit": "micro",
        "totals": {
            "calls": int(n),
            "chars": int(chars),
            "audioSeconds": round(int(ms) / 1000, 3),
            "amount": int(amount),
        },
        "calls": [usage_view(u) for u in calls],
        "earnings": [
            {
                "personaId": pid,
                "name": name,
                "calls": int(c),
                "chars": int(ch or 0),
                "amount": int(a or 0),
                "creatorShare": int(cs or 0),
                "unsettled": int(unsettled.get(pid) or 0),
            }
            for pid, name, c, ch, a, cs in earnings
        ],
    }


@router.post("/settlements", status_code=201)
def create_settlement(request: Request) -> Response:
    """Settle all of the caller's unsettled earnings; the payout is deposited on chain (follow it with GET)."""
    platform, account = platform_of(request), caller(request)

    def produce() -> tuple[int, Any]:
        with platform.sessions.begin() as session:
            settlement = settle_creator(session, account, platform.prices)
            item = Outbox.get(session, f"settle:{settlement.id}")
            return 201, settlement_view(settlement, item)

    return idempotent(request, account.id, "POST /settlements", "settle", produce)


@router.get("/settlements")
def list_settlements(request: Request) -> dict[str, Any]:
    platform, account = platform_of(request), caller(request)
    with platform.sessions() as session:
        rows = session.scalars(
            select(Settlement)
            .where(Settlement.creator_id == account.id)
            .order_by(Settlement.created_at.desc())
        )
        return {"data": [settlement_view(s, Outbox.get(session, f"settle:{s.id}")) for s in rows]}


@router.get("/settlements/{settlement_id}")
def get_settlement(settlement_id: str, request: Request) -> dict[str, Any]:
    platform, account = platform_of(request), caller(request)
    with platform.sessions() as session:
        settlement = session.get(Settlement, settlement_id)
        if settlement is None or (settlement.creator_id != account.id and account.role != "admin"):
            raise not_found(f"settlement {settlement_id}")
        return settlement_view(settlement, Outbox.get(session, f"settle:{settlement.id}"))
