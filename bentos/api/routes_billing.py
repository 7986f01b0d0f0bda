"""Usage and costs for callers, earnings for creators, and settlements paid out on chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bentos.api.deps import CallerDep, PlatformDep, idempotent
from bentos.api.views import SettlementList, SettlementView, UsageView, error_responses
from bentos.billing.reports import MAX_USAGE_LINES, settle, settlement, settlements_of, usage_report

router = APIRouter(tags=["billing"])


@router.get("/usage", responses=error_responses(401, 422))
def usage(
    platform: PlatformDep,
    account: CallerDep,
    limit: Annotated[int, Query(description=f"calls listed, 1–{MAX_USAGE_LINES}")] = 50,
) -> UsageView:
    """The caller's metered calls and totals; for creators also earnings per persona (settled or not)."""
    return UsageView.of(usage_report(platform.sessions, platform.prices, account, limit))


@router.post(
    "/settlements",
    status_code=201,
    response_model=SettlementView,
    responses=error_responses(400, 401, 403, 409, 422, 503),
)
def create_settlement(request: Request, platform: PlatformDep, account: CallerDep) -> Response:
    """Settle all of the caller's unsettled earnings; the payout is deposited on chain (follow it with GET)."""

    def produce() -> tuple[int, SettlementView]:
        return 201, SettlementView.of(settle(platform.sessions, platform.prices, account))

    return idempotent(request, account.id, "POST /settlements", "settle", produce)


@router.get("/settlements", responses=error_responses(401))
def list_settlements(platform: PlatformDep, account: CallerDep) -> SettlementList:
    return SettlementList(data=[SettlementView.of(s) for s in settlements_of(platform.sessions, account)])


@router.get("/settlements/{settlement_id}", responses=error_responses(401, 404))
def get_settlement(settlement_id: str, platform: PlatformDep, account: CallerDep) -> SettlementView:
    return SettlementView.of(settlement(platform.sessions, settlement_id, account))
