"""A caller's money: balance, ledger lines, quotes before a call, and admin credit grants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bentos.api.deps import (
    OPTIONAL_AUTH,
    CallerDep,
    OptionalCallerDep,
    PlatformDep,
    SpeechDep,
    body_hash,
    idempotent,
)
from bentos.api.schemas import MAX_SPEECH_TEXT_CHARS, CreditGrant
from bentos.api.views import BalanceView, LedgerLineView, LedgerView, QuoteView, error_responses
from bentos.core import funds
from bentos.core.ids import new_id

router = APIRouter(tags=["money"])
LEDGER_MAX_LINES = 500


@router.get("/balance", responses=error_responses(401))
def balance(platform: PlatformDep, account: CallerDep) -> BalanceView:
    """What the caller can spend, what is held for calls in flight, and (creators) unpaid earnings."""
    return BalanceView.of(funds.balance(platform.sessions, platform.prices, account))


@router.get("/ledger", responses=error_responses(401, 422))
def ledger(
    platform: PlatformDep,
    account: CallerDep,
    since: Annotated[datetime | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=LEDGER_MAX_LINES)] = 100,
) -> LedgerView:
    """The caller's own ledger entries, newest first: credits, holds and their captures or releases, earnings."""
    lines = funds.ledger_lines(platform.sessions, account, since, until, limit)
    return LedgerView(
        currency=platform.prices.currency,
        unit=funds.UNIT,
        data=[LedgerLineView.of(line) for line in lines],
    )


@router.get("/quotes", responses=error_responses(401, 404, 422), openapi_extra=OPTIONAL_AUTH)
def quotes(
    speech: SpeechDep,
    account: OptionalCallerDep,
    voice: Annotated[str, Query(max_length=40)],
    chars: Annotated[int, Query(ge=1, le=MAX_SPEECH_TEXT_CHARS)],
    model: Annotated[str | None, Query(max_length=40)] = None,
) -> QuoteView:
    """What speaking `chars` characters with persona `voice` (and `model`, the persona's own by default) costs,
    computed exactly as the call will be metered."""
    return QuoteView.of(speech.quote(voice, chars, account, model))


@router.post(
    "/admin/credits",
    status_code=201,
    response_model=BalanceView,
    responses=error_responses(400, 401, 403, 404, 409, 413, 422),
)
def grant_credit(body: CreditGrant, request: Request, platform: PlatformDep, account: CallerDep) -> Response:
    """Admins credit an account (fiat received elsewhere), with a reason; an Idempotency-Key makes a retry safe."""
    # A retry with the same Idempotency-Key replays; without one each grant is its own.
    reference = request.headers.get("idempotency-key") or new_id("grant")

    def produce() -> tuple[int, BalanceView]:
        granted = funds.grant(
            platform.sessions,
            platform.prices,
            account,
            body.account_id,
            body.amount,
            body.reason,
            f"{account.id}:{reference}",
        )
        return 201, BalanceView.of(granted)

    return idempotent(request, account.id, "POST /admin/credits", body_hash(body), produce)
